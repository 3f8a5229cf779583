/**
 * Unblurred pairs: the blurry image of some samples replaced by their sharp one.
 *
 * Why: reblurring at level 0 (`msdi reblur --level 0`) feeds the generator the sharp image's own
 * representation and must give the sharp image back, but a training set of blurry/sharp pairs
 * never shows it a sharp input (GoPro has a few near-static frames; our synthetic set has none).
 * Unblurred samples teach both branches the identity for a sharp input, and they make a
 * representation that tells blur apart from no blur worth learning: a generator that blurs by
 * an average amount, ignoring the representation, now pays on every unblurred sample. In stage 2
 * they show the deblurring network inputs with no blur to remove, which it must leave alone (a
 * network trained on blurry inputs only darkened and smeared near-sharp held-out photos).
 *
 * Which samples: global sample i of step s when Rng(deriveSeed(seed, IDENTITY_TAG, s, i)) draws
 * below the fraction, so batches stay a pure function of (seed, step) and resume exactly.
 */
import { deriveSeed, Rng } from './rng.js';
import type { PairBatch } from './paired.js';

/** Domain tag mixed into the per-sample seed: deriveSeed(seed, IDENTITY_TAG, step, i). */
export const IDENTITY_TAG = 0x6964656e; // 'iden'

/**
 * Replaces, in place, the blurry image of the chosen samples by their sharp image. `first` is
 * the global index of the batch's first sample (a data-parallel shard's offset). Returns the
 * local indices of the samples replaced.
 */
export function makeIdentityPairs(batch: PairBatch, o: { seed: number; step: number; fraction: number; first?: number }): number[] {
  if (!(o.fraction >= 0 && o.fraction <= 1)) throw new Error(`identity pairs: expected a fraction in [0, 1], got ${o.fraction}`);
  const replaced: number[] = [];
  if (o.fraction === 0) return replaced;
  const per = 3 * batch.size * batch.size;
  for (let k = 0; k < batch.n; k++) {
    if (new Rng(deriveSeed(o.seed, IDENTITY_TAG, o.step, (o.first ?? 0) + k)).float() >= o.fraction) continue;
    batch.blurry.set(batch.sharp.subarray(k * per, (k + 1) * per), k * per);
    batch.levelBlurry?.set(batch.sharp.subarray(k * per, (k + 1) * per), k * per); // no blur at any level
    replaced.push(k);
  }
  return replaced;
}
