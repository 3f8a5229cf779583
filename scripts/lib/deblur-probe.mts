/**
 * What the probes of a deblurring network share: loading msdi2_net weights (a one-line error and
 * exit 1 for any other network), the centre crop the encoder works at, and PSNR on 0..1 images.
 */
import { loadModel } from '../../src/eval/model.js';
import type { Tensor } from '../../src/engine/index.js';
import { MsdiNet } from '../../src/models/msdi-net.js';

/** The side of the crops the probes score: the size the encoder was trained at. */
export const SIDE = 256;

/** The deblurring network with a representation in `weights`, in eval mode. */
export function loadDeblurNetwork(weights: string): MsdiNet {
  const net = loadModel(weights).net;
  if (!(net instanceof MsdiNet) || !net.net_prior || !net.ad1_list) {
    console.error(`${weights}: not a deblurring network with a representation (msdi2_net)`);
    process.exit(1);
  }
  net.eval();
  return net;
}

/** The centre SIDE x SIDE crop of a 1 x 3 x H x W tensor. */
export function centreCrop(t: Tensor): Tensor {
  const [, , h, w] = t.shape;
  const y = Math.floor((h! - SIDE) / 2);
  const x = Math.floor((w! - SIDE) / 2);
  return t.slice(2, y, y + SIDE).slice(3, x, x + SIDE).contiguous();
}

/** PSNR of `a` (clamped to 0..1) against `b`, in dB. */
export function psnr(a: Tensor, b: Tensor): number {
  return -10 * Math.log10(Math.max(1e-12, a.clamp(0, 1).sub(b).pow(2).mean().item()));
}
