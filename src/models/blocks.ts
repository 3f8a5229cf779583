/**
 * HINet building blocks (msdi_arch.py / generator.py): UNetConvBlock, UNetUpBlock, SAM.
 * The trunk (msdi_net) and the joint model's generators (generator.HINet) use two variants
 * of UNetConvBlock; `flavour` picks which, so both keep their official keys.
 */
import { Tensor, cat, tidy } from '../engine/index.js';
import { Module } from '../nn/module.js';
import { Conv2d, ConvTranspose2d, InstanceNorm2d } from '../nn/layers.js';

/**
 * 'trunk' (msdi_arch.UNetConvBlock): identity 1x1 without bias, conv_3 (1x1) between conv_1
 *   and conv_2, an unused conv_4, CSFF convs 1x1 without bias.
 * 'generator' (generator.UNetConvBlock): identity 1x1 with bias, no conv_3/conv_4, CSFF 3x3.
 */
export type BlockFlavour = 'trunk' | 'generator';

export interface UNetConvBlockOptions {
  downsample: boolean;
  slope: number;
  csff?: boolean;
  hin?: boolean;
  flavour: BlockFlavour;
}

export class UNetConvBlock extends Module {
  readonly identity: Conv2d;
  readonly conv_1: Conv2d;
  readonly conv_2: Conv2d;
  readonly conv_3: Conv2d | null = null;
  readonly csff_enc: Conv2d | null = null;
  readonly csff_dec: Conv2d | null = null;
  readonly norm: InstanceNorm2d | null = null;
  readonly downsample: Conv2d | null = null;
  readonly slope: number;

  constructor(inC: number, outC: number, o: UNetConvBlockOptions) {
    super();
    const trunk = o.flavour === 'trunk';
    this.slope = o.slope;
    this.identity = this.child('identity', new Conv2d(inC, outC, 1, { bias: !trunk }));
    this.conv_1 = this.child('conv_1', new Conv2d(inC, outC, 3, { padding: 1 }));
    this.conv_2 = this.child('conv_2', new Conv2d(outC, outC, 3, { padding: 1 }));
    if (trunk) {
      this.conv_3 = this.child('conv_3', new Conv2d(outC, outC, 1, { bias: false }));
      // conv_4 is in the official weights but its forward never uses it.
      this.child('conv_4', new Conv2d(outC, outC, 1, { bias: false }));
    }
    if (o.downsample && o.csff) {
      const k = trunk ? 1 : 3;
      this.csff_enc = this.child('csff_enc', new Conv2d(outC, outC, k, { padding: (k - 1) / 2, bias: !trunk }));
      this.csff_dec = this.child('csff_dec', new Conv2d(outC, outC, k, { padding: (k - 1) / 2, bias: !trunk }));
    }
    if (o.hin) this.norm = this.child('norm', new InstanceNorm2d(outC / 2, true));
    if (o.downsample) this.downsample = this.child('downsample', new Conv2d(outC, outC, 4, { stride: 2, padding: 1, bias: false }));
  }

  /** Returns [down, full] when downsampling, else [full, full]. */
  forward(x: Tensor, enc?: Tensor, dec?: Tensor): [Tensor, Tensor] {
    return tidy(() => {
      let out = this.conv_1.forward(x);
      if (this.norm) {
        const [a, b] = out.chunk(2, 1);
        out = cat([this.norm.forward(a), b], 1);
      }
      out = out.leakyRelu(this.slope);
      if (this.conv_3) out = this.conv_3.forward(out).leakyRelu(this.slope);
      out = this.conv_2.forward(out).leakyRelu(this.slope);
      out = out.add(this.identity.forward(x));
      if (enc && dec && this.csff_enc && this.csff_dec) {
        out = out.add(this.csff_enc.forward(enc)).add(this.csff_dec.forward(dec));
      }
      if (this.downsample) return [this.downsample.forward(out), out];
      return [out, out];
    });
  }

  /** Forward of a block without downsampling. */
  run(x: Tensor): Tensor {
    return this.forward(x)[0];
  }
}

export class UNetUpBlock extends Module {
  readonly up: ConvTranspose2d;
  readonly conv_block: UNetConvBlock;
  constructor(inC: number, outC: number, slope: number, flavour: BlockFlavour) {
    super();
    this.up = this.child('up', new ConvTranspose2d(inC, outC, 2, 2));
    this.conv_block = this.child('conv_block', new UNetConvBlock(inC, outC, { downsample: false, slope, flavour }));
  }
  forward(x: Tensor, bridge: Tensor): Tensor {
    return tidy(() => this.conv_block.run(cat([this.up.forward(x), bridge], 1)));
  }
}

/** Supervised attention module between the two stages: returns [features, stage-1 image]. */
export class SAM extends Module {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly conv3: Conv2d;
  constructor(nFeat: number) {
    super();
    this.conv1 = this.child('conv1', new Conv2d(nFeat, nFeat, 3, { padding: 1 }));
    this.conv2 = this.child('conv2', new Conv2d(nFeat, 3, 3, { padding: 1 }));
    this.conv3 = this.child('conv3', new Conv2d(3, nFeat, 3, { padding: 1 }));
  }
  forward(x: Tensor, image: Tensor): [Tensor, Tensor] {
    return tidy(() => {
      const img = this.conv2.forward(x).add(image);
      const gate = this.conv3.forward(img).sigmoid();
      return [this.conv1.forward(x).mul(gate).add(x), img];
    });
  }
}
