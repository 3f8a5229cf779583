/** Pixel losses of the official recipes (basicsr/models/losses/losses.py). */
import { Tensor, tidy } from '../engine/index.js';

const PSNR_SCALE = 10 / Math.log(10);

/**
 * PSNRLoss: weight * 10/ln10 * mean over the batch of log(mse per image + 1e-8).
 * Minimising it maximises PSNR; its value is about -weight x PSNR (dB).
 */
export function psnrLoss(pred: Tensor, target: Tensor, weight = 1): Tensor {
  return tidy(() => pred.sub(target).pow(2).mean([1, 2, 3]).add(1e-8).log().mean().mul(weight * PSNR_SCALE));
}

/** Mean absolute error, times weight. */
export function l1Loss(pred: Tensor, target: Tensor, weight = 1): Tensor {
  return tidy(() => pred.sub(target).abs().mean().mul(weight));
}

/**
 * L1 between the horizontal and vertical pixel differences of pred and target (both averaged),
 * times weight. It weighs an edge's sharpness and fine texture that is not there (grain,
 * checkerboard) far more than a plain L1 does, whose cost for a faint pattern is its faint
 * amplitude.
 */
export function gradientL1Loss(pred: Tensor, target: Tensor, weight = 1): Tensor {
  return tidy(() => {
    const d = pred.sub(target);
    const dx = d.slice(3, 1).sub(d.slice(3, 0, -1)).abs().mean();
    const dy = d.slice(2, 1).sub(d.slice(2, 0, -1)).abs().mean();
    return dx.add(dy).mul(weight / 2);
  });
}
