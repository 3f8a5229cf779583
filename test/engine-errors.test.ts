/**
 * Error paths: libtorch failures surface as NativeError with libtorch's own wording and
 * leave the process working; arguments refused in TypeScript throw a one-line
 * ValidationError `<what>: expected ... for <name>, got ...`.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import {
  Tensor, F, tidy, cat, liveTensors, Adam, NativeError, ValidationError, expected,
  setNumThreads, manualSeed, resolveDevice, cudaAvailable,
} from '../src/engine/index.js';
import { native } from '../src/engine/native.js';

/** The error `fn` throws (fails when it throws nothing). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error, `expected an Error, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the call to throw');
}

/** A following op succeeds and computes the right thing. */
function stillWorks(): void {
  tidy(() => {
    const y = Tensor.fromArray([1, 2, 3, 4], [2, 2]).matmul(Tensor.fromArray([1, 1, 1, 1], [2, 2]));
    assert.deepEqual(Array.from(y.toFloat32()), [3, 3, 7, 7]);
  });
}

function assertNative(e: Error, wording: RegExp | string): void {
  assert.ok(e instanceof NativeError, `expected a NativeError, got ${e.name}: ${e.message}`);
  assert.ok(!(e instanceof ValidationError));
  assert.equal(e.name, 'NativeError');
  assert.ok(e.message.startsWith('libtorch:'), `message starts with libtorch: (${e.message})`);
  assert.ok(!e.message.startsWith('libtorch: libtorch:'), 'the prefix appears once');
  if (typeof wording === 'string') assert.ok(e.message.includes(wording), `"${e.message}" should include "${wording}"`);
  else assert.match(e.message, wording);
}

// ------------------------------------------------------------------ libtorch failures

describe('libtorch failures become NativeError', () => {
  test('matmul shape mismatch', () => tidy(() => {
    const before = liveTensors();
    const a = Tensor.ones([2, 3]), b = Tensor.ones([2, 3]);
    const e = thrown(() => a.matmul(b));
    assertNative(e, 'mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)');
    assert.equal(liveTensors(), before + 2, 'a failed op creates no tensor');
    // the stack points at the caller, not only at the addon wrapper
    assert.ok(e.stack?.includes('engine-errors.test.ts'), e.stack);
    stillWorks();
  }));

  test('conv2d with the wrong channel count', () => tidy(() => {
    const e = thrown(() => F.conv2d(Tensor.ones([1, 3, 8, 8]), Tensor.ones([4, 2, 3, 3])));
    assertNative(e, /expected input\[1, 3, 8, 8\] to have 2 channels, but got 3 channels instead/);
    stillWorks();
  }));

  test('cat of mismatched shapes', () => tidy(() => {
    const e = thrown(() => cat([Tensor.ones([2, 3]), Tensor.ones([2, 4])], 0));
    assertNative(e, /Sizes of tensors must match except in dimension 0/);
    assert.match(e.message, /Expected size 3 but got size 4/);
    stillWorks();
  }));

  test('more libtorch refusals: broadcasting, reshape, batch norm without running stats in eval', () => tidy(() => {
    assertNative(thrown(() => Tensor.ones([2, 3]).add(Tensor.ones([4]))), /size of tensor a \(3\) must match the size of tensor b \(4\)/);
    assertNative(thrown(() => Tensor.ones([6]).reshape([4, -1])), /shape '\[4, -1\]' is invalid for input of size 6/);
    assertNative(thrown(() => F.batchNorm(Tensor.ones([2, 3, 2, 2]), null, null, { training: false })), /running_mean must be defined/);
    assertNative(thrown(() => Tensor.ones([2]).backward()), /grad can be implicitly created only for scalar outputs|does not require grad/);
    stillWorks();
  }));

  test('the addon\'s deliberate error, and one-line messages', () => {
    const e = thrown(() => native.provokeError());
    assertNative(e, 'provoked error for testing');
    assert.ok(!e.message.includes('Exception raised from'), 'no C++ backtrace in the message');
    stillWorks();
  });

  test('a handle freed behind the Tensor\'s back is refused by the addon, not a crash', () => {
    const t = Tensor.ones([2]);
    const h = t.handle;
    t.dispose();
    assertNative(thrown(() => native.add(h, 1)), 'tensor used after dispose()');
    assertNative(thrown(() => native.add(1 as never, 1)), 'is not a tensor handle');
    stillWorks();
  });

  test('many failures in a row leave the engine usable', () => {
    const before = liveTensors();
    tidy(() => {
      const a = Tensor.ones([2, 3]);
      for (let i = 0; i < 200; i++) assert.throws(() => a.matmul(a), NativeError);
    });
    assert.equal(liveTensors(), before);
    stillWorks();
  });
});

// ------------------------------------------------------------------ validation in TypeScript

/** `<what>: expected ... for <name>, got ...` on one line. */
function assertValidation(e: Error, what: string, name: string, got?: RegExp): void {
  assert.ok(e instanceof ValidationError, `expected a ValidationError, got ${e.name}: ${e.message}`);
  assert.ok(!(e instanceof NativeError));
  assert.equal(e.name, 'ValidationError');
  assert.ok(!e.message.includes('\n'), 'one line');
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(e.message, new RegExp(`^${esc(what)}: expected .+ for ${esc(name)}, got .+$`));
  if (got) assert.match(e.message.slice(e.message.lastIndexOf(', got ')), got);
}

describe('invalid arguments throw ValidationError', () => {
  test('negative or fractional shape', () => {
    const before = liveTensors();
    const e = thrown(() => Tensor.zeros([2, -1]));
    assertValidation(e, 'Tensor.zeros', 'shape', /\[2, -1\]/);
    assert.match(e.message, /expected an array of non-negative integers for shape/);
    assertValidation(thrown(() => Tensor.ones([1.5])), 'Tensor.ones', 'shape', /1\.5/);
    assertValidation(thrown(() => Tensor.randn([-3])), 'Tensor.randn', 'shape', /-3/);
    assertValidation(thrown(() => Tensor.full([-1], 2)), 'Tensor.full', 'shape');
    assertValidation(thrown(() => Tensor.fromArray([], [0, -2])), 'Tensor.fromArray', 'shape');
    assert.equal(liveTensors(), before, 'nothing was created');
  });

  test('wrong byte count in fromArray', () => {
    const e = thrown(() => Tensor.fromArray([1, 2, 3], [2, 2]));
    assertValidation(e, 'Tensor.fromArray', 'data', /12 bytes/);
    assert.match(e.message, /expected 16 bytes for shape \[2, 2\] float32 for data/);
    // a typed array of another element type is refused, not reinterpreted
    const e2 = thrown(() => Tensor.fromArray(new Float32Array(8), [4], { dtype: 'int64' }));
    assertValidation(e2, 'Tensor.fromArray', 'data', /"Float32Array"/);
    assert.match(e2.message, /expected a BigInt64Array or a raw Uint8Array \(dtype int64\)/);
    const e3 = thrown(() => Tensor.fromArray(new Uint16Array(3), [2, 2], { dtype: 'float16' }));
    assertValidation(e3, 'Tensor.fromArray', 'data', /6 bytes/);
    // 16-bit floats need raw bits, not numbers
    assertValidation(thrown(() => Tensor.fromArray([1, 2], [2], { dtype: 'float16' })), 'Tensor.fromArray', 'data of a 16-bit tensor');
    stillWorks();
  });

  test('other TypeScript-side checks', () => {
    assertValidation(thrown(() => setNumThreads(0)), 'setNumThreads', 'n', /0/);
    assertValidation(thrown(() => manualSeed(-1)), 'manualSeed', 'seed', /-1/);
    assertValidation(thrown(() => tidy(() => F.interpolate(Tensor.ones([1, 1, 2, 2]), [0, 2]))), 'interpolate', 'size');
    assertValidation(thrown(() => new Adam([], { lr: -0.1 })), 'Adam', 'lr', /-0\.1/);
    assertValidation(thrown(() => tidy(async () => 0)), 'tidy', 'fn');
    if (!cudaAvailable()) assertValidation(thrown(() => resolveDevice('cuda')), 'device', '--device', /"cuda"/);
  });

  test('expected() builds the one-line message', () => {
    const e = expected('load', 'a .safetensors file', 'path', 'x.bin');
    assert.ok(e instanceof ValidationError);
    assert.equal(e.message.split('\n').length, 1);
    assert.match(e.message, /^load: expected a \.safetensors file for path, got "x\.bin"/);
  });
});
