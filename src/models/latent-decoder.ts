/**
 * Latent decoders (`prior_upsampling`): z to the multi-scale degradation maps
 * [wf@256, 2wf@128, 4wf@64, 8wf@32] that modulate the skip connections. Fixed sizes,
 * whatever the image size: SPADE resizes them to each skip.
 */
import { Tensor, tidy } from '../engine/index.js';
import { Layer, Module, Sequential } from '../nn/module.js';
import { Conv2d, LeakyReLU, ReflectionPad2d, Upsample } from '../nn/layers.js';

/** Up_ConvBlock: reflpad, SN conv a->b, lrelu, nearest x2, reflpad, SN conv b->b, lrelu. */
export class UpConvBlock extends Layer {
  readonly conv_block: Sequential;
  constructor(inC: number, outC: number) {
    super();
    this.conv_block = this.child('conv_block', new Sequential(
      new ReflectionPad2d(1), new Conv2d(inC, outC, 3, { spectral: true }), new LeakyReLU(0.2), new Upsample(2),
      new ReflectionPad2d(1), new Conv2d(outC, outC, 3, { spectral: true }), new LeakyReLU(0.2),
    ));
  }
  forward(x: Tensor): Tensor {
    return this.conv_block.forward(x);
  }
}

/** v1 starts from 4wf @ 4 px with conv_latent_init; v2 starts from 32wf @ 8 px. */
export class LatentDecoder extends Module {
  readonly steps: UpConvBlock[] = [];
  constructor(readonly wf: number, readonly version: 1 | 2) {
    super();
    if (version === 1) this.steps.push(this.child('conv_latent_init', new UpConvBlock(4 * wf, 32 * wf)));
    const widths = [32, 16, 8, 4, 2, 1];
    for (let i = 1; i < widths.length; i++) {
      this.steps.push(this.child(`conv_latent_up${i + 1}`, new UpConvBlock(widths[i - 1] * wf, widths[i] * wf)));
    }
  }
  /** [l6, l5, l4, l3] = (wf@256, 2wf@128, 4wf@64, 8wf@32). */
  forward(z: Tensor): Tensor[] {
    return tidy(() => {
      const outs: Tensor[] = [];
      let y = z;
      for (const s of this.steps) {
        y = s.forward(y);
        outs.push(y);
      }
      return outs.slice(-4).reverse();
    });
  }
}
