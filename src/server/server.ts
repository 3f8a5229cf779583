/**
 * `msdi serve`: the HTTP API and the web page, on node:http alone.
 *
 *   POST /api/deblur        image (raw body, or multipart field "image")      -> PNG
 *   POST /api/reblur        multipart "sharp", "blurry", "level" (0..2)        -> PNG
 *   POST /api/degradation   image (raw body, or multipart field "image")      -> PNG (the map)
 *   GET  /api/health        -> { ok, queue, weights, limits }
 *   GET  /api/results/:id   -> PNG of a finished progress-streaming request
 *   GET  /                  -> the web page (dist/web)
 *
 * Every POST is a job in one queue: one model run at a time, the others wait. A POST sent with
 * `Accept: text/event-stream` is answered at once with Server-Sent Events instead of the
 * image: `queued` {ahead} (whenever its place changes), `running`, `progress` {done, total}
 * (tiles), then `done` {result} (the image is at that URL for a while) or `error` {status, error}. A client that disconnects
 * before its job ends cancels it: a waiting job leaves the queue, a running deblur stops at
 * the next batch of tiles.
 *
 * Errors are JSON `{ "error": "..." }`: 400 bad fields, 404 unknown path, 405 wrong method,
 * 413 upload or image too large, 415 not an image, 503 weights missing or queue full; 403 when
 * the server listens on this machine only and the Host header names another.
 * Uploads are decoded from memory; client file names are never used.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { DEFAULT_MAX_PIXELS, encodeImageFile, readImageBuffer, type ImageFile } from '../data/image-file.js';
import { DEFAULT_WEIGHTS } from '../eval/model.js';
import { defaultOverlap } from '../eval/deblur.js';
import { HttpError, Router, sendError, sendJson } from './http.js';
import { Job, JobQueue } from './jobs.js';
import { ModelThread } from './models.js';
import { ResultStore } from './results.js';
import { serveStatic, STATIC_PATHS, WEB_DIR } from './static.js';
import { checkImage, declaredLength, imageField, imageStatus, readUpload, tooLarge, type Upload, type UploadLimits } from './uploads.js';
import type { ModelTask } from './model-worker.js';
import type { Amp } from '../engine/index.js';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8080;
export const DEFAULT_MAX_UPLOAD_BYTES = 50 * 2 ** 20;
export const DEFAULT_MAX_WAITING = 16;

export interface ServerOptions {
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (this machine only). */
  host?: string;
  /** Deblurring weights (deblur, degradation map); default weights/msdi-deblur.safetensors. */
  weights?: string;
  /** Joint MSDI2E weights (blur transfer); default weights/msdi-joint.safetensors. */
  jointWeights?: string;
  /** Largest request body (default 50 MB). */
  maxUploadBytes?: number;
  /** Largest image in pixels (default 100 megapixels). */
  maxPixels?: number;
  /** Jobs that may wait behind the running one (default 16); more get 503. */
  maxWaiting?: number;
  /** Deblur tile size and overlap (default 256 and 32). */
  tile?: number;
  overlap?: number;
  /** Mixed precision for deblurring and blur transfer ('bf16': faster on CPUs with AVX-512 BF16; default 'off'). */
  amp?: Amp;
  /** How long finished images of progress-streaming requests stay downloadable (default 15 min) and their total size (default 512 MB). */
  resultTtlMs?: number;
  maxResultBytes?: number;
  /** The bundled page (default dist/web). */
  webDir?: string;
  /** Log one line per request to stderr. */
  log?: boolean;
}

type Kind = ModelTask['kind'];

/** Host headers that name this machine. */
const LOCAL_HOST = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i;

interface Spec {
  kind: Kind;
  weights: string;
  images: { buf: Buffer; label: string }[];
  level?: number;
  overlay?: number;
}

export interface MsdiServer {
  readonly server: Server;
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly queue: JobQueue<Spec, Buffer>;
  close(): Promise<void>;
}

/** A number field from the multipart body or the query string, within [min, max]. */
function numberField(up: Upload, query: URLSearchParams, name: string, min: number, max: number, fallback: number): number {
  const raw = up.fields.get(name) ?? query.get(name);
  if (raw === null || raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new HttpError(400, `expected a number from ${min} to ${max} for ${name}, got ${JSON.stringify(raw.slice(0, 40))}`);
  }
  return n;
}

export async function startServer(o: ServerOptions = {}): Promise<MsdiServer> {
  const host = o.host ?? DEFAULT_HOST;
  const weights = { deblur: o.weights ?? DEFAULT_WEIGHTS.deblur, joint: o.jointWeights ?? DEFAULT_WEIGHTS.joint };
  const limits: UploadLimits = { maxBytes: o.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES, maxPixels: o.maxPixels ?? DEFAULT_MAX_PIXELS };
  const tile = o.tile ?? 256;
  const overlap = o.overlap ?? defaultOverlap(tile);
  const webDir = o.webDir ?? WEB_DIR;
  const thread = new ModelThread();
  const results = new ResultStore(o.resultTtlMs ?? 15 * 60_000, o.maxResultBytes ?? 512 * 2 ** 20);

  /** Runs one job: decode (in the queue, so that only one decoded image is held at a time), model, PNG. */
  const runJob = async (job: Job<Spec, Buffer>): Promise<Buffer> => {
    const { spec } = job;
    const files: ImageFile[] = [];
    for (const { buf, label } of spec.images) {
      try {
        files.push(await readImageBuffer(buf, { label, maxPixels: limits.maxPixels }));
      } catch (e) {
        throw imageStatus(e);
      }
      job.signal.throwIfAborted();
    }
    spec.images.length = 0; // the uploaded bytes are no longer needed
    const rgb = await thread.run(
      { kind: spec.kind, weights: spec.weights, images: files.map((f) => f.rgb), level: spec.level, overlay: spec.overlay, tile, overlap, amp: o.amp },
      { signal: job.signal, onProgress: (d, t) => job.progress(d, t) },
    );
    const out: ImageFile = spec.kind === 'degradation' ? { rgb, alpha: null, bitDepth: 8, grey: false } : { ...files[0], rgb };
    return encodeImageFile(out, 'png');
  };
  const queue = new JobQueue<Spec, Buffer>(runJob, o.maxWaiting ?? DEFAULT_MAX_WAITING);

  const needWeights = (which: 'deblur' | 'joint'): string => {
    const file = weights[which];
    if (existsSync(file)) return file;
    const what = which === 'deblur' ? 'deblurring weights' : 'joint (blur transfer) weights';
    const flag = which === 'deblur' ? '--weights' : '--joint-weights';
    throw new HttpError(503, `no ${what}: ${file} is missing (the bundled weights may still be training); start the server with ${flag} FILE`);
  };

  /** POST /api/<kind>: checks, queues, then answers with the PNG or with an event stream. */
  const submit = (kind: Kind) => async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const file = needWeights(kind === 'reblur' ? 'joint' : 'deblur');
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const expected = kind === 'reblur' ? ['sharp', 'blurry'] : ['image'];
    const up = await readUpload(req, limits, expected);
    const images = expected.map((name) => ({ buf: imageField(up, name, expected), label: kind === 'reblur' ? name : 'upload' }));
    for (const im of images) await checkImage(im.buf, im.label, limits.maxPixels);
    const spec: Spec = { kind, weights: file, images };
    if (kind === 'reblur') spec.level = numberField(up, query, 'level', 0, 2, 1);
    if (kind === 'degradation') spec.overlay = numberField(up, query, 'overlay', 0, 1, 1);
    up.images.clear();

    // The response's 'close' fires once: a client gone while the upload was read and checked
    // has already closed it, so it is looked at here as well as listened for.
    if (res.destroyed || req.socket.destroyed) return;
    const job = queue.submit(spec);
    res.on('close', () => {
      if (!res.writableFinished) queue.cancel(job, 'the client disconnected');
    });
    if ((req.headers.accept ?? '').includes('text/event-stream')) return streamJob(job, res, kind);
    try {
      const png = await job.finished;
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length, 'cache-control': 'no-store', 'x-msdi-job': job.id });
      res.end(png);
    } catch (e) {
      if (!res.destroyed) sendError(res, e);
    }
  };

  const streamJob = (job: Job<Spec, Buffer>, res: ServerResponse, kind: Kind): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    const send = (event: string, data: unknown) => {
      if (!res.destroyed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    // The first event always gives the place (0: running already).
    send('queued', { id: job.id, ahead: job.ahead });
    let last = job.state === 'queued' ? `q${job.ahead}` : '';
    const update = () => {
      if (job.state === 'queued') {
        const key = `q${job.ahead}`;
        if (key !== last) send('queued', { id: job.id, ahead: job.ahead });
        last = key;
      } else if (job.state === 'running') {
        const key = `p${job.done}/${job.total}`;
        if (key !== last) {
          if (job.total === 0) send('running', { id: job.id });
          else send('progress', { id: job.id, done: job.done, total: job.total });
        }
        last = key;
      }
    };
    update();
    job.on('update', update);
    const heartbeat = setInterval(() => res.destroyed || res.write(': keep-alive\n\n'), 15_000);
    job.finished.then(
      (png) => {
        const id = results.put(png, `msdi-${kind}.png`);
        send('done', { id: job.id, result: `/api/results/${id}`, bytes: png.length });
      },
      (e) => {
        const status = e instanceof HttpError ? e.status : 500;
        send('error', { id: job.id, status, error: e instanceof Error ? e.message.split('\n')[0] : String(e) });
      },
    ).finally(() => {
      clearInterval(heartbeat);
      job.off('update', update);
      res.end();
    });
  };

  const router = new Router()
    .on('POST', '/api/deblur', submit('deblur'))
    .on('POST', '/api/reblur', submit('reblur'))
    .on('POST', '/api/degradation', submit('degradation'))
    .on('GET', '/api/health', (_req, res) => {
      const describe = (file: string) => ({ file, present: existsSync(file), loaded: thread.loaded.get(file) ?? null });
      sendJson(res, 200, {
        ok: true,
        queue: queue.stats(),
        weights: { deblur: describe(weights.deblur), joint: describe(weights.joint) },
        limits: { maxUploadBytes: limits.maxBytes, maxPixels: limits.maxPixels, maxWaiting: queue.maxWaiting },
        results: results.size,
      });
    })
    .on('GET', '/api/results/:id', (_req, res, { id }) => {
      const r = results.get(id);
      if (!r) throw new HttpError(404, 'no such result (results are kept for a limited time)');
      res.writeHead(200, {
        'content-type': 'image/png', 'content-length': r.png.length, 'cache-control': 'no-store',
        'content-disposition': `inline; filename="${r.name}"`,
      });
      res.end(res.req.method === 'HEAD' ? undefined : r.png);
    });
  for (const p of STATIC_PATHS) router.on('GET', p, (req, res) => serveStatic(new URL(req.url ?? '/', 'http://x').pathname, res, webDir));

  const loopbackOnly = /^(127\.|::1$|localhost$)/i.test(host);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const t0 = Date.now();
    if (o.log) res.on('finish', () => console.error(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - t0} ms`));
    try {
      // Listening on this machine only: a page elsewhere that points its own name at 127.0.0.1
      // (DNS rebinding) must not reach the API, so the Host header has to name this machine.
      if (loopbackOnly && !LOCAL_HOST.test(req.headers.host ?? '')) {
        throw new HttpError(403, `this server answers requests addressed to localhost or 127.0.0.1 only, not ${JSON.stringify(req.headers.host ?? '')}`);
      }
      const { pathname } = new URL(req.url ?? '/', 'http://x');
      const { handler, params } = router.match(req.method ?? 'GET', pathname);
      await handler(req, res, params);
    } catch (e) {
      if (!(e instanceof HttpError) && o.log) console.error(e);
      if (!res.destroyed) sendError(res, e);
      req.resume(); // a body nobody read is thrown away, so the connection can be reused
    }
  };

  const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => void handle(req, res));
  // `Expect: 100-continue` (curl sends it for large bodies): refuse an over-limit body before it is sent.
  server.on('checkContinue', (req, res) => {
    const n = declaredLength(req);
    if (n !== null && n > limits.maxBytes) {
      const e = tooLarge(limits.maxBytes, n);
      return sendJson(res, 413, { error: e.message }, { connection: 'close' });
    }
    res.writeContinue();
    void handle(req, res);
  });
  server.on('clientError', (_e, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? DEFAULT_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server, queue, host: addr.address, port: addr.port, url: `http://${shownHost}:${addr.port}/`,
    async close() {
      queue.cancelAll('the server is shutting down');
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await thread.close();
    },
  };
}
