/**
 * @revq/shared: what the edge, the GPU worker and browsers all need, written once: the token
 * stream format, safetensors, the tokenizer manifest, the protocol's vocabulary and schemas,
 * backoff, and the quantization math. Plain TypeScript over typed arrays and web standards; no
 * Node, Workers or tfjs APIs (tests/shared/bundle.test.ts).
 */
export * from "./api/index.ts";
export * from "./errors.ts";
export * from "./format/index.ts";
export * from "./protocol/index.ts";
export * from "./quant/index.ts";
export * from "./retry.ts";
