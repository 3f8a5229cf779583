/**
 * Degradation encoders (encoder1.py, encoder2.py): a blurry image, resized to 256 x 256,
 * to the latent z (v1: 4ndf x 4 x 4; v2: 32ndf x 8 x 8). Widths scale with ndf.
 */
import { Tensor, tidy, F } from '../engine/index.js';
import { Layer, Module, Sequential } from '../nn/module.js';
import { AvgPool2d, Conv2d, InstanceNorm2d, LeakyReLU, ReflectionPad2d } from '../nn/layers.js';

export const ENCODER_SIZE = 256;

/** get_nonspade_norm_layer('spectralinstance'): spectral conv (bias removed) + InstanceNorm. */
function snInstance(inC: number, outC: number, stride: number, padding: number): Sequential {
  return new Sequential(new Conv2d(inC, outC, 3, { stride, padding, bias: false, spectral: true }), new InstanceNorm2d(outC));
}

/** encoder1.ResnetBlock: reflpad, conv, lrelu, reflpad, conv; out = lrelu(x + y). */
export class EncoderResBlock extends Layer {
  readonly conv_block: Sequential;
  constructor(dim: number) {
    super();
    this.conv_block = this.child('conv_block', new Sequential(
      new ReflectionPad2d(1), new Conv2d(dim, dim, 3), new LeakyReLU(0.2), new ReflectionPad2d(1), new Conv2d(dim, dim, 3),
    ));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => x.add(this.conv_block.forward(x)).leakyRelu(0.2));
  }
}

abstract class EncoderBase extends Module {
  readonly conv_7x7: Conv2d;
  protected readonly downLayers: Sequential[] = [];
  constructor(ndf: number, widths: number[]) {
    super();
    let prev = 3;
    widths.forEach((w, i) => {
      this.downLayers.push(this.child(`layer${i + 1}`, snInstance(prev, w, 2, 1)));
      prev = w;
    });
    this.conv_7x7 = this.child('conv_7x7', new Conv2d(ndf, ndf, 7));
  }

  /** Resize to 256, layer1, 7x7, then the remaining stride-2 layers (each after an lrelu). */
  protected stem(x: Tensor): Tensor {
    const [, , h, w] = x.shape;
    let y = h === ENCODER_SIZE && w === ENCODER_SIZE ? x : F.interpolate(x, [ENCODER_SIZE, ENCODER_SIZE], 'bilinear');
    y = this.downLayers[0].forward(y);
    y = this.conv_7x7.forward(F.pad(y.leakyRelu(0.2), 3, 'reflect'));
    for (const l of this.downLayers.slice(1)) y = l.forward(y.leakyRelu(0.2));
    return y;
  }

  abstract forward(x: Tensor): Tensor;
}

/** encoder1.ConvEncoder (msdi_net): z = 4ndf x 4 x 4. */
export class ConvEncoderV1 extends EncoderBase {
  readonly layer6: Sequential;
  readonly res: EncoderResBlock[];
  readonly down = new AvgPool2d(2, 2);
  readonly out: Sequential;
  constructor(ndf: number) {
    super(ndf, [ndf, 2 * ndf, 4 * ndf, 8 * ndf, 8 * ndf]);
    this.layer6 = this.child('layer6', snInstance(8 * ndf, 8 * ndf, 1, 1));
    this.res = [0, 1, 2, 3, 4].map((i) => this.child(`res_${i}`, new EncoderResBlock(8 * ndf)));
    this.child('down', this.down);
    this.out = this.child('out', snInstance(8 * ndf, 4 * ndf, 1, 0));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let y = this.layer6.forward(this.stem(x).leakyRelu(0.2));
      y = this.res[2].forward(this.res[1].forward(this.res[0].forward(y)));
      y = this.res[4].forward(this.res[3].forward(this.down.forward(y)));
      return this.out.forward(F.pad(y, 1, 'reflect'));
    });
  }
}

/** encoder2.ConvEncoder (MSDI2E, msdi2_net): z = 32ndf x 8 x 8. */
export class ConvEncoderV2 extends EncoderBase {
  readonly res: EncoderResBlock[];
  readonly out: Sequential;
  constructor(ndf: number) {
    super(ndf, [ndf, 2 * ndf, 4 * ndf, 8 * ndf, 16 * ndf]);
    this.res = [0, 1, 2].map((i) => this.child(`res_${i}`, new EncoderResBlock(16 * ndf)));
    const block = (inC: number, outC: number): Layer[] => [
      new ReflectionPad2d(1),
      new Sequential(new Conv2d(inC, outC, 3, { bias: false, spectral: true }), new InstanceNorm2d(outC)),
      new LeakyReLU(0.2),
    ];
    this.out = this.child('out', new Sequential(...block(16 * ndf, 32 * ndf), ...block(32 * ndf, 32 * ndf), ...block(32 * ndf, 32 * ndf)));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let y = this.stem(x);
      for (const r of this.res) y = r.forward(y);
      return this.out.forward(y);
    });
  }
}
