/**
 * Training configurations: named presets (BasicSR-like sections kept flat) and JSON files.
 * `paper-*` are the official recipes; `cpu-*` are sized to train on a 2-core machine.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { SPADE_HIDDEN } from '../models/spade.js';
import { isLevel } from '../data/synth/index.js';

export type Stage = 'stage1' | 'stage2';
export type Ablation = 'none' | 'no-degradation' | 'no-reblur';

export interface TrainConfig {
  stage: Stage;
  /** trunk / generator width; the degradation encoder uses ndf = wf */
  wf: number;
  /** discriminator width (stage 1) */
  ndfD: number;
  crop: number;
  batch: number;
  iters: number;
  lr: number;
  /** discriminator learning rate (stage 1) */
  lrD: number;
  betas: [number, number];
  etaMin: number;
  /** cosine period (BasicSR's T_max); defaults to iters */
  tMax?: number;
  /** linear warm-up of both rates over this many first steps (scheduledLr); 0: none */
  warmup: number;
  /** max gradient norm; 0 disables */
  clip: number;
  /**
   * Adam's epsilon (official 1e-8). Note that stage 1's clipping at 0.01 scales its gradients
   * down ~1000x, which puts the encoder's (1e-11..1e-9 after clipping) below 1e-8: Adam then
   * moves the encoder at a fraction of its rate. A tiny epsilon (1e-14) restores the rate.
   */
  eps: number;
  /**
   * Hidden width of the SPADE modulations (official 128). At wf 8 the 128-wide convs cost
   * twice the trunk itself, so cpu-stage2 uses 32 (2.3x faster steps).
   */
  spadeHidden: number;
  /**
   * Mixed precision: 'bf16' runs the networks' forward passes under libtorch's autocast in
   * bfloat16 (convolutions in bf16, norms and reductions in float32; weights, gradients, Adam
   * and the losses stay float32; bf16 keeps float32's range, so no loss scaling). 'off': all
   * float32, as the official recipes.
   */
  amp: 'off' | 'bf16';
  /** stage 1 loss weights (official: pixel 10, gan 1, feature matching 10, perceptual 30) */
  weights: { pixel: number; gan: number; feat: number; perceptual: number };
  /**
   * The reblur branch's perceptual term (reblurred vs blurry). The official VGG19 needs ImageNet
   * weights we cannot download; 'l1' is a pixel-space stand-in that gives the encoder a direct
   * reason to describe the blur; 'none' drops the term.
   */
  perceptual: 'none' | 'l1';
  /**
   * The fraction of samples trained as unblurred pairs (input = the sharp image; see
   * src/data/identity-pairs.ts), in either stage. 0 is the official recipe.
   */
  identity: number;
  /**
   * Colour augmentation: each sample's RGB channels in one of their six orders (the same for its
   * blurry and sharp images; src/data/channel-permutation.ts). false is the official recipe.
   */
  permuteChannels: boolean;
  /**
   * Stage 1: which losses train the degradation encoder. 'both' (official): deblurring and
   * reblurring. 'reblur': the deblurring generator reads the latents detached, so the encoder
   * learns only what the reblurring generator needs, i.e. the blur (the deblurring generator
   * sees the blurry image and can do without it). Measured (docs/training-log.md): the encoder
   * flattened in the first 500 steps either way; with 'reblur' one run's came back (z responds 34%
   * to blur at the end of a 3000-step schedule), another's was still flat at step 2000 of 10 000.
   */
  encoderFrom: 'both' | 'reblur';
  /**
   * Zero-initialise the modulations' output convolutions (mlp_gamma, mlp_beta; see
   * zeroModulation in src/models/spade.ts) so that the networks start as their ablation. false
   * is the official (random) initialisation.
   */
  zeroModulation: boolean;
  /**
   * Stage 2, not in the paper: the latent maps are multiplied by this inside every modulation
   * while training (a reparametrisation: exported weights fold it into the modulations' first
   * convolution, so they are the official architecture). Adam moves every weight by about the
   * same amount a step, so a factor k makes the weights that read the latent maps change the
   * output k times as fast, where the bundled network left them at their initial size. 1 (the
   * official network): off.
   */
  latentScale: number;
  /**
   * Stage 1, not in the paper: blur levels to learn from the data's level-L/ folders (msdi synth
   * --levels). The reblurring generator, given the latent maps interpolated to a sample's level
   * between the sharp image's and the blurry image's (as `msdi reblur --level` does), must give
   * the blur at that level; L1 weighted by `levelWeight`. [] and 0 (the official recipe): off.
   */
  levels: number[];
  levelWeight: number;
  /**
   * With levels: an L1 on the pixel differences of the same output and truth (gradientL1Loss),
   * weighted by this; it punishes the fine grain that outputs past level 1 tend to get. 0: off.
   */
  levelGradWeight: number;
  /** stage 2: PSNRLoss weight per output (official 0.5) */
  psnrWeight: number;
  logEvery: number;
  valEvery: number;
  ckptEvery: number;
  keepLast: number;
  /** validation pairs (center crops of at most valSide pixels) */
  valCount: number;
  valSide: number;
  workers: number;
  /**
   * Memory for decoded training images (GB), so that after the first pass over the data a batch
   * is crops from memory, without reading or decoding files (PairedLoaderOptions.cacheBytes).
   * "auto": a quarter of this machine's memory, split between the processes of a run; 0: off.
   */
  cacheGB: number | 'auto';
  seed: number;
}

const COMMON = {
  betas: [0.9, 0.99] as [number, number], eps: 1e-8, etaMin: 1e-7, warmup: 0, lrD: 2e-4,
  weights: { pixel: 10, gan: 1, feat: 10, perceptual: 0 }, perceptual: 'none' as const, identity: 0, permuteChannels: false, encoderFrom: 'both' as const, zeroModulation: false, latentScale: 1, levels: [] as number[], levelWeight: 0, levelGradWeight: 0, psnrWeight: 0.5,
  logEvery: 10, valEvery: 500, ckptEvery: 250, keepLast: 2, valCount: 24, valSide: 256, workers: 1, cacheGB: 'auto' as const, seed: 0,
  spadeHidden: SPADE_HIDDEN, amp: 'off' as const,
};

export const PRESETS: Record<string, TrainConfig> = {
  // The official recipes (MSDINet2e-Train.yml, MSDINet2-Train.yml): for GPUs.
  'paper-stage1': { ...COMMON, stage: 'stage1', wf: 64, ndfD: 64, crop: 256, batch: 4, iters: 240000, tMax: 250000, lr: 2e-4, clip: 0.01 },
  'paper-stage2': { ...COMMON, stage: 'stage2', wf: 64, ndfD: 64, crop: 256, batch: 64, iters: 400000, lr: 3e-4, clip: 0 },
  // Sized for a 2-core CPU: wf 8, 128 crops. Trains our shipped default weights.
  // Stage 1 keeps the official rates and SPADE width: a run at lr 1e-3, epsilon 1e-14 and SPADE
  // 32 trained its deblurring branch faster but its latent maps stopped depending on the input
  // (scripts/probe-representation.mts: 0.00% vs 6.8% at 1000 / 1500 steps).
  // Stage 2: narrow SPADE (2.3x faster steps) and a rate above the official one (this budget is
  // ~1/200 of the paper's schedule; at 600 steps 2e-3 led 1e-3 by 0.09 dB and 3e-4 by 0.21 dB).
  'cpu-stage1': {
    ...COMMON, stage: 'stage1', wf: 8, ndfD: 16, crop: 128, batch: 4, iters: 3000, lr: 2e-4, clip: 0.01, ckptEvery: 100, valEvery: 250,
    perceptual: 'l1', weights: { ...COMMON.weights, perceptual: 10 },
  },
  'cpu-stage2': {
    ...COMMON, stage: 'stage2', wf: 8, ndfD: 16, crop: 128, batch: 4, iters: 10000, lr: 2e-3, clip: 0, ckptEvery: 100, valEvery: 500,
    spadeHidden: 32,
  },
  // Seconds per run: for tests.
  'test-stage1': { ...COMMON, stage: 'stage1', wf: 4, ndfD: 4, crop: 32, batch: 2, iters: 6, lr: 2e-4, clip: 0.01, logEvery: 1, valEvery: 3, ckptEvery: 2, valCount: 2, valSide: 32, workers: 0, spadeHidden: 16 },
  'test-stage2': { ...COMMON, stage: 'stage2', wf: 4, ndfD: 4, crop: 32, batch: 2, iters: 6, lr: 3e-4, clip: 0, logEvery: 1, valEvery: 3, ckptEvery: 2, valCount: 2, valSide: 32, workers: 0, spadeHidden: 16 },
};

/** Every field a config file may hold: the TrainConfig fields, `preset`, and a run's config.json's `ablation` and `init`. */
const CONFIG_KEYS = new Set(['preset', 'tMax', 'ablation', 'init', ...Object.values(PRESETS).flatMap((p) => Object.keys(p))]);

/**
 * A preset name, or a JSON file `{ "preset": "cpu-stage2", ...overrides }`. A file without a
 * preset starts from `cpu-<stage>`: its own "stage", else `stage` (the command's), else stage 2.
 * `weights` is merged into the preset's, field by field; unknown fields are refused (a typo
 * would otherwise be ignored silently).
 */
export function loadConfig(nameOrFile: string, overrides: Partial<TrainConfig> = {}, stage?: Stage): TrainConfig {
  let base: TrainConfig;
  if (PRESETS[nameOrFile]) {
    base = PRESETS[nameOrFile];
  } else {
    let json: Partial<TrainConfig> & { preset?: string };
    try {
      json = JSON.parse(readFileSync(nameOrFile, 'utf8'));
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `not a preset (${Object.keys(PRESETS).join(', ')}) nor a file` : (e as Error).message;
      throw new Error(`${nameOrFile}: ${why}`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${nameOrFile}: expected a JSON object of config fields`);
    const unknown = Object.keys(json).filter((k) => !CONFIG_KEYS.has(k));
    if (unknown.length) throw new Error(`${nameOrFile}: unknown config field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}`);
    const preset = json.preset ? PRESETS[json.preset] : undefined;
    if (json.preset && !preset) throw new Error(`${nameOrFile}: unknown preset "${json.preset}"`);
    // a run's config.json names its ablation and --init too: not training settings
    const { preset: _p, ablation: _a, init: _i, ...rest } = json as typeof json & { ablation?: unknown; init?: unknown };
    const from = preset ?? PRESETS[`cpu-${json.stage ?? stage ?? 'stage2'}`];
    if (!from) throw new Error(`${nameOrFile}: expected "stage1" or "stage2" for stage, got ${JSON.stringify(json.stage)}`);
    base = { ...from, ...rest, weights: { ...from.weights, ...rest.weights } } as TrainConfig;
  }
  return withOverrides(base, overrides, PRESETS[nameOrFile] ? `preset ${nameOrFile}` : nameOrFile);
}

/**
 * The configuration a run was started with (its config.json), for --resume: a run continues
 * as it was configured whatever the presets say now. Runs from before `spadeHidden`, `eps`,
 * `identity`, `encoderFrom` and `zeroModulation` existed used the official values.
 */
export function loadRunConfig(file: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  let saved: Partial<TrainConfig> & { ablation?: unknown; init?: unknown };
  try {
    saved = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  const { ablation: _a, init: _i, ...cfg } = saved;
  if (!cfg.stage || !PRESETS[`cpu-${cfg.stage}`]) throw new Error(`${file}: not a run configuration (no "stage")`);
  // A saved config holds every field that existed when the run started; the ones added since
  // take their official (COMMON) values, whatever the cpu presets set them to.
  return withOverrides({ ...COMMON, ...cfg } as TrainConfig, overrides, file);
}

/** `source` (the config file or preset) names where a bad value came from, unless an override set it. */
function withOverrides(base: TrainConfig, overrides: Partial<TrainConfig>, source: string): TrainConfig {
  const given = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const cfg = { ...base, ...given } as TrainConfig;
  // numbers as they are (JSON would print NaN as null), anything else as JSON
  const shown = (v: unknown) => (typeof v === 'number' ? String(v) : JSON.stringify(v));
  const from = (k: string) => (k in given ? 'command line' : source);
  const bad = (k: string, what: string) => new Error(`${from(k)}: expected ${what} for ${k}, got ${shown(cfg[k as keyof TrainConfig])}`);
  for (const k of ['wf', 'ndfD', 'crop', 'batch', 'iters', 'spadeHidden', 'logEvery', 'valEvery', 'ckptEvery', 'keepLast', 'valCount', 'valSide'] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw bad(k, 'a positive integer');
  }
  // HIN normalises half of every block's channels, and the widths double from wf at each scale
  if (cfg.wf % 2) throw bad('wf', 'an even number');
  if (!Number.isInteger(cfg.workers) || cfg.workers < 0) throw bad('workers', 'a non-negative integer');
  if (!Number.isInteger(cfg.warmup) || cfg.warmup < 0) throw bad('warmup', 'a non-negative integer (steps)');
  if (!Number.isSafeInteger(cfg.seed)) throw bad('seed', 'an integer');
  if (cfg.tMax !== undefined && !(Number.isInteger(cfg.tMax) && cfg.tMax >= 1)) throw bad('tMax', 'a positive integer (the schedule length)');
  for (const k of ['lr', 'lrD', 'eps'] as const) if (!(Number.isFinite(cfg[k]) && cfg[k] > 0)) throw bad(k, 'a positive number');
  for (const k of ['etaMin', 'clip', 'psnrWeight'] as const) if (!(Number.isFinite(cfg[k]) && cfg[k] >= 0)) throw bad(k, 'a non-negative number');
  if (!Array.isArray(cfg.betas) || cfg.betas.length !== 2 || !cfg.betas.every((b) => Number.isFinite(b) && b >= 0 && b < 1)) throw bad('betas', 'two numbers in [0, 1)');
  const w = cfg.weights as unknown as Record<string, unknown> | null;
  if (typeof w !== 'object' || w === null || Object.keys(w).length !== 4 || !['pixel', 'gan', 'feat', 'perceptual'].every((k) => typeof w[k] === 'number' && Number.isFinite(w[k]) && w[k] >= 0)) {
    throw bad('weights', '{ "pixel", "gan", "feat", "perceptual" } as non-negative numbers');
  }
  if (cfg.perceptual !== 'none' && cfg.perceptual !== 'l1') throw bad('perceptual', '"none" or "l1" (the official VGG19 needs ImageNet weights msdi cannot download)');
  if (typeof cfg.zeroModulation !== 'boolean') throw bad('zeroModulation', 'true or false');
  if (!(Number.isFinite(cfg.latentScale) && cfg.latentScale > 0)) throw bad('latentScale', 'a positive number');
  if (cfg.stage === 'stage1' && cfg.latentScale !== 1) throw new Error(`${from('latentScale')}: latentScale is for stage 2 (the deblurring network's modulations)`);
  if (!(cfg.identity >= 0 && cfg.identity <= 1)) throw bad('identity', 'a fraction in [0, 1]');
  if (typeof cfg.permuteChannels !== 'boolean') throw bad('permuteChannels', 'true or false');
  if (cfg.encoderFrom !== 'both' && cfg.encoderFrom !== 'reblur') throw bad('encoderFrom', '"both" or "reblur"');
  if (cfg.amp !== 'off' && cfg.amp !== 'bf16') throw bad('amp', '"off" or "bf16"');
  if (cfg.cacheGB !== 'auto' && !(typeof cfg.cacheGB === 'number' && cfg.cacheGB >= 0)) throw bad('cacheGB', '"auto" or a number of GB >= 0');
  if (cfg.crop % 16 !== 0) throw bad('crop', 'a multiple of 16');
  if (!Array.isArray(cfg.levels) || !cfg.levels.every(isLevel)) throw bad('levels', 'a list of numbers in (0, 4]');
  if (!(cfg.levelWeight >= 0)) throw bad('levelWeight', 'a non-negative number');
  if (cfg.levelWeight > 0 && !cfg.levels.length) throw new Error(`${from('levelWeight')}: levelWeight needs levels (the level-L/ folders to read)`);
  if (!(cfg.levelGradWeight >= 0)) throw bad('levelGradWeight', 'a non-negative number');
  if (cfg.levelGradWeight > 0 && !(cfg.levelWeight > 0)) throw new Error(`${from('levelGradWeight')}: levelGradWeight needs levelWeight (it scores the same level outputs)`);
  return cfg;
}

/**
 * The loader's cache budget in bytes for a config's cacheGB: "auto" is a quarter of this
 * machine's memory split between the run's `processes` (data-parallel ranks each keep their own).
 */
export function cacheBytes(cacheGB: number | 'auto', processes: number): number {
  const bytes = cacheGB === 'auto' ? totalmem() / 4 / Math.max(1, processes) : cacheGB * 2 ** 30;
  return Math.floor(bytes);
}
