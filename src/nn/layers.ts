/** The leaf layers of the paper's networks, with torch's parameter names and defaults. */
import { Tensor, F, noGrad, tidy, keep } from '../engine/index.js';
import { Layer } from './module.js';
import { countMacs } from './macs.js';
import { uniformInit, normalVector } from './init.js';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  bias?: boolean;
  groups?: number;
  /** Wrap in torch.nn.utils.spectral_norm: weight_orig + weight_u / weight_v. */
  spectral?: boolean;
}

/**
 * Conv2d, optionally spectral-normalised exactly as torch.nn.utils.spectral_norm:
 * training mode runs one power iteration per forward (updating u and v in place, outside
 * autograd) before sigma = u . (W v); eval mode uses the stored u and v. `fold()` computes
 * the normalised weight once for inference.
 */
export class Conv2d extends Layer {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: number;
  readonly stride: number;
  readonly padding: number;
  readonly groups: number;
  readonly spectral: boolean;
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly u: Tensor | null = null;
  readonly v: Tensor | null = null;
  #folded: Tensor | null = null;

  constructor(inC: number, outC: number, kernel: number, o: Conv2dOptions = {}) {
    super();
    this.inChannels = inC;
    this.outChannels = outC;
    this.kernel = kernel;
    this.stride = o.stride ?? 1;
    this.padding = o.padding ?? 0;
    this.groups = o.groups ?? 1;
    this.spectral = o.spectral ?? false;
    const fanIn = (inC / this.groups) * kernel * kernel;
    this.weight = this.param(this.spectral ? 'weight_orig' : 'weight',
      uniformInit([outC, inC / this.groups, kernel, kernel], fanIn));
    this.bias = o.bias ?? true ? this.param('bias', uniformInit([outC], fanIn)) : null;
    if (this.spectral) {
      this.u = this.buffer('weight_u', normalVector(outC));
      this.v = this.buffer('weight_v', normalVector(fanIn));
    }
  }

  /** The weight the convolution uses (W / sigma for spectral norm). */
  effectiveWeight(): Tensor {
    if (this.#folded && !this.training) return this.#folded;
    if (!this.spectral) return this.weight;
    const u = this.u!;
    const v = this.v!;
    return tidy(() => {
      const mat = this.weight.reshape([this.outChannels, -1]);
      if (this.training) {
        noGrad(() => {
          const nv = F.normalize(mat.transpose(0, 1).matmul(u.reshape([-1, 1])).reshape([-1]), { dim: 0, eps: 1e-12 });
          const nu = F.normalize(mat.matmul(nv.reshape([-1, 1])).reshape([-1]), { dim: 0, eps: 1e-12 });
          v.copy_(nv);
          u.copy_(nu);
        });
      }
      // sigma reads copies of u and v, as torch's spectral_norm does: the next training forward
      // updates u and v in place, which must not touch what this one saved for backward.
      const [uc, vc] = this.training ? [u.clone(), v.clone()] : [u, v];
      const sigma = uc.reshape([1, -1]).matmul(mat.matmul(vc.reshape([-1, 1]))).reshape([]);
      return this.weight.div(sigma);
    });
  }

  /**
   * Computes the inference weight once (spectral norm applied; NHWC memory order with
   * `channelsLast`, which makes oneDNN keep activations NHWC from layer to layer instead of
   * reordering them at every call). Used in eval mode until the mode changes or weights load.
   */
  fold(o: { channelsLast?: boolean } = {}): void {
    this.unfold();
    if (!this.spectral && !o.channelsLast) return;
    const wasTraining = this.training;
    this.training = false;
    this.#folded = keep(tidy(() => noGrad(() => {
      const w = this.effectiveWeight().detach();
      return o.channelsLast ? w.channelsLast() : w;
    })));
    this.training = wasTraining;
  }

  unfold(): void {
    this.#folded?.dispose();
    this.#folded = null;
  }

  protected override onModeChange(): void {
    if (this.training) this.unfold();
  }

  protected override onDeviceChange(): void {
    this.unfold();
  }

  protected override onDispose(): void {
    this.unfold();
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      const y = F.conv2d(x, this.effectiveWeight(), this.bias, { stride: this.stride, padding: this.padding, groups: this.groups });
      countMacs(y, (this.inChannels / this.groups) * this.kernel * this.kernel);
      return y;
    });
  }
}

/** ConvTranspose2d (weight in x out x k x k, as torch stores it). */
export class ConvTranspose2d extends Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernel: number,
    readonly stride = 1, bias = true) {
    super();
    // torch computes fan_in from weight.size(1) * k * k for transposed convolutions too.
    const fanIn = outChannels * kernel * kernel;
    this.weight = this.param('weight', uniformInit([inChannels, outChannels, kernel, kernel], fanIn));
    this.bias = bias ? this.param('bias', uniformInit([outChannels], fanIn)) : null;
  }
  forward(x: Tensor): Tensor {
    const y = this.kernel === 2 && this.stride === 2
      ? F.convTranspose2x2(x, this.weight, this.bias)
      : F.convTranspose2d(x, this.weight, this.bias, { stride: this.stride });
    countMacs(x, this.outChannels * this.kernel * this.kernel);
    return y;
  }
}

/** InstanceNorm2d without running statistics; affine adds weight (ones) and bias (zeros). */
export class InstanceNorm2d extends Layer {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(readonly channels: number, affine = false, readonly eps = 1e-5) {
    super();
    this.weight = affine ? this.param('weight', Tensor.ones([channels])) : null;
    this.bias = affine ? this.param('bias', Tensor.zeros([channels])) : null;
  }
  forward(x: Tensor): Tensor {
    return F.instanceNorm(x, this.weight, this.bias, this.eps);
  }
}

/**
 * BatchNorm2d with running statistics (momentum 0.1, eps 1e-5), as the single-device
 * SynchronizedBatchNorm2d of the official code behaves; affine false is SPADE's param-free norm.
 */
export class BatchNorm2d extends Layer {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  constructor(readonly channels: number, affine = true, readonly momentum = 0.1, readonly eps = 1e-5) {
    super();
    this.weight = affine ? this.param('weight', Tensor.ones([channels])) : null;
    this.bias = affine ? this.param('bias', Tensor.zeros([channels])) : null;
    this.runningMean = this.buffer('running_mean', Tensor.zeros([channels]));
    this.runningVar = this.buffer('running_var', Tensor.ones([channels]));
  }
  forward(x: Tensor): Tensor {
    return F.batchNorm(x, this.runningMean, this.runningVar, {
      weight: this.weight, bias: this.bias, training: this.training, momentum: this.momentum, eps: this.eps,
    });
  }
}

export class LeakyReLU extends Layer {
  constructor(readonly slope = 0.2) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.leakyRelu(this.slope);
  }
}

export class ReLU extends Layer {
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}

export class ReflectionPad2d extends Layer {
  constructor(readonly pad: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.pad(x, this.pad, 'reflect');
  }
}

/** nn.Upsample(scale_factor) in nearest mode. */
export class Upsample extends Layer {
  constructor(readonly scale = 2) {
    super();
  }
  forward(x: Tensor): Tensor {
    const [, , h, w] = x.shape;
    return F.interpolate(x, [h * this.scale, w * this.scale], 'nearest');
  }
}

export class AvgPool2d extends Layer {
  constructor(readonly kernel: number, readonly stride = kernel, readonly padding = 0, readonly countIncludePad = true) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.kernel, { stride: this.stride, padding: this.padding, countIncludePad: this.countIncludePad });
  }
}

/** Folds every spectral-norm conv under `root` into a plain weight (inference only). */
export function foldSpectralNorms(root: { namedModules(): Iterable<[string, unknown]> }): void {
  for (const [, m] of root.namedModules()) if (m instanceof Conv2d) m.fold();
}

/**
 * Readies `root` for inference: spectral norms folded and, by default, every convolution
 * weight stored NHWC so that activations stay NHWC through the network (outputs equal the
 * NCHW path within float rounding; see test/speed.test.ts). MSDI_CHANNELS_LAST=0 keeps NCHW.
 */
export function prepareForInference(root: { namedModules(): Iterable<[string, unknown]> }, o: { channelsLast?: boolean } = {}): void {
  const channelsLast = o.channelsLast ?? process.env.MSDI_CHANNELS_LAST !== '0';
  for (const [, m] of root.namedModules()) if (m instanceof Conv2d) m.fold({ channelsLast });
}
