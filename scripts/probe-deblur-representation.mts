/**
 * Does a deblurring network (msdi2_net) use its degradation representation? On N held-out pairs
 * (their centre 256 x 256 crops, the size the encoder works at) it scores the deblurred result
 * (PSNR against the sharp frame) with the input's own latent maps, and with latent maps that
 * describe something else: the sharp frame's (no blur), another pair's blurry image's (the wrong
 * blur), and zeros. A network that relies on its representation loses clearly with the wrong
 * ones; one that ignores it scores about the same with all four.
 *
 *   node --import tsx scripts/probe-deblur-representation.mts DEBLUR_WEIGHTS PAIRS_DIR [N]
 *
 * DEBLUR_WEIGHTS: msdi2_net weights (weights/msdi-deblur.safetensors or `msdi export`);
 * PAIRS_DIR: input/ and target/ as for training, images at least 256 pixels on each side.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { imageToTensor } from '../src/eval/reblur.js';
import { readImageRGB } from '../src/data/image-io.js';
import { inferenceMode, tidy, type Tensor } from '../src/engine/index.js';
import { mean, meanDiff } from '../src/eval/compare.js';
import { SIDE, centreCrop as centre, loadDeblurNetwork, psnr } from './lib/deblur-probe.mjs';

const [weights, dir, count = '40'] = process.argv.slice(2);
if (!weights || !dir) {
  console.error('usage: node --import tsx scripts/probe-deblur-representation.mts DEBLUR_WEIGHTS PAIRS_DIR [N]');
  process.exit(2);
}
if (!/^[1-9][0-9]*$/.test(count)) {
  console.error(`probe: expected a positive integer for N, got ${count}`);
  process.exit(2);
}
const net = loadDeblurNetwork(weights);
const names = readdirSync(join(dir, 'input')).sort().slice(0, Number(count));
const pairs = await Promise.all(names.map(async (name) => {
  const [blurry, sharp] = await Promise.all([readImageRGB(join(dir, 'input', name)), readImageRGB(join(dir, 'target', name))]);
  if (blurry.width < SIDE || blurry.height < SIDE) throw new Error(`${join(dir, 'input', name)}: ${blurry.width}x${blurry.height}, smaller than ${SIDE}x${SIDE}`);
  return { blurry, sharp };
}));
// per pair, so that each wrong representation's loss is a paired difference with its standard error
const scores = { input: [] as number[], own: [] as number[], sharp: [] as number[], other: [] as number[], zeros: [] as number[] };
const n = pairs.length;
inferenceMode(() => {
  for (const [i, p] of pairs.entries()) {
    tidy(() => {
      const blurry = centre(imageToTensor(p.blurry));
      const sharp = centre(imageToTensor(p.sharp));
      // another pair's blurry image: a different blur (and scene) for the wrong-blur case
      const other = centre(imageToTensor(pairs[(i + Math.ceil(n / 2)) % n]!.blurry));
      const own = net.represent(blurry).latents;
      const score = (latents: Tensor[]) => psnr(net.forward(blurry, latents).out2, sharp);
      scores.input.push(psnr(blurry, sharp));
      scores.own.push(score(own));
      scores.sharp.push(score(net.represent(sharp).latents));
      scores.other.push(score(net.represent(other).latents));
      scores.zeros.push(score(own.map((l) => l.mul(0))));
    });
  }
});
const f = (xs: number[]) => `${mean(xs).toFixed(2)} dB`;
console.log(`${n} pairs, centre ${SIDE} crops: input ${f(scores.input)}; deblurred with its own representation ${f(scores.own)}, ` +
  `with the sharp frame's ${f(scores.sharp)}, another pair's ${f(scores.other)}, zeros ${f(scores.zeros)}`);
const loss = (wrong: number[]) => {
  const d = meanDiff(scores.own.map((v, i) => v - wrong[i]!));
  return `${d.mean >= 0 ? '+' : ''}${d.mean.toFixed(3)} +- ${d.se.toFixed(3)} dB`;
};
console.log(`its own representation ahead of: the sharp frame's ${loss(scores.sharp)}, another pair's ${loss(scores.other)}, zeros ${loss(scores.zeros)} (standard error, pairs independent)`);
net.dispose();
