/**
 * Tile plans and blending for restoring images of any size with a network that sees
 * `tile` x `tile` crops.
 *
 * A plan lists tile positions on a canvas: the image itself, reflect-padded up to the tile
 * size in any dimension smaller than the tile (so the network always sees tile x tile crops,
 * whose sides are multiples of 16, at the scale it was trained on; the padding is virtual:
 * tiles are read from the image with reflected indices). The tiles are the cartesian product
 * of row positions `ys` and column positions `xs`, row-major (the official code's order).
 *
 * Blending weights are separable: tile (k, l) has weight wy[k](y) * wx[l](x), so the sum of
 * weights at a pixel is sy(y) * sx(x) and no per-pixel weight buffer is needed. The
 * accumulator holds one float output buffer of the image's size; tiles are added as they come.
 */
import type { RGBImage } from '../data/image-io.js';

export type Blend = 'uniform' | 'feather';

export interface TilePlan {
  /** The image's size. */
  height: number;
  width: number;
  /** The size of the crops the network sees (the tile size). */
  tileH: number;
  tileW: number;
  /** Top rows and left columns of the tiles, on the (virtually padded) canvas. */
  ys: number[];
  xs: number[];
  blend: Blend;
  /** One 1-D window per row position (length tileH) and per column position (length tileW). */
  wy: Float32Array[];
  wx: Float32Array[];
}

/** Number of tiles in a plan. */
export function tileCount(p: TilePlan): number {
  return p.ys.length * p.xs.length;
}

/** Tile `i` of a plan (row-major): its top-left corner and row / column position indices. */
export function tileAt(p: TilePlan, i: number): { y: number; x: number; r: number; c: number } {
  const r = Math.floor(i / p.xs.length);
  const c = i % p.xs.length;
  return { y: p.ys[r], x: p.xs[c], r, c };
}

function checkTile(tile: number): void {
  if (!Number.isInteger(tile) || tile < 16 || tile % 16 !== 0) {
    throw new Error(`tile size must be a multiple of 16 (the network halves the size 4 times), got ${tile}`);
  }
}

function checkSize(h: number, w: number): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw new Error(`bad image size ${w}x${h}`);
}

/**
 * The official repo's `grids()` positions along one dimension of length n >= tile:
 * num = (n-1)//tile + 1 tiles, step = tile for one tile else ceil((n-tile)/(num-1) - 1e-8),
 * walk from 0 by step, the last tile clamped to n - tile.
 */
export function officialPositions(n: number, tile: number): number[] {
  if (n < tile) throw new Error(`officialPositions: length ${n} is smaller than the tile ${tile}`);
  const num = Math.floor((n - 1) / tile) + 1;
  const step = num === 1 ? tile : Math.ceil((n - tile) / (num - 1) - 1e-8);
  const out: number[] = [];
  let i = 0;
  let last = false;
  while (i < n && !last) {
    if (i + tile >= n) {
      i = n - tile;
      last = true;
    }
    out.push(i);
    i += step;
  }
  return out;
}

/**
 * At least `overlap` px between neighbours, evenly spaced: the fewest tiles that achieve it,
 * at rounded multiples of (n - tile) / (count - 1). One tile at 0 when n <= tile.
 */
export function featherPositions(n: number, tile: number, overlap: number): number[] {
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= tile) {
    throw new Error(`overlap must be an integer in 0..${tile - 1} for tile ${tile}, got ${overlap}`);
  }
  if (n <= tile) return [0];
  const count = Math.ceil((n - overlap) / (tile - overlap));
  const span = n - tile;
  return Array.from({ length: count }, (_, k) => Math.round((k * span) / (count - 1)));
}

const ramp = (t: number): number => {
  const s = Math.sin((Math.PI / 2) * t);
  return s * s; // raised cosine: ramp(t) + ramp(1 - t) = 1
};

/**
 * Feather windows for tiles at `pos` (length `tile` each): 1 inside, raised-cosine ramps over
 * the actual overlap with each neighbour (none at the canvas border), complementary to the
 * neighbour's ramp so that two overlapping windows sum to exactly 1. Always > 0.
 */
export function featherWindows(pos: number[], tile: number): Float32Array[] {
  return pos.map((p, k) => {
    const left = k > 0 ? Math.max(0, pos[k - 1] + tile - p) : 0;
    const right = k + 1 < pos.length ? Math.max(0, p + tile - pos[k + 1]) : 0;
    const w = new Float32Array(tile);
    for (let x = 0; x < tile; x++) {
      let v = 1;
      if (x < left) v *= ramp((x + 0.5) / left);
      if (x >= tile - right) v *= ramp((tile - x - 0.5) / right);
      w[x] = v;
    }
    return w;
  });
}

function uniformWindows(count: number, tile: number): Float32Array[] {
  return Array.from({ length: count }, () => new Float32Array(tile).fill(1));
}

/** Size of the crops along a dimension and the canvas length: dimensions below the tile are padded to it. */
function canvas(n: number, tile: number): number {
  return Math.max(n, tile);
}

/** The official test protocol: `grids()` positions, overlaps averaged uniformly. */
export function officialGrid(h: number, w: number, tile = 256): TilePlan {
  checkSize(h, w);
  checkTile(tile);
  const ys = officialPositions(canvas(h, tile), tile);
  const xs = officialPositions(canvas(w, tile), tile);
  return { height: h, width: w, tileH: tile, tileW: tile, ys, xs, blend: 'uniform', wy: uniformWindows(ys.length, tile), wx: uniformWindows(xs.length, tile) };
}

/** Evenly spaced tiles overlapping by at least `overlap` px, blended with feather windows. */
export function featherGrid(h: number, w: number, tile = 256, overlap = 32): TilePlan {
  checkSize(h, w);
  checkTile(tile);
  const ys = featherPositions(canvas(h, tile), tile, overlap);
  const xs = featherPositions(canvas(w, tile), tile, overlap);
  return { height: h, width: w, tileH: tile, tileW: tile, ys, xs, blend: 'feather', wy: featherWindows(ys, tile), wx: featherWindows(xs, tile) };
}

/** Sum of the 1-D windows at every canvas position 0..n-1 (only 0..len-1 are returned). */
export function windowSum(pos: number[], win: Float32Array[], len: number): Float64Array {
  const s = new Float64Array(len);
  pos.forEach((p, k) => {
    const wk = win[k];
    for (let i = 0; i < wk.length; i++) if (p + i < len) s[p + i] += wk[i];
  });
  return s;
}

/** Index i of a signal of length n, mirrored at the ends without repeating the edge sample (numpy 'reflect'), any i. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/**
 * Copies tile `(y, x)` of the image (reflect-padded where it leaves the image) into `dst` at
 * `offset`, as 3 x tileH x tileW planes (CHW), ready for an N x 3 x H x W batch.
 */
export function extractTile(img: RGBImage, p: TilePlan, y: number, x: number, dst: Float32Array, offset = 0): void {
  const { width: W, height: H, data } = img;
  const { tileH: th, tileW: tw } = p;
  const plane = th * tw;
  const cols = new Int32Array(tw);
  for (let j = 0; j < tw; j++) cols[j] = reflectIndex(x + j, W) * 3;
  for (let i = 0; i < th; i++) {
    const row = reflectIndex(y + i, H) * W * 3;
    const o = offset + i * tw;
    for (let j = 0; j < tw; j++) {
      const s = row + cols[j];
      dst[o + j] = data[s];
      dst[o + plane + j] = data[s + 1];
      dst[o + 2 * plane + j] = data[s + 2];
    }
  }
}

/**
 * Adds restored tiles (CHW, tileH x tileW) into one HWC float buffer of the image's size with
 * the plan's weights; `result()` divides by the (separable) weight sums and clamps to 0..1.
 * Memory: 12 bytes per image pixel, whatever the number of tiles.
 */
export class TileAccumulator {
  readonly #out: Float32Array;
  readonly #added: Uint8Array;
  #finished = false;

  constructor(readonly plan: TilePlan) {
    this.#out = new Float32Array(plan.height * plan.width * 3);
    this.#added = new Uint8Array(tileCount(plan));
  }

  /** Adds tile `index` (row-major in the plan) from `src` at `offset` (3 x tileH x tileW). */
  add(index: number, src: Float32Array, offset = 0): void {
    if (this.#finished) throw new Error('TileAccumulator: result() was already taken');
    if (!(index >= 0 && index < this.#added.length)) throw new Error(`TileAccumulator: no tile ${index}`);
    if (this.#added[index]) throw new Error(`TileAccumulator: tile ${index} added twice`);
    const p = this.plan;
    const { tileH: th, tileW: tw, width: W, height: H } = p;
    const plane = th * tw;
    if (src.length < offset + 3 * plane) throw new Error(`TileAccumulator: tile data too short (${src.length - offset} < ${3 * plane})`);
    const { y, x, r, c } = tileAt(p, index);
    const wy = p.wy[r];
    const wx = p.wx[c];
    const out = this.#out;
    const jEnd = Math.min(tw, W - x);
    const iEnd = Math.min(th, H - y);
    for (let i = 0; i < iEnd; i++) {
      const a = wy[i];
      const o = ((y + i) * W + x) * 3;
      const s = offset + i * tw;
      for (let j = 0; j < jEnd; j++) {
        const wgt = a * wx[j];
        const d = o + j * 3;
        out[d] += wgt * src[s + j];
        out[d + 1] += wgt * src[s + plane + j];
        out[d + 2] += wgt * src[s + 2 * plane + j];
      }
    }
    this.#added[index] = 1;
  }

  /** The blended image, clamped to 0..1 (normalised in place: the accumulator is spent). */
  result(): RGBImage {
    if (this.#finished) throw new Error('TileAccumulator: result() was already taken');
    const missing = this.#added.indexOf(0);
    if (missing >= 0) throw new Error(`TileAccumulator: tile ${missing} of ${this.#added.length} was never added`);
    this.#finished = true;
    const p = this.plan;
    const { width: W, height: H } = p;
    const sy = windowSum(p.ys, p.wy, H);
    const sx = windowSum(p.xs, p.wx, W);
    const out = this.#out;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const inv = 1 / (sy[y] * sx[x]);
        const d = (y * W + x) * 3;
        for (let ch = 0; ch < 3; ch++) {
          const v = out[d + ch] * inv;
          out[d + ch] = v > 0 ? (v < 1 ? v : 1) : 0; // NaN -> 0
        }
      }
    }
    return { width: W, height: H, data: out };
  }
}
