/** msdi info <weights> | --arch A --config C: architecture, widths, parameters and MACs. */
import { basename } from 'node:path';
import { Tensor, tidy, inferenceMode } from '../../engine/index.js';
import { readWeightsFile } from '../../engine/io/index.js';
import { buildModel, detectArch, CONFIGS, ARCHS, SPADE_HIDDEN, type ArchName, type ArchSpec, type ConfigName } from '../../models/registry.js';
import { loadStateDict } from '../../nn/state-dict.js';
import { measureMacs } from '../../nn/macs.js';
import { foldSpectralNorms } from '../../nn/layers.js';
import { MsdiNet } from '../../models/msdi-net.js';
import { MSDI2E } from '../../models/msdi2e.js';
import { MultiscaleDiscriminator } from '../../models/discriminator.js';
import type { Module } from '../../nn/module.js';
import { parse, intOption, UsageError } from '../args.js';

const HELP = `usage: msdi info <weights.safetensors|.pth> [--size 256] [--json]
       msdi info --arch msdi_net|msdi2_net|MSDI2E|MultiscaleDiscriminator --config paper|base|small|tiny|micro [--size 256]`;

/** MACs of one forward at size x size (convolutions), in inference mode. */
export function macsAt(model: Module, size: number): number {
  return measureMacs(() => inferenceMode(() => tidy(() => {
    const x = Tensor.zeros([1, 3, size, size]);
    if (model instanceof MsdiNet) model.forward(x);
    else if (model instanceof MSDI2E) model.forward(x, x);
    else if (model instanceof MultiscaleDiscriminator) model.forward(Tensor.zeros([1, 6, size, size]));
  })));
}

export async function info(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    arch: { type: 'string' }, config: { type: 'string' }, size: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' },
  }, 'info');
  if (values.help) return void console.log(HELP);
  const size = intOption(values.size, '--size', 256, 16);
  let spec: ArchSpec;
  let source: string;
  let weights: ReturnType<typeof readWeightsFile> | null = null;
  if (positionals.length === 1) {
    source = positionals[0];
    weights = readWeightsFile(source);
    spec = detectArch(weights, basename(source));
  } else if (values.arch) {
    if (!ARCHS.includes(values.arch as ArchName)) throw new UsageError(`expected one of ${ARCHS.join(', ')} for --arch, got "${values.arch}"`);
    const cfg = CONFIGS[(values.config ?? 'paper') as ConfigName];
    if (!cfg) throw new UsageError(`expected one of ${Object.keys(CONFIGS).join(', ')} for --config, got "${values.config}"`);
    spec = { arch: values.arch as ArchName, wf: cfg.wf, ndf: cfg.wf, degradation: true, reblur: true };
    source = `--arch ${spec.arch} --config ${values.config ?? 'paper'}`;
  } else {
    throw new UsageError(HELP.split('\n')[0]);
  }
  const model = buildModel(spec);
  try {
    if (weights) loadStateDict(model, weights, { source });
    model.eval();
    foldSpectralNorms(model);
    const params = model.numParameters();
    const trainable = model.trainableParameters().reduce((n, p) => n + p.numel, 0);
    const macs = macsAt(model, size);
    const report = { source, ...spec, params, trainable, size, gmacs: macs / 1e9, keys: model.stateDict().size };
    if (values.json) return void console.log(JSON.stringify(report));
    const config = Object.entries(CONFIGS).find(([, c]) => c.wf === spec.wf)?.[0] ?? 'custom';
    console.log([
      `source        ${source}`,
      `architecture  ${spec.arch}${spec.degradation ? '' : ' (without the degradation representation)'}${spec.reblur ? '' : ' (without the reblurring branch)'}`,
      `config        ${config} (wf ${spec.wf}, ndf ${spec.ndf}${spec.degradation ? `, SPADE hidden ${spec.spadeHidden ?? SPADE_HIDDEN}` : ''})`,
      `parameters    ${params.toLocaleString('en-US')} (${trainable.toLocaleString('en-US')} trainable), ${report.keys} state_dict keys`,
      `MACs          ${(macs / 1e9).toFixed(2)} G at ${size}x${size} (convolutions)`,
    ].join('\n'));
  } finally {
    model.dispose();
  }
}
