#!/usr/bin/env node
// Builds the N-API addon with node-gyp against the libtorch that libtorch-config.mjs finds.
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
try {
  execFileSync(process.execPath, [gyp, 'rebuild', '-j', String(availableParallelism())], { stdio: ['ignore', 'ignore', 'inherit'] });
} catch {
  console.error('msdi: building the native addon failed (see the compiler messages above)');
  process.exit(1);
}
