/**
 * Training checkpoints: one safetensors file per checkpoint holding the networks (`g.`, `d.`),
 * the Adam moments (`opt.g.<i>.*`, `opt.d.<i>.*`) and, in its metadata, the step, the
 * config and the optimiser step counts. Written to a temporary file and renamed, so a file
 * on disk is always complete; the last N are kept, plus `best.safetensors`.
 */
import { readdirSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, readWeightsFile, writeSafetensors, type RawTensor } from '../engine/io/index.js';
import { rawToTensor, tensorToRaw } from '../engine/raw.js';
import { tidy, type Adam, type AdamParamState } from '../engine/index.js';
import type { Module } from '../nn/module.js';
import { LATENT_INPUT_CONV, scaleLatentColumns } from '../models/spade.js';
import { loadStateDict } from '../nn/state-dict.js';
import type { TrainConfig, Ablation } from './config.js';

export interface CheckpointMeta {
  step: number;
  stage: string;
  ablation: Ablation;
  config: TrainConfig;
  bestPsnr: number | null;
  bestStep: number | null;
  /**
   * The log window open at the checkpoint (steps since the last log record: their summed
   * losses, their count, seconds and seconds waiting for batches), so that a resumed run's log
   * records average the same steps as an uninterrupted run's. Absent in older checkpoints.
   */
  logWindow?: { sums: Record<string, number>; count: number; secs: number; waitSecs: number };
}

export interface Trainable {
  g: Module;
  optG: Adam;
  d?: Module;
  optD?: Adam;
}

const FILE = /^ckpt-(\d+)\.safetensors$/;

export function checkpointPath(dir: string, step: number): string {
  return join(dir, `ckpt-${String(step).padStart(8, '0')}.safetensors`);
}

/** Checkpoint files of a run, oldest first. */
export function listCheckpoints(dir: string): { step: number; file: string }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => ({ m: FILE.exec(f), f }))
    .filter((x) => x.m)
    .map((x) => ({ step: Number(x.m![1]), file: join(dir, x.f) }))
    .sort((a, b) => a.step - b.step);
}

function optimizerTensors(prefix: string, opt: Adam, out: Map<string, RawTensor>): number[] {
  const steps: number[] = [];
  opt.getState().forEach((s, i) => {
    steps.push(s ? s.step : 0);
    if (!s) return;
    out.set(`${prefix}.${i}.exp_avg`, tensorToRaw(s.expAvg));
    out.set(`${prefix}.${i}.exp_avg_sq`, tensorToRaw(s.expAvgSq));
    s.expAvg.dispose();
    s.expAvgSq.dispose();
  });
  return steps;
}

export function saveCheckpoint(file: string, t: Trainable, meta: CheckpointMeta): void {
  const out = new Map<string, RawTensor>();
  for (const [k, v] of t.g.stateDict()) out.set(`g.${k}`, tensorToRaw(v));
  if (t.d) for (const [k, v] of t.d.stateDict()) out.set(`d.${k}`, tensorToRaw(v));
  const stepsG = optimizerTensors('opt.g', t.optG, out);
  const stepsD = t.optD ? optimizerTensors('opt.d', t.optD, out) : [];
  writeSafetensors(file, out, { msdi: JSON.stringify({ ...meta, stepsG, stepsD }) });
}

function restoreOptimizer(prefix: string, opt: Adam, steps: number[], raw: Map<string, RawTensor>, file: string): void {
  if (steps.length !== opt.params.length) {
    throw new Error(`${file}: optimizer state has ${steps.length} parameters, the model ${opt.params.length}`);
  }
  tidy(() => {
    const state: (AdamParamState | null)[] = steps.map((step, i) => {
      const a = raw.get(`${prefix}.${i}.exp_avg`);
      const b = raw.get(`${prefix}.${i}.exp_avg_sq`);
      return step && a && b ? { step, expAvg: rawToTensor(a), expAvgSq: rawToTensor(b) } : null;
    });
    opt.setState(state);
  });
}

/** Loads networks and optimiser state from `file` into `t`; returns the metadata. */
export function loadCheckpoint(file: string, t: Trainable): CheckpointMeta {
  const { tensors, metadata } = readSafetensors(file);
  if (!metadata.msdi) throw new Error(`${file}: not an msdi training checkpoint (no "msdi" metadata)`);
  const meta = JSON.parse(metadata.msdi) as CheckpointMeta & { stepsG: number[]; stepsD: number[] };
  const part = (prefix: string) => new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  loadStateDict(t.g, part('g.'), { source: file });
  if (t.d) loadStateDict(t.d, part('d.'), { source: file });
  restoreOptimizer('opt.g', t.optG, meta.stepsG, tensors, file);
  if (t.optD) restoreOptimizer('opt.d', t.optD, meta.stepsD, tensors, file);
  return meta;
}

/**
 * Reads only the generator's state dict (g.*) of a checkpoint, e.g. to initialise stage 2 or to
 * export it: as weights that compute the trained function in the official network, i.e. with a
 * stage-2 run's latentScale folded in (the checkpoint itself keeps the trained parameters).
 */
export function readCheckpointModel(file: string): { tensors: Map<string, RawTensor>; meta: CheckpointMeta } {
  const { tensors, metadata } = readSafetensors(file);
  if (!metadata.msdi) throw new Error(`${file}: not an msdi training checkpoint (no "msdi" metadata)`);
  const meta = JSON.parse(metadata.msdi) as CheckpointMeta;
  const k = meta.config?.latentScale ?? 1; // 1 in every stage-1 config (refused otherwise) and in older runs'
  const g = new Map([...tensors].filter(([key]) => key.startsWith('g.')).map(([key, v]) => {
    const name = key.slice(2);
    return [name, k !== 1 && LATENT_INPUT_CONV.test(name) ? tidy(() => tensorToRaw(scaleLatentColumns(rawToTensor(v), k), v.dtype)) : v];
  }));
  return { tensors: g, meta };
}

/** The network of a checkpoint (its g.*), or the tensors of a plain weights file: what --init reads. */
export function readNetworkWeights(file: string): Map<string, RawTensor> {
  try {
    return readCheckpointModel(file).tensors;
  } catch {
    return readWeightsFile(file);
  }
}

/** Deletes all but the newest `keep` checkpoints. */
export function pruneCheckpoints(dir: string, keep: number): void {
  const all = listCheckpoints(dir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) rmSync(c.file, { force: true });
}
