# Sourced by the scripts in scripts/gpu/ on a lent GPU machine (CUDA PyTorch, no Node, no
# internet), from the repository root: their common settings and log, then gpu_node and
# gpu_addon put Node and the npm packages of the bundle (scripts/gpu/bundle.sh) in place and
# build the addon against the libtorch inside that PyTorch.
# Env: OUT (required), BUNDLE (.gpu), DEVICE (cuda; cpu rehearses on a CPU machine: no build
# unless BUILD=1), WORK (the work folder, /tmp/msdi-gpu; a warm machine keeps it between calls).
set -uo pipefail
t0=$(date +%s)
B=${BUNDLE:-.gpu}
DEVICE=${DEVICE:-cuda}
: "${OUT:?set OUT to the folder for results}"
W=${WORK:-/tmp/msdi-gpu}
mkdir -p "$W" "$OUT"
log() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
addon_info() { node -e "import('./dist/engine/index.js').then(e => console.log('libtorch', e.libtorchVersion(), 'cuda', e.cudaAvailable()))"; }

# gpu_node: Node on PATH and node_modules/ unpacked
gpu_node() {
  if ! command -v node >/dev/null; then
    mkdir -p "$W/bin"
    xz -dc "$B/node.xz" > "$W/bin/node" && chmod +x "$W/bin/node" && export PATH="$W/bin:$PATH"
  fi
  [ -d node_modules/sharp ] || tar -xJf "$B/nm.tar.xz"
  log "node $(node -v)"
}

# gpu_addon: build/Release/msdi_native.node (no node-gyp: plain g++ with the flags of
# scripts/libtorch-config.mjs)
gpu_addon() {
  if [ "$DEVICE" != cpu ] || [ "${BUILD:-0}" = 1 ]; then
    if [ "$DEVICE" != cpu ]; then
      LIBTORCH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
      export LIBTORCH MSDI_C10D=0
      MSDI_CXX11_ABI=$(python3 -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))'); export MSDI_CXX11_ABI
    fi
    mkdir -p build/Release
    # A warm machine keeps build/ between calls: the addon of an earlier call is used again when
    # it was built from the same sources against the same libtorch (about 50 s saved).
    local stamp
    stamp=$(cat native/*.cc native/*.h scripts/libtorch-config.mjs | sha256sum | cut -c1-16)-${LIBTORCH:-debian}-$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null)
    if [ -f build/Release/msdi_native.node ] && [ "$(cat build/Release/gpu-stamp 2>/dev/null)" = "$stamp" ]; then
      log "addon kept from an earlier call: $(addon_info)"
      return 0
    fi
    rm -f build/Release/gpu-stamp
    local incs defs
    incs=$(for d in $(node scripts/libtorch-config.mjs include); do printf -- '-I%s ' "$d"; done)
    defs=$(for d in $(node scripts/libtorch-config.mjs defines); do printf -- '-D%s ' "$d"; done)
    # shellcheck disable=SC2046,SC2086
    g++ -std=c++17 -O2 -fPIC -shared -fexceptions -frtti -Wno-unused-parameter -DNAPI_CPP_EXCEPTIONS -DNAPI_VERSION=8 \
      -DMSDI_NO_PROFILER $(node scripts/libtorch-config.mjs cflags) $defs \
      -I"$B/include" -Inode_modules/node-addon-api $incs native/msdi.cc native/distributed.cc \
      -o build/Release/msdi_native.node $(node scripts/libtorch-config.mjs libs) || { log "addon build failed"; return 1; }
    echo "$stamp" > build/Release/gpu-stamp
  fi
  log "addon built: $(addon_info)"
}
