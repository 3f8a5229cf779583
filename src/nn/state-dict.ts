/**
 * Loading and saving state dicts under the official key names, with BasicSR's checks:
 * before anything is copied, missing, unexpected and mis-shaped keys are reported in one error.
 */
import { Tensor, tidy } from '../engine/index.js';
import type { Module } from './module.js';
import { readWeightsFile, writeSafetensors, type RawTensor } from '../engine/io/index.js';
import { rawToTensor, tensorToRaw } from '../engine/raw.js';
import { Conv2d } from './layers.js';

export class StateDictError extends Error {
  override name = 'StateDictError';
}

/** Keys that torch writes but that carry no state msdi uses. */
const IGNORABLE = /(^|\.)num_batches_tracked$/;

export interface LoadOptions {
  /**
   * Refuse missing or unexpected keys (default true); 'missing': refuse missing keys only, to fill
   * a module from part of a larger file (a trunk). Shape mismatches always fail.
   */
  strict?: boolean | 'missing';
  /** Named in error messages (the weights file). */
  source?: string;
}

export function loadStateDict(module: Module, entries: Map<string, RawTensor | Tensor>, o: LoadOptions = {}): void {
  const strict = o.strict ?? true;
  const own = module.stateDict();
  const given = new Map([...entries].filter(([k]) => !IGNORABLE.test(k)).map(([k, v]) => [k.replace(/^module\./, ''), v]));
  const missing = [...own.keys()].filter((k) => !given.has(k));
  const unexpected = [...given.keys()].filter((k) => !own.has(k));
  const misShaped: string[] = [];
  for (const [k, t] of own) {
    const v = given.get(k);
    if (!v) continue;
    const shape = v instanceof Tensor ? v.shape : v.shape;
    if (shape.join('x') !== t.shape.join('x')) misShaped.push(`${k} (file [${shape.join(', ')}], model [${t.shape.join(', ')}])`);
  }
  const problems: string[] = [];
  const list = (xs: string[]) => xs.slice(0, 8).join(', ') + (xs.length > 8 ? `, ... (${xs.length} in all)` : '');
  if (misShaped.length) problems.push(`mis-shaped keys: ${list(misShaped)}`);
  if (strict && missing.length) problems.push(`missing keys: ${list(missing)}`);
  if (strict === true && unexpected.length) problems.push(`unexpected keys: ${list(unexpected)}`);
  if (problems.length) {
    throw new StateDictError(`${o.source ?? 'state dict'}: does not fit ${module.constructor.name}: ${problems.join('; ')}`);
  }
  for (const [k, t] of own) {
    const v = given.get(k);
    if (!v) continue;
    tidy(() => {
      const src = v instanceof Tensor ? v : rawToTensor(v);
      t.copy_(src.dtype === t.dtype ? src : src.to({ dtype: t.dtype }));
    });
  }
  // Weights changed: any folded spectral weights are stale.
  for (const [, m] of module.namedModules()) if (m instanceof Conv2d) m.unfold();
}

/** Reads a safetensors or torch checkpoint and loads it into `module`. */
export function loadWeights(module: Module, file: string, o: LoadOptions = {}): void {
  loadStateDict(module, readWeightsFile(file), { ...o, source: o.source ?? file });
}

/** Writes the module's state dict as safetensors (atomically), optionally as float16. */
export function saveWeights(module: Module, file: string, o: { metadata?: Record<string, string>; half?: boolean } = {}): void {
  const out = new Map<string, RawTensor>();
  for (const [k, t] of module.stateDict()) out.set(k, tensorToRaw(t, o.half ? 'F16' : undefined));
  writeSafetensors(file, out, o.metadata);
}
