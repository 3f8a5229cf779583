/** Moving objects: soft-edged patches moving along their own trajectories over the scene. */
import type { Rng } from '../rng.js';
import type { RGBImage } from '../image-io.js';
import { momentumPath, pathAt } from './camera.js';
import { resampleToLinear, textureScore } from './resample.js';

export interface MovingObject {
  w: number;
  h: number;
  rgb: Float32Array; // linear light, w*h*3
  alpha: Float32Array; // w*h
  pos: Array<[number, number]>; // world (scene canvas) centre at each integer sub-frame time
  spin: number; // total rotation over the exposure (rad), linear in time, 0 at the middle
}

function blobMask(rng: Rng, w: number, h: number): Float32Array {
  const alpha = new Float32Array(w * h);
  const harmonics: Array<[number, number, number]> = [];
  for (let k = 2; k <= 5; k++) harmonics.push([k, rng.uniform(0, 0.1), rng.uniform(0, 2 * Math.PI)]);
  const base = 0.72;
  const feather = rng.uniform(0.8, 2.5); // px
  const rx = w / 2;
  const ry = h / 2;
  const pxPerUnit = Math.min(rx, ry);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const dx = (x + 0.5 - rx) / rx;
      const dy = (y + 0.5 - ry) / ry;
      const r = Math.hypot(dx, dy);
      const phi = Math.atan2(dy, dx);
      let R = 1;
      for (const [k, a, p] of harmonics) R += a * Math.cos(k * phi + p);
      R *= base;
      const v = ((R - r) * pxPerUnit) / feather + 0.5;
      alpha[y * w + x] = v <= 0 ? 0 : v >= 1 ? 1 : v * v * (3 - 2 * v);
    }
  }
  return alpha;
}

export function makeObjects(rng: Rng, n: number, S: number, m: number, sources: RGBImage[], count: number): MovingObject[] {
  const objs: MovingObject[] = [];
  const mid = (n - 1) >> 1;
  for (let i = 0; i < count; i++) {
    const src = rng.pick(sources);
    const w = Math.max(8, Math.round(rng.uniform(0.12, 0.4) * S));
    const h = Math.max(8, Math.min(Math.round(0.5 * S), Math.round(w * rng.uniform(0.6, 1.6))));
    const short = Math.min(src.width, src.height);
    const maxScale = Math.max(0.25, Math.min(2.5, (0.9 * short) / Math.max(w, h)));
    const scale = rng.logUniform(Math.min(0.7, maxScale), maxScale + 1e-6);
    // prefer a textured region (a flat patch of sky makes an unconvincing object)
    let x0 = 0;
    let y0 = 0;
    let best = -1;
    for (let t = 0; t < 3; t++) {
      const x = rng.uniform(0, Math.max(0, src.width - w * scale));
      const y = rng.uniform(0, Math.max(0, src.height - h * scale));
      const score = textureScore(src, x, y, Math.min(w, h) * scale, scale);
      if (score > best) {
        best = score;
        x0 = x;
        y0 = y;
      }
    }
    const rgb = resampleToLinear(src, x0, y0, scale, w, h, rng.bool());
    const alpha = blobMask(rng, w, h);
    // own trajectory: objects move faster than the camera shake, sometimes a little rotation
    const len = rng.uniform(0.03, 0.16) * S;
    const path = momentumPath(rng, n, len);
    const spin = rng.bool(0.5) ? rng.uniform(-0.35, 0.35) : 0;
    const cx = m + rng.uniform(0.1, 0.9) * S;
    const cy = m + rng.uniform(0.1, 0.9) * S;
    const pos: Array<[number, number]> = [];
    for (let k = 0; k < n; k++) pos.push([cx + path[k]![0] - path[mid]![0], cy + path[k]![1] - path[mid]![1]]);
    objs.push({ w, h, rgb, alpha, pos, spin });
  }
  return objs;
}

/** Composites the objects at time tau (sub-frame units) over `world` (C x C linear RGB) in place. */
export function compositeObjects(world: Float32Array, C: number, objs: MovingObject[], tau: number): void {
  for (const o of objs) {
    const n = o.pos.length;
    const [px, py] = pathAt(o.pos, tau);
    const th = n > 1 ? (o.spin * (tau - (n - 1) / 2)) / (n - 1) : 0;
    const ct = Math.cos(th);
    const st = Math.sin(th);
    const half = 0.5 * Math.hypot(o.w, o.h) + 2;
    const xLo = Math.max(0, Math.floor(px - half));
    const xHi = Math.min(C - 1, Math.ceil(px + half));
    const yLo = Math.max(0, Math.floor(py - half));
    const yHi = Math.min(C - 1, Math.ceil(py + half));
    const ow = o.w;
    const oh = o.h;
    for (let y = yLo; y <= yHi; y++) {
      for (let x = xLo; x <= xHi; x++) {
        // world -> object pixel coordinates (pixel centres at integer + 0.5 -> index space)
        const dx = x - px;
        const dy = y - py;
        const u = ct * dx + st * dy + ow / 2 - 0.5;
        const v = -st * dx + ct * dy + oh / 2 - 0.5;
        if (u <= -1 || v <= -1 || u >= ow || v >= oh) continue;
        const u0 = Math.floor(u);
        const v0 = Math.floor(v);
        const fu = u - u0;
        const fv = v - v0;
        let a = 0;
        let r = 0;
        let g = 0;
        let b = 0;
        for (let j = 0; j < 4; j++) {
          const uu = u0 + (j & 1);
          const vv = v0 + (j >> 1);
          if (uu < 0 || vv < 0 || uu >= ow || vv >= oh) continue;
          const wgt = ((j & 1) ? fu : 1 - fu) * ((j >> 1) ? fv : 1 - fv);
          const idx = vv * ow + uu;
          const aw = wgt * o.alpha[idx]!;
          a += aw;
          r += aw * o.rgb[idx * 3]!;
          g += aw * o.rgb[idx * 3 + 1]!;
          b += aw * o.rgb[idx * 3 + 2]!;
        }
        if (a <= 0) continue;
        // r,g,b are premultiplied
        const p = (y * C + x) * 3;
        const ia = 1 - a;
        world[p] = world[p]! * ia + r;
        world[p + 1] = world[p + 1]! * ia + g;
        world[p + 2] = world[p + 2]! * ia + b;
      }
    }
  }
}
