export * from "./bitpack.ts";
export * from "./byte-range.ts";
export * from "./crc32.ts";
export * from "./npy.ts";
export * from "./safetensors.ts";
export * from "./token-convert.ts";
export * from "./token-json.ts";
export * from "./token-stream.ts";
