/** Whole folders of pairs in the GoPro layout, from a folder of photos. */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { readImageRGB, writeImageRGB, type RGBImage } from '../image-io.js';
import { deriveSeed, Rng } from '../rng.js';
import type { SynthInfo, SynthOptions } from './options.js';
import { synthesizePair } from './pair.js';

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
   * `synth.levels`, the blurry image at level L is also written as out/level-L/NNNNN.png; with
   * `synth.motion`, each pair's true blur as out/motion/NNNNN.f32 (SynthPair.motion, raw float32)
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
    if (pair.motion) {
      // raw float32, little-endian, MOTION_CHANNELS x size x size
      const f32 = name.replace(/\.png$/, '.f32');
      await writeFileAtomic(join(out, 'motion', f32), Buffer.from(pair.motion.buffer, pair.motion.byteOffset, pair.motion.byteLength), { force: true });
    }
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
  const json = JSON.stringify({ from, seed, start, count, photoShortSide: shortSide, options: printable, pairs: records }, null, 1) + '\n';
  await writeFileAtomic(manifest, Buffer.from(json), { force: true });
  return { count, records, manifest };
}
