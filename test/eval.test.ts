/** Evaluation as the community reports it: src/eval/evaluate.ts and `msdi eval`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { FIXTURES, fixturePath } from './helpers/fixtures.js';
import {
  evaluateModel,
  formatTable,
  groupSize,
  quantize01,
  scoreFolders,
  scoreImages,
  type EvalReport,
} from '../src/eval/evaluate.js';
import { evalCommand } from '../src/cli/commands/eval.js';
import { loadImage8, psnr, type Image8 } from '../src/metrics/index.js';
import type { RGBImage } from '../src/data/image-io.js';
import { captureLog } from './helpers/console.js';
import { mulberry32 } from './helpers/random.js';

const expected = JSON.parse(readFileSync(join(FIXTURES, 'fixtures.json'), 'utf8')).metrics as {
  target: string; output: string; psnr: number; ssim_3d: number; ssim_per_channel: number;
}[];

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'msdi-eval-'));
}

function randomImage(w: number, h: number, r: () => number): Image8 {
  const data = new Uint8Array(w * h * 3);
  // smooth-ish content so SSIM is meaningful
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) {
    data[(y * w + x) * 3 + c] = Math.round(60 + 40 * Math.sin((x + 3 * c) / 4) + 40 * Math.cos(y / 5) + 30 * r());
  }
  return { width: w, height: h, channels: 3, data };
}

function noisy(img: Image8, sigma: number, r: () => number): Image8 {
  const data = new Uint8Array(img.data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Math.round(img.data[i] + sigma * (r() * 2 - 1));
    data[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return { ...img, data };
}

async function writePng(path: string, img: Image8): Promise<void> {
  await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toFile(path);
}

/** results/metric_i.png (fixture outputs) and target/metric_i.png (fixture targets). */
function fixtureFolders(): { root: string; results: string; target: string } {
  const root = tmp();
  const results = join(root, 'results');
  const target = join(root, 'target');
  mkdirSync(results);
  mkdirSync(target);
  expected.forEach((m, i) => {
    copyFileSync(fixturePath(m.output), join(results, `metric_${i}.png`));
    copyFileSync(fixturePath(m.target), join(target, `metric_${i}.png`));
  });
  return { root, results, target };
}

function checkAgainstFixtures(report: EvalReport): void {
  assert.equal(report.count, expected.length);
  expected.forEach((m, i) => {
    const s = report.images.find((x) => x.name === `metric_${i}.png`);
    assert.ok(s, `metric_${i}.png in the report`);
    assert.ok(Math.abs(s.psnr - m.psnr) < 1e-3, `psnr ${s.psnr} vs ${m.psnr}`);
    assert.ok(Math.abs(s.ssim - m.ssim_3d) < 1e-4, `ssim ${s.ssim} vs ${m.ssim_3d}`);
    assert.ok(Math.abs(s.ssim_per_channel - m.ssim_per_channel) < 1e-4, `ssim/ch ${s.ssim_per_channel} vs ${m.ssim_per_channel}`);
  });
  const mean = (k: 'psnr' | 'ssim_3d' | 'ssim_per_channel') => expected.reduce((a, m) => a + m[k], 0) / expected.length;
  assert.ok(Math.abs(report.psnr - mean('psnr')) < 1e-3);
  assert.ok(Math.abs(report.ssim - mean('ssim_3d')) < 1e-4);
  assert.ok(Math.abs(report.ssim_per_channel - mean('ssim_per_channel')) < 1e-4);
}

test('scoreFolders reproduces fixtures.json per image and on average', async () => {
  const { root, results, target } = fixtureFolders();
  try {
    const report = await scoreFolders({ results, target });
    checkAgainstFixtures(report);
    assert.equal(report.input_psnr, undefined);
    assert.equal(report.blurriest10, null);
    assert.equal(report.sharpest10, null);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('msdi eval --results: table on stdout, JSON report with every field, written atomically', async () => {
  const { root, results, target } = fixtureFolders();
  try {
    const json = join(root, 'out', 'report.json');
    const printed = await captureLog(() => evalCommand(['--results', results, '--target', target, '--json', json]));
    assert.match(printed, /PSNR/);
    assert.match(printed, /mean \(3 images\)/);
    for (let i = 0; i < 3; i++) assert.match(printed, new RegExp(`metric_${i}\\.png`));
    const report = JSON.parse(readFileSync(json, 'utf8'));
    for (const k of ['psnr', 'ssim', 'ssim_per_channel', 'count', 'images', 'blurriest10', 'sharpest10']) assert.ok(k in report, k);
    for (const s of report.images) for (const k of ['name', 'psnr', 'ssim', 'ssim_per_channel']) assert.equal(typeof s[k], k === 'name' ? 'string' : 'number');
    checkAgainstFixtures(report);
    assert.deepEqual(readdirSync(join(root, 'out')), ['report.json'], 'no temporary file left');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('folders match by file stem (.png results against .jpg targets)', async () => {
  const root = tmp();
  try {
    const r = mulberry32(7);
    mkdirSync(join(root, 'res'));
    mkdirSync(join(root, 'gt'));
    for (const n of ['a', 'b']) {
      const img = randomImage(24, 20, r);
      await writePng(join(root, 'res', `${n}.png`), img);
      await sharp(img.data, { raw: { width: 24, height: 20, channels: 3 } }).jpeg({ quality: 90 }).toFile(join(root, 'gt', `${n}.jpg`));
    }
    const report = await scoreFolders({ results: join(root, 'res'), target: join(root, 'gt') });
    assert.deepEqual(report.images.map((s) => s.name), ['a.jpg', 'b.jpg']);
    assert.ok(report.psnr > 15 && report.psnr < 60, `psnr ${report.psnr}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('unmatched names: a one-line error naming the folders and the files', async () => {
  const { root, results, target } = fixtureFolders();
  try {
    copyFileSync(join(results, 'metric_0.png'), join(results, 'extra.png'));
    rmSync(join(target, 'metric_2.png'));
    await assert.rejects(scoreFolders({ results, target }), (e: Error) => {
      assert.ok(!e.message.includes('\n'), 'one line');
      assert.ok(e.message.includes(results) && e.message.includes(target), e.message);
      assert.match(e.message, /extra\.png/);
      assert.match(e.message, /metric_2\.png/);
      return true;
    });
    // through the command too (main.ts prints the first line of the message)
    await assert.rejects(evalCommand(['--results', results, '--target', target]), (e: Error) => !e.message.includes('\n') && e.message.includes(results));
    await assert.rejects(scoreFolders({ results: join(root, 'nope'), target }), /nope: no such folder/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('blurriest / sharpest 10% are chosen by input PSNR', async () => {
  const r = mulberry32(3);
  const n = 20;
  // input noise grows with i (so input PSNR falls with i); output noise falls with i,
  // so choosing by output PSNR would pick the opposite images
  const pairs = Array.from({ length: n }, (_, i) => {
    const target = randomImage(16, 16, r);
    return {
      name: `img${String(i).padStart(2, '0')}`,
      target,
      input: noisy(target, 4 + 4 * i, r),
      output: noisy(target, 2 + 2 * (n - i), r),
    };
  });
  const report = await scoreImages(pairs);
  const inputPsnr = pairs.map((p) => psnr(p.input, p.target));
  const order = pairs.map((p, i) => ({ name: p.name, v: inputPsnr[i] })).sort((a, b) => a.v - b.v).map((x) => x.name);
  assert.equal(groupSize(n), 2);
  assert.deepEqual(report.blurriest10!.names, order.slice(0, 2));
  assert.deepEqual(report.sharpest10!.names, order.slice(-2));
  assert.deepEqual([...report.blurriest10!.names].sort(), ['img18', 'img19']);
  assert.deepEqual([...report.sharpest10!.names].sort(), ['img00', 'img01']);
  const byName = new Map(report.images.map((s) => [s.name, s]));
  const m = (names: string[], k: 'psnr' | 'ssim' | 'ssim_per_channel' | 'input_psnr') => names.reduce((a, x) => a + byName.get(x)![k]!, 0) / names.length;
  for (const g of [report.blurriest10!, report.sharpest10!]) {
    assert.equal(g.count, 2);
    assert.ok(Math.abs(g.psnr - m(g.names, 'psnr')) < 1e-12);
    assert.ok(Math.abs(g.ssim - m(g.names, 'ssim')) < 1e-12);
    assert.ok(Math.abs(g.ssim_per_channel - m(g.names, 'ssim_per_channel')) < 1e-12);
    assert.ok(Math.abs(g.input_psnr - m(g.names, 'input_psnr')) < 1e-12);
  }
  assert.ok(report.blurriest10!.input_psnr < report.sharpest10!.input_psnr);
  assert.ok(Math.abs(report.input_psnr! - inputPsnr.reduce((a, b) => a + b, 0) / n) < 1e-12);
  assert.ok(Math.abs(report.psnr - report.images.reduce((a, s) => a + s.psnr, 0) / n) < 1e-12);
  // at least one image per group; 10% of GoPro's 1111 test images is 111
  assert.deepEqual([1, 4, 5, 15, 1111].map(groupSize), [1, 1, 1, 2, 111]);
  const one = await scoreImages(pairs.slice(0, 3));
  assert.equal(one.blurriest10!.count, 1);
  assert.equal(one.sharpest10!.count, 1);
  const table = formatTable(report);
  assert.match(table, /blurriest 10% \(2\)/);
  assert.match(table, /sharpest 10% \(2\)/);
  assert.doesNotMatch(formatTable(report, { maxRows: 5 }), /img00/);
  assert.match(formatTable(report, { maxRows: 5, perImage: true }), /img00/);
  // without inputs there are no groups
  const noInput = await scoreImages(pairs.map(({ name, output, target }) => ({ name, output, target })));
  assert.equal(noInput.blurriest10, null);
  assert.equal(noInput.sharpest10, null);
  assert.equal(noInput.input_psnr, undefined);
});

test('float outputs are clamped, scaled by 255 and rounded (half to even) before scoring', async () => {
  assert.deepEqual([...quantize01(new Float32Array([-0.2, 0, 0.5, 1.5 / 255, 2.5 / 255, 1, 7, NaN]))], [0, 0, 128, 2, 2, 255, 255, 0]);
  const r = mulberry32(11);
  const target = randomImage(16, 16, r);
  const f: RGBImage = { width: 16, height: 16, data: Float32Array.from(target.data, (v) => v / 255 + 0.0004) };
  const rep = await scoreImages([{ name: 'x', output: f, target }]);
  assert.equal(rep.psnr, Infinity); // quantised back to exactly the target
});

/** A GoPro-layout folder DIR/input, DIR/target with a few small pairs. */
async function goproFolder(count: number, w: number, h: number): Promise<string> {
  const root = tmp();
  mkdirSync(join(root, 'input'));
  mkdirSync(join(root, 'target'));
  const r = mulberry32(5);
  for (let i = 0; i < count; i++) {
    const sharpImg = randomImage(w, h, r);
    await writePng(join(root, 'target', `p${i}.png`), sharpImg);
    await writePng(join(root, 'input', `p${i}.png`), noisy(sharpImg, 10 + 10 * i, r));
  }
  return root;
}

test('evaluateModel: identity restore gives output PSNR == input PSNR; --save writes the scored pixels', async () => {
  const root = await goproFolder(3, 40, 36);
  try {
    const save = join(root, 'saved');
    const progress: number[] = [];
    const report = await evaluateModel({ input: root, restore: (img) => img, save, onProgress: (d) => progress.push(d) });
    assert.deepEqual(progress, [0, 1, 2, 3]);
    assert.equal(report.count, 3);
    for (const s of report.images) {
      assert.equal(s.psnr, s.input_psnr);
      assert.equal(s.ssim, s.input_ssim);
    }
    assert.equal(report.psnr, report.input_psnr);
    assert.deepEqual(readdirSync(save).sort(), ['p0.png', 'p1.png', 'p2.png']);
    for (let i = 0; i < 3; i++) {
      const a = await loadImage8(join(save, `p${i}.png`));
      const b = await loadImage8(join(root, 'input', `p${i}.png`));
      assert.deepEqual(a.data, b.data);
    }
    // rescoring the saved outputs gives the same numbers
    const again = await scoreFolders({ results: save, target: root });
    assert.equal(again.folders!.input, join(root, 'input'));
    assert.deepEqual(again.images, report.images);
    assert.deepEqual(again.blurriest10, report.blurriest10);
    // the folders are checked before any model is loaded
    await assert.rejects(evalCommand(['--input', join(root, 'input'), '--weights', '/nonexistent.safetensors']), /no target folder given/);
    // a restore that changes the size is reported
    await assert.rejects(
      evaluateModel({ input: join(root, 'input'), target: join(root, 'target'), restore: (img) => ({ width: 8, height: 8, data: new Float32Array(192) }) }),
      /p0\.png: restore returned 8x8 for a 40x36 input/,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('msdi eval --input/--target runs the model (fixture weights), saves and reports', { skip: !existsSync(fixturePath('msdi_net_w4.weights.safetensors')) }, async () => {
  const root = await goproFolder(2, 48, 40);
  try {
    const save = join(root, 'out');
    const json = join(root, 'report.json');
    const printed = await captureLog(() => evalCommand([
      '--input', join(root, 'input'), '--target', join(root, 'target'),
      '--weights', fixturePath('msdi_net_w4.weights.safetensors'), '--save', save, '--json', json, '--per-image',
    ]));
    assert.match(printed, /blurriest 10% \(1\)/);
    assert.deepEqual(readdirSync(save).sort(), ['p0.png', 'p1.png']);
    const report = JSON.parse(readFileSync(json, 'utf8')) as EvalReport;
    assert.equal(report.count, 2);
    assert.ok(report.images.every((s) => Number.isFinite(s.psnr) && s.input_psnr !== undefined));
    const again = await scoreFolders({ results: save, target: root });
    assert.deepEqual(again.images, report.images);
    await assert.rejects(evalCommand(['--results', save, '--target', root, '--grid', 'official']), /does not apply to --results/);
    await assert.rejects(evalCommand(['--results', save, '--target', root, '--ensemble']), /--ensemble runs the model; it does not apply to --results/);
    await assert.rejects(evalCommand(['--input', root, '--grid', 'tiles']), /expected official or feather for --grid/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
