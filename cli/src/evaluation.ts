/** A tokenizer's held-out evaluation as a short block of lines, for `tokenizers show` and `train`. */
import { psnrGapDb, type TokenizerEvaluation } from "@revq/shared";

export function evaluationLines(e: TokenizerEvaluation): string[] {
  const { heldOut, latentMse, images, usage } = e;
  const decoded = heldOut.images === 1 ? "1 image decoded" : `${heldOut.images} images decoded`;
  const lines = [`  evaluation     on ${heldOut.latents} held-out latents, ${decoded}`];
  if (images) {
    const gap = psnrGapDb(e) ?? 0;
    const side = gap >= 0 ? `${gap.toFixed(2)} dB below it` : `${(-gap).toFixed(2)} dB above it`;
    lines.push(
      `    PSNR         ${db(images.tokens.psnr)} from tokens, ${db(images.vae.psnr)} VAE alone (${side}); ${db(images.tokensVsVae.psnr)} against the VAE's`,
      `    SSIM         ${images.tokens.ssim.toFixed(3)} from tokens, ${images.vae.ssim.toFixed(3)} VAE alone; ${images.tokensVsVae.ssim.toFixed(3)} against the VAE's`,
    );
  }
  const helps = latentMse.rectified < latentMse.quantized ? "helps" : "does not help";
  lines.push(
    `    latent MSE   ${latentMse.quantized.toFixed(4)} quantized → ${latentMse.rectified.toFixed(4)} rectified (the rectifier ${helps})`,
    `    usage        min ${usage.min.toFixed(3)}, mean ${usage.mean.toFixed(3)} of each group's codes`,
    `    bits/image   ${e.bitsPerImage}`,
  );
  return lines;
}

/** An absent PSNR is an exact reconstruction. */
function db(psnr: number | undefined): string {
  return psnr === undefined ? "∞ dB" : `${psnr.toFixed(2)} dB`;
}
