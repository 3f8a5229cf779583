/**
 * msdi export <run folder | checkpoint> -o weights.safetensors [--best] [--half]: the network
 * weights of a training run (no optimiser state), optionally as float16 for a small file.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { listCheckpoints, readCheckpointModel } from '../../train/checkpoint.js';
import { detectArch, buildModel } from '../../models/registry.js';
import { loadStateDict, saveWeights } from '../../nn/state-dict.js';
import { parse, UsageError } from '../args.js';

const HELP = 'usage: msdi export <run folder | checkpoint.safetensors> -o OUT.safetensors [--best] [--half] [--force]';

export function exportCommand(argv: string[]): void {
  const { values, positionals } = parse(argv, {
    out: { type: 'string', short: 'o' }, best: { type: 'boolean' }, half: { type: 'boolean' }, force: { type: 'boolean' }, help: { type: 'boolean' },
  }, 'export');
  if (values.help) return void console.log(HELP);
  if (positionals.length !== 1 || !values.out) throw new UsageError(HELP);
  const src = positionals[0];
  let file = src;
  if (existsSync(src) && statSync(src).isDirectory()) {
    const best = join(src, 'best.safetensors');
    const last = listCheckpoints(src).pop();
    file = values.best ? best : last?.file ?? '';
    if (!file || !existsSync(file)) throw new Error(`${src}: no ${values.best ? 'best.safetensors' : 'checkpoint'} in this run folder`);
  }
  // A checkpoint replaced by its bare weights could not be resumed any more.
  if (file && resolve(file) === resolve(values.out)) throw new Error(`${values.out}: would overwrite the checkpoint it exports`);
  if (existsSync(values.out) && !values.force) throw new Error(`${values.out}: already exists (--force to overwrite)`);
  const { tensors, meta } = readCheckpointModel(file);
  const spec = detectArch(tensors, file);
  const net = buildModel(spec);
  try {
    loadStateDict(net, tensors, { source: file });
    saveWeights(net, values.out, {
      half: values.half,
      metadata: { arch: spec.arch, wf: String(spec.wf), ndf: String(spec.ndf), steps: String(meta.step), stage: meta.stage, ablation: meta.ablation },
    });
  } finally {
    net.dispose();
  }
  console.log(`${values.out}: ${spec.arch} wf ${spec.wf} after ${meta.step} steps${values.half ? ' (float16)' : ''}`);
  // An export taken while a run still trains is easily mistaken for its result (it happened).
  const iters = meta.config?.iters;
  if (iters && meta.step < iters) console.error(`msdi export: ${file}: step ${meta.step} of the run's ${iters}: not its final weights (the run has not finished)`);
}
