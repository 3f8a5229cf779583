#!/usr/bin/env node
// The msdi command. Runs the compiled CLI (npm run build); see README.md.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  console.error('msdi: not built yet; run "bash scripts/setup.sh" (or "npm run build") in the repository first');
  process.exit(1);
}
await import(compiled.href);
