/**
 * The job queue: one model run at a time, first come first served, a bounded number waiting.
 * Every job reports its place (`ahead`: jobs before it, the running one included) and its
 * progress (tiles done / total) through 'update' events. Cancelling a waiting job removes it;
 * cancelling the running one aborts its signal, which the runner honours between tiles.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { HttpError } from './http.js';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export class Job<S = unknown, R = unknown> extends EventEmitter<{ update: [] }> {
  readonly id = randomUUID();
  state: JobState = 'queued';
  /** Jobs before this one in the queue, the running one included; 0 once it runs. */
  ahead = 0;
  done = 0;
  total = 0;
  error: unknown = null;
  readonly controller = new AbortController();
  readonly finished: Promise<R>;
  #settle!: { resolve: (r: R) => void; reject: (e: unknown) => void };

  constructor(readonly spec: S) {
    super();
    this.finished = new Promise<R>((resolve, reject) => (this.#settle = { resolve, reject }));
    this.finished.catch(() => {}); // read by whoever waits on it; never an unhandled rejection
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Progress from the runner. */
  progress(done: number, total: number): void {
    this.done = done;
    this.total = total;
    this.emit('update');
  }

  /** @internal */
  settle(state: 'done' | 'failed' | 'cancelled', value: R | unknown): void {
    this.state = state;
    if (state === 'done') this.#settle.resolve(value as R);
    else {
      this.error = value;
      this.#settle.reject(value);
    }
    this.emit('update');
  }
}

export interface QueueStats {
  running: number;
  waiting: number;
  maxWaiting: number;
  done: number;
  failed: number;
  cancelled: number;
}

export class JobQueue<S, R> {
  readonly #waiting: Job<S, R>[] = [];
  #running: Job<S, R> | null = null;
  #counts = { done: 0, failed: 0, cancelled: 0 };

  constructor(private readonly run: (job: Job<S, R>) => Promise<R>, readonly maxWaiting: number) {}

  /** Queues a job; 503 when `maxWaiting` jobs already wait. */
  submit(spec: S): Job<S, R> {
    if (this.#running && this.#waiting.length >= this.maxWaiting) {
      throw new HttpError(503, `the queue is full (${this.maxWaiting} jobs waiting); try again later`, { 'retry-after': '10' });
    }
    const job = new Job<S, R>(spec);
    this.#waiting.push(job);
    job.ahead = this.#waiting.length - 1 + (this.#running ? 1 : 0);
    this.#pump();
    return job;
  }

  /** Removes a waiting job, or asks the running one to stop. Finished jobs are left alone. */
  cancel(job: Job<S, R>, reason = 'cancelled'): void {
    if (job.state === 'queued') {
      const i = this.#waiting.indexOf(job);
      if (i >= 0) this.#waiting.splice(i, 1);
      job.controller.abort(new HttpError(499, reason));
      this.#counts.cancelled++;
      job.settle('cancelled', job.signal.reason);
      this.#renumber();
    } else if (job.state === 'running') {
      job.controller.abort(new HttpError(499, reason));
    }
  }

  stats(): QueueStats {
    return { running: this.#running ? 1 : 0, waiting: this.#waiting.length, maxWaiting: this.maxWaiting, ...this.#counts };
  }

  /** Cancels every job (server shutdown). */
  cancelAll(reason: string): void {
    for (const j of [...this.#waiting]) this.cancel(j, reason);
    if (this.#running) this.cancel(this.#running, reason);
  }

  #renumber(): void {
    const base = this.#running ? 1 : 0;
    this.#waiting.forEach((j, i) => {
      if (j.ahead !== base + i) {
        j.ahead = base + i;
        j.emit('update');
      }
    });
  }

  #pump(): void {
    if (this.#running) return;
    const job = this.#waiting.shift();
    if (!job) return;
    this.#running = job;
    job.state = 'running';
    job.ahead = 0;
    job.emit('update');
    this.#renumber();
    this.run(job).then(
      (r) => {
        if (job.signal.aborted) {
          this.#counts.cancelled++;
          job.settle('cancelled', job.signal.reason);
        } else {
          this.#counts.done++;
          job.settle('done', r);
        }
      },
      (e) => {
        if (job.signal.aborted) {
          this.#counts.cancelled++;
          job.settle('cancelled', job.signal.reason);
        } else {
          this.#counts.failed++;
          job.settle('failed', e);
        }
      },
    ).finally(() => {
      this.#running = null;
      this.#pump();
    });
  }
}
