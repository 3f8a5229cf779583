#!/usr/bin/env bash
# Sets msdi up on a fresh Debian machine: system packages (libtorch-dev unless LIBTORCH
# points at another libtorch, a C++ toolchain), npm packages, the native addon and the
# TypeScript build. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
if [ -z "${LIBTORCH:-}" ] && ! dpkg -s libtorch-dev >/dev/null 2>&1; then need_apt+=(libtorch-dev); fi
# gloo's headers, which c10d's ProcessGroupGloo.hpp includes: without them the addon is built
# without data-parallel training (msdi train --nproc), and everything else works.
if [ -z "${LIBTORCH:-}" ] && ! dpkg -s libgloo-dev >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    need_apt+=(libgloo-dev)
  else
    echo "msdi setup: libgloo-dev is not installed: building without data-parallel training (sudo apt-get install libgloo-dev adds it)" >&2
  fi
fi
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "msdi setup: missing system packages: ${need_apt[*]}; run this script as root or: sudo apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
  echo "msdi setup: installing ${need_apt[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "msdi setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The addon: rebuilt when its source, the build file, the libtorch location or what it offers
# (c10d, NCCL) changed.
stamp=build/.msdi-native-stamp
want="$(sha1sum native/*.cc native/*.h binding.gyp scripts/libtorch-config.mjs | sha1sum | cut -c1-40) ${LIBTORCH:-debian} $(node scripts/libtorch-config.mjs defines)"
if [ ! -f build/Release/msdi_native.node ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "msdi setup: building the native addon against libtorch ($(node scripts/libtorch-config.mjs describe))"
  npm run --silent build:native
  echo "$want" > "$stamp"
fi

echo "msdi setup: compiling TypeScript"
npm run --silent build:ts
echo "msdi setup: bundling the web page (dist/web)"
npm run --silent build:web
echo "msdi setup: done"
