import { MemoryBus } from "../src/memory-bus.ts";
import { busContract } from "./bus.contract.ts";

busContract("memory", async () => new MemoryBus());
