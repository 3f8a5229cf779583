/**
 * Does a joint (MSDI2E) model's representation describe the blur? For N validation pairs it
 * measures how much the encoder output z and the finest and coarsest latent maps change between
 * the blurry image and its sharp frame (relative to their size), and how much the reblurring
 * generator's output on the sharp frame changes between the two representations (level 1 vs
 * level 0). A collapsed representation gives ~0 for all; a random one at initialisation gives
 * z changes of tens of percent. Then what blur transfer needs: the level-1 output against the
 * blurry image (how well it reblurs), the level-0 output against the sharp frame (whether it
 * keeps it), and the gradient energy of both against the sharp and blurry images'.
 * Where PAIRS_DIR has the blur at other levels (`msdi synth --levels`: level-L/ folders), it
 * also scores blur transfer at each such level against that truth: the output at level L (the
 * latent maps interpolated as `msdi reblur` does), and the level-1 output for comparison.
 *
 *   node --import tsx scripts/probe-representation.mts JOINT_WEIGHTS PAIRS_DIR [N]
 *
 * JOINT_WEIGHTS: MSDI2E weights (`msdi export RUN -o joint.safetensors`); PAIRS_DIR: input/ and
 * target/ as for training.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/eval/model.js';
import { imageToTensor } from '../src/eval/reblur.js';
import { readImageRGB } from '../src/data/image-io.js';
import { levelFolder } from '../src/data/synth/index.js';
import { noGrad, tidy, type Tensor } from '../src/engine/index.js';
import type { MSDI2E } from '../src/models/msdi2e.js';

const [weights, dir, count = '8'] = process.argv.slice(2);
if (!weights || !dir) {
  console.error('usage: node --import tsx scripts/probe-representation.mts JOINT_WEIGHTS PAIRS_DIR [N]');
  process.exit(2);
}
if (!/^[1-9][0-9]*$/.test(count)) {
  console.error(`probe: expected a positive integer for N, got ${count}`);
  process.exit(2);
}
const model = loadModel(weights, { kind: 'joint' });
const net = model.net as MSDI2E;
net.eval();
const names = readdirSync(join(dir, 'input')).sort().slice(0, Number(count));
/** mean |a - b| / mean |a| */
const rel = (a: Tensor, b: Tensor) => a.sub(b).abs().mean().item() / Math.max(1e-12, a.abs().mean().item());
const psnr = (a: Tensor, b: Tensor) => -10 * Math.log10(Math.max(1e-12, a.clamp(0, 1).sub(b).pow(2).mean().item()));
/** mean squared horizontal and vertical neighbour differences, all channels */
const energy = (x: Tensor) => {
  const dx = x.slice(3, 1).sub(x.slice(3, 0, -1)).pow(2).mean().item();
  const dy = x.slice(2, 1).sub(x.slice(2, 0, -1)).pow(2).mean().item();
  return (dx + dy) / 2;
};
/** the level-L folders of the pairs (msdi synth --levels), L != 1 */
const levels = readdirSync(dir).map((d) => /^level-([0-9.]+)$/.exec(d)?.[1]).filter((v): v is string => v !== undefined)
  .map(Number).filter((L) => Number.isFinite(L) && L !== 1).sort((a, b) => a - b);
const atLevel = new Map(levels.map((L) => [L, { n: 0, psnrL: 0, psnr1: 0, eL: 0, eTruth: 0 }]));
const sums = { zAbs: 0, zSize: 0, z: 0, fine: 0, coarse: 0, reblur: 0, blur: 0, psnr1: 0, psnr0: 0, input: 0, e0: 0, e1: 0, eSharp: 0, eBlurry: 0 };
for (const name of names) {
  const blurry = imageToTensor(await readImageRGB(join(dir, 'input', name)));
  const sharp = imageToTensor(await readImageRGB(join(dir, 'target', name)));
  /** the true blur at each level this pair has (a level whose motion did not fit the scene is missing) */
  const truths = new Map<number, Tensor>();
  for (const L of levels) {
    const file = join(levelFolder(dir, L), name);
    if (existsSync(file)) truths.set(L, imageToTensor(await readImageRGB(file)));
  }
  noGrad(() => tidy(() => {
    const a = net.represent(blurry);
    const b = net.represent(sharp);
    sums.z += rel(a.priorZ, b.priorZ);
    sums.zAbs += a.priorZ.sub(b.priorZ).abs().mean().item();
    sums.zSize += a.priorZ.abs().mean().item();
    sums.fine += rel(a.latents[0], b.latents[0]);
    sums.coarse += rel(a.latents[3], b.latents[3]);
    const inv = net.inverse_generator!;
    const level1 = inv.forward(sharp, a.latents);
    const level0 = inv.forward(sharp, b.latents);
    sums.reblur += level1.sub(level0).abs().mean().item();
    sums.blur += blurry.sub(sharp).abs().mean().item();
    sums.psnr1 += psnr(level1, blurry);
    sums.input += psnr(sharp, blurry);
    sums.psnr0 += psnr(level0, sharp);
    sums.e0 += energy(level0);
    sums.e1 += energy(level1);
    sums.eSharp += energy(sharp);
    sums.eBlurry += energy(blurry);
    for (const [L, truth] of truths) {
      const acc = atLevel.get(L)!;
      const out = inv.forward(sharp, b.latents.map((s, j) => s.add(a.latents[j]!.sub(s).mul(L))));
      acc.n++;
      acc.psnrL += psnr(out, truth);
      acc.psnr1 += psnr(level1, truth);
      acc.eL += energy(out) / energy(sharp);
      acc.eTruth += energy(truth) / energy(sharp);
    }
  }));
  for (const t of truths.values()) t.dispose();
  blurry.dispose();
  sharp.dispose();
}
const n = names.length;
const pct = (v: number) => `${((100 * v) / n).toFixed(2)}%`;
console.log(`${n} pairs of ${dir}`);
console.log(`representation change, blurry vs sharp frame: z ${pct(sums.z)}, finest latents ${pct(sums.fine)}, coarsest ${pct(sums.coarse)}`);
console.log(`z: mean |blurry - sharp| ${(sums.zAbs / n).toExponential(2)}, mean |z| ${(sums.zSize / n).toExponential(2)}`);
console.log(`reblurred sharp frame, level 1 vs level 0: mean |difference| ${(sums.reblur / n).toExponential(2)} (blurry vs sharp: ${(sums.blur / n).toExponential(2)})`);
const mean = (v: number) => (v / n).toFixed(2);
console.log(`reblur (level 1) vs blurry: ${mean(sums.psnr1)} dB (the sharp frame: ${mean(sums.input)} dB); level 0 vs sharp: ${mean(sums.psnr0)} dB`);
const e = (v: number) => (v / sums.eSharp).toFixed(3);
console.log(`gradient energy relative to the sharp frame: level 0 ${e(sums.e0)}, level 1 ${e(sums.e1)}, blurry ${e(sums.eBlurry)}`);
for (const [L, acc] of atLevel) {
  if (!acc.n) continue;
  const m = (v: number) => (v / acc.n).toFixed(2);
  console.log(`level ${L} (${acc.n} pairs) vs the true blur at that level: ${m(acc.psnrL)} dB (the level-1 output: ${m(acc.psnr1)} dB); ` +
    `gradient energy relative to the sharp frame ${(acc.eL / acc.n).toFixed(3)} (the truth: ${(acc.eTruth / acc.n).toFixed(3)})`);
}
model.dispose();
