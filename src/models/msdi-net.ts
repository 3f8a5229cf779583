/**
 * MSDI-Net, the deblurring trunk (msdi_arch.msdi_net = v1, msdi2_arch.msdi2_net = v2): a
 * two-stage HINet whose stage-1 skip connections are modulated, at every scale, by the
 * degradation representation of the input. Returns [out_1, out_2]; out_2 is the result.
 */
import { Tensor, cat, tidy } from '../engine/index.js';
import { Module, ModuleList } from '../nn/module.js';
import { Conv2d } from '../nn/layers.js';
import { SAM, UNetConvBlock, UNetUpBlock } from './blocks.js';
import { ConvEncoderV1, ConvEncoderV2 } from './encoder.js';
import { LatentDecoder } from './latent-decoder.js';
import { SPADEResnetBlock1, SPADE_HIDDEN, scaleLatentInputs } from './spade.js';

export interface MsdiNetOptions {
  wf: number;
  /** Degradation encoder width; our configs keep ndf = wf. */
  ndf?: number;
  /** 1: msdi_net (released checkpoint); 2: msdi2_net (trained from an MSDI2E encoder). */
  version: 1 | 2;
  depth?: number;
  slope?: number;
  /** false: the ablation without the representation (no encoder, no modulation). */
  degradation?: boolean;
  /**
   * Hidden width of the SPADE modulations (official: 128 at every wf). At wf 8 those 128-wide
   * convs cost twice the trunk, so our CPU configs narrow them.
   */
  spadeHidden?: number;
}

export interface MsdiNetOutput {
  out1: Tensor;
  out2: Tensor;
  /** The encoder's z and the decoded latents (absent in the no-degradation ablation). */
  priorZ?: Tensor;
  latents?: Tensor[];
}

export class MsdiNet extends Module {
  readonly options: Required<MsdiNetOptions>;
  readonly conv_01: Conv2d;
  readonly conv_02: Conv2d;
  readonly net_prior: ConvEncoderV1 | ConvEncoderV2 | null = null;
  readonly prior_upsampling: LatentDecoder | null = null;
  readonly down_path_1: ModuleList<UNetConvBlock>;
  readonly down_path_2: ModuleList<UNetConvBlock>;
  readonly ad1_list: ModuleList<SPADEResnetBlock1> | null = null;
  readonly up_path_1: ModuleList<UNetUpBlock>;
  readonly up_path_2: ModuleList<UNetUpBlock>;
  readonly skip: ModuleList<UNetConvBlock>[] = [];
  readonly sam12: SAM;
  readonly cat12: Conv2d;
  readonly last: Conv2d;

  constructor(o: MsdiNetOptions) {
    super();
    const opt = { ndf: o.wf, depth: 5, slope: 0.2, degradation: true, spadeHidden: SPADE_HIDDEN, ...o };
    this.options = opt;
    const { wf, depth, slope } = opt;
    const flavour = 'trunk' as const;
    this.conv_01 = this.child('conv_01', new Conv2d(3, wf, 3, { padding: 1 }));
    this.conv_02 = this.child('conv_02', new Conv2d(3, wf, 3, { padding: 1 }));
    if (opt.degradation) {
      // The representation is learned in stage 1 and frozen here; spectral norms still
      // power-iterate in training mode, as in the official code.
      this.prior_upsampling = this.child('prior_upsampling', new LatentDecoder(wf, opt.version)).freeze();
      this.net_prior = this.child('net_prior', opt.version === 1 ? new ConvEncoderV1(opt.ndf) : new ConvEncoderV2(opt.ndf)).freeze();
    }
    const width = (i: number) => 2 ** i * wf;
    const d1: UNetConvBlock[] = [];
    const d2: UNetConvBlock[] = [];
    let prev = wf;
    for (let i = 0; i < depth; i++) {
      const downsample = i + 1 < depth;
      d1.push(new UNetConvBlock(prev, width(i), { downsample, slope, hin: true, flavour }));
      d2.push(new UNetConvBlock(prev, width(i), { downsample, slope, hin: true, csff: downsample, flavour }));
      prev = width(i);
    }
    this.down_path_1 = this.child('down_path_1', new ModuleList(d1));
    this.down_path_2 = this.child('down_path_2', new ModuleList(d2));
    if (opt.degradation) {
      this.ad1_list = this.child('ad1_list', new ModuleList(
        Array.from({ length: depth - 1 }, (_, i) => new SPADEResnetBlock1(width(i), width(i), opt.spadeHidden))));
    }
    const u1: UNetUpBlock[] = [];
    const u2: UNetUpBlock[] = [];
    const skips: UNetConvBlock[][] = [[], [], [], [], [], []];
    for (let i = depth - 2; i >= 0; i--) {
      u1.push(new UNetUpBlock(prev, width(i), slope, flavour));
      u2.push(new UNetUpBlock(prev, width(i), slope, flavour));
      for (const s of skips) s.push(new UNetConvBlock(width(i), width(i), { downsample: false, slope, hin: true, flavour }));
      prev = width(i);
    }
    this.up_path_1 = this.child('up_path_1', new ModuleList(u1));
    this.up_path_2 = this.child('up_path_2', new ModuleList(u2));
    skips.forEach((s, k) => this.skip.push(this.child(`skip_conv_${k + 1}`, new ModuleList(s))));
    this.sam12 = this.child('sam12', new SAM(prev));
    this.cat12 = this.child('cat12', new Conv2d(prev * 2, prev, 1));
    this.last = this.child('last', new Conv2d(prev, 3, 3, { padding: 1 }));
  }

  /** Multiplies the latent maps by k inside every modulation (TrainConfig.latentScale). */
  setLatentScale(k: number): void {
    for (const block of this.ad1_list?.items ?? []) block.norm_0.latentScale = k;
  }

  /** Moves the latent scale into the weights that read the latent maps (the same function at scale 1, as exports hold it). */
  foldLatentScale(): void {
    const k = this.ad1_list?.items[0]?.norm_0.latentScale ?? 1;
    if (k === 1) return;
    scaleLatentInputs(this, k);
    this.setLatentScale(1);
  }

  /** The degradation representation of `x`: z and the four latent maps. */
  represent(x: Tensor): { priorZ: Tensor; latents: Tensor[] } {
    if (!this.net_prior || !this.prior_upsampling) throw new Error('MsdiNet: built without the degradation representation');
    return tidy(() => {
      const priorZ = this.net_prior!.forward(x);
      return { priorZ, latents: this.prior_upsampling!.forward(priorZ) };
    });
  }

  forward(x: Tensor, given?: Tensor[]): MsdiNetOutput {
    return tidy(() => {
      const rep = given ? { priorZ: undefined, latents: given } : this.net_prior ? this.represent(x) : undefined;
      const latents = rep?.latents;
      const [skip1, skip2, skip3, skip4, skip5, skip6] = this.skip;
      const depth = this.options.depth;
      // Stage 1: the encoder path, then skips modulated by the representation.
      let x1 = this.conv_01.forward(x);
      const encs: Tensor[] = [];
      for (let i = 0; i < depth; i++) {
        const [down, full] = this.down_path_1.at(i).forward(x1);
        if (i + 1 < depth) encs.push(full);
        x1 = down;
      }
      const decs: Tensor[] = [];
      for (let i = 0; i < depth - 1; i++) {
        let s = skip1.at(i).run(encs[encs.length - 1 - i]);
        if (this.ad1_list && latents) s = this.ad1_list.at(-1 - i).forward(s, latents[latents.length - 1 - i]);
        s = skip3.at(i).run(s);
        x1 = this.up_path_1.at(i).forward(x1, s);
        decs.push(x1);
      }
      const [samFeature, out1] = this.sam12.forward(x1, x);
      // Stage 2: cross-stage feature fusion from stage 1's encoder and decoder.
      let x2 = this.cat12.forward(cat([this.conv_02.forward(x), samFeature], 1));
      const blocks: Tensor[] = [];
      for (let i = 0; i < depth; i++) {
        const last = i + 1 >= depth;
        const [down, full] = last
          ? this.down_path_2.at(i).forward(x2)
          : this.down_path_2.at(i).forward(x2, encs[i], decs[decs.length - 1 - i]);
        if (!last) blocks.push(full);
        x2 = down;
      }
      for (let i = 0; i < depth - 1; i++) {
        let s = skip2.at(i).run(blocks[blocks.length - 1 - i]);
        s = skip6.at(i).run(skip5.at(i).run(skip4.at(i).run(s)));
        x2 = this.up_path_2.at(i).forward(x2, s);
      }
      const out2 = this.last.forward(x2).add(x);
      return { out1, out2, priorZ: rep?.priorZ, latents };
    });
  }
}
