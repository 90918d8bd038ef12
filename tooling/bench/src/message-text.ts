/**
 * The text every benchmark message carries: `<seq>|<scheduledSendEpochMs>|<phase>|<channel>`.
 * The receiver computes latency from the scheduled send time, so a sender or server that falls
 * behind shows up as latency; the phase drops stragglers of an earlier measurement and the channel
 * tag catches a message delivered on the wrong channel.
 */
export interface MarkedText {
  seq: number;
  scheduledMs: number;
  phase: string;
  channel: string;
}

export function markText(message: MarkedText): string {
  return `${message.seq}|${message.scheduledMs.toFixed(3)}|${message.phase}|${message.channel}`;
}

export function readText(text: string): MarkedText | undefined {
  const parts = text.split("|");
  if (parts.length !== 4) return undefined;
  const seq = Number(parts[0]);
  const scheduledMs = Number(parts[1]);
  if (!Number.isInteger(seq) || !Number.isFinite(scheduledMs)) return undefined;
  return { seq, scheduledMs, phase: parts[2]!, channel: parts[3]! };
}
