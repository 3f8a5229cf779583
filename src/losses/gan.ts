/**
 * Adversarial losses of the reblurring branch (pix2pixHD / SPADE's GANLoss('hinge') and
 * feature matching), over the MultiscaleDiscriminator's per-scale feature lists.
 */
import { Tensor, tidy } from '../engine/index.js';

/** Discriminator hinge: mean relu(1 - D(real)) or mean relu(1 + D(fake)), averaged over scales. */
export function hingeD(preds: Tensor[][], real: boolean): Tensor {
  return tidy(() => {
    const per = preds.map((fs) => {
      const score = fs[fs.length - 1];
      return (real ? score.neg().add(1) : score.add(1)).relu().mean();
    });
    return per.reduce((a, b) => a.add(b)).div(preds.length);
  });
}

/** Generator hinge: -mean D(fake), averaged over scales. */
export function hingeG(predsFake: Tensor[][]): Tensor {
  return tidy(() => predsFake.map((fs) => fs[fs.length - 1].mean().neg()).reduce((a, b) => a.add(b)).div(predsFake.length));
}

/** Feature matching: L1 between fake and (detached) real features, all but the last, x weight / numD. */
export function featureMatching(predsFake: Tensor[][], predsReal: Tensor[][], weight = 10): Tensor {
  return tidy(() => {
    let total: Tensor | null = null;
    predsFake.forEach((fs, i) => {
      for (let j = 0; j < fs.length - 1; j++) {
        const term = fs[j].sub(predsReal[i][j].detach()).abs().mean().mul(weight / predsFake.length);
        total = total ? total.add(term) : term;
      }
    });
    return total!;
  });
}

/** A perceptual term (e.g. VGG19 features) for the reblurring branch: pluggable, off by default. */
export interface PerceptualLoss {
  readonly name: string;
  compute(pred: Tensor, target: Tensor): Tensor;
  dispose(): void;
}
