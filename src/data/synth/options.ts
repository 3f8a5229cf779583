/** The synthesiser's options, what it reports per pair, and blur levels. */
import type { RGBImage } from '../image-io.js';

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
  /** also return the true blur of every pixel (SynthPair.motion); draws nothing from the rng */
  motion?: boolean;
}

/** Channels of SynthPair.motion, in order. */
export const MOTION_CHANNELS = ['dx0', 'dy0', 'dxq1', 'dyq1', 'dxq3', 'dyq3', 'dx1', 'dy1', 'defocus'] as const;

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
  /**
   * The true blur at every pixel (SynthOptions.motion), channels-first, MOTION_CHANNELS x size x
   * size: where the content seen at a pixel at the start of the exposure, a quarter, three
   * quarters and the end lies in the sharp frame, as an offset (dx, dy) in pixels from the pixel
   * (camera motion, and an object's own motion where it covers the pixel in the sharp frame;
   * objects' spin left out), then the defocus disc radius (0 without defocus).
   */
  motion?: Float32Array;
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

/** The options every pair is made with, unless SynthOptions says otherwise. */
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

export type SynthDefaults = typeof DEFAULTS;

export function resolveOptions(opts: SynthOptions): SynthDefaults {
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
