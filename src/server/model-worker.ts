/**
 * The server's model thread (a worker_threads entry point): it holds the loaded models (each
 * weights file loaded once, on first use) and runs one task at a time, so the server's own
 * thread keeps answering (health, progress, uploads) while a network runs.
 *
 * A deblur stops between tiles when the main thread writes the task's sequence number into
 * the shared cancel flag: the flag is read after every batch and aborts the deblur's signal.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadModel, type LoadedModel } from '../eval/model.js';
import { deblurImage } from '../eval/deblur.js';
import { reblur, reblurringModel } from '../eval/reblur.js';
import { degradationMap, representationModel } from '../eval/degradation-map.js';
import type { RGBImage } from '../data/image-io.js';
import type { Amp } from '../engine/index.js';

export const WORKER_KIND = 'msdi-model-worker';

export interface ModelTask {
  kind: 'deblur' | 'reblur' | 'degradation';
  /** The weights file (a path chosen by the server's operator, never by a client). */
  weights: string;
  /** deblur, degradation: [image]; reblur: [sharp, blurry]. */
  images: RGBImage[];
  level?: number;
  overlay?: number;
  tile?: number;
  overlap?: number;
  /** mixed precision for deblurring and blur transfer (DeblurOptions.amp) */
  amp?: Amp;
}

export type WorkerRequest = { type: 'run'; seq: number; task: ModelTask } | { type: 'exit' };

export type WorkerReply =
  | { type: 'loaded'; weights: string; arch: string; wf: number }
  | { type: 'progress'; seq: number; done: number; total: number }
  | { type: 'result'; seq: number; image: RGBImage }
  | { type: 'error'; seq: number; status: number; message: string };

/** A failure that carries the HTTP status the server should answer with. */
class TaskError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const firstLine = (e: unknown): string => String(e instanceof Error ? e.message : e).split('\n')[0];

function serve(): void {
  const port = parentPort!;
  const cancel = new Int32Array((workerData as { cancel: SharedArrayBuffer }).cancel);
  const models = new Map<string, LoadedModel>();

  const model = (weights: string): LoadedModel => {
    let m = models.get(weights);
    if (!m) {
      try {
        m = loadModel(weights);
      } catch (e) {
        throw new TaskError(503, `cannot load the weights: ${firstLine(e)}`);
      }
      models.set(weights, m);
      port.postMessage({ type: 'loaded', weights, arch: m.spec.arch, wf: m.spec.wf } satisfies WorkerReply);
    }
    return m;
  };

  /** What a model cannot do (deblur-only weights asked to reblur, an ablation without representation): 503. */
  const able = <T>(check: () => T): T => {
    try {
      return check();
    } catch (e) {
      throw new TaskError(503, firstLine(e));
    }
  };

  const run = (seq: number, t: ModelTask): RGBImage => {
    const m = model(t.weights);
    const reply = (done: number, total: number) => port.postMessage({ type: 'progress', seq, done, total } satisfies WorkerReply);
    switch (t.kind) {
      case 'deblur': {
        const controller = new AbortController();
        const check = () => {
          if (Atomics.load(cancel, 0) === seq) controller.abort(new TaskError(499, 'cancelled'));
        };
        check();
        return deblurImage(m, t.images[0], {
          tile: t.tile, overlap: t.overlap, amp: t.amp, signal: controller.signal,
          onProgress: (done, total) => {
            reply(done, total);
            check();
          },
        });
      }
      case 'reblur': {
        able(() => reblurringModel(m));
        reply(0, 1);
        const out = reblur(m, t.images[0], t.images[1], { level: t.level, amp: t.amp });
        reply(1, 1);
        return out;
      }
      case 'degradation': {
        able(() => representationModel(m));
        reply(0, 1);
        const out = degradationMap(m, t.images[0], { overlay: t.overlay });
        reply(1, 1);
        return out;
      }
    }
  };

  port.on('message', (msg: WorkerRequest) => {
    if (msg.type === 'exit') {
      for (const m of models.values()) m.dispose();
      models.clear();
      port.close();
      return;
    }
    const { seq, task } = msg;
    try {
      const image = run(seq, task);
      port.postMessage({ type: 'result', seq, image } satisfies WorkerReply, [image.data.buffer as ArrayBuffer]);
    } catch (e) {
      const status = e instanceof TaskError ? e.status : 500;
      port.postMessage({ type: 'error', seq, status, message: firstLine(e) } satisfies WorkerReply);
    }
  });
}

if (!isMainThread && (workerData as { kind?: string } | null)?.kind === WORKER_KIND) serve();
