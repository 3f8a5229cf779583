/**
 * Autograd, gradient modes, Adam and gradient clipping, checked against hand-derived
 * gradients and a pure-JS Adam that follows torch.optim.Adam step for step.
 */
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import {
  Tensor, tidy, liveTensors, disposeAll, noGrad, enableGrad, inferenceMode, isGradEnabled,
  Adam, clipGradNorm, manualSeed, NativeError, ValidationError, type AdamParamState,
} from '../src/engine/index.js';
import { native } from '../src/engine/native.js';

const vals = (t: Tensor): number[] => Array.from(t.toFloat32());
const T = (data: number[], shape: number[], requiresGrad = false): Tensor => Tensor.fromArray(data, shape, { requiresGrad });

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (!(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])))) {
      assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tol ${tol})`);
    }
  }
}

/** The gradient of `t` as numbers (reading .grad makes a tensor; dispose it here). */
function gradOf(t: Tensor): number[] | null {
  const g = t.grad;
  if (!g) return null;
  const v = vals(g);
  g.dispose();
  return v;
}

let liveBefore = liveTensors();
afterEach(() => {
  const [before, now] = [liveBefore, liveTensors()];
  liveBefore = now; // one leak fails one test, not every test after it
  assert.equal(now, before, 'a test leaked tensors');
});

// ------------------------------------------------------------------ backward

describe('backward', () => {
  test('elementwise expression vs hand-derived gradients', () => tidy(() => {
    const xv = [1, 2, 3], wv = [0.5, -1, 2];
    const x = T(xv, [3], true), w = T(wv, [3], true);
    // L = sum((x w + 1)^2) + 3 sum(log x) + mean(sigmoid w)
    const L = x.mul(w).add(1).pow(2).sum().add(x.log().sum().mul(3)).add(w.sigmoid().mean());
    assert.equal(L.requiresGrad, true);
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const Lexp = xv.reduce((a, v, i) => a + (v * wv[i] + 1) ** 2 + 3 * Math.log(v) + sig(wv[i]) / 3, 0);
    assertClose([L.item()], [Lexp], 1e-6, 'loss');
    L.backward();
    // dL/dx = 2 (x w + 1) w + 3 / x ; dL/dw = 2 (x w + 1) x + s (1 - s) / 3
    assertClose(gradOf(x)!, xv.map((v, i) => 2 * (v * wv[i] + 1) * wv[i] + 3 / v), 1e-6, 'dL/dx');
    assertClose(gradOf(w)!, wv.map((v, i) => 2 * (xv[i] * v + 1) * xv[i] + (sig(v) * (1 - sig(v))) / 3), 1e-6, 'dL/dw');
  }));

  test('matmul gradients: dA = M B^T, dB = A^T M', () => tidy(() => {
    const a = [1, 2, -1, 0.5, 3, -2], b = [2, -1, 0, 1, 1, 3], m = [1, 2, 3, 4];
    const A = T(a, [2, 3], true), B = T(b, [3, 2], true);
    A.matmul(B).mul(T(m, [2, 2])).sum().backward();
    const dA: number[] = [], dB: number[] = [];
    for (let i = 0; i < 2; i++) for (let k = 0; k < 3; k++) dA.push(m[i * 2] * b[k * 2] + m[i * 2 + 1] * b[k * 2 + 1]);
    for (let k = 0; k < 3; k++) for (let j = 0; j < 2; j++) dB.push(a[k] * m[j] + a[3 + k] * m[2 + j]);
    assertClose(gradOf(A)!, dA, 1e-6, 'dA');
    assertClose(gradOf(B)!, dB, 1e-6, 'dB');
  }));

  test('broadcast operands receive summed gradients', () => tidy(() => {
    const xv = [1, 2, 3, 4, 5, 6];
    const b = T([0, 0, 0], [3], true);
    T(xv, [2, 3]).add(b).sum().backward();
    assertClose(gradOf(b)!, [2, 2, 2], 0, 'add');
    const s = T([1, 1, 1], [3], true);
    T(xv, [2, 3]).mul(s).sum().backward();
    assertClose(gradOf(s)!, [5, 7, 9], 0, 'mul');
  }));

  test('backward of a non-scalar with an explicit upstream gradient', () => tidy(() => {
    const x = T([1, -2, 3], [3], true);
    x.mul(x).backward(T([1, 0.5, 2], [3]));
    assertClose(gradOf(x)!, [2, -2, 12], 0);
  }));

  test('leaves that do not require grad get no gradient; detach cuts the graph', () => tidy(() => {
    const x = T([1, 2], [2], true), c = T([3, 4], [2]);
    const y = x.mul(c).add(x.detach().mul(100)).sum();
    y.backward();
    assert.equal(c.grad, null);
    assert.equal(c.requiresGrad, false);
    assertClose(gradOf(x)!, [3, 4], 0);
    assert.equal(x.detach().requiresGrad, false);
  }));

  test('gradients accumulate across backward calls; zeroGrad clears them', () => tidy(() => {
    const x = T([1, 2, 3], [3], true);
    assert.equal(x.grad, null);
    const loss = () => x.mul(x).sum(); // d/dx = 2x
    loss().backward();
    assertClose(gradOf(x)!, [2, 4, 6], 0, 'first');
    loss().backward();
    assertClose(gradOf(x)!, [4, 8, 12], 0, 'accumulated');
    x.zeroGrad();
    const after = gradOf(x);
    assert.ok(after === null || after.every((v) => v === 0), 'zeroGrad leaves no gradient');
    loss().backward();
    assertClose(gradOf(x)!, [2, 4, 6], 0, 'after zeroGrad');
    // the optimiser's zeroGrad clears all of its parameters
    const opt = new Adam([x], { lr: 0.1 });
    opt.zeroGrad();
    const cleared = gradOf(x);
    assert.ok(cleared === null || cleared.every((v) => v === 0));
    loss().backward();
    assertClose(gradOf(x)!, [2, 4, 6], 0, 'after Adam.zeroGrad');
    opt.dispose();
  }));
});

// ------------------------------------------------------------------ gradient modes

describe('gradient modes', () => {
  test('noGrad blocks recording and restores the previous mode', () => tidy(() => {
    const x = T([1, 2], [2], true);
    assert.equal(isGradEnabled(), true);
    const y = noGrad(() => {
      assert.equal(isGradEnabled(), false);
      return x.mul(2).add(1);
    });
    assert.equal(y.requiresGrad, false);
    assertClose(vals(y), [3, 5], 0);
    assert.equal(isGradEnabled(), true);
    assert.equal(x.mul(2).requiresGrad, true, 'recording resumes after noGrad');
    // a no-grad result cannot start a backward pass
    assert.throws(() => y.sum().backward(), (e: unknown) => e instanceof NativeError && /does not require grad/.test(e.message));
  }));

  test('noGrad restores the mode when fn throws, and nests', () => tidy(() => {
    assert.throws(() => noGrad(() => { throw new Error('boom'); }), /boom/);
    assert.equal(isGradEnabled(), true);
    const x = T([1], [1], true);
    noGrad(() => {
      noGrad(() => assert.equal(isGradEnabled(), false));
      assert.equal(isGradEnabled(), false, 'inner noGrad restores the outer (disabled) mode');
      const z = enableGrad(() => x.mul(3));
      assert.equal(z.requiresGrad, true, 'enableGrad records inside noGrad');
      assert.equal(isGradEnabled(), false);
    });
    assert.equal(isGradEnabled(), true);
  }));

  test('inferenceMode: no recording, inference tensors, restored afterwards', () => tidy(() => {
    const x = T([1, 2], [2], true);
    const y = inferenceMode(() => {
      assert.equal(isGradEnabled(), false);
      return x.mul(2);
    });
    assert.equal(y.requiresGrad, false);
    assert.equal(native.isInference(y.handle), true);
    assertClose(vals(y), [2, 4], 0);
    assert.equal(isGradEnabled(), true);
    const z = x.mul(2);
    assert.equal(native.isInference(z.handle), false);
    assert.equal(z.requiresGrad, true);
    // inference tensors can never be saved for backward
    assert.throws(() => x.mul(y).sum().backward(), (e: unknown) => e instanceof NativeError && /[Ii]nference tensor/.test(e.message));
    // leaves the mode even when fn throws
    assert.throws(() => inferenceMode(() => { throw new Error('boom'); }), /boom/);
    const w = x.mul(3);
    assert.equal(native.isInference(w.handle), false);
    assert.equal(w.requiresGrad, true);
  }));
});

// ------------------------------------------------------------------ Adam

interface JsAdamOpts { lr: number; b1: number; b2: number; eps: number; wd: number; decoupled?: boolean }

/** torch.optim.Adam (amsgrad off); weight decay is L2: grad + wd * param. `decoupled` gives AdamW, for contrast. */
class JsAdam {
  m: number[][];
  v: number[][];
  t = 0;
  constructor(public p: number[][], public o: JsAdamOpts) {
    this.m = p.map((q) => q.map(() => 0));
    this.v = p.map((q) => q.map(() => 0));
  }
  step(grads: number[][]): void {
    const { lr, b1, b2, eps, wd } = this.o;
    this.t++;
    const bc1 = 1 - b1 ** this.t, bc2 = 1 - b2 ** this.t;
    this.p = this.p.map((q, k) => q.map((pv, i) => {
      let g = grads[k][i];
      if (this.o.decoupled) pv *= 1 - lr * wd;
      else g += wd * pv;
      this.m[k][i] = b1 * this.m[k][i] + (1 - b1) * g;
      this.v[k][i] = b2 * this.v[k][i] + (1 - b2) * g * g;
      const denom = Math.sqrt(this.v[k][i]) / Math.sqrt(bc2) + eps;
      return pv - (lr / bc1) * (this.m[k][i] / denom);
    }));
  }
}

// loss = sum(c1 (p1 - t1)^2) + sum(c2 p2^2): gradient 2 c1 (p1 - t1), 2 c2 p2
const C1 = [1, 3, 0.5], T1 = [0, 1, -1], C2 = [0.25, 1, 2, 4];
const P1 = [1, -2, 0.5], P2 = [2, -1, 0.75, -0.25];
function lossOf(p1: Tensor, p2: Tensor): Tensor {
  return p1.sub(T(T1, [3])).pow(2).mul(T(C1, [3])).sum().add(p2.pow(2).mul(T(C2, [2, 2])).sum());
}
const jsGrads = (p: number[][]): number[][] => [p[0].map((v, i) => 2 * C1[i] * (v - T1[i])), p[1].map((v, i) => 2 * C2[i] * v)];

function engineStep(opt: Adam, p1: Tensor, p2: Tensor): void {
  tidy(() => {
    opt.zeroGrad();
    lossOf(p1, p2).backward();
    opt.step();
  });
}

describe('Adam', () => {
  const configs: { name: string; o: JsAdamOpts }[] = [
    { name: 'defaults (betas 0.9/0.999, eps 1e-8)', o: { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0 } },
    { name: 'custom betas, large eps (tests where eps goes), L2 weight decay', o: { lr: 0.05, b1: 0.8, b2: 0.95, eps: 0.1, wd: 0.3 } },
  ];
  for (const { name, o } of configs) {
    test(`3 steps match a pure-JS torch Adam: ${name}`, () => tidy(() => {
      const p1 = T(P1, [3], true), p2 = T(P2, [2, 2], true);
      const opt = o.b1 === 0.9 && o.b2 === 0.999 && o.eps === 1e-8 && o.wd === 0
        ? new Adam([p1, p2], { lr: o.lr })
        : new Adam([p1, p2], { lr: o.lr, betas: [o.b1, o.b2], eps: o.eps, weightDecay: o.wd });
      const ref = new JsAdam([P1.slice(), P2.slice()], o);
      for (let s = 1; s <= 3; s++) {
        ref.step(jsGrads(ref.p));
        engineStep(opt, p1, p2);
        assertClose(vals(p1), ref.p[0], 1e-5, `step ${s} p1`);
        assertClose(vals(p2), ref.p[1], 1e-5, `step ${s} p2`);
      }
      if (o.wd > 0) {
        // the reference is discriminating: decoupled (AdamW) decay ends elsewhere
        const w = new JsAdam([P1.slice(), P2.slice()], { ...o, decoupled: true });
        for (let s = 0; s < 3; s++) w.step(jsGrads(w.p));
        const gap = Math.max(...w.p.flat().map((v, i) => Math.abs(v - ref.p.flat()[i])));
        assert.ok(gap > 1e-3, `AdamW would differ by ${gap}`);
      }
      // changing the learning rate takes effect on the next step
      opt.lr = 0.01;
      assert.equal(opt.lr, 0.01);
      ref.o = { ...ref.o, lr: 0.01 };
      ref.step(jsGrads(ref.p));
      engineStep(opt, p1, p2);
      assertClose(vals(p1), ref.p[0], 1e-5, 'after lr change p1');
      assertClose(vals(p2), ref.p[1], 1e-5, 'after lr change p2');
      opt.dispose();
    }));
  }

  test('getState exposes step and moments; setState round trip continues identically', () => tidy(() => {
    const o: JsAdamOpts = { lr: 0.05, b1: 0.8, b2: 0.95, eps: 1e-8, wd: 0.1 };
    const opts = { lr: o.lr, betas: [o.b1, o.b2] as [number, number], eps: o.eps, weightDecay: o.wd };
    const p1 = T(P1, [3], true), p2 = T(P2, [2, 2], true);
    const unused = T([5, 5], [2], true); // never receives a gradient: no state
    const a = new Adam([p1, p2, unused], opts);
    const ref = new JsAdam([P1.slice(), P2.slice()], o);
    assert.deepEqual(a.getState(), [null, null, null]);
    for (let s = 0; s < 3; s++) {
      engineStep(a, p1, p2);
      ref.step(jsGrads(ref.p));
    }
    const state = a.getState();
    assert.equal(state.length, 3);
    assert.equal(state[2], null);
    const [s1, s2] = state as AdamParamState[];
    assert.equal(s1.step, 3);
    assert.equal(s2.step, 3);
    assertClose(vals(s1.expAvg), ref.m[0], 1e-5, 'exp_avg p1');
    assertClose(vals(s1.expAvgSq), ref.v[0], 1e-5, 'exp_avg_sq p1');
    assertClose(vals(s2.expAvg), ref.m[1], 1e-5, 'exp_avg p2');
    assertClose(vals(s2.expAvgSq), ref.v[1], 1e-5, 'exp_avg_sq p2');
    assertClose(vals(unused), [5, 5], 0, 'a parameter without gradient is not moved');

    // b: new parameters with the same values, state restored from a
    const q1 = noGrad(() => p1.clone()).requiresGrad_(true);
    const q2 = noGrad(() => p2.clone()).requiresGrad_(true);
    const b = new Adam([q1, q2, T([5, 5], [2], true)], opts);
    b.setState(state);
    disposeAll(state); // setState copied them
    const restored = b.getState();
    assert.equal((restored[0] as AdamParamState).step, 3);
    disposeAll(restored);
    // c: same values, fresh state (the control)
    const r1 = noGrad(() => p1.clone()).requiresGrad_(true);
    const r2 = noGrad(() => p2.clone()).requiresGrad_(true);
    const c = new Adam([r1, r2], opts);
    for (let s = 0; s < 2; s++) {
      engineStep(a, p1, p2);
      engineStep(b, q1, q2);
      engineStep(c, r1, r2);
      ref.step(jsGrads(ref.p));
    }
    assert.deepEqual(vals(q1), vals(p1), 'restored optimizer continues identically (p1)');
    assert.deepEqual(vals(q2), vals(p2), 'restored optimizer continues identically (p2)');
    assertClose(vals(p1), ref.p[0], 1e-5, 'still on the JS trajectory');
    const gap = Math.max(...vals(r1).map((v, i) => Math.abs(v - vals(p1)[i])));
    assert.ok(gap > 1e-3, `a fresh optimizer must differ (gap ${gap}), else the round trip proves nothing`);
    assert.throws(() => b.setState([null]), ValidationError);
    a.dispose(); b.dispose(); c.dispose();
  }));

  test('parameters at different step counts each get their own bias correction', () => tidy(() => {
    // p2 gets no gradient in the first step, so after three steps p1 has taken 3 and p2 2: the
    // optimiser updates all parameters together and must still correct each by its own count.
    const o: JsAdamOpts = { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0 };
    const p1 = T(P1, [3], true), p2 = T(P2, [2, 2], true);
    const opt = new Adam([p1, p2], { lr: o.lr });
    const ref1 = new JsAdam([P1.slice()], o), ref2 = new JsAdam([P2.slice()], o);
    for (let s = 1; s <= 3; s++) {
      tidy(() => {
        opt.zeroGrad();
        (s === 1 ? p1.sub(T(T1, [3])).pow(2).mul(T(C1, [3])).sum() : lossOf(p1, p2)).backward();
        opt.step();
      });
      const g = jsGrads([ref1.p[0], ref2.p[0]]);
      ref1.step([g[0]]);
      if (s > 1) ref2.step([g[1]]);
    }
    assert.deepEqual((opt.getState() as AdamParamState[]).map((st) => { const n = st.step; disposeAll([st]); return n; }), [3, 2]);
    assertClose(vals(p1), ref1.p[0], 1e-5, 'p1 (3 steps)');
    assertClose(vals(p2), ref2.p[0], 1e-5, 'p2 (2 steps)');
    // the check can fail: p2 corrected as if at step 3 ends elsewhere
    const wrong = new JsAdam([P2.slice()], o);
    wrong.t = 1;
    wrong.step([jsGrads([P1, P2])[1]]);
    wrong.step([jsGrads([P1, wrong.p[0]])[1]]);
    const gap = Math.max(...wrong.p[0].map((v, i) => Math.abs(v - ref2.p[0][i])));
    assert.ok(gap > 1e-3, `a shared step count would differ by ${gap}`);
    opt.dispose();
  }));

  test('a disposed optimizer refuses to step', () => tidy(() => {
    const p = T([1], [1], true);
    const opt = new Adam([p], { lr: 0.1 });
    opt.dispose();
    opt.dispose(); // idempotent
    assert.throws(() => opt.step(), ValidationError);
    assert.throws(() => new Adam([p], { lr: -1 }), ValidationError);
    // all parameters are updated at once, so one listed twice would be moved twice per operation
    assert.throws(() => new Adam([p, T([2], [1], true), p], { lr: 0.1 }), /parameter 2 is listed twice/);
  }));
});

// ------------------------------------------------------------------ clipping and seeds

describe('clipGradNorm', () => {
  const setup = () => {
    const a = T([0, 0], [2], true), b = T([0], [1], true);
    // gradients [3, 4] and [12]: global L2 norm 13
    a.mul(T([3, 4], [2])).sum().add(b.mul(12).sum()).backward();
    return { a, b };
  };

  test('returns the pre-clip total norm and scales gradients to maxNorm', () => tidy(() => {
    const { a, b } = setup();
    const total = clipGradNorm([a, b], 6.5);
    assertClose([total], [13], 1e-6, 'total norm');
    const scale = 6.5 / (13 + 1e-6); // torch: max_norm / (total + 1e-6)
    assertClose(gradOf(a)!, [3 * scale, 4 * scale], 1e-6, 'grad a');
    assertClose(gradOf(b)!, [12 * scale], 1e-6, 'grad b');
    const after = Math.hypot(...gradOf(a)!, ...gradOf(b)!);
    assertClose([after], [6.5], 1e-5, 'norm after');
  }));

  test('an infinite maxNorm only measures, and parameters without a gradient are skipped', () => tidy(() => {
    const { a, b } = setup();
    const none = T([1, 2], [2], true); // never in a loss: no gradient
    assertClose([clipGradNorm([a, none, b], Infinity)], [13], 1e-6);
    assertClose(gradOf(a)!, [3, 4], 0);
    assertClose(gradOf(b)!, [12], 0);
    assert.equal(gradOf(none), null);
    assert.equal(clipGradNorm([none], 1), 0, 'no gradients: norm 0');
  }));

  test('leaves gradients alone when already within maxNorm', () => tidy(() => {
    const { a, b } = setup();
    assertClose([clipGradNorm([a, b], 100)], [13], 1e-6);
    assertClose(gradOf(a)!, [3, 4], 0);
    assertClose(gradOf(b)!, [12], 0);
  }));
});

describe('manualSeed', () => {
  test('reproduces randn and rand streams', () => tidy(() => {
    manualSeed(1234);
    const a = vals(Tensor.randn([64]));
    const ua = vals(Tensor.rand([16]));
    manualSeed(1234);
    const b = vals(Tensor.randn([64]));
    const ub = vals(Tensor.rand([16]));
    assert.deepEqual(b, a);
    assert.deepEqual(ub, ua);
    const c = vals(Tensor.randn([64]));
    assert.notDeepEqual(c, a, 'the stream advances');
    manualSeed(1235);
    assert.notDeepEqual(vals(Tensor.randn([64])), a, 'another seed, another stream');
    assert.ok(ua.every((v) => v >= 0 && v < 1));
  }));

  test('randn is standard normal', () => tidy(() => {
    manualSeed(7);
    const x = vals(Tensor.randn([20000]));
    const mean = x.reduce((p, q) => p + q, 0) / x.length;
    const variance = x.reduce((p, q) => p + (q - mean) ** 2, 0) / x.length;
    assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.05, `variance ${variance}`);
  }));

  test('rejects a negative or fractional seed', () => {
    assert.throws(() => manualSeed(-1), ValidationError);
    assert.throws(() => manualSeed(1.5), ValidationError);
  });
});
