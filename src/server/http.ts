/**
 * The little HTTP plumbing the server needs on top of node:http: errors that carry their
 * status, JSON replies, and a route table that answers 404 for unknown paths and 405 (with
 * `Allow`) for known paths asked with another method.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A failure that becomes an HTTP reply `{ "error": message }` with this status. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Replies with an error as JSON, unless the reply has already started (then the connection is closed). */
export function sendError(res: ServerResponse, e: unknown): void {
  const status = e instanceof HttpError ? e.status : 500;
  const message = e instanceof Error ? e.message.split('\n')[0] : String(e);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: message }, e instanceof HttpError ? e.headers : {});
}

export type Handler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>) => Promise<void> | void;

interface Route {
  pattern: RegExp;
  keys: string[];
  methods: Map<string, Handler>;
}

/** Routes by path pattern (`/api/results/:id`) and method. */
export class Router {
  readonly #routes: Route[] = [];

  on(method: string, path: string, handler: Handler): this {
    let route = this.#routes.find((r) => r.pattern.source === compile(path).pattern.source);
    if (!route) {
      route = { ...compile(path), methods: new Map() };
      this.#routes.push(route);
    }
    route.methods.set(method, handler);
    if (method === 'GET' && !route.methods.has('HEAD')) route.methods.set('HEAD', handler);
    return this;
  }

  /** The handler for a request, or an HttpError 404 / 405. */
  match(method: string, pathname: string): { handler: Handler; params: Record<string, string> } {
    for (const r of this.#routes) {
      const m = r.pattern.exec(pathname);
      if (!m) continue;
      const handler = r.methods.get(method);
      const allow = [...r.methods.keys()].join(', ');
      if (!handler) throw new HttpError(405, `method ${method} is not allowed on ${pathname} (allowed: ${allow})`, { allow });
      const params: Record<string, string> = {};
      for (const [i, k] of r.keys.entries()) {
        try {
          params[k] = decodeURIComponent(m[i + 1]!);
        } catch {
          throw new HttpError(404, `no such path: ${pathname} (a malformed %-escape)`);
        }
      }
      return { handler, params };
    }
    throw new HttpError(404, `no such path: ${pathname}`);
  }
}

function compile(path: string): { pattern: RegExp; keys: string[] } {
  const keys: string[] = [];
  const source = path.split('/').map((seg) => {
    if (seg.startsWith(':')) {
      keys.push(seg.slice(1));
      return '([^/]+)';
    }
    return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }).join('/');
  return { pattern: new RegExp(`^${source}$`), keys };
}
