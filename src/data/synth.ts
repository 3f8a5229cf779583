/**
 * Synthetic blurry/sharp training pairs made the way GoPro was made: by averaging the sub-frames
 * of a (simulated) high-speed video in linear light, with the middle sub-frame as the sharp target.
 *
 * Per pair (all randomness from a seeded Rng, never Math.random):
 *  1. scene: a random crop of a photo at a random scale (area-style resampling in linear light),
 *     random horizontal flip; the crop is larger than the output by a margin so that every warped
 *     sub-frame samples inside it (no border artefacts, nothing to crop away afterwards);
 *  2. sRGB -> linear light with the exact sRGB EOTF;
 *  3. camera shake: a smooth random trajectory (random walk with momentum) of in-plane translation
 *     plus rotation about a random centre plus slight zoom over N (odd) sub-frames; each sub-frame
 *     is the scene warped by that affine map with bilinear sampling. Rotation and zoom make the
 *     blur vary across the frame;
 *  4. moving objects (sometimes): 1..3 patches from another region/photo with a soft blobby alpha
 *     mask, each moving along its own trajectory in the world, so the blur differs locally;
 *     Each sub-frame integrates its own short exposure (a random duty cycle of the frame
 *     interval, rendered at several instants when the motion is fast) so that large motions smear
 *     continuously instead of leaving n sharp copies;
 *  5. sub-frames averaged in linear light; sometimes a depth-like defocus (disc kernel whose radius
 *     varies smoothly across the frame) on the blurry image only;
 *  6. signal-dependent Poisson-Gaussian sensor noise (small) on the blurry image, back to sRGB
 *     (exact OETF), quantised to 8 bit;
 *  7. sharp target = the middle sub-frame (identity camera transform, objects at their middle
 *     positions), same pipeline, no noise, quantised to 8 bit.
 */
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { assertRGBImage, readImageRGB, writeImageRGB, type RGBImage } from './image-io.js';
import { deriveSeed, Rng } from './rng.js';

export type { RGBImage } from './image-io.js';

export interface SynthOptions {
  /** output side in pixels (square); default 320, so that random 256 crops can be taken later */
  size?: number;
  /** range of sub-frame counts (inclusive; only odd counts are used so there is a middle frame); default [7, 15] */
  subFrames?: [number, number];
  /** longest camera translation path, as a fraction of `size` (default 0.12 = 38 px at 320) */
  maxTranslation?: number;
  /** largest total in-plane rotation over the exposure, in degrees (default 3) */
  maxRotationDeg?: number;
  /** largest total zoom change over the exposure (default 0.03 = 3 %) */
  maxZoom?: number;
  /** the scene is the photo downscaled by a random factor in [1, maxDownscale] (default 3) */
  maxDownscale?: number;
  /** probability of moving objects (default 0.5) */
  objectProb?: number;
  /** at most this many moving objects (default 3) */
  maxObjects?: number;
  /** images moving objects are cut from (default: the scene photo itself) */
  objectSources?: RGBImage[];
  /** probability of spatially varying defocus on the blurry image (default 0.3) */
  defocusProb?: number;
  /** largest defocus disc radius in output pixels (default 3.5) */
  maxDefocusRadius?: number;
  /** add sensor noise to the blurry image (default true) */
  noise?: boolean;
  /** Poisson (shot) gain range, variance = a * x in linear light (default [5e-5, 1.5e-3], log-uniform) */
  shotNoise?: [number, number];
  /** Gaussian (read) noise std range in linear light (default [3e-4, 2e-3], log-uniform) */
  readNoise?: [number, number];
  /** random horizontal flip of the scene (default true) */
  flip?: boolean;
  /**
   * crops whose texture score (mean |luma difference| between neighbouring scene pixels, sampled
   * on a grid) is below this are re-drawn, up to `cropTries` times, keeping the most textured
   * (default 0.01; 0 accepts any crop)
   */
  minTexture?: number;
  /** crop candidates tried against `minTexture` (default 4) */
  cropTries?: number;
  /** each sub-frame's own exposure is sampled finely enough that image motion between samples is at most this (default 1 px) ... */
  microStepPx?: number;
  /** ... but with at most this many warped renders per pair in total (default 64) */
  maxWarps?: number;
  /**
   * Blur levels to render besides the pair itself (for blur transfer with levels): at level L
   * the camera and the objects move L times as far from where they are at the middle frame
   * (0.5: half the motion, 2: twice), and defocus discs are L times as wide; the same scene,
   * exposure and noise levels. A level is rendered only where its motion stays inside the
   * scene canvas (L x maxDisplacementPx <= the margin). The pair itself is unchanged by this.
   */
  levels?: number[];
}

export interface SynthInfo {
  subFrames: number;
  /** instants rendered per sub-frame (its own exposure) and the exposure duty cycle */
  microSamples: number;
  duty: number;
  /** camera translation path length (px) */
  translationPx: number;
  /** total camera rotation (degrees, signed) */
  rotationDeg: number;
  /** total zoom change (signed fraction) */
  zoom: number;
  /** largest displacement of any output pixel between the first/last sub-frame and the middle one (px) */
  maxDisplacementPx: number;
  objects: number;
  /** largest defocus radius (0 when no defocus) */
  defocusRadius: number;
  /** noise parameters (0 when noise is off) */
  shotNoise: number;
  readNoise: number;
  /** scene crop in photo pixels: top-left, photo pixels per scene pixel, flip, texture score */
  crop: { x: number; y: number; scale: number; flip: boolean; texture: number };
}

export interface SynthPair {
  blurry: RGBImage;
  sharp: RGBImage;
  info: SynthInfo;
  /** the blurry image at each requested level that could be rendered (SynthOptions.levels) */
  levels?: Array<{ level: number; blurry: RGBImage }>;
}

/** A blur level msdi renders and trains on: a number in (0, 4]. */
export const isLevel = (l: unknown): l is number => typeof l === 'number' && l > 0 && l <= 4;

/** Checks blur levels (see isLevel). */
export function checkLevels(levels: number[], what = 'levels'): number[] {
  for (const l of levels) {
    if (!isLevel(l)) throw new Error(`${what}: expected numbers in (0, 4], got ${l}`);
  }
  return levels;
}

/** I + L (A - I): the camera map with L times its displacement from the middle frame. */
function scaleAffine(A: Affine, L: number): Affine {
  return {
    a00: 1 + L * (A.a00 - 1), a01: L * A.a01, a10: L * A.a10, a11: 1 + L * (A.a11 - 1),
    b0: L * A.b0, b1: L * A.b1,
  };
}

const DEFAULTS = {
  size: 320,
  subFrames: [7, 15] as [number, number],
  maxTranslation: 0.12,
  maxRotationDeg: 3,
  maxZoom: 0.03,
  maxDownscale: 3,
  objectProb: 0.5,
  maxObjects: 3,
  defocusProb: 0.3,
  maxDefocusRadius: 3.5,
  noise: true,
  shotNoise: [5e-5, 1.5e-3] as [number, number],
  readNoise: [3e-4, 2e-3] as [number, number],
  flip: true,
  minTexture: 0.01,
  cropTries: 4,
  microStepPx: 1,
  maxWarps: 64,
};

// ---------------------------------------------------------------------------------------------
// sRGB transfer functions

/** sRGB EOTF (encoded 0..1 -> linear 0..1), IEC 61966-2-1. */
export function srgbToLinear(v: number): number {
  return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
}

/** sRGB inverse EOTF (linear 0..1 -> encoded 0..1). */
export function linearToSrgb(v: number): number {
  if (v <= 0) return 0;
  if (v >= 1) return 1;
  return v <= 0.0031308 ? v * 12.92 : 1.055 * Math.pow(v, 1 / 2.4) - 0.055;
}

let eotfLut: Float32Array | null = null;
/** 16-bit-exact EOTF lookup (index = round(v * 65535)); exact for 8- and 16-bit sources. */
function getEotfLut(): Float32Array {
  if (!eotfLut) {
    eotfLut = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) eotfLut[i] = srgbToLinear(i / 65535);
  }
  return eotfLut;
}

let oetfThresholds: Float64Array | null = null;
/** thresholds t[q] (q = 1..255): linear x quantises to code >= q iff x >= t[q]; t[0] = -inf */
function getOetfThresholds(): Float64Array {
  if (!oetfThresholds) {
    oetfThresholds = new Float64Array(256);
    oetfThresholds[0] = -Infinity;
    for (let q = 1; q < 256; q++) oetfThresholds[q] = srgbToLinear((q - 0.5) / 255);
  }
  return oetfThresholds;
}

const QBINS = 8192;
let quantStart: Uint8Array | null = null;
/** quantStart[j] = the code of linear value j / QBINS (a lower bound for any x in bin j) */
function getQuantStart(t: Float64Array): Uint8Array {
  if (!quantStart) {
    quantStart = new Uint8Array(QBINS + 1);
    let q = 0;
    for (let j = 0; j <= QBINS; j++) {
      const x = j / QBINS;
      while (q < 255 && t[q + 1]! <= x) q++;
      quantStart[j] = q;
    }
  }
  return quantStart;
}

/** Linear light -> 8-bit sRGB code, exactly round(255 * oetf(clamp(x))). */
function quantiseLinear(x: number, t: Float64Array, start: Uint8Array): number {
  if (!(x > 0)) return 0; // also NaN
  if (x >= 1) return 255;
  let q = start[Math.floor(x * QBINS)]!;
  while (q < 255 && t[q + 1]! <= x) q++;
  return q;
}

/** Linear-light float RGB -> sRGB float RGB quantised to multiples of 1/255. */
export function linearToSrgb8(lin: Float32Array, width: number, height: number): RGBImage {
  const t = getOetfThresholds();
  const start = getQuantStart(t);
  const out = new Float32Array(lin.length);
  for (let i = 0; i < lin.length; i++) out[i] = quantiseLinear(lin[i]!, t, start) / 255;
  return { width, height, data: out };
}

// ---------------------------------------------------------------------------------------------
// resampling a photo region into linear light

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

// ---------------------------------------------------------------------------------------------
// trajectories

interface Affine {
  a00: number;
  a01: number;
  a10: number;
  a11: number;
  b0: number;
  b1: number;
}

/**
 * A smooth random 2-D path of `n` points and (about) the given length: a random walk on the
 * heading with momentum (a constant bend plus small random turns) and jittered step lengths.
 */
function momentumPath(rng: Rng, n: number, length: number): Array<[number, number]> {
  const pts: Array<[number, number]> = [[0, 0]];
  if (n < 2) return pts;
  const step = length / (n - 1);
  let heading = rng.uniform(0, 2 * Math.PI);
  const bend = rng.normal() * 0.12; // systematic curvature (rad per step)
  const wobble = rng.uniform(0, 0.35); // random turning (rad per step)
  let turnRate = 0;
  let x = 0;
  let y = 0;
  for (let k = 1; k < n; k++) {
    turnRate = 0.6 * turnRate + wobble * rng.normal(); // momentum on the turn rate
    heading += bend + turnRate;
    const s = step * Math.max(0, 1 + 0.2 * rng.normal());
    x += s * Math.cos(heading);
    y += s * Math.sin(heading);
    pts.push([x, y]);
  }
  // rescale to the requested path length
  let len = 0;
  for (let k = 1; k < n; k++) len += Math.hypot(pts[k]![0] - pts[k - 1]![0], pts[k]![1] - pts[k - 1]![1]);
  const f = len > 1e-9 ? length / len : 0;
  return pts.map(([px, py]) => [px * f, py * f]);
}

interface CameraMotion {
  /** camera map at continuous time tau in [0, n-1] (sub-frame index units); identity at the middle */
  at: (tau: number) => Affine;
  translationPx: number;
  rotationRad: number;
  zoom: number;
  maxDisplacement: number;
}

/** linear interpolation of a polyline sampled at integer times (linear extrapolation past the ends) */
function pathAt(path: Array<[number, number]>, tau: number): [number, number] {
  const n = path.length;
  if (n === 1) return path[0]!;
  const k = Math.min(n - 2, Math.max(0, Math.floor(tau)));
  const f = tau - k;
  const a = path[k]!;
  const b = path[k + 1]!;
  return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])];
}

const IDENTITY: Affine = { a00: 1, a01: 0, a10: 0, a11: 1, b0: 0, b1: 0 };

function cameraAffine(cx: number, cy: number, theta: number, s: number, tx: number, ty: number): Affine {
  const c = Math.cos(theta) * s;
  const sn = Math.sin(theta) * s;
  // q = C + s R (p - C) + t
  return {
    a00: c,
    a01: -sn,
    a10: sn,
    a11: c,
    b0: cx - (c * cx - sn * cy) + tx,
    b1: cy - (sn * cx + c * cy) + ty,
  };
}

/** largest |A p - B p| over the corners of the output area [m, m+S-1]^2 */
function affineDistance(A: Affine, B: Affine, m: number, S: number): number {
  let worst = 0;
  for (const [x, y] of [
    [m, m],
    [m + S - 1, m],
    [m, m + S - 1],
    [m + S - 1, m + S - 1],
  ] as const) {
    const dx = (A.a00 - B.a00) * x + (A.a01 - B.a01) * y + (A.b0 - B.b0);
    const dy = (A.a10 - B.a10) * x + (A.a11 - B.a11) * y + (A.b1 - B.b1);
    worst = Math.max(worst, Math.hypot(dx, dy));
  }
  return worst;
}

/** largest per-axis |A p + b - p| over the corners of the output area [m, m+S-1]^2 */
function maxDisplacement(frames: Affine[], m: number, S: number): number {
  let worst = 0;
  for (const f of frames) {
    for (const [x, y] of [
      [m, m],
      [m + S - 1, m],
      [m, m + S - 1],
      [m + S - 1, m + S - 1],
    ] as const) {
      const qx = f.a00 * x + f.a01 * y + f.b0;
      const qy = f.a10 * x + f.a11 * y + f.b1;
      worst = Math.max(worst, Math.abs(qx - x), Math.abs(qy - y));
    }
  }
  return worst;
}

function makeCameraMotion(rng: Rng, n: number, S: number, m: number, o: typeof DEFAULTS): CameraMotion {
  const mid = (n - 1) >> 1;
  // translation path length: mostly log-uniform, sometimes (almost) no shake
  const maxT = o.maxTranslation * S;
  const minT = Math.min(0.01 * S, maxT);
  const translation = rng.bool(0.1) ? rng.uniform(0, minT) : rng.logUniform(Math.max(minT, 1e-3), Math.max(maxT, 2e-3));
  const path = momentumPath(rng, n, translation);
  const maxRot = (o.maxRotationDeg * Math.PI) / 180;
  let rotation = rng.bool(0.8) ? Math.max(-maxRot, Math.min(maxRot, rng.normal() * maxRot * 0.5)) : 0;
  const rotCurve = rng.uniform(-1, 1);
  let zoom = rng.bool(0.4) ? rng.uniform(-o.maxZoom, o.maxZoom) : 0;
  const zoomCurve = rng.uniform(-1, 1);
  // rotation/zoom centre: anywhere over (and a bit beyond) the output area
  const cx = m + rng.uniform(-0.3, 1.3) * S;
  const cy = m + rng.uniform(-0.3, 1.3) * S;
  let tScale = 1;
  const pm = path[mid]!;
  const tm = n > 1 ? mid / (n - 1) : 0.5;
  const make = (tau: number): Affine => {
    if (tau === mid) return IDENTITY;
    const t = n > 1 ? tau / (n - 1) : 0.5;
    const rotAt = (u: number) => rotation * (u + rotCurve * u * (1 - u));
    const zoomAt = (u: number) => zoom * (u + zoomCurve * u * (1 - u));
    const [px, py] = pathAt(path, tau);
    return cameraAffine(
      cx,
      cy,
      rotAt(t) - rotAt(tm),
      Math.exp(zoomAt(t) - zoomAt(tm)),
      (px - pm[0]) * tScale,
      (py - pm[1]) * tScale,
    );
  };
  let disp = 0;
  for (let attempt = 0; attempt < 40; attempt++) {
    const probe: Affine[] = [];
    // every instant rendered: tau in [-0.5, n - 0.5] (each sub-frame's exposure is centred on it)
    for (let k = -1; k <= 2 * n - 1; k++) probe.push(make(k / 2));
    disp = maxDisplacement(probe, m, S);
    if (disp <= m - 1.5) break;
    // too much motion for the margin: shrink everything and try again
    tScale *= 0.85;
    rotation *= 0.85;
    zoom *= 0.85;
  }
  return { at: make, translationPx: translation * tScale, rotationRad: rotation, zoom, maxDisplacement: disp };
}

// ---------------------------------------------------------------------------------------------
// moving objects

interface MovingObject {
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

function makeObjects(rng: Rng, n: number, S: number, m: number, sources: RGBImage[], count: number): MovingObject[] {
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
function compositeObjects(world: Float32Array, C: number, objs: MovingObject[], tau: number): void {
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

// ---------------------------------------------------------------------------------------------
// warping and accumulation

/** acc += bilinear(world at A(p)) for the S x S output area starting at (m, m) of the C x C canvas */
function accumulateWarp(acc: Float32Array, world: Float32Array, C: number, S: number, m: number, f: Affine): void {
  const maxC = C - 1.000001;
  for (let y = 0; y < S; y++) {
    const py = y + m;
    let qx = f.a00 * m + f.a01 * py + f.b0;
    let qy = f.a10 * m + f.a11 * py + f.b1;
    let o = y * S * 3;
    for (let x = 0; x < S; x++, o += 3) {
      const sx = qx < 0 ? 0 : qx > maxC ? maxC : qx;
      const sy = qy < 0 ? 0 : qy > maxC ? maxC : qy;
      qx += f.a00;
      qy += f.a10;
      const x0 = sx | 0;
      const y0 = sy | 0;
      const fx = sx - x0;
      const fy = sy - y0;
      const p00 = (y0 * C + x0) * 3;
      const p01 = p00 + 3;
      const p10 = p00 + C * 3;
      const p11 = p10 + 3;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      acc[o] = acc[o]! + w00 * world[p00]! + w01 * world[p01]! + w10 * world[p10]! + w11 * world[p11]!;
      acc[o + 1] =
        acc[o + 1]! + w00 * world[p00 + 1]! + w01 * world[p01 + 1]! + w10 * world[p10 + 1]! + w11 * world[p11 + 1]!;
      acc[o + 2] =
        acc[o + 2]! + w00 * world[p00 + 2]! + w01 * world[p01 + 2]! + w10 * world[p10 + 2]! + w11 * world[p11 + 2]!;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// spatially varying defocus

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
function defocusRadiusMap(rng: Rng, S: number, maxR: number): Float32Array {
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

// ---------------------------------------------------------------------------------------------
// the pair

function resolveOptions(opts: SynthOptions): typeof DEFAULTS {
  const o = { ...DEFAULTS };
  for (const [k, v] of Object.entries(opts)) {
    if (v !== undefined && k in DEFAULTS) (o as Record<string, unknown>)[k] = v;
  }
  if (!Number.isInteger(o.size) || o.size < 16) throw new Error(`synthesizePair: size must be an integer >= 16, got ${o.size}`);
  const [a, b] = o.subFrames;
  if (!Number.isInteger(a) || !Number.isInteger(b) || a < 1 || b < a) {
    throw new Error(`synthesizePair: bad subFrames range [${a}, ${b}]`);
  }
  if (a % 2 === 0 && a === b) throw new Error(`synthesizePair: subFrames [${a}, ${b}] contains no odd count`);
  return o;
}

/**
 * Makes one blurry/sharp pair (both `size` x `size`, sRGB 0..1 quantised to 8 bit) from a photo
 * (sRGB 0..1). Deterministic for a given rng state and options.
 */
export function synthesizePair(photo: RGBImage, rng: Rng, opts: SynthOptions = {}): SynthPair {
  assertRGBImage(photo, 'synthesizePair: photo');
  const o = resolveOptions(opts);
  const S = o.size;
  const m = Math.ceil(0.15 * S) + 2; // margin: camera displacement never exceeds it
  const C = S + 2 * m;

  // sub-frame count (odd)
  const odds: number[] = [];
  for (let k = o.subFrames[0]; k <= o.subFrames[1]; k++) if (k % 2 === 1) odds.push(k);
  const n = rng.pick(odds);
  const mid = (n - 1) >> 1;

  // 1-2. scene crop at a random scale, linear light
  const short = Math.min(photo.width, photo.height);
  const fMin = Math.min(1, short / C);
  const fMax = Math.max(fMin, Math.min(o.maxDownscale, short / C));
  const scale = fMax > fMin * 1.0001 ? rng.logUniform(fMin, fMax) : fMin;
  let cropX = 0;
  let cropY = 0;
  let bestScore = -1;
  for (let t = 0; t < Math.max(1, o.cropTries); t++) {
    const x = rng.uniform(0, Math.max(0, photo.width - C * scale));
    const y = rng.uniform(0, Math.max(0, photo.height - C * scale));
    const score = textureScore(photo, x, y, C * scale, scale);
    if (score > bestScore) {
      bestScore = score;
      cropX = x;
      cropY = y;
    }
    if (score >= o.minTexture) break;
  }
  const flip = o.flip && rng.bool();
  const scene = resampleToLinear(photo, cropX, cropY, scale, C, C, flip);

  // 3. camera motion
  const cam = makeCameraMotion(rng, n, S, m, o);

  // 4. moving objects
  const nObj = rng.bool(o.objectProb) ? rng.int(1, Math.max(1, o.maxObjects)) : 0;
  const sources = opts.objectSources && opts.objectSources.length > 0 ? opts.objectSources : [photo];
  for (const s of sources) assertRGBImage(s, 'synthesizePair: objectSources');
  const objects = nObj > 0 ? makeObjects(rng, n, S, m, sources, nObj) : [];

  // render and average the sub-frames. Each sub-frame integrates its own short exposure (a duty
  // cycle of the frame interval, sampled with `micro` instants) so that fast motion gives a
  // continuous smear rather than n discrete copies; with a duty cycle < 1 some of the GoPro-like
  // gaps between frames remain. The sharp target is the instantaneous middle frame.
  const duty = rng.uniform(0.6, 1.0);
  let speed = 0; // largest image motion (px) per sub-frame interval
  for (let k = 0; k + 1 < n; k++) speed = Math.max(speed, affineDistance(cam.at(k), cam.at(k + 1), m, S));
  for (const ob of objects) {
    const spinStep = n > 1 ? (Math.abs(ob.spin) / (n - 1)) * 0.5 * Math.hypot(ob.w, ob.h) : 0;
    for (let k = 0; k + 1 < n; k++) {
      const d = Math.hypot(ob.pos[k + 1]![0] - ob.pos[k]![0], ob.pos[k + 1]![1] - ob.pos[k]![1]);
      speed = Math.max(speed, d + spinStep + affineDistance(cam.at(k), cam.at(k + 1), m, S));
    }
  }
  const microCap = Math.max(1, Math.floor(o.maxWarps / n));
  const microFor = (level: number) => Math.max(1, Math.min(microCap, Math.ceil((duty * speed * level) / o.microStepPx)));
  const micro = microFor(1);
  const world = objects.length > 0 ? new Float32Array(scene.length) : scene;
  const renderAt = (tau: number, into: Float32Array, poseAt: (tau: number) => Affine, objs: MovingObject[]) => {
    if (objs.length > 0) {
      world.set(scene);
      compositeObjects(world, C, objs, tau);
    }
    accumulateWarp(into, world, C, S, m, poseAt(tau));
  };
  /** The mean of the exposure's instants, in linear light. */
  const expose = (poseAt: (tau: number) => Affine, objs: MovingObject[], mic: number): Float32Array => {
    const acc = new Float32Array(S * S * 3);
    for (let k = 0; k < n; k++) {
      for (let j = 0; j < mic; j++) {
        const tau = mic === 1 ? k : k + duty * ((j + 0.5) / mic - 0.5);
        renderAt(tau, acc, poseAt, objs);
      }
    }
    const inv = 1 / (n * mic);
    for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! * inv;
    return acc;
  };
  const acc = expose(cam.at, objects, micro);
  const sharpLin = new Float32Array(S * S * 3);
  renderAt(mid, sharpLin, cam.at, objects);

  // 5. spatially varying defocus (blurry only)
  let defocusRadius = 0;
  let defocusMap: Float32Array | null = null;
  if (rng.bool(o.defocusProb) && o.maxDefocusRadius > 0) {
    defocusRadius = rng.uniform(Math.min(1, o.maxDefocusRadius), o.maxDefocusRadius);
    defocusMap = defocusRadiusMap(rng, S, defocusRadius);
    variableDiscBlur(acc, S, defocusMap);
  }

  // 6. sensor noise (blurry only), in linear light
  let shot = 0;
  let read = 0;
  const addNoise = (img: Float32Array, r: Rng) => {
    const read2 = read * read;
    for (let i = 0; i < img.length; i++) {
      const x = img[i]!;
      const sd = Math.sqrt(Math.max(0, shot * x + read2));
      img[i] = x + sd * r.normal();
    }
  };
  if (o.noise) {
    shot = rng.logUniform(o.shotNoise[0], o.shotNoise[1]);
    read = rng.logUniform(o.readNoise[0], o.readNoise[1]);
    addNoise(acc, rng);
  }

  const blurry = linearToSrgb8(acc, S, S);
  const sharp = linearToSrgb8(sharpLin, S, S);

  // 7. other blur levels: everything above drew from `rng` as without levels, so the pair is the
  // same; the levels' noise comes from a generator forked after it.
  let levels: SynthPair['levels'];
  if (opts.levels?.length) {
    const levelRng = rng.fork();
    levels = [];
    for (const L of checkLevels(opts.levels, 'synthesizePair: levels')) {
      if (L * cam.maxDisplacement > m - 1.5) continue; // the motion would leave the scene canvas
      const objs = objects.map((ob) => {
        const [mx, my] = ob.pos[mid]!;
        return { ...ob, pos: ob.pos.map(([x, y]): [number, number] => [mx + L * (x - mx), my + L * (y - my)]), spin: ob.spin * L };
      });
      const img = expose((tau) => scaleAffine(cam.at(tau), L), objs, microFor(L));
      if (defocusMap) variableDiscBlur(img, S, defocusMap.map((r) => r * L));
      if (o.noise) addNoise(img, levelRng);
      levels.push({ level: L, blurry: linearToSrgb8(img, S, S) });
    }
  }
  return {
    blurry,
    sharp,
    ...(levels ? { levels } : {}),
    info: {
      subFrames: n,
      microSamples: micro,
      duty,
      translationPx: cam.translationPx,
      rotationDeg: (cam.rotationRad * 180) / Math.PI,
      zoom: cam.zoom,
      maxDisplacementPx: cam.maxDisplacement,
      objects: objects.length,
      defocusRadius,
      shotNoise: shot,
      readNoise: read,
      crop: { x: cropX, y: cropY, scale, flip, texture: bestScore },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// folders

const PHOTO_EXTS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff']);

/** Photo files (sorted by name) directly inside `dir`. */
export async function listPhotos(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => !n.startsWith('.') && PHOTO_EXTS.has(extname(n).toLowerCase()));
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: string[] = [];
  for (const n of names) {
    const p = join(dir, n);
    if ((await stat(p)).isFile()) out.push(p);
  }
  return out;
}

export interface SynthFolderOptions {
  /** folder of sharp photos (e.g. data/photos/train) */
  from: string;
  /** output root: writes out/input/NNNNN.png (blurry) and out/target/NNNNN.png (sharp) */
  out: string;
  /** number of pairs */
  count: number;
  /** base seed; pair i uses Rng(deriveSeed(seed, i)), so any pair can be regenerated alone */
  seed: number;
  /** output side (default 320) */
  size?: number;
  /** index of the first pair (default 0), for generating a dataset in shards */
  start?: number;
  /**
   * synthesis options (size here is overridden by `size` when both are given); with
   * `synth.levels`, the blurry image at level L is also written as out/level-L/NNNNN.png
   */
  synth?: SynthOptions;
  /** photos are decoded with their shorter side limited to this (default 1024) */
  photoShortSide?: number;
  /** probability that moving objects come from a different photo than the scene (default 0.5) */
  otherPhotoObjectProb?: number;
  /** called after each written pair */
  onProgress?: (done: number, total: number) => void;
}

export interface SynthFolderRecord {
  name: string;
  photo: string;
  objectPhoto: string;
  seed: number;
  info: SynthInfo;
  /** the levels written for this pair (out/level-L/name), when levels were asked for */
  levels?: number[];
}

/** The folder of the blurry images at blur level `level` in a synth output folder. */
export const levelFolder = (out: string, level: number): string => join(out, `level-${level}`);

export interface SynthFolderResult {
  count: number;
  records: SynthFolderRecord[];
  /** path of the JSON manifest written next to input/ and target/ */
  manifest: string;
}

/**
 * Generates `count` pairs from the photos in `from` into GoPro layout under `out`
 * (input/NNNNN.png blurry, target/NNNNN.png sharp, same names) plus a JSON manifest.
 * Deterministic for (photos, seed, options): pair i depends only on the seed and i.
 */
export async function synthFolder(opts: SynthFolderOptions): Promise<SynthFolderResult> {
  const { from, out, count, seed } = opts;
  const start = opts.start ?? 0;
  if (!Number.isInteger(count) || count < 0) throw new Error(`synthFolder: count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(start) || start < 0) throw new Error(`synthFolder: start must be a non-negative integer, got ${start}`);
  const photos = await listPhotos(from);
  if (photos.length === 0) throw new Error(`synthFolder: no photos (.jpg/.png/.webp/.tif) in ${from}`);
  if (count === 0) return { count: 0, records: [], manifest: '' };
  const synthOpts: SynthOptions = { ...(opts.synth ?? {}) };
  if (opts.size !== undefined) synthOpts.size = opts.size;
  const shortSide = opts.photoShortSide ?? 1024;
  const otherProb = opts.otherPhotoObjectProb ?? 0.5;
  const digits = Math.max(5, String(start + count - 1).length);

  // decide each pair's photos up front (from its own rng), then work photo by photo
  interface Job {
    index: number;
    rng: Rng;
    seed: number;
    photo: number;
    objectPhoto: number;
  }
  const jobs: Job[] = [];
  for (let i = start; i < start + count; i++) {
    const s = deriveSeed(seed, i);
    const rng = new Rng(s);
    const photo = rng.int(0, photos.length - 1);
    const objectPhoto = rng.bool(otherProb) ? rng.int(0, photos.length - 1) : photo;
    jobs.push({ index: i, rng, seed: s, photo, objectPhoto });
  }
  const order = jobs.slice().sort((a, b) => a.photo - b.photo || a.index - b.index);

  const cache = new Map<number, RGBImage>();
  const load = async (idx: number): Promise<RGBImage> => {
    const hit = cache.get(idx);
    if (hit) {
      cache.delete(idx);
      cache.set(idx, hit); // LRU refresh
      return hit;
    }
    const img = await readImageRGB(photos[idx]!, { maxShortSide: shortSide });
    cache.set(idx, img);
    while (cache.size > 3) cache.delete(cache.keys().next().value as number);
    return img;
  };

  await mkdir(join(out, 'input'), { recursive: true });
  await mkdir(join(out, 'target'), { recursive: true });
  const records: SynthFolderRecord[] = new Array(count);
  let done = 0;
  for (const job of order) {
    const photo = await load(job.photo);
    const objPhoto = job.objectPhoto === job.photo ? photo : await load(job.objectPhoto);
    const pair = synthesizePair(photo, job.rng, { ...synthOpts, objectSources: [objPhoto] });
    const name = `${String(job.index).padStart(digits, '0')}.png`;
    await writeImageRGB(join(out, 'input', name), pair.blurry);
    await writeImageRGB(join(out, 'target', name), pair.sharp);
    for (const l of pair.levels ?? []) await writeImageRGB(join(levelFolder(out, l.level), name), l.blurry);
    records[job.index - start] = {
      name,
      photo: photos[job.photo]!,
      objectPhoto: photos[job.objectPhoto]!,
      seed: job.seed,
      info: pair.info,
      ...(pair.levels ? { levels: pair.levels.map((l) => l.level) } : {}),
    };
    done++;
    opts.onProgress?.(done, count);
  }
  const manifest = join(
    out,
    `synth-${String(start).padStart(digits, '0')}-${String(start + count - 1).padStart(digits, '0')}.json`,
  );
  const { objectSources: _drop, ...printable } = synthOpts;
  void _drop;
  await writeFile(
    manifest,
    JSON.stringify({ from, seed, start, count, photoShortSide: shortSide, options: printable, pairs: records }, null, 1) + '\n',
  );
  return { count, records, manifest };
}
