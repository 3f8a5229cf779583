/**
 * Engine operations checked against independently computed values: small hand-worked
 * cases and straightforward pure-JS reference implementations (naive loops), never
 * against the engine itself.
 */
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';

import { Tensor, F, tidy, cat, stack, liveTensors, withAutocast, cpuinfoHasBf16 } from '../src/engine/index.js';

// ------------------------------------------------------------------ helpers

/** Deterministic uniform values in [-1, 1) (an LCG, so references never depend on the engine). */
function rand(n: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(s / 2 ** 31 - 1);
  }
  // round to float32 so that the reference sees exactly what the engine sees
  return Array.from(Float32Array.from(out));
}

const prod = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const vals = (t: Tensor): number[] => Array.from(t.toFloat32());
const T = (data: number[], shape: number[]): Tensor => Tensor.fromArray(data, shape);

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    // exact match (also infinities), else |a - e| <= tol * max(1, |e|)
    if (a === e) continue;
    if (!(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)))) {
      assert.fail(`${what}[${i}]: got ${a}, expected ${e} (tol ${tol})`);
    }
  }
}

function assertTensor(t: Tensor, shape: number[], expected: ArrayLike<number>, tol = 1e-5, what = 'tensor'): void {
  assert.deepEqual(t.shape, shape, `${what}: shape`);
  assertClose(vals(t), expected, tol, what);
}

// Every test runs its tensors inside tidy(); this checks nothing leaks between tests.
let liveBefore = liveTensors();
afterEach(() => {
  const [before, now] = [liveBefore, liveTensors()];
  liveBefore = now; // one leak fails one test, not every test after it
  assert.equal(now, before, 'a test leaked tensors');
});

// ------------------------------------------------------------------ references

interface ConvOpts { stride?: number; padding?: number; dilation?: number; groups?: number }

/** Naive NCHW conv2d (cross-correlation, as torch). w: [O, C/groups, kh, kw]. */
function convRef(x: number[], xs: number[], w: number[], ws: number[], b: number[] | null, o: ConvOpts = {}) {
  const [N, C, H, W] = xs;
  const [O, Cg, KH, KW] = ws;
  const s = o.stride ?? 1, p = o.padding ?? 0, d = o.dilation ?? 1, g = o.groups ?? 1;
  assert.equal(C / g, Cg);
  const OH = Math.floor((H + 2 * p - d * (KH - 1) - 1) / s) + 1;
  const OW = Math.floor((W + 2 * p - d * (KW - 1) - 1) / s) + 1;
  const Og = O / g;
  const out = new Array(N * O * OH * OW).fill(0);
  for (let n = 0; n < N; n++) for (let oc = 0; oc < O; oc++) {
    const grp = Math.floor(oc / Og);
    for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
      let acc = b ? b[oc] : 0;
      for (let c = 0; c < Cg; c++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
        const ih = oh * s - p + i * d;
        const iw = ow * s - p + j * d;
        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
        acc += x[((n * C + grp * Cg + c) * H + ih) * W + iw] * w[((oc * Cg + c) * KH + i) * KW + j];
      }
      out[((n * O + oc) * OH + oh) * OW + ow] = acc;
    }
  }
  return { data: out, shape: [N, O, OH, OW] };
}

/** Naive conv_transpose2d (groups 1). w: [Cin, Cout, kh, kw]: scatter each input pixel. */
function convTRef(x: number[], xs: number[], w: number[], ws: number[], b: number[] | null, stride: number, padding: number) {
  const [N, C, H, W] = xs;
  const [Cin, O, KH, KW] = ws;
  assert.equal(Cin, C);
  const OH = (H - 1) * stride - 2 * padding + KH;
  const OW = (W - 1) * stride - 2 * padding + KW;
  const out = new Array(N * O * OH * OW).fill(0);
  for (let n = 0; n < N; n++) for (let oc = 0; oc < O; oc++) for (let i = 0; i < OH * OW; i++) out[(n * O + oc) * OH * OW + i] = b ? b[oc] : 0;
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let ih = 0; ih < H; ih++) for (let iw = 0; iw < W; iw++) {
    const v = x[((n * C + c) * H + ih) * W + iw];
    for (let oc = 0; oc < O; oc++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
      const oh = ih * stride - padding + i;
      const ow = iw * stride - padding + j;
      if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
      out[((n * O + oc) * OH + oh) * OW + ow] += v * w[((c * O + oc) * KH + i) * KW + j];
    }
  }
  return { data: out, shape: [N, O, OH, OW] };
}

/** Per-(n, c) normalisation over H x W with the biased variance. */
function instanceNormRef(x: number[], [N, C, H, W]: number[], w: number[] | null, b: number[] | null, eps: number): number[] {
  const out = new Array(x.length);
  const HW = H * W;
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) {
    const off = (n * C + c) * HW;
    let mean = 0;
    for (let i = 0; i < HW; i++) mean += x[off + i];
    mean /= HW;
    let v = 0;
    for (let i = 0; i < HW; i++) v += (x[off + i] - mean) ** 2;
    v /= HW;
    for (let i = 0; i < HW; i++) {
      const y = (x[off + i] - mean) / Math.sqrt(v + eps);
      out[off + i] = w && b ? y * w[c] + b[c] : y;
    }
  }
  return out;
}

/** Per-channel mean and biased variance over N, H, W. */
function channelStats(x: number[], [N, C, H, W]: number[]): { mean: number[]; varB: number[]; count: number } {
  const HW = H * W;
  const mean = new Array(C).fill(0);
  const varB = new Array(C).fill(0);
  for (let c = 0; c < C; c++) {
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) mean[c] += x[(n * C + c) * HW + i];
    mean[c] /= N * HW;
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) varB[c] += (x[(n * C + c) * HW + i] - mean[c]) ** 2;
    varB[c] /= N * HW;
  }
  return { mean, varB, count: N * HW };
}

/** Reduces an N-d array (row-major) over `dims`; the kept dims stay in order. */
function reduceRef(x: number[], shape: number[], dims: number[], op: (a: number[]) => number): number[] {
  const nd = shape.length;
  const ds = dims.map((d) => (d < 0 ? nd + d : d));
  const outShape = shape.map((s, i) => (ds.includes(i) ? 1 : s));
  const groups = new Map<number, number[]>();
  const idx = new Array(nd).fill(0);
  for (let f = 0; f < x.length; f++) {
    let rem = f;
    for (let i = nd - 1; i >= 0; i--) { idx[i] = rem % shape[i]; rem = Math.floor(rem / shape[i]); }
    let o = 0;
    for (let i = 0; i < nd; i++) o = o * outShape[i] + (ds.includes(i) ? 0 : idx[i]);
    if (!groups.has(o)) groups.set(o, []);
    groups.get(o)!.push(x[f]);
  }
  return Array.from({ length: prod(outShape) }, (_, o) => op(groups.get(o)!));
}
const sumOf = (a: number[]) => a.reduce((p, q) => p + q, 0);
const meanOf = (a: number[]) => sumOf(a) / a.length;
const maxOf = (a: number[]) => Math.max(...a);
const minOf = (a: number[]) => Math.min(...a);

function matmulRef(a: number[], b: number[], n: number, k: number, m: number): number[] {
  const out = new Array(n * m).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) for (let q = 0; q < k; q++) out[i * m + j] += a[i * k + q] * b[q * m + j];
  return out;
}

// ------------------------------------------------------------------ creation and data out

describe('creation and data', () => {
  test('float32 from a Float32Array: shape, dtype, device, values, bytes', () => tidy(() => {
    const data = new Float32Array([1.5, -2, 3, 0.25, 1e-3, -7]);
    const t = Tensor.fromArray(data, [2, 3]);
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.dtype, 'float32');
    assert.equal(t.device, 'cpu');
    assert.equal(t.ndim, 2);
    assert.equal(t.numel, 6);
    assert.equal(t.size(-1), 3);
    assert.equal(t.size(0), 2);
    const out = t.data();
    assert.ok(out instanceof Float32Array);
    assert.deepEqual(Array.from(out), Array.from(data));
    assert.deepEqual(t.toArray(), [[1.5, -2, 3], [0.25, Math.fround(1e-3), -7]]);
    // raw little-endian bytes: 1.5f = 0x3FC00000
    assert.deepEqual(Array.from(t.bytes().subarray(0, 4)), [0x00, 0x00, 0xc0, 0x3f]);
    // the shape getter hands out a copy
    t.shape.push(99);
    assert.deepEqual(t.shape, [2, 3]);
  }));

  test('float32 from a plain array and float64 round trip', () => tidy(() => {
    const a = Tensor.fromArray([0.1, 0.2, 0.3], [3]);
    assertClose(vals(a), [Math.fround(0.1), Math.fround(0.2), Math.fround(0.3)], 0);
    const d = Tensor.fromArray([0.1, 1 / 3], [2], { dtype: 'float64' });
    assert.equal(d.dtype, 'float64');
    const out = d.data();
    assert.ok(out instanceof Float64Array);
    assert.deepEqual(Array.from(out), [0.1, 1 / 3]); // exact: no float32 rounding
  }));

  test('int64 via BigInt64Array keeps values beyond 2^53 exactly', () => tidy(() => {
    const big = [1n, -2n, 2n ** 40n, 9007199254740993n, -(2n ** 62n), 0n];
    const t = Tensor.fromArray(BigInt64Array.from(big), [3, 2], { dtype: 'int64' });
    assert.equal(t.dtype, 'int64');
    assert.deepEqual(t.shape, [3, 2]);
    const out = t.data();
    assert.ok(out instanceof BigInt64Array);
    assert.deepEqual(Array.from(out as BigInt64Array), big);
    // plain numbers are truncated to integers
    const p = Tensor.fromArray([3.7, -2.2, 5], [3], { dtype: 'int64' });
    assert.deepEqual(Array.from(p.data() as BigInt64Array), [3n, -2n, 5n]);
    // int64 arithmetic stays integral
    assert.deepEqual(Array.from(p.add(p).data() as BigInt64Array), [6n, -4n, 10n]);
  }));

  test('float16 from and to raw bits', () => tidy(() => {
    // 1, -2, 0.5, 65504 (max half), 2^-24 (smallest subnormal), +inf
    const bits = new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00]);
    const h = Tensor.fromArray(bits, [6], { dtype: 'float16' });
    assert.equal(h.dtype, 'float16');
    assert.deepEqual(Array.from(h.data() as Uint16Array), Array.from(bits));
    assert.deepEqual(Array.from(h.toFloat32()), [1, -2, 0.5, 65504, 2 ** -24, Infinity]);
    // float32 -> float16 conversion rounds to nearest: 1/3 -> 0x3555
    const f = Tensor.fromArray([1, -2, 1 / 3, 65504], [4]).to({ dtype: 'float16' });
    const fb = f.data();
    assert.ok(fb instanceof Uint16Array);
    assert.deepEqual(Array.from(fb), [0x3c00, 0xc000, 0x3555, 0x7bff]);
    // bfloat16 raw bits: 1 = 0x3F80, -0.5 = 0xBF00
    const bf = Tensor.fromArray(new Uint16Array([0x3f80, 0xbf00]), [2], { dtype: 'bfloat16' });
    assert.deepEqual(Array.from(bf.toFloat32()), [1, -0.5]);
  }));

  test('zeros, ones, full, scalar, arange, int32/uint8/bool', () => tidy(() => {
    assertTensor(Tensor.zeros([2, 2]), [2, 2], [0, 0, 0, 0], 0);
    assertTensor(Tensor.ones([3]), [3], [1, 1, 1], 0);
    assertTensor(Tensor.full([2], 2.5), [2], [2.5, 2.5], 0);
    const s = Tensor.scalar(4.25);
    assert.deepEqual(s.shape, []);
    assert.equal(s.numel, 1);
    assert.equal(s.item(), 4.25);
    assertTensor(Tensor.arange(1, 2.5, 0.5), [3], [1, 1.5, 2], 0);
    const i = Tensor.fromArray([7, -8], [2], { dtype: 'int32' });
    assert.ok(i.data() instanceof Int32Array);
    assert.deepEqual(Array.from(i.data() as Int32Array), [7, -8]);
    const u = Tensor.fromArray([0, 255, 3], [3], { dtype: 'uint8' });
    assert.deepEqual(Array.from(u.data() as Uint8Array), [0, 255, 3]);
    const b = Tensor.fromArray([1, 0, 1], [3], { dtype: 'bool' });
    assert.equal(b.dtype, 'bool');
    assert.deepEqual(Array.from(b.data() as Uint8Array), [1, 0, 1]);
    const empty = Tensor.zeros([0, 3]);
    assert.equal(empty.numel, 0);
    assert.equal(empty.data().length, 0);
    assert.equal(Tensor.zeros([2], { requiresGrad: true }).requiresGrad, true);
    assert.equal(Tensor.zeros([2]).requiresGrad, false);
  }));
});

// ------------------------------------------------------------------ convolutions

describe('conv2d vs a naive JS convolution', () => {
  test('hand case: 3x3 input, 2x2 ones kernel', () => tidy(() => {
    const y = F.conv2d(T([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]), Tensor.ones([1, 1, 2, 2]));
    assertTensor(y, [1, 1, 2, 2], [12, 16, 24, 28], 0);
  }));

  const cases: { name: string; xs: number[]; ws: number[]; bias: boolean; o: ConvOpts }[] = [
    { name: 'kernel 1, bias', xs: [1, 3, 4, 4], ws: [2, 3, 1, 1], bias: true, o: {} },
    { name: 'kernel 3, padding 1, batch 2, bias', xs: [2, 3, 5, 5], ws: [4, 3, 3, 3], bias: true, o: { padding: 1 } },
    { name: 'kernel 3, no padding, no bias', xs: [1, 2, 6, 5], ws: [3, 2, 3, 3], bias: false, o: {} },
    { name: 'kernel 4, stride 2, padding 1', xs: [1, 2, 8, 8], ws: [3, 2, 4, 4], bias: true, o: { stride: 2, padding: 1 } },
    { name: 'kernel 3, stride 2, padding 1, odd size', xs: [1, 3, 7, 7], ws: [2, 3, 3, 3], bias: false, o: { stride: 2, padding: 1 } },
    { name: 'groups 2, padding 1, bias', xs: [1, 4, 5, 5], ws: [6, 2, 3, 3], bias: true, o: { groups: 2, padding: 1 } },
    { name: 'dilation 2, padding 2', xs: [1, 2, 6, 6], ws: [2, 2, 3, 3], bias: false, o: { dilation: 2, padding: 2 } },
  ];
  for (const c of cases) {
    test(c.name, () => tidy(() => {
      const x = rand(prod(c.xs), 11);
      const w = rand(prod(c.ws), 23);
      const b = c.bias ? rand(c.ws[0], 37) : null;
      const ref = convRef(x, c.xs, w, c.ws, b, c.o);
      const y = F.conv2d(T(x, c.xs), T(w, c.ws), b ? T(b, [b.length]) : null, c.o);
      assertTensor(y, ref.shape, ref.data, 1e-5, c.name);
    }));
  }
});

describe('conv_transpose2d vs a naive JS scatter', () => {
  test('hand case: one pixel, k2 s2', () => tidy(() => {
    const y = F.convTranspose2d(T([2], [1, 1, 1, 1]), T([1, 2, 3, 4], [1, 1, 2, 2]), T([0.5], [1]), { stride: 2 });
    assertTensor(y, [1, 1, 2, 2], [2.5, 4.5, 6.5, 8.5], 0);
  }));

  test('k2 s2 with bias: 3 -> 2 channels, 3x4 -> 6x8', () => tidy(() => {
    const xs = [1, 3, 3, 4], ws = [3, 2, 2, 2];
    const x = rand(prod(xs), 5), w = rand(prod(ws), 6), b = rand(2, 7);
    const ref = convTRef(x, xs, w, ws, b, 2, 0);
    assert.deepEqual(ref.shape, [1, 2, 6, 8]);
    assertTensor(F.convTranspose2d(T(x, xs), T(w, ws), T(b, [2]), { stride: 2 }), ref.shape, ref.data, 1e-5);
  }));

  test('k4 s2 p1 (overlapping), batch 2, no bias', () => tidy(() => {
    const xs = [2, 2, 3, 3], ws = [2, 3, 4, 4];
    const x = rand(prod(xs), 8), w = rand(prod(ws), 9);
    const ref = convTRef(x, xs, w, ws, null, 2, 1);
    assert.deepEqual(ref.shape, [2, 3, 6, 6]);
    assertTensor(F.convTranspose2d(T(x, xs), T(w, ws), null, { stride: 2, padding: 1 }), ref.shape, ref.data, 1e-5);
  }));
});

// ------------------------------------------------------------------ normalisation

describe('normalisation layers', () => {
  const xs = [2, 3, 4, 5];
  const x = rand(prod(xs), 101).map((v, i) => v * (1 + (i % 7)) + (i % 3)); // uneven scales and offsets

  test('instance norm without affine', () => tidy(() => {
    const y = F.instanceNorm(T(x, xs));
    assertTensor(y, xs, instanceNormRef(x, xs, null, null, 1e-5), 1e-4);
  }));

  test('instance norm with affine weight and bias, custom eps', () => tidy(() => {
    const w = [0.5, -2, 1.5], b = [0.1, 0.2, -0.3];
    const y = F.instanceNorm(T(x, xs), T(w, [3]), T(b, [3]), 1e-3);
    assertTensor(y, xs, instanceNormRef(x, xs, w, b, 1e-3), 1e-4);
  }));

  test('batch norm training: batch statistics, running stats updated in place', () => tidy(() => {
    const w = [0.5, -2, 1.5], b = [0.1, 0.2, -0.3];
    const rm0 = [0.5, -1, 2], rv0 = [2, 0.5, 1];
    const rm = T(rm0, [3]), rv = T(rv0, [3]);
    const y = F.batchNorm(T(x, xs), rm, rv, { weight: T(w, [3]), bias: T(b, [3]), training: true });
    const { mean, varB, count } = channelStats(x, xs);
    const HW = xs[2] * xs[3];
    const expected = x.map((v, i) => {
      const c = Math.floor(i / HW) % 3;
      return ((v - mean[c]) / Math.sqrt(varB[c] + 1e-5)) * w[c] + b[c];
    });
    assertTensor(y, xs, expected, 1e-4, 'output');
    // momentum 0.1; the running variance uses the unbiased estimate n / (n - 1)
    assertClose(vals(rm), rm0.map((r, c) => 0.9 * r + 0.1 * mean[c]), 1e-5, 'running mean');
    assertClose(vals(rv), rv0.map((r, c) => 0.9 * r + 0.1 * varB[c] * count / (count - 1)), 1e-5, 'running var');
  }));

  test('batch norm training with momentum 0.5', () => tidy(() => {
    const rm = Tensor.zeros([3]), rv = Tensor.ones([3]);
    F.batchNorm(T(x, xs), rm, rv, { training: true, momentum: 0.5 });
    const { mean, varB, count } = channelStats(x, xs);
    assertClose(vals(rm), mean.map((m) => 0.5 * m), 1e-5, 'running mean');
    assertClose(vals(rv), varB.map((v) => 0.5 + 0.5 * v * count / (count - 1)), 1e-5, 'running var');
  }));

  test('batch norm eval: uses running statistics and leaves them alone', () => tidy(() => {
    const w = [0.5, -2, 1.5], b = [0.1, 0.2, -0.3];
    const rm0 = [0.5, -1, 2], rv0 = [2, 0.5, 1];
    const rm = T(rm0, [3]), rv = T(rv0, [3]);
    const y = F.batchNorm(T(x, xs), rm, rv, { weight: T(w, [3]), bias: T(b, [3]), training: false });
    const HW = xs[2] * xs[3];
    const expected = x.map((v, i) => {
      const c = Math.floor(i / HW) % 3;
      return ((v - rm0[c]) / Math.sqrt(rv0[c] + 1e-5)) * w[c] + b[c];
    });
    assertTensor(y, xs, expected, 1e-5);
    assertClose(vals(rm), rm0, 0, 'running mean');
    assertClose(vals(rv), rv0, 0, 'running var');
  }));
});

// ------------------------------------------------------------------ padding, resizing, pooling

describe('padding', () => {
  const x = (): Tensor => T([1, 2, 3, 4, 5, 6], [1, 1, 2, 3]);

  test('reflect, all sides', () => tidy(() => {
    assertTensor(F.pad(x(), 1, 'reflect'), [1, 1, 4, 5], [
      5, 4, 5, 6, 5,
      2, 1, 2, 3, 2,
      5, 4, 5, 6, 5,
      2, 1, 2, 3, 2,
    ], 0);
  }));

  test('reflect, left only: the order is [left, right, top, bottom]', () => tidy(() => {
    assertTensor(F.pad(x(), [2, 0, 0, 0], 'reflect'), [1, 1, 2, 5], [3, 2, 1, 2, 3, 6, 5, 4, 5, 6], 0);
    assertTensor(F.pad(x(), [0, 0, 1, 0], 'reflect'), [1, 1, 3, 3], [4, 5, 6, 1, 2, 3, 4, 5, 6], 0);
  }));

  test('replicate, asymmetric', () => tidy(() => {
    assertTensor(F.pad(x(), [2, 1, 0, 1], 'replicate'), [1, 1, 3, 6], [
      1, 1, 1, 2, 3, 3,
      4, 4, 4, 5, 6, 6,
      4, 4, 4, 5, 6, 6,
    ], 0);
  }));

  test('constant with a value', () => tidy(() => {
    assertTensor(F.pad(x(), [1, 0, 0, 1], 'constant', 7), [1, 1, 3, 4], [7, 1, 2, 3, 7, 4, 5, 6, 7, 7, 7, 7], 0);
  }));
});

describe('interpolation (align_corners false)', () => {
  test('nearest upsampling x2', () => tidy(() => {
    assertTensor(F.interpolate(T([1, 2, 3, 4], [1, 1, 2, 2]), [4, 4], 'nearest'), [1, 1, 4, 4], [
      1, 1, 2, 2,
      1, 1, 2, 2,
      3, 3, 4, 4,
      3, 3, 4, 4,
    ], 0);
  }));

  test('nearest downsampling and a non-integer scale', () => tidy(() => {
    const g = Tensor.arange(0, 16).reshape([1, 1, 4, 4]);
    assertTensor(F.interpolate(g, [2, 2], 'nearest'), [1, 1, 2, 2], [0, 2, 8, 10], 0);
    // 3 -> 5: source index floor(i * 3 / 5) = 0, 0, 1, 1, 2
    assertTensor(F.interpolate(T([1, 2, 3], [1, 1, 1, 3]), [1, 5], 'nearest'), [1, 1, 1, 5], [1, 1, 2, 2, 3], 0);
  }));

  test('bilinear upsampling x2 (half-pixel centres, edges clamped)', () => tidy(() => {
    // source coordinates (i + 0.5) / 2 - 0.5 clamped at 0: 0, 0.25, 0.75, 1 -> value 1 + fx + 2 fy
    assertTensor(F.interpolate(T([1, 2, 3, 4], [1, 1, 2, 2]), [4, 4], 'bilinear'), [1, 1, 4, 4], [
      1, 1.25, 1.75, 2,
      1.5, 1.75, 2.25, 2.5,
      2.5, 2.75, 3.25, 3.5,
      3, 3.25, 3.75, 4,
    ], 1e-6);
  }));

  test('bilinear downsampling averages the centre pairs', () => tidy(() => {
    // source coordinates 0.5 and 2.5 on a ramp 4 y + x
    const g = Tensor.arange(0, 16).reshape([1, 1, 4, 4]);
    assertTensor(F.interpolate(g, [2, 2], 'bilinear'), [1, 1, 2, 2], [2.5, 4.5, 10.5, 12.5], 1e-6);
  }));

  test('interpolation keeps batch and channels apart', () => tidy(() => {
    const x = T([1, 2, 3, 4, 10, 20, 30, 40], [2, 1, 2, 2]);
    assertTensor(F.interpolate(x, [1, 1], 'bilinear'), [2, 1, 1, 1], [2.5, 25], 1e-6);
  }));
});

describe('average pooling', () => {
  const x = (): Tensor => T([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);

  test('kernel 2, stride 1', () => tidy(() => {
    assertTensor(F.avgPool2d(x(), 2, { stride: 1 }), [1, 1, 2, 2], [3, 4, 6, 7], 1e-6);
  }));

  test('kernel 2 (stride defaults to kernel), padding 1, count_include_pad true', () => tidy(() => {
    // windows: {1} {2,3} {4,7} {5,6,8,9}, each divided by 4
    assertTensor(F.avgPool2d(x(), 2, { padding: 1, countIncludePad: true }), [1, 1, 2, 2], [0.25, 1.25, 2.75, 7], 1e-6);
    assertTensor(F.avgPool2d(x(), 2, { padding: 1 }), [1, 1, 2, 2], [0.25, 1.25, 2.75, 7], 1e-6);
  }));

  test('kernel 2, padding 1, count_include_pad false', () => tidy(() => {
    // the same windows divided by the number of real pixels: 1, 2, 2, 4
    assertTensor(F.avgPool2d(x(), 2, { padding: 1, countIncludePad: false }), [1, 1, 2, 2], [1, 2.5, 5.5, 7], 1e-6);
  }));

  test('kernel 3, stride 1, padding 1: the corner differs between the two modes', () => tidy(() => {
    const inc = vals(F.avgPool2d(x(), 3, { stride: 1, padding: 1, countIncludePad: true }));
    const exc = vals(F.avgPool2d(x(), 3, { stride: 1, padding: 1, countIncludePad: false }));
    assertClose([inc[0], inc[4]], [(1 + 2 + 4 + 5) / 9, 5], 1e-6);
    assertClose([exc[0], exc[4]], [(1 + 2 + 4 + 5) / 4, 5], 1e-6);
  }));
});

// ------------------------------------------------------------------ elementwise

describe('activations and elementwise maths', () => {
  const xs = [-2, -0.5, 0, 1.5, 3];

  test('leaky relu (default slope 0.01 and 0.2), relu, sigmoid', () => tidy(() => {
    const x = T(xs, [5]);
    assertClose(vals(x.leakyRelu()), [-0.02, -0.005, 0, 1.5, 3], 1e-7);
    assertClose(vals(F.leakyRelu(x)), [-0.02, -0.005, 0, 1.5, 3], 1e-7);
    assertClose(vals(F.leakyRelu(x, 0.2)), [-0.4, -0.1, 0, 1.5, 3], 1e-7);
    assertClose(vals(F.relu(x)), [0, 0, 0, 1.5, 3], 0);
    assertClose(vals(F.sigmoid(x)), xs.map((v) => 1 / (1 + Math.exp(-v))), 1e-6);
    assertClose(vals(x.tanh()), xs.map(Math.tanh), 1e-6);
  }));

  test('abs, log, exp, sqrt, neg', () => tidy(() => {
    const x = T(xs, [5]);
    assertClose(vals(x.abs()), [2, 0.5, 0, 1.5, 3], 0);
    assertClose(vals(x.neg()), [2, 0.5, -0, -1.5, -3], 0);
    assertClose(vals(x.exp()), xs.map(Math.exp), 1e-6);
    const p = T([0.5, 1, Math.E, 10], [4]);
    assertClose(vals(p.log()), [Math.log(0.5), 0, 1, Math.log(10)], 1e-6);
    assertClose(vals(p.sqrt()), [Math.sqrt(0.5), 1, Math.sqrt(Math.E), Math.sqrt(10)], 1e-6);
    const l = vals(T([0, -1], [2]).log());
    assert.equal(l[0], -Infinity);
    assert.ok(Number.isNaN(l[1]));
  }));

  test('clamp with min, max, and both', () => tidy(() => {
    const x = T(xs, [5]);
    assertClose(vals(x.clamp(0)), [0, 0, 0, 1.5, 3], 0);
    assertClose(vals(x.clamp(null, 1)), [-2, -0.5, 0, 1, 1], 0);
    assertClose(vals(x.clamp(-1, 2)), [-1, -0.5, 0, 1.5, 2], 0);
  }));

  test('pow with scalar and tensor exponents', () => tidy(() => {
    const x = T([1, 2, 3, 4], [4]);
    assertClose(vals(x.pow(2)), [1, 4, 9, 16], 0);
    assertClose(vals(x.pow(0.5)), [1, Math.SQRT2, Math.sqrt(3), 2], 1e-6);
    assertClose(vals(x.pow(-1)), [1, 0.5, 1 / 3, 0.25], 1e-6);
    assertClose(vals(x.pow(T([0, 1, 2, 3], [4]))), [1, 2, 9, 64], 0);
  }));

  test('broadcasting arithmetic with tensors and scalars', () => tidy(() => {
    const a = rand(6, 3), b = rand(3, 4), c = rand(2, 5);
    const A = T(a, [2, 3]), B = T(b, [3]), C = T(c, [2, 1]);
    assertTensor(A.add(B), [2, 3], a.map((v, i) => v + b[i % 3]), 1e-6, 'add row');
    assertTensor(A.sub(C), [2, 3], a.map((v, i) => v - c[Math.floor(i / 3)]), 1e-6, 'sub column');
    assertTensor(A.mul(B), [2, 3], a.map((v, i) => v * b[i % 3]), 1e-6, 'mul row');
    assertTensor(A.div(C), [2, 3], a.map((v, i) => v / c[Math.floor(i / 3)]), 1e-5, 'div column');
    // outer: [2, 1] * [3] -> [2, 3]
    assertTensor(C.mul(B), [2, 3], [0, 1].flatMap((i) => b.map((bv) => c[i] * bv)), 1e-6, 'outer');
    // rank-4 with per-channel [1, C, 1, 1]
    const X = T(rand(2 * 3 * 2 * 2, 6), [2, 3, 2, 2]);
    const s = [1, 10, 100];
    const xv = vals(X);
    assertTensor(X.mul(T(s, [1, 3, 1, 1])), [2, 3, 2, 2], xv.map((v, i) => v * s[Math.floor(i / 4) % 3]), 1e-5, 'per channel');
    // scalars
    assertTensor(A.add(2), [2, 3], a.map((v) => v + 2), 1e-6, 'add scalar');
    assertTensor(A.sub(0.5), [2, 3], a.map((v) => v - 0.5), 1e-6, 'sub scalar');
    assertTensor(A.mul(-3), [2, 3], a.map((v) => v * -3), 1e-6, 'mul scalar');
    assertTensor(A.div(4), [2, 3], a.map((v) => v / 4), 1e-6, 'div scalar');
    assertTensor(A.add(Tensor.scalar(1)), [2, 3], a.map((v) => v + 1), 1e-6, '0-d tensor');
    assertTensor(A.addScaled(A, 2), [2, 3], a.map((v) => 3 * v), 1e-6, 'addScaled');
    assertTensor(A.maximum(0), [2, 3], a.map((v) => Math.max(v, 0)), 0, 'maximum scalar');
    assertTensor(A.maximum(B), [2, 3], a.map((v, i) => Math.max(v, b[i % 3])), 0, 'maximum tensor');
    assert.throws(() => A.add(T([1, 2], [2])), /libtorch:/);
  }));

  test('comparisons and where', () => tidy(() => {
    const x = T([1, 2, 3, 4], [4]);
    assert.deepEqual(Array.from(x.gt(2).data() as Uint8Array), [0, 0, 1, 1]);
    assert.deepEqual(Array.from(x.lt(2).data() as Uint8Array), [1, 0, 0, 0]);
    assert.deepEqual(Array.from(x.eq(T([1, 0, 3, 0], [4])).data() as Uint8Array), [1, 0, 1, 0]);
    assertClose(vals(x.where(x.gt(2), Tensor.zeros([4]))), [0, 0, 3, 4], 0);
  }));
});

// ------------------------------------------------------------------ shape ops

describe('shape operations', () => {
  test('cat along dims 0 and 1, and stack', () => tidy(() => {
    const a = T([1, 2], [1, 2]), b = T([3, 4, 5, 6], [2, 2]);
    assertTensor(cat([a, b], 0), [3, 2], [1, 2, 3, 4, 5, 6], 0);
    const c = T([7, 8, 9, 10, 11, 12], [2, 3]);
    assertTensor(cat([b, c], 1), [2, 5], [3, 4, 7, 8, 9, 5, 6, 10, 11, 12], 0);
    assertTensor(cat([b, c], -1), [2, 5], [3, 4, 7, 8, 9, 5, 6, 10, 11, 12], 0);
    assertTensor(stack([a, a.mul(2)], 0), [2, 1, 2], [1, 2, 2, 4], 0);
    assertTensor(stack([T([1, 2], [2]), T([3, 4], [2])], 1), [2, 2], [1, 3, 2, 4], 0);
  }));

  test('chunk: uneven split and along dim 1', () => tidy(() => {
    const parts = Tensor.arange(0, 10).chunk(3);
    assert.equal(parts.length, 3);
    assertTensor(parts[0], [4], [0, 1, 2, 3], 0);
    assertTensor(parts[1], [4], [4, 5, 6, 7], 0);
    assertTensor(parts[2], [2], [8, 9], 0);
    const [l, r] = Tensor.arange(0, 8).reshape([2, 4]).chunk(2, 1);
    assertTensor(l, [2, 2], [0, 1, 4, 5], 0);
    assertTensor(r, [2, 2], [2, 3, 6, 7], 0);
  }));

  test('slice: start/end/step, negative indices, inner dim', () => tidy(() => {
    const x = Tensor.arange(0, 10);
    assertTensor(x.slice(0, 2, 8, 3), [2], [2, 5], 0);
    assertTensor(x.slice(0, -3), [3], [7, 8, 9], 0);
    assertTensor(x.slice(0, 1, -7), [2], [1, 2], 0);
    const m = Tensor.arange(0, 12).reshape([3, 4]);
    assertTensor(m.slice(1, 1, 3), [3, 2], [1, 2, 5, 6, 9, 10], 0);
    assertTensor(m.slice(-2, 2), [1, 4], [8, 9, 10, 11], 0);
  }));

  test('permute and transpose vs JS index arithmetic', () => tidy(() => {
    const x = Tensor.arange(0, 24).reshape([2, 3, 4]);
    // out[k][i][j] = in[i][j][k] = 12 i + 4 j + k
    const exp: number[] = [];
    for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) exp.push(12 * i + 4 * j + k);
    assertTensor(x.permute([2, 0, 1]), [4, 2, 3], exp, 0);
    const tr: number[] = [];
    for (let i = 0; i < 2; i++) for (let k = 0; k < 4; k++) for (let j = 0; j < 3; j++) tr.push(12 * i + 4 * j + k);
    assertTensor(x.transpose(1, -1), [2, 4, 3], tr, 0);
  }));

  test('reshape, flatten, unsqueeze, squeeze, expand', () => tidy(() => {
    const x = Tensor.arange(0, 6);
    assertTensor(x.reshape([3, -1]), [3, 2], [0, 1, 2, 3, 4, 5], 0);
    // reshape of a permuted (non-contiguous) view follows logical order
    assertTensor(x.reshape([2, 3]).permute([1, 0]).flatten(), [6], [0, 3, 1, 4, 2, 5], 0);
    assert.deepEqual(x.reshape([2, 3]).unsqueeze(0).shape, [1, 2, 3]);
    assert.deepEqual(x.reshape([2, 3]).unsqueeze(-1).shape, [2, 3, 1]);
    assert.deepEqual(x.reshape([1, 6]).squeeze(0).shape, [6]);
    assert.deepEqual(x.reshape([2, 3]).squeeze(0).shape, [2, 3]);
    assertTensor(T([1, 2], [2, 1]).expand([2, 3]), [2, 3], [1, 1, 1, 2, 2, 2], 0);
    assert.throws(() => x.reshape([4, -1]), /libtorch:/);
  }));

  test('rot90 and flip on the last two dims', () => tidy(() => {
    const x = T([1, 2, 3, 4, 5, 6], [1, 1, 2, 3]);
    // torch.rot90 k=1 turns counter-clockwise: [[1,2,3],[4,5,6]] -> [[3,6],[2,5],[1,4]]
    assertTensor(x.rot90(1), [1, 1, 3, 2], [3, 6, 2, 5, 1, 4], 0);
    assertTensor(x.rot90(2), [1, 1, 2, 3], [6, 5, 4, 3, 2, 1], 0);
    assertTensor(x.rot90(3), [1, 1, 3, 2], [4, 1, 5, 2, 6, 3], 0);
    assertTensor(x.rot90(-1), [1, 1, 3, 2], [4, 1, 5, 2, 6, 3], 0);
    assertTensor(x.rot90(4), [1, 1, 2, 3], [1, 2, 3, 4, 5, 6], 0);
    assertTensor(x.rot90(1, [3, 2]), [1, 1, 3, 2], [4, 1, 5, 2, 6, 3], 0);
    assertTensor(x.flip([-1]), [1, 1, 2, 3], [3, 2, 1, 6, 5, 4], 0);
    assertTensor(x.flip([2]), [1, 1, 2, 3], [4, 5, 6, 1, 2, 3], 0);
    assertTensor(x.flip([2, 3]), [1, 1, 2, 3], [6, 5, 4, 3, 2, 1], 0);
  }));

  test('indexSelect with an int64 index', () => tidy(() => {
    const m = Tensor.arange(0, 6).reshape([3, 2]);
    const idx = Tensor.fromArray([2, 0, 2], [3], { dtype: 'int64' });
    assertTensor(m.indexSelect(0, idx), [3, 2], [4, 5, 0, 1, 4, 5], 0);
  }));
});

// ------------------------------------------------------------------ reductions

describe('reductions', () => {
  const shape = [2, 3, 4];
  const x = rand(24, 77);

  test('over everything', () => tidy(() => {
    const t = T(x, shape);
    const s = t.sum();
    assert.deepEqual(s.shape, []);
    assertClose([s.item()], [sumOf(x)], 1e-5);
    assertClose([t.mean().item()], [meanOf(x)], 1e-5);
    assert.equal(t.max().item(), maxOf(x));
    assert.equal(t.min().item(), minOf(x));
    const m = meanOf(x);
    assertClose([t.var().item()], [meanOf(x.map((v) => (v - m) ** 2))], 1e-5); // population variance
  }));

  const cases: { dims: number | number[]; keepdim: boolean; shape: number[] }[] = [
    { dims: 1, keepdim: false, shape: [2, 4] },
    { dims: -1, keepdim: true, shape: [2, 3, 1] },
    { dims: [0, 2], keepdim: false, shape: [3] },
    { dims: [0, 2], keepdim: true, shape: [1, 3, 1] },
    { dims: [1, 2], keepdim: true, shape: [2, 1, 1] },
  ];
  for (const c of cases) {
    test(`dims ${JSON.stringify(c.dims)} keepdim ${c.keepdim}`, () => tidy(() => {
      const t = T(x, shape);
      const d = typeof c.dims === 'number' ? [c.dims] : c.dims;
      assertTensor(t.sum(c.dims, c.keepdim), c.shape, reduceRef(x, shape, d, sumOf), 1e-5, 'sum');
      assertTensor(t.mean(c.dims, c.keepdim), c.shape, reduceRef(x, shape, d, meanOf), 1e-5, 'mean');
      assertTensor(t.max(c.dims, c.keepdim), c.shape, reduceRef(x, shape, d, maxOf), 0, 'max');
      assertTensor(t.min(c.dims, c.keepdim), c.shape, reduceRef(x, shape, d, minOf), 0, 'min');
    }));
  }

  test('argmax', () => tidy(() => {
    const t = T([1, 5, 2, 9, 0, 3], [2, 3]);
    assert.deepEqual(Array.from(t.argmax(1).data() as BigInt64Array), [1n, 0n]);
    assert.deepEqual(t.argmax(0, true).shape, [1, 3]);
  }));
});

// ------------------------------------------------------------------ linear algebra

describe('matmul and normalize', () => {
  test('2-d matmul vs JS', () => tidy(() => {
    const a = rand(6, 1), b = rand(12, 2);
    assertTensor(T(a, [2, 3]).matmul(T(b, [3, 4])), [2, 4], matmulRef(a, b, 2, 3, 4), 1e-6);
  }));

  test('hand case and matrix-vector', () => tidy(() => {
    assertTensor(T([1, 2, 3, 4], [2, 2]).matmul(T([5, 6, 7, 8], [2, 2])), [2, 2], [19, 22, 43, 50], 0);
    assertTensor(T([1, 2, 3, 4, 5, 6], [2, 3]).matmul(T([1, 0, -1], [3])), [2], [-2, -2], 0);
  }));

  test('batched matmul broadcasts the right operand', () => tidy(() => {
    const a = rand(2 * 2 * 3, 3), b = rand(3 * 2, 4);
    const exp = [...matmulRef(a.slice(0, 6), b, 2, 3, 2), ...matmulRef(a.slice(6), b, 2, 3, 2)];
    assertTensor(T(a, [2, 2, 3]).matmul(T(b, [3, 2])), [2, 2, 2], exp, 1e-6);
  }));

  test('normalize: L2 along dim 1 (default), dim 0, and a zero row stays zero', () => tidy(() => {
    const x = T([3, 4, 0, 2, -1, 2, 0, 0, 0], [3, 3]);
    assertTensor(F.normalize(x), [3, 3], [0.6, 0.8, 0, 2 / 3, -1 / 3, 2 / 3, 0, 0, 0], 1e-6);
    const y = T([3, 0, 4, 5], [2, 2]);
    assertTensor(F.normalize(y, { dim: 0 }), [2, 2], [0.6, 0, 0.8, 1], 1e-6);
    assertTensor(F.normalize(T([0, 0], [1, 2])), [1, 2], [0, 0], 0);
    // p = 1
    assertTensor(F.normalize(T([1, -3], [1, 2]), { p: 1 }), [1, 2], [0.25, -0.75], 1e-6);
  }));
});

describe('autocast (mixed precision)', () => {
  // First in this file: the warning is said once per process.
  test('bf16 on a CPU without bfloat16 instructions says so, once (a Node warning); the CPU is read from /proc/cpuinfo', async () => {
    const seen: string[] = [];
    const on = (w: Error & { code?: string }) => void (w.code === 'MSDI_BF16_EMULATED' && seen.push(w.message));
    process.on('warning', on);
    try {
      tidy(() => {
        const x = T(rand(2 * 4 * 8 * 8, 9), [2, 4, 8, 8]);
        const w = T(rand(4 * 4 * 3 * 3, 10), [4, 4, 3, 3]);
        for (let i = 0; i < 2; i++) withAutocast('cpu', 'bfloat16', () => F.conv2d(x, w));
      });
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', on);
    }
    const here = existsSync('/proc/cpuinfo') ? cpuinfoHasBf16(readFileSync('/proc/cpuinfo', 'utf8')) : null;
    assert.equal(seen.length, here === false ? 1 : 0, seen.join('; '));
    if (seen.length) assert.match(seen[0]!, /no bfloat16 instructions .* about 10x slower than float32; use amp off/);
    assert.equal(cpuinfoHasBf16('processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu avx512_bf16\n'), false);
    assert.equal(cpuinfoHasBf16('flags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n'), true);
    assert.equal(cpuinfoHasBf16('flags\t\t: fpu amx_bf16 amx_tile\n'), true);
    assert.equal(cpuinfoHasBf16('Features\t: fp asimd bf16 i8mm\n'), true);
    assert.equal(cpuinfoHasBf16('Features\t: fp asimd sve\n'), false);
    assert.equal(cpuinfoHasBf16('model name\t: unknown\n'), null);
  });

  test('bfloat16 on the CPU: convolutions in bf16 and near float32, float32 again afterwards, the inner call of a nested one inherits', () => tidy(() => {
    const x = T(rand(2 * 8 * 12 * 12, 4), [2, 8, 12, 12]);
    const w = T(rand(8 * 8 * 3 * 3, 5), [8, 8, 3, 3]);
    const ref = F.conv2d(x, w, null, { padding: 1 });
    const y = withAutocast('cpu', 'bfloat16', () => F.conv2d(x, w, null, { padding: 1 }));
    assert.equal(y.dtype, 'bfloat16');
    const err = y.to({ dtype: 'float32' }).sub(ref).abs().max().item() / ref.abs().max().item();
    assert.ok(err > 0 && err < 2e-2, `relative error ${err}`);
    assert.equal(F.conv2d(x, w, null, { padding: 1 }).dtype, 'float32');
    const inner = withAutocast('cpu', 'bfloat16', () => {
      withAutocast('cpu', 'bfloat16', () => F.conv2d(x, w));
      return F.conv2d(x, w); // still under the outer call
    });
    assert.equal(inner.dtype, 'bfloat16');
    assert.equal(withAutocast('cpu', null, () => F.conv2d(x, w)).dtype, 'float32');
    assert.throws(() => withAutocast('cpu', 'int8' as never, () => 0), /'bfloat16' or 'float16'/);
    // a failing body leaves autocast off
    assert.throws(() => withAutocast('cpu', 'bfloat16', () => { throw new Error('boom'); }), /boom/);
    assert.equal(F.conv2d(x, w).dtype, 'float32');
  }));

  test('instance norm of a bf16 activation with float32 affine parameters stays bf16 (no promotion), near float32, float32 gradients', () => tidy(() => {
    const x = T(rand(2 * 8 * 12 * 12, 6), [2, 8, 12, 12]).mul(3).add(1).channelsLast();
    const weight = T(rand(8, 7), [8]).add(0.5).requiresGrad_(true);
    const bias = T(rand(8, 8), [8]).requiresGrad_(true);
    const ref = F.instanceNorm(x, weight, bias);
    const xb = x.to({ dtype: 'bfloat16' });
    const y = withAutocast('cpu', 'bfloat16', () => F.instanceNorm(xb, weight, bias));
    assert.equal(y.dtype, 'bfloat16');
    const err = y.to({ dtype: 'float32' }).sub(ref).abs().max().item() / ref.abs().max().item();
    assert.ok(err > 0 && err < 2e-2, `relative error ${err}`);
    y.to({ dtype: 'float32' }).sum().backward();
    assert.equal(weight.grad?.dtype, 'float32');
    assert.equal(bias.grad?.dtype, 'float32');
    assert.ok(Math.abs(bias.grad!.sum().item() - 2 * 8 * 144) < 1e-3, 'every output adds its bias once');
  }));
});
