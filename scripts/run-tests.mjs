#!/usr/bin/env node
// Runs the test files (all of test/*.test.ts, or those named) with node's test runner.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const named = process.argv.slice(2);
const files = named.length ? named : readdirSync('test').filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/${f}`);
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
