/**
 * msdi bench: our engine against PyTorch eager on this machine, in the same run and with the
 * same thread count. Speeds are reported as ratios: machines here are noisy.
 * PyTorch comes from Debian's python3-torch, installed here when absent (as root).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, tidy, F, inferenceMode, getNumThreads, setNumThreads, libtorchVersion, profileOps, type Amp } from '../../engine/index.js';
import { parse, intOption, UsageError } from '../args.js';
import { SPADE_HIDDEN } from '../../models/spade.js';
import { ampBench, forwardBench, forwardStep, medianRuns, timedStep, trainBench } from './bench-models.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Median seconds of `repeats` calls of `fn` after `warmup` untimed ones. */
function timed(fn: () => void, warmup: number, repeats: number): number {
  return medianRuns(timedStep(fn, () => {}), warmup, repeats) / 1000;
}

// Debian's interpreter, where python3-torch installs (a python3 earlier on PATH may be another).
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

function torchVersion(): string {
  return execFileSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
}

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

/**
 * `msdi deblur` on a 1920x1080 PNG in a child process (so that its peak resident memory is
 * its own): decode, tiles, encode. The bundled weights, or `weights`; without either, random
 * weights of the bundled architecture (same speed).
 */
async function deblurBench(threads: number, weights: string | undefined) {
  const sharp = (await import('sharp')).default;
  const { loadModel, DEFAULT_WEIGHTS } = await import('../../eval/model.js');
  const dir = mkdtempSync(join(tmpdir(), 'msdi-bench-'));
  try {
    const input = join(dir, 'in.png');
    // A smooth pattern plus noise: content does not change the work, a real-looking size does.
    const w = 1920, h = 1080;
    const px = Buffer.alloc(w * h * 3);
    let s = 12345;
    for (let i = 0; i < px.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const p = Math.floor(i / 3);
      px[i] = (128 + 80 * Math.sin((p % w) / 37 + (i % 3)) * Math.cos(Math.floor(p / w) / 23) + (s >>> 28)) & 255;
    }
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(input);
    let source = weights ?? (existsSync(DEFAULT_WEIGHTS.deblur) ? DEFAULT_WEIGHTS.deblur : undefined);
    let note = source === weights ? 'given weights' : 'bundled weights';
    if (!source) {
      const { buildModel, CONFIGS } = await import('../../models/registry.js');
      const { saveWeights } = await import('../../nn/state-dict.js');
      const net = buildModel({ arch: 'msdi2_net', wf: CONFIGS.tiny.wf, ndf: CONFIGS.tiny.wf, degradation: true, reblur: true });
      source = join(dir, 'random.safetensors');
      saveWeights(net, source);
      net.dispose();
      note = `random weights (wf ${CONFIGS.tiny.wf}): the bundled weights are missing`;
    }
    const probe = loadModel(source); // for its architecture only (the child process deblurs)
    const spec = probe.spec;
    probe.dispose();
    const run = (amp: Amp) => {
      const r = spawnSync(process.execPath, [process.argv[1], 'bench', '--deblur-child', input, join(dir, 'out.png'), source, amp,
        '--threads', String(threads)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (r.status !== 0) throw new Error(`deblur bench: the child process failed (exit ${r.status ?? r.signal})`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number; max_rss_mb: number };
    };
    const child = run('off');
    const bf16 = run('bf16');
    return { size: `${w}x${h}`, model: `${spec.arch} wf ${spec.wf}${(spec.spadeHidden ?? SPADE_HIDDEN) !== SPADE_HIDDEN ? ` (SPADE ${spec.spadeHidden})` : ''}`, weights: note, ms: child.ms,
      megapixels_per_s: (w * h) / 1e6 / (child.ms / 1e3), peak_rss_mb: child.max_rss_mb, bf16_ms: bf16.ms, bf16_ratio: bf16.ms / child.ms };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The child side of deblurBench: one `msdi deblur`, then its time and peak memory as JSON. */
async function deblurChild(input: string, output: string, weights: string, amp: string): Promise<void> {
  const { deblurCommand } = await import('./deblur.js');
  const t0 = process.hrtime.bigint();
  await deblurCommand([input, '-o', output, '--weights', weights, '--amp', amp, '--force']);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(JSON.stringify({ ms, max_rss_mb: peakResidentMb() }));
}

/**
 * This process's peak resident memory. Linux's VmHWM belongs to the current program image;
 * getrusage's maxrss would also count the parent's memory at fork time.
 */
function peakResidentMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}

const HELP = `usage: msdi bench [--json] [--threads N] [--repeats N] [--weights W] [--only forward,train,amp,loader,deblur,ops]
                  [--profile trace.json]

  forward  msdi_net, paper config, 1x3x256x256 inference: ours vs PyTorch eager (ratio, lower is better)
  train    one stage-2 step (wf 16, batch 4, 256 crops): ours vs PyTorch eager
  amp      one stage-2 step as msdi trains (wf 8, SPADE 32, batch 4, 256): bf16 autocast vs float32
  loader   training batches (32 crops of 256 from 320x320 PNG pairs): decoding files vs the cache
  deblur   msdi deblur on a 1920x1080 PNG: megapixels per second, peak resident memory; with --amp bf16
  ops      conv2d 3x3 64->64 on 1x64x128x128, forward and forward+backward GFLOP/s
PyTorch is Debian's python3-torch (installed when absent), run with the same thread count.
--json prints one JSON object on the last line; --profile adds per-op times of one more forward
(and keeps its chrome://tracing file).`;

export async function bench(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    json: { type: 'boolean' }, threads: { type: 'string' }, repeats: { type: 'string' }, only: { type: 'string' },
    weights: { type: 'string' }, profile: { type: 'string' }, 'deblur-child': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, 'bench');
  if (values.help) return void console.log(HELP);
  const threads = intOption(values.threads, '--threads', getNumThreads());
  setNumThreads(threads);
  if (values['deblur-child']) return deblurChild(positionals[0], positionals[1], positionals[2], positionals[3]);
  const repeats = intOption(values.repeats, '--repeats', 3);
  const all = ['forward', 'train', 'amp', 'loader', 'deblur', 'ops'];
  const only: string[] = values.only ? values.only.split(',') : ['forward', 'train', 'amp', 'loader', 'deblur'];
  for (const o of only) if (!all.includes(o)) throw new UsageError(`--only: expected some of ${all.join(',')}, got "${o}"`);
  const needsTorch = only.some((o) => o === 'forward' || o === 'train' || o === 'ops');
  if (needsTorch) ensureTorch();

  const result: Record<string, unknown> = { machine: { threads, cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', libtorch: libtorchVersion() } };
  const say = (line: string) => { if (!values.json) console.log(line); };
  if (only.includes('forward') || only.includes('train')) {
    const t = ['--threads', String(threads), '--repeats', String(repeats)];
    if (only.includes('forward')) {
      const ours = forwardBench({ wf: 64, size: 256, repeats });
      const torch = torchModel('forward', ['--wf', '64', '--size', '256', ...t]);
      result.forward = { ours_ms: ours, torch_ms: torch, ratio: ours / torch };
      say(`forward  msdi_net paper config 1x3x256x256: ours ${ours.toFixed(0)} ms, PyTorch ${torch.toFixed(0)} ms, ratio ${(ours / torch).toFixed(2)} (lower is better)`);
      if (values.profile) {
        const step = forwardStep({ wf: 64, size: 256 });
        step.run();
        const ops = profileOps(() => step.run(), values.profile);
        step.dispose();
        result.forward_profile = ops.slice(0, 12);
        say(`         one more forward, profiled (${values.profile}):`);
        for (const o of ops.slice(0, 8)) say(`           ${o.op.padEnd(32)} ${o.self_ms.toFixed(0).padStart(6)} ms ${String(o.calls).padStart(5)} calls`);
      }
    }
    if (only.includes('train')) {
      const ours = trainBench({ wf: 16, batch: 4, size: 256, repeats });
      const torch = torchModel('train', ['--wf', '16', '--batch', '4', '--size', '256', ...t]);
      result.train = { ours_ms: ours, torch_ms: torch, ratio: ours / torch };
      say(`train    stage-2 step wf 16, batch 4, 256: ours ${ours.toFixed(0)} ms, PyTorch ${torch.toFixed(0)} ms, ratio ${(ours / torch).toFixed(2)}`);
    }
  }
  if (only.includes('amp')) {
    const r = ampBench({ wf: 8, spadeHidden: 32, batch: 4, size: 256, repeats });
    result.amp = { ...r, ratio: r.bf16_ms / r.float32_ms };
    say(`amp      stage-2 step wf 8, SPADE 32, batch 4, 256: float32 ${r.float32_ms.toFixed(0)} ms, bf16 autocast ${r.bf16_ms.toFixed(0)} ms, ratio ${(r.bf16_ms / r.float32_ms).toFixed(2)} (lower is better)`);
  }
  if (only.includes('loader')) {
    const { loaderBench } = await import('./bench-loader.js');
    const r = await loaderBench({ batch: 32, crop: 256, workers: Math.min(4, cpus().length) });
    result.loader = { ...r, ratio: r.cached_ms / r.files_ms };
    say(`loader   batch of 32 x 256 crops, ${r.workers} decode workers: from files ${r.files_ms.toFixed(0)} ms, from the cache ${r.cached_ms.toFixed(0)} ms, ratio ${(r.cached_ms / r.files_ms).toFixed(2)} (lower is better)`);
  }
  if (only.includes('deblur')) {
    const d = await deblurBench(threads, values.weights);
    result.deblur = d;
    say(`deblur   ${d.size} end to end (${d.model}, ${d.weights}): ${(d.ms / 1e3).toFixed(1)} s, ${d.megapixels_per_s.toFixed(3)} MP/s, peak RSS ${d.peak_rss_mb.toFixed(0)} MB; ` +
      `--amp bf16 ${(d.bf16_ms / 1e3).toFixed(1)} s, ratio ${d.bf16_ratio.toFixed(2)}`);
  }
  if (only.includes('ops')) {
    // conv2d 3x3, 64 -> 64, 1 x 64 x 128 x 128: 2 * 64 * 64 * 9 * 128 * 128 FLOPs forward,
    // twice that again backward (input and weight gradients).
    const flops = 2 * 64 * 64 * 9 * 128 * 128;
    const ours = convBench(10);
    const torch = torchBench('conv', threads, 10);
    const gf = (f: number, sec: number) => f / sec / 1e9;
    const fwd = { ours_gflops: gf(flops, ours.forward), torch_gflops: gf(flops, torch.forward_s as number) };
    const fb = { ours_gflops: gf(3 * flops, ours.forwardBackward), torch_gflops: gf(3 * flops, torch.forward_backward_s as number) };
    result.conv2d_3x3_64_1x64x128x128 = { forward: fwd, forward_backward: fb };
    say(`ops      conv2d 3x3 64->64 1x64x128x128: forward ours ${fwd.ours_gflops.toFixed(1)} / PyTorch ${fwd.torch_gflops.toFixed(1)} GFLOP/s; ` +
      `forward+backward ${fb.ours_gflops.toFixed(1)} / ${fb.torch_gflops.toFixed(1)} GFLOP/s`);
  }
  (result.machine as Record<string, unknown>).torch = needsTorch ? torchVersion() : undefined;
  console.log(JSON.stringify(result));
}
