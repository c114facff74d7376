export * from "./common.ts";
export * from "./datasets.ts";
export * from "./jobs.ts";
export * from "./tokenizers.ts";
