/**
 * Loading a model for inference: the architecture and widths are read off the weights
 * (ours or the official .pth), spectral norms are folded once, and the model is put in eval
 * mode on the requested device. Without a file, msdi's bundled default weights are used.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, resolveDevice, tidy, exclusive } from '../engine/index.js';
import { readWeightsFile } from '../engine/io/index.js';
import { detectArch, buildModel, type ArchSpec } from '../models/registry.js';
import { MsdiNet } from '../models/msdi-net.js';
import { MSDI2E } from '../models/msdi2e.js';
import { loadStateDict } from '../nn/state-dict.js';
import { prepareForInference } from '../nn/layers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Bundled weights, trained by msdi's own trainer (see README). */
export const DEFAULT_WEIGHTS = {
  deblur: join(ROOT, 'weights', 'msdi-deblur.safetensors'),
  joint: join(ROOT, 'weights', 'msdi-joint.safetensors'),
};

export interface LoadedModel {
  readonly spec: ArchSpec;
  readonly net: MsdiNet | MSDI2E;
  readonly source: string;
  readonly device: string;
  dispose(): void;
}

export interface LoadModelOptions {
  device?: string;
  /**
   * Which bundled weights to use when no file is given. 'representation': the deblurring ones
   * (stage 2 carries stage 1's encoder, frozen: the representation that drives the deblurring,
   * as the web page shows it), else the joint ones.
   */
  kind?: 'deblur' | 'joint' | 'representation';
}

function bundled(kind: LoadModelOptions['kind'] = 'deblur'): string {
  if (kind !== 'representation') return DEFAULT_WEIGHTS[kind];
  return existsSync(DEFAULT_WEIGHTS.deblur) ? DEFAULT_WEIGHTS.deblur : DEFAULT_WEIGHTS.joint;
}

export function loadModel(file?: string, o: LoadModelOptions = {}): LoadedModel {
  const source = file ?? bundled(o.kind);
  if (!existsSync(source)) {
    throw new Error(file ? `${file}: no such file` : `${source}: the bundled weights are missing (train them: see README)`);
  }
  const device = resolveDevice(o.device ?? 'cpu');
  const tensors = readWeightsFile(source);
  const spec = detectArch(tensors, basename(source));
  if (spec.arch === 'MultiscaleDiscriminator') throw new Error(`${basename(source)}: a discriminator cannot restore images`);
  // building, loading and folding run libtorch too: one thread at a time (see exclusive)
  const net = exclusive(() => {
    const m = buildModel(spec) as MsdiNet | MSDI2E;
    try {
      loadStateDict(m, tensors, { source: basename(source) });
    } catch (e) {
      m.dispose();
      throw e;
    }
    m.to(device).eval();
    prepareForInference(m);
    return m;
  });
  return { spec, net, source, device, dispose: () => net.dispose() };
}

/** The deblurring function of a loaded model: N x 3 x H x W (H, W multiples of 16) -> restored. */
export function deblurFn(m: LoadedModel): (x: Tensor) => Tensor {
  if (m.net instanceof MsdiNet) {
    const net = m.net;
    return (x) => tidy(() => net.forward(x).out2);
  }
  const joint = m.net;
  return (x) => tidy(() => joint.forward(x, null).deblurred);
}
