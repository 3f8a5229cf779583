/**
 * The bundled weights (weights/msdi-deblur.safetensors, trained by scripts/train-default.sh, and
 * their ablation, weights/msdi-deblur-ablation.safetensors): small enough to ship, the
 * architecture the README says, and they make the bundled held-out sample measurably closer to
 * its sharp frame (the README's main job).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_WEIGHTS, loadModel } from '../src/eval/model.js';
import { deblurImage } from '../src/eval/deblur.js';
import { readImageRGB } from '../src/data/image-io.js';
import type { RGBImage } from '../src/data/image-io.js';
import { gradientEnergy } from '../src/data/synth-stats.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

test('bundled deblurring weights: float16 msdi2_net wf 8, at most 25 MB', () => {
  const bytes = statSync(DEFAULT_WEIGHTS.deblur).size;
  assert.ok(bytes <= 25 * 2 ** 20, `${bytes} bytes`);
  const m = loadModel();
  try {
    assert.equal(m.spec.arch, 'msdi2_net');
    assert.equal(m.spec.wf, 8);
    assert.equal(m.spec.degradation, true);
  } finally {
    m.dispose();
  }
});

// The ablation the README compares the bundled network with (and the next GPU session continues
// beside it): it must be the same configuration without the representation, or the comparison
// is not like for like.
test('bundled ablation: msdi_net without the representation, the width of the bundled network, at most 25 MB', () => {
  const file = join(ROOT, 'weights', 'msdi-deblur-ablation.safetensors');
  assert.ok(statSync(file).size <= 25 * 2 ** 20);
  const net = loadModel();
  const ablation = loadModel(file);
  try {
    assert.equal(ablation.spec.arch, 'msdi_net');
    assert.equal(ablation.spec.degradation, false);
    assert.equal(ablation.spec.wf, net.spec.wf);
  } finally {
    ablation.dispose();
    net.dispose();
  }
});

test('bundled weights deblur the bundled held-out sample: closer to its sharp frame, sharper', async () => {
  const blurry = await readImageRGB(join(ROOT, 'assets', 'sample-blurry.png'));
  const sharp = await readImageRGB(join(ROOT, 'assets', 'sample-sharp.png'));
  const m = loadModel();
  let out;
  let bf16;
  try {
    out = deblurImage(m, blurry);
    bf16 = deblurImage(m, blurry, { amp: 'bf16' });
  } finally {
    m.dispose();
  }
  const before = psnr(blurry, sharp);
  const after = psnr(out, sharp);
  console.log(`# sample: PSNR ${before.toFixed(2)} -> ${after.toFixed(2)} dB (bf16: ${psnr(bf16, sharp).toFixed(2)} dB, ${psnr(bf16, out).toFixed(1)} dB from float32's); gradient energy ${gradientEnergy(blurry).toExponential(3)} -> ${gradientEnergy(out).toExponential(3)} (sharp ${gradientEnergy(sharp).toExponential(3)})`);
  assert.ok(after > before + MIN_GAIN_DB, `PSNR ${before.toFixed(2)} -> ${after.toFixed(2)} dB`);
  assert.ok(gradientEnergy(out) > gradientEnergy(blurry), 'more gradient energy than the input');
  // mixed precision (--amp bf16): another computation, the same result to within bf16 rounding
  const apart = psnr(bf16, out);
  assert.ok(apart > 45 && apart < Infinity, `bf16 vs float32 output: ${apart} dB`);
  assert.ok(Math.abs(psnr(bf16, sharp) - after) < 0.02, `bf16 ${psnr(bf16, sharp)} vs float32 ${after} dB`);
});

/** PSNR of float images in 0..1. */
function psnr(a: RGBImage, b: RGBImage): number {
  let e = 0;
  for (let i = 0; i < a.data.length; i++) e += (a.data[i] - b.data[i]) ** 2;
  return 10 * Math.log10(1 / (e / a.data.length));
}

/** Measured gain on the sample when the weights were bundled, less a margin for float16 and threads. */
const MIN_GAIN_DB = 0.1;
