/**
 * Blurry/sharp pairs for the blur-transfer checks (test/reblur.test.ts and the pending
 * extrapolation check): a procedural scene blurred by the training-data synthesiser, so the
 * tests need no data folder, and the measurements the level checks assert on.
 */
import assert from 'node:assert/strict';
import { createImage, type RGBImage } from '../../src/data/image-io.js';
import { Rng } from '../../src/data/rng.js';
import { synthesizePair } from '../../src/data/synth.js';
import { gradientEnergy } from '../../src/data/synth-stats.js';
import { reblur } from '../../src/eval/reblur.js';
import type { LoadedModel } from '../../src/eval/model.js';

export const SIDE = 192;
/** Synthesis seeds of the pairs for the level checks: fixed, so the printed numbers compare between runs and weights. */
const SEEDS = [2, 4, 5];

export interface LevelPair {
  seed: number;
  sharp: RGBImage;
  blurry: RGBImage;
}

export function psnr(a: RGBImage, b: RGBImage): number {
  let e = 0;
  for (let i = 0; i < a.data.length; i++) e += (a.data[i] - b.data[i]) ** 2;
  return 10 * Math.log10(1 / (e / a.data.length));
}

/** A photo-like procedural scene: smooth shading plus many opaque discs of all sizes (edges in every direction). */
export function scene(w: number, h: number, seed: number): RGBImage {
  const img = createImage(w, h);
  const r = new Rng(seed);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 3;
    img.data[i] = 0.5 + 0.2 * Math.sin(x * 0.05 + y * 0.03);
    img.data[i + 1] = 0.5 + 0.2 * Math.sin(y * 0.045);
    img.data[i + 2] = 0.5;
  }
  for (let k = 0; k < Math.round((w * h) / 180); k++) {
    const cx = r.uniform(0, w);
    const cy = r.uniform(0, h);
    const rad = r.logUniform(1.5, 14);
    const col = [r.float(), r.float(), r.float()];
    for (let y = Math.max(0, Math.floor(cy - rad)); y < Math.min(h, cy + rad); y++) {
      for (let x = Math.max(0, Math.floor(cx - rad)); x < Math.min(w, cx + rad); x++) {
        if ((x - cx) ** 2 + (y - cy) ** 2 <= rad * rad) img.data.set(col, (y * w + x) * 3);
      }
    }
  }
  return img;
}

/** Blurry/sharp pairs made as the training data is (camera shake, sensor noise), self-contained and deterministic. */
export function levelPairs(): LevelPair[] {
  const photo = scene(400, 400, 1);
  return SEEDS.map((seed) => {
    const p = synthesizePair(photo, new Rng(seed), { size: SIDE, objectProb: 0, defocusProb: 0 });
    return { seed, sharp: p.sharp, blurry: p.blurry };
  });
}

/** Mean gradient energy of the reblurred pairs at each level, and PSNR against the sharp frame at levels 0 and 1. */
export function levelStats(model: LoadedModel, pairs: LevelPair[], levels: number[]): { energy: number[]; sharpEnergy: number; psnr0: number; psnr1: number } {
  const energy = levels.map(() => 0);
  let psnr0 = 0;
  let psnr1 = 0;
  for (const p of pairs) {
    for (const [k, level] of levels.entries()) {
      const out = reblur(model, p.sharp, p.blurry, { level });
      assert.equal(out.width, SIDE);
      energy[k] += gradientEnergy(out) / pairs.length;
      if (level === 0) psnr0 += psnr(out, p.sharp) / pairs.length;
      if (level === 1) psnr1 += psnr(out, p.sharp) / pairs.length;
    }
  }
  const sharpEnergy = pairs.reduce((s, p) => s + gradientEnergy(p.sharp), 0) / pairs.length;
  console.log(`# gradient energy x1e3: sharp ${(sharpEnergy * 1e3).toFixed(3)}, ${levels.map((l, k) => `level ${l}: ${(energy[k] * 1e3).toFixed(3)}`).join(', ')}; PSNR vs sharp: level 0 ${psnr0.toFixed(2)} dB, level 1 ${psnr1.toFixed(2)} dB`);
  return { energy, sharpEnergy, psnr0, psnr1 };
}
