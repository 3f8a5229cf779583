/**
 * Deblurring photos of any size: tile plans (the official grids() positions, feather windows),
 * blending, deblurImage with a real (random-init, wf 4) network and with stand-in models whose
 * result is known, image files (grey, alpha, 16 bits, orientation, errors, decompression
 * bombs, atomic writes) and the `msdi deblur` command.
 *
 * The real network costs about a second per 256 x 256 tile on this machine, so the tests that
 * run it use small images and small tiles.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';

import { F, Tensor, manualSeed, tidy } from '../src/engine/index.js';
import { MsdiNet } from '../src/models/msdi-net.js';
import { saveWeights } from '../src/nn/state-dict.js';
import { DEFAULT_WEIGHTS, deblurFn, loadModel, type LoadedModel } from '../src/eval/model.js';
import { deblurImage, planFor, selfEnsemble } from '../src/eval/deblur.js';
import {
  TileAccumulator, extractTile, featherGrid, featherPositions, featherWindows, officialGrid, officialPositions,
  reflectIndex, tileAt, tileCount, windowSum, type TilePlan,
} from '../src/eval/tiles.js';
import { probeImageFile, readImageFile, writeImageFile } from '../src/data/image-file.js';
import type { RGBImage } from '../src/data/image-io.js';
import { deblurCommand } from '../src/cli/commands/deblur.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
let dir = '';
let weights = '';
let model: LoadedModel;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'msdi-deblur-test-'));
  weights = join(dir, 'w4.safetensors');
  manualSeed(7);
  const net = new MsdiNet({ wf: 4, version: 1 });
  saveWeights(net, weights);
  net.dispose();
  model = loadModel(weights);
});

after(() => {
  model?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ helpers

/** A deterministic test photo: gradients and discs, blurred (sharp, Gaussian sigma 2). */
async function photo(width: number, height: number, seed = 1): Promise<RGBImage> {
  const rgb = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = (x * 255) / width;
      rgb[i + 1] = (y * 255) / height;
      rgb[i + 2] = 128;
    }
  }
  const discs = Math.max(3, Math.round((width * height) / 4000));
  for (let k = 0; k < discs; k++) {
    const cx = rnd() * width, cy = rnd() * height, r = 4 + rnd() * Math.min(width, height) / 5;
    const c = [rnd() * 255, rnd() * 255, rnd() * 255];
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(height, cy + r); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(width, cx + r); x++) {
        if ((x - cx) ** 2 + (y - cy) ** 2 < r * r) rgb.set(c, (y * width + x) * 3);
      }
    }
  }
  const blurred = await sharp(rgb, { raw: { width, height, channels: 3 } }).blur(2).raw().toBuffer();
  return { width, height, data: Float32Array.from(blurred, (v) => v / 255) };
}

/** A stand-in for a loaded model: deblurFn calls net.forward(x, null).deblurred for non-MsdiNet nets. */
function standIn(forward: (x: Tensor) => Tensor, wf = 4): LoadedModel {
  const net = { forward: (x: Tensor) => ({ deblurred: forward(x) }) };
  return { spec: { arch: 'MSDI2E', wf, ndf: wf, degradation: true, reblur: true }, net, source: 'stand-in', device: 'cpu', dispose() {} } as unknown as LoadedModel;
}

/** Per-channel 5 x 5 blur with zero padding: position-independent except near the borders of what it sees. */
function blurModel(): LoadedModel {
  return standIn((x) => {
    const k = Tensor.full([3, 1, 5, 5], 1 / 25);
    return F.conv2d(x, k, null, { padding: 2, groups: 3 });
  });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The official grids() loop, transliterated: (i, j) in the order the official code makes the crops. */
function officialLoop(h: number, w: number, crop: number): Array<[number, number]> {
  const numRow = Math.floor((h - 1) / crop) + 1;
  const numCol = Math.floor((w - 1) / crop) + 1;
  const stepJ = numCol === 1 ? crop : Math.ceil((w - crop) / (numCol - 1) - 1e-8);
  const stepI = numRow === 1 ? crop : Math.ceil((h - crop) / (numRow - 1) - 1e-8);
  const out: Array<[number, number]> = [];
  let i = 0;
  let lastI = false;
  while (i < h && !lastI) {
    let j = 0;
    if (i + crop >= h) {
      i = h - crop;
      lastI = true;
    }
    let lastJ = false;
    while (j < w && !lastJ) {
      if (j + crop >= w) {
        j = w - crop;
        lastJ = true;
      }
      out.push([i, j]);
      j += stepJ;
    }
    i += stepI;
  }
  return out;
}

const tilesOf = (p: TilePlan): Array<[number, number]> =>
  Array.from({ length: tileCount(p) }, (_, k) => { const t = tileAt(p, k); return [t.y, t.x] as [number, number]; });

/** A PNG whose header declares `w` x `h` (8-bit RGB) with a tiny IDAT: a decompression bomb's shape. */
function bombPng(w: number, h: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(4096))), chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function rejectsOneLine(p: Promise<unknown>, re: RegExp): Promise<string> {
  let msg = '';
  await assert.rejects(p, (e: Error) => {
    msg = e.message;
    return true;
  });
  assert.match(msg, re);
  assert.ok(!msg.includes('\n'), `one line: ${JSON.stringify(msg)}`);
  return msg;
}

const noTemps = (d: string): void => assert.deepEqual(readdirSync(d).filter((n) => n.endsWith('.tmp')), [], 'no temporary files left');

// ------------------------------------------------------------------ tile plans

describe('tile plans', () => {
  test('officialGrid reproduces the official grids() positions', () => {
    // Hand-derived from the official code (crop 256).
    assert.deepEqual(officialPositions(720, 256), [0, 232, 464]); // 3 rows, step ceil(464/2) = 232
    assert.deepEqual(officialPositions(1280, 256), [0, 256, 512, 768, 1024]); // 5 cols, step 256: no overlap
    assert.deepEqual(officialPositions(256, 256), [0]);
    assert.deepEqual(officialPositions(257, 256), [0, 1]); // step ceil(1/1)
    assert.deepEqual(officialPositions(300, 256), [0, 44]);
    assert.deepEqual(officialPositions(513, 256), [0, 129, 257]); // 258 + 256 >= 513: clamped to 257
    assert.deepEqual(officialPositions(700, 256), [0, 222, 444]);
    assert.deepEqual(officialPositions(1000, 256), [0, 248, 496, 744]);
    assert.deepEqual(officialPositions(1025, 256), [0, 193, 386, 579, 769]);
    const gopro = officialGrid(720, 1280, 256);
    assert.equal(tileCount(gopro), 15);
    assert.equal(gopro.blend, 'uniform');
    assert.deepEqual(tilesOf(gopro), officialLoop(720, 1280, 256));
    // and the transliterated loop, order included, for many sizes and crops
    for (const [h, w, c] of [[720, 1280, 256], [257, 513, 256], [1000, 700, 256], [3000, 4000, 256], [131, 257, 64], [800, 800, 128], [1001, 333, 96]]) {
      assert.deepEqual(tilesOf(officialGrid(h, w, c)), officialLoop(h, w, c), `${h}x${w} crop ${c}`);
    }
    let s = 3;
    for (let k = 0; k < 200; k++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const h = 256 + (s % 3000), w = 256 + ((s >>> 12) % 3000);
      assert.deepEqual(tilesOf(officialGrid(h, w, 256)), officialLoop(h, w, 256), `${h}x${w}`);
    }
  });

  test('images smaller than the tile are padded up to it', () => {
    const p = officialGrid(9, 15, 256);
    assert.deepEqual([p.ys, p.xs, p.tileH, p.tileW], [[0], [0], 256, 256]);
    const q = featherGrid(131, 257, 256, 32);
    assert.deepEqual([q.ys, q.xs], [[0], [0, 1]]);
    assert.throws(() => officialGrid(100, 100, 250), /multiple of 16/);
    assert.throws(() => featherGrid(100, 100, 64, 64), /overlap/);
    assert.deepEqual([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8].map((i) => reflectIndex(i, 3)), [1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0]);
    assert.equal(reflectIndex(200, 1), 0);
  });

  test('feather tiles overlap by at least the overlap, evenly, and their weights sum to 1', () => {
    for (const [n, tile, ov] of [[1000, 256, 32], [700, 256, 32], [4000, 256, 32], [3000, 256, 64], [300, 128, 32], [257, 256, 32], [513, 256, 0]]) {
      const pos = featherPositions(n, tile, ov);
      assert.equal(pos[0], 0);
      assert.equal(pos.at(-1), n - tile);
      const steps = pos.slice(1).map((p, k) => p - pos[k]);
      for (const st of steps) assert.ok(tile - st >= ov, `${n}/${tile}/${ov}: overlap ${tile - st} >= ${ov}`);
      if (steps.length) assert.ok(Math.max(...steps) - Math.min(...steps) <= 1, `evenly spaced: ${steps}`);
      // the fewest tiles that achieve it
      if (pos.length > 2) assert.ok((n - tile) / (pos.length - 2) > tile - ov, 'one tile fewer would not overlap enough');
      const win = featherWindows(pos, tile);
      for (const w of win) for (const v of w) assert.ok(v > 0 && v <= 1);
      const sum = windowSum(pos, win, n);
      if (steps.every((st) => st >= tile / 2)) {
        for (let i = 0; i < n; i++) assert.ok(Math.abs(sum[i] - 1) < 1e-6, `${n}/${tile}/${ov}: weights sum to ${sum[i]} at ${i}`);
      } else {
        for (let i = 0; i < n; i++) assert.ok(sum[i] > 0);
      }
    }
    // the ramps are smooth: no weight jumps by more than a small step
    const win = featherWindows(featherPositions(1000, 256, 32), 256);
    for (const w of win) for (let i = 1; i < w.length; i++) assert.ok(Math.abs(w[i] - w[i - 1]) < 0.1);
  });

  test('blending tiles that are crops of an image gives back the image, padded sizes included', async () => {
    const img = await photo(300, 170);
    for (const plan of [officialGrid(170, 300, 64), featherGrid(170, 300, 64, 16), featherGrid(170, 300, 256, 32), officialGrid(170, 300, 256)]) {
      const acc = new TileAccumulator(plan);
      const buf = new Float32Array(3 * plan.tileH * plan.tileW);
      for (let k = 0; k < tileCount(plan); k++) {
        const { y, x } = tileAt(plan, k);
        extractTile(img, plan, y, x, buf);
        acc.add(k, buf);
      }
      const out = acc.result();
      assert.deepEqual([out.width, out.height], [300, 170]);
      assert.ok(maxAbsDiff(out.data, img.data) < 1e-6, `${plan.blend} ${plan.tileH}`);
    }
    const acc = new TileAccumulator(featherGrid(170, 300, 64, 16));
    assert.throws(() => acc.result(), /never added/);
  });
});

// ------------------------------------------------------------------ deblurImage

describe('deblurImage', () => {
  test('1000 x 700 with a stand-in: identity in, identity out; a position-independent model gives its whole-image result', async (t) => {
    const img = await photo(1000, 700);
    for (const grid of ['feather', 'official'] as const) {
      const out = deblurImage(standIn((x) => x.mul(1)), img, { grid });
      assert.ok(maxAbsDiff(out.data, img.data) < 1e-6, `identity, ${grid}`);
    }
    // A 5x5 blur with zero padding: tiles disagree with the whole image only within 2 px of
    // their borders; feather blending gives those pixels almost no weight, averaging does not.
    const blur = blurModel();
    const whole = tidy(() => {
      const x = Tensor.fromArray(img.data, [1, 700, 1000, 3]).permute([0, 3, 1, 2]);
      return deblurFn(blur)(x).clamp(0, 1).permute([0, 2, 3, 1]).toFloat32();
    });
    const feather = deblurImage(blur, img, { grid: 'feather' });
    const official = deblurImage(blur, img, { grid: 'official' });
    const dF = maxAbsDiff(feather.data, whole);
    const dO = maxAbsDiff(official.data, whole);
    assert.ok(dF < 3e-3, `feather vs whole image: ${dF}`);
    t.diagnostic(`max |tiled - whole image|: feather ${dF.toExponential(2)}, official (averaged) ${dO.toExponential(2)}`);
    assert.ok(dO > 10 * dF, `averaging shows the tile borders (${dO}), feathering hides them (${dF})`);
  });

  test('one tile equals the network on the whole image', async () => {
    const img = await photo(64, 64, 5);
    const out = deblurImage(model, img, { tile: 64 });
    const direct = tidy(() => {
      const x = Tensor.fromArray(img.data, [1, 64, 64, 3]).permute([0, 3, 1, 2]);
      return deblurFn(model)(x).clamp(0, 1).permute([0, 2, 3, 1]).toFloat32();
    });
    assert.ok(maxAbsDiff(out.data, direct) < 1e-5);
  });

  test('tile borders are measurably no worse than tile centres (real network, real blur)', async (t) => {
    const W = 208, H = 112, tile = 64;
    const img = await photo(W, H, 11);
    const plan = planFor(H, W, { tile, overlap: 16 });
    const out = deblurImage(model, img, { tile, overlap: 16 });
    // residual r = output - input (mean over channels): the network's change to the image
    const r = new Float32Array(W * H);
    for (let i = 0; i < W * H; i++) {
      r[i] = (out.data[i * 3] + out.data[i * 3 + 1] + out.data[i * 3 + 2] - img.data[i * 3] - img.data[i * 3 + 1] - img.data[i * 3 + 2]) / 3;
    }
    // Seams: every interior tile edge and the middle of every overlap, in x and in y.
    const seams = (pos: number[]): number[] => {
      const s = new Set<number>();
      pos.forEach((p, k) => {
        if (k > 0) { s.add(p); s.add((pos[k - 1] + tile + p) >> 1); }
        if (k + 1 < pos.length) s.add(p + tile);
      });
      return [...s];
    };
    const sx = seams(plan.xs), sy = seams(plan.ys);
    assert.ok(sx.length >= 9 && sy.length >= 3, `${sx} / ${sy}`);
    // (1) jumps across a line: |mean over 16-px blocks of r(x) - r(x-1)|, seam lines vs the median line
    const B = 16;
    const jumpX = (x: number): number => {
      let a = 0, n = 0;
      for (let y0 = 0; y0 + B <= H; y0 += B, n++) {
        let m = 0;
        for (let y = y0; y < y0 + B; y++) m += r[y * W + x] - r[y * W + x - 1];
        a += Math.abs(m / B);
      }
      return a / n;
    };
    const jumpY = (y: number): number => {
      let a = 0, n = 0;
      for (let x0 = 0; x0 + B <= W; x0 += B, n++) {
        let m = 0;
        for (let x = x0; x < x0 + B; x++) m += r[y * W + x] - r[(y - 1) * W + x];
        a += Math.abs(m / B);
      }
      return a / n;
    };
    const median = (v: number[]): number => v.sort((a, b) => a - b)[v.length >> 1];
    const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
    const ratioX = mean(sx.map(jumpX)) / median(Array.from({ length: W - 1 }, (_, i) => jumpX(i + 1)));
    const ratioY = mean(sy.map(jumpY)) / median(Array.from({ length: H - 1 }, (_, i) => jumpY(i + 1)));
    // (2) how much the network changes the image: bands around seams vs tile centres
    const near = (v: number, lines: number[], d: number): boolean => lines.some((l) => Math.abs(v - l) <= d);
    let seamSum = 0, seamN = 0, centreSum = 0, centreN = 0;
    for (let y = 8; y < H - 8; y++) {
      for (let x = 8; x < W - 8; x++) {
        const a = Math.abs(r[y * W + x]);
        if (near(x, sx, 2) || near(y, sy, 2)) { seamSum += a; seamN++; } else if (!near(x, sx, 10) && !near(y, sy, 10)) { centreSum += a; centreN++; }
      }
    }
    const ratioMad = seamSum / seamN / (centreSum / centreN);
    t.diagnostic(`seam / typical jump: x ${ratioX.toFixed(2)}, y ${ratioY.toFixed(2)}; |change| seams / centres ${ratioMad.toFixed(2)}`);
    assert.ok(ratioX < 1.6 && ratioY < 1.6, `jumps across seams ${ratioX}, ${ratioY}`);
    assert.ok(ratioMad < 1.5, `change at seams vs centres ${ratioMad}`);
  });

  test('odd sizes: 257 x 131 and 15 x 9 keep their size; batches do not change the result', async () => {
    for (const [w, h, tile] of [[257, 131, 128], [15, 9, 32]]) {
      const img = await photo(w, h, w);
      const seen: number[] = [];
      const out = deblurImage(model, img, { tile, overlap: 16, onProgress: (d, n) => seen.push(d, n) });
      assert.deepEqual([out.width, out.height, out.data.length], [w, h, w * h * 3]);
      for (const v of out.data) assert.ok(v >= 0 && v <= 1);
      const total = tileCount(planFor(h, w, { tile, overlap: 16 }));
      assert.deepEqual(seen.slice(-2), [total, total]);
    }
    const img = await photo(80, 32, 2);
    const a = deblurImage(model, img, { tile: 32, overlap: 8, batch: 1 });
    const b = deblurImage(model, img, { tile: 32, overlap: 8, batch: 3 });
    assert.ok(maxAbsDiff(a.data, b.data) < 1e-5);
    assert.throws(() => deblurImage(model, img, { tile: 40 }), /multiple of 16/);
  });

  test('self-ensemble: each orientation is turned back before averaging', () => {
    const x = Tensor.rand([2, 3, 32, 48]);
    try {
      // an orientation-blind function comes out unchanged
      const same = tidy(() => selfEnsemble((t) => t.mul(2))(x).sub(x.mul(2)).abs().max().item());
      assert.ok(same < 1e-6, `scaling: ${same}`);
      // a function that sees orientation (it adds a ramp along the width of what it is given):
      // the 8 views see the ramp along both axes and both ways, so on average it becomes
      // its mean value, 0.5 everywhere; a forgotten inverse leaves a ramp or the wrong shape
      const ramp = (t: Tensor) => tidy(() => {
        const w = t.size(3);
        return t.add(Tensor.arange(0, w).add(0.5).div(w).reshape([1, 1, 1, w]));
      });
      const diff = tidy(() => selfEnsemble(ramp)(x).sub(x.add(0.5)).abs().max().item());
      assert.ok(diff < 1e-5, `ramp: ${diff}`);
    } finally {
      x.dispose();
    }
  });
});

// ------------------------------------------------------------------ image files

async function writeRaw(path: string, data: Uint8Array | Uint16Array, w: number, h: number, channels: 1 | 2 | 3 | 4, space: 'b-w' | 'srgb' | 'grey16' | 'rgb16'): Promise<void> {
  const pipe = sharp(data, { raw: { width: w, height: h, channels } }).toColourspace(space);
  await (path.endsWith('.png') ? pipe.png() : path.endsWith('.jpg') ? pipe.jpeg() : pipe.tiff({ compression: 'deflate' })).toFile(path);
}

describe('image files', () => {
  test('grey, alpha and 16 bits survive a read / write round trip', async () => {
    const d = join(dir, 'files');
    mkdirSync(d);
    const w = 7, h = 5, n = w * h;
    const grey = Uint8Array.from({ length: n }, (_, i) => i * 7);
    await writeRaw(join(d, 'grey.png'), grey, w, h, 1, 'b-w');
    const g = await readImageFile(join(d, 'grey.png'));
    assert.deepEqual([g.grey, g.bitDepth, g.alpha], [true, 8, null]);
    assert.ok(Math.abs(g.rgb.data[3 * 3 + 1] - (3 * 7) / 255) < 1e-7);
    await writeImageFile(join(d, 'grey-out.png'), g);
    const gm = await sharp(join(d, 'grey-out.png')).metadata();
    assert.equal(gm.channels, 1);
    assert.deepEqual(new Uint8Array(await sharp(join(d, 'grey-out.png')).toColourspace('b-w').raw().toBuffer()), grey);

    const rgba = Uint8Array.from({ length: n * 4 }, (_, i) => (i * 37) % 256);
    await writeRaw(join(d, 'rgba.png'), rgba, w, h, 4, 'srgb');
    const a = await readImageFile(join(d, 'rgba.png'));
    assert.deepEqual([a.grey, a.bitDepth, a.alpha?.length], [false, 8, n]);
    for (const ext of ['png', 'webp', 'tif']) {
      await writeImageFile(join(d, `rgba-out.${ext}`), a, { quality: 100 });
      const back = await readImageFile(join(d, `rgba-out.${ext}`));
      assert.deepEqual(back.alpha, a.alpha, `alpha kept exactly in ${ext}`);
    }
    await writeImageFile(join(d, 'rgba-out.jpg'), a);
    assert.equal((await sharp(join(d, 'rgba-out.jpg')).metadata()).hasAlpha, false, 'JPEG drops alpha');

    const deep = Uint16Array.from({ length: n * 3 }, (_, i) => i * 611 + 1);
    await writeRaw(join(d, 'deep.png'), deep, w, h, 3, 'rgb16');
    const s = await readImageFile(join(d, 'deep.png'));
    assert.equal(s.bitDepth, 16);
    assert.equal(Math.round(s.rgb.data[5] * 65535), 5 * 611 + 1);
    for (const ext of ['png', 'tif']) {
      await writeImageFile(join(d, `deep-out.${ext}`), s);
      assert.equal((await sharp(join(d, `deep-out.${ext}`)).metadata()).depth, 'ushort', `16-bit ${ext}`);
      const back = await readImageFile(join(d, `deep-out.${ext}`));
      assert.deepEqual(back.rgb.data, s.rgb.data);
    }
    noTemps(d);
  });

  test('EXIF orientation is applied', async () => {
    const p = join(dir, 'orient.jpg');
    await sharp(new Uint8Array(6 * 2 * 3).fill(200), { raw: { width: 6, height: 2, channels: 3 } }).withMetadata({ orientation: 6 }).jpeg().toFile(p);
    const img = await readImageFile(p);
    assert.deepEqual([img.rgb.width, img.rgb.height], [2, 6]);
    assert.deepEqual([(await probeImageFile(p)).width, (await probeImageFile(p)).height], [2, 6]);
  });

  test('bad files: one-line errors naming the file', async () => {
    const d = join(dir, 'bad');
    mkdirSync(d);
    writeFileSync(join(d, 'empty.png'), '');
    writeFileSync(join(d, 'text.png'), 'this is not an image at all');
    const good = await sharp(Buffer.from(Array.from({ length: 64 * 48 * 3 }, (_, i) => (i * 13) % 251)), { raw: { width: 64, height: 48, channels: 3 } }).png().toBuffer();
    writeFileSync(join(d, 'cut.png'), good.subarray(0, good.length >> 1));
    const jpg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c08040' } }).jpeg().toBuffer();
    writeFileSync(join(d, 'cut.jpg'), jpg.subarray(0, jpg.length >> 1));
    await rejectsOneLine(readImageFile(join(d, 'empty.png')), /empty\.png: empty file/);
    await rejectsOneLine(readImageFile(join(d, 'text.png')), /text\.png: not an image/);
    await rejectsOneLine(readImageFile(join(d, 'cut.png')), /cut\.png: cannot decode/);
    await rejectsOneLine(readImageFile(join(d, 'cut.jpg')), /cut\.jpg: cannot decode/);
    await rejectsOneLine(readImageFile(join(d, 'missing.png')), /missing\.png: no such file/);
    await rejectsOneLine(readImageFile(d), /is a folder/);
  });

  test('decompression bombs are refused from the header, before decoding', async () => {
    const p = join(dir, 'bomb.png');
    writeFileSync(p, bombPng(50000, 50000));
    const t0 = Date.now();
    await rejectsOneLine(readImageFile(p), /bomb\.png: image is 50000 x 50000 = 2500 megapixels, above the limit of 100 \(--max-pixels\)$/);
    await rejectsOneLine(probeImageFile(join(dir, 'bomb.png'), { maxPixels: 2e9 }), /above the limit of 2000/);
    assert.ok(Date.now() - t0 < 2000, 'nothing was decoded');
  });

  test('writes are atomic and do not replace files unless forced', async () => {
    const d = join(dir, 'atomic');
    const p = join(d, 'x.png');
    const img = { rgb: { width: 2, height: 2, data: new Float32Array(12).fill(0.5) }, alpha: null, bitDepth: 8 as const, grey: false };
    await writeImageFile(p, img);
    const before = readFileSync(p);
    await rejectsOneLine(writeImageFile(p, { ...img, rgb: { ...img.rgb, data: new Float32Array(12).fill(0.9) } }), /x\.png: already exists/);
    assert.deepEqual(readFileSync(p), before);
    await writeImageFile(p, { ...img, rgb: { ...img.rgb, data: new Float32Array(12).fill(0.9) } }, { force: true });
    assert.notDeepEqual(readFileSync(p), before);
    await rejectsOneLine(writeImageFile(join(d, 'x.bmp'), img), /x\.bmp: cannot tell the format/);
    noTemps(d);
  });
});

// ------------------------------------------------------------------ the command

describe('msdi deblur', () => {
  const fast = (): string[] => ['--weights', weights, '--tile', '32', '--overlap', '8'];

  test('folder in, folder out: names, grey, alpha and 16 bits kept; existing outputs refused without --force', async () => {
    const src = join(dir, 'cli-in');
    const out = join(dir, 'cli-out', 'nested');
    mkdirSync(src);
    const w = 24, h = 20, n = w * h;
    await writeRaw(join(src, 'grey.png'), Uint8Array.from({ length: n }, (_, i) => (i * 5) % 256), w, h, 1, 'b-w');
    const alpha = Uint8Array.from({ length: n * 4 }, (_, i) => (i % 4 === 3 ? (i * 29) % 256 : (i * 7) % 256));
    await writeRaw(join(src, 'rgba.png'), alpha, w, h, 4, 'srgb');
    await writeRaw(join(src, 'deep.png'), Uint16Array.from({ length: n * 3 }, (_, i) => (i * 977) % 65536), w, h, 3, 'rgb16');
    await writeRaw(join(src, 'photo.jpg'), Uint8Array.from({ length: n * 3 }, (_, i) => (i * 3) % 256), w, h, 3, 'srgb');
    writeFileSync(join(src, 'notes.txt'), 'not an image');
    await deblurCommand([src, '-o', out, ...fast()]);
    assert.deepEqual(readdirSync(out).sort(), ['deep.png', 'grey.png', 'photo.jpg', 'rgba.png']);
    const gm = await sharp(join(out, 'grey.png')).metadata();
    assert.equal(gm.channels, 1, 'grey stays grey');
    const am = await readImageFile(join(out, 'rgba.png'));
    const srcAlpha = Float32Array.from({ length: n }, (_, i) => alpha[i * 4 + 3] / 255);
    assert.deepEqual(am.alpha, srcAlpha, 'alpha kept exactly');
    assert.equal((await sharp(join(out, 'deep.png')).metadata()).depth, 'ushort', '16 bits in, 16 bits out');
    assert.equal((await sharp(join(out, 'photo.jpg')).metadata()).format, 'jpeg');
    const stamp = statSync(join(out, 'grey.png')).mtimeMs;
    await rejectsOneLine(deblurCommand([src, '-o', out, ...fast()]), /already exists \(--force to overwrite\)/);
    assert.equal(statSync(join(out, 'grey.png')).mtimeMs, stamp);
    // one file, one output file, forced over an existing one, another format
    const one = join(dir, 'cli-out', 'one.webp');
    writeFileSync(one, 'old');
    await deblurCommand([join(src, 'rgba.png'), '-o', one, '--force', ...fast()]);
    assert.equal((await sharp(one).metadata()).format, 'webp');
    noTemps(out);
    noTemps(dirname(one));
  });

  test('bad input, bombs and usage mistakes: one-line errors, nothing written', async () => {
    const d = join(dir, 'cli-bad');
    mkdirSync(d);
    writeFileSync(join(d, 'bad.png'), 'definitely not a PNG');
    writeFileSync(join(d, 'bomb.png'), bombPng(50000, 50000));
    const out = join(dir, 'cli-bad-out');
    await rejectsOneLine(deblurCommand([join(d, 'bad.png'), '-o', join(out, 'x.png'), ...fast()]), /bad\.png: not an image/);
    await rejectsOneLine(deblurCommand([join(d, 'bomb.png'), '-o', out, ...fast()]), /bomb\.png: image is 50000 x 50000 = 2500 megapixels, above the limit of 100 \(--max-pixels\)/);
    await rejectsOneLine(deblurCommand([join(d, 'bomb.png'), '-o', out, '--max-pixels', '1000', ...fast()]), /above the limit of 0\.001/);
    await rejectsOneLine(deblurCommand([d, '-o', join(out, 'x.png'), ...fast()]), /need an output folder/);
    await rejectsOneLine(deblurCommand([join(d, 'nope.png'), '-o', out, ...fast()]), /nope\.png: no such file/);
    await rejectsOneLine(deblurCommand([join(d, 'bad.png'), '-o', out, '--tile', '100']), /multiple of 16/);
    await rejectsOneLine(deblurCommand([join(d, 'bad.png'), '-o', out, '--tile', '64', '--overlap', '64']), /--overlap: expected less than the tile size 64/);
    // small tiles need no --overlap (a quarter of the tile), and the official grid ignores it
    await rejectsOneLine(deblurCommand([join(d, 'bad.png'), '-o', join(out, 'x.png'), '--weights', weights, '--tile', '32']), /bad\.png: not an image/);
    await rejectsOneLine(deblurCommand([join(d, 'bad.png'), '-o', join(out, 'x.png'), '--weights', weights, '--tile', '32', '--grid', 'official', '--overlap', '64']), /bad\.png: not an image/);
    assert.deepEqual(planFor(48, 100, { tile: 32 }).xs, planFor(48, 100, { tile: 32, overlap: 8 }).xs);
    await rejectsOneLine(deblurCommand([join(d, 'bad.png'), '-o', out, '--grid', 'square']), /--grid/);
    await rejectsOneLine(deblurCommand([join(d, 'bad.png'), '-o', out, '--amp', 'fp16']), /--amp: expected off or bf16, got "fp16"/);
    assert.equal(existsSync(out), false, 'nothing written');
    if (!existsSync(DEFAULT_WEIGHTS.deblur)) {
      const img = join(dir, 'cli-in', 'grey.png');
      await rejectsOneLine(deblurCommand([img, '-o', join(out, 'y.png')]), /no bundled weights/);
      assert.equal(existsSync(out), false);
    }
  });

  test('CMYK JPEG and 1 x 1 images restore; an unwritable output is one line and leaves nothing', async () => {
    const d = join(dir, 'cli-odd');
    mkdirSync(d);
    const cmyk = join(d, 'cmyk.jpg');
    await sharp(Buffer.from(Array.from({ length: 40 * 30 * 3 }, (_, i) => (i * 7) % 256)), { raw: { width: 40, height: 30, channels: 3 } })
      .toColourspace('cmyk').jpeg({ quality: 95 }).toFile(cmyk);
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
    const tiny = join(d, 'tiny.png');
    await sharp(Buffer.from([10, 200, 30]), { raw: { width: 1, height: 1, channels: 3 } }).png().toFile(tiny);
    const out = join(dir, 'cli-odd-out');
    await deblurCommand([cmyk, tiny, '-o', out, ...fast()]);
    const m = await sharp(join(out, 'cmyk.jpg')).metadata();
    assert.deepEqual([m.width, m.height, m.space], [40, 30, 'srgb'], 'CMYK in, sRGB out at the same size');
    const t = await sharp(join(out, 'tiny.png')).metadata();
    assert.deepEqual([t.width, t.height], [1, 1]);
    // As root, permissions do not stop writes: a path under a regular file cannot be created.
    const blocker = join(d, 'a-file');
    writeFileSync(blocker, 'x');
    await rejectsOneLine(deblurCommand([tiny, '-o', join(blocker, 'sub', 'y.png'), ...fast()]), /a-file/);
    await rejectsOneLine(deblurCommand([tiny, '-o', join(blocker, 'y.png'), ...fast()]), /a-file/);
    assert.deepEqual(readdirSync(d).sort(), ['a-file', 'cmyk.jpg', 'tiny.png'], 'nothing half-written');
  });

  test('the msdi binary exits non-zero with one line on stderr', async () => {
    const bad = join(dir, 'cli-bad', 'bad.png');
    const out = join(dir, 'cli-exit', 'x.png');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'deblur', bad, '-o', out, '--weights', weights], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /bad\.png: not an image/);
    assert.equal(existsSync(out), false);
  });
});
