/**
 * MSDI2E, the joint model that learns the degradation representation: the encoder reads
 * the blurry image; its latents drive both the reblurring generator (on the sharp image)
 * and the deblurring generator (on the blurry image).
 */
import { Tensor, tidy } from '../engine/index.js';
import { Module } from '../nn/module.js';
import { ConvEncoderV2 } from './encoder.js';
import { LatentDecoder } from './latent-decoder.js';
import { HINetGenerator } from './generator.js';
import { SPADE_HIDDEN } from './spade.js';

export interface Msdi2eOutput {
  deblurred: Tensor;
  reblurred: Tensor | null;
  priorZ: Tensor;
  latents: Tensor[];
}

export class MSDI2E extends Module {
  readonly prior_upsampling: LatentDecoder;
  readonly net_prior: ConvEncoderV2;
  readonly inverse_generator: HINetGenerator | null;
  readonly generator: HINetGenerator;

  /** reblur false: the ablation without the reblurring branch. */
  constructor(readonly wf: number, readonly ndf = wf, readonly reblur = true, readonly spadeHidden = SPADE_HIDDEN) {
    super();
    this.prior_upsampling = this.child('prior_upsampling', new LatentDecoder(wf, 2));
    this.net_prior = this.child('net_prior', new ConvEncoderV2(ndf));
    this.inverse_generator = reblur ? this.child('inverse_generator', new HINetGenerator(wf, spadeHidden)) : null;
    this.generator = this.child('generator', new HINetGenerator(wf, spadeHidden));
  }

  represent(blurry: Tensor): { priorZ: Tensor; latents: Tensor[] } {
    return tidy(() => {
      const priorZ = this.net_prior.forward(blurry);
      return { priorZ, latents: this.prior_upsampling.forward(priorZ) };
    });
  }

  /**
   * forward(blurry, sharp): the reblurred sharp image and the deblurred blurry one.
   * `encoderFromReblurOnly`: the deblurring generator reads the latents detached, so that only
   * the reblurring loss trains the encoder (training option; the outputs are the same).
   */
  forward(blurry: Tensor, sharp: Tensor | null, o: { encoderFromReblurOnly?: boolean } = {}): Msdi2eOutput {
    return tidy(() => {
      const { priorZ, latents } = this.represent(blurry);
      const reblurred = sharp && this.inverse_generator ? this.inverse_generator.forward(sharp, latents) : null;
      const deblurred = this.generator.forward(blurry, o.encoderFromReblurOnly ? latents.map((l) => l.detach()) : latents);
      return { deblurred, reblurred, priorZ, latents };
    });
  }
}
