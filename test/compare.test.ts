/**
 * msdi eval --compare: image-by-image differences of two eval reports, their standard error
 * (plain, and clustered by source photo), wins and fifths by input PSNR.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { compareScores, type ScoredImage } from '../src/eval/compare.js';
import { evalCommand } from '../src/cli/commands/eval.js';
import { synthFolder } from '../src/data/synth/index.js';
import { createImage, writeImageRGB } from '../src/data/image-io.js';
import { captureLog } from './helpers/console.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'msdi-compare-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const img = (name: string, psnr: number, ssim: number, input_psnr?: number): ScoredImage => ({ name, psnr, ssim, ...(input_psnr !== undefined ? { input_psnr } : {}) });

test('the mean difference, its standard error, wins, and the standard error clustered by photo', () => {
  // B - A: +1, +3 on photo p; -1, +1, +1 on photo q
  const a = [img('0', 20, 0.5, 18), img('1', 20, 0.5, 19), img('2', 30, 0.9, 28), img('3', 30, 0.9, 29), img('4', 30, 0.9, 30)];
  const b = [img('4', 31, 0.9), img('3', 31, 0.8), img('2', 29, 0.9), img('1', 23, 0.6), img('0', 21, 0.6)];
  const photoOf = new Map([['0', 'p'], ['1', 'p'], ['2', 'q'], ['3', 'q'], ['4', 'q']]);
  const c = compareScores(a, b, { a: 'A', b: 'B' }, photoOf);
  assert.equal(c.count, 5);
  assert.equal(c.psnr.mean, 1);
  // sample variance of [1, 3, -1, 1, 1] = (0 + 4 + 4 + 0 + 0) / 4 = 2
  assert.ok(Math.abs(c.psnr.se - Math.sqrt(2 / 5)) < 1e-12);
  assert.equal(c.bWins, 4);
  assert.ok(Math.abs(c.ssim.mean - (0.1 + 0.1 + 0 - 0.1 + 0) / 5) < 1e-12);
  assert.deepEqual([c.a.psnr, c.b.psnr], [26, 27]);
  // residuals summed by photo: p (0 + 2) = 2, q (-2 + 0 + 0) = -2; sqrt((4 + 4) * 2 / 1) / 5
  assert.ok(Math.abs(c.byPhoto!.se - 4 / 5) < 1e-12, String(c.byPhoto!.se));
  assert.deepEqual(c.byPhoto!.groups, [{ name: 'q', count: 3, psnr: 1 / 3 }, { name: 'p', count: 2, psnr: 2 }]);
  // one image a fifth, blurriest (lowest input PSNR) first
  assert.deepEqual(c.byInputFifth!.map((g) => g.psnr), [1, 3, -1, 1, 1]);
  assert.equal(compareScores(a, b, { a: 'A', b: 'B' }).byPhoto, undefined);
  assert.throws(() => compareScores(a, b.slice(1), { a: 'A.json', b: 'B.json' }), /^Error: A.json and B.json score different images \(4 is in one only\)$/);
  assert.throws(() => compareScores(a, b, { a: 'A', b: 'B' }, new Map([['0', 'p']])), /1: no source photo/);
});

test('msdi eval --compare on real pairs: the blurrier method loses everywhere, photo by photo', async () => {
  const photos = join(root, 'photos');
  for (const [k, period] of [[0, 5], [1, 9]] as const) {
    const im = createImage(160, 160);
    for (let y = 0; y < 160; y++) for (let x = 0; x < 160; x++) for (let c = 0; c < 3; c++) {
      im.data[(y * 160 + x) * 3 + c] = 0.5 + 0.4 * Math.sin((x + 2 * y) / period + c) * Math.cos(y / (period + 3));
    }
    await writeImageRGB(join(photos, `photo${k}.png`), im);
  }
  const pairs = join(root, 'pairs');
  await synthFolder({ from: photos, out: pairs, count: 6, seed: 3, size: 64, photoShortSide: 160 });
  // method A: the blurry inputs as they are; method B: the inputs blurred once more
  const blurrier = join(root, 'blurrier');
  mkdirSync(blurrier);
  for (const f of readdirSync(join(pairs, 'input'))) await sharp(join(pairs, 'input', f)).blur(1.5).toFile(join(blurrier, f));
  const [ja, jb, jc] = [join(root, 'a.json'), join(root, 'b.json'), join(root, 'c.json')];
  await captureLog(() => evalCommand(['--results', join(pairs, 'input'), '--target', pairs, '--input', pairs, '--json', ja]));
  await captureLog(() => evalCommand(['--results', blurrier, '--target', pairs, '--input', pairs, '--json', jb]));
  const printed = await captureLog(() => evalCommand(['--compare', ja, jb, '--by-photo', pairs, '--json', jc]));
  const c = JSON.parse(readFileSync(jc, 'utf8'));
  assert.equal(c.count, 6);
  assert.deepEqual(c.files, { a: ja, b: jb });
  assert.equal(c.bWins, 0, printed);
  assert.ok(c.psnr.mean < -0.5, printed);
  assert.deepEqual(c.byPhoto.groups.map((g: { name: string }) => g.name).sort(), ['photo0.png', 'photo1.png']);
  assert.ok(c.byPhoto.groups.every((g: { psnr: number }) => g.psnr < 0));
  assert.match(printed, /B - A -\d+\.\d{3} \+- \d+\.\d{3} dB \(standard error, images independent\); B better on 0 of 6/);
  assert.match(printed, /by source photo \(2\)/);

  // bad input: one line naming the file
  writeFileSync(join(root, 'bad.json'), '{"psnr": 1}');
  await assert.rejects(evalCommand(['--compare', ja, join(root, 'bad.json')]), /bad\.json: no per-image scores/);
  await assert.rejects(evalCommand(['--compare', ja]), /--compare takes two JSON reports/);
  await assert.rejects(evalCommand(['--compare', ja, jb, '--by-photo', photos]), /photos: no synth-\*\.json records/);
  await assert.rejects(evalCommand(['--results', blurrier, '--target', pairs, '--by-photo', pairs]), /--by-photo applies to --compare/);
});
