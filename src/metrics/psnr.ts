/**
 * PSNR as BasicSR's `calculate_psnr` (basicsr/metrics/psnr_ssim.py) computes it:
 * crop `cropBorder` pixels from every edge, optionally convert to the BT.601 Y channel,
 * mse = mean over all H x W x C samples (float64), psnr = 20 log10(max / sqrt(mse)),
 * Infinity when mse == 0.
 */
import {
  prepareViews,
  viewMax,
  type Image8,
  type PlaneView,
} from './image.js';

export interface PsnrOptions {
  /** pixels removed from each edge before the metric (BasicSR `crop_border`); default 0 */
  cropBorder?: number;
  /** compute on the BT.601 Y channel (BasicSR `test_y_channel`); default false */
  testYChannel?: boolean;
  /**
   * Peak value. Default 255 (the images are 8-bit). `'auto'` reproduces BasicSR's
   * data-dependent rule `1 if img1.max() <= 1 else 255`, which only differs for images
   * whose every sample is 0 or 1.
   */
  maxValue?: number | 'auto';
}

/** Mean of squared differences over two views of the same shape (float64 accumulation). */
export function meanSquaredError(a: PlaneView, b: PlaneView): number {
  const rowLen = a.width * a.channels;
  const da = a.data;
  const db = b.data;
  let total = 0;
  for (let y = 0; y < a.height; y++) {
    const pa = a.offset + y * a.stride;
    const pb = b.offset + y * b.stride;
    let row = 0;
    for (let i = 0; i < rowLen; i++) {
      const d = da[pa + i] - db[pb + i];
      row += d * d;
    }
    total += row;
  }
  return total / (rowLen * a.height);
}

/** PSNR in dB between two images (HWC, 0..255, same shape); Infinity for identical images. */
export function psnr(img1: Image8, img2: Image8, options: PsnrOptions = {}): number {
  const what = 'psnr';
  const [a, b] = prepareViews(img1, img2, options, what);
  const mse = meanSquaredError(a, b);
  if (mse === 0) return Infinity;
  const maxValue = resolveMaxValue(options.maxValue, a, what);
  return 20 * Math.log10(maxValue / Math.sqrt(mse));
}

/** Shared by psnr and ssim3d: a positive number, or BasicSR's `1 if img1.max() <= 1 else 255`. */
export function resolveMaxValue(maxValue: number | 'auto' | undefined, img1: PlaneView, what: string): number {
  if (maxValue === undefined) return 255;
  if (maxValue === 'auto') return viewMax(img1) <= 1 ? 1 : 255;
  if (typeof maxValue !== 'number' || !(maxValue > 0) || !Number.isFinite(maxValue)) {
    throw new RangeError(`${what}: expected positive number or 'auto' for maxValue, got ${String(maxValue)}`);
  }
  return maxValue;
}
