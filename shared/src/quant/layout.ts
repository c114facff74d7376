/**
 * Where each latent value goes in the token sequence (DESIGN.md, "Token layout").
 *
 * A latent (C, H, W) flattened row-major is cut into T consecutive tokens of D = C·H·W / T values,
 * so on a flat Float32Array the token view is free: token t of sample b is
 * latents[(b·T + t)·D .. (b·T + t + 1)·D). Token t is quantized with codebook group t mod G.
 */
export type LatentShape = { channels: number; height: number; width: number };

export type QuantLayout = {
  /** T: tokens per image. */
  tokens: number;
  /** G: codebook groups; token t uses group t mod G. */
  groups: number;
  /** D: values per token. */
  codeDim: number;
};

export function latentSize(shape: LatentShape): number {
  return shape.channels * shape.height * shape.width;
}

export function quantLayout(shape: LatentShape, tokens: number, groups = tokens): QuantLayout {
  const size = latentSize(shape);
  const where = `latent ${shape.channels}×${shape.height}×${shape.width}`;
  if (!isPositiveInt(tokens) || size % tokens !== 0) {
    throw new RangeError(`${where} (${size} values) cannot be cut into ${tokens} equal tokens`);
  }
  if (!isPositiveInt(groups) || groups > tokens || tokens % groups !== 0) {
    throw new RangeError(`${groups} codebook groups do not divide ${tokens} tokens`);
  }
  return { tokens, groups, codeDim: size / tokens };
}

export function groupOfToken(token: number, layout: QuantLayout): number {
  return token % layout.groups;
}

function isPositiveInt(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0;
}
