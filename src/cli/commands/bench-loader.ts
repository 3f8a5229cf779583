/**
 * `msdi bench --only loader`: how fast the training loader makes batches, decoding files every
 * time against cutting crops from its cache of decoded images (PairedLoaderOptions.cacheBytes).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { PairedLoader } from '../../data/paired.js';
import { Rng } from '../../data/rng.js';

const ASSETS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'assets');

/** `count` pairs of side x side PNGs: windows of the bundled sample pair at random places. */
async function makePairs(dir: string, count: number, side: number): Promise<void> {
  const rng = new Rng(7);
  for (const sub of ['input', 'target']) mkdirSync(join(dir, sub), { recursive: true });
  const { width = 0, height = 0 } = await sharp(join(ASSETS, 'sample-blurry.png')).metadata();
  for (let k = 0; k < count; k++) {
    const region = { left: rng.int(0, width - side), top: rng.int(0, height - side), width: side, height: side };
    const name = `${String(k).padStart(3, '0')}.png`;
    await sharp(join(ASSETS, 'sample-blurry.png')).extract(region).png().toFile(join(dir, 'input', name));
    await sharp(join(ASSETS, 'sample-sharp.png')).extract(region).png().toFile(join(dir, 'target', name));
  }
}

export interface LoaderBench {
  batch: number;
  crop: number;
  workers: number;
  /** ms per batch, files decoded for every crop */
  files_ms: number;
  /** ms per batch once every image is in the cache */
  cached_ms: number;
}

export async function loaderBench(o: { batch: number; crop: number; workers: number; rounds?: number }): Promise<LoaderBench> {
  const dir = mkdtempSync(join(tmpdir(), 'msdi-bench-loader-'));
  try {
    const pairs = 2 * o.batch;
    await makePairs(dir, pairs, 320);
    const time = async (cacheBytes: number): Promise<number> => {
      const L = new PairedLoader({ dir, crop: o.crop, batch: o.batch, seed: 1, workers: o.workers, prefetch: o.workers, cacheBytes });
      try {
        for (let s = 0; s < 2; s++) await L.get(s); // one pass over the pairs: fills the cache
        const steps = 8;
        const t0 = performance.now();
        for (let s = 2; s < 2 + steps; s++) await L.get(s);
        return (performance.now() - t0) / steps;
      } finally {
        await L.close();
      }
    };
    const files: number[] = [];
    const cached: number[] = [];
    // alternating rounds, so that a slow spell of the machine hits both
    for (let r = 0; r < (o.rounds ?? 2); r++) {
      files.push(await time(0));
      cached.push(await time(2 ** 30));
    }
    return { batch: o.batch, crop: o.crop, workers: o.workers, files_ms: Math.min(...files), cached_ms: Math.min(...cached) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
