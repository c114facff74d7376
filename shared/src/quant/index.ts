export * from "./codebook.ts";
export * from "./codebook-init.ts";
export * from "./dead-codes.ts";
export * from "./latent-stats.ts";
export * from "./layout.ts";
export * from "./nearest.ts";
export * from "./normalize.ts";
export * from "./rng.ts";
