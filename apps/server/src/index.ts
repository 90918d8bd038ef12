export { type Instance, type InstanceOptions, startInstance } from "./instance.ts";
export { type RunningServer, type ServerOptions, startServer } from "./server.ts";
