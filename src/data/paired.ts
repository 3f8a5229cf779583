/**
 * Training data for paired images in the GoPro layout: DIR/input/<name> (blurry) and
 * DIR/target/<name> (sharp), the same file names in both (.png .jpg .jpeg .webp .tif .tiff).
 *
 * Determinism (so that resuming at step s gives exactly the batches an uninterrupted run would):
 *  - the samples form one endless stream; global sample g = step * batch + i (0 <= i < batch) is
 *    names[perm_e[g mod N]] with e = floor(g / N) and perm_e = Rng(deriveSeed(seed, PERM_TAG, e))
 *    .shuffle([0..N-1]). When batch divides N this is exactly epoch = floor(step * batch / N); when
 *    it does not, a step that straddles an epoch boundary takes its tail from the next epoch, so
 *    every sample still appears exactly once in each run of N consecutive global samples
 *    (stream positions e*N .. e*N+N-1);
 *  - crop position and augmentation of sample i of step s come from Rng(deriveSeed(seed, CROP_TAG,
 *    s, i)): top, left, then hflip, vflip, rot90 (BasicSR's augment, each p = 0.5, applied in that
 *    order and identically to both images; see paired-worker.ts); with permuteChannels, the
 *    channel order of sample i of step s from its own seed (src/data/channel-permutation.ts);
 *  - so a batch is a pure function of (seed, step, crop, augment, batch, the files): the number of
 *    workers, the prefetch depth and which steps were fetched before cannot change a byte.
 *  - shard {rank r, world W} (batch must be divisible by W): rank r gets the contiguous block
 *    i in [r * batch/W, (r+1) * batch/W) of every global batch, i.e. global samples
 *    g = step*batch + i for those i. The ranks' batches concatenated in rank order are exactly the
 *    global batch (same crops and flips, since those depend on the global i).
 */
import { existsSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { deriveSeed, Rng } from './rng.js';
import { levelFolder } from './synth/index.js';
// Importing paired-worker also loads sharp on the main thread before any worker starts, which
// sharp requires on glibc Linux (its shared libraries must outlive the worker threads).
import {
  decodeRGB,
  runPairJob,
  WORKER_KIND,
  type CachedImage,
  type PairJob,
  type PairJobResult,
  type WorkerReply,
  type WorkerRequest,
} from './paired-worker.js';

export interface PairBatch {
  /** n x 3 x size x size, NCHW, RGB, 0..1 */
  blurry: Float32Array;
  sharp: Float32Array;
  n: number;
  size: number;
  names: string[];
  /**
   * With PairedLoaderOptions.levels: each sample's blur at `levels[k]` (a level its pair has,
   * drawn per sample; 1, the blurry image itself, for pairs without any), cropped like the pair.
   */
  levelBlurry?: Float32Array;
  levels?: Float32Array;
}

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff'];

/** Domain tag mixed into the per-epoch permutation seed: deriveSeed(seed, PERM_TAG, epoch). */
export const PERM_TAG = 0x7065726d; // 'perm'
/** Domain tag of the per-sample choice of blur level: deriveSeed(seed, LEVEL_TAG, step, i). */
export const LEVEL_TAG = 0x6c65766c; // 'levl'

function listImages(folder: string, role: string, dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(folder, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new Error(`paired: missing folder ${folder} (expected ${dir}/input/*.png blurry and ${dir}/target/*.png sharp)`);
    }
    if (code === 'ENOTDIR') throw new Error(`paired: ${folder} is not a folder`);
    throw new Error(`paired: cannot read ${folder}: ${(err as Error).message}`);
  }
  const names = entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase()))
    .map((e) => e.name)
    .sort();
  if (names.length === 0) {
    throw new Error(`paired: no ${role} images (${IMAGE_EXTENSIONS.join(' ')}) in ${folder}`);
  }
  return names;
}

function fewNames(names: string[], k = 5): string {
  return names.slice(0, k).join(', ') + (names.length > k ? `, ... (${names.length} in all)` : '');
}

/**
 * Sorted file names present in both DIR/input and DIR/target. Throws a one-line error naming the
 * folder when either is missing or has no images, or when the two sets of names differ (listing a
 * few names found on one side only).
 */
export function listPairs(dir: string): string[] {
  const inDir = join(dir, 'input');
  const tgtDir = join(dir, 'target');
  const input = listImages(inDir, 'blurry', dir);
  const target = listImages(tgtDir, 'sharp', dir);
  const tset = new Set(target);
  const iset = new Set(input);
  const onlyIn = input.filter((n) => !tset.has(n));
  const onlyT = target.filter((n) => !iset.has(n));
  if (onlyIn.length || onlyT.length) {
    const parts: string[] = [];
    if (onlyIn.length) parts.push(`${onlyIn.length} only in ${inDir}: ${fewNames(onlyIn)}`);
    if (onlyT.length) parts.push(`${onlyT.length} only in ${tgtDir}: ${fewNames(onlyT)}`);
    throw new Error(`paired: file names in ${inDir} and ${tgtDir} do not match; ${parts.join('; ')}`);
  }
  return input;
}

export interface PairedLoaderOptions {
  dir: string;
  /** square crop size (pixels) */
  crop: number;
  /** global batch size (per step, over all shards) */
  batch: number;
  seed: number;
  /** BasicSR augment (hflip, vflip, rot90 each p = 0.5); default true */
  augment?: boolean;
  /** each sample's RGB channels in one of their six orders (src/data/channel-permutation.ts); default false */
  permuteChannels?: boolean;
  /** decode threads; 0 decodes on the main thread (still async); default 1 */
  workers?: number;
  /** how many steps after the requested one to prepare in the background; default 2 */
  prefetch?: number;
  /** data-parallel shard: this rank's part of each global batch (see the file comment) */
  shard?: { rank: number; world: number };
  /**
   * Blur levels to read from DIR/level-L/ (msdi synth --levels): each sample also gets its
   * pair's blur at one of these levels that it has, drawn per (seed, step, global index).
   */
  levels?: number[];
  /**
   * Keep decoded images in memory, shared by the decode workers, up to this many bytes (3 per
   * pixel, 6 for 16-bit files): once an image is in, its crops are cut from memory, without
   * reading or decoding the file again, which is what a fast GPU waits for otherwise. Images are
   * decoded whole the first time (while there is room) and kept for the loader's life; the
   * batches are the same bytes either way. 0 (default): off.
   */
  cacheBytes?: number;
}

interface Job {
  step: number;
  spec: PairJob;
  promise: Promise<PairBatch>;
  resolve: (b: PairBatch) => void;
  reject: (e: Error) => void;
  started: boolean;
  /** the samples' blur levels, with PairedLoaderOptions.levels */
  levels?: Float32Array;
}

interface Slot {
  worker: Worker;
  busy: Map<number, Job>;
}

function checkInt(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new Error(`PairedLoader: ${what} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

/**
 * Jobs handed to one worker at a time (it runs them one after another). 2 keeps the next job
 * waiting in the worker so that it never idles while the main thread is busy with a training step;
 * more would only queue jobs inside the worker where a dropped step can no longer be cancelled.
 */
const IN_FLIGHT_PER_WORKER = 2;

export class PairedLoader {
  readonly names: string[];
  readonly dir: string;
  readonly crop: number;
  readonly batch: number;
  readonly seed: number;
  readonly augment: boolean;
  readonly permuteChannels: boolean;
  readonly workers: number;
  readonly prefetch: number;
  readonly rank: number;
  readonly world: number;
  /** samples per step on this rank (batch / world) */
  readonly localBatch: number;
  /** per pair (as `names`), the levels of PairedLoaderOptions.levels it has a file for */
  private readonly levelsOf: number[][] | null;

  private readonly jobs = new Map<number, Job>(); // step -> job (queued, running or done but not yet taken)
  private queue: Job[] = [];
  private readonly slots: Slot[] = [];
  private readonly perms = new Map<number, Uint32Array>();
  private nextId = 1;
  private closed = false;
  readonly cacheBytes: number;
  private readonly cache = new Map<string, CachedImage>();
  private cachedBytes = 0;
  /** an image did not fit: stop decoding whole images for the cache (a crop decodes less) */
  private cacheFull = false;
  private respawns = 0;

  constructor(o: PairedLoaderOptions) {
    this.dir = o.dir;
    this.crop = checkInt(o.crop, 'crop', 1);
    this.batch = checkInt(o.batch, 'batch', 1);
    if (typeof o.seed !== 'number' || !Number.isFinite(o.seed)) throw new Error(`PairedLoader: seed must be a finite number, got ${String(o.seed)}`);
    this.seed = o.seed;
    this.augment = o.augment ?? true;
    this.permuteChannels = o.permuteChannels ?? false;
    this.workers = checkInt(o.workers ?? 1, 'workers', 0);
    this.prefetch = checkInt(o.prefetch ?? 2, 'prefetch', 0);
    this.world = checkInt(o.shard?.world ?? 1, 'shard.world', 1);
    this.rank = checkInt(o.shard?.rank ?? 0, 'shard.rank', 0);
    if (this.rank >= this.world) throw new Error(`PairedLoader: shard.rank ${this.rank} must be < shard.world ${this.world}`);
    if (this.batch % this.world !== 0) {
      throw new Error(`PairedLoader: batch ${this.batch} is not divisible by shard.world ${this.world}`);
    }
    this.localBatch = this.batch / this.world;
    this.cacheBytes = checkInt(o.cacheBytes ?? 0, 'cacheBytes', 0);
    this.names = listPairs(o.dir);
    this.levelsOf = o.levels?.length
      ? this.names.map((n) => o.levels!.filter((L) => existsSync(join(levelFolder(o.dir, L), n))))
      : null;
    if (this.levelsOf && this.levelsOf.every((ls) => ls.length === 0)) {
      throw new Error(`paired: no blur levels ${o.levels!.join(', ')} in ${o.dir} (expected level-L/ folders made by msdi synth --levels)`);
    }

    for (let k = 0; k < this.workers; k++) this.slots.push(this.spawn());
  }

  /** The global sample indices (into names) of step `step` on this rank, in batch order. */
  indices(step: number): number[] {
    const N = this.names.length;
    const out: number[] = [];
    const lo = this.rank * this.localBatch;
    for (let i = lo; i < lo + this.localBatch; i++) {
      const g = step * this.batch + i;
      out.push(this.perm(Math.floor(g / N))[g % N]!);
    }
    return out;
  }

  /**
   * The batch for global training step `step` (a pure function of seed, step and the data), and
   * schedules steps step+1 .. step+prefetch in the background. Results of other steps that were
   * prefetched but not asked for are dropped.
   */
  get(step: number): Promise<PairBatch> {
    if (this.closed) return Promise.reject(new Error('PairedLoader: get() after close()'));
    if (!Number.isSafeInteger(step) || step < 0) {
      return Promise.reject(new Error(`PairedLoader: step must be a non-negative integer, got ${step}`));
    }
    let job = this.jobs.get(step);
    if (!job) {
      job = this.makeJob(step);
      this.queue.unshift(job); // the asked-for step goes first
    } else if (!job.started) {
      // move it to the front of the queue
      this.queue = [job, ...this.queue.filter((j) => j !== job)];
    }
    this.jobs.delete(step);
    // drop what is no longer wanted: everything outside (step, step + prefetch]
    for (const [s, j] of this.jobs) {
      if (s <= step || s > step + this.prefetch) this.evict(j);
    }
    for (let s = step + 1; s <= step + this.prefetch; s++) {
      if (!this.jobs.has(s)) {
        const pj = this.makeJob(s);
        this.queue.push(pj);
      }
    }
    this.pump();
    return job.promise;
  }

  /** Stops the workers; pending get() promises reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('PairedLoader: closed');
    for (const j of this.jobs.values()) j.reject(err);
    for (const j of this.queue) j.reject(err);
    for (const s of this.slots) for (const j of s.busy.values()) j.reject(err);
    this.jobs.clear();
    this.queue = [];
    this.cache.clear(); // the workers' views go with them
    this.cachedBytes = 0;
    // Node does not keep the process alive for a terminating worker: without this timer, a
    // top-level `await loader.close()` with nothing else pending can end the process early (exit 13)
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await Promise.all(this.slots.map((s) => s.worker.terminate()));
    } finally {
      clearInterval(keepAlive);
    }
    this.slots.length = 0;
  }

  /** What the cache holds now (see PairedLoaderOptions.cacheBytes). */
  cacheStats(): { images: number; bytes: number; full: boolean } {
    return { images: this.cache.size, bytes: this.cachedBytes, full: this.cacheFull };
  }

  // ---- internals --------------------------------------------------------------------------------

  /** Just before a job runs: the images it needs that the cache has, and whether to add the rest. */
  private withCache(spec: PairJob): PairJob {
    if (this.cacheBytes === 0) return spec;
    const cached: Record<string, CachedImage> = {};
    let missing = false;
    for (const s of spec.samples) {
      for (const path of [s.blurryPath, s.sharpPath, s.levelPath]) {
        if (path === undefined) continue;
        const hit = this.cache.get(path);
        if (hit) cached[path] = hit;
        else missing = true;
      }
    }
    return { ...spec, cached, fill: missing && !this.cacheFull };
  }

  /** Keeps what a job decoded whole, while there is room. */
  private remember(decoded: Record<string, CachedImage> | undefined): void {
    if (this.closed) return;
    for (const [path, c] of Object.entries(decoded ?? {})) {
      if (this.cache.has(path)) continue;
      if (this.cachedBytes + c.data.byteLength > this.cacheBytes) {
        this.cacheFull = true;
        continue;
      }
      this.cache.set(path, c);
      this.cachedBytes += c.data.byteLength;
    }
  }

  private perm(epoch: number): Uint32Array {
    let p = this.perms.get(epoch);
    if (!p) {
      const idx = Array.from({ length: this.names.length }, (_, k) => k);
      new Rng(deriveSeed(this.seed, PERM_TAG, epoch)).shuffle(idx);
      p = Uint32Array.from(idx);
      if (this.perms.size >= 4) this.perms.delete(this.perms.keys().next().value as number);
      this.perms.set(epoch, p);
    }
    return p;
  }

  private makeJob(step: number): Job {
    const lo = this.rank * this.localBatch;
    const levels: number[] = [];
    const spec: PairJob = {
      seed: this.seed,
      step,
      crop: this.crop,
      augment: this.augment,
      permuteChannels: this.permuteChannels,
      samples: this.indices(step).map((idx, k) => {
        const name = this.names[idx]!;
        const blurryPath = join(this.dir, 'input', name);
        const sample = { i: lo + k, name, blurryPath, sharpPath: join(this.dir, 'target', name) };
        if (!this.levelsOf) return sample;
        const have = this.levelsOf[idx]!;
        const level = have.length ? have[new Rng(deriveSeed(this.seed, LEVEL_TAG, step, lo + k)).int(0, have.length - 1)]! : 1;
        levels.push(level);
        return { ...sample, levelPath: level === 1 ? blurryPath : join(levelFolder(this.dir, level), name) };
      }),
    };
    let resolve!: (b: PairBatch) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<PairBatch>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // prefetched steps may fail or be dropped without anyone awaiting them
    promise.catch(() => {});
    const job: Job = { step, spec, promise, resolve, reject, started: false, levels: this.levelsOf ? Float32Array.from(levels) : undefined };
    this.jobs.set(step, job);
    return job;
  }

  private evict(job: Job): void {
    this.jobs.delete(job.step);
    if (!job.started) {
      this.queue = this.queue.filter((j) => j !== job);
      job.reject(new Error(`PairedLoader: step ${job.step} dropped`));
    }
  }

  private toBatch(job: Job, r: PairJobResult): PairBatch {
    return {
      blurry: r.blurry,
      sharp: r.sharp,
      n: job.spec.samples.length,
      size: this.crop,
      names: job.spec.samples.map((s) => s.name),
      ...(r.level && job.levels ? { levelBlurry: r.level, levels: job.levels } : {}),
    };
  }

  private pump(): void {
    if (this.closed) return;
    if (this.workers === 0) {
      // main thread: start everything queued (sharp runs it on libuv's thread pool)
      const q = this.queue;
      this.queue = [];
      for (const job of q) {
        job.started = true;
        runPairJob(this.withCache(job.spec)).then(
          (r) => {
            this.remember(r.decoded);
            job.resolve(this.toBatch(job, r));
          },
          (e: unknown) => job.reject(e instanceof Error ? e : new Error(String(e))),
        );
      }
      return;
    }
    if (this.slots.length === 0) {
      const err = new Error('PairedLoader: all decode workers failed (see the earlier error)');
      for (const j of this.queue) j.reject(err);
      this.queue = [];
      return;
    }
    while (this.queue.length) {
      let best: Slot | undefined;
      for (const s of this.slots) {
        if (s.busy.size < IN_FLIGHT_PER_WORKER && (!best || s.busy.size < best.busy.size)) best = s;
      }
      if (!best) return;
      const job = this.queue.shift()!;
      job.started = true;
      const id = this.nextId++;
      best.busy.set(id, job);
      best.worker.ref();
      const msg: WorkerRequest = { id, job: this.withCache(job.spec) };
      best.worker.postMessage(msg);
    }
  }

  private spawn(): Slot {
    const worker = startWorker();
    const slot: Slot = { worker, busy: new Map() };
    worker.unref(); // idle workers do not keep the process alive; ref'd while a job runs
    worker.on('message', (m: WorkerReply) => {
      const job = slot.busy.get(m.id);
      slot.busy.delete(m.id);
      if (slot.busy.size === 0) worker.unref();
      if ('decoded' in m) this.remember(m.decoded);
      if (job) {
        if ('error' in m) job.reject(new Error(m.error));
        else job.resolve(this.toBatch(job, m));
      }
      this.pump();
    });
    const fail = (err: Error): void => {
      if (this.slots.indexOf(slot) < 0) return; // already handled
      for (const j of slot.busy.values()) j.reject(err);
      slot.busy.clear();
      const k = this.slots.indexOf(slot);
      if (k < 0 || this.closed) return;
      if (this.respawns < 3 * this.workers) {
        // replace the dead worker so that later steps still run
        this.respawns++;
        this.slots[k] = this.spawn();
        this.pump();
      } else {
        // keep failing instead of respawning forever
        this.slots.splice(k, 1);
        if (this.slots.length === 0) {
          for (const j of this.queue) j.reject(err);
          this.queue = [];
        }
        this.pump();
      }
    };
    worker.on('error', (e) => fail(new Error(`PairedLoader: worker failed: ${e.message}`, { cause: e })));
    worker.on('exit', (code) => {
      if (!this.closed && slot.busy.size) fail(new Error(`PairedLoader: worker exited with code ${code}`));
    });
    return slot;
  }
}

/**
 * Starts paired-worker next to this module: the compiled .js under plain node, or, when this module
 * is the .ts source (run under tsx), the .ts source through a tiny bootstrap that registers tsx's
 * ESM hooks inside the worker first. (`execArgv: ['--import', 'tsx']` is not enough on Node 20:
 * loader hooks from --import are not applied to a worker's own entry module there, so it fails
 * with "Unknown file extension .ts".)
 */
function startWorker(): Worker {
  const workerData = { kind: WORKER_KIND };
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./paired-worker.js', import.meta.url), { workerData });
  }
  let api: string;
  try {
    api = import.meta.resolve('tsx/esm/api');
  } catch {
    api = 'tsx/esm/api';
  }
  const entry = new URL('./paired-worker.ts', import.meta.url).href;
  const code =
    `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })` +
    `.catch((e) => { setImmediate(() => { throw e; }); });`;
  return new Worker(code, { eval: true, workerData });
}

/**
 * Whole image pairs for validation, CHW RGB 0..1, in listPairs order. `limit`: the first that many
 * pairs; `maxSide`: centre-crop each image to at most maxSide x maxSide.
 */
export async function loadPairs(
  dir: string,
  o: { limit?: number; maxSide?: number } = {},
): Promise<{ name: string; blurry: Float32Array; sharp: Float32Array; width: number; height: number }[]> {
  let names = listPairs(dir);
  if (o.limit !== undefined) names = names.slice(0, Math.max(0, o.limit));
  if (o.maxSide !== undefined) checkInt(o.maxSide, 'loadPairs maxSide', 1);
  const out: { name: string; blurry: Float32Array; sharp: Float32Array; width: number; height: number }[] = new Array(
    names.length,
  );
  const CONCURRENCY = 4;
  let next = 0;
  const work = async (): Promise<void> => {
    while (next < names.length) {
      const k = next++;
      const name = names[k]!;
      const bp = join(dir, 'input', name);
      const sp = join(dir, 'target', name);
      const [b, s] = await Promise.all([decodeRGB(bp, o.maxSide), decodeRGB(sp, o.maxSide)]);
      if (b.width !== s.width || b.height !== s.height) {
        throw new Error(`paired: size mismatch for "${name}": ${bp} is ${b.width}x${b.height} but ${sp} is ${s.width}x${s.height}`);
      }
      out[k] = { name, blurry: b.data, sharp: s.data, width: b.width, height: b.height };
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, names.length) }, work));
  return out;
}
