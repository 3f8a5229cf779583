/**
 * msdi serve [--port 8080] [--host 127.0.0.1]: the web page and the HTTP API
 * (src/server/server.ts) on this machine. Runs until Ctrl-C.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MAX_PIXELS } from '../../data/image-file.js';
import {
  DEFAULT_HOST, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_MAX_WAITING, DEFAULT_PORT, startServer, type ServerOptions,
} from '../../server/server.js';
import { WEB_DIR } from '../../server/static.js';
import { ampOption, intOption, parse, UsageError } from '../args.js';

const HELP = `usage: msdi serve [options]

  --port N               port (default ${DEFAULT_PORT}; 0 picks a free one)
  --host ADDR            address to listen on (default ${DEFAULT_HOST}: this machine only;
                         0.0.0.0 opens it to the network, without any authentication)
  --weights FILE         deblurring weights, also used for the degradation map
                         (default: the bundled weights/msdi-deblur.safetensors)
  --joint-weights FILE   joint MSDI2E weights for blur transfer
                         (default: the bundled weights/msdi-joint.safetensors)
  --max-upload-mb N      largest request body in MB (default ${DEFAULT_MAX_UPLOAD_BYTES / 2 ** 20})
  --max-pixels N         largest image in pixels (default ${DEFAULT_MAX_PIXELS})
  --queue N              jobs that may wait behind the running one (default ${DEFAULT_MAX_WAITING})
  --tile N               deblur tile size, a multiple of 16 (default 256)
  --amp off|bf16         bf16: deblur and reblur with convolutions in bfloat16 (faster on CPUs
                         with AVX-512 BF16, about 10x slower without; default off)
  --log                  one line per request on stderr

Endpoints that need weights that are absent answer 503 until they exist.`;

/** The server options of a command line (exported for tests). */
export function serveOptions(argv: string[]): ServerOptions {
  const { values, positionals } = parse(argv, {
    port: { type: 'string' }, host: { type: 'string' }, weights: { type: 'string' }, 'joint-weights': { type: 'string' },
    'max-upload-mb': { type: 'string' }, 'max-pixels': { type: 'string' }, queue: { type: 'string' }, tile: { type: 'string' }, amp: { type: 'string' },
    log: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, 'serve');
  if (values.help) throw new HelpRequested();
  if (positionals.length) throw new UsageError(`serve: unexpected argument ${JSON.stringify(positionals[0])}`);
  const port = intOption(values.port, '--port', DEFAULT_PORT, 0);
  if (port > 65535) throw new UsageError(`expected a port from 0 to 65535 for --port, got ${port}`);
  const tile = intOption(values.tile, '--tile', 256, 16);
  if (tile % 16 !== 0) throw new UsageError(`--tile: expected a multiple of 16, got ${tile}`);
  for (const flag of ['weights', 'joint-weights'] as const) {
    const f = values[flag];
    if (f !== undefined && !existsSync(f)) throw new Error(`${f}: no such file (--${flag})`);
  }
  return {
    port, tile, amp: ampOption(values.amp),
    host: values.host ?? DEFAULT_HOST,
    weights: values.weights,
    jointWeights: values['joint-weights'],
    maxUploadBytes: intOption(values['max-upload-mb'], '--max-upload-mb', DEFAULT_MAX_UPLOAD_BYTES / 2 ** 20, 1) * 2 ** 20,
    maxPixels: intOption(values['max-pixels'], '--max-pixels', DEFAULT_MAX_PIXELS, 1),
    maxWaiting: intOption(values.queue, '--queue', DEFAULT_MAX_WAITING, 0),
    log: Boolean(values.log),
  };
}

class HelpRequested extends Error {}

export async function serveCommand(argv: string[]): Promise<void> {
  let opts: ServerOptions;
  try {
    opts = serveOptions(argv);
  } catch (e) {
    if (e instanceof HelpRequested) return void console.log(HELP);
    throw e;
  }
  let srv;
  try {
    srv = await startServer(opts);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new Error(`port ${opts.port} on ${opts.host} is in use (--port)`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new Error(`cannot listen on ${opts.host} (--host): no such address here`);
    throw e;
  }
  const health = (await (await fetch(new URL('api/health', srv.url))).json()) as { weights: Record<string, { file: string; present: boolean }> };
  console.log(`msdi serve: ${srv.url}`);
  for (const [k, w] of Object.entries(health.weights)) {
    console.log(`  ${k.padEnd(6)} ${w.file}${w.present ? '' : '  (missing: its endpoints answer 503)'}`);
  }
  if (!existsSync(join(WEB_DIR, 'index.html'))) console.log('  the web page is not built (npm run build:web); the API works without it');
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (sig: NodeJS.Signals) => {
      console.log('msdi serve: stopping');
      void srv.close().then(() => resolve(sig));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  // End as an interrupted program does, by the signal itself (a normal exit after a caught
  // SIGINT can hang in libtorch's thread-pool teardown; see the train command).
  process.kill(process.pid, signal);
}
