/**
 * Which of a deblurring network's modulated skip blocks (msdi2_net's ad1_list: a SPADE residual
 * block on the skip connection of each scale, finest first) help, and on which photos? On every
 * pair of a `msdi synth` folder (centre 256 x 256 crops) it scores the deblurred result with all
 * blocks, with each block bypassed in turn (its skip passed on unchanged), and with none, and
 * reports the mean PSNR over the pairs of the photos whose file name contains PHOTO and over the
 * others (with PHOTO, the first group's pairs one by one too).
 *
 *   node --import tsx scripts/probe-skip-blocks.mts DEBLUR_WEIGHTS SYNTH_DIR [PHOTO]
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { photosOfPairs } from '../src/eval/compare.js';
import { imageToTensor } from '../src/eval/reblur.js';
import { readImageRGB } from '../src/data/image-io.js';
import { inferenceMode, tidy, type Tensor } from '../src/engine/index.js';
import { centreCrop as centre, loadDeblurNetwork, psnr } from './lib/deblur-probe.mjs';

const [weights, dir, photo] = process.argv.slice(2);
if (!weights || !dir) {
  console.error('usage: node --import tsx scripts/probe-skip-blocks.mts DEBLUR_WEIGHTS SYNTH_DIR [PHOTO]');
  process.exit(2);
}
const net = loadDeblurNetwork(weights);
const photoOf = photosOfPairs(dir);
const blocks = Array.from({ length: net.ad1_list!.length }, (_, k) => net.ad1_list!.at(k));
const variants: [string, number[]][] = [['all', []], ...blocks.map((_, k): [string, number[]] => [`without ${k}`, [k]]), ['none', blocks.map((_, k) => k)]];
const groups = new Map<string, Map<string, number[]>>();
for (const name of readdirSync(join(dir, 'input')).sort()) {
  const [b, s] = await Promise.all([readImageRGB(join(dir, 'input', name)), readImageRGB(join(dir, 'target', name))]);
  const group = photo && photoOf.get(name)?.includes(photo) ? photo : 'the others';
  inferenceMode(() => tidy(() => {
    const blurry = centre(imageToTensor(b));
    const sharp = centre(imageToTensor(s));
    const row = [`input ${psnr(blurry, sharp).toFixed(2)}`];
    for (const [label, off] of variants) {
      const saved = off.map((k) => blocks[k]!.forward);
      for (const k of off) blocks[k]!.forward = (x: Tensor) => x;
      try {
        const p = psnr(net.forward(blurry).out2, sharp);
        const g = groups.get(group) ?? new Map<string, number[]>();
        groups.set(group, g.set(label, [...(g.get(label) ?? []), p]));
        row.push(`${label} ${p.toFixed(2)}`);
      } finally {
        off.forEach((k, i) => (blocks[k]!.forward = saved[i]!));
      }
    }
    if (group === photo) console.log(name, row.join('  '));
  }));
}
for (const [group, g] of groups) {
  const n = [...g.values()][0]!.length;
  console.log(`${group} (${n} pairs):`, [...g].map(([label, ps]) => `${label} ${(ps.reduce((a, c) => a + c, 0) / ps.length).toFixed(3)}`).join('  '));
}
