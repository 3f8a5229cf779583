/**
 * Image container shared by the metrics, plus the two pre-processing steps that BasicSR
 * applies before computing a metric (`crop_border` and `to_y_channel`).
 */

/** An interleaved (HWC) image with values on the 0..255 scale. Metrics treat it as RGB. */
export interface Image8 {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array | Float32Array /* HWC, values 0..255 */;
}

/** Any typed array the metric kernels read samples from. */
export type Samples = Uint8Array | Float32Array | Float64Array;

/** A rectangular window into interleaved samples (used for crop_border without copying). */
export interface PlaneView {
  data: Samples;
  /** offset (in samples) of the window's top-left pixel, channel 0 */
  offset: number;
  /** samples per source row */
  stride: number;
  width: number;
  height: number;
  channels: number;
}

function describe(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return `${value} of type ${typeof value}`;
  if (value === null) return 'null';
  if (typeof value === 'object') return `${(value as object).constructor?.name ?? 'object'}`;
  return `${String(value)} of type ${typeof value}`;
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/** Throws unless `img` is a well-formed Image8 (named `name` in the message). */
export function assertImage8(img: Image8, name: string, what = 'metrics'): void {
  if (img === null || typeof img !== 'object') {
    throw new TypeError(`${what}: expected an Image8 object for ${name}, got ${describe(img)}`);
  }
  for (const key of ['width', 'height', 'channels'] as const) {
    if (!isPositiveInt(img[key])) {
      throw new RangeError(`${what}: expected positive integer for ${name}.${key}, got ${describe(img[key])}`);
    }
  }
  if (!(img.data instanceof Uint8Array) && !(img.data instanceof Float32Array)) {
    throw new TypeError(`${what}: expected Uint8Array or Float32Array for ${name}.data, got ${describe(img.data)}`);
  }
  const n = img.width * img.height * img.channels;
  if (img.data.length !== n) {
    throw new RangeError(
      `${what}: expected ${n} samples (${img.height}x${img.width}x${img.channels}) for ${name}.data, got ${img.data.length}`,
    );
  }
}

/** Throws unless both images are valid and have the same H x W x C shape. */
export function assertSameShape(a: Image8, b: Image8, what: string): void {
  assertImage8(a, 'img1', what);
  assertImage8(b, 'img2', what);
  if (a.width !== b.width || a.height !== b.height || a.channels !== b.channels) {
    throw new RangeError(
      `${what}: expected img2 of shape ${a.height}x${a.width}x${a.channels} (same as img1), ` +
        `got ${b.height}x${b.width}x${b.channels}`,
    );
  }
}

/** Checks crop_border and returns it (0 when undefined). */
export function checkCropBorder(img: Image8, cropBorder: number | undefined, what: string): number {
  const c = cropBorder ?? 0;
  if (typeof c !== 'number' || !Number.isInteger(c) || c < 0) {
    throw new RangeError(`${what}: expected non-negative integer for cropBorder, got ${describe(c)}`);
  }
  if (2 * c >= img.width || 2 * c >= img.height) {
    throw new RangeError(
      `${what}: expected cropBorder < ${Math.ceil(Math.min(img.width, img.height) / 2)} ` +
        `for a ${img.width}x${img.height} image, got ${c}`,
    );
  }
  return c;
}

/**
 * The view left after BasicSR's `img[c:-c, c:-c, ...]` (no copy). `cropBorder` must have
 * been checked with `checkCropBorder`.
 */
export function cropView(img: Image8, cropBorder: number): PlaneView {
  const stride = img.width * img.channels;
  return {
    data: img.data,
    offset: cropBorder * stride + cropBorder * img.channels,
    stride,
    width: img.width - 2 * cropBorder,
    height: img.height - 2 * cropBorder,
    channels: img.channels,
  };
}

/**
 * BasicSR `metric_util.to_y_channel` on an RGB view: ITU-R BT.601 luma on the 0..255
 * scale (16..235), not rounded. BasicSR's images are BGR (cv2) and it calls
 * `bgr2ycbcr`; ours are RGB, so the weights are applied to R, G, B accordingly.
 * The float32 steps of the Python code are reproduced with `Math.fround`:
 *   x = float32(v) / 255 (float32);  y = float32((b*24.966 + g*128.553 + r*65.481 + 16) / 255);
 *   Y = float32(y * 255).
 * Returns a single-channel view over a new Float64Array.
 */
export function toYChannel(view: PlaneView): PlaneView {
  if (view.channels !== 3) {
    // BasicSR returns the image unchanged unless it has 3 channels.
    return view;
  }
  const { width, height, data, offset, stride } = view;
  const out = new Float64Array(width * height);
  const f = Math.fround;
  let o = 0;
  for (let y = 0; y < height; y++) {
    let p = offset + y * stride;
    for (let x = 0; x < width; x++, p += 3) {
      const r = f(f(data[p]) / 255);
      const g = f(f(data[p + 1]) / 255);
      const b = f(f(data[p + 2]) / 255);
      const yy = f((b * 24.966 + g * 128.553 + r * 65.481 + 16.0) / 255);
      out[o++] = f(yy * 255);
    }
  }
  return { data: out, offset: 0, stride: width, width, height, channels: 1 };
}

/** Largest sample value in a view (BasicSR picks max_value = 1 when img1.max() <= 1). */
export function viewMax(view: PlaneView): number {
  const { data, offset, stride, width, height, channels } = view;
  const rowLen = width * channels;
  let m = -Infinity;
  for (let y = 0; y < height; y++) {
    const p0 = offset + y * stride;
    for (let i = 0; i < rowLen; i++) {
      const v = data[p0 + i];
      if (v > m) m = v;
    }
  }
  return m;
}

/**
 * The common start of every metric, as BasicSR does it: same shape checked, `cropBorder`
 * pixels removed from each edge, then optionally the BT.601 Y channel.
 */
export function prepareViews(
  img1: Image8, img2: Image8, o: { cropBorder?: number; testYChannel?: boolean }, what: string,
): [PlaneView, PlaneView] {
  assertSameShape(img1, img2, what);
  const crop = checkCropBorder(img1, o.cropBorder, what);
  const a = cropView(img1, crop);
  const b = cropView(img2, crop);
  return o.testYChannel ? [toYChannel(a), toYChannel(b)] : [a, b];
}
