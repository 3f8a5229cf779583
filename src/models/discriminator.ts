/**
 * The conditional MultiscaleDiscriminator (pix2pixHD / SPADE): two PatchGAN discriminators
 * on [condition, image]; the second sees the input average-pooled by 2. Every intermediate
 * feature is returned, for the feature-matching loss.
 */
import { Tensor, tidy, F } from '../engine/index.js';
import { Module, Sequential } from '../nn/module.js';
import { Conv2d, InstanceNorm2d, LeakyReLU } from '../nn/layers.js';

export class NLayerDiscriminator extends Module {
  readonly stages: Sequential[] = [];
  constructor(ndf: number, inputNc = 6) {
    super();
    const k = 4;
    const p = 2; // ceil((4 - 1) / 2)
    this.stages.push(new Sequential(new Conv2d(inputNc, ndf, k, { stride: 2, padding: p }), new LeakyReLU(0.2)));
    let nf = ndf;
    for (let n = 1; n < 4; n++) {
      const prev = nf;
      nf = Math.min(nf * 2, 512);
      const stride = n === 3 ? 1 : 2;
      this.stages.push(new Sequential(
        new Sequential(new Conv2d(prev, nf, k, { stride, padding: p, bias: false, spectral: true }), new InstanceNorm2d(nf)),
        new LeakyReLU(0.2)));
    }
    this.stages.push(new Sequential(new Conv2d(nf, 1, k, { padding: p })));
    this.stages.forEach((s, i) => this.child(`model${i}`, s));
  }
  forward(x: Tensor): Tensor[] {
    return tidy(() => {
      const feats: Tensor[] = [];
      let y = x;
      for (const s of this.stages) {
        y = s.forward(y);
        feats.push(y);
      }
      return feats;
    });
  }
}

export class MultiscaleDiscriminator extends Module {
  readonly discriminators: NLayerDiscriminator[];
  constructor(readonly ndf: number, readonly numD = 2) {
    super();
    this.discriminators = Array.from({ length: numD }, (_, i) => this.child(`discriminator_${i}`, new NLayerDiscriminator(ndf)));
  }
  /** One feature list per scale; the last feature of each is the patch score map. */
  forward(x: Tensor): Tensor[][] {
    return tidy(() => {
      const out: Tensor[][] = [];
      let y = x;
      this.discriminators.forEach((d, i) => {
        out.push(d.forward(y));
        if (i + 1 < this.discriminators.length) {
          y = F.avgPool2d(y, 3, { stride: 2, padding: 1, countIncludePad: false });
        }
      });
      return out;
    });
  }
}
