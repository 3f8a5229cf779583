import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { createImage, readImageRGB, writeImageRGB, type RGBImage } from '../src/data/image-io.js';
import { deriveSeed, Rng } from '../src/data/rng.js';
import {
  linearToSrgb,
  linearToSrgb8,
  srgbToLinear,
  synthesizePair,
  synthFolder,
  variableDiscBlur,
  MOTION_CHANNELS,
  type SynthOptions,
} from '../src/data/synth/index.js';
import { blurMagnitudeMap, gradientEnergy, summarizeTileMap } from '../src/data/synth-stats.js';
import { discScene } from './helpers/scenes.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE = resolve(ROOT, '../shared/fixtures/metric_0_target.png');

const bytesOf = (img: RGBImage) => Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

const PHOTO = discScene(400, 400, 1);
const SMALL: SynthOptions = { size: 160, maxDownscale: 1.5 };

const tmpDirs: string[] = [];
after(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'msdi-synth-'));
  tmpDirs.push(d);
  return d;
}

describe('rng', () => {
  test('same seed, same stream; different seed, different stream', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 50 }, () => a.nextU32());
    const sb = Array.from({ length: 50 }, () => b.nextU32());
    const sc = Array.from({ length: 50 }, () => c.nextU32());
    assert.deepEqual(sa, sb);
    assert.notDeepEqual(sa, sc);
    assert.notEqual(deriveSeed(7, 0), deriveSeed(7, 1));
    assert.equal(deriveSeed(7, 3), deriveSeed(7, 3));
  });

  test('ranges', () => {
    const r = new Rng(0);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const f = r.float();
      assert.ok(f >= 0 && f < 1);
      const k = r.int(-3, 5);
      assert.ok(Number.isInteger(k) && k >= -3 && k <= 5);
      sum += r.normal();
    }
    assert.ok(Math.abs(sum / 20000) < 0.05);
  });
});

describe('sRGB transfer', () => {
  test('EOTF/OETF round trip and exact 8-bit quantisation', () => {
    for (let q = 0; q <= 255; q++) {
      const v = q / 255;
      assert.ok(Math.abs(linearToSrgb(srgbToLinear(v)) - v) < 1e-9);
    }
    const r = new Rng(5);
    const lin = new Float32Array(3000);
    for (let i = 0; i < lin.length; i++) lin[i] = r.uniform(-0.1, 1.1);
    const q = linearToSrgb8(lin, 1000, 1);
    for (let i = 0; i < lin.length; i++) {
      const want = Math.round(linearToSrgb(Math.min(1, Math.max(0, lin[i]!))) * 255);
      assert.equal(Math.round(q.data[i]! * 255), want, `value ${lin[i]}`);
    }
  });
});

describe('defocus', () => {
  test('disc blur keeps flat images flat and spreads an impulse over a disc', () => {
    const S = 41;
    const flat = new Float32Array(S * S * 3).fill(0.3);
    const ramp = new Float32Array(S * S);
    for (let i = 0; i < ramp.length; i++) ramp[i] = ((i % S) / S) * 4;
    variableDiscBlur(flat, S, ramp);
    for (const v of flat) assert.ok(Math.abs(v - 0.3) < 1e-6);
    const img = new Float32Array(S * S * 3);
    img[(20 * S + 20) * 3] = 1;
    variableDiscBlur(img, S, new Float32Array(S * S).fill(3));
    let sum = 0;
    let support = 0;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const v = img[(y * S + x) * 3]!;
        sum += v;
        if (v > 1e-6) {
          support++;
          assert.ok(Math.hypot(x - 20, y - 20) <= 4.5);
        }
      }
    }
    assert.ok(Math.abs(sum - 1) < 1e-5);
    assert.ok(support > 30 && support < 60, `support ${support}`);
  });
});

describe('synthesizePair', () => {
  test('same seed gives identical outputs, a different seed does not', () => {
    const a = synthesizePair(PHOTO, new Rng(11), SMALL);
    const b = synthesizePair(PHOTO, new Rng(11), SMALL);
    const c = synthesizePair(PHOTO, new Rng(12), SMALL);
    assert.equal(a.blurry.width, 160);
    assert.equal(a.blurry.height, 160);
    assert.equal(a.sharp.data.length, 160 * 160 * 3);
    assert.ok(bytesOf(a.blurry).equals(bytesOf(b.blurry)));
    assert.ok(bytesOf(a.sharp).equals(bytesOf(b.sharp)));
    assert.deepEqual(a.info, b.info);
    assert.ok(!bytesOf(a.blurry).equals(bytesOf(c.blurry)));
    assert.ok(!bytesOf(a.sharp).equals(bytesOf(c.sharp)));
    // outputs are 8-bit quantised sRGB
    for (const v of a.blurry.data) assert.ok(Math.abs(v * 255 - Math.round(v * 255)) < 1e-3 && v >= 0 && v <= 1);
  });

  test('the blurry image has less gradient energy than the sharp one', () => {
    const ratios: number[] = [];
    for (let s = 0; s < 8; s++) {
      const clean = synthesizePair(PHOTO, new Rng(s), { ...SMALL, noise: false });
      const eb = gradientEnergy(clean.blurry);
      const es = gradientEnergy(clean.sharp);
      assert.ok(eb < es, `seed ${s}: blurry ${eb} >= sharp ${es} (${JSON.stringify(clean.info)})`);
      const noisy = synthesizePair(PHOTO, new Rng(s), SMALL);
      ratios.push(gradientEnergy(noisy.blurry) / gradientEnergy(noisy.sharp));
    }
    assert.ok(median(ratios) < 0.8, `median blurry/sharp energy ratio with noise ${median(ratios)}`);
  });

  test('blur levels: the pair is unchanged, and the blur grows with the level', () => {
    let rendered = 0;
    for (let seed = 0; seed < 6; seed++) {
      const plain = synthesizePair(PHOTO, new Rng(seed), { ...SMALL, noise: false });
      const lv = synthesizePair(PHOTO, new Rng(seed), { ...SMALL, noise: false, levels: [0.5, 2, 4] });
      assert.ok(bytesOf(lv.blurry).equals(bytesOf(plain.blurry)) && bytesOf(lv.sharp).equals(bytesOf(plain.sharp)), `seed ${seed}: the pair changed`);
      assert.equal(plain.levels, undefined);
      // a level is there exactly when its motion stays inside the scene margin (160: 26 px)
      const margin = Math.ceil(0.15 * 160) + 2 - 1.5;
      assert.deepEqual(lv.levels!.map((l) => l.level), [0.5, 2, 4].filter((L) => L * lv.info.maxDisplacementPx <= margin));
      const energy = new Map([[0, gradientEnergy(lv.sharp)], [1, gradientEnergy(lv.blurry)], ...lv.levels!.map((l): [number, number] => [l.level, gradientEnergy(l.blurry)])]);
      const order = [...energy.keys()].sort((a, b) => a - b);
      for (let k = 1; k < order.length; k++) {
        assert.ok(energy.get(order[k]!)! < energy.get(order[k - 1]!)!, `seed ${seed}: level ${order[k]} is not blurrier than level ${order[k - 1]} (${[...energy].join(' ')})`);
      }
      rendered += lv.levels!.length;
    }
    assert.ok(rendered >= 10, `only ${rendered} of 18 levels rendered`);
    assert.throws(() => synthesizePair(PHOTO, new Rng(0), { ...SMALL, levels: [0] }), /levels: expected numbers in \(0, 4\], got 0/);
  });

  test('blur varies across the frame', () => {
    // per-tile blurry/sharp gradient-energy ratio; its p90/p10 spread measures how much the blur
    // varies across the frame. The three option sets share the same rng draws (the translation
    // path and crop are identical per seed), so the comparison is paired.
    const seeds = Array.from({ length: 12 }, (_, i) => 100 + i);
    const spreads = (opts: SynthOptions) =>
      seeds.map((s) => {
        const p = synthesizePair(PHOTO, new Rng(s), { ...SMALL, noise: false, ...opts });
        const sum = summarizeTileMap(blurMagnitudeMap(p.blurry, p.sharp, 32));
        assert.ok(sum.tiles >= 20);
        return sum.robustSpread;
      });
    // pure translation: nearly uniform blur (its spread comes from the texture alone)
    const uniform = spreads({ maxRotationDeg: 0, maxZoom: 0, objectProb: 0, defocusProb: 0 });
    // camera shake with rotation and zoom, and the full model (plus moving objects, defocus)
    const camera = spreads({ objectProb: 0, defocusProb: 0 });
    const full = spreads({});
    const wins = seeds.filter((_, i) => camera[i]! > uniform[i]!).length;
    const msg = `translation-only ${uniform.map((v) => v.toFixed(2))}, camera ${camera.map((v) => v.toFixed(2))}, full ${full.map((v) => v.toFixed(2))}`;
    assert.ok(wins >= 0.7 * seeds.length, `rotation/zoom should widen the spread for most seeds: ${msg}`);
    assert.ok(median(camera) > 1.15 * median(uniform), msg);
    assert.ok(median(full) > 1.5, msg);
    assert.ok(Math.max(...full) > 2, msg);
  });

  test('the true blur field (motion) explains the blurry image, and leaves the pair as it was', () => {
    // Re-blur the sharp frame with the field alone: average it (in linear light) sampled where the
    // field says each pixel's content was along the exposure (offsets interpolated between the
    // field's instants 0, 1/4, 3/4 and 1, and 0 at the middle). That must come far closer to the
    // blurry image than the sharp frame is, for camera shake and moving objects alike.
    const S = 160;
    // the exposure's instants and the field's dx channel at each (dy follows it); none at the middle
    const KEYS = [{ t: 0, ch: 0 }, { t: 0.25, ch: 2 }, { t: 0.5, ch: -1 }, { t: 0.75, ch: 4 }, { t: 1, ch: 6 }];
    let checked = 0;
    for (let seed = 20; seed < 26; seed++) {
      const opts: SynthOptions = { ...SMALL, noise: false, defocusProb: 0, objectProb: seed % 2 };
      const plain = synthesizePair(PHOTO, new Rng(seed), opts);
      const p = synthesizePair(PHOTO, new Rng(seed), { ...opts, motion: true });
      assert.ok(bytesOf(p.blurry).equals(bytesOf(plain.blurry)) && bytesOf(p.sharp).equals(bytesOf(plain.sharp)), `seed ${seed}: the pair changed`);
      assert.equal(plain.motion, undefined);
      const f = p.motion!;
      assert.equal(f.length, MOTION_CHANNELS.length * S * S);
      assert.ok(f.subarray(8 * S * S).every((r) => r === 0), 'no defocus, no radius');
      if (p.info.maxDisplacementPx < 2) continue;
      checked++;
      /** The field's offset along `axis` (0: x, 1: y) at key instant `k`, pixel `i`. */
      const offset = (k: number, axis: number, i: number) => (KEYS[k]!.ch < 0 ? 0 : f[(KEYS[k]!.ch + axis) * S * S + i]!);
      const lin = (img: RGBImage) => img.data.map(srgbToLinear);
      const sharp = lin(p.sharp);
      const blurry = lin(p.blurry);
      const N = 33;
      let errSharp = 0;
      let errField = 0;
      for (let y = 24; y < S - 24; y++) {
        for (let x = 24; x < S - 24; x++) {
          const i = y * S + x;
          const acc = [0, 0, 0];
          for (let j = 0; j < N; j++) {
            const t = j / (N - 1);
            const a = Math.min(3, Math.floor(t * 4));
            const w = (t - KEYS[a]!.t) / (KEYS[a + 1]!.t - KEYS[a]!.t);
            const sx = Math.min(S - 1.001, Math.max(0, x + (1 - w) * offset(a, 0, i) + w * offset(a + 1, 0, i)));
            const sy = Math.min(S - 1.001, Math.max(0, y + (1 - w) * offset(a, 1, i) + w * offset(a + 1, 1, i)));
            const x0 = Math.floor(sx);
            const y0 = Math.floor(sy);
            const fx = sx - x0;
            const fy = sy - y0;
            for (let c = 0; c < 3; c++) {
              const at = (xx: number, yy: number) => sharp[(yy * S + xx) * 3 + c]!;
              acc[c] += (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) + fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
            }
          }
          for (let c = 0; c < 3; c++) {
            errField += (acc[c]! / N - blurry[i * 3 + c]!) ** 2;
            errSharp += (sharp[i * 3 + c]! - blurry[i * 3 + c]!) ** 2;
          }
        }
      }
      assert.ok(errField < 0.25 * errSharp, `seed ${seed}: the field re-blurs to ${errField.toFixed(3)} against the sharp frame's ${errSharp.toFixed(3)} (${JSON.stringify(p.info)})`);
    }
    assert.ok(checked >= 4, `only ${checked} pairs moved`);
    const d = synthesizePair(PHOTO, new Rng(5), { ...SMALL, defocusProb: 1, motion: true });
    const radius = d.motion!.subarray(8 * S * S);
    assert.ok(Math.max(...radius) > 0 && Math.max(...radius) <= d.info.defocusRadius + 1e-6, 'the defocus radius is the disc blur\'s');
  });

  test('middle sub-frame is the target: no blur, no noise when the camera does not move', () => {
    const p = synthesizePair(PHOTO, new Rng(3), {
      ...SMALL,
      maxTranslation: 0,
      maxRotationDeg: 0,
      maxZoom: 0,
      objectProb: 0,
      defocusProb: 0,
      noise: false,
    });
    let maxDiff = 0;
    for (let i = 0; i < p.blurry.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(p.blurry.data[i]! - p.sharp.data[i]!));
    assert.ok(maxDiff <= 1 / 255 + 1e-6, `max diff ${maxDiff}`);
  });
});

describe('image io', () => {
  test('PNG round trip is exact for 8-bit values; grey, alpha and 16-bit inputs', async () => {
    const dir = await tmp();
    const img = createImage(7, 5);
    for (let i = 0; i < img.data.length; i++) img.data[i] = ((i * 37) % 256) / 255;
    await writeImageRGB(join(dir, 'a.png'), img);
    const back = await readImageRGB(join(dir, 'a.png'));
    assert.equal(back.width, 7);
    assert.equal(back.height, 5);
    assert.ok(bytesOf(back).equals(bytesOf(img)));
    assert.deepEqual((await readdir(dir)).sort(), ['a.png']); // no temp file left behind

    await writeImageRGB(join(dir, 'a.jpg'), img);
    assert.equal((await readImageRGB(join(dir, 'a.jpg'))).width, 7);
    await assert.rejects(writeImageRGB(join(dir, 'a.bmp'), img), /unsupported extension/);

    const grey = Buffer.from([0, 128, 255, 64]);
    await sharp(grey, { raw: { width: 2, height: 2, channels: 1 } }).png().toFile(join(dir, 'g.png'));
    const g = await readImageRGB(join(dir, 'g.png'));
    assert.deepEqual(Array.from(g.data.subarray(3, 6)), [128 / 255, 128 / 255, 128 / 255].map(Math.fround));

    const rgba = Buffer.from([10, 20, 30, 0, 40, 50, 60, 255]);
    await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } }).png().toFile(join(dir, 'r.png'));
    const r = await readImageRGB(join(dir, 'r.png'));
    assert.deepEqual(Array.from(r.data), [10, 20, 30, 40, 50, 60].map((v) => Math.fround(v / 255)));

    const u16 = new Uint16Array([1000, 30000, 65535]);
    await sharp(u16, { raw: { width: 1, height: 1, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toFile(join(dir, 'd.png'));
    const d = await readImageRGB(join(dir, 'd.png'));
    const meta = await sharp(join(dir, 'd.png')).metadata();
    if (meta.depth === 'ushort') {
      assert.deepEqual(Array.from(d.data), [1000, 30000, 65535].map((v) => Math.fround(v / 65535)));
    }
  });
});

describe('synthFolder', () => {
  test('GoPro layout, deterministic for a seed', async () => {
    const photos = await tmp();
    await writeImageRGB(join(photos, 'p0.png'), discScene(300, 240, 2));
    await writeImageRGB(join(photos, 'p1.png'), discScene(260, 300, 3));
    if (existsSync(FIXTURE)) await copyFile(FIXTURE, join(photos, 'fixture.png'));
    const outA = await tmp();
    const outB = await tmp();
    const outC = await tmp();
    const res = await synthFolder({ from: photos, out: outA, count: 4, seed: 9, size: 96 });
    await synthFolder({ from: photos, out: outB, count: 4, seed: 9, size: 96 });
    await synthFolder({ from: photos, out: outC, count: 4, seed: 10, size: 96 });
    const names = ['00000.png', '00001.png', '00002.png', '00003.png'];
    assert.deepEqual((await readdir(join(outA, 'input'))).sort(), names);
    assert.deepEqual((await readdir(join(outA, 'target'))).sort(), names);
    assert.ok(existsSync(res.manifest));
    assert.equal(res.records.length, 4);
    let differs = 0;
    for (const n of names) {
      for (const sub of ['input', 'target']) {
        const a = await readFile(join(outA, sub, n));
        const b = await readFile(join(outB, sub, n));
        const c = await readFile(join(outC, sub, n));
        assert.ok(a.equals(b), `${sub}/${n} differs between runs with the same seed`);
        if (!a.equals(c)) differs++;
      }
      const img = await readImageRGB(join(outA, 'input', n));
      assert.equal(img.width, 96);
      assert.equal(img.height, 96);
    }
    assert.ok(differs >= 6, 'a different seed should give different pairs');

    // levels: the same pairs, plus level-L/ folders and the levels of each pair in the manifest
    const outL = await tmp();
    const resL = await synthFolder({ from: photos, out: outL, count: 4, seed: 9, size: 96, synth: { levels: [0.5, 2] } });
    for (const [i, n] of names.entries()) {
      assert.ok((await readFile(join(outA, 'input', n))).equals(await readFile(join(outL, 'input', n))));
      for (const L of [0.5, 2]) assert.equal(existsSync(join(outL, `level-${L}`, n)), resL.records[i]!.levels!.includes(L), `level-${L}/${n}`);
    }
    assert.ok(resL.records.every((r) => r.levels!.includes(0.5)), 'half the motion always fits');

    // motion: the same pairs, plus each pair's true blur field as raw float32
    const outM = await tmp();
    await synthFolder({ from: photos, out: outM, count: 2, seed: 9, size: 96, synth: { motion: true } });
    for (const n of names.slice(0, 2)) {
      assert.ok((await readFile(join(outA, 'input', n))).equals(await readFile(join(outM, 'input', n))));
      const f = await readFile(join(outM, 'motion', n.replace('.png', '.f32')));
      assert.equal(f.length, MOTION_CHANNELS.length * 96 * 96 * 4);
    }
    assert.ok(!existsSync(join(outA, 'motion')));

    // pair i depends only on (seed, i): a shard starting at 2 reproduces pairs 2 and 3
    const outD = await tmp();
    await synthFolder({ from: photos, out: outD, count: 2, seed: 9, size: 96, start: 2 });
    for (const n of ['00002.png', '00003.png']) {
      assert.ok((await readFile(join(outA, 'input', n))).equals(await readFile(join(outD, 'input', n))));
    }
  });
});

describe('scripts/lib/synth-is-current.mts', () => {
  const script = join(ROOT, 'scripts/lib/synth-is-current.mts');
  const check = (dir: string, photos: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', script, dir, photos], { cwd: ROOT, encoding: 'utf8' });

  test('pairs made from other photos than those now in the folder are stale', async () => {
    const photos = await tmp();
    await writeImageRGB(join(photos, 'p0.png'), discScene(200, 200, 2));
    await writeImageRGB(join(photos, 'p1.png'), discScene(200, 200, 3));
    const out = await tmp();
    await synthFolder({ from: photos, out, count: 6, seed: 9, size: 64 });
    const fresh = check(out, photos);
    assert.equal(fresh.status, 0, fresh.stderr);

    await writeImageRGB(join(photos, 'p2.png'), discScene(200, 200, 4)); // a photo added
    const added = check(out, photos);
    assert.equal(added.status, 1);
    assert.match(added.stderr, /1 photo\(s\) .* not used \(p2\.png/);

    await rm(join(photos, 'p2.png'));
    await rm(join(photos, 'p1.png')); // a photo moved to the other split
    assert.match(check(out, photos).stderr, /no longer in .* \(p1\.png/);

    await writeImageRGB(join(photos, 'p1.png'), discScene(200, 200, 3));
    for (const n of await readdir(out)) if (n.endsWith('.json')) await rm(join(out, n)); // interrupted
    const partial = check(out, photos);
    assert.equal(partial.status, 1);
    assert.match(partial.stderr, /no synth report/);
  });
});
