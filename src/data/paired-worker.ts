/**
 * Decode + crop + augment for the paired (GoPro-layout) training loader.
 *
 * This module is two things:
 *  - a library: `runPairJob` (used directly by PairedLoader when `workers: 0`) and `decodeRGB`
 *    (used by `loadPairs`);
 *  - a worker_threads entry point: when loaded as a Worker with workerData `{ kind: WORKER_KIND }`
 *    it answers `{ id, job }` messages with `{ id, blurry, sharp }` (Float32Arrays transferred, not
 *    copied) or `{ id, error }`. Loading it on the main thread has no side effects.
 *
 * Everything random in a job is derived from (seed, step, i) here, so the output is a pure function
 * of the job description and the files: which thread runs it cannot change a byte.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { deriveSeed, Rng } from './rng.js';
import { channelOrder } from './channel-permutation.js';

export const WORKER_KIND = 'msdi-paired-worker';

/** Domain tag mixed into the per-sample seed: deriveSeed(seed, CROP_TAG, step, i). */
export const CROP_TAG = 0x63726f70; // 'crop'

export interface PairSample {
  /** index of the sample inside the *global* batch of its step (0 <= i < batch) */
  i: number;
  name: string;
  blurryPath: string;
  sharpPath: string;
  /** the blur at another level (msdi synth --levels), cropped and augmented like the pair */
  levelPath?: string;
}

export interface PairJob {
  seed: number;
  step: number;
  crop: number;
  augment: boolean;
  /** each sample's RGB channels in the order channelOrder draws (colour augmentation) */
  permuteChannels?: boolean;
  samples: PairSample[];
  /** images of this job already decoded whole (by path): crops are cut from them, no file is read */
  cached?: Record<string, CachedImage>;
  /** decode the other images whole and return them in `decoded`, for the loader's cache */
  fill?: boolean;
}

/**
 * A whole decoded image kept for later crops: interleaved RGB (HWC) after EXIF orientation,
 * 8 bit (max 255) or 16 bit (max 65535), in memory that every worker thread shares.
 */
export interface CachedImage {
  data: SharedArrayBuffer;
  width: number;
  height: number;
  max: 255 | 65535;
}

export interface PairJobResult {
  /** samples.length x 3 x crop x crop, NCHW, RGB, 0..1 */
  blurry: Float32Array;
  sharp: Float32Array;
  /** the samples' levelPath images, when every sample has one */
  level?: Float32Array;
  /** with PairJob.fill: the images this job decoded whole, by path */
  decoded?: Record<string, CachedImage>;
}

export interface SampleParams {
  top: number;
  left: number;
  hflip: boolean;
  vflip: boolean;
  rot90: boolean;
  /** output channel c is input channel channels[c] */
  channels: readonly [number, number, number];
}

const RGB = [0, 1, 2] as const;

/**
 * The random crop/augmentation of global sample i of step `step` for an image of (oriented) size
 * width x height. Draw order: top, left, hflip, vflip, rot90 (the flips are drawn, and ignored, when
 * augment is false, so switching augmentation off does not move the crops). The channel order,
 * with `permute`, comes from its own seed (channelOrder), so it does not move them either.
 */
export function sampleParams(
  seed: number,
  step: number,
  i: number,
  width: number,
  height: number,
  crop: number,
  augment: boolean,
  permute = false,
): SampleParams {
  const rng = new Rng(deriveSeed(seed, CROP_TAG, step, i));
  const top = rng.int(0, height - crop);
  const left = rng.int(0, width - crop);
  const hflip = rng.bool(0.5);
  const vflip = rng.bool(0.5);
  const rot90 = rng.bool(0.5);
  const channels = permute ? channelOrder(seed, step, i) : RGB;
  return augment ? { top, left, hflip, vflip, rot90, channels } : { top, left, hflip: false, vflip: false, rot90: false, channels };
}

interface ImageInfo {
  /** size after EXIF orientation */
  width: number;
  height: number;
  sixteen: boolean;
}

/** Header info per file (cheap, but a file is opened once per epoch so it is worth keeping). */
const infoCache = new Map<string, ImageInfo>();
const INFO_CACHE_MAX = 100_000;

function errMsg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function imageInfo(path: string): Promise<ImageInfo> {
  const hit = infoCache.get(path);
  if (hit) return hit;
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    meta = await sharp(path).metadata();
  } catch (err) {
    throw new Error(`paired: cannot read ${path}: ${errMsg(err)}`, { cause: err });
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new Error(`paired: cannot read the size of ${path}`);
  const info: ImageInfo = { width, height, sixteen: meta.depth === 'ushort' || meta.depth === 'short' };
  if (infoCache.size >= INFO_CACHE_MAX) infoCache.clear();
  infoCache.set(path, info);
  return info;
}

export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Raw interleaved RGB (HWC) of a region, 8 or 16 bit. */
interface RawRGB {
  data: Uint8Array | Uint16Array;
  width: number;
  height: number;
  /** 255 or 65535 */
  max: number;
}

/**
 * Decodes (a region of) an image: EXIF orientation applied first (the region is in displayed
 * coordinates), alpha dropped, grey expanded to RGB, 16-bit files kept at 16 bits. The region is
 * cut by sharp's extract, so libvips only decodes what it needs.
 */
async function decodeRaw(path: string, info: ImageInfo, region: Region | null): Promise<RawRGB> {
  try {
    let pipe = sharp(path).autoOrient();
    if (region && !(region.left === 0 && region.top === 0 && region.width === info.width && region.height === info.height)) {
      pipe = pipe.extract(region);
    }
    pipe = pipe.removeAlpha().toColourspace(info.sixteen ? 'rgb16' : 'srgb');
    const { data, info: out } = await pipe
      .raw({ depth: info.sixteen ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (out.channels !== 3) throw new Error(`expected 3 channels, got ${out.channels}`);
    const n = out.width * out.height * 3;
    if (info.sixteen) {
      if (data.length !== n * 2) throw new Error(`unexpected raw size ${data.length} for ${out.width}x${out.height}x3x16bit`);
      // Buffers from sharp may sit at an odd offset inside a pool: copy when misaligned
      const u16 =
        data.byteOffset % 2 === 0
          ? new Uint16Array(data.buffer, data.byteOffset, n)
          : new Uint16Array(new Uint8Array(data).buffer, 0, n);
      return { data: u16, width: out.width, height: out.height, max: 65535 };
    }
    if (data.length !== n) throw new Error(`unexpected raw size ${data.length} for ${out.width}x${out.height}x3`);
    return { data, width: out.width, height: out.height, max: 255 };
  } catch (err) {
    throw new Error(`paired: cannot decode ${path}: ${errMsg(err)}`, { cause: err });
  }
}

/**
 * Writes the S x S crop at (left, top) of an HWC raw image into `out` (CHW planes at `offset`) as
 * 0..1 floats, applying BasicSR's augment in its order: hflip (flip columns), then vflip (flip
 * rows), then rot90 (which in BasicSR is a transpose, img.transpose(1, 0, 2)).
 * Output pixel (y, x) reads crop pixel (r, c) with: (r, c) = rot90 ? (x, y) : (y, x);
 * r = vflip ? S-1-r : r; c = hflip ? S-1-c : c.
 */
function writeAugmented(src: RawRGB, left: number, top: number, S: number, p: SampleParams, out: Float32Array, offset: number): void {
  const plane = S * S;
  const rowStep = src.width * 3;
  const rowBase = (top + (p.vflip ? S - 1 : 0)) * rowStep;
  const rowSign = p.vflip ? -rowStep : rowStep;
  const colBase = (left + (p.hflip ? S - 1 : 0)) * 3;
  const colSign = p.hflip ? -3 : 3;
  const dy = p.rot90 ? colSign : rowSign;
  const dx = p.rot90 ? rowSign : colSign;
  const base = rowBase + colBase;
  const d = src.data;
  const max = src.max;
  const R = offset;
  const G = offset + plane;
  const B = offset + 2 * plane;
  const [cr, cg, cb] = p.channels;
  for (let y = 0; y < S; y++) {
    let s = base + y * dy;
    const o = y * S;
    for (let x = 0; x < S; x++, s += dx) {
      out[R + o + x] = d[s + cr]! / max;
      out[G + o + x] = d[s + cg]! / max;
      out[B + o + x] = d[s + cb]! / max;
    }
  }
}

/** A decoded image moved into shared memory, for the loader's cache. */
function share(raw: RawRGB): CachedImage {
  const data = new SharedArrayBuffer(raw.data.byteLength);
  (raw.max === 255 ? new Uint8Array(data) : new Uint16Array(data)).set(raw.data);
  return { data, width: raw.width, height: raw.height, max: raw.max === 255 ? 255 : 65535 };
}

function view(c: CachedImage): RawRGB {
  return { data: c.max === 255 ? new Uint8Array(c.data) : new Uint16Array(c.data), width: c.width, height: c.height, max: c.max };
}

/** HWC raw -> CHW float 0..1 (no augmentation, any size). */
function toCHW(src: RawRGB): Float32Array {
  const plane = src.width * src.height;
  const out = new Float32Array(plane * 3);
  const d = src.data;
  const max = src.max;
  for (let k = 0, s = 0; k < plane; k++, s += 3) {
    out[k] = d[s]! / max;
    out[plane + k] = d[s + 1]! / max;
    out[2 * plane + k] = d[s + 2]! / max;
  }
  return out;
}

/**
 * Whole image (or a centred crop of at most maxSide x maxSide) as CHW RGB 0..1.
 */
export async function decodeRGB(
  path: string,
  maxSide?: number,
): Promise<{ data: Float32Array; width: number; height: number }> {
  const info = await imageInfo(path);
  let region: Region | null = null;
  if (maxSide !== undefined && (info.width > maxSide || info.height > maxSide)) {
    const w = Math.min(info.width, maxSide);
    const h = Math.min(info.height, maxSide);
    region = { left: Math.floor((info.width - w) / 2), top: Math.floor((info.height - h) / 2), width: w, height: h };
  }
  const raw = await decodeRaw(path, info, region);
  return { data: toCHW(raw), width: raw.width, height: raw.height };
}

/** Decodes, crops and augments the samples of one job; results are in `job.samples` order. */
export async function runPairJob(job: PairJob): Promise<PairJobResult> {
  const { crop, samples } = job;
  const per = 3 * crop * crop;
  const blurry = new Float32Array(samples.length * per);
  const sharpOut = new Float32Array(samples.length * per);
  const withLevels = samples.length > 0 && samples.every((s) => s.levelPath !== undefined);
  const levelOut = withLevels ? new Float32Array(samples.length * per) : undefined;
  // with `fill`, each image is decoded whole once per job (a pair can come twice in a batch)
  const whole = new Map<string, Promise<CachedImage>>();
  const wholeImage = (path: string, info: ImageInfo): Promise<CachedImage> => {
    let c = whole.get(path);
    if (!c) whole.set(path, (c = decodeRaw(path, info, null).then(share)));
    return c;
  };
  const size = async (path: string): Promise<{ width: number; height: number }> => job.cached?.[path] ?? imageInfo(path);
  /** the crop (region p, crop x crop) of `path`, written augmented into `out` */
  const cropInto = async (path: string, p: SampleParams, out: Float32Array, k: number): Promise<void> => {
    const hit = job.cached?.[path];
    if (hit) return writeAugmented(view(hit), p.left, p.top, crop, p, out, k * per);
    const info = await imageInfo(path);
    if (job.fill) return writeAugmented(view(await wholeImage(path, info)), p.left, p.top, crop, p, out, k * per);
    const region = { left: p.left, top: p.top, width: crop, height: crop };
    writeAugmented(await decodeRaw(path, info, region), 0, 0, crop, p, out, k * per);
  };
  await Promise.all(
    samples.map(async (s, k) => {
      const [ib, is] = await Promise.all([size(s.blurryPath), size(s.sharpPath)]);
      if (ib.width !== is.width || ib.height !== is.height) {
        throw new Error(
          `paired: size mismatch for "${s.name}": ${s.blurryPath} is ${ib.width}x${ib.height} but ${s.sharpPath} is ${is.width}x${is.height}`,
        );
      }
      if (ib.width < crop || ib.height < crop) {
        throw new Error(`paired: image ${s.blurryPath} is ${ib.width}x${ib.height}, smaller than the crop size ${crop}`);
      }
      const p = sampleParams(job.seed, job.step, s.i, ib.width, ib.height, crop, job.augment, job.permuteChannels);
      await Promise.all([cropInto(s.blurryPath, p, blurry, k), cropInto(s.sharpPath, p, sharpOut, k)]);
      if (levelOut && s.levelPath === s.blurryPath) {
        levelOut.set(blurry.subarray(k * per, (k + 1) * per), k * per); // level 1: the blurry crop itself
      } else if (levelOut && s.levelPath) {
        const il = await size(s.levelPath);
        if (il.width !== ib.width || il.height !== ib.height) {
          throw new Error(`paired: size mismatch for "${s.name}": ${s.levelPath} is ${il.width}x${il.height} but ${s.blurryPath} is ${ib.width}x${ib.height}`);
        }
        await cropInto(s.levelPath, p, levelOut, k);
      }
    }),
  );
  const result: PairJobResult = levelOut ? { blurry, sharp: sharpOut, level: levelOut } : { blurry, sharp: sharpOut };
  if (whole.size) {
    const decoded: Record<string, CachedImage> = {};
    for (const [path, c] of whole) decoded[path] = await c;
    result.decoded = decoded;
  }
  return result;
}

// ---- worker entry point -------------------------------------------------------------------------

export interface WorkerRequest {
  id: number;
  job: PairJob;
}
export type WorkerReply = ({ id: number } & PairJobResult) | { id: number; error: string };

if (!isMainThread && parentPort && (workerData as { kind?: unknown } | null)?.kind === WORKER_KIND) {
  const port = parentPort;
  // jobs run one after another (each job already decodes all its images in parallel); the main
  // thread keeps the next job queued here so the worker never waits for a busy main thread
  let chain: Promise<void> = Promise.resolve();
  port.on('message', (msg: WorkerRequest) => {
    chain = chain.then(() =>
      runPairJob(msg.job).then(
        (r) => {
          const reply: WorkerReply = { id: msg.id, ...r };
          port.postMessage(reply, [r.blurry, r.sharp, ...(r.level ? [r.level] : [])].map((a) => a.buffer as ArrayBuffer));
        },
        (err: unknown) => {
          const reply: WorkerReply = { id: msg.id, error: errMsg(err) };
          port.postMessage(reply);
        },
      ),
    );
  });
}
