/**
 * Measures of local blur for synthetic (or real) blurry/sharp pairs: per-tile gradient energy of
 * the luma (Rec. 601 weights on the sRGB values), and the blurry/sharp energy ratio per tile
 * (1 = as sharp as the target, smaller = more blur).
 */
import { assertRGBImage, type RGBImage } from './image-io.js';

function luma(img: RGBImage): Float32Array {
  const n = img.width * img.height;
  const y = new Float32Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) y[i] = 0.299 * d[i * 3]! + 0.587 * d[i * 3 + 1]! + 0.114 * d[i * 3 + 2]!;
  return y;
}

export interface TileMap {
  /** tiles across and down (partial tiles at the right/bottom edge are dropped) */
  cols: number;
  rows: number;
  tile: number;
  /** rows * cols values, row-major */
  values: Float64Array;
}

/** Mean squared forward difference (x and y) of the luma per tile. */
export function gradientEnergyMap(img: RGBImage, tile = 32): TileMap {
  assertRGBImage(img, 'gradientEnergyMap');
  if (!Number.isInteger(tile) || tile < 2) throw new Error(`gradientEnergyMap: bad tile ${tile}`);
  const W = img.width;
  const H = img.height;
  const cols = Math.floor(W / tile);
  const rows = Math.floor(H / tile);
  const y = luma(img);
  const values = new Float64Array(cols * rows);
  for (let ty = 0; ty < rows; ty++) {
    for (let tx = 0; tx < cols; tx++) {
      let e = 0;
      let cnt = 0;
      for (let j = ty * tile; j < (ty + 1) * tile; j++) {
        for (let i = tx * tile; i < (tx + 1) * tile; i++) {
          const v = y[j * W + i]!;
          if (i + 1 < W) {
            const d = y[j * W + i + 1]! - v;
            e += d * d;
            cnt++;
          }
          if (j + 1 < H) {
            const d = y[(j + 1) * W + i]! - v;
            e += d * d;
            cnt++;
          }
        }
      }
      values[ty * cols + tx] = cnt > 0 ? e / cnt : 0;
    }
  }
  return { cols, rows, tile, values };
}

/** Whole-image mean squared gradient of the luma. */
export function gradientEnergy(img: RGBImage): number {
  const m = gradientEnergyMap(img, Math.min(img.width, img.height));
  return m.values[0] ?? 0;
}

export interface BlurMapOptions {
  /** tiles whose sharp gradient energy is below this are textureless: NaN (default 1e-4) */
  minEnergy?: number;
}

/**
 * Per-tile blur measure: gradient energy of `blurry` divided by that of `sharp` (same size).
 * About 1 where the tile is sharp, towards 0 where it is strongly blurred; NaN on flat tiles.
 */
export function blurMagnitudeMap(blurry: RGBImage, sharp: RGBImage, tile = 32, opts: BlurMapOptions = {}): TileMap {
  if (blurry.width !== sharp.width || blurry.height !== sharp.height) {
    throw new Error(`blurMagnitudeMap: size mismatch ${blurry.width}x${blurry.height} vs ${sharp.width}x${sharp.height}`);
  }
  const minEnergy = opts.minEnergy ?? 1e-4;
  const b = gradientEnergyMap(blurry, tile);
  const s = gradientEnergyMap(sharp, tile);
  const values = new Float64Array(b.values.length);
  for (let i = 0; i < values.length; i++) {
    values[i] = s.values[i]! >= minEnergy ? b.values[i]! / s.values[i]! : Number.NaN;
  }
  return { cols: b.cols, rows: b.rows, tile, values };
}

export interface BlurMapSummary {
  /** number of finite tiles */
  tiles: number;
  min: number;
  max: number;
  median: number;
  /** max / min over the finite tiles (how much the blur varies across the frame) */
  spread: number;
  /** 90th / 10th percentile (a spread robust to single odd tiles) */
  robustSpread: number;
}

export function summarizeTileMap(map: TileMap): BlurMapSummary {
  const v = Array.from(map.values).filter((x) => Number.isFinite(x));
  v.sort((a, b) => a - b);
  if (v.length === 0) return { tiles: 0, min: NaN, max: NaN, median: NaN, spread: NaN, robustSpread: NaN };
  const q = (p: number) => v[Math.min(v.length - 1, Math.max(0, Math.round(p * (v.length - 1))))]!;
  const min = v[0]!;
  const max = v[v.length - 1]!;
  return {
    tiles: v.length,
    min,
    max,
    median: q(0.5),
    spread: min > 0 ? max / min : Infinity,
    robustSpread: q(0.1) > 0 ? q(0.9) / q(0.1) : Infinity,
  };
}
