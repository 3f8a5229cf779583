/**
 * Architectures by name, named width presets, and detection of the architecture and widths
 * of a weights file from its keys (so `--weights` takes ours and the official checkpoints).
 */
import type { RawTensor } from '../engine/io/index.js';
import type { Module } from '../nn/module.js';
import { MsdiNet } from './msdi-net.js';
import { MSDI2E } from './msdi2e.js';
import { MultiscaleDiscriminator } from './discriminator.js';
import { SPADE_HIDDEN } from './spade.js';

export { SPADE_HIDDEN };

/** State-dict keys of the degradation representation: the encoder and the latent decoder (what stage 2 takes from stage 1). */
export const isRepresentationKey = (k: string): boolean => k.startsWith('net_prior.') || k.startsWith('prior_upsampling.');

export type ArchName = 'msdi_net' | 'msdi2_net' | 'MSDI2E' | 'MultiscaleDiscriminator';
export const ARCHS: readonly ArchName[] = ['msdi_net', 'msdi2_net', 'MSDI2E', 'MultiscaleDiscriminator'];

/** Width presets: `paper` is the released model; the small ones train on a 2-core CPU. */
export const CONFIGS = {
  paper: { wf: 64 },
  base: { wf: 32 },
  small: { wf: 16 },
  tiny: { wf: 8 },
  micro: { wf: 4 },
} as const;
export type ConfigName = keyof typeof CONFIGS;

export interface ArchSpec {
  arch: ArchName;
  wf: number;
  ndf: number;
  /** msdi_net / msdi2_net built without the representation (the ablation). */
  degradation: boolean;
  /** MSDI2E built without the reblurring branch (the ablation). */
  reblur: boolean;
  /** hidden width of the SPADE modulations (official 128; absent: 128) */
  spadeHidden?: number;
}

export function buildModel(spec: ArchSpec): Module {
  switch (spec.arch) {
    case 'msdi_net':
    case 'msdi2_net':
      return new MsdiNet({
        wf: spec.wf, ndf: spec.ndf, version: spec.arch === 'msdi_net' ? 1 : 2, degradation: spec.degradation,
        spadeHidden: spec.spadeHidden ?? SPADE_HIDDEN,
      });
    case 'MSDI2E':
      return new MSDI2E(spec.wf, spec.ndf, spec.reblur, spec.spadeHidden ?? SPADE_HIDDEN);
    case 'MultiscaleDiscriminator':
      return new MultiscaleDiscriminator(spec.ndf);
  }
}

export class UnknownArchitectureError extends Error {
  override name = 'UnknownArchitectureError';
}

/** Reads architecture and widths off the keys and shapes of a state dict. */
export function detectArch(keys: Map<string, RawTensor | { shape: number[] }>, source = 'weights'): ArchSpec {
  const strip = new Map([...keys].map(([k, v]) => [k.replace(/^module\./, ''), v]));
  const shape = (k: string) => strip.get(k)?.shape;
  if (strip.has('discriminator_0.model0.0.weight')) {
    const ndf = shape('discriminator_0.model0.0.weight')![0];
    return { arch: 'MultiscaleDiscriminator', wf: ndf, ndf, degradation: true, reblur: true };
  }
  if (strip.has('generator.conv_01.weight')) {
    const wf = shape('generator.conv_01.weight')![0];
    const ndf = shape('net_prior.layer1.0.weight_orig')?.[0] ?? wf;
    const spadeHidden = shape('generator.ad1_list.0.norm_0.mlp_shared.0.weight')?.[0] ?? SPADE_HIDDEN;
    return { arch: 'MSDI2E', wf, ndf, degradation: true, reblur: strip.has('inverse_generator.conv_01.weight'), spadeHidden };
  }
  if (strip.has('conv_01.weight') && strip.has('down_path_2.0.conv_1.weight')) {
    const wf = shape('conv_01.weight')![0];
    const ndf = shape('net_prior.layer1.0.weight_orig')?.[0] ?? wf;
    const degradation = strip.has('net_prior.layer1.0.weight_orig');
    // v1 has layer6 and conv_latent_init; v2 has neither. Without an encoder the trunks are identical.
    const v1 = strip.has('net_prior.layer6.0.weight_orig') || strip.has('prior_upsampling.conv_latent_init.conv_block.1.weight_orig');
    const spadeHidden = shape('ad1_list.0.norm_0.mlp_shared.2.weight')?.[0] ?? SPADE_HIDDEN;
    return { arch: v1 || !degradation ? 'msdi_net' : 'msdi2_net', wf, ndf, degradation, reblur: true, spadeHidden };
  }
  throw new UnknownArchitectureError(`${source}: not a known msdi architecture (expected the keys of ${ARCHS.join(', ')})`);
}
