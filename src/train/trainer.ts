/**
 * The training loop shared by both stages: cosine schedule, prefetched batches, progress,
 * JSON-lines log and SVG curves, periodic validation, atomic checkpoints (last N and best)
 * and exact resume (weights, optimiser state, schedule step; data order and augmentation
 * are a pure function of (seed, step)).
 *
 * Data parallel (a ProcessGroup in `group`): every rank runs this loop on its shard of each
 * global batch (PairedLoader's shard) and averages gradients with the others before clipping
 * and Adam; rank 0's weights, optimiser state and step are broadcast at the start (fresh,
 * --init or --resume); BatchNorm running statistics are averaged after each step; the ranks
 * agree after each step whether to stop (a signal on any of them). Only rank 0 writes the log,
 * validates, shows progress and writes checkpoints and weights.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PairedLoader, loadPairs } from '../data/paired.js';
import { replaceFileSync } from '../data/atomic-write.js';
import { makeIdentityPairs } from '../data/identity-pairs.js';
import { scheduledLr } from './schedule.js';
import { RunLog, plotSvg } from './log.js';
import { validate, type ValPair, type ValResult } from './validate.js';
import {
  checkpointPath, listCheckpoints, loadCheckpoint, pruneCheckpoints, readNetworkWeights, saveCheckpoint, type CheckpointMeta,
} from './checkpoint.js';
import { Stage1Task, Stage2Task, NonFiniteLossError, readStats, type Task, type StepStats, type InitWeights, type WeightsLater } from './tasks.js';
import { cacheBytes, type TrainConfig, type Ablation } from './config.js';
import { cudnnBenchmark, type Device } from '../engine/index.js';
import { saveWeights } from '../nn/state-dict.js';
import { MsdiNet } from '../models/msdi-net.js';
import { Progress } from '../cli/progress.js';
import { averageBatchNormStats, assertReplicasInSync, broadcastTrainState, type ProcessGroup } from './distributed.js';

export interface TrainOptions {
  config: TrainConfig;
  ablation: Ablation;
  /** training pairs (GoPro layout) */
  data: string;
  /** held-out pairs for validation (GoPro layout) */
  val?: string;
  /** run folder: checkpoints, log, curves, final weights */
  out: string;
  /** continue from the newest checkpoint in `out` */
  resume?: boolean;
  /**
   * stage 2: a stage-1 checkpoint or MSDI2E weights providing the representation; either
   * stage: weights (or a checkpoint) of the network it trains, to fine-tune
   */
  init?: string;
  /** stop (with a checkpoint) after this many steps in this invocation */
  stopAfter?: number;
  quiet?: boolean;
  /** data-parallel training: this process is one rank of the group (see distributed.ts) */
  group?: ProcessGroup;
  /** where to train: 'cpu' (default) or 'cuda' (a CUDA libtorch); checkpoints are the same either way */
  device?: Device;
  /**
   * Read the steps' losses back only at log steps, validations, checkpoints and the end (default on
   * a GPU: the host then queues the next steps while one runs, where reading after every step
   * left the GPU idle while the host prepared the next). A non-finite loss then stops the run at
   * the next read, naming its step, and no checkpoint is written after it; otherwise (default on
   * the CPU, where reading costs nothing) each step is read before its update. MSDI_LAZY_LOSSES=1
   * or 0 sets the default.
   */
  lazyLosses?: boolean;
}

export interface TrainResult {
  step: number;
  finished: boolean;
  lastLosses: Record<string, number>;
  val: ValResult | null;
  /** The signal that stopped the run early (after a checkpoint), if any. */
  interrupted: NodeJS.Signals | null;
}

/**
 * Removes what a killed run left half-written in its folder: the temporary files of checkpoint
 * and weights writes (.NAME.PID.HEX.tmp, as large as a checkpoint each) and of the text files
 * (replaceFileSync's NAME.tmp).
 */
function removeStaleTemporaries(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (/^\..+\.safetensors\.\d+\.[0-9a-f]+\.tmp$/.test(n) || /^(config\.json|curves\.svg|log\.jsonl)\.tmp$/.test(n)) rmSync(join(dir, n), { force: true });
  }
}

/** resuming: this rank continues from a checkpoint in o.out (which holds every weight). */
function makeTask(o: TrainOptions, resuming: boolean): Task {
  const cfg = o.config;
  const device = o.device ?? 'cpu';
  let init: InitWeights | WeightsLater | undefined;
  if ((o.init || o.resume) && o.group && o.group.rank > 0) {
    init = 'from-rank-0'; // only rank 0 reads the file (it may exist on its machine only)
  } else if (resuming) {
    init = 'from-checkpoint'; // --init is not needed (nor read) to resume
  } else if (o.init) {
    // MSDI2E weights for the representation, or the network to fine-tune
    init = { tensors: readNetworkWeights(o.init), source: o.init };
  }
  // NHWC parameters: activations stay NHWC through the networks (stage 2 at wf 8: about 25%
  // faster here). MSDI_CHANNELS_LAST=0 keeps them NCHW.
  const channelsLast = process.env.MSDI_CHANNELS_LAST !== '0';
  if (cfg.stage === 'stage1') return new Stage1Task(cfg, o.ablation, undefined, { channelsLast, device, init });
  return new Stage2Task(cfg, o.ablation, init, { channelsLast, device });
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  const group = o.group && o.group.world > 1 ? o.group : null;
  const lead = !group || group.rank === 0;
  if (lead) mkdirSync(o.out, { recursive: true });
  const cfg = o.config;
  if (group && cfg.batch % group.world !== 0) {
    throw new Error(`config: batch ${cfg.batch} is not divisible by the ${group.world} ranks of data-parallel training`);
  }
  const log = new RunLog(join(o.out, 'log.jsonl'));
  if (o.device?.startsWith('cuda')) cudnnBenchmark(true); // one crop size: time the algorithms once
  const existing = lead ? listCheckpoints(o.out) : [];
  if (lead && existing.length && !o.resume) {
    throw new Error(`${o.out}: already holds checkpoints; pass --resume to continue, or choose another --out`);
  }
  if (lead) removeStaleTemporaries(o.out);
  const task = makeTask(o, Boolean(o.resume) && existing.length > 0);
  let step = 0;
  let bestPsnr: number | null = null;
  let bestStep: number | null = null;
  let resumedWindow: CheckpointMeta['logWindow'];
  let loader: PairedLoader | null = null;
  let valPairs: ValPair[] = [];
  try {
    if (!lead) {
      // rank 0 decides fresh / resume; its state arrives below
    } else if (o.resume && existing.length) {
      const last = existing[existing.length - 1];
      const meta = loadCheckpoint(last.file, task);
      step = meta.step;
      bestPsnr = meta.bestPsnr;
      bestStep = meta.bestStep;
      resumedWindow = meta.logWindow;
      log.truncateAfter(step);
      log.write({ kind: 'event', step, event: 'resume', from: last.file });
    } else {
      if (o.resume && !o.quiet) console.error(`${o.out}: no checkpoint to resume from; starting the run from step 0`);
      replaceFileSync(join(o.out, 'config.json'), JSON.stringify({ ...cfg, ablation: o.ablation, init: o.init ?? null }, null, 2));
      log.truncateAfter(-1); // a fresh run (perhaps after one killed before its first checkpoint) starts a fresh log
      log.write({ kind: 'event', step: 0, event: 'start', stage: cfg.stage, ablation: o.ablation });
    }
    if (group) {
      step = broadcastTrainState(group, task, step);
      task.syncGrads = (params) => void group.averageGradients(params);
    }
    loader = new PairedLoader({
      dir: o.data, crop: cfg.crop, batch: cfg.batch, seed: cfg.seed, workers: cfg.workers, permuteChannels: cfg.permuteChannels,
      shard: group ? { rank: group.rank, world: group.world } : undefined,
      levels: cfg.stage === 'stage1' && cfg.levelWeight > 0 ? cfg.levels : undefined,
      cacheBytes: cacheBytes(cfg.cacheGB, group?.world ?? 1),
    });
    valPairs = o.val && lead ? await loadPairs(o.val, { limit: cfg.valCount, maxSide: cfg.valSide }) : [];
  } catch (e) {
    // nothing trained yet: free the networks and the loader's worker threads before failing
    await loader?.close();
    task.dispose();
    throw e;
  }
  const meta = (): CheckpointMeta => ({
    step, stage: cfg.stage, ablation: o.ablation, config: cfg, bestPsnr, bestStep,
    logWindow: { sums: sinceLog, count: logCount, secs: (Date.now() - t0) / 1000, waitSecs },
  });
  const checkpoint = () => {
    saveCheckpoint(checkpointPath(o.out, step), task, meta());
    pruneCheckpoints(o.out, cfg.keepLast);
  };
  const writePlot = () => replaceFileSync(join(o.out, 'curves.svg'), plotSvg(log.read(), task.lossKey));

  let stopRequested: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    stopRequested = sig;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const endStep = Math.min(cfg.iters, o.stopAfter !== undefined ? step + o.stopAfter : cfg.iters);
  const bar = o.quiet || !lead ? null : new Progress(`${cfg.stage}${o.ablation !== 'none' ? ` (${o.ablation})` : ''}`, cfg.iters, 'it', step);
  let lastLosses: Record<string, number> = {};
  let lastVal: ValResult | null = null;
  const tMax = cfg.tMax ?? cfg.iters;
  // The steps since the last log record (continued from the checkpoint when resuming).
  let sinceLog: Record<string, number> = { ...resumedWindow?.sums };
  let logCount = resumedWindow?.count ?? 0;
  let t0 = Date.now() - (resumedWindow?.secs ?? 0) * 1000;
  // Seconds spent waiting for batches since the last log line: near 0 when the loader keeps
  // up, close to s_per_it when it is the bottleneck (a GPU fed by too few worker threads).
  let waitSecs = resumedWindow?.waitSecs ?? 0;
  let stopAgreed = false;
  const env = process.env.MSDI_LAZY_LOSSES;
  const lazy = o.lazyLosses ?? (env ? env !== '0' : task.device !== 'cpu');
  // The steps whose stats are not read yet (lazy), and the error for a non-finite one.
  const pending: { step: number; stats: StepStats }[] = [];
  const nonFinite = (e: NonFiniteLossError, at: number): Error => {
    const good = listCheckpoints(o.out).pop();
    if (lead) log.write({ kind: 'event', step: at, event: 'non-finite loss', message: e.message });
    return new Error(`step ${at}: ${e.message}; stopped (last good checkpoint: ${good ? good.file : 'none'})`);
  };
  const readPending = () => {
    const steps = pending.splice(0);
    let rows: Record<string, number>[];
    try {
      rows = steps.map((p) => readStats(p.stats));
    } finally {
      for (const p of steps) p.stats.values.dispose();
    }
    if (group && rows.length) {
      // the losses of the whole batch: averaged over the ranks
      const keys = Object.keys(rows[0]!);
      const r = group.allreduceNumbers(rows.flatMap((v) => keys.map((k) => v[k]!)));
      rows = rows.map((_, i) => Object.fromEntries(keys.map((k, j) => [k, r[i * keys.length + j]! / group.world])));
    }
    rows.forEach((values, i) => {
      try {
        task.checkFinite(values);
      } catch (e) {
        throw e instanceof NonFiniteLossError ? nonFinite(e, steps[i]!.step) : e;
      }
      for (const [k, v] of Object.entries(values)) sinceLog[k] = (sinceLog[k] ?? 0) + v;
      logCount++;
      lastLosses = values;
    });
  };
  try {
    while (step < endStep && !(group ? stopAgreed : stopRequested)) {
      // Yield to the event loop once a step so that signal handlers (Ctrl-C, SIGTERM) run: a
      // background run on real data (batches prefetched, 1.4 s steps) once ignored SIGINT and
      // SIGTERM for good without this (reproduced by hand; the tiny test runs yield anyway).
      await new Promise((resolve) => setImmediate(resolve));
      const tWait = performance.now();
      const batch = await loader.get(step);
      waitSecs += (performance.now() - tWait) / 1000;
      makeIdentityPairs(batch, { seed: cfg.seed, step, fraction: cfg.identity, first: loader.rank * loader.localBatch });
      const lr = scheduledLr(step, cfg.lr, cfg.etaMin, tMax, cfg.warmup);
      task.setLr(lr, scheduledLr(step, cfg.lrD, cfg.etaMin, tMax, cfg.warmup));
      try {
        pending.push({ step: step + 1, stats: task.step(batch, !lazy) });
      } catch (e) {
        throw e instanceof NonFiniteLossError ? nonFinite(e, step + 1) : e;
      }
      step++;
      if (group) {
        averageBatchNormStats(group, task);
        // One small collective: stop if any rank was signalled.
        stopAgreed = group.allreduceNumbers([stopRequested ? 1 : 0])[0]! > 0;
      }
      const logStep = step % cfg.logEvery === 0 || step === cfg.iters;
      // Before every log line, validation (which may write best.safetensors) and checkpoint: the
      // same steps on every rank of a group (a collective).
      if (!lazy || logStep || step % cfg.valEvery === 0 || step % cfg.ckptEvery === 0) readPending();
      // a stopped run keeps its open window in the checkpoint instead (logWindow)
      if (logStep) {
        const mean = Object.fromEntries(Object.entries(sinceLog).map(([k, v]) => [k, v / logCount]));
        const secs = (Date.now() - t0) / 1000;
        if (lead) log.write({ kind: 'train', step, lr, ...mean, s_per_it: secs / logCount, s_wait_per_it: waitSecs / logCount });
        sinceLog = {};
        logCount = 0;
        waitSecs = 0;
        t0 = Date.now();
      }
      bar?.update(step, `${lastLosses[task.lossKey] !== undefined ? `${task.lossKey} ${lastLosses[task.lossKey]!.toFixed(4)} ` : ''}lr ${lr.toExponential(2)}${lastVal ? ` val ${lastVal.psnr.toFixed(2)} dB` : ''}`);
      if (lead && valPairs.length && (step % cfg.valEvery === 0 || step === cfg.iters)) {
        lastVal = validate(valPairs, (x) => task.restore(x), task.device);
        log.write({ kind: 'val', step, ...lastVal });
        if (bestPsnr === null || lastVal.psnr > bestPsnr) {
          bestPsnr = lastVal.psnr;
          bestStep = step;
          saveCheckpoint(join(o.out, 'best.safetensors'), task, meta());
        }
        writePlot();
      }
      if (step % cfg.ckptEvery === 0) {
        if (group) assertReplicasInSync(group, task, step);
        if (lead) checkpoint();
      }
    }
    readPending(); // a run stopped between reads: before its checkpoint
    const finished = step >= cfg.iters;
    if (group && step % cfg.ckptEvery !== 0) assertReplicasInSync(group, task, step);
    if (!lead) {
      group!.barrier(); // while rank 0 writes the last checkpoint and the final weights
      return { step, finished, lastLosses, val: null, interrupted: stopRequested };
    }
    if (!listCheckpoints(o.out).some((c) => c.step === step)) checkpoint();
    writePlot();
    if (finished) {
      // The deployable weights: the whole network (for stage 2 with its frozen representation),
      // with a latentScale folded into them (the run is over; its checkpoints keep the trained ones).
      if (task.g instanceof MsdiNet) task.g.foldLatentScale();
      saveWeights(task.g, join(o.out, 'final.safetensors'), {
        metadata: { arch: cfg.stage === 'stage1' ? 'MSDI2E' : 'msdi2_net', wf: String(cfg.wf), steps: String(step), ablation: o.ablation },
      });
      log.write({ kind: 'event', step, event: 'finished' });
    }
    bar?.done(`${finished ? 'finished' : 'stopped'} at step ${step}/${cfg.iters}${bestPsnr !== null ? `, best val ${bestPsnr.toFixed(2)} dB at step ${bestStep}` : ''}`);
    group?.barrier();
    return { step, finished, lastLosses, val: lastVal, interrupted: stopRequested };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const p of pending) p.stats.values.dispose(); // a run that failed between reads
    await loader.close();
    task.dispose();
  }
}
