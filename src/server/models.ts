/**
 * The server's side of the model thread (model-worker.ts): starts it on first use, sends it
 * one task at a time with the images' pixels transferred (not copied), relays progress, and
 * cancels a running deblur through a shared flag. If the thread dies, the task fails with 500
 * and the next task starts a fresh thread.
 */
import { Worker } from 'node:worker_threads';
import type { RGBImage } from '../data/image-io.js';
import { HttpError } from './http.js';
import { WORKER_KIND, type ModelTask, type WorkerReply, type WorkerRequest } from './model-worker.js';

interface Pending {
  resolve: (img: RGBImage) => void;
  reject: (e: unknown) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface LoadedInfo {
  arch: string;
  wf: number;
}

export class ModelThread {
  #worker: Worker | null = null;
  readonly #cancel = new SharedArrayBuffer(4);
  #seq = 0;
  readonly #pending = new Map<number, Pending>();
  /** Weights files loaded in the thread, with what they hold. */
  readonly loaded = new Map<string, LoadedInfo>();

  run(task: ModelTask, o: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {}): Promise<RGBImage> {
    o.signal?.throwIfAborted();
    const worker = this.#start();
    const seq = ++this.#seq;
    return new Promise<RGBImage>((resolve, reject) => {
      const onAbort = () => Atomics.store(new Int32Array(this.#cancel), 0, seq);
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => o.signal?.removeEventListener('abort', onAbort);
      this.#pending.set(seq, {
        onProgress: o.onProgress,
        resolve: (img) => (done(), resolve(img)),
        reject: (e) => (done(), reject(e)),
      });
      const msg: WorkerRequest = { type: 'run', seq, task };
      worker.postMessage(msg, task.images.map((i) => i.data.buffer as ArrayBuffer));
    });
  }

  /** Frees the models and ends the thread. */
  async close(): Promise<void> {
    const w = this.#worker;
    if (!w) return;
    this.#worker = null;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.postMessage({ type: 'exit' } satisfies WorkerRequest);
    const timer = setTimeout(() => void w.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const w = startWorker({ kind: WORKER_KIND, cancel: this.#cancel });
    w.on('message', (m: WorkerReply) => {
      if (m.type === 'loaded') {
        this.loaded.set(m.weights, { arch: m.arch, wf: m.wf });
        return;
      }
      const p = this.#pending.get(m.seq);
      if (!p) return;
      if (m.type === 'progress') return p.onProgress?.(m.done, m.total);
      this.#pending.delete(m.seq);
      if (m.type === 'result') p.resolve(m.image);
      else p.reject(new HttpError(m.status, m.message));
    });
    const fail = (why: string) => {
      if (this.#worker === w) this.#worker = null;
      this.loaded.clear();
      for (const [seq, p] of this.#pending) {
        this.#pending.delete(seq);
        p.reject(new HttpError(500, `the model thread stopped (${why})`));
      }
    };
    w.on('error', (e) => fail(e.message.split('\n')[0]));
    w.on('exit', (code) => fail(`exit code ${code}`));
    // The server's event loop must not be kept alive by an idle model thread.
    w.unref();
    this.#worker = w;
    return w;
  }
}

/**
 * Starts model-worker next to this module: the compiled .js under plain node, or, when this
 * module is the .ts source (tests, under tsx), the .ts source through a bootstrap that registers
 * tsx's hooks inside the worker first (as src/data/paired.ts does, and for the same reason).
 */
function startWorker(workerData: unknown): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./model-worker.js', import.meta.url), { workerData });
  let api: string;
  try {
    api = import.meta.resolve('tsx/esm/api');
  } catch {
    api = 'tsx/esm/api';
  }
  const entry = new URL('./model-worker.ts', import.meta.url).href;
  const code =
    `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })` +
    `.catch((e) => { setImmediate(() => { throw e; }); });`;
  return new Worker(code, { eval: true, workerData });
}
