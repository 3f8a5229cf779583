/** The pixel losses that are ours, not the official recipe's: gradientL1Loss (the level loss's grain term). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../src/engine/index.js';
import { gradientL1Loss, l1Loss } from '../src/losses/index.js';

const H = 6;
const W = 7;
const at = (c: number, y: number, x: number) => (c * H + y) * W + x;

test('gradientL1Loss: mean |difference of pixel differences| over x and y, blind to a constant offset, hard on a checkerboard', () => {
  tidy(() => {
    const a = Float32Array.from({ length: 2 * H * W }, (_, i) => Math.sin(i * 1.7) * 0.5);
    const b = Float32Array.from({ length: 2 * H * W }, (_, i) => Math.cos(i * 0.9) * 0.3);
    // the same sum in plain JS: channels 2, one image
    let sx = 0;
    let sy = 0;
    for (let c = 0; c < 2; c++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const d = (yy: number, xx: number) => a[at(c, yy, xx)]! - b[at(c, yy, xx)]!;
          if (x > 0) sx += Math.abs(d(y, x) - d(y, x - 1));
          if (y > 0) sy += Math.abs(d(y, x) - d(y - 1, x));
        }
      }
    }
    const want = 3 * (sx / (2 * H * (W - 1)) + sy / (2 * (H - 1) * W)) / 2;
    const t = (v: Float32Array) => Tensor.fromArray(v, [1, 2, H, W]);
    assert.ok(Math.abs(gradientL1Loss(t(a), t(b), 3).item() - want) < 1e-6, 'matches the plain sum');

    const offset = Float32Array.from(a, (v) => v + 0.25);
    assert.ok(gradientL1Loss(t(offset), t(a)).item() < 1e-6);
    assert.ok(Math.abs(l1Loss(t(offset), t(a)).item() - 0.25) < 1e-6);
    // a faint checkerboard costs its amplitude under L1, twice that under gradient L1
    const checker = Float32Array.from(a, (v, i) => v + 0.01 * ((((i % W) + Math.floor(i / W)) % 2) * 2 - 1));
    assert.ok(Math.abs(l1Loss(t(checker), t(a)).item() - 0.01) < 1e-6);
    assert.ok(Math.abs(gradientL1Loss(t(checker), t(a)).item() - 0.02) < 1e-6, "checkerboard");
  });
});
