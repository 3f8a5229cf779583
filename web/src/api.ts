/**
 * The server's job API as the page uses it: a POST with `Accept: text/event-stream` answers
 * with events (queued / running / progress / done / error); `done` names the URL of the
 * finished PNG. Aborting the signal closes the request, which cancels the job on the server.
 */

export interface JobCallbacks {
  /** Jobs before this one (the running one included). */
  onQueued?: (ahead: number) => void;
  onRunning?: () => void;
  /** Tiles done of total. */
  onProgress?: (done: number, total: number) => void;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface Health {
  ok: boolean;
  queue: { running: number; waiting: number };
  weights: Record<'deblur' | 'joint', { file: string; present: boolean }>;
  limits: { maxUploadBytes: number; maxPixels: number };
}

export async function health(): Promise<Health> {
  const res = await fetch('api/health');
  if (!res.ok) throw new ApiError(res.status, `health check failed (${res.status})`);
  return (await res.json()) as Health;
}

async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: string };
    if (body.error) message = body.error;
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, message);
}

/** Runs a job: `path` is 'api/deblur', 'api/reblur' or 'api/degradation'. Resolves with the PNG. */
export async function runJob(path: string, body: BodyInit, cb: JobCallbacks, signal: AbortSignal): Promise<Blob> {
  const res = await fetch(path, { method: 'POST', body, signal, headers: { accept: 'text/event-stream' } });
  if (!res.ok || !res.body) throw await errorOf(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let result: string | null = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).trim();
      }
      if (!data) continue;
      const d = JSON.parse(data) as Record<string, unknown>;
      if (event === 'queued') cb.onQueued?.(d.ahead as number);
      else if (event === 'running') cb.onRunning?.();
      else if (event === 'progress') cb.onProgress?.(d.done as number, d.total as number);
      else if (event === 'error') throw new ApiError(d.status as number, d.error as string);
      else if (event === 'done') result = d.result as string;
    }
  }
  if (!result) throw new ApiError(500, 'the server closed the stream before the result');
  const png = await fetch(result.replace(/^\//, ''), { signal });
  if (!png.ok) throw await errorOf(png);
  return png.blob();
}
