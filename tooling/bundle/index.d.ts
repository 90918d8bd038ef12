/** Bundles `entry`'s workspace TypeScript into `outfile`, to run in place (see index.js). */
export declare function bundleInPlace(entry: URL, outfile: URL): Promise<void>;
