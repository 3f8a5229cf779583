#!/usr/bin/env node
// The msdi command. Runs the compiled CLI (npm run build); see README.md.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  console.error('msdi: not built yet; run "bash scripts/setup.sh" (or "npm run build") in the repository first');
  process.exit(1);
}
// sharp decodes on libuv's thread pool, which every thread of the process shares (the training
// loader's decode workers included) and which has 4 threads unless told otherwise: on a machine
// with many cores that pool, not the workers, would bound how fast batches are made. Read once,
// when the pool starts, so it is set before anything is loaded.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism()));
await import(compiled.href);
