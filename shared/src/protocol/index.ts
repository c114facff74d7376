export * from "./bucket-keys.ts";
export * from "./canonical-json.ts";
export * from "./dataset.ts";
export * from "./json-limits.ts";
export * from "./manifest.ts";
export * from "./sha256.ts";
export * from "./worker-api.ts";
