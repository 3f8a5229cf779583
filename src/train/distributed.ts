/**
 * Data-parallel training on libtorch's own c10d (native/distributed.cc): a TCPStore rendezvous at
 * MASTER_ADDR:MASTER_PORT and a Gloo process group (CPU; NCCL in a CUDA build), as
 * torch.distributed does. Each rank runs the whole training loop on its shard of every global
 * batch; gradients are averaged across ranks after backward, so every rank applies the same
 * update and the weights stay identical.
 *
 * A rank learns its place from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
 * LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), set by `msdi train --nproc` (launch.ts) or by any
 * launcher that speaks torchrun's protocol.
 */
import { native, type GroupHandle } from '../engine/native.js';
import { Tensor, tidy, expected, type AdamParamState, type Adam } from '../engine/index.js';
import type { Module } from '../nn/module.js';
import type { Trainable } from './checkpoint.js';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

export const C10D_MISSING = 'distributed training needs a libtorch with c10d (gloo)';

/**
 * A collective failed: in training that means another rank died, stopped or hung past the
 * timeout (this rank is not the cause). Ranks exit with EXIT_COLLECTIVE for it (see launch.ts).
 */
export class CollectiveError extends Error {
  override name = 'CollectiveError';
}

/** The backends the addon was built with ([] when its libtorch has no c10d). */
export function availableBackends(): Backend[] {
  return typeof native.distBackends === 'function' ? (native.distBackends() as Backend[]) : [];
}

/** Why there is no Gloo backend (for an error message), or null when there is one. */
export function glooMissing(): string | null {
  if (typeof native.distBackends !== 'function') {
    return 'the native addon predates data-parallel training; rebuild it (npm run build:native)';
  }
  if (availableBackends().includes('gloo')) return null;
  return `${C10D_MISSING}: this addon was built without it (on Debian: apt-get install libgloo-dev, then npm run build:native; see README)`;
}

/** Where a rank sits, from torchrun's environment variables. */
export interface DistEnv {
  rank: number;
  world: number;
  localRank: number;
  localWorld: number;
  masterAddr: string;
  masterPort: number;
}

function envInt(env: NodeJS.ProcessEnv, name: string, min: number, fallback?: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    throw expected('distributed training', 'an integer', `environment variable ${name}`, 'nothing');
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw expected('distributed training', `an integer >= ${min}`, `environment variable ${name}`, raw);
  return n;
}

/** This process's rank when launched as one (WORLD_SIZE and RANK set), else null. */
export function distEnv(env: NodeJS.ProcessEnv = process.env): DistEnv | null {
  if (env.WORLD_SIZE === undefined || env.RANK === undefined) return null;
  const world = envInt(env, 'WORLD_SIZE', 1);
  const rank = envInt(env, 'RANK', 0);
  if (rank >= world) throw expected('distributed training', `a rank below WORLD_SIZE ${world}`, 'environment variable RANK', String(rank));
  const localWorld = envInt(env, 'LOCAL_WORLD_SIZE', 1, world);
  const localRank = envInt(env, 'LOCAL_RANK', 0, rank % localWorld);
  const masterPort = envInt(env, 'MASTER_PORT', 1, 29500);
  if (masterPort > 65535) throw expected('distributed training', 'a TCP port (1..65535)', 'environment variable MASTER_PORT', String(masterPort));
  return { rank, world, localRank, localWorld, masterAddr: env.MASTER_ADDR || '127.0.0.1', masterPort };
}

export interface GroupOptions {
  rank: number;
  world: number;
  masterAddr: string;
  masterPort: number;
  backend?: Backend;
  /**
   * How long rendezvous and every collective may wait for the other ranks before failing
   * (default MSDI_DIST_TIMEOUT seconds, else 30 minutes as torch.distributed): long enough for
   * rank 0 to validate and write checkpoints while the others wait.
   */
  timeoutMs?: number;
  /** Gloo: network interfaces to use (default GLOO_SOCKET_IFNAME, comma-separated, as torch) */
  interfaces?: string[];
}

function defaultTimeoutMs(): number {
  const s = Number(process.env.MSDI_DIST_TIMEOUT);
  return Number.isFinite(s) && s > 0 ? Math.round(s * 1000) : 30 * 60 * 1000;
}

/** One c10d process group. Collectives are synchronous and work in place; dispose() leaves it. */
export class ProcessGroup {
  #h: GroupHandle | null;
  readonly rank: number;
  readonly world: number;
  readonly backend: Backend;

  private constructor(h: GroupHandle, rank: number, world: number, backend: Backend) {
    this.#h = h;
    this.rank = rank;
    this.world = world;
    this.backend = backend;
  }

  /** Joins the group: blocks until all `world` ranks have reached the store (or the timeout). */
  static init(o: GroupOptions): ProcessGroup {
    const backend = o.backend ?? 'gloo';
    if (!Number.isInteger(o.world) || o.world < 1) throw expected('ProcessGroup.init', 'a positive integer', 'world', o.world);
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.world) {
      throw expected('ProcessGroup.init', `an integer in 0..${o.world - 1}`, 'rank', o.rank);
    }
    if (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535) {
      throw expected('ProcessGroup.init', 'a TCP port (1..65535)', 'masterPort', o.masterPort);
    }
    const missing = glooMissing();
    if (missing) throw new Error(missing);
    const have = availableBackends();
    if (!have.includes(backend)) throw expected('ProcessGroup.init', `a backend this addon has (${have.join(', ')})`, 'backend', backend);
    const timeoutMs = o.timeoutMs ?? defaultTimeoutMs();
    const interfaces = o.interfaces ?? (process.env.GLOO_SOCKET_IFNAME ? process.env.GLOO_SOCKET_IFNAME.split(',').filter(Boolean) : []);
    const h = native.distInit(backend, o.masterAddr, o.masterPort, o.rank, o.world, timeoutMs, interfaces);
    return new ProcessGroup(h, o.rank, o.world, backend);
  }

  private get h(): GroupHandle {
    if (!this.#h) throw expected('ProcessGroup', 'a live process group', 'this', 'disposed');
    return this.#h;
  }

  #collective<T>(what: string, fn: (h: GroupHandle) => T): T {
    const h = this.h;
    try {
      return fn(h);
    } catch (e) {
      throw new CollectiveError(`${what} across ${this.world} ranks failed (another rank stopped, or is stuck): ${(e as Error).message}`, { cause: e });
    }
  }

  /** Reduces the tensors across ranks in place (one flattened collective per dtype). */
  allreduce(ts: Tensor[], op: ReduceOp = 'sum'): void {
    if (ts.length) this.#collective('all-reduce', (h) => native.distAllreduce(h, ts.map((t) => t.handle), op));
  }

  /** Averages the defined gradients of `params` across ranks in place; returns how many. */
  averageGradients(params: Tensor[]): number {
    return this.#collective('gradient all-reduce', (h) => native.distAllreduceGrads(h, params.map((p) => p.handle)));
  }

  /** Overwrites the tensors on every rank with `root`'s, in place. */
  broadcast(ts: Tensor[], root = 0): void {
    if (ts.length) this.#collective('broadcast', (h) => native.distBroadcast(h, ts.map((t) => t.handle), root));
  }

  /** Plain numbers reduced across ranks (in float64). */
  allreduceNumbers(values: number[], op: ReduceOp = 'sum'): number[] {
    if (!values.length) return [];
    return tidy(() => {
      const t = Tensor.fromArray(Float64Array.from(values), [values.length], { dtype: 'float64' });
      this.allreduce([t], op);
      return Array.from(t.data() as Float64Array);
    });
  }

  /** Root's numbers on every rank (the others pass placeholders of the same length). */
  broadcastNumbers(values: number[], root = 0): number[] {
    if (!values.length) return [];
    return tidy(() => {
      const t = Tensor.fromArray(Float64Array.from(values), [values.length], { dtype: 'float64' });
      this.broadcast([t], root);
      return Array.from(t.data() as Float64Array);
    });
  }

  barrier(): void {
    this.#collective('barrier', (h) => native.distBarrier(h));
  }

  dispose(): void {
    if (this.#h) native.distDestroy(this.#h);
    this.#h = null;
  }
}

// ---------------------------------------------------------------- training state across ranks

function modules(t: Trainable): Module[] {
  return t.d ? [t.g, t.d] : [t.g];
}

/** Broadcasts one optimiser's Adam moments and step counts from rank 0 (after a resume). */
function broadcastAdam(group: ProcessGroup, opt: Adam): void {
  const mine = group.rank === 0 ? opt.getState() : null;
  try {
    const steps = group.broadcastNumbers(mine ? mine.map((s) => s?.step ?? 0) : opt.params.map(() => 0));
    const live = steps.map((s, i) => (s > 0 ? i : -1)).filter((i) => i >= 0);
    if (!live.length) return;
    tidy(() => {
      const moments = live.map((i) => mine?.[i] ?? {
        step: steps[i]!, expAvg: Tensor.zeros(opt.params[i]!.shape), expAvgSq: Tensor.zeros(opt.params[i]!.shape),
      });
      group.broadcast([...moments.map((m) => m.expAvg), ...moments.map((m) => m.expAvgSq)]);
      if (group.rank !== 0) {
        const state: (AdamParamState | null)[] = opt.params.map(() => null);
        live.forEach((i, k) => (state[i] = moments[k]!));
        opt.setState(state);
      }
    });
  } finally {
    for (const s of mine ?? []) {
      s?.expAvg.dispose();
      s?.expAvgSq.dispose();
    }
  }
}

/**
 * Makes every rank start where rank 0 starts: its weights and buffers (fresh, resumed or
 * initialised from --init), its Adam state and its step. Returns rank 0's step.
 */
export function broadcastTrainState(group: ProcessGroup, t: Trainable, step: number): number {
  for (const m of modules(t)) group.broadcast([...m.stateDict().values()]);
  broadcastAdam(group, t.optG);
  if (t.optD) broadcastAdam(group, t.optD);
  return group.broadcastNumbers([step])[0]!;
}

/**
 * Averages BatchNorm running statistics across ranks. Each rank normalises with its own batch
 * (no SyncBatchNorm); the running mean and variance are exponential averages, so averaging them
 * over ranks equals tracking the mean of the ranks' batch statistics.
 */
export function averageBatchNormStats(group: ProcessGroup, t: Trainable): void {
  const stats = modules(t).flatMap((m) => m.namedBuffers().filter(([k]) => /(^|\.)running_(mean|var)$/.test(k)).map(([, v]) => v));
  group.allreduce(stats, 'avg');
}

/**
 * Fails when the ranks' weights are no longer the same (a rank that skipped or repeated an
 * update): compares a float64 checksum of every parameter and buffer across ranks.
 */
export function assertReplicasInSync(group: ProcessGroup, t: Trainable, step: number): void {
  const sums = tidy(() => modules(t).flatMap((m) => [...m.stateDict().values()]).map((v) => v.to({ dtype: 'float64' }).abs().sum().item()));
  const total = sums.reduce((a, b) => a + b, 0);
  const [lo, hi] = [group.allreduceNumbers([total], 'min')[0]!, group.allreduceNumbers([total], 'max')[0]!];
  if (hi - lo > 1e-6 * Math.max(1, Math.abs(hi))) {
    throw new Error(`step ${step}: the ranks' weights differ (checksums ${lo} .. ${hi}); data-parallel training went out of step`);
  }
}
