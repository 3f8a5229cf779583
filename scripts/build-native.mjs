#!/usr/bin/env node
// Builds the N-API addon with node-gyp against the libtorch that libtorch-config.mjs finds.
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
// Node's own headers where this node is installed (PREFIX/include/node), when it ships them:
// node-gyp would otherwise download them, which fails on a machine without internet access.
const prefix = dirname(dirname(process.execPath));
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
try {
  execFileSync(process.execPath, [gyp, 'rebuild', '-j', String(availableParallelism()), ...nodedir], { stdio: ['ignore', 'ignore', 'inherit'] });
} catch {
  console.error('msdi: building the native addon failed (see the compiler messages above)');
  process.exit(1);
}
