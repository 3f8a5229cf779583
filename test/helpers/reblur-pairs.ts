/**
 * Blurry/sharp pairs for the blur-transfer checks (test/reblur.test.ts and the pending
 * extrapolation check): a procedural scene blurred by the training-data synthesiser, so the
 * tests need no data folder, and the measurements the level checks assert on.
 */
import assert from 'node:assert/strict';
import type { RGBImage } from '../../src/data/image-io.js';
import { discScene } from './scenes.js';
import { Rng } from '../../src/data/rng.js';
import { synthesizePair } from '../../src/data/synth/index.js';
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

/** Blurry/sharp pairs made as the training data is (camera shake, sensor noise), self-contained and deterministic. */
export function levelPairs(): LevelPair[] {
  const photo = discScene(400, 400, 1);
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
