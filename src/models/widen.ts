/**
 * Function-preserving widening of a deblurring network (msdi2_net, or msdi_net for the
 * ablation): the weights of a width-wf network become weights of a wider one (wf' > wf) that
 * deblurs exactly as the narrow one does, so that training can go on with more channels instead
 * of starting again. The trained networks underfit (they gain as much on their training pairs as
 * on held-out ones; docs/training-log.md), and width is what buys more per step.
 *
 * Every group of n channels becomes n' = n * wf'/wf. The old channels keep their order, the
 * first half at the front and the second half at the front of the second half, with the new
 * channels after each half: the half-instance normalisation (HIN) normalises the first half of a
 * block's channels, and this keeps the old normalised channels normalised and the others not.
 * - Old outputs read nothing from new inputs (zeros there), so the old channels compute what they
 *   did; the output image reads old channels only.
 * - New outputs of the trunk keep the wide network's fresh initialisation: their outgoing weights
 *   are zero, so they change nothing, but they get gradients through those zeros at once.
 * - The frozen representation (encoder, latent decoder) and the spectral-normalised convolutions
 *   get zero new outputs: a spectral norm renormalises its whole weight, and zero rows and
 *   columns leave the largest singular value, and so the old weights' scale, as it was.
 * Channel counts that do not scale with wf (image channels, the SPADE hidden width) stay.
 */
import { Tensor } from '../engine/index.js';
import type { Module } from '../nn/module.js';
import { loadStateDict } from '../nn/state-dict.js';
import { isRepresentationKey } from './registry.js';

/** Inputs that concatenate two groups of channels: [up-sampled, bridge], [conv_02, SAM], [x, latent]. */
const CONCAT_INPUT = /(^|\.)(up_path_[12]\.\d+\.conv_block\.(conv_1|identity)|cat12|ad1_list\.\d+\.norm_0\.mlp_shared\.0)\.weight$/;
/** HIN's affine parameters: the normalised half of a block's channels. */
const HIN = /(^|\.)norm\.(weight|bias)$/;

/** Where each of n old channels goes among n2 (see the file comment). */
function groupMap(n: number, n2: number): Int32Array {
  const m = new Int32Array(n);
  for (let i = 0; i < n; i++) m[i] = i < n / 2 ? i : i - n / 2 + n2 / 2;
  return m;
}

function dimMap(key: string, dim: number, n: number, n2: number): Int32Array {
  if (n2 < n) throw new Error(`${key}: cannot widen ${n} channels to ${n2}`);
  // HIN's parameters: the old ones first, the new after them (the front of the first half)
  if (n === n2 || (HIN.test(key) && dim === 0)) return Int32Array.from({ length: n }, (_, i) => i);
  if (n % 2 || n2 % 2) throw new Error(`${key}: cannot widen ${n} channels to ${n2}`);
  if (dim === 1 && CONCAT_INPUT.test(key)) {
    const half = groupMap(n / 2, n2 / 2);
    return Int32Array.from({ length: n }, (_, i) => (i < n / 2 ? half[i] : n2 / 2 + half[i - n / 2]));
  }
  return groupMap(n, n2);
}

/**
 * The state dict of the wide network: `narrow` (the trained weights) placed into `wide` (a fresh
 * state dict of the wider network, whose values the new output channels keep). Keys and ranks
 * must agree; returns new tensors (the caller disposes them).
 */
export function widenStateDict(narrow: Map<string, Tensor>, wide: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [key, w] of wide) {
    const t = narrow.get(key);
    if (!t) throw new Error(`${key}: missing from the narrow weights`);
    if (t.shape.length !== w.shape.length) throw new Error(`${key}: rank ${t.shape.length}, the wide network's ${w.shape.length}`);
    out.set(key, Tensor.fromArray(widenTensor(key, t, w, narrow), w.shape));
  }
  return out;
}

/** Loads `narrow`'s weights, widened, into `wide` (built at the larger wf; its initialisation is what new channels keep). */
export function loadWidened(wide: Module, narrow: Module, source?: string): void {
  const widened = widenStateDict(narrow.stateDict(), wide.stateDict());
  try {
    loadStateDict(wide, widened, { source });
  } finally {
    for (const t of widened.values()) t.dispose();
  }
}

function widenTensor(key: string, t: Tensor, w: Tensor, narrow: Map<string, Tensor>): Float32Array {
  const old = t.toFloat32();
  if (t.shape.join() === w.shape.join()) return old;
  const spectralVector = /\.weight_[uv]$/.test(key);
  // zero new outputs: the frozen representation, spectral weights and their power-iteration vectors
  const zeroNew = isRepresentationKey(key) || key.endsWith('.weight_orig') || spectralVector;
  const res = zeroNew ? new Float32Array(w.numel) : w.toFloat32();
  if (key.endsWith('.weight_v')) {
    // v has one entry per column of the weight matrix (in x k x k): widen it along `in`.
    const weightKey = key.replace(/_v$/, '_orig');
    const n = narrow.get(weightKey)!.shape[1];
    const kk = t.shape[0] / n;
    const m = dimMap(weightKey, 1, n, w.shape[0] / kk);
    for (let i = 0; i < n; i++) for (let j = 0; j < kk; j++) res[m[i] * kk + j] = old[i * kk + j];
    return res;
  }
  const [n0, n1] = [t.shape[0], t.shape[1] ?? 1];
  const [w0, w1] = [w.shape[0], w.shape[1] ?? 1];
  const inner = t.numel / n0 / n1;
  const m0 = dimMap(key, 0, n0, w0);
  const m1 = t.shape.length > 1 ? dimMap(key, 1, n1, w1) : Int32Array.of(0);
  // ConvTranspose2d stores [in, out, k, k]; "outputs" are then dim 1, and old ones are cleared alike.
  const transposed = /(^|\.)up\.weight$/.test(key);
  const oldOut = new Set(transposed ? m1 : m0);
  for (let a = 0; a < w0; a++) {
    for (let b = 0; b < w1; b++) {
      if (oldOut.has(transposed ? b : a)) res.fill(0, (a * w1 + b) * inner, (a * w1 + b + 1) * inner);
    }
  }
  for (let a = 0; a < n0; a++) {
    for (let b = 0; b < n1; b++) {
      res.set(old.subarray((a * n1 + b) * inner, (a * n1 + b + 1) * inner), (m0[a] * w1 + m1[b]) * inner);
    }
  }
  return res;
}
