/**
 * Whole-network timings for `msdi bench`, the engine used as a user would: the same
 * measurements as `scripts/torch_reference.py forward|train` (PyTorch eager), which the
 * bench runs in the same session with the same thread count.
 *
 * - forwardBench: msdi_net inference (eval, prepareForInference: spectral norms folded,
 *   NHWC weights; inference mode) on
 *   1 x 3 x size x size; the paper configuration is wf 64 at 256.
 * - trainBench: one stage-2 optimisation step of msdi2_net (Stage2Task.step: training-mode
 *   forward, PSNRLoss on both outputs, backward, Adam 3e-4 (0.9, 0.99)), encoder and latent
 *   decoder frozen.
 *
 * Random weights and inputs with a fixed seed; both return the median milliseconds of
 * `repeats` runs after `warmup` (default 1) untimed ones.
 */
import { Tensor, tidy, inferenceMode, manualSeed, type Device } from '../../engine/index.js';
import { tensorToRaw } from '../../engine/raw.js';
import type { RawTensor } from '../../engine/io/index.js';
import { MsdiNet } from '../../models/msdi-net.js';
import { isRepresentationKey } from '../../models/registry.js';
import { prepareForInference } from '../../nn/layers.js';
import { Stage2Task, takeStats } from '../../train/tasks.js';
import { PRESETS } from '../../train/config.js';

export interface ForwardBenchOptions {
  wf: number;
  size: number;
  repeats: number;
  warmup?: number;
}

export interface TrainBenchOptions {
  wf: number;
  batch: number;
  size: number;
  repeats: number;
  warmup?: number;
  /** SPADE width (default: the paper's, 128) */
  spadeHidden?: number;
  /** mixed precision (TrainConfig.amp; default 'off') */
  amp?: 'off' | 'bf16';
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A prepared measurement: `run()` does one timed step and returns its milliseconds. */
export interface BenchStep {
  run(): number;
  dispose(): void;
}

export function timedStep(fn: () => void, dispose: () => void): BenchStep {
  return {
    run() {
      const t0 = process.hrtime.bigint();
      fn();
      return Number(process.hrtime.bigint() - t0) / 1e6;
    },
    dispose,
  };
}

/** Median of `repeats` runs after `warmup` untimed ones, then disposes the step. */
export function medianRuns(step: BenchStep, warmup: number, repeats: number): number {
  try {
    for (let i = 0; i < warmup; i++) step.run();
    return median(Array.from({ length: repeats }, () => step.run()));
  } finally {
    step.dispose();
  }
}

/** Deterministic uniform [0, 1) values (a 32-bit LCG): the same batch every run. */
function randomArray(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32;
  }
  return a;
}

/** msdi_net (v1) inference on 1 x 3 x size x size: eval, folded spectral norms, inference mode. */
export function forwardStep(o: { wf: number; size: number; channelsLast?: boolean }): BenchStep {
  manualSeed(0);
  const net = new MsdiNet({ wf: o.wf, version: 1 }).eval();
  prepareForInference(net, { channelsLast: o.channelsLast });
  const x = Tensor.rand([1, 3, o.size, o.size]);
  return timedStep(() => inferenceMode(() => tidy(() => { net.forward(x); })), () => {
    x.dispose();
    net.dispose();
  });
}

/** A training step to time: alone (run), or as the trainer runs it on a GPU (inRow). */
export interface TrainBenchStep extends BenchStep {
  /**
   * Milliseconds a step over k steps in a row whose losses are read only after the last (the
   * trainer's lazy losses): on a GPU the host queues the next step while one runs.
   */
  inRow(k: number): number;
}

/** One stage-2 training step of msdi2_net (Stage2Task.step) on batch x 3 x size x size. */
export function trainStep(o: { wf: number; batch: number; size: number; channelsLast?: boolean; spadeHidden?: number; amp?: 'off' | 'bf16'; device?: Device }): TrainBenchStep {
  // Stage 2 starts from a stage-1 representation: any net_prior / prior_upsampling weights do.
  manualSeed(0);
  const donor = new MsdiNet({ wf: o.wf, version: 2 });
  const init = new Map<string, RawTensor>();
  for (const [k, t] of donor.stateDict()) {
    if (isRepresentationKey(k)) init.set(k, tensorToRaw(t));
  }
  donor.dispose();
  const base = PRESETS['paper-stage2'];
  const cfg = { ...base, wf: o.wf, batch: o.batch, crop: o.size, clip: 0, spadeHidden: o.spadeHidden ?? base.spadeHidden, amp: o.amp ?? 'off' };
  // As the trainer runs it: NHWC parameters unless MSDI_CHANNELS_LAST=0.
  const channelsLast = o.channelsLast ?? process.env.MSDI_CHANNELS_LAST !== '0';
  const task = new Stage2Task(cfg, 'none', { tensors: init, source: 'random stage-1 weights' }, { channelsLast, device: o.device });
  const n = o.batch * 3 * o.size * o.size;
  const batch = { blurry: randomArray(n, 1), sharp: randomArray(n, 2), n: o.batch, size: o.size };
  // reading the losses waits for the step to finish (on a GPU the step itself only queues it)
  const one = timedStep(() => { takeStats(task.step(batch)); }, () => task.dispose());
  return {
    ...one,
    inRow(k) {
      const t0 = process.hrtime.bigint();
      const stats = Array.from({ length: k }, () => task.step(batch, false));
      stats.forEach(takeStats);
      return Number(process.hrtime.bigint() - t0) / 1e6 / k;
    },
  };
}

/** msdi_net inference; median ms. */
export function forwardBench(o: ForwardBenchOptions): number {
  return medianRuns(forwardStep(o), o.warmup ?? 1, o.repeats);
}

/** One stage-2 training step of msdi2_net; median ms. */
export function trainBench(o: TrainBenchOptions): number {
  return medianRuns(trainStep(o), o.warmup ?? 1, o.repeats);
}

/**
 * The same training step in float32 and under bf16 autocast (TrainConfig.amp), in alternating
 * rounds so that a noisy machine slows both alike; the mean of each one's round medians, ms.
 */
export function ampBench(o: Omit<TrainBenchOptions, 'amp'>, rounds = 2): { float32_ms: number; bf16_ms: number } {
  let f = 0;
  let b = 0;
  for (let r = 0; r < rounds; r++) {
    f += trainBench({ ...o, amp: 'off' }) / rounds;
    b += trainBench({ ...o, amp: 'bf16' }) / rounds;
  }
  return { float32_ms: f, bf16_ms: b };
}
