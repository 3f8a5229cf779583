/**
 * generator.HINet: the one-stage HINet of the joint model. Used twice in MSDI2E: as the
 * reblurring `inverse_generator` (sharp + representation -> blurry) and as the deblurring
 * `generator` (blurry + representation -> sharp). Skips are modulated by SPADEResnetBlock.
 */
import { Tensor, tidy } from '../engine/index.js';
import { Module, ModuleList } from '../nn/module.js';
import { Conv2d } from '../nn/layers.js';
import { UNetConvBlock, UNetUpBlock } from './blocks.js';
import { SPADEResnetBlock, SPADE_HIDDEN } from './spade.js';

export class HINetGenerator extends Module {
  readonly conv_01: Conv2d;
  readonly down_path_1: ModuleList<UNetConvBlock>;
  readonly ad1_list: ModuleList<SPADEResnetBlock> | null;
  readonly up_path_1: ModuleList<UNetUpBlock>;
  readonly last: Conv2d;

  constructor(readonly wf: number, readonly spadeHidden = SPADE_HIDDEN, readonly depth = 5, readonly slope = 0.2, degradation = true) {
    super();
    const flavour = 'generator' as const;
    const width = (i: number) => 2 ** i * wf;
    this.conv_01 = this.child('conv_01', new Conv2d(3, wf, 3, { padding: 1 }));
    // conv_02 exists in the official weights; the one-stage forward never uses it.
    this.child('conv_02', new Conv2d(3, wf, 3, { padding: 1 }));
    const down: UNetConvBlock[] = [];
    let prev = wf;
    for (let i = 0; i < depth; i++) {
      down.push(new UNetConvBlock(prev, width(i), { downsample: i + 1 < depth, slope, hin: true, flavour }));
      prev = width(i);
    }
    this.down_path_1 = this.child('down_path_1', new ModuleList(down));
    this.ad1_list = degradation
      ? this.child('ad1_list', new ModuleList(Array.from({ length: depth - 1 }, (_, i) => new SPADEResnetBlock(width(i), width(i), spadeHidden))))
      : null;
    const up: UNetUpBlock[] = [];
    for (let i = depth - 2; i >= 0; i--) {
      up.push(new UNetUpBlock(prev, width(i), slope, flavour));
      prev = width(i);
    }
    this.up_path_1 = this.child('up_path_1', new ModuleList(up));
    this.last = this.child('last', new Conv2d(prev, 3, 3, { padding: 1 }));
  }

  forward(x: Tensor, latents: Tensor[] | null): Tensor {
    return tidy(() => {
      let x1 = this.conv_01.forward(x);
      const encs: Tensor[] = [];
      for (let i = 0; i < this.depth; i++) {
        const [down, full] = this.down_path_1.at(i).forward(x1);
        if (i + 1 < this.depth) encs.push(full);
        x1 = down;
      }
      for (let i = 0; i < this.depth - 1; i++) {
        let s = encs[encs.length - 1 - i];
        if (this.ad1_list && latents) s = this.ad1_list.at(-1 - i).forward(s, latents[latents.length - 1 - i]);
        x1 = this.up_path_1.at(i).forward(x1, s);
      }
      return this.last.forward(x1).add(x);
    });
  }
}
