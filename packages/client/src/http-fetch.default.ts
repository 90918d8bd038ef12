/** Outside Node the HTTP links use the platform's own `fetch` (see http-fetch.node.ts). */
export const httpFetch = undefined;
