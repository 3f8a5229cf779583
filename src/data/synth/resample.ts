/** Resampling a photo region into linear light, and how textured a crop is. */
import type { RGBImage } from '../image-io.js';
import { getEotfLut } from './colour.js';

/**
 * Resamples the region of `photo` (sRGB 0..1) starting at (x0, y0) with `scale` photo pixels per
 * output pixel into an outW x outH linear-light image, with a separable triangle filter widened to
 * the scale when downscaling (area-like anti-aliasing); the EOTF is applied before filtering.
 * Out-of-range source pixels are clamped to the edge.
 */
export function resampleToLinear(
  photo: RGBImage,
  x0: number,
  y0: number,
  scale: number,
  outW: number,
  outH: number,
  flip = false,
): Float32Array {
  const W = photo.width;
  const H = photo.height;
  const src = photo.data;
  const lut = getEotfLut();
  const radius = Math.max(1, scale);
  const taps = Math.ceil(2 * radius) + 1;

  const weights = (n: number, origin: number) => {
    const start = new Int32Array(n);
    const w = new Float32Array(n * taps);
    for (let i = 0; i < n; i++) {
      const c = origin + (i + 0.5) * scale - 0.5;
      const s = Math.ceil(c - radius);
      start[i] = s;
      let sum = 0;
      for (let k = 0; k < taps; k++) {
        const d = Math.abs(s + k - c) / radius;
        const v = d < 1 ? 1 - d : 0;
        w[i * taps + k] = v;
        sum += v;
      }
      for (let k = 0; k < taps; k++) w[i * taps + k] = w[i * taps + k]! / sum;
    }
    return { start, w };
  };
  const wx = weights(outW, x0);
  const wy = weights(outH, y0);

  // rows of the photo we need, converted to linear once
  const rowLo = Math.max(0, wy.start[0]!);
  const rowHi = Math.min(H - 1, wy.start[outH - 1]! + taps - 1);
  const colLo = Math.max(0, wx.start[0]!);
  const colHi = Math.min(W - 1, wx.start[outW - 1]! + taps - 1);
  const nCols = colHi - colLo + 1;
  const nRows = rowHi - rowLo + 1;
  const linRow = new Float32Array(nCols * 3);
  const tmp = new Float32Array(nRows * outW * 3); // horizontally filtered rows
  for (let r = 0; r < nRows; r++) {
    const base = ((rowLo + r) * W + colLo) * 3;
    for (let j = 0; j < nCols * 3; j++) {
      const v = src[base + j]!;
      const idx = v <= 0 ? 0 : v >= 1 ? 65535 : Math.round(v * 65535);
      linRow[j] = lut[idx]!;
    }
    const trow = r * outW * 3;
    for (let i = 0; i < outW; i++) {
      const s = wx.start[i]!;
      let a = 0;
      let b = 0;
      let c = 0;
      for (let k = 0; k < taps; k++) {
        const wk = wx.w[i * taps + k]!;
        if (wk === 0) continue;
        let x = s + k;
        x = x < 0 ? 0 : x >= W ? W - 1 : x;
        const p = (x - colLo) * 3;
        a += wk * linRow[p]!;
        b += wk * linRow[p + 1]!;
        c += wk * linRow[p + 2]!;
      }
      const o = trow + (flip ? outW - 1 - i : i) * 3;
      tmp[o] = a;
      tmp[o + 1] = b;
      tmp[o + 2] = c;
    }
  }
  const out = new Float32Array(outW * outH * 3);
  for (let i = 0; i < outH; i++) {
    const s = wy.start[i]!;
    const orow = i * outW * 3;
    for (let k = 0; k < taps; k++) {
      const wk = wy.w[i * taps + k]!;
      if (wk === 0) continue;
      let y = s + k;
      y = y < 0 ? 0 : y >= H ? H - 1 : y;
      const trow = (y - rowLo) * outW * 3;
      for (let j = 0; j < outW * 3; j++) out[orow + j] = out[orow + j]! + wk * tmp[trow + j]!;
    }
  }
  return out;
}

/**
 * Cheap texture measure of a square photo region: mean absolute luma difference between points
 * one scene pixel (`step` photo pixels) apart, on a 40 x 40 grid.
 */
export function textureScore(photo: RGBImage, x0: number, y0: number, side: number, step: number): number {
  const G = 40;
  const d = Math.max(1, Math.round(step));
  const W = photo.width;
  const H = photo.height;
  const p = photo.data;
  const lumaAt = (x: number, y: number) => {
    const xi = Math.min(W - 1, Math.max(0, Math.round(x)));
    const yi = Math.min(H - 1, Math.max(0, Math.round(y)));
    const i = (yi * W + xi) * 3;
    return 0.299 * p[i]! + 0.587 * p[i + 1]! + 0.114 * p[i + 2]!;
  };
  let sum = 0;
  for (let j = 0; j < G; j++) {
    for (let i = 0; i < G; i++) {
      const x = x0 + ((i + 0.5) / G) * side;
      const y = y0 + ((j + 0.5) / G) * side;
      const c = lumaAt(x, y);
      sum += Math.abs(lumaAt(x + d, y) - c) + Math.abs(lumaAt(x, y + d) - c);
    }
  }
  return sum / (2 * G * G);
}
