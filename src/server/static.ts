/**
 * The web page's files (web/, bundled by `npm run build:web` into dist/web). Only the files
 * listed here are served, so a request path never becomes a file system path.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';

/** dist/web at the package root, the same from src/server (tsx) and dist/server (compiled). */
export const WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'web');

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.js.map': { file: 'app.js.map', type: 'application/json; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

export const STATIC_PATHS = Object.keys(FILES);

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>msdi</title>
<p>The web page is not built yet: run <code>npm run build:web</code> (or <code>bash scripts/setup.sh</code>) in the msdi folder, then reload.
The HTTP API (<code>/api/...</code>) works without it.</p>`;

export async function serveStatic(path: string, res: ServerResponse, dir = WEB_DIR): Promise<void> {
  const entry = FILES[path];
  const file = join(dir, entry.file);
  if (!existsSync(file)) {
    const html = entry.file === 'index.html';
    res.writeHead(html ? 503 : 404, { 'content-type': html ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8' });
    res.end(html ? NOT_BUILT : 'not built\n');
    return;
  }
  const body = await readFile(file);
  res.writeHead(200, {
    'content-type': entry.type,
    'content-length': body.length,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
