/**
 * Blur transfer with controllable levels (the paper's "interpolating blurry images"): the
 * degradation representation of a blurry image drives MSDI2E's reblurring generator
 * (`inverse_generator`) on a sharp image.
 *
 * The representation is computed once per image, from the whole image resized to 256 x 256
 * as the encoder does; its four latent maps describe the blur over the whole frame. The
 * generator then runs on the sharp image padded to a multiple of 16 (reflect), whole or in
 * overlapping feathered tiles, and each run reads the part of the latent maps that covers
 * it: the maps are sampled (bilinear, border-clamped) at the centres of the feature pixels of
 * each skip connection, in the coordinates of the unpadded image. For a whole 256 x 256
 * image this is the official forward (SPADE's nearest resize is then the identity); for
 * other sizes the latent maps stretch over the image, not over its padding, and tiles of one
 * image read one continuous representation, so there are no seams in the degradation.
 */
import { basename } from 'node:path';
import { Tensor, F, inferenceMode, stack, tidy, withAutocast, ampDtype, exclusive, type Amp } from '../engine/index.js';
import { assertRGBImage, createImage, type RGBImage } from '../data/image-io.js';
import { MSDI2E } from '../models/msdi2e.js';
import type { HINetGenerator } from '../models/generator.js';
import type { LoadedModel } from './model.js';

/** Generator depth 5: four stride-2 steps, so sides must be multiples of 16. */
export const SIZE_MULTIPLE = 16;
/** Images with at most this many pixels (after padding) run whole; larger ones in tiles. */
export const MAX_WHOLE_PIXELS = 1024 * 1024;

export interface ReblurOptions {
  /**
   * Blur level: 0 = the sharp image's own representation (no added blur), 1 = the
   * representation of `like`, up to 2 extrapolates beyond it. Default 1.
   */
  level?: number;
  /** Where the level interpolates (see LevelSpace); default 'latents'. */
  space?: LevelSpace;
  /** Tiling (for large images): tile side (multiple of 16, default 512) and overlap (default 64). */
  tile?: number;
  overlap?: number;
  /** Padded images with more pixels than this run in tiles (default 1024 x 1024). */
  maxWholePixels?: number;
  /** 'bf16': convolutions in bfloat16 under autocast, as DeblurOptions.amp; default 'off'. */
  amp?: Amp;
}

// ------------------------------------------------------------------ images <-> tensors

/** HWC 0..1 image -> 1 x 3 x H x W float32 tensor. */
export function imageToTensor(img: RGBImage): Tensor {
  assertRGBImage(img);
  return tidy(() => Tensor.fromArray(img.data, [1, img.height, img.width, 3]).permute([0, 3, 1, 2]).contiguous());
}

/** 1 x 3 x H x W tensor -> HWC image, clamped to 0..1. */
export function tensorToImage(t: Tensor): RGBImage {
  const [n, c, h, w] = t.shape;
  if (n !== 1 || c !== 3) throw new Error(`tensorToImage: expected a 1 x 3 x H x W tensor, got ${t.shape.join(' x ')}`);
  const data = tidy(() => t.clamp(0, 1).permute([0, 2, 3, 1]).contiguous().data()) as Float32Array;
  const img = createImage(w, h);
  img.data.set(data);
  return img;
}

/** Pads the last two dims by [left, right, top, bottom]: reflect where the image is large enough, else replicate. */
export function padImage(x: Tensor, pads: [number, number, number, number]): Tensor {
  if (pads.every((p) => p === 0)) return x.clone();
  const [, , h, w] = x.shape;
  const reflectable = Math.max(pads[0], pads[1]) < w && Math.max(pads[2], pads[3]) < h;
  return F.pad(x, pads, reflectable ? 'reflect' : 'replicate');
}

/** Padding that brings h x w up to multiples of `m`, split evenly (left/top get the smaller half). */
export function paddingTo(h: number, w: number, m = SIZE_MULTIPLE): [number, number, number, number] {
  const ph = (m - (h % m)) % m;
  const pw = (m - (w % m)) % m;
  return [Math.floor(pw / 2), pw - Math.floor(pw / 2), Math.floor(ph / 2), ph - Math.floor(ph / 2)];
}

// ------------------------------------------------------------------ the model

/** The MSDI2E of a loaded model with its reblurring branch, or a clear error. */
export function reblurringModel(model: LoadedModel): { net: MSDI2E; inverse: HINetGenerator } {
  const name = basename(model.source);
  if (!(model.net instanceof MSDI2E)) {
    throw new Error(`${name}: ${model.spec.arch} weights cannot reblur (a deblurring network has no reblurring generator); use the joint MSDI2E weights (weights/msdi-joint.safetensors)`);
  }
  if (!model.net.inverse_generator) {
    throw new Error(`${name}: this MSDI2E was trained without the reblurring branch (the no-reblur ablation) and cannot reblur`);
  }
  return { net: model.net, inverse: model.net.inverse_generator };
}

/** Encoder output z of a whole image (the encoder resizes it to 256 x 256 itself). */
function encode(net: MSDI2E, img: RGBImage): Tensor {
  return tidy(() => net.net_prior.forward(imageToTensor(img)));
}

/** Normalised sampling coordinates (align_corners false) of n feature pixels of stride f starting at padded position p0. */
function coords(n: number, f: number, p0: number, pad: number, extent: number): Tensor {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = ((p0 + (i + 0.5) * f - pad) / extent) * 2 - 1;
  return Tensor.fromArray(v, [n]);
}

export interface Region {
  /** top-left corner in the padded image, and size (multiples of 16) */
  x0: number;
  y0: number;
  w: number;
  h: number;
}

/**
 * The latent maps for one generator run over `region` of the padded image: latents[j]
 * sampled at the centres of the region's feature pixels at stride 2^j (the resolution of
 * the skip it modulates), in the coordinates of the unpadded `width` x `height` image.
 */
export function latentsForRegion(latents: Tensor[], region: Region, pads: [number, number, number, number], width: number, height: number): Tensor[] {
  return tidy(() => latents.map((l, j) => {
    const f = 2 ** j;
    const w = region.w / f;
    const h = region.h / f;
    const gx = coords(w, f, region.x0, pads[0], width).reshape([1, 1, w]).expand([1, h, w]);
    const gy = coords(h, f, region.y0, pads[2], height).reshape([1, h, 1]).expand([1, h, w]);
    return F.gridSample(l, stack([gx, gy], 3).contiguous(), 'bilinear', 'border');
  }));
}

/** Tile starts along a side of length `side`: evenly spread, neighbours overlapping by at least `overlap`. */
export function tileStarts(side: number, tile: number, overlap: number): number[] {
  if (side <= tile) return [0];
  const n = Math.ceil((side - tile) / (tile - overlap)) + 1;
  return Array.from({ length: n }, (_, k) => Math.round((k * (side - tile)) / (n - 1)));
}

/** Feathering weights of a tile along one side: linear ramps over `ramp` pixels on the sides shared with a neighbour. */
function ramp(len: number, rampLen: number, first: boolean, last: boolean): Float32Array {
  const w = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    let v = 1;
    if (!first) v = Math.min(v, (i + 0.5) / rampLen);
    if (!last) v = Math.min(v, (len - i - 0.5) / rampLen);
    w[i] = v;
  }
  return w;
}

export interface GenerateOptions {
  tile?: number;
  overlap?: number;
  maxWholePixels?: number;
}

/**
 * Runs a generator of MSDI2E (`inverse_generator` or `generator`) on a whole image with a
 * given representation (the four latent maps of the decoder, computed once for the image):
 * pads to a multiple of 16, runs whole or in feathered tiles, crops back.
 */
export function generateWith(gen: HINetGenerator, img: RGBImage, latents: Tensor[], o: GenerateOptions = {}): RGBImage {
  const tile = o.tile ?? 512;
  const overlap = o.overlap ?? 64;
  const maxWhole = o.maxWholePixels ?? MAX_WHOLE_PIXELS;
  if (!Number.isInteger(tile) || tile < SIZE_MULTIPLE || tile % SIZE_MULTIPLE !== 0) {
    throw new Error(`reblur: expected a multiple of ${SIZE_MULTIPLE} for tile, got ${tile}`);
  }
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= tile) {
    throw new Error(`reblur: expected an integer in [0, ${tile}) for overlap, got ${overlap}`);
  }
  const { width, height } = img;
  const pads = paddingTo(height, width);
  const H = height + pads[2] + pads[3];
  const W = width + pads[0] + pads[1];
  return inferenceMode(() => tidy(() => {
    const x = padImage(imageToTensor(img), pads);
    const crop = (t: Tensor) => t.slice(2, pads[2], pads[2] + height).slice(3, pads[0], pads[0] + width);
    if (H * W <= maxWhole) {
      const region = { x0: 0, y0: 0, w: W, h: H };
      return tensorToImage(crop(gen.forward(x, latentsForRegion(latents, region, pads, width, height))));
    }
    const acc = new Float32Array(3 * H * W);
    const wsum = new Float32Array(H * W);
    const ys = tileStarts(H, tile, overlap);
    const xs = tileStarts(W, tile, overlap);
    const rampLen = Math.max(1, overlap);
    for (const [iy, y0] of ys.entries()) {
      for (const [ix, x0] of xs.entries()) {
        const th = Math.min(tile, H);
        const tw = Math.min(tile, W);
        const out = tidy(() => {
          const part = x.slice(2, y0, y0 + th).slice(3, x0, x0 + tw).contiguous();
          const l = latentsForRegion(latents, { x0, y0, w: tw, h: th }, pads, width, height);
          return gen.forward(part, l).contiguous().data() as Float32Array;
        });
        const wy = ramp(th, rampLen, iy === 0, iy === ys.length - 1);
        const wx = ramp(tw, rampLen, ix === 0, ix === xs.length - 1);
        for (let c = 0; c < 3; c++) {
          for (let j = 0; j < th; j++) {
            const src = (c * th + j) * tw;
            const dst = (c * H + y0 + j) * W + x0;
            for (let i = 0; i < tw; i++) acc[dst + i] += out[src + i] * wy[j] * wx[i];
          }
        }
        for (let j = 0; j < th; j++) {
          const dst = (y0 + j) * W + x0;
          for (let i = 0; i < tw; i++) wsum[dst + i] += wy[j] * wx[i];
        }
      }
    }
    for (let c = 0; c < 3; c++) for (let p = 0; p < H * W; p++) acc[c * H * W + p] /= wsum[p];
    return tensorToImage(crop(Tensor.fromArray(acc, [1, 3, H, W])));
  }));
}

// ------------------------------------------------------------------ reblurring

/**
 * Where `level` interpolates between the representation of the sharp image (0) and of the
 * blurry one (1): 'latents' (default) mixes the four decoded latent maps,
 * l(L) = l_sharp + L (l_blurry - l_sharp); 'z' mixes the encoder's 8 x 8 code and decodes
 * the mix.
 *
 * Why latents: the generator reads the latent maps through one conv + ReLU (SPADE's
 * mlp_shared) and then linear convs for gamma / beta, so a straight line in latent space is
 * a nearly straight line in the modulation of every skip connection: the most direct,
 * least bent handle on the blur, also past L = 1. The code z instead sits after instance norms (per channel, zero mean and
 * unit variance over its 8 x 8 positions) and in front of ten LeakyReLUs of the decoder:
 * mixes of two codes have a smaller variance than any code the encoder makes (and
 * extrapolations a larger one), and the decoder bends the straight line before the
 * generator sees it. Both agree at L = 0 and L = 1. On the checkpoints we could measure
 * (early stage-1 weights, whose representation barely separates blur yet) both spaces
 * gave monotone results that agreed to three decimals; 'z' stays available for comparison.
 */
export type LevelSpace = 'latents' | 'z';

/**
 * The representation at `level` between that of `sharp` (0) and of `like` (1), extrapolated
 * up to 2: the four latent maps. Caller disposes.
 */
export function reblurRepresentation(net: MSDI2E, sharp: RGBImage, like: RGBImage, level: number, space: LevelSpace = 'latents'): Tensor[] {
  return inferenceMode(() => tidy(() => {
    const zb = encode(net, like);
    if (level === 1) return net.prior_upsampling.forward(zb);
    const zs = encode(net, sharp);
    if (space === 'z') return net.prior_upsampling.forward(zs.add(zb.sub(zs).mul(level)));
    const ls = net.prior_upsampling.forward(zs);
    const lb = net.prior_upsampling.forward(zb);
    return ls.map((s, j) => s.add(lb[j].sub(s).mul(level)));
  }));
}

/**
 * Reblurs `sharp` with the blur of `like` (any sizes; `like` is described as a whole, and
 * its representation is stretched over `sharp`). Returns an image the size of `sharp`.
 */
export function reblur(model: LoadedModel, sharp: RGBImage, like: RGBImage, o: ReblurOptions = {}): RGBImage {
  const { net, inverse } = reblurringModel(model);
  assertRGBImage(sharp, 'reblur: sharp');
  assertRGBImage(like, 'reblur: like');
  const level = o.level ?? 1;
  if (typeof level !== 'number' || !Number.isFinite(level) || level < 0 || level > 2) {
    throw new Error(`reblur: expected a number in [0, 2] for level, got ${level}`);
  }
  if (o.space !== undefined && o.space !== 'latents' && o.space !== 'z') throw new Error(`reblur: expected 'latents' or 'z' for space, got ${o.space}`);
  const dtype = ampDtype(o.amp, 'reblur');
  return exclusive(() => withAutocast(model.device, dtype, () => {
    const latents = reblurRepresentation(net, sharp, like, level, o.space);
    try {
      return generateWith(inverse, sharp, latents, o);
    } finally {
      for (const l of latents) l.dispose();
    }
  }));
}
