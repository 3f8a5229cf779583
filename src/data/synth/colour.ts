/** sRGB transfer functions, and quantising linear light to 8-bit sRGB. */
import type { RGBImage } from '../image-io.js';

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
export function getEotfLut(): Float32Array {
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
