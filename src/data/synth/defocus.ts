/** Spatially varying defocus: a disc blur whose radius varies smoothly across the frame. */
import type { Rng } from '../rng.js';

/** Smooth random field in [0, 1] over S x S: bicubic-interpolated random grid. */
function smoothNoise(rng: Rng, S: number, cells: number): Float32Array {
  const g = cells + 3;
  const grid = new Float32Array(g * g);
  for (let i = 0; i < grid.length; i++) grid[i] = rng.float();
  const out = new Float32Array(S * S);
  const cub = (p0: number, p1: number, p2: number, p3: number, t: number) =>
    p1 + 0.5 * t * (p2 - p0 + t * (2 * p0 - 5 * p1 + 4 * p2 - p3 + t * (3 * (p1 - p2) + p3 - p0)));
  for (let y = 0; y < S; y++) {
    const gy = (y / S) * cells + 1;
    const iy = Math.floor(gy);
    const ty = gy - iy;
    for (let x = 0; x < S; x++) {
      const gx = (x / S) * cells + 1;
      const ix = Math.floor(gx);
      const tx = gx - ix;
      const rows: number[] = [];
      for (let j = -1; j <= 2; j++) {
        const b = (iy + j) * g + ix;
        rows.push(cub(grid[b - 1]!, grid[b]!, grid[b + 1]!, grid[b + 2]!, tx));
      }
      const v = cub(rows[0]!, rows[1]!, rows[2]!, rows[3]!, ty);
      out[y * S + x] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return out;
}

/** Per-pixel defocus radius map: a random depth ramp plus smooth noise through a soft threshold. */
export function defocusRadiusMap(rng: Rng, S: number, maxR: number): Float32Array {
  const noise = smoothNoise(rng, S, rng.int(2, 4));
  const ang = rng.uniform(0, 2 * Math.PI);
  const ca = Math.cos(ang);
  const sa = Math.sin(ang);
  const rampW = rng.uniform(0.3, 1.2);
  const noiseW = rng.uniform(0.3, 1.0);
  const center = rng.uniform(0.3, 0.7);
  const soft = rng.uniform(0.1, 0.3);
  const out = new Float32Array(S * S);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const ramp = ((x / S - 0.5) * ca + (y / S - 0.5) * sa) * rampW + 0.5;
      const d = (ramp * rampW + noise[y * S + x]! * noiseW) / (rampW + noiseW);
      let t = (d - center) / soft + 0.5;
      t = t <= 0 ? 0 : t >= 1 ? 1 : t * t * (3 - 2 * t);
      out[y * S + x] = t * maxR;
    }
  }
  return out;
}

/**
 * Disc (pillbox) blur with a per-pixel radius, in place on an S x S linear RGB image. The disc of
 * radius r covers rows |dy| <= r + 0.5 with half-width sqrt((r + 0.5)^2 - dy^2), integrated exactly
 * over the pixel footprints from row prefix sums; fractional radii interpolate between the two
 * neighbouring integer radii. Borders are clamped.
 */
export function variableDiscBlur(img: Float32Array, S: number, radius: Float32Array): void {
  let maxR = 0;
  for (let i = 0; i < radius.length; i++) maxR = Math.max(maxR, radius[i]!);
  const R = Math.ceil(maxR) + 1;
  const pad = R + 2;
  const PW = S + 2 * pad; // padded row length
  // prefix[y][c][j] = sum of padded row values with index < j, per channel (row-major per channel)
  const prefix = new Float64Array(S * 3 * (PW + 1));
  const padded = new Float32Array(S * 3 * PW);
  for (let y = 0; y < S; y++) {
    for (let c = 0; c < 3; c++) {
      const pb = (y * 3 + c) * PW;
      const fb = (y * 3 + c) * (PW + 1);
      let acc = 0;
      prefix[fb] = 0;
      for (let j = 0; j < PW; j++) {
        let x = j - pad;
        x = x < 0 ? 0 : x >= S ? S - 1 : x;
        const v = img[(y * S + x) * 3 + c]!;
        padded[pb + j] = v;
        acc += v;
        prefix[fb + j + 1] = acc;
      }
    }
  }
  // cumulative integral F(u) of a padded row over [-0.5, u] in pixel coordinates of the output
  const integral = (fb: number, pb: number, u: number) => {
    const t = u + 0.5 + pad; // position in padded index space, pixel j covers [j, j+1)
    const j = Math.floor(t);
    return prefix[fb + j]! + (t - j) * padded[pb + j]!;
  };
  const discAt = (x: number, y: number, r: number, out: Float64Array) => {
    out[0] = 0;
    out[1] = 0;
    out[2] = 0;
    const rho = r + 0.5;
    const rows = Math.floor(rho);
    let total = 0;
    for (let dy = -rows; dy <= rows; dy++) {
      const hw = Math.sqrt(Math.max(0, rho * rho - dy * dy));
      if (hw <= 0) continue;
      let yy = y + dy;
      yy = yy < 0 ? 0 : yy >= S ? S - 1 : yy;
      for (let c = 0; c < 3; c++) {
        const fb = (yy * 3 + c) * (PW + 1);
        const pb = (yy * 3 + c) * PW;
        out[c] = out[c]! + integral(fb, pb, x + hw) - integral(fb, pb, x - hw);
      }
      total += 2 * hw;
    }
    out[0] = out[0]! / total;
    out[1] = out[1]! / total;
    out[2] = out[2]! / total;
  };
  const a = new Float64Array(3);
  const b = new Float64Array(3);
  const src = img.slice();
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const r = radius[y * S + x]!;
      if (r < 0.05) continue;
      const r0 = Math.floor(r);
      const f = r - r0;
      const p = (y * S + x) * 3;
      if (r0 === 0) {
        a[0] = src[p]!;
        a[1] = src[p + 1]!;
        a[2] = src[p + 2]!;
      } else discAt(x, y, r0, a);
      if (f > 1e-6) discAt(x, y, r0 + 1, b);
      else b.set(a);
      img[p] = a[0]! * (1 - f) + b[0]! * f;
      img[p + 1] = a[1]! * (1 - f) + b[1]! * f;
      img[p + 2] = a[2]! * (1 - f) + b[2]! * f;
    }
  }
}
