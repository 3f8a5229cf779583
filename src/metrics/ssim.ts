/**
 * SSIM exactly as the official Learning_degradation code (BasicSR fork,
 * basicsr/metrics/psnr_ssim.py) computes it, plus the classic BasicSR per-channel SSIM.
 *
 * ssim3d — the repo's `calculate_ssim` (`_ssim_3d`): the H x W x C image is one volume,
 *   filtered by a Conv3d with an 11x11x11 Gaussian window (cv2.getGaussianKernel(11, 1.5)
 *   along every axis: weight[d,i,j] = g[d] g[i] g[j]), padding=(5,5,5) with
 *   padding_mode='replicate' on ALL THREE axes — rows, columns and the channel axis (the
 *   3 channels are padded to 13 by repeating the first/last channel). The output has the
 *   input's shape, and the SSIM map is averaged over all H*W*C values.
 *   C1 = (0.01 max)^2, C2 = (0.03 max)^2 with max = 255 (BasicSR: 1 if img1.max() <= 1).
 *   With test_y_channel the repo uses `_ssim_cly` instead: a 2-D 11x11 Gaussian with
 *   cv2.BORDER_REPLICATE on the Y plane, mean over all H*W values (no crop).
 *
 * ssimPerChannel — classic BasicSR `_ssim`, averaged over channels: per channel a 2-D
 *   11x11 Gaussian (sigma 1.5), cv2.filter2D then [5:-5, 5:-5] — i.e. only windows fully
 *   inside the image ("valid"), C1 = (0.01*255)^2, C2 = (0.03*255)^2. With testYChannel it
 *   is `_ssim` on the Y plane.
 *
 * Channel order: the fixtures were made from cv2 (BGR) arrays, ours are RGB. PSNR and the
 *   per-channel SSIM are order-invariant. The 3-D SSIM is invariant to REVERSING the
 *   channel axis (RGB <-> BGR is exactly a reversal for 3 channels): the Gaussian along that
 *   axis is symmetric and replicate padding is symmetric, so reversing the input reverses
 *   the filtered volume and leaves the mean unchanged. (It is not invariant to other
 *   permutations, e.g. GRB.) test/metrics.test.ts checks this: RGB and BGR give the same
 *   value (to 1e-12) and both match fixtures.json `ssim_3d` (|err| <= 1.6e-5); a GRB order
 *   misses by 1.2e-4 .. 1.3e-3.
 *
 * Implementation: the window is separable and the replicate padding clamps each axis
 * independently, so the 3-D filter = (channel mix: a C x C matrix, since the channel axis
 * is only C long) x (horizontal 11 taps) x (vertical 11 taps). Rows are streamed through an
 * 11-row ring buffer of horizontally filtered rows (5 quantities: x, y, x^2, y^2, xy), so
 * memory is O(11 * W * C) and all buffers are allocated once per call.
 *
 * Precision: everything here is float64 (exact to ~1e-15). The reference ran Conv3d in
 * float32 (`torch.tensor(img).float()`), whose 1331-term accumulations of values up to 65025
 * carry rounding error that biases its SSIM upward: fixtures.json `ssim_3d` is 0.95e-5 ..
 * 1.5e-5 above our value. A (slow) brute-force emulation with float32 weights and float32
 * accumulation lands within 3.3e-7 of the fixtures, which confirms the cause; the float64
 * value is the one this module returns. PSNR and the per-channel SSIM (float64 in the
 * reference too) match to 1e-14.
 */
import {
  prepareViews,
  type Image8,
  type PlaneView,
} from './image.js';
import { resolveMaxValue } from './psnr.js';

export interface SsimOptions {
  /** pixels removed from each edge before the metric (BasicSR `crop_border`); default 0 */
  cropBorder?: number;
  /** compute on the BT.601 Y channel (BasicSR `test_y_channel`); default false */
  testYChannel?: boolean;
}

export interface Ssim3dOptions extends SsimOptions {
  /**
   * Peak value for C1/C2. Default 255. `'auto'` is BasicSR's `1 if img1.max() <= 1 else 255`.
   * (Ignored with testYChannel: `_ssim_cly` hard-codes 255.)
   */
  maxValue?: number | 'auto';
}

const KSIZE = 11;
const HALF = 5;

/** cv2.getGaussianKernel(11, 1.5) (float64, normalised to sum 1). */
export function gaussianKernel(ksize = KSIZE, sigma = 1.5): Float64Array {
  const k = new Float64Array(ksize);
  const c = (ksize - 1) / 2;
  let sum = 0;
  for (let i = 0; i < ksize; i++) {
    const x = i - c;
    k[i] = Math.exp((-x * x) / (2 * sigma * sigma));
    sum += k[i];
  }
  for (let i = 0; i < ksize; i++) k[i] /= sum;
  return k;
}

const G = gaussianKernel();

/**
 * The Conv3d along a channel axis of length C with replicate padding 5, as a C x C matrix
 * (row-major): out[c] = sum_d M[c][d] in[d], M[c][d] = sum of g[k] over k with
 * clamp(c + k - 5, 0, C - 1) == d.
 */
export function channelMixMatrix(channels: number): Float64Array {
  const m = new Float64Array(channels * channels);
  for (let c = 0; c < channels; c++) {
    for (let k = 0; k < KSIZE; k++) {
      const d = Math.min(Math.max(c + k - HALF, 0), channels - 1);
      m[c * channels + d] += G[k];
    }
  }
  return m;
}

export interface FilterMode {
  /** 5 = replicate padding on rows and columns (same-size output); 0 = valid windows only */
  pad: 0 | 5;
  /** apply the 3-D window's channel-axis factor (replicate-padded) */
  mixChannels: boolean;
}

/** Loads the 5 quantities (x, y, x^2, y^2, xy) of input row r into the padded row buffer. */
function loadRow(
  a: PlaneView,
  b: PlaneView,
  r: number,
  rowQ: Float64Array,
  rowIn: number,
  pad: number,
): void {
  const da = a.data;
  const db = b.data;
  const pa = a.offset + r * a.stride;
  const pb = b.offset + r * b.stride;
  const C = a.channels;
  const n = a.width * C;
  const o0 = pad * C;
  const o1 = rowIn + o0, o2 = 2 * rowIn + o0, o3 = 3 * rowIn + o0, o4 = 4 * rowIn + o0;
  for (let i = 0; i < n; i++) {
    const x = da[pa + i];
    const y = db[pb + i];
    rowQ[o0 + i] = x;
    rowQ[o1 + i] = y;
    rowQ[o2 + i] = x * x;
    rowQ[o3 + i] = y * y;
    rowQ[o4 + i] = x * y;
  }
}

/** Applies the channel-axis factor of the 3-D window (C x C matrix) in place, 3 channels. */
function mixChannels3(rowQ: Float64Array, rowIn: number, start: number, n: number, mix: Float64Array): void {
  const m00 = mix[0], m01 = mix[1], m02 = mix[2];
  const m10 = mix[3], m11 = mix[4], m12 = mix[5];
  const m20 = mix[6], m21 = mix[7], m22 = mix[8];
  for (let q = 0; q < 5; q++) {
    const base = q * rowIn + start;
    for (let p = base, end = base + n; p < end; p += 3) {
      const v0 = rowQ[p], v1 = rowQ[p + 1], v2 = rowQ[p + 2];
      rowQ[p] = m00 * v0 + m01 * v1 + m02 * v2;
      rowQ[p + 1] = m10 * v0 + m11 * v1 + m12 * v2;
      rowQ[p + 2] = m20 * v0 + m21 * v1 + m22 * v2;
    }
  }
}

/** Same as mixChannels3 for any channel count. */
function mixChannelsN(
  rowQ: Float64Array,
  rowIn: number,
  start: number,
  n: number,
  mix: Float64Array,
  C: number,
  scratch: Float64Array,
): void {
  for (let q = 0; q < 5; q++) {
    const base = q * rowIn + start;
    for (let p = base, end = base + n; p < end; p += C) {
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let d = 0; d < C; d++) s += mix[c * C + d] * rowQ[p + d];
        scratch[c] = s;
      }
      for (let c = 0; c < C; c++) rowQ[p + c] = scratch[c];
    }
  }
}

/** Replicates the first / last pixel of each quantity row into the pad columns. */
function replicateColumns(rowQ: Float64Array, rowIn: number, W: number, C: number, pad: number): void {
  for (let q = 0; q < 5; q++) {
    const base = q * rowIn;
    const first = base + pad * C;
    const last = base + (pad + W - 1) * C;
    for (let k = 0; k < pad; k++) {
      for (let c = 0; c < C; c++) {
        rowQ[base + k * C + c] = rowQ[first + c];
        rowQ[last + (k + 1) * C + c] = rowQ[last + c];
      }
    }
  }
}

/** Horizontal 11-tap Gaussian (symmetric) of the 5 quantity rows into `out` at `dst`. */
function filterRow(
  rowQ: Float64Array,
  rowIn: number,
  out: Float64Array,
  dst: number,
  rowOut: number,
  C: number,
): void {
  const g0 = G[0], g1 = G[1], g2 = G[2], g3 = G[3], g4 = G[4], g5 = G[5];
  const c1 = C, c2 = 2 * C, c3 = 3 * C, c4 = 4 * C, c5 = 5 * C;
  const c6 = 6 * C, c7 = 7 * C, c8 = 8 * C, c9 = 9 * C, c10 = 10 * C;
  for (let q = 0; q < 5; q++) {
    const src = q * rowIn;
    const d = dst + q * rowOut;
    for (let j = 0; j < rowOut; j++) {
      const p = src + j;
      out[d + j] =
        g0 * (rowQ[p] + rowQ[p + c10]) +
        g1 * (rowQ[p + c1] + rowQ[p + c9]) +
        g2 * (rowQ[p + c2] + rowQ[p + c8]) +
        g3 * (rowQ[p + c3] + rowQ[p + c7]) +
        g4 * (rowQ[p + c4] + rowQ[p + c6]) +
        g5 * rowQ[p + c5];
    }
  }
}

/**
 * Vertical 11-tap Gaussian of one output row: `rows` holds the ring offsets of the 11
 * input rows (already clamped for replicate padding); writes 5 * rowOut values to vq.
 */
function filterColumn(ring: Float64Array, rows: Int32Array, vq: Float64Array, len: number): void {
  const g0 = G[0], g1 = G[1], g2 = G[2], g3 = G[3], g4 = G[4], g5 = G[5];
  const r0 = rows[0], r1 = rows[1], r2 = rows[2], r3 = rows[3], r4 = rows[4], r5 = rows[5];
  const r6 = rows[6], r7 = rows[7], r8 = rows[8], r9 = rows[9], r10 = rows[10];
  for (let i = 0; i < len; i++) {
    vq[i] =
      g0 * (ring[r0 + i] + ring[r10 + i]) +
      g1 * (ring[r1 + i] + ring[r9 + i]) +
      g2 * (ring[r2 + i] + ring[r8 + i]) +
      g3 * (ring[r3 + i] + ring[r7 + i]) +
      g4 * (ring[r4 + i] + ring[r6 + i]) +
      g5 * ring[r5 + i];
  }
}

/** Sum of the SSIM map over one output row of filtered statistics. */
function ssimRowSum(vq: Float64Array, rowOut: number, C1: number, C2: number): number {
  const o1 = rowOut, o2 = 2 * rowOut, o3 = 3 * rowOut, o4 = 4 * rowOut;
  let sum = 0;
  for (let i = 0; i < rowOut; i++) {
    const mu1 = vq[i];
    const mu2 = vq[o1 + i];
    const mu1sq = mu1 * mu1;
    const mu2sq = mu2 * mu2;
    const mu12 = mu1 * mu2;
    const sigma1sq = vq[o2 + i] - mu1sq;
    const sigma2sq = vq[o3 + i] - mu2sq;
    const sigma12 = vq[o4 + i] - mu12;
    sum += ((2 * mu12 + C1) * (2 * sigma12 + C2)) / ((mu1sq + mu2sq + C1) * (sigma1sq + sigma2sq + C2));
  }
  return sum;
}

/**
 * Mean of the SSIM map of two same-shape views under the given filtering. The core of
 * every SSIM variant here.
 */
export function gaussianSsimMean(a: PlaneView, b: PlaneView, mode: FilterMode, C1: number, C2: number): number {
  const { width: W, height: H, channels: C } = a;
  const pad = mode.pad;
  const Wout = W + 2 * pad - (KSIZE - 1);
  const Hout = H + 2 * pad - (KSIZE - 1);
  if (Wout <= 0 || Hout <= 0) {
    throw new RangeError(
      `ssim: expected an image of at least ${KSIZE}x${KSIZE} pixels (after cropping), got ${W}x${H}`,
    );
  }
  const rowIn = (W + 2 * pad) * C; // padded row length, per quantity
  const rowOut = Wout * C; // filtered row length, per quantity
  const slotLen = 5 * rowOut;
  // one padded input row of the 5 quantities (x, y, x^2, y^2, xy), quantity-major
  const rowQ = new Float64Array(5 * rowIn);
  // ring of 11 horizontally filtered rows; input row r lives in slot r % 11
  const ring = new Float64Array(KSIZE * slotLen);
  // one vertically filtered output row of the 5 quantities
  const vq = new Float64Array(slotLen);
  const rows = new Int32Array(KSIZE);
  const mix = mode.mixChannels && C > 1 ? channelMixMatrix(C) : null;
  const scratch = new Float64Array(C);

  let next = 0; // next input row to filter horizontally
  let total = 0;
  for (let yo = 0; yo < Hout; yo++) {
    const top = yo - pad;
    const hi = Math.min(top + KSIZE - 1, H - 1);
    for (; next <= hi; next++) {
      loadRow(a, b, next, rowQ, rowIn, pad);
      if (mix !== null) {
        if (C === 3) mixChannels3(rowQ, rowIn, pad * C, W * C, mix);
        else mixChannelsN(rowQ, rowIn, pad * C, W * C, mix, C, scratch);
      }
      if (pad > 0) replicateColumns(rowQ, rowIn, W, C, pad);
      filterRow(rowQ, rowIn, ring, (next % KSIZE) * slotLen, rowOut, C);
    }
    for (let k = 0; k < KSIZE; k++) {
      const r = Math.min(Math.max(top + k, 0), H - 1); // clamp = replicate padding
      rows[k] = (r % KSIZE) * slotLen;
    }
    filterColumn(ring, rows, vq, slotLen);
    total += ssimRowSum(vq, rowOut, C1, C2);
  }
  return total / (Hout * rowOut);
}

/**
 * The repo's SSIM (`calculate_ssim` -> `_ssim_3d`): 3-D Gaussian SSIM over the H x W x C
 * volume with replicate padding on all three axes; mean over all H*W*C values.
 * With `testYChannel` it is the repo's `_ssim_cly` (2-D, replicate border) on Y.
 */
export function ssim3d(img1: Image8, img2: Image8, options: Ssim3dOptions = {}): number {
  const what = 'ssim3d';
  const [a, b] = prepareViews(img1, img2, options, what);
  if (options.testYChannel) {
    return gaussianSsimMean(a, b, { pad: 5, mixChannels: false }, (0.01 * 255) ** 2, (0.03 * 255) ** 2);
  }
  const max = resolveMaxValue(options.maxValue, a, what);
  return gaussianSsimMean(a, b, { pad: 5, mixChannels: true }, (0.01 * max) ** 2, (0.03 * max) ** 2);
}

/**
 * Classic BasicSR SSIM: per channel, 2-D 11x11 Gaussian (sigma 1.5) over valid windows only
 * (cv2.filter2D + [5:-5, 5:-5]), mean over channels. With `testYChannel`, `_ssim` on Y.
 */
export function ssimPerChannel(img1: Image8, img2: Image8, options: SsimOptions = {}): number {
  const what = 'ssimPerChannel';
  const [a, b] = prepareViews(img1, img2, options, what);
  // Every channel has the same number of valid windows, so the mean over all
  // (rows, columns, channels) equals the mean over channels of the per-channel means.
  return gaussianSsimMean(a, b, { pad: 0, mixChannels: false }, (0.01 * 255) ** 2, (0.03 * 255) ** 2);
}
