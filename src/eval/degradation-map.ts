/**
 * A picture of the spatially varying degradation representation of a blurry image: the
 * first three principal components (over pixels) of one latent map of the decoder, as red,
 * green and blue, robustly normalised (2nd..98th percentile), upsampled to the image size
 * (bilinear) and optionally blended over the photo. Colours are relative to the image: the
 * same colour means the same representation within one picture, not across pictures.
 */
import { basename } from 'node:path';
import { Tensor, F, inferenceMode, tidy, exclusive } from '../engine/index.js';
import { assertRGBImage, createImage, type RGBImage } from '../data/image-io.js';
import { MSDI2E } from '../models/msdi2e.js';
import { MsdiNet } from '../models/msdi-net.js';
import type { LoadedModel } from './model.js';
import { imageToTensor, tensorToImage } from './reblur.js';

/**
 * Which latent map is shown: index into [wf@256, 2wf@128, 4wf@64, 8wf@32]. The 64 px map
 * (4wf channels). The representation is decoded from an 8 x 8 (v2) or 4 x 4 (v1) code by
 * nearest-upsampling conv blocks, so the 256 and 128 px maps add no information, only the
 * decoder's upsampling texture (fine row/column stripes in their principal components);
 * the 64 px map is the finest one free of it, has twice the resolution of the 32 px map,
 * and separated a box-blurred half from a sharp half of one image at least as well as any
 * other scale in our measurements (3 synthetic + 4 validation images, two checkpoints).
 */
export const DEFAULT_SCALE = 2;

export interface DegradationMapOptions {
  /** 0..1: opacity of the map over the photo (default 1: the map alone; 0: the photo). */
  overlay?: number;
  /** latent map to show, 0 (finest, 256 px) .. 3 (coarsest, 32 px); default DEFAULT_SCALE (64 px) */
  scale?: number;
}

/** The network of a loaded model that has a degradation representation, or a clear error. */
export function representationModel(model: LoadedModel): MsdiNet | MSDI2E {
  const net = model.net;
  const name = basename(model.source);
  if (net instanceof MsdiNet && (!net.net_prior || !net.prior_upsampling)) {
    throw new Error(`${name}: this ${model.spec.arch} was trained without the degradation representation (the no-degradation ablation): there is no representation to show`);
  }
  if (!(net instanceof MsdiNet) && !(net instanceof MSDI2E)) {
    throw new Error(`${name}: ${model.spec.arch} weights have no degradation representation`);
  }
  return net;
}

/** The four latent maps [wf@256, 2wf@128, 4wf@64, 8wf@32] of an image (caller disposes). */
export function representationOf(model: LoadedModel, blurry: RGBImage): Tensor[] {
  const net = representationModel(model);
  return inferenceMode(() => tidy(() => net.represent(imageToTensor(blurry)).latents));
}

/** Top-k eigenvectors (columns, k x n row-major per vector) of a symmetric n x n matrix by orthogonal iteration. */
export function topEigenvectors(cov: Float64Array, n: number, k: number, iters = 300): Float64Array[] {
  k = Math.min(k, n);
  // Deterministic start: distinct smooth vectors, then Gram-Schmidt.
  let q: Float64Array[] = Array.from({ length: k }, (_, j) => Float64Array.from({ length: n }, (_, i) => Math.cos((i + 1) * (j + 1) * 0.7) + (i === j ? 1 : 0)));
  const orth = (vs: Float64Array[]) => {
    for (let j = 0; j < vs.length; j++) {
      const v = vs[j];
      for (let p = 0; p < j; p++) {
        let d = 0;
        for (let i = 0; i < n; i++) d += v[i] * vs[p][i];
        for (let i = 0; i < n; i++) v[i] -= d * vs[p][i];
      }
      let norm = 0;
      for (let i = 0; i < n; i++) norm += v[i] * v[i];
      norm = Math.sqrt(norm);
      if (norm < 1e-30) {
        v.fill(0);
        v[j % n] = 1;
      } else {
        for (let i = 0; i < n; i++) v[i] /= norm;
      }
    }
    return vs;
  };
  q = orth(q);
  for (let it = 0; it < iters; it++) {
    q = orth(q.map((v) => {
      const out = new Float64Array(n);
      for (let r = 0; r < n; r++) {
        let s = 0;
        const row = r * n;
        for (let i = 0; i < n; i++) s += cov[row + i] * v[i];
        out[r] = s;
      }
      return out;
    }));
  }
  // Sign: the largest entry positive, so the colours of an image do not flip between runs.
  for (const v of q) {
    let best = 0;
    for (let i = 1; i < n; i++) if (Math.abs(v[i]) > Math.abs(v[best])) best = i;
    if (v[best] < 0) for (let i = 0; i < n; i++) v[i] = -v[i];
  }
  return q;
}

function percentile(sorted: Float32Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))))];
}

/**
 * The first three principal components over the pixels of a 1 x C x h x w latent map,
 * each mapped to 0..1 (2nd..98th percentile, clamped): a 1 x 3 x h x w tensor.
 * Components beyond the number of channels, or without variance, are a flat 0.5.
 */
export function principalComponentsRGB(latent: Tensor): Tensor {
  return tidy(() => {
    const [, c, h, w] = latent.shape;
    const x = latent.reshape([c, h * w]);
    const xc = x.sub(x.mean([1], true));
    const cov = Float64Array.from(xc.matmul(xc.transpose(0, 1)).div(h * w).data() as Float32Array);
    const vecs = topEigenvectors(cov, c, 3);
    const basis = Tensor.fromArray(Float32Array.from(vecs.flatMap((v) => Array.from(v))), [vecs.length, c]);
    const proj = basis.matmul(xc).data() as Float32Array; // k x (h w)
    const n = h * w;
    const rgb = new Float32Array(3 * n).fill(0.5);
    for (let k = 0; k < vecs.length; k++) {
      const comp = proj.subarray(k * n, (k + 1) * n);
      const sorted = Float32Array.from(comp).sort();
      const lo = percentile(sorted, 0.02);
      const hi = percentile(sorted, 0.98);
      const range = hi - lo;
      if (!(range > 1e-6 * Math.max(1, Math.abs(hi), Math.abs(lo)))) continue;
      for (let i = 0; i < n; i++) rgb[k * n + i] = Math.min(1, Math.max(0, (comp[i] - lo) / range));
    }
    return Tensor.fromArray(rgb, [1, 3, h, w]);
  });
}

/** The degradation map of `blurry` as an image of its size (see the file comment). */
export function degradationMap(model: LoadedModel, blurry: RGBImage, o: DegradationMapOptions = {}): RGBImage {
  assertRGBImage(blurry, 'degradationMap: blurry');
  const overlay = o.overlay ?? 1;
  if (typeof overlay !== 'number' || !Number.isFinite(overlay) || overlay < 0 || overlay > 1) {
    throw new Error(`degradationMap: expected a number in [0, 1] for overlay, got ${overlay}`);
  }
  const scale = o.scale ?? DEFAULT_SCALE;
  if (!Number.isInteger(scale) || scale < 0 || scale > 3) {
    throw new Error(`degradationMap: expected an integer in [0, 3] for scale, got ${scale}`);
  }
  // the network and the colouring run libtorch: one thread at a time (see exclusive)
  const map = exclusive(() => {
    const latents = representationOf(model, blurry);
    try {
      return inferenceMode(() => tidy(() => {
        const rgb = principalComponentsRGB(latents[scale]);
        return tensorToImage(F.interpolate(rgb, [blurry.height, blurry.width], 'bilinear'));
      }));
    } finally {
      for (const l of latents) l.dispose();
    }
  });
  if (overlay === 1) return map;
  const out = createImage(blurry.width, blurry.height);
  for (let i = 0; i < out.data.length; i++) out.data[i] = overlay * map.data[i] + (1 - overlay) * blurry.data[i];
  return out;
}
