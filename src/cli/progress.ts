/** A one-line progress bar on stderr: count, rate, ETA and a free-form status. Quiet when not a TTY. */
export class Progress {
  readonly #t0 = Date.now();
  #last = 0;
  #startDone = 0;
  constructor(readonly label: string, readonly total: number, readonly unit = 'it', startAt = 0) {
    this.#startDone = startAt;
  }

  update(done: number, status = ''): void {
    const now = Date.now();
    const finished = done >= this.total;
    if (!finished && now - this.#last < 250) return;
    this.#last = now;
    const secs = (now - this.#t0) / 1000;
    const rate = (done - this.#startDone) / Math.max(secs, 1e-9);
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    const width = 24;
    const filled = Math.round((width * done) / Math.max(this.total, 1));
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ` +
      `${rate >= 1 ? rate.toFixed(1) + ` ${this.unit}/s` : (1 / Math.max(rate, 1e-9)).toFixed(2) + ` s/${this.unit}`} ` +
      `ETA ${formatDuration(eta)}${status ? '  ' + status : ''}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 120) - 1)}\x1b[K`);
  }

  done(message: string): void {
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    console.error(`${this.label}: ${message} (${formatDuration((Date.now() - this.#t0) / 1000)})`);
  }
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '--';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
