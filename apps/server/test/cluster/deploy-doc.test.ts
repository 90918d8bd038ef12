import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { nginxSiteConfig, nginxStandaloneConfig } from "./cluster.ts";

/** docs/deploy.md shows the nginx configuration the cluster tests run; this keeps the two equal. */
describe("docs/deploy.md", () => {
  const doc = readFileSync(new URL("../../../../docs/deploy.md", import.meta.url), "utf8");
  const block = (config: string) => `\`\`\`nginx\n${config}\`\`\``;

  it("shows the site configuration nginxSiteConfig() generates (three instances on port 3001)", () => {
    const site = nginxSiteConfig({
      listen: 80,
      upstreams: ["10.0.0.11:3001", "10.0.0.12:3001", "10.0.0.13:3001"],
    });
    expect(doc).toContain(block(site));
  });

  it("shows the main configuration the tests start nginx with", () => {
    expect(doc).toContain(block(nginxStandaloneConfig("/tmp/wedsync-nginx-XXXXXX")));
  });
});
