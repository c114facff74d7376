/**
 * The fused WebGPU kernels of the project's own ops (gpu-worker/src/ops/), which replace the
 * ops' reference compositions on webgpu. Each is tested against its reference on the cpu backend.
 */
import type * as tf from "@tensorflow/tfjs-core";
import { adamwMomentsKernel, adamwParamKernel, sumSquaresKernel } from "./adamw.ts";
import { channelMeansKernel, channelRepeatsKernel } from "./channel-shortcuts.ts";
import { groupedPointwiseGradKernel, groupedPointwiseKernel } from "./grouped-pointwise.ts";
import { webgpuLinearAttentionKernels } from "./linear-attention.ts";
import { nearestCodeKernel } from "./nearest-code.ts";
import { rmsNormGradKernel, rmsNormKernel } from "./rms-norm.ts";
import { webgpuSiluKernels } from "./silu.ts";

export const FUSED_WEBGPU_KERNELS: tf.KernelConfig[] = [
  adamwMomentsKernel,
  adamwParamKernel,
  sumSquaresKernel,
  channelMeansKernel,
  channelRepeatsKernel,
  groupedPointwiseKernel,
  groupedPointwiseGradKernel,
  ...webgpuLinearAttentionKernels,
  nearestCodeKernel,
  rmsNormKernel,
  rmsNormGradKernel,
  ...webgpuSiluKernels,
];
