/** Training logs: JSON lines (one record per event) and an SVG plot of the curves beside them. */
import { appendFileSync, readFileSync, existsSync } from 'node:fs';
import { replaceFileSync } from '../data/atomic-write.js';

export type LogRecord = { kind: 'train' | 'val' | 'event'; step: number; time: string; [k: string]: unknown };

export class RunLog {
  constructor(readonly file: string) {}
  write(rec: Omit<LogRecord, 'time'>): void {
    appendFileSync(this.file, JSON.stringify({ ...rec, time: new Date().toISOString() }) + '\n');
  }
  read(): LogRecord[] {
    if (!existsSync(this.file)) return [];
    return readFileSync(this.file, 'utf8').split('\n').filter(Boolean).flatMap((l) => {
      try {
        return [JSON.parse(l) as LogRecord];
      } catch {
        return []; // a line cut by a kill: skip it
      }
    });
  }
  /** Drops records past `step` (after resuming from an earlier checkpoint), keeping the curve continuous. */
  truncateAfter(step: number): void {
    const kept = this.read().filter((r) => r.step <= step);
    replaceFileSync(this.file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  }
}

function polyline(points: [number, number][], x: (v: number) => number, y: (v: number) => number, color: string): string {
  if (!points.length) return '';
  return `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ')}"/>`;
}

/** One panel per series group: training loss (smoothed) and validation PSNR against step. */
export function plotSvg(records: LogRecord[], lossKey: string): string {
  const train = records.filter((r) => r.kind === 'train' && typeof r[lossKey] === 'number').map((r) => [r.step, r[lossKey] as number] as [number, number]);
  const val = records.filter((r) => r.kind === 'val').map((r) => [r.step, r.psnr as number] as [number, number]);
  const W = 640;
  const H = 220;
  const panel = (pts: [number, number][], title: string, color: string, top: number): string => {
    if (!pts.length) return '';
    // Exponential smoothing for the noisy training loss.
    let s = pts[0][1];
    const smooth = pts.map(([a, b]) => [a, (s = 0.9 * s + 0.1 * b)] as [number, number]);
    const xs = pts.map((p) => p[0]);
    const ys = smooth.map((p) => p[1]);
    // loops, not Math.min(...xs): a long run's hundreds of thousands of points overflow the stack
    const lo = (v: number[]) => v.reduce((a, b) => (b < a ? b : a), Infinity);
    const hi = (v: number[]) => v.reduce((a, b) => (b > a ? b : a), -Infinity);
    const [x0, x1] = [lo(xs), Math.max(hi(xs), lo(xs) + 1)];
    const [y0, y1] = [lo(ys), Math.max(hi(ys), lo(ys) + 1e-9)];
    const x = (v: number) => 50 + ((v - x0) / (x1 - x0)) * (W - 70);
    const y = (v: number) => top + H - 30 - ((v - y0) / (y1 - y0)) * (H - 60);
    return `<g><text x="50" y="${top + 18}" font-size="13">${title}</text>` +
      `<text x="4" y="${top + 34}" font-size="10">${y1.toPrecision(4)}</text><text x="4" y="${top + H - 30}" font-size="10">${y0.toPrecision(4)}</text>` +
      `<text x="50" y="${top + H - 12}" font-size="10">step ${x0}</text><text x="${W - 90}" y="${top + H - 12}" font-size="10">step ${x1}</text>` +
      `<rect x="50" y="${top + 24}" width="${W - 70}" height="${H - 54}" fill="none" stroke="#ccc"/>` +
      polyline(smooth, x, y, color) + '</g>';
  };
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${2 * H}" font-family="sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    panel(train, `training ${lossKey} (smoothed)`, '#c33', 0) + panel(val, 'validation PSNR (dB)', '#36c', H) + '</svg>';
}
