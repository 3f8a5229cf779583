#!/usr/bin/env node
// Tells node-gyp where libtorch is: the LIBTORCH folder (include/ and lib/, as other
// libtorch bindings expect) or else Debian's libtorch-dev. Usage: libtorch-config.mjs include|cflags|defines|libs|describe
//
// Data-parallel training (native/distributed.cc) is compiled in when this libtorch ships c10d's
// Gloo process group and gloo's own headers are there too (Debian: libgloo-dev): defines
// MSDI_HAVE_C10D (and USE_C10D_GLOO, which c10d's headers read). A CUDA libtorch with
// ProcessGroupNCCL.hpp, nccl.h and the CUDA runtime headers also gets MSDI_HAVE_NCCL.
// MSDI_C10D=0 builds without either.
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

/** The folder of `dirs` holding `file`, or null. */
function findIn(dirs, file) {
  return dirs.find((d) => existsSync(join(d, file))) ?? null;
}

function distributed(cfg) {
  const none = { c10d: false, nccl: false, defines: [], includes: [] };
  if (process.env.MSDI_C10D === '0') return none;
  const dirs = [...cfg.includes, '/usr/include'];
  if (!findIn(dirs, 'torch/csrc/distributed/c10d/ProcessGroupGloo.hpp')) return none;
  const gloo = findIn(dirs, 'gloo/context.h');
  if (!gloo) return none;
  const out = { c10d: true, nccl: false, defines: ['MSDI_HAVE_C10D', 'USE_C10D_GLOO'], includes: [gloo] };
  if (cfg.cuda && findIn(dirs, 'torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp')) {
    const cudaDirs = [...dirs, ...[process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].filter(Boolean).map((d) => join(d, 'include'))];
    const nccl = findIn(cudaDirs, 'nccl.h');
    const cudart = findIn(cudaDirs, 'cuda_runtime_api.h');
    if (nccl && cudart) {
      out.nccl = true;
      out.defines.push('MSDI_HAVE_NCCL', 'USE_C10D_NCCL');
      out.includes.push(nccl, cudart);
    }
  }
  out.includes = [...new Set(out.includes)].filter((d) => d !== '/usr/include');
  return out;
}

const what = process.argv[2] ?? 'describe';
let cfg;
try {
  cfg = locate();
} catch (e) {
  console.error(`msdi: ${e.message}`);
  process.exit(1);
}
const dist = distributed(cfg);
if (what === 'include') console.log([...cfg.includes, ...dist.includes].join(' '));
else if (what === 'defines') console.log(dist.defines.join(' '));
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
} else console.log(JSON.stringify({ ...cfg, c10d: dist.c10d, nccl: dist.nccl }));
