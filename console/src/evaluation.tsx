/**
 * A tokenizer's evaluation on its training run's held-out set (@revq/shared TokenizerEvaluation):
 * what was evaluated, latent MSE before and after the rectifier, image quality from tokens beside
 * the VAE's own ceiling, code usage and the bits an image takes.
 */
import type { TokenizerEvaluation } from "@revq/shared";
import { figure } from "./format.ts";

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function quality(q: { psnr?: number; ssim: number }): string {
  const psnr = q.psnr === undefined ? "∞ dB (exact)" : `${q.psnr.toFixed(2)} dB`;
  return `PSNR ${psnr}, SSIM ${q.ssim.toFixed(4)}`;
}

export function Evaluation(props: {
  evaluation: TokenizerEvaluation | undefined;
  missing: string;
}) {
  const { evaluation, missing } = props;
  if (!evaluation) return <p class="empty">{missing}</p>;
  const { heldOut, latentMse, images, usage, bitsPerImage } = evaluation;
  const helped = latentMse.rectified < latentMse.quantized;
  const rows: [string, string][] = [
    ["held out", `${count(heldOut.latents, "latent")}, ${count(heldOut.images, "image")} decoded`],
    [
      "latent MSE",
      `${figure(latentMse.quantized)} quantized → ${figure(latentMse.rectified)} rectified (${
        helped ? "the rectifier helps" : "the rectifier makes it worse"
      })`,
    ],
    ...(images
      ? ([
          ["from tokens", quality(images.tokens)],
          ["the VAE alone", quality(images.vae)],
          ["tokens against the VAE's", quality(images.tokensVsVae)],
        ] as [string, string][])
      : [["images", "none decoded"] as [string, string]]),
    [
      "code usage",
      `least-used group ${(usage.min * 100).toFixed(1)} %, mean ${(usage.mean * 100).toFixed(1)} %`,
    ],
    ["bits per image", String(bitsPerImage)],
  ];
  return (
    <dl class="fields evaluation">
      {rows.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
