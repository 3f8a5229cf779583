/**
 * Does a joint (MSDI2E) model's representation describe the blur? For N validation pairs it
 * measures how much the encoder output z and the finest and coarsest latent maps change between
 * the blurry image and its sharp frame (relative to their size), and how much the reblurring
 * generator's output on the sharp frame changes between the two representations (level 1 vs
 * level 0). A collapsed representation gives ~0 for all; a random one at initialisation gives
 * z changes of tens of percent.
 *
 *   node --import tsx scripts/probe-representation.mts JOINT_WEIGHTS PAIRS_DIR [N]
 *
 * JOINT_WEIGHTS: MSDI2E weights (`msdi export RUN -o joint.safetensors`); PAIRS_DIR: input/ and
 * target/ as for training.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/eval/model.js';
import { imageToTensor } from '../src/eval/reblur.js';
import { readImageRGB } from '../src/data/image-io.js';
import { noGrad, tidy, type Tensor } from '../src/engine/index.js';
import type { MSDI2E } from '../src/models/msdi2e.js';

const [weights, dir, count = '8'] = process.argv.slice(2);
if (!weights || !dir) {
  console.error('usage: node --import tsx scripts/probe-representation.mts JOINT_WEIGHTS PAIRS_DIR [N]');
  process.exit(2);
}
const model = loadModel(weights, { kind: 'joint' });
const net = model.net as MSDI2E;
net.eval();
const names = readdirSync(join(dir, 'input')).sort().slice(0, Number(count));
/** mean |a - b| / mean |a| */
const rel = (a: Tensor, b: Tensor) => a.sub(b).abs().mean().item() / Math.max(1e-12, a.abs().mean().item());
const sums = { z: 0, fine: 0, coarse: 0, reblur: 0, blur: 0 };
for (const name of names) {
  const blurry = imageToTensor(await readImageRGB(join(dir, 'input', name)));
  const sharp = imageToTensor(await readImageRGB(join(dir, 'target', name)));
  noGrad(() => tidy(() => {
    const a = net.represent(blurry);
    const b = net.represent(sharp);
    sums.z += rel(a.priorZ, b.priorZ);
    sums.fine += rel(a.latents[0], b.latents[0]);
    sums.coarse += rel(a.latents[3], b.latents[3]);
    const inv = net.inverse_generator!;
    sums.reblur += inv.forward(sharp, a.latents).sub(inv.forward(sharp, b.latents)).abs().mean().item();
    sums.blur += blurry.sub(sharp).abs().mean().item();
  }));
  blurry.dispose();
  sharp.dispose();
}
const n = names.length;
const pct = (v: number) => `${((100 * v) / n).toFixed(2)}%`;
console.log(`${n} pairs of ${dir}`);
console.log(`representation change, blurry vs sharp frame: z ${pct(sums.z)}, finest latents ${pct(sums.fine)}, coarsest ${pct(sums.coarse)}`);
console.log(`reblurred sharp frame, level 1 vs level 0: mean |difference| ${(sums.reblur / n).toExponential(2)} (blurry vs sharp: ${(sums.blur / n).toExponential(2)})`);
model.dispose();
