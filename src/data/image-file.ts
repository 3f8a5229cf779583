/**
 * Image files for restoration: everything sharp reads (PNG, JPEG, WebP, TIFF, ...), 8 or 16
 * bits, grey or colour, with or without alpha, EXIF orientation applied, read into float RGB
 * plus what is needed to write the result back the same way (alpha, bit depth, greyness).
 *
 * Reading refuses decompression bombs from the header's declared size before decoding, and
 * every failure is one line naming the file (an ImageFileError saying why). Images held in
 * memory (uploads) are read the same way by readImageBuffer, named by a label, never a path. Writing goes through a temporary file in the
 * destination folder renamed into place, and refuses to replace an existing file unless
 * `force`: an interrupted run never leaves a partial or clobbered image.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { assertRGBImage, type RGBImage } from './image-io.js';
import { writeFileAtomic } from './atomic-write.js';

export { writeFileAtomic };

export interface ImageFile {
  rgb: RGBImage;
  /** Alpha, width * height values 0..1, or null when the file has none. */
  alpha: Float32Array | null;
  bitDepth: 8 | 16;
  grey: boolean;
}

export interface ImageHeader {
  /** Size after the EXIF orientation is applied. */
  width: number;
  height: number;
  format: string;
  bitDepth: 8 | 16;
  grey: boolean;
  alpha: boolean;
}

/** 100 megapixels. */
export const DEFAULT_MAX_PIXELS = 100_000_000;

export interface ReadImageFileOptions {
  /** Largest width x height accepted, judged from the header before decoding (default 100 megapixels). */
  maxPixels?: number;
}

export type OutputFormat = 'png' | 'jpeg' | 'webp' | 'tiff';

/** Why an image could not be read: no file, not an image, above the pixel limit, damaged, or another failure. */
export type ImageFileProblem = 'missing' | 'not-an-image' | 'too-many-pixels' | 'corrupt' | 'unreadable';

/** A one-line failure to read an image, with its cause as `problem` (the server maps it to a status). */
export class ImageFileError extends Error {
  override name = 'ImageFileError';
  constructor(message: string, readonly problem: ImageFileProblem) {
    super(message);
  }
}

export interface ReadImageBufferOptions extends ReadImageFileOptions {
  /** Names the image in errors (default 'image'); for uploads, never the client's file name. */
  label?: string;
}

/** Extensions the restoration commands read from folders and write. */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff'] as const;

/** The format written for a path's extension, or null when it is not one we write. */
export function outputFormatFromPath(path: string): OutputFormat | null {
  switch (extname(path).toLowerCase()) {
    case '.png': return 'png';
    case '.jpg': case '.jpeg': return 'jpeg';
    case '.webp': return 'webp';
    case '.tif': case '.tiff': return 'tiff';
    default: return null;
  }
}

const megapixels = (n: number): string => {
  const m = n / 1e6;
  return m >= 100 ? m.toFixed(0) : m >= 1 ? String(Number(m.toFixed(1))) : String(Number(m.toPrecision(2)));
};

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0].trim();
}

/** One-line error for an image sharp could not open or decode. */
function describe(label: string, e: unknown, decoding: boolean): ImageFileError {
  const msg = firstLine(e);
  if (/Input file is missing/i.test(msg)) return new ImageFileError(`${label}: no such file`, 'missing');
  if (/unsupported image format/i.test(msg)) return new ImageFileError(`${label}: not an image (or a format that cannot be read)`, 'not-an-image');
  if (/exceeds pixel limit/i.test(msg)) return new ImageFileError(`${label}: image is above the pixel limit (--max-pixels)`, 'too-many-pixels');
  if (/premature|truncat|read error|end of|corrupt|invalid|bad /i.test(msg)) {
    return new ImageFileError(`${label}: cannot decode the image, truncated or corrupt (${msg})`, 'corrupt');
  }
  return new ImageFileError(`${label}: cannot ${decoding ? 'decode' : 'read'} the image (${msg})`, 'unreadable');
}

async function checkFile(path: string): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw code === 'ENOENT' ? new ImageFileError(`${path}: no such file`, 'missing') : new ImageFileError(`${path}: cannot read (${firstLine(e)})`, 'unreadable');
  }
  if (st.isDirectory()) throw new ImageFileError(`${path}: is a folder, not an image`, 'not-an-image');
  if (!st.isFile()) throw new ImageFileError(`${path}: not a regular file`, 'not-an-image');
  if (st.size === 0) throw new ImageFileError(`${path}: empty file (0 bytes)`, 'not-an-image');
}

function checkBuffer(buf: Uint8Array, label: string): void {
  if (!(buf instanceof Uint8Array)) throw new TypeError(`readImageBuffer: expected a Buffer or Uint8Array for ${label}, got ${typeof buf}`);
  if (buf.length === 0) throw new ImageFileError(`${label}: empty (0 bytes)`, 'not-an-image');
}

function checkPixels(path: string, width: number, height: number, maxPixels: number): void {
  const n = width * height;
  if (n > maxPixels) {
    throw new ImageFileError(`${path}: image is ${width} x ${height} = ${megapixels(n)} megapixels, above the limit of ${megapixels(maxPixels)} (--max-pixels)`, 'too-many-pixels');
  }
}

function maxPixelsOf(o: ReadImageFileOptions): number {
  const m = o.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(m > 0)) throw new Error(`maxPixels must be > 0, got ${m}`);
  return m;
}

/** What sharp opens: a file path or bytes in memory, and the name used in errors. */
interface Source {
  input: string | Buffer;
  label: string;
}

async function probe({ input, label }: Source, maxPixels: number): Promise<ImageHeader> {
  let meta: Metadata;
  try {
    // The header alone: no limit here so that we can name the size in the error below.
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw describe(label, e, false);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new ImageFileError(`${label}: the header declares no image size`, 'not-an-image');
  checkPixels(label, width, height, maxPixels);
  const channels = meta.channels ?? 3;
  const alpha = Boolean(meta.hasAlpha);
  return {
    width, height,
    format: meta.format ?? 'unknown',
    bitDepth: meta.depth === 'uchar' || meta.depth === 'char' || meta.depth === undefined ? 8 : 16,
    grey: channels - (alpha ? 1 : 0) === 1,
    alpha,
  };
}

async function decode({ input, label }: Source, head: ImageHeader, maxPixels: number): Promise<ImageFile> {
  const sixteen = head.bitDepth === 16;
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await sharp(input, { limitInputPixels: maxPixels, failOn: 'warning' })
      .autoOrient()
      .toColourspace(sixteen ? 'rgb16' : 'srgb')
      .raw({ depth: sixteen ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw describe(label, e, true);
  }
  const { width, height, channels } = raw.info;
  if (channels !== 3 && channels !== 4) throw new Error(`${label}: unexpected ${channels} channels after conversion to RGB`);
  const n = width * height;
  const bytes = sixteen ? 2 : 1;
  if (raw.data.length !== n * channels * bytes) throw new Error(`${label}: decoded ${raw.data.length} bytes for ${width}x${height}x${channels}`);
  const src: Uint8Array | Uint16Array = sixteen
    ? new Uint16Array(raw.data.buffer, raw.data.byteOffset, n * channels)
    : raw.data;
  const scale = 1 / (sixteen ? 65535 : 255);
  const rgb = new Float32Array(n * 3);
  const alpha = channels === 4 ? new Float32Array(n) : null;
  for (let i = 0, s = 0; i < n; i++, s += channels) {
    rgb[i * 3] = src[s] * scale;
    rgb[i * 3 + 1] = src[s + 1] * scale;
    rgb[i * 3 + 2] = src[s + 2] * scale;
    if (alpha) alpha[i] = src[s + 3] * scale;
  }
  return { rgb: { width, height, data: rgb }, alpha, bitDepth: head.bitDepth, grey: head.grey };
}

/**
 * Reads only the header: size (as displayed, after EXIF orientation), bit depth, grey, alpha.
 * Refuses images above the pixel limit; nothing is decoded.
 */
export async function probeImageFile(path: string, o: ReadImageFileOptions = {}): Promise<ImageHeader> {
  const maxPixels = maxPixelsOf(o);
  await checkFile(path);
  return probe({ input: path, label: path }, maxPixels);
}

/**
 * Decodes an image into float RGB 0..1 (grey expanded to 3 channels, EXIF orientation applied,
 * 16-bit precision kept), with its alpha kept apart, unpremultiplied.
 */
export async function readImageFile(path: string, o: ReadImageFileOptions = {}): Promise<ImageFile> {
  const maxPixels = maxPixelsOf(o);
  const head = await probeImageFile(path, { maxPixels });
  return decode({ input: path, label: path }, head, maxPixels);
}

/** probeImageFile for an image held in memory (an upload): errors start with `o.label`. */
export async function probeImageBuffer(buf: Uint8Array, o: ReadImageBufferOptions = {}): Promise<ImageHeader> {
  const label = o.label ?? 'image';
  const maxPixels = maxPixelsOf(o);
  checkBuffer(buf, label);
  return probe({ input: Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), label }, maxPixels);
}

/** readImageFile for an image held in memory (an upload): nothing touches the file system. */
export async function readImageBuffer(buf: Uint8Array, o: ReadImageBufferOptions = {}): Promise<ImageFile> {
  const label = o.label ?? 'image';
  const maxPixels = maxPixelsOf(o);
  checkBuffer(buf, label);
  const source = { input: Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), label };
  return decode(source, await probe(source, maxPixels), maxPixels);
}

export interface WriteImageFileOptions {
  /** Replace an existing file (default: refuse). */
  force?: boolean;
  /** JPEG / WebP quality 1..100 (default 95). */
  quality?: number;
  /** Output format; default from the path's extension. */
  format?: OutputFormat;
}

/**
 * Encodes to a buffer: alpha kept where the format has it (not JPEG), 16 bits for PNG / TIFF
 * when `bitDepth` is 16, one grey channel (the mean of R, G, B) when `grey` (not WebP).
 */
export async function encodeImageFile(img: ImageFile, format: OutputFormat, o: { quality?: number } = {}): Promise<Buffer> {
  const { rgb } = img;
  assertRGBImage(rgb, 'encodeImageFile');
  const n = rgb.width * rgb.height;
  if (img.alpha && img.alpha.length !== n) throw new Error(`encodeImageFile: alpha has ${img.alpha.length} values for ${rgb.width}x${rgb.height}`);
  const alpha = format === 'jpeg' ? null : img.alpha;
  const grey = img.grey && format !== 'webp';
  const sixteen = img.bitDepth === 16 && (format === 'png' || format === 'tiff');
  const colour = grey ? 1 : 3;
  const channels = colour + (alpha ? 1 : 0);
  const max = sixteen ? 65535 : 255;
  const out = sixteen ? new Uint16Array(n * channels) : new Uint8Array(n * channels);
  const q = (v: number): number => {
    const r = Math.round(v * max);
    return r > 0 ? (r < max ? r : max) : 0; // NaN -> 0
  };
  const d = rgb.data;
  for (let i = 0, o = 0; i < n; i++) {
    if (grey) out[o++] = q((d[i * 3] + d[i * 3 + 1] + d[i * 3 + 2]) / 3);
    else {
      out[o++] = q(d[i * 3]);
      out[o++] = q(d[i * 3 + 1]);
      out[o++] = q(d[i * 3 + 2]);
    }
    if (alpha) out[o++] = q(alpha[i]);
  }
  let pipe = sharp(out, { raw: { width: rgb.width, height: rgb.height, channels: channels as 1 | 2 | 3 | 4 } })
    .toColourspace(grey ? (sixteen ? 'grey16' : 'b-w') : sixteen ? 'rgb16' : 'srgb');
  const quality = o.quality ?? 95;
  switch (format) {
    case 'png': pipe = pipe.png({ compressionLevel: 6 }); break;
    case 'jpeg': pipe = pipe.jpeg({ quality, chromaSubsampling: '4:4:4' }); break;
    case 'webp': pipe = pipe.webp({ quality, alphaQuality: 100 }); break;
    case 'tiff': pipe = pipe.tiff({ compression: 'deflate', predictor: 'horizontal' }); break;
  }
  return pipe.toBuffer();
}

/** Writes an image, format from `o.format` or the extension (.png, .jpg/.jpeg, .webp, .tif/.tiff). */
export async function writeImageFile(path: string, img: ImageFile, o: WriteImageFileOptions = {}): Promise<void> {
  const format = o.format ?? outputFormatFromPath(path);
  if (!format) throw new Error(`${path}: cannot tell the format from the extension '${extname(path)}' (use .png, .jpg, .jpeg, .webp, .tif or .tiff)`);
  if (!o.force && existsSync(path)) throw new Error(`${path}: already exists (--force to overwrite)`);
  let buf: Buffer;
  try {
    buf = await encodeImageFile(img, format, o);
  } catch (e) {
    throw new Error(`${path}: cannot encode the image (${firstLine(e)})`);
  }
  await writeFileAtomic(path, buf, { force: o.force });
}
