import { testConfig } from "@wedsync/vitest-config";

export default testConfig();
