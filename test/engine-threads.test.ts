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

/**
 * A worker running `body` (a module body, given `exclusive` and `shared`, an Int32Array over
 * the SharedArrayBuffer passed in) with the engine loaded through tsx, as the server's model
 * threads are; it posts 'done' after body returns.
 */
function worker(body: string, sab: SharedArrayBuffer): Worker {
  const api = import.meta.resolve('tsx/esm/api');
  const engine = new URL('../src/engine/index.ts', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = await import('node:worker_threads');
    (await import(${JSON.stringify(api)})).register();
    const { exclusive } = await import(${JSON.stringify(engine)});
    const shared = new Int32Array(workerData);
    ${body}
    parentPort.postMessage('done');`;
  return new Worker(`(async () => {${code}})().catch((e) => { setImmediate(() => { throw e; }); });`, { eval: true, workerData: sab });
}

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
  const script = `
    import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
    import { exclusive } from ${JSON.stringify(new URL('../src/engine/index.ts', import.meta.url).href)};
    const code = ${JSON.stringify(`(async () => {
      const { workerData } = await import('node:worker_threads');
      (await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})).register();
      const { exclusive } = await import(${JSON.stringify(new URL('../src/engine/index.ts', import.meta.url).href)});
      const shared = new Int32Array(workerData);
      exclusive(() => { Atomics.store(shared, 0, 1); for (;;) Atomics.wait(shared, 0, 1, 50); });
    })();`)};
    const sab = new SharedArrayBuffer(4);
    const shared = new Int32Array(sab);
    const w = new Worker(code, { eval: true, workerData: sab });
    while (Atomics.load(shared, 0) !== 1) await new Promise((r) => setTimeout(r, 10));
    await w.terminate();
    console.log('after', exclusive(() => 42));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.signal, null, 'the main thread still waited 30 s after the worker holding the lock was terminated');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /after 42/);
});
