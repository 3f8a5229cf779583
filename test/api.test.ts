/** The library API as a user imports it: `import { loadModel, deblur, ... } from 'msdi'`. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, deblur, evaluate, readImageFile } from 'msdi';
import { fixturePath } from './helpers/fixtures.js';
import { readFileSync } from 'node:fs';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'msdi-api-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('deblur(file) with a loaded model writes the output atomically and reports progress', async () => {
  const model = loadModel(fixturePath('msdi_net_w4.weights.safetensors'));
  try {
    assert.equal(model.spec.arch, 'msdi_net');
    const calls: number[] = [];
    const out = join(root, 'out.png');
    const img = await deblur(fixturePath('metric_0_target.png'), { model, output: out, onProgress: (done) => calls.push(done) });
    const written = await readImageFile(out);
    assert.equal(written.rgb.width, img.width);
    assert.equal(written.rgb.height, img.height);
    assert.ok(calls.length > 0 && calls[calls.length - 1] > 0, 'progress was reported');
    await assert.rejects(deblur(fixturePath('metric_0_target.png'), { model, output: out }), /exists/);
  } finally {
    model.dispose();
  }
});

test('evaluate({ results, target }) scores existing results as published', async () => {
  const results = join(root, 'results');
  const target = join(root, 'target');
  mkdirSync(results);
  mkdirSync(target);
  const facts = JSON.parse(readFileSync(fixturePath('fixtures.json'), 'utf8'));
  for (const m of facts.metrics) {
    copyFileSync(fixturePath(m.output), join(results, m.target));
    copyFileSync(fixturePath(m.target), join(target, m.target));
  }
  const report = await evaluate({ results, target });
  assert.equal(report.count, 3);
  const mean = facts.metrics.reduce((a: number, m: { psnr: number }) => a + m.psnr, 0) / 3;
  assert.ok(Math.abs(report.psnr - mean) < 1e-3, `${report.psnr} vs ${mean}`);
  assert.ok(existsSync(results));
});
