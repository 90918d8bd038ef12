import type { ViteUserConfig } from "vitest/config";

export declare function testConfig(overrides?: ViteUserConfig): ViteUserConfig;
