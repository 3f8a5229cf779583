/**
 * Float RGB image I/O for the data pipeline (sharp for decode/encode).
 * Images are H x W x 3 interleaved (HWC), R, G, B order, sRGB-encoded values in 0..1.
 */
import { extname } from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from './atomic-write.js';

export interface RGBImage {
  width: number;
  height: number;
  /** length width * height * 3, HWC, values 0..1 (sRGB-encoded unless stated otherwise) */
  data: Float32Array;
}

export function createImage(width: number, height: number): RGBImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`createImage: bad size ${width}x${height}`);
  }
  return { width, height, data: new Float32Array(width * height * 3) };
}

export function assertRGBImage(img: RGBImage, what = 'image'): void {
  if (!img || !(img.data instanceof Float32Array)) {
    throw new Error(`${what}: expected {width, height, data: Float32Array}`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(
      `${what}: data length ${img.data.length} != ${img.width}x${img.height}x3 (${img.width * img.height * 3})`,
    );
  }
}

export interface ReadImageOptions {
  /**
   * When set, images whose shorter side exceeds this are downscaled (by sharp, Lanczos, with
   * JPEG shrink-on-load) so the shorter side equals it. Saves time and memory for large photos.
   */
  maxShortSide?: number;
}

/**
 * Decodes any image sharp reads into float RGB 0..1: applies the EXIF orientation, drops alpha
 * (not composited), expands grey to 3 channels and keeps 16 bits of precision for 16-bit files.
 */
export async function readImageRGB(path: string, opts: ReadImageOptions = {}): Promise<RGBImage> {
  try {
    const meta = await sharp(path).metadata();
    const sixteen = meta.depth === 'ushort' || meta.depth === 'short';
    let pipe = sharp(path).autoOrient();
    const w0 = meta.autoOrient?.width ?? meta.width;
    const h0 = meta.autoOrient?.height ?? meta.height;
    if (opts.maxShortSide !== undefined && w0 !== undefined && h0 !== undefined) {
      const short = Math.min(w0, h0);
      if (short > opts.maxShortSide) {
        const s = opts.maxShortSide / short;
        pipe = pipe.resize(Math.max(1, Math.round(w0 * s)), Math.max(1, Math.round(h0 * s)), {
          fit: 'fill',
          kernel: 'lanczos3',
        });
      }
    }
    pipe = pipe.removeAlpha().toColourspace(sixteen ? 'rgb16' : 'srgb');
    const { data, info } = await pipe.raw({ depth: sixteen ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
    const n = info.width * info.height * 3;
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    const out = new Float32Array(n);
    if (sixteen && data.length === n * 2) {
      const u16 = new Uint16Array(data.buffer, data.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = u16[i]! / 65535;
    } else if (data.length === n) {
      for (let i = 0; i < n; i++) out[i] = data[i]! / 255;
    } else {
      throw new Error(`unexpected raw buffer size ${data.length} for ${info.width}x${info.height}x3`);
    }
    return { width: info.width, height: info.height, data: out };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`readImageRGB: cannot decode ${path}: ${reason}`, { cause: err });
  }
}

/** Rounds 0..1 floats to bytes (clamped). */
export function toUint8RGB(img: RGBImage): Uint8Array {
  assertRGBImage(img, 'toUint8RGB');
  const d = img.data;
  const out = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = Math.round(d[i]! * 255);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export function formatFromPath(path: string): ImageFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.png') return 'png';
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  if (ext === '.webp') return 'webp';
  throw new Error(`writeImageRGB: unsupported extension '${ext}' in ${path} (use .png, .jpg, .jpeg or .webp)`);
}

export interface WriteImageOptions {
  /** JPEG/WEBP quality 1..100 (default 95); ignored for PNG. */
  quality?: number;
}

/** Encodes to an in-memory PNG/JPEG/WEBP (8-bit). */
export async function encodeImageRGB(img: RGBImage, format: ImageFormat, opts: WriteImageOptions = {}): Promise<Buffer> {
  const bytes = toUint8RGB(img);
  const pipe = sharp(bytes, { raw: { width: img.width, height: img.height, channels: 3 } });
  const quality = opts.quality ?? 95;
  switch (format) {
    case 'png':
      return pipe.png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer();
    case 'jpeg':
      return pipe.jpeg({ quality, chromaSubsampling: '4:4:4' }).toBuffer();
    case 'webp':
      return pipe.webp({ quality }).toBuffer();
  }
}

/**
 * Writes an image, format chosen by extension (.png, .jpg/.jpeg, .webp). The file is written to a
 * temporary name in the same folder and renamed into place, so readers never see a partial file.
 * Creates the folder when missing.
 */
export async function writeImageRGB(path: string, img: RGBImage, opts: WriteImageOptions = {}): Promise<void> {
  const format = formatFromPath(path);
  const buf = await encodeImageRGB(img, format, opts);
  await writeFileAtomic(path, buf, { force: true });
}
