/**
 * How far apart two deblurring networks' outputs are on one random 64 x 64 image (seed 0): the
 * check of the scripts that rebuild one network from another's weights
 * (warm-start-from-ablation.mts, ablation-from-network.mts).
 */
import { Tensor, noGrad, tidy, manualSeed } from '../../src/engine/index.js';
import type { MsdiNet } from '../../src/models/msdi-net.js';

/** The largest and the mean absolute difference of the two networks' final outputs (out2). */
export function outputGap(a: MsdiNet, b: MsdiNet): { max: number; mean: number } {
  manualSeed(0);
  return tidy(() => noGrad(() => {
    const x = Tensor.rand([1, 3, 64, 64]);
    const diff = a.forward(x).out2.sub(b.forward(x).out2).abs();
    return { max: diff.max().item(), mean: diff.mean().item() };
  }));
}
