/**
 * Colour augmentation: the RGB channels of each training sample permuted, the same permutation
 * for its blurry and sharp images (and its blur at another level), one of the six drawn per
 * sample (the identity among them).
 *
 * Why: a deblurring network that modulates its skip connections by functions of its own features
 * (msdi2_net's SPADE blocks) generalised worse than its ablation to one held-out photo, pinks
 * and purples at dusk; with that photo's channels permuted, most of the gap closed while the
 * ablation's score stayed (docs/training-log.md). A
 * permutation changes no blur, noise or edge, so the pairs stay true pairs with six times the
 * palettes.
 *
 * Which permutation: Rng(deriveSeed(seed, PERMUTE_TAG, step, i)) for global sample i of step
 * `step`, so batches stay a pure function of (seed, step) and resume exactly; the crops and flips
 * do not move when the option is switched on.
 */
import { deriveSeed, Rng } from './rng.js';
import type { PairBatch } from './paired.js';

/** Domain tag mixed into the per-sample seed: deriveSeed(seed, PERMUTE_TAG, step, i). */
export const PERMUTE_TAG = 0x70657263; // 'perc'

/** The six orders of the channels: output channel c is input channel PERMUTATIONS[k][c]. */
export const PERMUTATIONS: readonly (readonly [number, number, number])[] = [
  [0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0],
];

/**
 * Permutes, in place, the channels of every sample of a batch of CHW images. `first` is the
 * global index of the batch's first sample (a data-parallel shard's offset). Returns each sample's
 * permutation index.
 */
export function permuteChannels(batch: PairBatch, o: { seed: number; step: number; first?: number }): number[] {
  const plane = batch.size * batch.size;
  const tmp = new Float32Array(3 * plane);
  const chosen: number[] = [];
  for (let k = 0; k < batch.n; k++) {
    const p = new Rng(deriveSeed(o.seed, PERMUTE_TAG, o.step, (o.first ?? 0) + k)).int(0, 5);
    chosen.push(p);
    if (p === 0) continue;
    for (const images of [batch.blurry, batch.sharp, batch.levelBlurry]) {
      if (!images) continue;
      const sample = images.subarray(3 * plane * k, 3 * plane * (k + 1));
      tmp.set(sample);
      for (let c = 0; c < 3; c++) sample.set(tmp.subarray(PERMUTATIONS[p]![c]! * plane, (PERMUTATIONS[p]![c]! + 1) * plane), c * plane);
    }
  }
  return chosen;
}
