import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync, crc32 } from 'node:zlib';

import { psnr, ssim3d, ssimPerChannel, loadImage8, gaussianKernel, toYChannel, cropView, type Image8 } from '../src/metrics/index.js';

// fixtures live in the repo root's sibling: <root>/../shared/fixtures/
const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/', import.meta.url));

interface MetricFixture {
  target: string;
  output: string;
  psnr: number;
  ssim_3d: number;
  ssim_per_channel: number;
}

function readFixtures(): MetricFixture[] {
  const json = JSON.parse(readFileSync(join(FIXTURES, 'fixtures.json'), 'utf8')) as { metrics: MetricFixture[] };
  return json.metrics;
}

/** Reorders the channels of an RGB image: out[c] = in[order[c]]. */
function permute(img: Image8, order: [number, number, number]): Image8 {
  const data = new Uint8Array(img.data.length);
  for (let i = 0; i < data.length; i += 3) {
    for (let c = 0; c < 3; c++) data[i + c] = img.data[i + order[c]];
  }
  return { ...img, data };
}

function constant(width: number, height: number, rgb: number[]): Image8 {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rgb[i % 3];
  return { width, height, channels: 3, data };
}

function random(width: number, height: number, channels: number, seed: number): Image8 {
  const data = new Uint8Array(width * height * channels);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, channels, data };
}

/**
 * Brute-force SSIM straight from the Python: `weight(dh, dw, dc)` over the full window,
 * `index(h, w, c)` returns the sample (or undefined to skip the output position).
 */
function bruteSsim(a: Image8, b: Image8, mode: '3d' | 'valid' | 'replicate2d', C1: number, C2: number): number {
  const g = gaussianKernel();
  const { width: W, height: H, channels: C } = a;
  const cl = (v: number, n: number) => Math.min(Math.max(v, 0), n - 1);
  let sum = 0;
  let count = 0;
  for (let h = 0; h < H; h++) {
    for (let w = 0; w < W; w++) {
      if (mode === 'valid' && (h < 5 || w < 5 || h >= H - 5 || w >= W - 5)) continue;
      for (let c = 0; c < C; c++) {
        let m1 = 0, m2 = 0, e11 = 0, e22 = 0, e12 = 0;
        for (let i = 0; i < 11; i++) {
          for (let j = 0; j < 11; j++) {
            const kd = mode === '3d' ? 11 : 1;
            for (let d = 0; d < kd; d++) {
              const cc = mode === '3d' ? cl(c + d - 5, C) : c;
              const wt = g[i] * g[j] * (mode === '3d' ? g[d] : 1);
              const p = (cl(h + i - 5, H) * W + cl(w + j - 5, W)) * C + cc;
              const x = a.data[p], y = b.data[p];
              m1 += wt * x; m2 += wt * y; e11 += wt * x * x; e22 += wt * y * y; e12 += wt * x * y;
            }
          }
        }
        const s1 = e11 - m1 * m1, s2 = e22 - m2 * m2, s12 = e12 - m1 * m2;
        sum += ((2 * m1 * m2 + C1) * (2 * s12 + C2)) / ((m1 * m1 + m2 * m2 + C1) * (s1 + s2 + C2));
        count++;
      }
    }
  }
  return sum / count;
}

const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;

test('fixtures: psnr / ssim_3d / ssim_per_channel match the official code', async () => {
  const fixtures = readFixtures();
  assert.ok(fixtures.length > 0);
  for (const f of fixtures) {
    const out = await loadImage8(join(FIXTURES, f.output));
    const tgt = await loadImage8(join(FIXTURES, f.target));
    const p = psnr(out, tgt);
    const s3 = ssim3d(out, tgt);
    const sc = ssimPerChannel(out, tgt);
    assert.ok(Math.abs(p - f.psnr) < 1e-3, `${f.output}: psnr ${p} vs ${f.psnr}`);
    // The reference ran Conv3d in float32; its accumulation error biases ssim_3d by ~1e-5
    // (we compute in float64). See src/metrics/ssim.ts.
    assert.ok(Math.abs(s3 - f.ssim_3d) < 1e-4, `${f.output}: ssim_3d ${s3} vs ${f.ssim_3d}`);
    assert.ok(Math.abs(sc - f.ssim_per_channel) < 1e-4, `${f.output}: ssim_per_channel ${sc} vs ${f.ssim_per_channel}`);
    // argument order: psnr and ssim are symmetric in (img1, img2)
    assert.ok(Math.abs(psnr(tgt, out) - p) < 1e-12);
    assert.ok(Math.abs(ssim3d(tgt, out) - s3) < 1e-12);
  }
});

test('channel order: RGB and BGR give the same 3-D SSIM (and reproduce the fixture), GRB does not', async () => {
  // The official code works on cv2 (BGR) arrays, we load RGB. Reversing the channel axis
  // leaves the 3-D SSIM unchanged (symmetric kernel + symmetric replicate padding), so both
  // orders reproduce fixtures.json; a non-reversing permutation such as GRB moves it.
  let worstGrb = 0;
  for (const f of readFixtures()) {
    const out = await loadImage8(join(FIXTURES, f.output));
    const tgt = await loadImage8(join(FIXTURES, f.target));
    const rgb = ssim3d(out, tgt);
    const bgr = ssim3d(permute(out, [2, 1, 0]), permute(tgt, [2, 1, 0]));
    const grb = ssim3d(permute(out, [1, 0, 2]), permute(tgt, [1, 0, 2]));
    assert.ok(Math.abs(rgb - bgr) < 1e-12, `${f.output}: rgb ${rgb} vs bgr ${bgr}`);
    assert.ok(Math.abs(bgr - f.ssim_3d) < 1e-4);
    assert.ok(Math.abs(grb - f.ssim_3d) > Math.abs(rgb - f.ssim_3d), `${f.output}: grb ${grb} is not worse`);
    worstGrb = Math.max(worstGrb, Math.abs(grb - f.ssim_3d));
    // psnr and per-channel SSIM do not depend on the channel order at all
    assert.ok(Math.abs(psnr(permute(out, [1, 0, 2]), permute(tgt, [1, 0, 2])) - f.psnr) < 1e-9);
    assert.ok(Math.abs(ssimPerChannel(permute(out, [2, 0, 1]), permute(tgt, [2, 0, 1])) - f.ssim_per_channel) < 1e-9);
  }
  assert.ok(worstGrb > 1e-4, `a GRB order should miss the fixture by > 1e-4, worst ${worstGrb}`);
});

test('identical images: PSNR Infinity, SSIM 1', () => {
  const a = random(23, 17, 3, 7);
  const b: Image8 = { ...a, data: Float32Array.from(a.data) };
  assert.equal(psnr(a, a), Infinity);
  assert.equal(psnr(a, b), Infinity);
  assert.ok(Math.abs(ssim3d(a, b) - 1) < 1e-12);
  assert.ok(Math.abs(ssimPerChannel(a, b) - 1) < 1e-12);
  assert.ok(Math.abs(ssim3d(a, b, { testYChannel: true }) - 1) < 1e-12);
  assert.ok(Math.abs(ssimPerChannel(a, b, { testYChannel: true, cropBorder: 3 }) - 1) < 1e-12);
});

test('constant offset of one gray level: PSNR 20 log10(255) = 48.1308..., SSIM 1 - 1/(2c^2+2c+1+C1)', () => {
  const a = constant(32, 24, [100, 100, 100]);
  const b = constant(32, 24, [101, 101, 101]);
  const expected = 20 * Math.log10(255);
  assert.ok(Math.abs(expected - 48.1308036086791) < 1e-12);
  assert.ok(Math.abs(psnr(a, b) - expected) < 1e-12);
  assert.ok(Math.abs(psnr(a, b, { cropBorder: 4 }) - expected) < 1e-12);
  // constant images: sigma = 0, only the luminance term remains
  const s = 1 - 1 / (2 * 100 * 100 + 2 * 100 + 1 + C1);
  assert.ok(Math.abs(ssim3d(a, b) - s) < 1e-12);
  assert.ok(Math.abs(ssimPerChannel(a, b) - s) < 1e-12);
});

test('separable implementation equals the brute-force 3-D / 2-D windows', () => {
  for (const [w, h, seed] of [[17, 13, 1], [11, 11, 2], [12, 25, 3]] as const) {
    const a = random(w, h, 3, seed);
    const b = random(w, h, 3, seed + 100);
    // make b correlated with a so that sigma12 matters
    for (let i = 0; i < b.data.length; i++) b.data[i] = (a.data[i] * 3 + b.data[i]) >> 2;
    assert.ok(Math.abs(ssim3d(a, b) - bruteSsim(a, b, '3d', C1, C2)) < 1e-12);
    assert.ok(Math.abs(ssimPerChannel(a, b) - bruteSsim(a, b, 'valid', C1, C2)) < 1e-12);
  }
  // 3-D window on other channel counts (the channel axis is replicate-padded as well)
  for (const ch of [1, 2, 4]) {
    const a = random(14, 12, ch, 5 + ch);
    const b = random(14, 12, ch, 50 + ch);
    assert.ok(Math.abs(ssim3d(a, b) - bruteSsim(a, b, '3d', C1, C2)) < 1e-12, `channels ${ch}`);
  }
  // tiny images work for the replicate-padded 3-D SSIM
  const t1 = random(3, 2, 3, 9);
  const t2 = random(3, 2, 3, 10);
  assert.ok(Math.abs(ssim3d(t1, t2) - bruteSsim(t1, t2, '3d', C1, C2)) < 1e-12);
});

test('crop_border removes the edge pixels before the metric', () => {
  const a = random(30, 20, 3, 11);
  const b = random(30, 20, 3, 12);
  const crop = (img: Image8, c: number): Image8 => {
    const v = cropView(img, c);
    const data = new Uint8Array(v.width * v.height * 3);
    for (let y = 0; y < v.height; y++) data.set(img.data.subarray(v.offset + y * v.stride, v.offset + y * v.stride + v.width * 3), y * v.width * 3);
    return { width: v.width, height: v.height, channels: 3, data };
  };
  const a4 = crop(a, 4);
  const b4 = crop(b, 4);
  assert.equal(a4.width, 22);
  assert.equal(a4.height, 12);
  assert.equal(psnr(a, b, { cropBorder: 4 }), psnr(a4, b4));
  assert.equal(ssim3d(a, b, { cropBorder: 4 }), ssim3d(a4, b4));
  assert.equal(ssimPerChannel(a, b, { cropBorder: 4 }), ssimPerChannel(a4, b4));
  assert.notEqual(psnr(a, b, { cropBorder: 4 }), psnr(a, b));
});

test('test_y_channel: BT.601 Y on RGB input, as BasicSR to_y_channel on the BGR array', () => {
  // Y of pure red (R=255) is 16 + 65.481, of pure blue 16 + 24.966, of black 16, of white 235
  const y = (rgb: number[]) => toYChannel(cropView(constant(1, 1, rgb), 0)).data[0];
  assert.ok(Math.abs(y([255, 0, 0]) - 81.481) < 1e-4);
  assert.ok(Math.abs(y([0, 0, 255]) - 40.966) < 1e-4);
  assert.ok(Math.abs(y([0, 0, 0]) - 16) < 1e-4);
  assert.ok(Math.abs(y([255, 255, 255]) - 235) < 1e-4);
  const red = constant(16, 16, [255, 0, 0]);
  const black = constant(16, 16, [0, 0, 0]);
  assert.ok(Math.abs(psnr(red, black, { testYChannel: true }) - 20 * Math.log10(255 / 65.481)) < 1e-4);
  // the Y-channel SSIMs: repo `_ssim_cly` (2-D, replicate border) and classic `_ssim` (valid)
  const a = random(19, 15, 3, 21);
  const b = random(19, 15, 3, 22);
  const ya = toYChannel(cropView(a, 0));
  const yb = toYChannel(cropView(b, 0));
  const asImage = (v: typeof ya): Image8 => ({ width: v.width, height: v.height, channels: 1, data: Float32Array.from(v.data) });
  assert.ok(Math.abs(ssim3d(a, b, { testYChannel: true }) - bruteSsim(asImage(ya), asImage(yb), 'replicate2d', C1, C2)) < 1e-9);
  assert.ok(Math.abs(ssimPerChannel(a, b, { testYChannel: true }) - bruteSsim(asImage(ya), asImage(yb), 'valid', C1, C2)) < 1e-9);
});

test('maxValue: default 255, explicit, and BasicSR auto rule', () => {
  const a = constant(12, 12, [1, 0, 1]);
  const b = constant(12, 12, [0, 0, 0]);
  const mse = 2 / 3;
  assert.ok(Math.abs(psnr(a, b) - 20 * Math.log10(255 / Math.sqrt(mse))) < 1e-12);
  assert.ok(Math.abs(psnr(a, b, { maxValue: 'auto' }) - 20 * Math.log10(1 / Math.sqrt(mse))) < 1e-12);
  assert.ok(Math.abs(psnr(a, b, { maxValue: 2 }) - 20 * Math.log10(2 / Math.sqrt(mse))) < 1e-12);
  assert.notEqual(ssim3d(a, b, { maxValue: 'auto' }), ssim3d(a, b));
  assert.throws(() => psnr(a, b, { maxValue: -1 }), /maxValue/);
});

test('argument validation', () => {
  const a = random(20, 20, 3, 1);
  assert.throws(() => psnr(a, random(20, 19, 3, 1)), /psnr: expected img2 of shape 20x20x3/);
  assert.throws(() => ssim3d(a, { ...a, data: new Uint8Array(5) }), /expected 1200 samples/);
  assert.throws(() => ssimPerChannel(random(10, 30, 3, 1), random(10, 30, 3, 2)), /at least 11x11/);
  assert.throws(() => ssimPerChannel(a, a, { cropBorder: 5 }), /at least 11x11/);
  assert.throws(() => psnr(a, a, { cropBorder: 10 }), /cropBorder/);
  assert.throws(() => psnr(a, a, { cropBorder: 1.5 }), /non-negative integer for cropBorder/);
});

/** Minimal PNG writer for a 16-bit RGB test image. */
function png16(width: number, height: number, values: number[]): Buffer {
  const chunk = (type: string, body: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const tb = Buffer.concat([Buffer.from(type, 'latin1'), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(tb));
    return Buffer.concat([len, tb, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 16; // bit depth
  ihdr[9] = 2; // colour type RGB
  const raw = Buffer.alloc(height * (1 + width * 6));
  let o = 0;
  let k = 0;
  for (let y = 0; y < height; y++) {
    raw[o++] = 0; // filter: none
    for (let i = 0; i < width * 3; i++, o += 2) raw.writeUInt16BE(values[k++], o);
  }
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test('loadImage8: RGB order, 3 channels, 16-bit reduced to 8-bit, errors name the file', async () => {
  const fx = readFixtures()[0];
  const img = await loadImage8(join(FIXTURES, fx.target));
  assert.equal(img.channels, 3);
  assert.equal(img.data.length, img.width * img.height * 3);
  assert.ok(img.data instanceof Uint8Array);

  const dir = mkdtempSync(join(tmpdir(), 'msdi-metrics-'));
  try {
    const p = join(dir, 'rgb16.png');
    writeFileSync(p, png16(2, 1, [65535, 0, 0, 0, 128 * 257, 65535]));
    const im = await loadImage8(p);
    assert.deepEqual([im.width, im.height, im.channels], [2, 1, 3]);
    assert.deepEqual(Array.from(im.data), [255, 0, 0, 0, 128, 255]);
    await assert.rejects(loadImage8(join(dir, 'missing.png')), /loadImage8: cannot decode image file .*missing\.png/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
