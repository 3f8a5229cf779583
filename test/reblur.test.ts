/**
 * Blur transfer with levels (src/eval/reblur.ts), the degradation map
 * (src/eval/degradation-map.ts) and their commands, on the bundled joint weights
 * (weights/msdi-joint.safetensors; MSDI_JOINT_WEIGHTS overrides them, for development); the
 * map check on the representation `msdi degradation` shows by default, that of the bundled
 * deblurring weights.
 * The level and map checks test what trained weights must do (more blur with the level, the
 * sharp image kept at level 0, blurred regions told apart); they print the measured numbers.
 * Level 2 extrapolates the representation past the blurry image's (the paper's stronger blur
 * levels); the bundled weights learnt it with the level loss (docs/training-log.md, "Blur levels").
 * The images are made by test/helpers/reblur-pairs.ts (a procedural scene blurred by the
 * training-data synthesiser), so the test needs no data folder.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readImageRGB, writeImageRGB, type RGBImage } from '../src/data/image-io.js';
import { DEFAULT_WEIGHTS, loadModel, type LoadedModel } from '../src/eval/model.js';
import { reblur, tileStarts } from '../src/eval/reblur.js';
import { degradationMap, topEigenvectors } from '../src/eval/degradation-map.js';
import sharpLib from 'sharp';
import { reblurCommand } from '../src/cli/commands/reblur.js';
import { degradationCommand } from '../src/cli/commands/degradation.js';
import { UsageError } from '../src/cli/args.js';
import { MsdiNet } from '../src/models/msdi-net.js';
import { saveWeights } from '../src/nn/state-dict.js';
import { liveTensors } from '../src/engine/index.js';
import { fixturePath } from './helpers/fixtures.js';
import { SIDE, levelPairs, levelStats, psnr } from './helpers/reblur-pairs.js';
import { captureLog } from './helpers/console.js';

const WEIGHTS = process.env.MSDI_JOINT_WEIGHTS || DEFAULT_WEIGHTS.joint;
const pairs = levelPairs();

function crop(img: RGBImage, side: number): RGBImage {
  const x0 = Math.floor((img.width - side) / 2);
  const y0 = Math.floor((img.height - side) / 2);
  const data = new Float32Array(side * side * 3);
  for (let y = 0; y < side; y++) data.set(img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + side) * 3), y * side * 3);
  return { width: side, height: side, data };
}

/** Box blur (radius r, clamped edges) of the columns x0..x1 of an image, in place. */
function boxBlurColumns(img: RGBImage, x0: number, x1: number, r: number): void {
  const { width: W, height: H } = img;
  const src = Float32Array.from(img.data);
  const at = (x: number, y: number, c: number) => src[(Math.min(H - 1, Math.max(0, y)) * W + Math.min(W - 1, Math.max(0, x))) * 3 + c];
  for (let y = 0; y < H; y++) for (let x = x0; x < x1; x++) for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) s += at(x + dx, y + dy, c);
    img.data[(y * W + x) * 3 + c] = s / (2 * r + 1) ** 2;
  }
}

/** Mean colour and mean distance to it over the columns x0..x1 of a map. */
function regionStats(map: RGBImage, x0: number, x1: number): { mean: number[]; spread: number } {
  const mean = [0, 0, 0];
  let n = 0;
  for (let y = 0; y < map.height; y++) for (let x = x0; x < x1; x++) {
    for (let c = 0; c < 3; c++) mean[c] += map.data[(y * map.width + x) * 3 + c];
    n++;
  }
  for (let c = 0; c < 3; c++) mean[c] /= n;
  let spread = 0;
  for (let y = 0; y < map.height; y++) for (let x = x0; x < x1; x++) {
    spread += Math.hypot(...[0, 1, 2].map((c) => map.data[(y * map.width + x) * 3 + c] - mean[c]));
  }
  return { mean, spread: spread / n };
}

test('the joint weights are there', () => {
  assert.ok(existsSync(WEIGHTS), `${WEIGHTS} is missing (the bundled joint weights; MSDI_JOINT_WEIGHTS overrides)`);
});

let model: LoadedModel;
/** The representation `msdi degradation` shows by default: the deblurring weights' encoder. */
let representation: LoadedModel;
before(() => {
  if (existsSync(WEIGHTS)) model = loadModel(WEIGHTS, { kind: 'joint' });
  representation = loadModel(undefined, { kind: 'representation' });
});
after(() => {
  model?.dispose();
  representation?.dispose();
});

test('reblur: levels 0, 0.5, 1 and 2 (extrapolated) blur more and more, level 0 keeps the sharp image', () => {
  const live = liveTensors();
  const levels = [0, 0.5, 1, 2];
  const { energy, psnr0, psnr1 } = levelStats(model, pairs, levels);
  for (let k = 1; k < levels.length; k++) {
    assert.ok(energy[k] < energy[k - 1], `level ${levels[k]} (${energy[k]}) should be blurrier than level ${levels[k - 1]} (${energy[k - 1]})`);
  }
  assert.ok(energy[2] < 0.8 * energy[0], `level 1 (${energy[2]}) should clearly blur more than level 0 (${energy[0]})`);
  assert.ok(energy[3] < 0.85 * energy[1], `level 2 (${energy[3]}) should clearly blur more than level 0.5 (${energy[1]})`);
  assert.ok(psnr0 > 35, `level 0 should stay close to the sharp input (PSNR ${psnr0})`);
  assert.ok(psnr0 > psnr1 + 10, `level 0 (${psnr0} dB) should be much closer to the sharp input than level 1 (${psnr1} dB)`);
  assert.equal(liveTensors(), live, 'reblur leaks no tensors');
});

test('reblur: any size, tiles agree with the whole image', () => {
  const p = pairs[0];
  const odd = crop(p.sharp, 83);
  const out = reblur(model, odd, p.blurry);
  assert.deepEqual([out.width, out.height], [83, 83]);
  const whole = reblur(model, p.sharp, p.blurry);
  const tiled = reblur(model, p.sharp, p.blurry, { maxWholePixels: 1, tile: 128, overlap: 32 });
  assert.ok(psnr(whole, tiled) > 33, `tiled vs whole ${psnr(whole, tiled)} dB`);
  assert.deepEqual(tileStarts(192, 128, 32), [0, 64]);
  assert.deepEqual(tileStarts(100, 128, 32), [0]);
  assert.throws(() => reblur(model, p.sharp, p.blurry, { level: 2.5 }), /expected a number in \[0, 2\] for level, got 2.5/);
  assert.throws(() => reblur(model, p.sharp, p.blurry, { level: Number.NaN }), /for level/);
});

test('reblur with amp bf16: the same transfer to within bf16 rounding, at every level', () => {
  const p = pairs[0];
  for (const level of [0.5, 2]) {
    const full = reblur(model, p.sharp, p.blurry, { level });
    const bf16 = reblur(model, p.sharp, p.blurry, { level, amp: 'bf16' });
    const apart = psnr(full, bf16);
    assert.ok(apart > 45 && apart < Infinity, `level ${level}: bf16 vs float32 ${apart} dB`);
  }
  assert.throws(() => reblur(model, p.sharp, p.blurry, { amp: 'fp16' as never }), /'off' or 'bf16' for amp, got "fp16"/);
});

test('degradation map: a blurred half and a sharp half of one image differ', () => {
  const img = { ...pairs[0].sharp, data: Float32Array.from(pairs[0].sharp.data) };
  boxBlurColumns(img, 0, SIDE / 2, 4);
  const map = degradationMap(representation, img);
  assert.deepEqual([map.width, map.height], [SIDE, SIDE]);
  const band = SIDE / 8; // leave out the seam, where the bilinear map crosses over
  const left = regionStats(map, 0, SIDE / 2 - band);
  const right = regionStats(map, SIDE / 2 + band, SIDE);
  const between = Math.hypot(...left.mean.map((m, c) => m - right.mean[c]));
  console.log(`# degradation map: distance between halves ${between.toFixed(3)}, spread within ${left.spread.toFixed(3)} (blurred) / ${right.spread.toFixed(3)} (sharp)`);
  assert.ok(between > Math.max(left.spread, right.spread), `halves ${between} vs spread ${left.spread}, ${right.spread}`);
  // Overlay: a blend of photo and map.
  const half = degradationMap(representation, img, { overlay: 0.5 });
  const i = 1000;
  assert.ok(Math.abs(half.data[i] - (0.5 * map.data[i] + 0.5 * img.data[i])) < 1e-5);
  assert.throws(() => degradationMap(representation, img, { overlay: 2 }), /expected a number in \[0, 1\] for overlay/);
});

test('degradation map: msdi_net weights work, the no-degradation ablation is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'msdi-map-'));
  try {
    const img = pairs[0].blurry;
    const fixture = fixturePath('msdi_net_w4.weights.safetensors');
    if (existsSync(fixture)) {
      const m = loadModel(fixture);
      try {
        const map = degradationMap(m, img);
        assert.deepEqual([map.width, map.height], [img.width, img.height]);
        assert.ok(map.data.every((v) => v >= 0 && v <= 1));
      } finally {
        m.dispose();
      }
    }
    const ablation = new MsdiNet({ wf: 4, version: 1, degradation: false });
    const file = join(dir, 'no-degradation.safetensors');
    saveWeights(ablation, file);
    ablation.dispose();
    const m = loadModel(file);
    try {
      assert.throws(() => degradationMap(m, img), /without the degradation representation/);
      assert.throws(() => reblur(m, img, img), /msdi_net weights cannot reblur/);
    } finally {
      m.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('eigenvectors: the top principal directions of a known covariance', () => {
  // diag(5, 3, 1, 0.5) rotated by a permutation: eigenvectors are unit axes.
  const n = 4;
  const cov = new Float64Array(n * n);
  [[2, 5], [0, 3], [3, 1], [1, 0.5]].forEach(([i, v]) => (cov[i * n + i] = v));
  const [a, b, c] = topEigenvectors(cov, n, 3);
  assert.ok(Math.abs(a[2] - 1) < 1e-6 && Math.abs(b[0] - 1) < 1e-6 && Math.abs(c[3] - 1) < 1e-6);
});

test('msdi reblur and msdi degradation: happy paths and errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'msdi-reblur-'));
  try {
    const sharp = join(dir, 'sharp.png');
    const blurry = join(dir, 'blurry.png');
    await writeImageRGB(sharp, crop(pairs[1].sharp, 96));
    await writeImageRGB(blurry, pairs[1].blurry);
    const out = join(dir, 'out.png');
    const w = ['--weights', WEIGHTS];
    const log = await captureLog(() => reblurCommand([sharp, '--like', blurry, '--level', '1.5', '-o', out, ...w]));
    assert.match(log, /reblurred like .* at level 1.5/);
    const img = await readImageRGB(out);
    assert.deepEqual([img.width, img.height], [96, 96]);
    await assert.rejects(reblurCommand([sharp, '--like', blurry, '-o', out, ...w]), /out.png: already exists \(--force to overwrite\)/);
    await captureLog(() => reblurCommand([sharp, '--like', blurry, '-o', out, '--force', ...w]));
    await assert.rejects(reblurCommand([join(dir, 'nope.png'), '--like', blurry, '-o', join(dir, 'x.png'), ...w]), /nope.png: no such file/);
    await assert.rejects(reblurCommand([sharp, '--like', blurry, '-o', join(dir, 'x.png'), '--weights', join(dir, 'nope.safetensors')]), /nope.safetensors: no such file/);
    await assert.rejects(reblurCommand([sharp, '--like', blurry, '--level', '3', '-o', join(dir, 'x.png'), ...w]), UsageError);
    await assert.rejects(reblurCommand([sharp, '-o', join(dir, 'x.png'), ...w]), UsageError);
    await assert.rejects(reblurCommand([sharp, '--like', blurry, '-o', join(dir, 'x.png'), '--amp', 'fp16', ...w]), /--amp: expected off or bf16/);
    await assert.rejects(reblurCommand([sharp, '--like', blurry, '-o', join(dir, 'x.bmp'), ...w]), UsageError);
    const fixture = fixturePath('msdi_net_w4.weights.safetensors');
    if (existsSync(fixture)) {
      await assert.rejects(reblurCommand([sharp, '--like', blurry, '-o', join(dir, 'x.png'), '--weights', fixture]), /msdi_net weights cannot reblur/);
    }
    const junk = join(dir, 'junk.safetensors');
    writeFileSync(junk, 'not weights');
    await assert.rejects(reblurCommand([sharp, '--like', blurry, '-o', join(dir, 'x.png'), '--weights', junk]), /junk.safetensors/);
    assert.ok(!existsSync(join(dir, 'x.png')), 'failed runs write nothing');

    const map = join(dir, 'map.png');
    const mlog = await captureLog(() => degradationCommand([blurry, '-o', map, '--overlay', '0.5', ...w]));
    assert.match(mlog, /degradation map of/);
    const mi = await readImageRGB(map);
    assert.deepEqual([mi.width, mi.height], [SIDE, SIDE]);
    await assert.rejects(degradationCommand([blurry, '-o', map, ...w]), /already exists/);
    await assert.rejects(degradationCommand([blurry, '-o', map, '--overlay', 'x', '--force', ...w]), UsageError);
    await assert.rejects(degradationCommand([join(dir, 'nope.png'), '-o', join(dir, 'm2.png'), ...w]), /nope.png: no such file/);

    // Headers are checked before anything is decoded, as msdi deblur does; alpha is kept.
    const text = join(dir, 'notes.png');
    writeFileSync(text, 'not an image');
    await assert.rejects(reblurCommand([text, '--like', blurry, '-o', join(dir, 'x.png'), ...w]), /notes.png: .*not an image/i);
    await assert.rejects(degradationCommand([text, '-o', join(dir, 'm2.png'), ...w]), /notes.png: .*not an image/i);
    await assert.rejects(reblurCommand([sharp, '--like', blurry, '-o', join(dir, 'x.png'), '--max-pixels', '5000', ...w]), /sharp.png: image is 96 x 96 .*above the limit/);
    await assert.rejects(degradationCommand([blurry, '-o', join(dir, 'm2.png'), '--max-pixels', '5000', ...w]), /blurry.png: .*above the limit/);
    assert.ok(!existsSync(join(dir, 'x.png')) && !existsSync(join(dir, 'm2.png')), 'refused runs write nothing');
    const rgba = join(dir, 'sharp-rgba.png');
    const s96 = crop(pairs[1].sharp, 96);
    const px = Buffer.alloc(96 * 96 * 4);
    for (let i = 0; i < 96 * 96; i++) {
      for (let c = 0; c < 3; c++) px[i * 4 + c] = Math.round(s96.data[i * 3 + c]! * 255);
      px[i * 4 + 3] = i % 96 < 48 ? 255 : 128;
    }
    await sharpLib(px, { raw: { width: 96, height: 96, channels: 4 } }).png().toFile(rgba);
    await captureLog(() => reblurCommand([rgba, '--like', blurry, '-o', join(dir, 'rgba-out.png'), ...w]));
    const meta = await sharpLib(join(dir, 'rgba-out.png')).metadata();
    assert.equal(meta.channels, 4, 'the sharp image\'s alpha is kept');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
