/**
 * Training: a few steps on tiny data lower the loss; a run stopped and resumed ends
 * bit-for-bit where an uninterrupted run ends; a non-finite loss stops before any update.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { synthFolder } from '../src/data/synth/index.js';
import { createImage, writeImageRGB } from '../src/data/image-io.js';
import { Rng } from '../src/data/rng.js';
import { train } from '../src/train/trainer.js';
import { PRESETS, cacheBytes, loadConfig, type TrainConfig } from '../src/train/config.js';
import { listCheckpoints } from '../src/train/checkpoint.js';
import { Stage1Task, Stage2Task, NonFiniteLossError, takeStats } from '../src/train/tasks.js';
import { readSafetensors, writeSafetensors } from '../src/engine/io/index.js';
import { RunLog, plotSvg } from '../src/train/log.js';
import { Tensor, tidy, liveTensors } from '../src/engine/index.js';

let root: string;
let data: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'msdi-train-'));
  // A small textured "photo" to blur: smooth gradients plus edges.
  const photos = join(root, 'photos');
  const img = createImage(200, 160);
  const rng = new Rng(3);
  for (let y = 0; y < 160; y++) {
    for (let x = 0; x < 200; x++) {
      const edge = ((x >> 4) + (y >> 4)) % 2;
      for (let c = 0; c < 3; c++) img.data[(y * 200 + x) * 3 + c] = 0.2 + 0.5 * edge + 0.1 * Math.sin((x + 7 * c) / 9) + 0.05 * rng.float();
    }
  }
  await writeImageRGB(join(photos, 'p0.png'), img);
  data = join(root, 'pairs');
  await synthFolder({ from: photos, out: data, count: 4, seed: 5, size: 64, photoShortSide: 160 });
});

after(() => rmSync(root, { recursive: true, force: true }));

const cfg = (over: Partial<TrainConfig> = {}): TrainConfig => ({ ...PRESETS['test-stage2'], ...over });

test('a few stage-2 steps on tiny data lower the PSNR loss', async () => {
  const out = join(root, 'lower');
  await train({ config: cfg({ iters: 24, lr: 1e-3, ckptEvery: 100, valEvery: 1000 }), ablation: 'no-degradation', data, out, quiet: true });
  const rows = new RunLog(join(out, 'log.jsonl')).read().filter((r) => r.kind === 'train');
  const losses = rows.map((r) => r.l_psnr as number);
  // each line also says how much of a step went to waiting for the batch
  for (const r of rows) assert.ok((r.s_wait_per_it as number) >= 0 && (r.s_wait_per_it as number) <= (r.s_per_it as number) + 1e-3, JSON.stringify(r));
  const first = losses.slice(0, 4).reduce((a, b) => a + b) / 4;
  const last = losses.slice(-4).reduce((a, b) => a + b) / 4;
  assert.ok(last < first - 0.5, `PSNR loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  assert.ok(existsSync(join(out, 'final.safetensors')) && existsSync(join(out, 'curves.svg')));
});

test('warmup: the rate rises linearly over the first steps, then follows the cosine', async () => {
  const { scheduledLr, cosineLr } = await import('../src/train/schedule.js');
  assert.equal(scheduledLr(0, 1, 0, 10, 4), 0.25);
  assert.equal(scheduledLr(2, 1, 0, 10, 4), 0.75 * cosineLr(2, 1, 0, 10));
  assert.equal(scheduledLr(4, 1, 0, 10, 4), cosineLr(4, 1, 0, 10));
  assert.equal(scheduledLr(0, 1, 0, 10, 0), 1);
  // a run logs the rate of each step: a quarter of the cosine's, then a half, three quarters, all of it
  const out = join(root, 'warmup');
  await train({ config: cfg({ iters: 6, lr: 1e-3, warmup: 4, etaMin: 0, logEvery: 1, ckptEvery: 100, valEvery: 1000 }), ablation: 'no-degradation', data, out, quiet: true });
  const lrs = new RunLog(join(out, 'log.jsonl')).read().filter((r) => r.kind === 'train').map((r) => r.lr as number);
  assert.deepEqual(lrs, [0, 1, 2, 3, 4, 5].map((t) => cosineLr(t, 1e-3, 0, 6) * Math.min(1, (t + 1) / 4)));
  assert.throws(() => loadConfig('cpu-stage2', { warmup: -1 }), /expected a non-negative integer \(steps\) for warmup, got -1$/);
});

test('amp bf16: both stages train in bfloat16 autocast close to float32, and keep float32 weights', async () => {
  const curve = (dir: string, key: string) => new RunLog(join(dir, 'log.jsonl')).read().filter((r) => r.kind === 'train').map((r) => r[key] as number);
  for (const [stage, key] of [['stage2', 'l_psnr'], ['stage1', 'l_pix']] as const) {
    const c = { ...PRESETS[`test-${stage}`], iters: 4, logEvery: 1, ckptEvery: 100, valEvery: 1000 };
    const ablation = stage === 'stage2' ? 'no-degradation' : 'none';
    await train({ config: c, ablation, data, out: join(root, `amp-${stage}-off`), quiet: true });
    const r = await train({ config: { ...c, amp: 'bf16' }, ablation, data, out: join(root, `amp-${stage}-bf16`), quiet: true });
    const [off, bf16] = [curve(join(root, `amp-${stage}-off`), key), curve(join(root, `amp-${stage}-bf16`), key)];
    // the same batches and initial weights: the losses differ by bf16 rounding only, but differ
    assert.equal(bf16.length, 4);
    const rel = off.map((v, k) => Math.abs(bf16[k]! - v) / Math.abs(v));
    assert.ok(rel.every((e) => e < 0.05) && rel.some((e) => e > 0), `${stage} ${key}: float32 ${off.join(' ')} vs bf16 ${bf16.join(' ')}`);
    if (stage === 'stage1') for (const k of ['l_gan', 'l_feat', 'l_d']) assert.ok(Number.isFinite(r.lastLosses[k]), `${k} = ${r.lastLosses[k]}`);
    for (const [name, t] of readSafetensors(join(root, `amp-${stage}-bf16`, 'final.safetensors')).tensors) {
      if (t.dtype !== 'I64') assert.equal(t.dtype, 'F32', name);
    }
  }
  assert.throws(() => loadConfig('test-stage2', { amp: 'fp16' as never }), /"off" or "bf16" for amp, got "fp16"/);
});

test('the loader cache (cacheGB) changes no batch: a run without it logs the same losses; "auto" is a quarter of the memory per process', async () => {
  const c = { ...PRESETS['test-stage2'], iters: 6, logEvery: 1, ckptEvery: 100, valEvery: 1000 };
  const losses = (dir: string) => new RunLog(join(dir, 'log.jsonl')).read().filter((r) => r.kind === 'train').map((r) => r.l_psnr);
  // 6 steps of 2 from the small dataset: later steps crop images the cache already holds
  await train({ config: c, ablation: 'no-degradation', data, out: join(root, 'cache-auto'), quiet: true });
  await train({ config: { ...c, cacheGB: 0 }, ablation: 'no-degradation', data, out: join(root, 'cache-off'), quiet: true });
  assert.equal(losses(join(root, 'cache-auto')).length, 6);
  assert.deepEqual(losses(join(root, 'cache-auto')), losses(join(root, 'cache-off')));
  assert.equal(cacheBytes('auto', 2), Math.floor(totalmem() / 8));
  assert.equal(cacheBytes(0.5, 4), 2 ** 29);
  assert.throws(() => loadConfig('test-stage2', { cacheGB: -1 }), /"auto" or a number of GB >= 0 for cacheGB, got -1/);
});

test('stage 1 trains the joint model with the discriminator, and stage 2 starts from its representation', async () => {
  const s1 = join(root, 's1');
  const c1 = PRESETS['test-stage1'];
  const r1 = await train({ config: { ...c1, iters: 3, perceptual: 'l1', weights: { ...c1.weights, perceptual: 10 }, identity: 0.5 }, ablation: 'none', data, val: data, out: s1, quiet: true });
  for (const k of ['l_pix', 'l_gan', 'l_feat', 'l_perceptual', 'l_d']) assert.ok(Number.isFinite(r1.lastLosses[k]), `${k} = ${r1.lastLosses[k]}`);
  assert.ok(r1.val && r1.val.psnr > 0);
  const s2 = join(root, 's2');
  const r2 = await train({ config: cfg({ iters: 2 }), ablation: 'none', data, out: s2, init: listCheckpoints(s1).pop()!.file, quiet: true });
  assert.equal(r2.step, 2);
  // The representation came from stage 1 and stayed frozen.
  const a = readSafetensors(join(s1, 'final.safetensors')).tensors.get('net_prior.layer1.0.weight_orig')!;
  const b = readSafetensors(join(s2, 'final.safetensors')).tensors.get('net_prior.layer1.0.weight_orig')!;
  assert.deepEqual(Buffer.from(b.data), Buffer.from(a.data));
  // --resume needs no --init: the checkpoint holds the representation too
  const s2r = join(root, 's2-resumed');
  await train({ config: cfg({ iters: 3 }), ablation: 'none', data, out: s2r, init: listCheckpoints(s1).pop()!.file, stopAfter: 1, quiet: true });
  const r2r = await train({ config: cfg({ iters: 3 }), ablation: 'none', data, out: s2r, resume: true, quiet: true });
  assert.equal(r2r.step, 3);
  const c = readSafetensors(join(s2r, 'final.safetensors')).tensors.get('net_prior.layer1.0.weight_orig')!;
  assert.deepEqual(Buffer.from(c.data), Buffer.from(a.data));
  await assert.rejects(train({ config: cfg({ iters: 3 }), ablation: 'none', data, out: join(root, 's2-no-init'), resume: true, quiet: true }), /needs the stage-1 representation/);
});

test('fine-tuning: --init with weights of the network a stage trains starts from all of them', async () => {
  const s1 = join(root, 's1', 'final.safetensors'); // MSDI2E, from the test above
  const s2 = join(root, 's2', 'final.safetensors'); // msdi2_net
  const ablation = join(root, 'lower', 'final.safetensors'); // msdi_net without the representation
  // At learning rate 0 Adam changes nothing: each run ends with the parameters it started from.
  // (Buffers move in training mode: spectral-norm vectors, batch-norm statistics.)
  const params = (file: string) => new Map([...readSafetensors(file).tensors].filter(([k]) => !/(weight_[uv]|running_\w+)$/.test(k)));
  const same = (a: string, b: string) => {
    const A = params(a);
    const B = params(b);
    assert.deepEqual([...A.keys()].sort(), [...B.keys()].sort());
    for (const [k, t] of A) assert.deepEqual(Buffer.from(B.get(k)!.data), Buffer.from(t.data), k);
  };
  const ft2 = join(root, 'ft2');
  await train({ config: cfg({ iters: 1, lr: 0 }), ablation: 'none', data, out: ft2, init: s2, quiet: true });
  same(join(ft2, 'final.safetensors'), s2);
  const ftA = join(root, 'ftA');
  await train({ config: cfg({ iters: 1, lr: 0 }), ablation: 'no-degradation', data, out: ftA, init: ablation, quiet: true });
  same(join(ftA, 'final.safetensors'), ablation);
  const ft1 = join(root, 'ft1');
  await train({ config: { ...PRESETS['test-stage1'], iters: 1, lr: 0 }, ablation: 'none', data, out: ft1, init: s1, quiet: true });
  same(join(ft1, 'final.safetensors'), s1);
  // The representation alone (as scripts/gpu/representation.mts writes it) starts stage 2 like stage-1 weights.
  const rep = join(root, 'rep.safetensors');
  writeSafetensors(rep, new Map([...readSafetensors(s1).tensors].filter(([k]) => /^(net_prior|prior_upsampling)\./.test(k))));
  const fromRep = join(root, 'from-rep');
  await train({ config: cfg({ iters: 1, lr: 0 }), ablation: 'none', data, out: fromRep, init: rep, quiet: true });
  const repKey = 'prior_upsampling.conv_latent_up2.conv_block.1.weight_orig';
  assert.deepEqual(Buffer.from(params(join(fromRep, 'final.safetensors')).get(repKey)!.data), Buffer.from(params(s1).get(repKey)!.data));
  // What cannot start a run says why, naming the file.
  const fresh = () => join(mkdtempSync(join(root, 'bad-')), 'run');
  await assert.rejects(train({ config: cfg({ iters: 1 }), ablation: 'no-degradation', data, out: fresh(), init: s1, quiet: true }),
    (e: Error) => e.message.includes(s1) && /does not use/.test(e.message));
  await assert.rejects(train({ config: PRESETS['test-stage1'], ablation: 'none', data, out: fresh(), init: s2, quiet: true }),
    /stage 1 fine-tunes MSDI2E weights, not msdi2_net/);
  await assert.rejects(train({ config: cfg({ iters: 1 }), ablation: 'none', data, out: fresh(), init: ablation, quiet: true }),
    (e: Error) => e.message.includes(ablation) && /missing keys: (net_prior|prior_upsampling)\./.test(e.message));
});

/**
 * The PSNR loss of one stage-2 step of a freshly seeded network: runs that differ only in an
 * option that changes the batches must give different losses.
 */
async function firstStepLoss(over: Partial<TrainConfig>, out: string): Promise<number> {
  const r = await train({ config: cfg({ iters: 1, ckptEvery: 100, valEvery: 1000, ...over }), ablation: 'no-degradation', data, out: join(root, out), quiet: true });
  return r.lastLosses.l_psnr!;
}

test('identity pairs reach stage 2: with every input the sharp image, the first step sees other inputs', async () => {
  const first = (identity: number, out: string) => firstStepLoss({ identity }, out);
  const [blurry, again, sharp] = [await first(0, 'id-0'), await first(0, 'id-0b'), await first(1, 'id-1')];
  assert.equal(again, blurry, 'the same run twice gives the same loss');
  assert.ok(Math.abs(sharp - blurry) > 0.01, `PSNR loss with sharp inputs ${sharp.toFixed(3)}, with blurry ${blurry.toFixed(3)}`);
});

test('permuteChannels reaches the batches: the first step sees other inputs; a non-boolean is refused', async () => {
  const [plain, permuted] = [await firstStepLoss({ permuteChannels: false }, 'perm-0'), await firstStepLoss({ permuteChannels: true }, 'perm-1')];
  assert.ok(Math.abs(permuted - plain) > 1e-4, `PSNR loss ${permuted} with permuted channels, ${plain} without`);
  assert.throws(() => loadConfig('cpu-stage2', { permuteChannels: 'yes' as unknown as boolean }), /expected true or false for permuteChannels, got "yes"/);
});

test('stage 1 learns blur levels from level-L folders: the level loss is there, and configs that cannot work are refused', async () => {
  const photos = join(root, 'photos');
  const withLevels = join(root, 'pairs-levels');
  await synthFolder({ from: photos, out: withLevels, count: 4, seed: 5, size: 64, photoShortSide: 160, synth: { levels: [0.5, 2] } });
  const c1 = { ...PRESETS['test-stage1'], iters: 2, identity: 0.5, levels: [0.5, 2], levelWeight: 10, levelGradWeight: 5 };
  const r = await train({ config: c1, ablation: 'none', data: withLevels, out: join(root, 'lv'), quiet: true });
  assert.ok(r.lastLosses.l_level! > 0 && Number.isFinite(r.lastLosses.l_level), `l_level = ${r.lastLosses.l_level}`);
  assert.ok(r.lastLosses.l_level_grad! > 0 && Number.isFinite(r.lastLosses.l_level_grad), `l_level_grad = ${r.lastLosses.l_level_grad}`);
  // without the level loss nothing reads the folders and no l_level is reported
  const r0 = await train({ config: { ...c1, levelWeight: 0 }, ablation: 'none', data: withLevels, out: join(root, 'lv0'), quiet: true });
  assert.equal(r0.lastLosses.l_level, undefined);
  await assert.rejects(train({ config: c1, ablation: 'none', data, out: join(root, 'lv-missing'), quiet: true }), /no blur levels 0.5, 2 in/);
  assert.throws(() => loadConfig('test-stage1', { levelWeight: 1 }), /levelWeight needs levels/);
  assert.throws(() => loadConfig('test-stage1', { levels: [2], levelGradWeight: 1 }), /levelGradWeight needs levelWeight/);
  assert.throws(() => loadConfig('test-stage1', { levels: [0] }), /numbers in \(0, 4\] for levels, got \[0\]/);
});

for (const [what, c, ablation] of [
  ['stage 2 (the ablation, identity pairs)', cfg({ iters: 6, ckptEvery: 2, identity: 0.5 }), 'no-degradation'],
  ['stage 1 (joint model and discriminator, identity pairs)', { ...PRESETS['test-stage1'], iters: 6, ckptEvery: 2, identity: 0.5 }, 'none'],
] as const) {
  test(`stop and --resume continue bit-for-bit like an uninterrupted run: ${what}`, async () => {
    const whole = join(root, `whole-${c.stage}`);
    const parts = join(root, `parts-${c.stage}`);
    await train({ config: c, ablation, data, out: whole, quiet: true });
    await train({ config: c, ablation, data, out: parts, stopAfter: 3, quiet: true });
    await assert.rejects(train({ config: c, ablation, data, out: parts, quiet: true }), /--resume/);
    await train({ config: c, ablation, data, out: parts, resume: true, quiet: true });
    const final = (dir: string) => readSafetensors(listCheckpoints(dir).pop()!.file).tensors;
    const A = final(whole);
    const B = final(parts);
    assert.deepEqual([...A.keys()].sort(), [...B.keys()].sort());
    if (c.stage === 'stage1') assert.ok([...A.keys()].some((k) => k.startsWith('d.')), 'the discriminator is in the checkpoint');
    for (const [k, v] of A) assert.ok(Buffer.from(v.data).equals(Buffer.from(B.get(k)!.data)), `${k} differs after resume`);
    // The log has one record per step, no duplicates from the interrupted part.
    const steps = new RunLog(join(parts, 'log.jsonl')).read().filter((r) => r.kind === 'train').map((r) => r.step);
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6]);
    assert.ok(readFileSync(join(parts, 'log.jsonl'), 'utf8').includes('"event":"resume"'));
  });
}

test('a resumed run logs the same records as an uninterrupted one when checkpoints fall inside a log window', async () => {
  const c = cfg({ iters: 8, ckptEvery: 3, logEvery: 4 });
  const whole = join(root, 'window-whole');
  const parts = join(root, 'window-parts');
  await train({ config: c, ablation: 'no-degradation', data, out: whole, quiet: true });
  await train({ config: c, ablation: 'no-degradation', data, out: parts, stopAfter: 3, quiet: true });
  await train({ config: c, ablation: 'no-degradation', data, out: parts, resume: true, quiet: true });
  const records = (dir: string) => new RunLog(join(dir, 'log.jsonl')).read().filter((r) => r.kind === 'train').map((r) => [r.step, r.l_psnr]);
  assert.deepEqual(records(parts), records(whole));
  assert.deepEqual(records(whole).map(([s]) => s), [4, 8]);
});

test('a non-finite loss stops the step before any parameter changes', () => {
  const task = new Stage2Task(cfg(), 'no-degradation');
  try {
    const n = 2 * 3 * 32 * 32;
    const blurry = new Float32Array(n).fill(0.5);
    blurry[7] = Number.NaN;
    const before = task.g.stateDict().get('last.weight')!.toFloat32();
    assert.throws(() => task.step({ blurry, sharp: new Float32Array(n).fill(0.5), n: 2, size: 32 }), NonFiniteLossError);
    assert.deepEqual(task.g.stateDict().get('last.weight')!.toFloat32(), before);
  } finally {
    task.dispose();
  }
});

test('a non-finite gradient (the loss finite) stops the step before the update, clipping or not', () => {
  for (const clip of [0, 0.01]) {
    const task = new Stage2Task(cfg({ clip }), 'no-degradation');
    try {
      const n = 2 * 3 * 32 * 32;
      const batch = { blurry: new Float32Array(n).fill(0.4), sharp: new Float32Array(n).fill(0.5), n: 2, size: 32 };
      assert.ok(Number.isFinite(takeStats(task.step(batch)).grad_norm!), 'a good step reports its gradient norm');
      // the hook data-parallel training uses between backward and the update
      task.syncGrads = (params) => tidy(() => void params[0]!.grad!.copy_(Tensor.full(params[0]!.shape, Number.POSITIVE_INFINITY)));
      const before = task.g.stateDict().get('last.weight')!.toFloat32();
      assert.throws(() => task.step(batch), (e: Error) => e instanceof NonFiniteLossError && /network gradients' norm is (NaN|Infinity)/.test(e.message));
      assert.deepEqual(task.g.stateDict().get('last.weight')!.toFloat32(), before);
    } finally {
      task.dispose();
    }
  }
});

test('lazy losses (a GPU\'s default): the same log and weights as reading every step; a non-finite loss stops the run at the next read, naming its step', async () => {
  const c = cfg({ iters: 8, logEvery: 4, ckptEvery: 4, valEvery: 1000 });
  const runs = { eager: join(root, 'eager'), lazy: join(root, 'lazy') };
  const live = liveTensors();
  const e = await train({ config: c, ablation: 'no-degradation', data, out: runs.eager, quiet: true, lazyLosses: false });
  const r = await train({ config: c, ablation: 'no-degradation', data, out: runs.lazy, quiet: true, lazyLosses: true });
  assert.equal(liveTensors(), live, 'every step\'s stats freed');
  const records = (dir: string) => new RunLog(join(dir, 'log.jsonl')).read().filter((x) => x.kind === 'train').map((x) => [x.step, x.l_psnr, x.grad_norm]);
  assert.equal(records(runs.lazy).length, 2);
  assert.deepEqual(records(runs.lazy), records(runs.eager));
  assert.deepEqual(r.lastLosses, e.lastLosses, 'the last step\'s losses are read at the end');
  assert.deepEqual(readFileSync(join(runs.lazy, 'final.safetensors')), readFileSync(join(runs.eager, 'final.safetensors')));
  // A rate of 1e30 makes the weights overflow after the first update: steps 2 on are not finite.
  const bad = join(root, 'lazy-nan');
  await assert.rejects(train({ config: cfg({ iters: 8, lr: 1e30, logEvery: 4, ckptEvery: 3, valEvery: 1000 }), ablation: 'no-degradation', data, out: bad, quiet: true, lazyLosses: true }),
    /^Error: step 2: loss l_psnr is (NaN|-?Infinity); stopped \(last good checkpoint: none\)/);
  assert.deepEqual(listCheckpoints(bad), [], 'read at step 3, before its checkpoint');
  const events = new RunLog(join(bad, 'log.jsonl')).read().filter((x) => x.event === 'non-finite loss');
  assert.deepEqual(events.map((x) => x.step), [2]);
  assert.equal(liveTensors(), live, 'a failed run frees its unread stats');
});

test('a run that cannot start frees its networks and loader; --resume clears what a killed write left', async () => {
  const live = liveTensors();
  await assert.rejects(train({ config: cfg(), ablation: 'no-degradation', data, val: join(root, 'no-such-folder'), out: join(root, 'bad-val'), quiet: true }), /no-such-folder/);
  assert.equal(liveTensors(), live, 'no native tensor left behind');
  const out = join(root, 'stale');
  await train({ config: cfg({ iters: 4, ckptEvery: 2 }), ablation: 'no-degradation', data, out, stopAfter: 2, quiet: true });
  const stale = join(out, '.ckpt-00000004.safetensors.4242.0123abcd.tmp');
  writeFileSync(stale, 'half a checkpoint');
  await train({ config: cfg({ iters: 4, ckptEvery: 2 }), ablation: 'no-degradation', data, out, resume: true, quiet: true });
  assert.ok(!existsSync(stale), 'the temporary file of a killed write is gone');
  assert.equal(listCheckpoints(out).pop()!.step, 4);
});

test('latentScale: checkpoints keep the trained weights; exports, final weights and --init use the official network\'s', async () => {
  const { exportCommand } = await import('../src/cli/commands/export.js');
  const s1 = listCheckpoints(join(root, 's1')).pop()!.file; // stage 1, from the test above
  const out = join(root, 'latent-scale');
  await train({ config: cfg({ iters: 2, ckptEvery: 2, latentScale: 4 }), ablation: 'none', data, out, init: s1, quiet: true });
  const ckpt = readSafetensors(listCheckpoints(out).pop()!.file).tensors;
  const exported = join(root, 'latent-scale.safetensors');
  const log = console.log;
  console.log = () => {};
  try {
    exportCommand([out, '-o', exported]);
  } finally {
    console.log = log;
  }
  const ex = readSafetensors(exported).tensors;
  const fin = readSafetensors(join(out, 'final.safetensors')).tensors;
  const floats = (t: { data: Uint8Array }) => new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
  let folded = 0;
  for (const [k, t] of ex) {
    assert.deepEqual(Buffer.from(fin.get(k)!.data), Buffer.from(t.data), `final.safetensors ${k}`);
    const trained = floats(ckpt.get(`g.${k}`)!);
    const got = floats(t);
    if (!/^ad1_list\.\d\.norm_0\.mlp_shared\.0\.weight$/.test(k)) {
      assert.deepEqual(got, trained, k);
      continue;
    }
    // [out, features + latent, 1, 1]: the latent columns (the last `out`) are 4x the trained ones
    const [o, i] = t.shape as [number, number];
    for (let r = 0; r < o; r++) {
      for (let c = 0; c < i; c++) assert.equal(got[r * i + c], trained[r * i + c]! * (c >= i - o ? 4 : 1), `${k} [${r}, ${c}]`);
    }
    folded++;
  }
  assert.equal(folded, 4);
  // Fine-tuning those weights under latentScale 4 starts from the same function: at lr 0 it ends where it began.
  const ft = join(root, 'latent-scale-ft');
  await train({ config: cfg({ iters: 1, lr: 0, latentScale: 4 }), ablation: 'none', data, out: ft, init: exported, quiet: true });
  const again = readSafetensors(join(ft, 'final.safetensors')).tensors;
  for (const [k, t] of ex) if (!/(weight_[uv]|running_\w+)$/.test(k)) assert.deepEqual(Buffer.from(again.get(k)!.data), Buffer.from(t.data), k);
  assert.throws(() => loadConfig('test-stage1', { latentScale: 2 }), /latentScale is for stage 2/);
  assert.throws(() => loadConfig('test-stage2', { latentScale: 0 }), /expected a positive number for latentScale, got 0/);
});

test('msdi export: the network of a run as weights; it refuses to replace a file without --force, or its own checkpoint', async () => {
  const { exportCommand } = await import('../src/cli/commands/export.js');
  const out = join(root, 'export-run');
  await train({ config: cfg({ iters: 2, ckptEvery: 2 }), ablation: 'no-degradation', data, out, quiet: true });
  const w = join(root, 'exported.safetensors');
  const quietly = (f: () => void) => {
    const log = console.log;
    console.log = () => {};
    try {
      f();
    } finally {
      console.log = log;
    }
  };
  quietly(() => exportCommand([out, '-o', w, '--half']));
  const { tensors, metadata } = readSafetensors(w);
  assert.equal(metadata.arch, 'msdi_net');
  assert.equal(metadata.steps, '2');
  assert.ok([...tensors.values()].every((t) => t.dtype === 'F16'));
  assert.throws(() => exportCommand([out, '-o', w]), /exported.safetensors: already exists \(--force to overwrite\)/);
  quietly(() => exportCommand([out, '-o', w, '--force']));
  assert.equal(readSafetensors(w).tensors.values().next().value!.dtype, 'F32');
  const ckpt = listCheckpoints(out).pop()!.file;
  assert.throws(() => exportCommand([ckpt, '-o', ckpt, '--force']), /would overwrite the checkpoint it exports/);
  assert.ok(readSafetensors(ckpt).metadata.msdi, 'the checkpoint is still a checkpoint');
  // a run stopped halfway: the export says these are not its final weights
  const half = join(root, 'export-half');
  await train({ config: cfg({ iters: 4, ckptEvery: 2 }), ablation: 'no-degradation', data, out: half, quiet: true, stopAfter: 2 });
  const said: string[] = [];
  const error = console.error;
  console.error = (m: string) => void said.push(m);
  try {
    quietly(() => exportCommand([half, '-o', join(root, 'half.safetensors')]));
    quietly(() => exportCommand([out, '-o', w, '--force']));
  } finally {
    console.error = error;
  }
  assert.equal(said.length, 1, 'only the unfinished run is flagged');
  assert.match(said[0], /ckpt-0+2\.safetensors: step 2 of the run's 4: not its final weights/);
});

test('the curves plot takes a long run (200 000 log records)', () => {
  const records = Array.from({ length: 200_000 }, (_, i) => ({ kind: 'train', step: i + 1, l_psnr: -20 - i / 1e5 }));
  assert.match(plotSvg(records as never, 'l_psnr'), /^<svg/);
});

test('--resume continues a run as it was configured (its config.json), not as the presets say now', async () => {
  const { trainCommand } = await import('../src/cli/commands/train.js');
  const { writeFileSync } = await import('node:fs');
  const out = join(root, 'resume-config');
  const file = join(root, 'narrow.json');
  writeFileSync(file, JSON.stringify({ preset: 'test-stage2', iters: 4, ckptEvery: 2, spadeHidden: 8 }));
  const args = ['stage2', '--data', data, '--out', out, '--ablate', 'no-degradation', '--quiet'];
  const log = console.log;
  console.log = () => {};
  try {
    await trainCommand([...args, '--config', file, '--stop-after', '2']);
    // No --config: the preset (cpu-stage2: wf 8, 128 crops of these 64-pixel pairs) would not even load the checkpoint.
    await trainCommand([...args, '--resume']);
  } finally {
    console.log = log;
  }
  assert.equal(listCheckpoints(out).pop()!.step, 4);
  const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(saved.spadeHidden, 8);
  const { loadRunConfig } = await import('../src/train/config.js');
  writeFileSync(file, JSON.stringify({ ...PRESETS['test-stage2'], spadeHidden: undefined }));
  assert.equal(loadRunConfig(file).spadeHidden, 128, 'runs from before the option used the official width');
  assert.equal(loadRunConfig(file, { iters: 9 }).iters, 9);
});

test('config files: unknown or bad fields are refused by name; weights merge into the preset; no preset means the stage\'s', () => {
  const file = join(root, 'cfg.json');
  const load = (json: unknown, stage?: 'stage1' | 'stage2') => {
    writeFileSync(file, JSON.stringify(json));
    return loadConfig(file, {}, stage);
  };
  assert.throws(() => load({ preset: 'cpu-stage2', keep_last: 3 }), /cfg\.json: unknown config field "keep_last"/);
  for (const [k, v, what] of [['keepLast', 0, 'a positive integer'], ['ckptEvery', 0, 'a positive integer'], ['valEvery', 2.5, 'a positive integer'],
    ['tMax', 0, 'a positive integer'], ['lr', -1, 'a positive number'], ['clip', Number.NaN, 'a non-negative number']] as const) {
    assert.throws(() => loadConfig('cpu-stage2', { [k]: v }), new RegExp(`expected ${what}.* for ${k}, got ${v}$`), `${k} ${v}`);
  }
  assert.throws(() => load({ preset: 'cpu-stage1', perceptual: 'vgg' }), /^Error: .*cfg\.json: expected "none" or "l1".* for perceptual, got "vgg"/);
  // the error names where the bad value came from: the file, a preset, or the command line
  assert.throws(() => load({ preset: 'cpu-stage2', wf: 7 }), /cfg\.json: expected an even number for wf, got 7/);
  assert.throws(() => loadConfig('cpu-stage2', { crop: 24 }), /^Error: command line: expected a multiple of 16 for crop, got 24/);
  assert.throws(() => load({ preset: 'cpu-stage1', levelWeight: 1 }), /cfg\.json: levelWeight needs levels/);
  assert.throws(() => load({ preset: 'cpu-stage1', weights: { gan: 'x' } }), /for weights/);
  const c1 = load({ preset: 'cpu-stage1', weights: { gan: 2 } });
  assert.deepEqual(c1.weights, { pixel: 10, gan: 2, feat: 10, perceptual: 10 }, 'the preset\'s other weights stay');
  assert.equal(load({ stage: 'stage1', iters: 500 }).lr, PRESETS['cpu-stage1'].lr, 'no preset: cpu-stage1 for a stage-1 file');
  assert.equal(load({ iters: 500 }, 'stage1').stage, 'stage1', 'no preset, no stage: the command\'s stage');
  // A run's own config.json (with its ablation and --init) is a valid --config.
  assert.equal(load({ ...PRESETS['test-stage2'], ablation: 'none', init: null }).wf, PRESETS['test-stage2'].wf);
});

test('config: stage-1 options are checked, with the field and the value named', () => {
  assert.equal(loadConfig('cpu-stage1').identity, 0);
  assert.equal(loadConfig('cpu-stage1', { identity: 0.25, encoderFrom: 'reblur' }).encoderFrom, 'reblur');
  assert.throws(() => loadConfig('cpu-stage1', { identity: 1.5 }), /expected a fraction in \[0, 1\] for identity, got 1.5/);
  assert.throws(() => loadConfig('cpu-stage1', { encoderFrom: 'deblur' as 'both' }), /expected "both" or "reblur" for encoderFrom, got "deblur"/);
  assert.throws(() => new Stage1Task({ ...PRESETS['test-stage1'], encoderFrom: 'reblur' }, 'no-reblur'), /needs the reblurring branch/);
});
