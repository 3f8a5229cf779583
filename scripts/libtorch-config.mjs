#!/usr/bin/env node
// Tells node-gyp where libtorch is: the LIBTORCH folder (include/ and lib/, as other
// libtorch bindings expect) or else Debian's libtorch-dev. Usage: libtorch-config.mjs include|cflags|libs|describe
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function locate() {
  const root = process.env.LIBTORCH;
  if (root) {
    const inc = join(root, 'include');
    const lib = join(root, 'lib');
    if (!existsSync(join(inc, 'ATen', 'ATen.h'))) {
      throw new Error(`LIBTORCH=${root}: expected ${inc}/ATen/ATen.h (a libtorch folder with include/ and lib/)`);
    }
    // Pre-cxx11-ABI builds (some pip wheels) say so in their cmake config.
    let abi = 1;
    for (const f of [join(root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake')]) {
      if (existsSync(f) && /_GLIBCXX_USE_CXX11_ABI=0/.test(readFileSync(f, 'utf8'))) abi = 0;
    }
    if (process.env.MSDI_CXX11_ABI) abi = Number(process.env.MSDI_CXX11_ABI);
    const cuda = existsSync(join(lib, 'libtorch_cuda.so'));
    return { kind: 'LIBTORCH', includes: [inc, join(inc, 'torch', 'csrc', 'api', 'include')], libdir: lib, abi, cuda };
  }
  const debInc = '/usr/include/torch/csrc/api/include';
  if (existsSync('/usr/include/ATen/ATen.h') && existsSync(debInc)) {
    return { kind: 'debian', includes: [debInc], libdir: null, abi: 1, cuda: false };
  }
  throw new Error('libtorch not found: install Debian\'s libtorch-dev (apt-get install libtorch-dev) or set LIBTORCH to a libtorch folder');
}

const what = process.argv[2] ?? 'describe';
let cfg;
try {
  cfg = locate();
} catch (e) {
  console.error(`msdi: ${e.message}`);
  process.exit(1);
}
if (what === 'include') console.log(cfg.includes.join(' '));
else if (what === 'cflags') console.log(`-D_GLIBCXX_USE_CXX11_ABI=${cfg.abi}`);
else if (what === 'libs') {
  const libs = [];
  if (cfg.libdir) libs.push(`-L${cfg.libdir}`, `-Wl,-rpath,${cfg.libdir}`);
  // --no-as-needed keeps libtorch_cuda linked although no symbol of it is named: its
  // static initialisers register the CUDA kernels.
  libs.push('-Wl,--no-as-needed', '-ltorch', '-ltorch_cpu', '-lc10');
  if (cfg.cuda) libs.push('-ltorch_cuda', '-lc10_cuda');
  libs.push('-Wl,--as-needed');
  console.log(libs.join(' '));
} else console.log(JSON.stringify(cfg));
