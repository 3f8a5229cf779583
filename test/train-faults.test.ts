/**
 * Training survives SIGKILL at random moments (checkpoint writes included): every checkpoint
 * on disk is complete and loadable, and after resuming the run ends with exactly the weights
 * and the loss curve of an uninterrupted run. MSDI_FAULT_KILLS sets the number of kills
 * (default 4 here; the full check uses 10).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthFolder } from '../src/data/synth/index.js';
import { createImage, writeImageRGB } from '../src/data/image-io.js';
import { listCheckpoints } from '../src/train/checkpoint.js';
import { readSafetensors } from '../src/engine/io/index.js';
import { RunLog } from '../src/train/log.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'msdi.js');
const KILLS = Number(process.env.MSDI_FAULT_KILLS ?? 4);
let root: string;
let data: string;
let config: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'msdi-faults-'));
  const img = createImage(160, 128);
  for (let i = 0; i < img.data.length; i++) img.data[i] = ((Math.floor(i / 3) % 160 >> 3) + (Math.floor(i / 480) >> 3)) % 2 ? 0.8 : 0.2;
  await writeImageRGB(join(root, 'photos', 'p.png'), img);
  data = join(root, 'pairs');
  await synthFolder({ from: join(root, 'photos'), out: data, count: 3, seed: 9, size: 48, photoShortSide: 128 });
  config = join(root, 'cfg.json');
  writeFileSync(config, JSON.stringify({ preset: 'test-stage2', iters: 40, ckptEvery: 3, keepLast: 2, logEvery: 1 }));
});

after(() => { if (!process.env.KEEP) rmSync(root, { recursive: true, force: true }); });

function args(out: string, resume: boolean): string[] {
  return [CLI, 'train', 'stage2', '--config', config, '--ablate', 'no-degradation', '--data', data, '--out', out, '--quiet', ...(resume ? ['--resume'] : [])];
}

/** Starts a run and SIGKILLs it `ms` after it has logged `k` new training steps. */
function runAndKill(out: string, resume: boolean, k: number, ms: number): Promise<void> {
  const log = new RunLog(join(out, 'log.jsonl'));
  const steps = () => log.read().filter((r) => r.kind === 'train').length;
  const before = steps();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args(out, resume), { stdio: 'ignore', env: { ...process.env, MSDI_THREADS: '1' } });
    let timer: NodeJS.Timeout | undefined;
    const poll = setInterval(() => {
      if (timer || steps() < before + k) return;
      timer = setTimeout(() => child.kill('SIGKILL'), ms);
    }, 20);
    child.on('exit', () => {
      clearInterval(poll);
      clearTimeout(timer);
      resolve();
    });
  });
}

test(`SIGKILL ${KILLS} times at random moments, resume each time: same weights and loss curve as an uninterrupted run`, { timeout: 600_000 }, async () => {
  const whole = join(root, 'whole');
  const r = spawnSync(process.execPath, args(whole, false), { encoding: 'utf8', env: { ...process.env, MSDI_THREADS: '1' } });
  assert.equal(r.status, 0, r.stderr);

  const broken = join(root, 'broken');
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let k = 0; k < KILLS; k++) {
    const started = listCheckpoints(broken).length > 0;
    // Anywhere in training, checkpoint writes included (one every 3 steps).
    await runAndKill(broken, started, 1 + Math.floor(rand() * 8), rand() * 60);
    for (const c of listCheckpoints(broken)) {
      // A checkpoint on disk is always complete: it parses, and it has the generator and Adam state.
      const { tensors, metadata } = readSafetensors(c.file);
      assert.ok(metadata.msdi && tensors.has('g.last.weight'), `${c.file} is complete`);
    }
  }
  const finish = spawnSync(process.execPath, args(broken, listCheckpoints(broken).length > 0), { encoding: 'utf8', env: { ...process.env, MSDI_THREADS: '1' } });
  assert.equal(finish.status, 0, finish.stderr);

  const resumes = new RunLog(join(broken, 'log.jsonl')).read().filter((x) => x.event === 'resume').length;
  assert.ok(resumes >= KILLS - 1, `the run was resumed ${resumes} times`);
  const A = readSafetensors(join(whole, 'final.safetensors')).tensors;
  const B = readSafetensors(join(broken, 'final.safetensors')).tensors;
  for (const [k, v] of A) assert.ok(Buffer.from(v.data).equals(Buffer.from(B.get(k)!.data)), `${k} differs`);
  const curve = (dir: string) => new RunLog(join(dir, 'log.jsonl')).read().filter((x) => x.kind === 'train').map((x) => [x.step, x.l_psnr]);
  assert.deepEqual(curve(broken), curve(whole), 'the loss curve continues without a jump or a repeat');
  assert.ok(!existsSync(join(broken, 'log.jsonl.tmp')));
});

test('Ctrl-C (SIGINT) stops a run cleanly: a checkpoint at the step reached, then exit by the signal', { timeout: 120_000 }, async () => {
  const out = join(root, 'interrupted');
  const log = new RunLog(join(out, 'log.jsonl'));
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const child = spawn(process.execPath, args(out, false), { stdio: 'ignore', env: { ...process.env, MSDI_THREADS: '1' } });
    const poll = setInterval(() => {
      if (log.read().some((r) => r.kind === 'train' && r.step >= 2)) {
        clearInterval(poll);
        child.kill('SIGINT');
      }
    }, 20);
    const guard = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('exit', (code, signal) => {
      clearInterval(poll);
      clearTimeout(guard);
      resolve({ code, signal });
    });
  });
  assert.equal(exit.signal, 'SIGINT', `exited by ${exit.signal ?? `code ${exit.code}`}`);
  const last = log.read().filter((r) => r.kind === 'train').pop()!.step;
  assert.ok(last < 40, 'stopped before the end');
  assert.equal(listCheckpoints(out).pop()!.step, last, 'checkpoint at the step reached');
});
