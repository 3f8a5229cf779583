/**
 * How much of the true blur do a model's latent maps describe? On held-out pairs made with
 * `msdi synth --motion` (each pair's true blur field, motion/NAME.f32), a linear probe (ridge
 * regression) reads four facts of the blur at every cell from the representation of the blurry
 * image (centre 256 x 256 crop, the size the encoder works at): the blur's length, log(1 +
 * pixels from the start to the end of the exposure), its orientation as length x cos 2 angle and length x sin 2 angle
 * (a streak has no sign), and the defocus radius. Fitted on the first half of the pairs, scored
 * on the second half as R^2: overall, and within the image (a second probe fitted and scored
 * with each image's mean taken from features and truth alike: does the map say *where* in the
 * image the blur is, not only how much the image has; the first line printed says how much of
 * each fact's variance lies within the images).
 * The same probe on simple statistics of the blurry image (local gradient energies at two
 * scales, their cross term, local variance) is the floor a representation must beat, and
 * `--random` adds a freshly initialised encoder of the same shape. A positive control shows what
 * the probe reads where the information is there: the same statistics of the residual to the
 * sharp frame (blurry - sharp), which a blind representation cannot see.
 *
 *   node --import tsx scripts/probe-latent-field.mts WEIGHTS PAIRS_DIR [N] [--random]
 *
 * WEIGHTS: msdi2_net or joint (MSDI2E) weights; PAIRS_DIR: from `msdi synth --motion`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, parse } from 'node:path';
import { loadModel } from '../src/eval/model.js';
import { imageToTensor } from '../src/eval/reblur.js';
import { readImageRGB } from '../src/data/image-io.js';
import { inferenceMode, manualSeed, tidy, Tensor } from '../src/engine/index.js';
import { MsdiNet } from '../src/models/msdi-net.js';
import { MOTION_CHANNELS } from '../src/data/synth/options.js';

const args = process.argv.slice(2);
const random = args.includes('--random');
const [weights, dir, count = '100'] = args.filter((a) => a !== '--random');
if (!weights || !dir || !/^[1-9][0-9]*$/.test(count)) {
  console.error('usage: node --import tsx scripts/probe-latent-field.mts WEIGHTS PAIRS_DIR [N] [--random]');
  process.exit(2);
}
const SIDE = 256;
const TARGETS = ['length', 'orient cos', 'orient sin', 'defocus'];
const model = loadModel(weights);
const net = model.net;
net.eval();
const sources: { name: string; represent: (x: Tensor) => { priorZ: Tensor; latents: Tensor[] } }[] = [{ name: 'trained', represent: (x) => net.represent(x) }];
if (random) {
  if (!(net instanceof MsdiNet)) throw new Error(`${weights}: --random needs msdi2_net weights (it copies their shape)`);
  manualSeed(1);
  const fresh = new MsdiNet(net.options);
  fresh.eval();
  sources.push({ name: 'random init', represent: (x) => fresh.represent(x) });
}

/** The centre SIDE x SIDE crop of a channels-first C x H x W plane stack. */
function centreCrop(data: Float32Array, c: number, h: number, w: number): Float32Array {
  const y0 = Math.floor((h - SIDE) / 2);
  const x0 = Math.floor((w - SIDE) / 2);
  const out = new Float32Array(c * SIDE * SIDE);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < SIDE; y++) out.set(data.subarray(k * h * w + (y + y0) * w + x0, k * h * w + (y + y0) * w + x0 + SIDE), (k * SIDE + y) * SIDE);
  }
  return out;
}

/** Averages of f x f cells of a C x S x S stack. */
function pool(data: Float32Array, c: number, s: number, f: number): Float32Array {
  const t = s / f;
  const out = new Float32Array(c * t * t);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) out[(k * t + Math.floor(y / f)) * t + Math.floor(x / f)]! += data[(k * s + y) * s + x]! / (f * f);
    }
  }
  return out;
}

/** The four blur facts (TARGETS) at every pixel of a cropped field. */
function blurFacts(field: Float32Array): Float32Array {
  const P = SIDE * SIDE;
  const out = new Float32Array(TARGETS.length * P);
  const at = (name: (typeof MOTION_CHANNELS)[number]) => field.subarray(MOTION_CHANNELS.indexOf(name) * P);
  const [x0, y0, x1, y1, r] = [at('dx0'), at('dy0'), at('dx1'), at('dy1'), at('defocus')];
  for (let i = 0; i < P; i++) {
    const u = x1[i]! - x0[i]!;
    const v = y1[i]! - y0[i]!;
    const len = Math.hypot(u, v);
    out[i] = Math.log1p(len);
    out[P + i] = len > 0 ? (u * u - v * v) / len : 0;
    out[2 * P + i] = len > 0 ? (2 * u * v) / len : 0;
    out[3 * P + i] = r[i]!;
  }
  return out;
}

/** Box sums over (2h+1)^2 windows (clamped at the borders) of an S x S plane, as means. */
function boxMean(a: Float64Array, h: number): Float64Array {
  const S = SIDE;
  const I = new Float64Array((S + 1) * (S + 1));
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) I[(y + 1) * (S + 1) + x + 1] = a[y * S + x]! + I[y * (S + 1) + x + 1]! + I[(y + 1) * (S + 1) + x]! - I[y * (S + 1) + x]!;
  const out = new Float64Array(S * S);
  for (let y = 0; y < S; y++) {
    const ya = Math.max(0, y - h), yb = Math.min(S, y + h + 1);
    for (let x = 0; x < S; x++) {
      const xa = Math.max(0, x - h), xb = Math.min(S, x + h + 1);
      out[y * S + x] = (I[yb * (S + 1) + xb]! - I[ya * (S + 1) + xb]! - I[yb * (S + 1) + xa]! + I[ya * (S + 1) + xa]!) / ((yb - ya) * (xb - xa));
    }
  }
  return out;
}

/** Local statistics of a 3 x S x S crop (its grey level), 6 x S x S. */
function imageStats(rgb: Float32Array): Float32Array {
  const S = SIDE;
  const P = S * S;
  const g = new Float64Array(P);
  for (let i = 0; i < P; i++) g[i] = (rgb[i]! + rgb[P + i]! + rgb[2 * P + i]!) / 3;
  const px = (x: number, y: number) => g[Math.min(S - 1, Math.max(0, y)) * S + Math.min(S - 1, Math.max(0, x))]!;
  const planes = Array.from({ length: 6 }, () => new Float64Array(P));
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const i = y * S + x;
      const gx = px(x + 1, y) - px(x - 1, y), gy = px(x, y + 1) - px(x, y - 1);
      const hx = px(x + 3, y) - px(x - 3, y), hy = px(x, y + 3) - px(x, y - 3);
      [gx * gx, gy * gy, gx * gy, hx * hx + hy * hy, g[i]!, g[i]! * g[i]!].forEach((v, k) => { planes[k]![i] = v; });
    }
  }
  const m = planes.map((p) => boxMean(p, 4));
  const out = new Float32Array(6 * P);
  const eps = 1e-6;
  for (let i = 0; i < P; i++) {
    out[i] = Math.log(eps + m[0]![i]!);
    out[P + i] = Math.log(eps + m[1]![i]!);
    out[2 * P + i] = m[2]![i]! / Math.sqrt(eps + m[0]![i]! * m[1]![i]!);
    out[3 * P + i] = Math.log(eps + m[0]![i]! + m[1]![i]!) - Math.log(eps + m[3]![i]!);
    out[4 * P + i] = Math.log(eps + m[3]![i]!);
    out[5 * P + i] = Math.log(eps + Math.max(0, m[5]![i]! - m[4]![i]! ** 2));
  }
  return out;
}

interface Sample { features: Float32Array; channels: number; targets: Float32Array }

/** Each image's mean taken from every feature and target plane. */
function centred(s: Sample): Sample {
  const less = (a: Float32Array, planes: number) => {
    const P = a.length / planes;
    const out = new Float32Array(a.length);
    for (let k = 0; k < planes; k++) {
      let m = 0;
      for (let i = 0; i < P; i++) m += a[k * P + i]! / P;
      for (let i = 0; i < P; i++) out[k * P + i] = a[k * P + i]! - m;
    }
    return out;
  };
  return { channels: s.channels, features: less(s.features, s.channels), targets: less(s.targets, TARGETS.length) };
}

/** Ridge regression fitted on `train`; R^2 per target on `test`. */
function probe(train: Sample[], test: Sample[]): number[] {
  const C = train[0]!.channels;
  const T = TARGETS.length;
  const D = C + 1; // + bias
  const XtX = new Float64Array(D * D);
  const XtY = new Float64Array(D * T);
  const row = new Float64Array(D);
  for (const s of train) {
    const P = s.features.length / C;
    for (let i = 0; i < P; i++) {
      for (let c = 0; c < C; c++) row[c] = s.features[c * P + i]!;
      row[C] = 1;
      for (let a = 0; a < D; a++) {
        const ra = row[a]!;
        if (ra === 0) continue;
        for (let b = a; b < D; b++) XtX[a * D + b]! += ra * row[b]!;
        for (let t = 0; t < T; t++) XtY[a * T + t]! += ra * s.targets[t * P + i]!;
      }
    }
  }
  let trace = 0;
  for (let a = 0; a < D; a++) { for (let b = 0; b < a; b++) XtX[a * D + b] = XtX[b * D + a]!; trace += XtX[a * D + a]!; }
  for (let a = 0; a < C; a++) XtX[a * D + a]! += 1e-4 * trace / D;
  const W = solve(XtX, XtY, D, T);
  const sse = new Float64Array(T), sst = new Float64Array(T);
  const mean = new Float64Array(T);
  let n = 0;
  for (const s of test) { const P = s.features.length / C; n += P; for (let t = 0; t < T; t++) for (let i = 0; i < P; i++) mean[t]! += s.targets[t * P + i]!; }
  for (let t = 0; t < T; t++) mean[t]! /= n;
  for (const s of test) {
    const P = s.features.length / C;
    for (let t = 0; t < T; t++) {
      const pred = new Float64Array(P);
      for (let i = 0; i < P; i++) {
        let v = W[C * T + t]!;
        for (let c = 0; c < C; c++) v += W[c * T + t]! * s.features[c * P + i]!;
        pred[i] = v;
      }
      for (let i = 0; i < P; i++) {
        const y = s.targets[t * P + i]!;
        sse[t]! += (y - pred[i]!) ** 2;
        sst[t]! += (y - mean[t]!) ** 2;
      }
    }
  }
  return [...sse].map((e, t) => 1 - e / sst[t]!);
}

/** Solves A X = B (A: D x D symmetric positive definite, B: D x T) by Cholesky. */
function solve(A: Float64Array, B: Float64Array, D: number, T: number): Float64Array {
  const L = new Float64Array(D * D);
  for (let i = 0; i < D; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * D + j]!;
      for (let k = 0; k < j; k++) s -= L[i * D + k]! * L[j * D + k]!;
      L[i * D + j] = i === j ? Math.sqrt(Math.max(s, 1e-30)) : s / L[j * D + j]!;
    }
  }
  const X = new Float64Array(D * T);
  for (let t = 0; t < T; t++) {
    const y = new Float64Array(D);
    for (let i = 0; i < D; i++) { let s = B[i * T + t]!; for (let k = 0; k < i; k++) s -= L[i * D + k]! * y[k]!; y[i] = s / L[i * D + i]!; }
    for (let i = D - 1; i >= 0; i--) { let s = y[i]!; for (let k = i + 1; k < D; k++) s -= L[k * D + i]! * X[k * T + t]!; X[i * T + t] = s / L[i * D + i]!; }
  }
  return X;
}

const names = readdirSync(join(dir, 'input')).sort().slice(0, Number(count));
if (names.length < 4) throw new Error(`${dir}: need at least 4 pairs, found ${names.length}`);
// per pair: [source][scale] features, and the targets at every scale
const SCALES = [1, 2, 4, 8, 32]; // latents finest to coarsest, then z
const perPair: { rep: Float32Array[][]; stats: Float32Array[]; residual: Float32Array[]; facts: Float32Array[] }[] = [];
for (const name of names) {
  const [blurry, sharp] = await Promise.all([readImageRGB(join(dir, 'input', name)), readImageRGB(join(dir, 'target', name))]);
  const file = join(dir, 'motion', `${parse(name).name}.f32`);
  if (!existsSync(file)) throw new Error(`${file}: no blur field (make the pairs with msdi synth --motion)`);
  const raw = readFileSync(file);
  const field = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  if (field.length !== MOTION_CHANNELS.length * blurry.width * blurry.height) throw new Error(`${file}: ${field.length} floats, expected ${MOTION_CHANNELS.length} x ${blurry.width} x ${blurry.height}`);
  const facts = blurFacts(centreCrop(field, MOTION_CHANNELS.length, blurry.height, blurry.width));
  const [rgb, residual, rep] = inferenceMode(() => tidy(() => {
    const b = imageToTensor(blurry);
    const [, , h, w] = b.shape;
    const [rgb, residual] = [b, b.sub(imageToTensor(sharp))].map((t) => centreCrop(t.toFloat32(), 3, h!, w!));
    const crop = Tensor.fromArray(rgb!, [1, 3, SIDE, SIDE]);
    const rep = sources.map((src) => {
      const { priorZ, latents } = src.represent(crop);
      return [...latents, priorZ].map((t) => t.toFloat32());
    });
    return [rgb!, residual!, rep] as const;
  }));
  const stats = imageStats(rgb);
  const residualStats = imageStats(residual);
  perPair.push({
    rep, facts: SCALES.map((f) => pool(facts, TARGETS.length, SIDE, f)),
    stats: SCALES.map((f) => pool(stats, 6, SIDE, f)), residual: SCALES.map((f) => pool(residualStats, 6, SIDE, f)),
  });
}
const half = Math.floor(perPair.length / 2);
/** R^2 overall / within the image, per target */
const score = (train: Sample[], test: Sample[]) => {
  const overall = probe(train, test);
  const within = probe(train.map(centred), test.map(centred));
  return TARGETS.map((_, t) => `${overall[t]!.toFixed(2)} / ${within[t]!.toFixed(2)}`).join(' | ');
};
console.log(`${perPair.length} pairs (${half} to fit, ${perPair.length - half} to score), centre ${SIDE} crops; R^2 overall / within the image`);
const withinShare = TARGETS.map((_, t) => {
  const P = SIDE * SIDE;
  let all = 0, within = 0, mean = 0;
  for (const p of perPair) for (let i = 0; i < P; i++) mean += p.facts[0]![t * P + i]! / (P * perPair.length);
  for (const p of perPair) {
    let m = 0;
    for (let i = 0; i < P; i++) m += p.facts[0]![t * P + i]! / P;
    for (let i = 0; i < P; i++) { all += (p.facts[0]![t * P + i]! - mean) ** 2; within += (p.facts[0]![t * P + i]! - m) ** 2; }
  }
  return `${TARGETS[t]} ${(within / all).toFixed(2)}`;
});
console.log(`share of the variance within the images: ${withinShare.join(', ')}`);
console.log(`| features | cell | ${TARGETS.join(' | ')} |`);
console.log(`|---|---|${TARGETS.map(() => '---|').join('')}`);
SCALES.forEach((f, k) => {
  const cell = `${f} px`;
  /** one table row: the probe fitted on the first half of the pairs, scored on the second */
  const row = (label: string, channels: number, of: (p: (typeof perPair)[number]) => Float32Array) => {
    const samples = perPair.map((p): Sample => ({ features: of(p), channels, targets: p.facts[k]! }));
    console.log(`| ${label} | ${cell} | ${score(samples.slice(0, half), samples.slice(half))} |`);
  };
  sources.forEach((src, j) => {
    const channels = perPair[0]!.rep[j]![k]!.length / (SIDE / f) ** 2;
    row(k < 4 ? `${src.name} latent map ${k} (${channels} ch)` : `${src.name} z (${channels} ch)`, channels, (p) => p.rep[j]![k]!);
  });
  row('image statistics (6)', 6, (p) => p.stats[k]!);
  row('control: the same of blurry - sharp', 6, (p) => p.residual[k]!);
});
model.dispose();
