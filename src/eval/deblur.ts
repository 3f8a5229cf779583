/**
 * Deblurring photos of any size: the image is cut into tile x tile crops (src/eval/tiles.ts),
 * restored in small batches, and blended back. Memory is bounded by one batch of tiles plus
 * one float output buffer of the image's size, whatever the image size.
 */
import { Tensor, inferenceMode, tidy, releaseFreeMemory, withAutocast, ampDtype, exclusive, type Amp } from '../engine/index.js';
import { assertRGBImage, type RGBImage } from '../data/image-io.js';
import { deblurFn, type LoadedModel } from './model.js';
import { TileAccumulator, extractTile, featherGrid, officialGrid, tileCount, type TilePlan } from './tiles.js';

export interface DeblurOptions {
  /** 'feather' (default): overlapping tiles blended without seams; 'official': the paper's test protocol. */
  grid?: 'feather' | 'official';
  /** Crop size the network sees, a multiple of 16 (default 256, the training crop size). */
  tile?: number;
  /** Minimum overlap between neighbouring tiles for the feather grid (default 32, a quarter of tiles under 128). */
  overlap?: number;
  /** Tiles per forward pass (default 4 when the model's width wf <= 16, else 1). */
  batch?: number;
  /** Called after every batch with the tiles done and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Checked before every batch of tiles: once aborted, deblurImage stops there and throws the signal's reason. */
  signal?: AbortSignal;
  /**
   * Self-ensemble (the restoration literature's test-time augmentation): every tile is restored
   * in the 8 orientations of the square (flips and transposes), each result turned back and the
   * 8 averaged. 8 times the work; off by default, and not what the paper's numbers use.
   */
  ensemble?: boolean;
  /**
   * Mixed precision: 'bf16' runs the convolutions in bfloat16 (libtorch's autocast), the rest
   * and the output in float32. On a CPU with AVX-512 BF16 about 0.7x the time, outputs within
   * about 57 dB PSNR of float32's (README, Commands); CPUs without it emulate bf16, likely slower.
   * Default 'off'.
   */
  amp?: Amp;
}

/** The 8 orientations of a square as (forward, inverse) on N x C x H x W tensors. */
const ORIENTATIONS: Array<[(x: Tensor) => Tensor, (y: Tensor) => Tensor]> = [false, true].flatMap((t) =>
  [[], [3], [2], [2, 3]].map((dims): [(x: Tensor) => Tensor, (y: Tensor) => Tensor] => {
    const flip = (x: Tensor) => (dims.length ? x.flip(dims) : x);
    const transpose = (x: Tensor) => (t ? x.transpose(2, 3) : x);
    return [(x) => transpose(flip(x)), (y) => flip(transpose(y))];
  }));

/** `fn` averaged over the 8 orientations (its input and output: N x 3 x H x W). */
export function selfEnsemble(fn: (x: Tensor) => Tensor): (x: Tensor) => Tensor {
  return (x) => tidy(() => {
    let sum: Tensor | null = null;
    for (const [forward, inverse] of ORIENTATIONS) {
      const y = inverse(fn(forward(x).contiguous()));
      sum = sum ? sum.add(y) : y;
    }
    return sum!.div(ORIENTATIONS.length);
  });
}

/** The feather grid's overlap unless one is given: 32 px, a quarter of tiles under 128 (it must stay below the tile). */
export const defaultOverlap = (tile: number): number => Math.min(32, tile / 4);

/** The tile plan deblurImage would use for an image of this size. */
export function planFor(height: number, width: number, o: Pick<DeblurOptions, 'grid' | 'tile' | 'overlap'> = {}): TilePlan {
  const grid = o.grid ?? 'feather';
  const tile = o.tile ?? 256;
  if (grid === 'official') return officialGrid(height, width, tile);
  if (grid === 'feather') return featherGrid(height, width, tile, o.overlap ?? defaultOverlap(tile));
  throw new Error(`grid must be 'feather' or 'official', got ${JSON.stringify(grid)}`);
}

/** Restores `img` (HWC floats 0..1) with `model`; returns a new image of the same size, clamped to 0..1. */
export function deblurImage(model: LoadedModel, img: RGBImage, o: DeblurOptions = {}): RGBImage {
  assertRGBImage(img, 'deblurImage');
  const plan = planFor(img.height, img.width, o);
  const batch = o.batch ?? (model.spec.wf <= 16 ? 4 : 1);
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`batch must be an integer >= 1, got ${batch}`);
  const total = tileCount(plan);
  const { tileH: th, tileW: tw } = plan;
  const per = 3 * th * tw;
  const buf = new Float32Array(Math.min(batch, total) * per);
  const acc = new TileAccumulator(plan);
  const dtype = ampDtype(o.amp, 'deblurImage');
  const restore = o.ensemble ? selfEnsemble(deblurFn(model)) : deblurFn(model);
  const fn = (x: Tensor) => withAutocast(model.device, dtype, () => restore(x));
  for (let first = 0; first < total; first += batch) {
    o.signal?.throwIfAborted();
    const n = Math.min(batch, total - first);
    for (let k = 0; k < n; k++) {
      const i = first + k;
      const r = Math.floor(i / plan.xs.length);
      extractTile(img, plan, plan.ys[r], plan.xs[i % plan.xs.length], buf, k * per);
    }
    // one batch of tiles at a time in the process (exclusive): threads take turns between batches
    const out = exclusive(() => inferenceMode(() =>
      tidy(() => {
        const x = Tensor.fromArray(n * per === buf.length ? buf : buf.subarray(0, n * per), [n, 3, th, tw], { device: model.device });
        const y = fn(x);
        const shape = y.shape;
        if (shape.length !== 4 || shape[0] !== n || shape[1] !== 3 || shape[2] !== th || shape[3] !== tw) {
          throw new Error(`deblurImage: the model returned [${shape.join(', ')}] for [${n}, 3, ${th}, ${tw}]`);
        }
        return y.toFloat32();
      }),
    ));
    for (let k = 0; k < n; k++) acc.add(first + k, out, k * per);
    // Keeps the resident size flat over hundreds of tiles (see releaseFreeMemory).
    releaseFreeMemory();
    o.onProgress?.(first + n, total);
  }
  return acc.result();
}
