/**
 * Colour augmentation: the RGB channels of each training sample permuted, the same permutation
 * for its blurry and sharp images (and its blur at another level), one of the six drawn per
 * sample (the identity among them).
 *
 * Why: a deblurring network that modulates its skip connections by functions of its own features
 * (msdi2_net's SPADE blocks) generalised worse than its ablation to one held-out photo, pinks
 * and purples at dusk; with that photo's channels permuted, most of the gap closed while the
 * ablation's score stayed (docs/training-log.md). A permutation changes no blur, noise or edge,
 * so the pairs stay true pairs with six times the palettes.
 *
 * Which permutation: Rng(deriveSeed(seed, PERMUTE_TAG, step, i)) for global sample i of step
 * `step`, so batches stay a pure function of (seed, step) and resume exactly; the crops and flips
 * do not move when the option is switched on. The loader's workers apply it as they write each
 * crop (PairedLoaderOptions.permuteChannels), at no cost.
 */
import { deriveSeed, Rng } from './rng.js';

/** Domain tag mixed into the per-sample seed: deriveSeed(seed, PERMUTE_TAG, step, i). */
export const PERMUTE_TAG = 0x70657263; // 'perc'

/** The six orders of the channels: output channel c is input channel PERMUTATIONS[k][c]. */
export const PERMUTATIONS: readonly (readonly [number, number, number])[] = [
  [0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0],
];

/** The channel order of global sample i of step `step`: output channel c is input channel order[c]. */
export function channelOrder(seed: number, step: number, i: number): readonly [number, number, number] {
  return PERMUTATIONS[new Rng(deriveSeed(seed, PERMUTE_TAG, step, i)).int(0, PERMUTATIONS.length - 1)]!;
}
