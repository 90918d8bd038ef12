import sanitizeHtml from "sanitize-html";

const ENTITIES: Record<string, string> = {
  "&amp;": "&",
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&#39;": "'",
};
/** A complete tag; a lone "<" ("a<b", "I <3 you") is text, and a browser would not render it as a tag. */
const LOOKS_LIKE_MARKUP = /<[A-Za-z!/?][^>]*>/;
const SCRIPT_SCHEME = /\b(?:java|vb)script\s*:/gi;
// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;

function stripTags(text: string): string {
  const stripped = sanitizeHtml(text, {
    allowedTags: [],
    allowedAttributes: {},
    disallowedTagsMode: "discard",
  });
  return stripped.replace(/&(?:amp|lt|gt|quot|#39);/g, (e) => ENTITIES[e]!);
}

/**
 * Plain text for payload fields: no tags (script/style bodies dropped), no script: URLs, no control
 * characters. Decoding entities back keeps "Tom & Jerry" readable; re-stripping defeats encoded tags.
 */
export function toPlainText(input: string): string {
  let text = input.replace(CONTROL, "");
  for (let pass = 0; pass < 3 && LOOKS_LIKE_MARKUP.test(text); pass++) text = stripTags(text);
  if (LOOKS_LIKE_MARKUP.test(text)) text = text.replace(/</g, "‹");
  return text.replace(SCRIPT_SCHEME, "");
}
