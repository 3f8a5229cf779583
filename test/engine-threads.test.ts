/**
 * The engine from several JavaScript threads (worker_threads) of one process: exclusive() lets
 * one thread at a time run a model (libtorch 1.13 corrupted a float32 run beside a bfloat16
 * autocast run, see native/msdi.cc), it is re-entrant, and a worker terminated while holding it
 * does not leave the others waiting forever.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { exclusive } from '../src/engine/index.js';

const ENGINE = new URL('../src/engine/index.ts', import.meta.url).href;
const TSX = import.meta.resolve('tsx/esm/api');

/**
 * The source of a worker (for `new Worker(src, { eval: true })`) that loads the engine through
 * tsx, as the server's model threads do, and runs `body` (module code given `exclusive` and
 * `shared`, an Int32Array over the SharedArrayBuffer passed as workerData); then posts 'done'.
 */
function workerSource(body: string): string {
  return `(async () => {
    const { parentPort, workerData } = await import('node:worker_threads');
    (await import(${JSON.stringify(TSX)})).register();
    const { exclusive } = await import(${JSON.stringify(ENGINE)});
    const shared = new Int32Array(workerData);
    ${body}
    parentPort.postMessage('done');
  })().catch((e) => { setImmediate(() => { throw e; }); });`;
}

const worker = (body: string, sab: SharedArrayBuffer) => new Worker(workerSource(body), { eval: true, workerData: sab });

const finished = (w: Worker) =>
  new Promise<void>((resolve, reject) => {
    w.on('message', (m) => m === 'done' && resolve());
    w.on('error', reject);
  });

test('exclusive(): threads run one at a time, and the section may nest', async () => {
  // shared[0]: threads inside now, shared[1]: most ever inside at once, shared[2]: sections run,
  // shared[3]: stays 0 (to sleep on)
  const sab = new SharedArrayBuffer(16);
  const shared = new Int32Array(sab);
  const body = `
    for (let k = 0; k < 5; k++) {
      exclusive(() => exclusive(() => {
        const inside = Atomics.add(shared, 0, 1) + 1;
        if (inside > Atomics.load(shared, 1)) Atomics.store(shared, 1, inside);
        Atomics.wait(shared, 3, 0, 20); // 20 ms inside, so that the threads would overlap
        Atomics.add(shared, 2, 1);
        Atomics.sub(shared, 0, 1);
      }));
    }`;
  const workers = [worker(body, sab), worker(body, sab), worker(body, sab)];
  await Promise.all(workers.map(finished));
  await Promise.all(workers.map((w) => w.terminate()));
  assert.equal(shared[2], 15);
  assert.equal(shared[1], 1, 'two threads were inside at once');
});

// In a child process, so that a regression (the main thread waiting forever) fails the test
// when the child is killed, instead of hanging the suite.
test('exclusive(): a worker terminated inside it lets the others in', () => {
  // the worker enters, says so, and stays inside until terminated
  const holder = workerSource('exclusive(() => { Atomics.store(shared, 0, 1); for (;;) Atomics.wait(shared, 0, 1, 50); });');
  const script = `
    import { Worker } from 'node:worker_threads';
    import { exclusive } from ${JSON.stringify(ENGINE)};
    const shared = new Int32Array(new SharedArrayBuffer(4));
    const w = new Worker(${JSON.stringify(holder)}, { eval: true, workerData: shared.buffer });
    while (Atomics.load(shared, 0) !== 1) await new Promise((r) => setTimeout(r, 10));
    await w.terminate();
    console.log('after', exclusive(() => 42));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.signal, null, 'the main thread still waited 30 s after the worker holding the lock was terminated');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /after 42/);
});
