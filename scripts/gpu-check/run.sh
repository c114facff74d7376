#!/usr/bin/env bash
# Runs on a GPU box from the folder `npm run gpu-check:pack` made (no npm, no registry there):
# every GPU benchmark of the project beside the PyTorch baseline, in one run on one machine.
#
#   bash run.sh OUT [train|models|encode|all] [--quick]
#
# OUT receives each benchmark's JSON and a log; `npm run gpu-check:collect -- OUT` on the
# development machine turns them into bench/results/*.gpu.json with the ratios.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: run.sh OUT [train|models|encode|all] [--quick]}
what=${2:-all}
quick=${3:-}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1

# Node and Dawn travel compressed (the tree a GPU box receives is size-limited).
[ -x "$here/node" ] || xz -dc "$here/node.xz" >"$here/node" && chmod +x "$here/node"
dawn="$here/node_modules/webgpu/dist/linux-x64/dawn.node"
[ -f "$dawn" ] || xz -dc "$here/dawn.node.xz" >"$dawn"
for packed in "$here"/node_modules/@img/sharp-libvips-linux-x64/lib/*.xz; do
  [ -f "${packed%.xz}" ] || xz -dc "$packed" >"${packed%.xz}"
done
# Dawn needs the Vulkan loader; a bare box may lack it (the pack carries Debian's).
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for deb in "$here"/debs/*.deb; do dpkg -x "$deb" /; done
  ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$(ls /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json 2>/dev/null | head -1)}
[ -n "$VK_DRIVER_FILES" ] || unset VK_DRIVER_FILES

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$out/gpu.txt" 2>&1
python3 -c 'import torch; print(torch.__version__, torch.version.cuda)' >>"$out/gpu.txt" 2>&1

baseline() { python3 "$here/baseline/revq_torch.py" "$@"; }
steps=20
[ "$quick" = --quick ] && steps=8

if [ "$what" = train ] || [ "$what" = all ]; then
  "$here/node" "$here/bench/train.mjs" webgpu $quick
  cp "$here/results/train.json" "$out/train.json"
  for config in 512x16384 256x65536 256x262144; do
    baseline train-step --config "$config" --steps $steps --out "$out/torch-train-$config.json"
  done
fi
if [ "$what" = models ] || [ "$what" = all ]; then
  "$here/node" "$here/bench/models.mjs" webgpu $quick
  cp "$here/results/models.json" "$out/models.json"
  batches="1 8 32 64"
  [ "$quick" = --quick ] && batches="1 32"
  for batch in $batches; do
    baseline dcae --side 256 --batch "$batch" --dtype fp32 --steps $steps --out "$out/torch-dcae-fp32-$batch.json"
  done
  baseline dcae --side 256 --batch 32 --dtype bf16 --steps $steps --out "$out/torch-dcae-bf16-32.json"
fi
if [ "$what" = encode ] || [ "$what" = all ]; then
  batches=8
  [ "$quick" = --quick ] && batches=3
  "$here/node" "$here/bench/encode-pipeline.mjs" webgpu --side 256 --batch 32 --batches $batches
  cp "$here/results/encode-pipeline.webgpu.json" "$out/encode-pipeline.json"
fi
ls -la "$out"
