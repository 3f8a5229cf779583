/**
 * Spatially adaptive modulation of skip connections by the degradation representation.
 *
 * - SPADE1 / SPADEResnetBlock1 (architecture1.py, the trunk): no normalisation; the
 *   modulation reads [x, latent] so it adapts to content and blur together.
 * - SPADE / SPADEResnetBlock (architecture2.py, the joint model's generators): param-free
 *   BatchNorm, then gamma / beta from the latent alone.
 */
import { Tensor, cat, tidy, noGrad, F } from '../engine/index.js';
import { Module, Sequential } from '../nn/module.js';
import { BatchNorm2d, Conv2d, LeakyReLU, ReLU } from '../nn/layers.js';

/** The official SPADE hidden width, at every trunk width (SPEC.md section 1). */
export const SPADE_HIDDEN = 128;

function resizeTo(seg: Tensor, x: Tensor): Tensor {
  const [, , h, w] = x.shape;
  const [, , sh, sw] = seg.shape;
  return sh === h && sw === w ? seg : F.interpolate(seg, [h, w], 'nearest');
}

export class SPADE1 extends Module {
  readonly mlp_shared: Sequential;
  readonly mlp_gamma: Conv2d;
  readonly mlp_beta: Conv2d;
  /** The latent map is multiplied by this first (training only; see scaleLatentInputs). */
  latentScale = 1;
  constructor(normNc: number, labelNc: number, nhidden = SPADE_HIDDEN) {
    super();
    // Present in the official weights, never applied by SPADE1.forward.
    this.child('param_free_norm', new BatchNorm2d(normNc, false));
    this.mlp_shared = this.child('mlp_shared', new Sequential(
      new Conv2d(labelNc + normNc, labelNc, 1),
      new LeakyReLU(0.2),
      new Conv2d(labelNc, nhidden, 3, { padding: 1 }),
      new LeakyReLU(0.2),
      new Conv2d(nhidden, nhidden, 3, { padding: 1 }),
      new LeakyReLU(0.2),
    ));
    this.mlp_gamma = this.child('mlp_gamma', new Conv2d(nhidden, normNc, 3, { padding: 1 }));
    this.mlp_beta = this.child('mlp_beta', new Conv2d(nhidden, normNc, 3, { padding: 1 }));
  }
  forward(x: Tensor, seg: Tensor): Tensor {
    return tidy(() => {
      const latent = resizeTo(seg, x);
      const actv = this.mlp_shared.forward(cat([x, this.latentScale === 1 ? latent : latent.mul(this.latentScale)], 1));
      return x.mul(this.mlp_gamma.forward(actv).add(1)).add(this.mlp_beta.forward(actv));
    });
  }
}

export class SPADE extends Module {
  readonly param_free_norm: BatchNorm2d;
  readonly mlp_shared: Sequential;
  readonly mlp_gamma: Conv2d;
  readonly mlp_beta: Conv2d;
  constructor(normNc: number, labelNc: number, nhidden = SPADE_HIDDEN) {
    super();
    this.param_free_norm = this.child('param_free_norm', new BatchNorm2d(normNc, false));
    this.mlp_shared = this.child('mlp_shared', new Sequential(new Conv2d(labelNc, nhidden, 3, { padding: 1 }), new ReLU()));
    this.mlp_gamma = this.child('mlp_gamma', new Conv2d(nhidden, normNc, 3, { padding: 1 }));
    this.mlp_beta = this.child('mlp_beta', new Conv2d(nhidden, normNc, 3, { padding: 1 }));
  }
  forward(x: Tensor, seg: Tensor): Tensor {
    return tidy(() => {
      const normalized = this.param_free_norm.forward(x);
      const actv = this.mlp_shared.forward(resizeTo(seg, x));
      return normalized.mul(this.mlp_gamma.forward(actv).add(1)).add(this.mlp_beta.forward(actv));
    });
  }
}

/** out = x + conv_0(lrelu(norm_0(x, seg))), conv_0 spectral-normalised (fin = fout, no learned shortcut). */
class ResBlockBase extends Module {
  readonly conv_0: Conv2d;
  readonly norm_0: SPADE | SPADE1;
  constructor(channels: number, norm: SPADE | SPADE1) {
    super();
    this.conv_0 = this.child('conv_0', new Conv2d(channels, channels, 3, { padding: 1, spectral: true }));
    this.norm_0 = this.child('norm_0', norm);
  }
  forward(x: Tensor, seg: Tensor): Tensor {
    return tidy(() => x.add(this.conv_0.forward(this.norm_0.forward(x, seg).leakyRelu(0.2))));
  }
}

export class SPADEResnetBlock1 extends ResBlockBase {
  declare readonly norm_0: SPADE1;
  constructor(channels: number, labelNc: number, nhidden = SPADE_HIDDEN) {
    super(channels, new SPADE1(channels, labelNc, nhidden));
  }
}

export class SPADEResnetBlock extends ResBlockBase {
  constructor(channels: number, labelNc: number, nhidden = SPADE_HIDDEN) {
    super(channels, new SPADE(channels, labelNc, nhidden));
  }
}

/**
 * Zero-initialises the last convolutions of every modulation (mlp_gamma, mlp_beta) under
 * `net`, so that each SPADE starts as the identity (x * (1 + 0) + 0) and the network starts as
 * its ablation without the representation (the adaLN-Zero / zero-convolution trick): the
 * representation no longer enters as a random per-image perturbation of every skip connection,
 * and the first gradients reach the modulation weights alone. Measured on this project's CPU
 * budget (docs/training-log.md): it did not stop stage 1 from flattening the representation in its
 * first 500 steps, and left stage 2 where it was at 2500 steps. Returns the number of tensors
 * zeroed.
 */
export function zeroModulation(net: Module): number {
  let n = 0;
  tidy(() => {
    for (const [name, p] of net.namedParameters()) {
      if (!/(^|\.)mlp_(gamma|beta)\.(weight|bias)$/.test(name)) continue;
      p.copy_(Tensor.zeros(p.shape));
      n++;
    }
  });
  return n;
}

/**
 * Makes every modulated skip block of a trunk (SPADEResnetBlock1, x + conv_0(lrelu(x * (1 +
 * gamma) + beta))) give its input back: gamma = -1 (mlp_gamma: weight 0, bias -1), beta = 0
 * and conv_0's bias 0. Loaded with its ablation's weights, the trunk then computes exactly what
 * the ablation computes, so that stage 2 starts from the ablation and the representation adds
 * only what training finds in it (scripts/warm-start-from-ablation.mts). zeroModulation is not
 * enough for that: it leaves the block x + conv_0(lrelu(x)). conv_0 keeps its weight (a
 * spectral-normalised zero would divide by zero), so the gradients still reach the modulation.
 * Returns the number of blocks set.
 */
export function identitySkipBlocks(net: Module): number {
  let n = 0;
  tidy(() => {
    for (const [, m] of net.namedModules()) {
      if (!(m instanceof SPADEResnetBlock1)) continue;
      const { mlp_gamma, mlp_beta } = m.norm_0;
      for (const [t, value] of [[mlp_gamma.weight, 0], [mlp_gamma.bias, -1], [mlp_beta.weight, 0], [mlp_beta.bias, 0], [m.conv_0.bias, 0]] as const) {
        t!.copy_(Tensor.full(t!.shape, value));
      }
      m.conv_0.unfold();
      n++;
    }
  });
  return n;
}

/**
 * The state-dict key of a trunk modulation's first convolution (SPADE1's mlp_shared.0 in
 * msdi_net / msdi2_net), which reads cat([skip features, latent map]): its last `labelNc`
 * input channels (labelNc = its output channels) are the latent map's.
 */
export const LATENT_INPUT_CONV = /^ad1_list\.\d+\.norm_0\.mlp_shared\.0\.weight$/;

/** `w` (a LATENT_INPUT_CONV weight) with the columns that read the latent map multiplied by k. */
export function scaleLatentColumns(w: Tensor, k: number): Tensor {
  const [labelNc, cin] = w.shape as [number, number];
  return tidy(() => cat([w.slice(1, 0, cin - labelNc), w.slice(1, cin - labelNc).mul(k)], 1));
}

/**
 * Multiplies, in place, the weights that read the latent maps in every modulation of a trunk
 * (msdi_net / msdi2_net) by k: a network trained with SPADE1.latentScale = k computes the same
 * function as its weights scaled by k with latentScale 1 (how exports store it), and 1/k turns
 * such weights back into that network's. Returns the number of tensors changed.
 */
export function scaleLatentInputs(net: Module, k: number): number {
  let n = 0;
  noGrad(() => tidy(() => {
    for (const [name, p] of net.namedParameters()) {
      if (!LATENT_INPUT_CONV.test(name)) continue;
      p.copy_(scaleLatentColumns(p, k));
      n++;
    }
  }));
  return n;
}
