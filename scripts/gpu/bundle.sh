#!/usr/bin/env bash
# Packs what scripts/gpu/session.sh needs on a GPU machine that has PyTorch but no Node, no npm
# packages and no internet, into BUNDLE (default .gpu, which git ignores via .git/info/exclude):
#   node.xz         this machine's node binary (a self-contained x86-64 build), xz-compressed
#   nm.tar.xz       the npm packages msdi runs on: sharp with its libvips, node-addon-api
#   include/        node's N-API headers (to build the addon without node-gyp)
#   photos/         the training photos at the synthesiser's working size (short side 1024),
#                   as WebP (quality 90) so that everything fits the 64 MiB a call may carry
#   rep.safetensors the representation (net_prior, prior_upsampling) of a stage-1 model, float16
# Usage: bash scripts/gpu/bundle.sh STAGE1 [BUNDLE]   (STAGE1: MSDI2E weights or a stage-1 checkpoint)
# Then carry BUNDLE and dist/ to the GPU machine and run scripts/gpu/session.sh there.
set -euo pipefail
cd "$(dirname "$0")/../.."
STAGE1=${1:?usage: bundle.sh STAGE1 [BUNDLE]}
B=${2:-.gpu}
mkdir -p "$B/include"
case $B in
  /*) ;;  # outside the working tree
  *) exclude=$(git rev-parse --git-path info/exclude)
     mkdir -p "$(dirname "$exclude")"
     grep -qx "/$B/" "$exclude" 2>/dev/null || echo "/$B/" >> "$exclude" ;;
esac

node=$(command -v node)
[ "$(ldd "$node" | grep -c libnode)" = 0 ] || { echo "bundle: $node links libnode (a distribution build); use a self-contained node" >&2; exit 1; }
[ -s "$B/node.xz" ] || xz -T0 -9 -c "$node" > "$B/node.xz"
prefix=$(dirname "$(dirname "$(readlink -f "$node")")")
cp "$prefix"/include/node/{node_api.h,node_api_types.h,js_native_api.h,js_native_api_types.h} "$B/include/"
tar -cJf "$B/nm.tar.xz" node_modules/sharp node_modules/@img node_modules/detect-libc node_modules/semver node_modules/node-addon-api
bash scripts/get-photos.sh # idempotent: picks up changes of scripts/photo-split.txt
node scripts/gpu/shrink-photos.mjs data/photos/train "$B/photos"
node --import tsx scripts/gpu/representation.mts "$STAGE1" "$B/rep.safetensors"
npm run --silent build:ts
du -sh "$B" dist
echo "bundle: $B ready; the working tree, $B and dist/ must stay under 64 MiB together"
