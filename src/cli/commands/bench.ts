/**
 * msdi bench: our engine against PyTorch eager on this machine, in the same run and with the
 * same thread count. Speeds are reported as ratios: machines here are noisy.
 * PyTorch comes from Debian's python3-torch, installed here when absent (as root).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, tidy, F, inferenceMode, getNumThreads, setNumThreads, libtorchVersion } from '../../engine/index.js';
import { parse, intOption } from '../args.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timed(fn: () => void, warmup: number, repeats: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(times);
}

// Debian's interpreter, where python3-torch installs (a python3 earlier on PATH may be another).
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

function hasTorch(): boolean {
  return spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

/** Installs Debian's python3-torch when missing (root only). */
export function ensureTorch(): void {
  if (hasTorch()) return;
  if (process.getuid?.() !== 0) throw new Error('PyTorch for the comparison is missing: run "apt-get install python3-torch" as root');
  console.error('installing python3-torch (Debian) for the comparison ...');
  execFileSync('apt-get', ['install', '-y', '-qq', 'python3-torch'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function torchBench(what: string, threads: number, repeats: number): Record<string, number | string> {
  const out = execFileSync(PYTHON, [join(ROOT, 'scripts', 'bench_torch.py'), what, '--threads', String(threads), '--repeats', String(repeats)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

export function convBench(repeats: number) {
  return tidy(() => {
    const x = Tensor.randn([1, 64, 128, 128]);
    const w = Tensor.randn([64, 64, 3, 3]).requiresGrad_(true);
    const xg = x.clone().requiresGrad_(true);
    const forward = timed(() => inferenceMode(() => tidy(() => { F.conv2d(x, w, null, { padding: 1 }); })), 3, repeats);
    const forwardBackward = timed(() => tidy(() => {
      F.conv2d(xg, w, null, { padding: 1 }).sum().backward();
      w.zeroGrad();
      xg.zeroGrad();
    }), 2, repeats);
    return { forward, forwardBackward };
  });
}

/** Median ms of the PyTorch reference network (scripts/torch_reference.py). */
function torchModel(what: 'forward' | 'train', args: string[]): number {
  const out = execFileSync(PYTHON, [join(ROOT, 'scripts', 'torch_reference.py'), what, ...args], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!).median_ms;
}

/** Whole networks, ours vs PyTorch eager: ratio = ours_ms / torch_ms (lower is better). */
async function modelBench(threads: number, repeats: number) {
  const { forwardBench, trainBench } = await import('./bench-models.js');
  const t = ['--threads', String(threads), '--repeats', String(repeats)];
  const fOurs = forwardBench({ wf: 64, size: 256, repeats });
  const fTorch = torchModel('forward', ['--wf', '64', '--size', '256', ...t]);
  const tOurs = trainBench({ wf: 16, batch: 4, size: 256, repeats });
  const tTorch = torchModel('train', ['--wf', '16', '--batch', '4', '--size', '256', ...t]);
  return {
    forward: { ours_ms: fOurs, torch_ms: fTorch, ratio: fOurs / fTorch },
    train: { ours_ms: tOurs, torch_ms: tTorch, ratio: tOurs / tTorch },
  };
}

export async function bench(argv: string[]): Promise<void> {
  const { values } = parse(argv, { json: { type: 'boolean' }, threads: { type: 'string' }, repeats: { type: 'string' }, models: { type: 'boolean' } }, 'bench');
  const threads = intOption(values.threads, '--threads', getNumThreads());
  const repeats = intOption(values.repeats, '--repeats', 10);
  setNumThreads(threads);
  ensureTorch();
  // conv2d 3x3, 64 -> 64, 1 x 64 x 128 x 128: 2 * 64 * 64 * 9 * 128 * 128 FLOPs forward,
  // twice that again backward (input and weight gradients).
  const flops = 2 * 64 * 64 * 9 * 128 * 128;
  const ours = convBench(repeats);
  const torch = torchBench('conv', threads, repeats);
  const gf = (f: number, s: number) => f / s / 1e9;
  const conv = {
    forward: { ours_gflops: gf(flops, ours.forward), torch_gflops: gf(flops, torch.forward_s as number) },
    forward_backward: { ours_gflops: gf(3 * flops, ours.forwardBackward), torch_gflops: gf(3 * flops, torch.forward_backward_s as number) },
  };
  const result = {
    machine: { threads, libtorch: libtorchVersion(), torch: torch.torch },
    conv2d_3x3_64_1x64x128x128: {
      forward: { ...conv.forward, ratio: conv.forward.ours_gflops / conv.forward.torch_gflops },
      forward_backward: { ...conv.forward_backward, ratio: conv.forward_backward.ours_gflops / conv.forward_backward.torch_gflops },
    },
  };
  const models = values.models ? await modelBench(threads, Math.min(repeats, 3)) : undefined;
  if (models) Object.assign(result, models);
  if (!values.json) {
    if (models) {
      console.log(`msdi_net paper config forward 1x3x256x256: ours ${models.forward.ours_ms.toFixed(0)} ms, PyTorch ${models.forward.torch_ms.toFixed(0)} ms, ratio ${models.forward.ratio.toFixed(2)} (lower is better)`);
      console.log(`stage-2 training step (wf 16, batch 4, 256): ours ${models.train.ours_ms.toFixed(0)} ms, PyTorch ${models.train.torch_ms.toFixed(0)} ms, ratio ${models.train.ratio.toFixed(2)}`);
    }
    const c = result.conv2d_3x3_64_1x64x128x128;
    console.log(`conv2d 3x3 64->64 on 1x64x128x128, ${threads} threads, libtorch ${result.machine.libtorch} vs PyTorch ${result.machine.torch}`);
    console.log(`  forward           ours ${c.forward.ours_gflops.toFixed(1)} GFLOP/s   PyTorch ${c.forward.torch_gflops.toFixed(1)} GFLOP/s   ratio ${c.forward.ratio.toFixed(2)}x`);
    console.log(`  forward+backward  ours ${c.forward_backward.ours_gflops.toFixed(1)} GFLOP/s   PyTorch ${c.forward_backward.torch_gflops.toFixed(1)} GFLOP/s   ratio ${c.forward_backward.ratio.toFixed(2)}x`);
  }
  console.log(JSON.stringify(result));
}
