export * from "./common.ts";
export * from "./datasets.ts";
export * from "./images.ts";
export * from "./jobs.ts";
export * from "./tenant.ts";
export * from "./tokenizers.ts";
export * from "./tokens.ts";
export * from "./webhooks.ts";
