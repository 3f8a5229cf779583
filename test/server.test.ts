/**
 * `msdi serve` (src/server): binding, health, the error statuses (404, 405, 413, 415, 400,
 * 503) with JSON bodies, the three model endpoints, the progress event stream, the queue
 * (places, cancelling a waiting job and a running deblur by disconnecting), and a load test:
 * 200 requests, 8 at a time, good and bad uploads mixed; every good one succeeds, every bad
 * one gets its 4xx, the server stays up and its resident memory stays bounded.
 *
 * The models are random-init wf 4 networks (deblur: msdi_net; blur transfer: MSDI2E) and the
 * images are small, with 32 x 32 deblur tiles, so the whole file runs in well under a minute.
 * MSDI_TEST_SCALE scales the load test (1: 200 requests; 0.25 for a quick run, 5 for 1000).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

import { manualSeed } from '../src/engine/index.js';
import { MsdiNet } from '../src/models/msdi-net.js';
import { MSDI2E } from '../src/models/msdi2e.js';
import { saveWeights } from '../src/nn/state-dict.js';
import { startServer, type MsdiServer } from '../src/server/server.js';
import { serveOptions } from '../src/cli/commands/serve.js';
import { DEFAULT_WEIGHTS } from '../src/eval/model.js';

const MAX_UPLOAD = 256 * 1024;
const MAX_PIXELS = 1_000_000;
const SCALE = Number(process.env.MSDI_TEST_SCALE ?? 1) || 1;

let dir = '';
let weights = '';
let joint = '';
let srv: MsdiServer;

/** Bytes as fetch and Blob take them (a Buffer may view a shared pool). */
type Bytes = Uint8Array<ArrayBuffer>;
const bytes = (b: Uint8Array): Bytes => new Uint8Array(b);

/** A small test picture as PNG: gradients and a few discs, deterministic. */
async function png(width: number, height: number, o: { seed?: number; alpha?: boolean } = {}): Promise<Bytes> {
  const ch = o.alpha ? 4 : 3;
  const px = Buffer.alloc(width * height * ch);
  let s = (o.seed ?? 1) >>> 0;
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const discs = Array.from({ length: 4 }, () => ({ x: rnd() * width, y: rnd() * height, r: 3 + rnd() * width / 3, c: [rnd(), rnd(), rnd()].map((v) => v * 255) }));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * ch;
      const d = discs.find((q) => (x - q.x) ** 2 + (y - q.y) ** 2 < q.r * q.r);
      px[i] = d ? d.c[0] : (x * 255) / width;
      px[i + 1] = d ? d.c[1] : (y * 255) / height;
      px[i + 2] = d ? d.c[2] : 128;
      if (o.alpha) px[i + 3] = 255 - ((x * 200) / width);
    }
  }
  return bytes(await sharp(px, { raw: { width, height, channels: ch } }).png().toBuffer());
}

function form(parts: Record<string, Bytes | string>): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(parts)) {
    if (typeof v === 'string') f.append(k, v);
    else f.append(k, new Blob([v], { type: 'image/png' }), `../../etc/${k}.png`); // a hostile name: must be ignored
  }
  return f;
}

const url = (path: string): string => new URL(path, srv.url).href;

async function post(path: string, body: BodyInit, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url(path), { method: 'POST', body, headers });
}

async function expectError(res: Response, status: number, pattern?: RegExp): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${text.slice(0, 200)}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as { error: string };
  assert.equal(typeof body.error, 'string');
  if (pattern) assert.match(body.error, pattern);
  return body.error;
}

async function pngSize(res: Response): Promise<{ width: number; height: number; channels: number }> {
  const text = res.status === 200 ? '' : await res.clone().text();
  assert.equal(res.status, 200, text.slice(0, 300));
  assert.equal(res.headers.get('content-type'), 'image/png');
  const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
  assert.equal(meta.format, 'png');
  return { width: meta.width!, height: meta.height!, channels: meta.channels! };
}

interface Sse {
  event: string;
  data: Record<string, unknown>;
}

/** Reads an event stream, calling `each` for every event, until it ends; returns all events. */
async function readEvents(res: Response, each?: (e: Sse) => void): Promise<Sse[]> {
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: Sse[] = [];
  let buf = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const ev = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!ev || !data) continue;
        const e = { event: ev, data: JSON.parse(data) as Record<string, unknown> };
        events.push(e);
        each?.(e);
      }
    }
  } catch (e) {
    if ((e as Error).name !== 'AbortError') throw e;
  }
  return events;
}

async function health(s = srv): Promise<{ ok: boolean; queue: Record<string, number>; weights: Record<string, { present: boolean; loaded: unknown }> }> {
  const res = await fetch(new URL('api/health', s.url));
  assert.equal(res.status, 200);
  return res.json() as never;
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'msdi-server-test-'));
  weights = join(dir, 'deblur-w4.safetensors');
  joint = join(dir, 'joint-w4.safetensors');
  manualSeed(11);
  const net = new MsdiNet({ wf: 4, version: 1 });
  saveWeights(net, weights);
  net.dispose();
  const j = new MSDI2E(4, 4, true);
  saveWeights(j, joint);
  j.dispose();
  srv = await startServer({
    port: 0, weights, jointWeights: joint, maxUploadBytes: MAX_UPLOAD, maxPixels: MAX_PIXELS, tile: 32, overlap: 8,
  });
});

after(async () => {
  await srv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('binding and health', () => {
  test('listens on 127.0.0.1 by default (the command line and the server)', async () => {
    const o = serveOptions([]);
    assert.equal(o.host, '127.0.0.1');
    assert.equal(o.port, 8080);
    assert.equal(srv.host, '127.0.0.1');
    assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(serveOptions(['--host', '0.0.0.0', '--port', '9000']).host, '0.0.0.0');
    assert.throws(() => serveOptions(['--port', 'x']), /--port/);
  });

  test('on 127.0.0.1, requests that name another host are refused (DNS rebinding)', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(url('/api/health'), { headers: { host: 'evil.example:8080' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 403);
    assert.equal((await fetch(url('/api/health').replace('127.0.0.1', 'localhost'))).status, 200);
  });

  test('GET /api/health: ok, queue, weights, limits', async () => {
    const h = await health();
    assert.equal(h.ok, true);
    assert.deepEqual(Object.keys(h.queue).sort(), ['cancelled', 'done', 'failed', 'maxWaiting', 'running', 'waiting']);
    assert.equal(h.weights.deblur.present, true);
    assert.equal(h.weights.joint.present, true);
    assert.deepEqual((h as unknown as { limits: unknown }).limits, { maxUploadBytes: MAX_UPLOAD, maxPixels: MAX_PIXELS, maxWaiting: 16 });
  });
});

describe('errors are JSON with the right status', () => {
  test('404 unknown path, 405 wrong method (with Allow)', async () => {
    await expectError(await fetch(url('/api/nope')), 404, /no such path/);
    await expectError(await post('/api/nope', 'x'), 404);
    const r = await fetch(url('/api/deblur'));
    assert.equal(r.headers.get('allow'), 'POST');
    await expectError(r, 405, /GET is not allowed/);
    await expectError(await fetch(url('/api/health'), { method: 'DELETE' }), 405);
    await expectError(await fetch(url('/api/reblur'), { method: 'PUT', body: 'x' }), 405);
  });

  test('413 for an upload over the size limit, declared or streamed', async () => {
    const big = bytes(Buffer.alloc(MAX_UPLOAD + 1, 7));
    await expectError(await post('/api/deblur', big), 413, /above the limit of 0\.3 MB/);
    // Without Content-Length (chunked): the limit is found while reading.
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(MAX_UPLOAD / 2));
        c.close();
      },
    });
    await expectError(await fetch(url('/api/deblur'), { method: 'POST', body: stream, duplex: 'half' } as RequestInit), 413);
    assert.equal((await health()).ok, true);
  });

  test('413 for an image above the pixel limit, from its header (nothing decoded)', async () => {
    const bomb = bytes(await sharp({ create: { width: 2000, height: 1000, channels: 3, background: '#808080' } }).png().toBuffer());
    assert.ok(bomb.length < MAX_UPLOAD);
    await expectError(await post('/api/deblur', bomb), 413, /^upload: image is 2000 x 1000 = 2 megapixels, above the limit of 1/);
    await expectError(await post('/api/reblur', form({ sharp: bomb, blurry: await png(20, 20) })), 413, /^sharp: /);
  });

  test('415 for what is not an image (raw, multipart, truncated)', async () => {
    await expectError(await post('/api/deblur', 'definitely not an image', { 'content-type': 'image/png' }), 415, /^upload: not an image/);
    await expectError(await post('/api/degradation', form({ image: bytes(Buffer.from('GIF89a?')) })), 415);
    await expectError(await post('/api/deblur', new Uint8Array(0)), 415, /empty/);
    const good = await png(64, 64, { seed: 5 });
    await expectError(await post('/api/deblur', good.subarray(0, Math.floor(good.length / 2))), 415, /truncated|corrupt|decode/);
  });

  test('400 for missing fields and bad numbers', async () => {
    const img = await png(20, 16);
    await expectError(await post('/api/reblur', form({ sharp: img })), 400, /"blurry"/);
    await expectError(await post('/api/reblur', form({ sharp: img, blurry: img, level: '2.5' })), 400, /0 to 2 for level/);
    await expectError(await post('/api/reblur', form({ sharp: img, blurry: img, level: 'abc' })), 400, /level/);
    await expectError(await post('/api/degradation?overlay=7', img), 400, /overlay/);
    await expectError(await post('/api/deblur', 'x', { 'content-type': 'multipart/form-data' }), 400, /boundary/);
  });

  test('503 naming the file when the weights cannot be loaded', async () => {
    const broken = join(dir, 'broken.safetensors');
    writeFileSync(broken, 'not weights at all');
    const bad = await startServer({ port: 0, weights: broken });
    try {
      await expectError(await fetch(new URL('api/deblur', bad.url), { method: 'POST', body: await png(20, 16) }), 503, /cannot load the weights: .*broken\.safetensors/);
      assert.equal((await health(bad)).ok, true);
    } finally {
      await bad.close();
    }
  });

  test('503 with a clear message when the weights are absent', async () => {
    const none = await startServer({ port: 0, weights: join(dir, 'absent-deblur.safetensors'), jointWeights: join(dir, 'absent-joint.safetensors') });
    try {
      const h = await health(none);
      assert.equal(h.weights.deblur.present, false);
      assert.equal(h.weights.joint.present, false);
      const img = await png(20, 16);
      const at = (p: string) => new URL(p, none.url);
      await expectError(await fetch(at('api/deblur'), { method: 'POST', body: img }), 503, /no deblurring weights: .*absent-deblur\.safetensors is missing.*--weights/);
      await expectError(await fetch(at('api/degradation'), { method: 'POST', body: img }), 503, /--weights/);
      await expectError(await fetch(at('api/reblur'), { method: 'POST', body: form({ sharp: img, blurry: img }) }), 503, /joint .*--joint-weights/);
    } finally {
      await none.close();
    }
  });
});

describe('the model endpoints', () => {
  test('POST /api/deblur: raw body or multipart -> PNG of the same size; alpha kept', async () => {
    const img = await png(40, 30, { seed: 2 });
    assert.deepEqual(await pngSize(await post('/api/deblur', img, { 'content-type': 'image/png' })), { width: 40, height: 30, channels: 3 });
    assert.deepEqual(await pngSize(await post('/api/deblur', form({ image: img }))), { width: 40, height: 30, channels: 3 });
    const rgba = await png(24, 20, { alpha: true });
    assert.deepEqual(await pngSize(await post('/api/deblur', rgba)), { width: 24, height: 20, channels: 4 });
    const h = await health();
    assert.deepEqual(h.weights.deblur.loaded, { arch: 'msdi_net', wf: 4 });
  });

  test('POST /api/reblur: sharp + blurry + level -> PNG of the sharp image\'s size', async () => {
    const sharpImg = await png(48, 32, { seed: 3 });
    const blurry = await png(30, 30, { seed: 4 });
    assert.deepEqual(await pngSize(await post('/api/reblur', form({ sharp: sharpImg, blurry, level: '1.5' }))), { width: 48, height: 32, channels: 3 });
    assert.deepEqual(await pngSize(await post('/api/reblur?level=0', form({ sharp: sharpImg, blurry }))), { width: 48, height: 32, channels: 3 });
  });

  // Two servers in one process, one in bf16, each with its own model thread running at the same
  // time as the other's: what one thread sets (autocast, grad mode) must not reach the other, so
  // each answers with the very bytes it gives alone, and the two differ by bf16's rounding only.
  test('a server started with amp bf16 deblurs and reblurs in bf16, unaffected by a float32 server running beside it', async (t) => {
    // the bundled weights: a random network amplifies rounding, a trained one does not
    const trained = { port: 0, weights: DEFAULT_WEIGHTS.deblur, jointWeights: DEFAULT_WEIGHTS.joint, tile: 32, overlap: 8 };
    const [plain, amp] = await Promise.all([startServer(trained), startServer({ ...trained, amp: 'bf16' })]);
    try {
      const img = await png(48, 40, { seed: 5 });
      const sharpImg = await png(32, 32, { seed: 6 });
      const cases: Array<[string, () => BodyInit]> = [['api/deblur', () => img], ['api/reblur', () => form({ sharp: sharpImg, blurry: img })]];
      const meanDiff = (a: Buffer, b: Buffer) => {
        let d = 0;
        for (let i = 0; i < a.length; i++) d += Math.abs(a[i]! - b[i]!);
        return d / a.length;
      };
      for (const [path, body] of cases) {
        const get = async (server: MsdiServer) => {
          const res = await fetch(new URL(path, server.url), { method: 'POST', body: body() });
          assert.equal(res.status, 200);
          return sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer();
        };
        for (let round = 0; round < 3; round++) {
          const [a, b] = await Promise.all([get(plain), get(amp)]);
          const [a1, b1] = [await get(plain), await get(amp)];
          assert.ok(a.equals(a1), `${path}: the float32 server's output changed while the bf16 one ran (${meanDiff(a, a1)} levels)`);
          assert.ok(b.equals(b1), `${path}: the bf16 server's output changed while the float32 one ran (${meanDiff(b, b1)} levels)`);
          const diff = meanDiff(a, b);
          if (round === 0) t.diagnostic(`${path}: bf16 vs float32, mean difference ${diff.toFixed(3)} levels`);
          assert.ok(!a.equals(b) && diff < 0.5, `${path}: mean difference ${diff} levels`);
        }
      }
    } finally {
      await Promise.all([plain.close(), amp.close()]);
    }
    assert.equal(serveOptions(['--amp', 'bf16']).amp, 'bf16');
    assert.throws(() => serveOptions(['--amp', 'fp16']), /--amp: expected off or bf16/);
  });

  test('POST /api/degradation -> the map as a PNG of the image\'s size', async () => {
    assert.deepEqual(await pngSize(await post('/api/degradation', await png(36, 28))), { width: 36, height: 28, channels: 3 });
  });

  test('Accept: text/event-stream -> queued, progress (tiles), done with a result URL', async () => {
    const img = await png(64, 48, { seed: 6 });
    const res = await post('/api/deblur', img, { accept: 'text/event-stream' });
    const events = await readEvents(res);
    const names = events.map((e) => e.event);
    assert.equal(names[0], 'queued');
    assert.equal(names.at(-1), 'done');
    const progress = events.filter((e) => e.event === 'progress');
    assert.ok(progress.length >= 1);
    const total = progress[0].data.total as number;
    assert.equal(total, 3 * 2, 'tiles of 32 with overlap 8 on 64 x 48');
    assert.equal(progress.at(-1)!.data.done, total);
    const result = events.at(-1)!.data.result as string;
    assert.match(result, /^\/api\/results\/[0-9a-f-]{36}$/);
    assert.deepEqual(await pngSize(await fetch(url(result))), { width: 64, height: 48, channels: 3 });
    await expectError(await fetch(url('/api/results/00000000-0000-0000-0000-000000000000')), 404);
    await expectError(await fetch(url('/api/results/%ZZ')), 404); // a malformed %-escape: not a 500
  });
});

describe('the queue', () => {
  test('one run at a time; places are reported; a disconnect cancels a waiting job and stops a running deblur', { timeout: 120_000 }, async () => {
    const before = (await health()).queue;
    // A: 384 x 384 in 32-px tiles (256 tiles): many seconds of work if it were not stopped.
    const a = new AbortController();
    const resA = await fetch(url('/api/deblur'), { method: 'POST', body: await png(384, 384, { seed: 7 }), headers: { accept: 'text/event-stream' }, signal: a.signal });
    let aDone = 0;
    let aTotal = 0;
    let aProgress: () => void = () => {};
    const aStarted = new Promise<void>((r) => (aProgress = r));
    const aEvents = readEvents(resA, (e) => {
      if (e.event === 'progress') {
        aDone = e.data.done as number;
        aTotal = e.data.total as number;
        aProgress();
      }
    });
    // (If the stream ends without progress, the assertion below says what came instead.)
    await Promise.race([aStarted, aEvents.then((ev) => assert.fail(`A ended before any progress: ${JSON.stringify(ev)}`))]);
    assert.equal(aTotal, 256);

    // B waits behind A and sees its place; C (plain request) waits behind B.
    const resB = await post('/api/deblur', await png(32, 32, { seed: 8 }), { accept: 'text/event-stream' });
    let bFinished = 0;
    const bEvents = readEvents(resB, (e) => {
      if (e.event === 'done') bFinished = Date.now();
    });
    const c = new AbortController();
    const resC = fetch(url('/api/deblur'), { method: 'POST', body: await png(32, 32, { seed: 9 }), signal: c.signal }).catch((e: Error) => e);
    await until('C to wait', async () => (await health()).queue.waiting === 2);

    // Disconnecting C removes it from the queue.
    c.abort();
    assert.equal(((await resC) as Error).name, 'AbortError');
    await until('C to leave the queue', async () => (await health()).queue.waiting === 1);

    // Disconnecting A stops it between tiles: B then runs at once.
    const aborted = Date.now();
    a.abort();
    await aEvents;
    const evB = await bEvents;
    assert.deepEqual(evB[0], { event: 'queued', data: { id: evB[0].data.id, ahead: 1 } });
    assert.equal(evB.at(-1)!.event, 'done');
    assert.ok(bFinished - aborted < 8000, `B finished ${bFinished - aborted} ms after A was cancelled`);
    assert.ok(aDone < aTotal, `A stopped at ${aDone}/${aTotal}`);
    const after = (await health()).queue;
    assert.equal(after.cancelled - before.cancelled, 2);
    assert.equal(after.done - before.done, 1);
    assert.deepEqual([after.running, after.waiting], [0, 0]);
  });

  test('a full queue answers 503', { timeout: 60_000 }, async () => {
    const small = await startServer({ port: 0, weights, maxWaiting: 0, tile: 32, overlap: 8 });
    try {
      const img = await png(32, 32);
      const first = fetch(new URL('api/deblur', small.url), { method: 'POST', body: img });
      await until('the first job to run', async () => (await health(small)).queue.running === 1);
      await expectError(await fetch(new URL('api/deblur', small.url), { method: 'POST', body: img }), 503, /queue is full/);
      assert.equal((await first).status, 200);
    } finally {
      await small.close();
    }
  });
});

describe('load', () => {
  test(`${Math.round(200 * SCALE)} requests, 8 at a time, good and bad mixed: every one answered right, memory bounded`, { timeout: 600_000 }, async () => {
    const total = Math.round(200 * SCALE);
    const good = await Promise.all([png(24, 20, { seed: 21 }), png(40, 30, { seed: 22 }), png(33, 17, { seed: 23 })]);
    const tooBig = bytes(Buffer.alloc(MAX_UPLOAD + 1024, 1));
    const notImage = bytes(Buffer.from('%PDF-1.4 not an image'.repeat(50)));
    const bomb = bytes(await sharp({ create: { width: 1500, height: 1500, channels: 3, background: '#123456' } }).png().toBuffer());
    const truncated = good[1].subarray(0, good[1].length - 40);

    type Case = { name: string; send: () => Promise<Response>; status: number; check?: (r: Response) => Promise<void> };
    const cases: Case[] = [
      { name: 'deblur raw', status: 200, send: () => post('/api/deblur', good[0]), check: async (r) => assert.equal((await pngSize(r)).width, 24) },
      { name: 'deblur multipart', status: 200, send: () => post('/api/deblur', form({ image: good[1] })), check: async (r) => assert.equal((await pngSize(r)).width, 40) },
      { name: 'too large', status: 413, send: () => post('/api/deblur', tooBig) },
      { name: 'deblur events', status: 200, send: () => post('/api/deblur', good[2], { accept: 'text/event-stream' }), check: async (r) => {
        const ev = await readEvents(r);
        assert.equal(ev.at(-1)!.event, 'done', JSON.stringify(ev.at(-1)));
        assert.equal((await pngSize(await fetch(url(ev.at(-1)!.data.result as string)))).width, 33);
      } },
      { name: 'not an image', status: 415, send: () => post('/api/deblur', notImage) },
      { name: 'pixel bomb', status: 413, send: () => post('/api/degradation', bomb) },
      { name: 'wrong method', status: 405, send: () => fetch(url('/api/deblur'), { method: 'GET' }) },
      { name: 'truncated', status: 415, send: () => post('/api/deblur', truncated) },
      { name: 'unknown path', status: 404, send: () => post('/api/deblurr', good[0]) },
      { name: 'degradation', status: 200, send: () => post('/api/degradation', good[0]), check: async (r) => assert.equal((await pngSize(r)).height, 20) },
    ];
    const run = async (i: number): Promise<string> => {
      const c = cases[(i * 7) % cases.length];
      const res = await c.send();
      if (c.status === 200) await c.check!(res);
      else await expectError(res, c.status);
      return c.name;
    };

    const rss = () => process.memoryUsage().rss / 2 ** 20;
    // Warm-up: models loaded, allocator pools filled.
    for (let i = 0; i < cases.length; i++) await run(i);
    const rss0 = rss();
    const t0 = Date.now();
    const tally = new Map<string, number>();
    let next = 0;
    let peak = rss0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < total) {
        const name = await run(next++);
        tally.set(name, (tally.get(name) ?? 0) + 1);
        peak = Math.max(peak, rss());
      }
    }));
    const secs = (Date.now() - t0) / 1000;
    const h = await health();
    assert.equal(h.ok, true);
    assert.deepEqual([h.queue.running, h.queue.waiting], [0, 0]);
    const grown = rss() - rss0;
    console.log(`load: ${total} requests in ${secs.toFixed(1)} s (${(total / secs).toFixed(1)}/s), 8 at a time; ` +
      `rss ${rss0.toFixed(0)} MB after warm-up, peak ${peak.toFixed(0)} MB, end ${rss().toFixed(0)} MB; ${JSON.stringify(Object.fromEntries(tally))}`);
    assert.equal([...tally.values()].reduce((a, b) => a + b, 0), total);
    assert.ok(grown < 150, `resident memory grew by ${grown.toFixed(0)} MB`);
  });
});
