/**
 * Data-parallel training (c10d Gloo, CPU): `msdi train --nproc 2` has, at every step, the loss and
 * gradient norm of one process trained on the same global batch, and ends with the same network
 * (see compareRuns for why the weights agree to rounding amplified by Adam, not bit for bit);
 * stopped and resumed, 2 ranks end bit-for-bit where 2 uninterrupted ranks end; stage 1
 * (discriminator, BatchNorm) runs with two ranks kept in step; a rank that dies stops the run with
 * a message naming it and a non-zero exit.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthFolder } from '../src/data/synth/index.js';
import { createImage, writeImageRGB } from '../src/data/image-io.js';
import { listCheckpoints } from '../src/train/checkpoint.js';
import { readSafetensors, type RawTensor } from '../src/engine/io/index.js';
import { RunLog } from '../src/train/log.js';
import { availableBackends } from '../src/train/distributed.js';
import { Tensor, tidy, noGrad } from '../src/engine/index.js';
import { MsdiNet } from '../src/models/msdi-net.js';
import { loadStateDict } from '../src/nn/state-dict.js';
import { PRESETS } from '../src/train/config.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// The CLI from source (tsx), so the test does not depend on a fresh `npm run build:ts`.
const CLI = [process.execPath, '--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
const skip = availableBackends().includes('gloo') ? false : 'the addon was built without c10d (gloo)';
let root: string;
let data: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'msdi-dist-'));
  const img = createImage(160, 128);
  for (let i = 0; i < img.data.length; i++) {
    const x = Math.floor(i / 3) % 160;
    const y = Math.floor(i / 480);
    img.data[i] = 0.2 + 0.6 * (((x >> 3) + (y >> 3)) % 2) + 0.05 * Math.sin(x / 5 + (i % 3));
  }
  await writeImageRGB(join(root, 'photos', 'p.png'), img);
  data = join(root, 'pairs');
  await synthFolder({ from: join(root, 'photos'), out: data, count: 4, seed: 9, size: 48, photoShortSide: 128 });
});

after(() => { if (!process.env.KEEP) rmSync(root, { recursive: true, force: true }); });

interface Run { code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }

function msdi(args: string[], env: Record<string, string> = {}, onStart?: (c: ChildProcess) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(CLI[0]!, [...CLI.slice(1), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
    onStart?.(child);
  });
}

function config(name: string, o: Record<string, unknown>): string {
  const file = join(root, `${name}.json`);
  writeFileSync(file, JSON.stringify(o));
  return file;
}

function floats(t: RawTensor): Float64Array {
  if (t.dtype === 'F32') return Float64Array.from(new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)));
  if (t.dtype === 'F64') return new Float64Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
  throw new Error(`unexpected dtype ${t.dtype}`);
}

/** Largest |a - b| over the elements kept, relative to the tensor's largest |a|. */
function relDiff(a: RawTensor, b: RawTensor, keep?: boolean[]): number {
  const x = floats(a);
  const y = floats(b);
  assert.equal(x.length, y.length);
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < x.length; i++) {
    scale = Math.max(scale, Math.abs(x[i]!));
    if (!keep || keep[i]) diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
  }
  return diff / scale;
}

/**
 * Compares two stage-2 (no-degradation, wf 4) checkpoints made from the same data by different
 * float summation orders (one batch of 2 against two batches of 1): the image both networks
 * restore from one input, and the weights. Adam divides each update by the gradient's own RMS,
 * so where a gradient is tiny it turns rounding differences into visible weight differences: the
 * biases that a following instance norm cancels (true gradient zero) take steps of +-lr in a
 * random direction, and weights with small, cancelling gradients drift by a fraction of lr. One
 * process run with 1 and with 2 threads differs in the same way. So the weights compared are
 * those whose RMS gradient (from Adam's bias-corrected second moment in run A) is at least 1e-3;
 * the restored image covers the whole network.
 */
function compareRuns(fileA: string, fileB: string): { weights: number; worst: string; output: number } {
  const a = readSafetensors(fileA);
  const b = readSafetensors(fileB);
  assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
  const meta = JSON.parse(a.metadata.msdi!) as { stepsG: number[]; config: { betas: [number, number] } };
  const net = new MsdiNet({ wf: PRESETS['test-stage2'].wf, version: 2, degradation: false });
  try {
    let weights = 0;
    let worst = '';
    let compared = 0;
    net.namedParameters().filter(([, p]) => p.requiresGrad).forEach(([n], i) => {
      const sq = a.tensors.get(`opt.g.${i}.exp_avg_sq`);
      if (!sq) return; // never had a gradient (a module the forward does not use)
      const correction = 1 - meta.config.betas[1] ** meta.stepsG[i]!;
      const keep = Array.from(floats(sq), (v) => Math.sqrt(v / correction) >= 1e-3);
      compared += keep.filter(Boolean).length;
      const d = relDiff(a.tensors.get(`g.${n}`)!, b.tensors.get(`g.${n}`)!, keep);
      if (d > weights) [weights, worst] = [d, n];
    });
    assert.ok(compared > 1000, `only ${compared} weights with a sizeable gradient`);
    const restore = (file: string): Float32Array => {
      const g = new Map([...readSafetensors(file).tensors].filter(([k]) => k.startsWith('g.')).map(([k, v]) => [k.slice(2), v]));
      loadStateDict(net, g, { source: file });
      net.eval();
      return tidy(() => noGrad(() => {
        const x = Tensor.fromArray(Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => 0.5 + 0.4 * Math.sin(i / 7)), [1, 3, 32, 32]);
        return net.forward(x).out2.toFloat32();
      }));
    };
    const ya = restore(fileA);
    const yb = restore(fileB);
    return { weights, worst, output: ya.reduce((m, v, i) => Math.max(m, Math.abs(v - yb[i]!)), 0) };
  } finally {
    net.dispose();
  }
}

const trainLog = (dir: string) => new RunLog(join(dir, 'log.jsonl')).read().filter((r) => r.kind === 'train');
const lastCheckpoint = (dir: string) => listCheckpoints(dir).pop()!.file;

test('two ranks train like one process on the same global batch, and resume exactly', { skip }, async () => {
  // clip far above the gradient norm: nothing is clipped, but the norm of the averaged gradient is logged
  const cfg = config('s2', { preset: 'test-stage2', iters: 4, batch: 2, ckptEvery: 2, logEvery: 2, valEvery: 1000, clip: 1e9 });
  const common = ['train', 'stage2', '--config', cfg, '--ablate', 'no-degradation', '--data', data, '--quiet'];
  const [one, two, parts] = [join(root, 'one'), join(root, 'two'), join(root, 'parts')];
  // the two ranks read their losses back lazily (as on a GPU): two steps a read, averaged over the ranks
  const lazy = { MSDI_LAZY_LOSSES: '1' };
  const runs = await Promise.all([
    msdi([...common, '--out', one], { MSDI_THREADS: '1' }),
    msdi([...common, '--out', two, '--nproc', '2'], lazy),
    msdi([...common, '--out', parts, '--nproc', '2', '--stop-after', '2'], lazy),
  ]);
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(runs[1]!.stdout.trim()).world, 2, 'rank 0 alone reports the result');
  assert.deepEqual(listCheckpoints(parts).map((c) => c.step), [2]);
  // rank 0 reads the checkpoint and broadcasts the weights, the Adam moments and the step
  const resumed = await msdi([...common, '--out', parts, '--nproc', '2', '--resume'], lazy);
  assert.equal(resumed.code, 0, resumed.stderr);
  const [T, P] = [readSafetensors(lastCheckpoint(two)).tensors, readSafetensors(lastCheckpoint(parts)).tensors];
  assert.deepEqual([...P.keys()].sort(), [...T.keys()].sort());
  for (const [k, v] of T) assert.ok(Buffer.from(v.data).equals(Buffer.from(P.get(k)!.data)), `${k} differs after --resume`);

  // Against one process: at every log step the loss of the whole global batch and the norm of
  // the averaged gradient (a sum instead of a mean would double it), then the trained networks.
  const [la, lb] = [trainLog(one), trainLog(two)];
  assert.deepEqual(lb.map((r) => r.step), [2, 4]);
  for (const key of ['l_psnr', 'grad_norm']) {
    lb.forEach((r, i) => {
      const [x, y] = [la[i]![key] as number, r[key] as number];
      assert.ok(Math.abs(x - y) < 1e-5 * Math.abs(x), `step ${r.step}: ${key} ${y} with two ranks, ${x} with one process`);
    });
  }
  const cmp = compareRuns(lastCheckpoint(one), lastCheckpoint(two));
  if (process.env.MSDI_DEBUG) console.log(cmp);
  assert.ok(cmp.output < 1e-5, `the restored images differ by ${cmp.output}`);
  // Adam divides each gradient by its own running size, so the rounding of a different reduction
  // order shows more in the weights than in the outputs: 3.4e-3 on a CPU without AVX-512 (outputs
  // 8e-6 apart), under 1e-3 on one with it. A gradient left out of the average would be O(1).
  assert.ok(cmp.weights < 1e-2, `${cmp.worst} differs by ${cmp.weights} (relative)`);
});

test('stage 1 with two ranks: discriminator and BatchNorm statistics stay in step, rank 0 validates', { skip }, async () => {
  const cfg = config('s1', { preset: 'test-stage1', iters: 2, batch: 2, ckptEvery: 1, valEvery: 2, logEvery: 1 });
  const out = join(root, 'stage1');
  const r = await msdi(['train', 'stage1', '--config', cfg, '--data', data, '--val', data, '--out', out, '--quiet', '--nproc', '2']);
  assert.equal(r.code, 0, r.stderr);
  const logs = new RunLog(join(out, 'log.jsonl')).read();
  assert.deepEqual(logs.filter((x) => x.kind === 'train').map((x) => x.step), [1, 2]);
  for (const rec of logs.filter((x) => x.kind === 'train')) assert.ok(Number.isFinite(rec.l_d as number) && Number.isFinite(rec.l_gan as number));
  assert.equal(logs.filter((x) => x.kind === 'val').length, 1);
  const ckpt = readSafetensors(listCheckpoints(out).pop()!.file).tensors;
  assert.ok([...ckpt.keys()].some((k) => k.startsWith('d.')) && [...ckpt.keys()].some((k) => k.endsWith('running_var')));
  assert.ok(existsSync(join(out, 'final.safetensors')));
});

test('a rank that dies stops the others; the launcher names it and exits non-zero', { skip }, async () => {
  const cfg = config('long', { preset: 'test-stage2', iters: 100000, batch: 2, ckptEvery: 100000, logEvery: 1, valEvery: 100000 });
  const out = join(root, 'killed');
  const log = new RunLog(join(out, 'log.jsonl'));
  let launcher: ChildProcess | undefined;
  const started = Date.now();
  const run = msdi(['train', 'stage2', '--config', cfg, '--ablate', 'no-degradation', '--data', data, '--out', out, '--quiet', '--nproc', '2'], {}, (c) => (launcher = c));
  // once the ranks are training, SIGKILL rank 1
  let victim = 0;
  let ended = false;
  void run.then(() => (ended = true));
  while (!victim && !ended && Date.now() - started < 60_000) {
    await new Promise((r) => setTimeout(r, 100));
    if (!existsSync(log.file) || log.read().filter((x) => x.kind === 'train').length < 2) continue;
    const kids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(launcher!.pid)], { encoding: 'utf8' }).split('\n').map(Number).filter(Boolean);
    victim = kids.find((pid) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('RANK=1')) ?? 0;
  }
  assert.ok(victim, `rank 1 was never found training${ended ? `: ${(await run).stderr}` : ''}`);
  process.kill(victim, 'SIGKILL');
  const killedAt = Date.now();
  const r = await run;
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /rank 1 was killed by SIGKILL/);
  assert.ok(Date.now() - killedAt < 20_000, `the run took ${Date.now() - killedAt} ms to stop`);
});
