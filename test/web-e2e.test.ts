/**
 * The web page end to end, in Debian's Chromium driven headless by playwright-core: load the
 * page, upload a blurry photo while another job holds the queue (the page shows its place,
 * then the tiles), wait for the result, download it and check that it is sharper than the
 * upload (gradient energy, and PSNR against the sharp original), move the comparison slider,
 * zoom, show the degradation map, run a blur transfer, and save a screenshot under
 * test-artifacts/.
 *
 * Chromium: /usr/bin/chromium, installed here with apt when absent and running as root
 * (otherwise the test is skipped with a message). The page is bundled first (npm run build:web).
 *
 * Weights: MSDI_DEBLUR_WEIGHTS, else the bundled weights/msdi-deblur.safetensors when they
 * exist; else a real msdi_net whose weights make it an unsharp mask (test/helpers/sharpen-model.ts),
 * so that "sharper" holds without trained weights. The blur transfer tab runs on a random-init
 * MSDI2E (its output is not judged, only that the page shows and downloads it).
 *
 * The photo: a wallpaper from /usr/share/backgrounds (or data/photos) when there is one, else a
 * drawn scene; downscaled, cropped to 384 x 256 and blurred (Gaussian, sigma 1.5).
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { chromium, type Browser } from 'playwright-core';

import { manualSeed } from '../src/engine/index.js';
import { MSDI2E } from '../src/models/msdi2e.js';
import { saveWeights } from '../src/nn/state-dict.js';
import { DEFAULT_WEIGHTS } from '../src/eval/model.js';
import { startServer, type MsdiServer } from '../src/server/server.js';
import { writeUnsharpMaskWeights } from './helpers/sharpen-model.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
const W = 384;
const H = 256;

let dir = '';
let srv: MsdiServer | undefined;
let browser: Browser | undefined;
let skipReason: string | null = null;

/** Installs Chromium with apt when absent; returns why the test must be skipped, or null. */
function ensureChromium(): string | null {
  if (existsSync(CHROMIUM)) return null;
  if (process.getuid?.() !== 0) return `Chromium is not installed (${CHROMIUM}) and installing it needs root: apt-get install chromium`;
  console.log('web-e2e: installing chromium with apt-get (once) ...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], { env, encoding: 'utf8', timeout: 900_000 });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 300_000 });
    r = install();
  }
  if (r.status !== 0 || !existsSync(CHROMIUM)) {
    throw new Error(`web-e2e: apt-get install chromium failed (exit ${r.status}): ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ')}`);
  }
  return null;
}

interface Rgb {
  width: number;
  height: number;
  data: Float32Array;
}

async function decode(input: string | Buffer): Promise<Rgb> {
  const { data, info } = await sharp(input).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: Float32Array.from(data, (v) => v / 255) };
}

/** Mean squared luma gradient, 4 px border left out. */
function gradientEnergy(img: Rgb): number {
  const { width: w, height: h, data } = img;
  const y = (i: number) => 0.299 * data[i * 3] + 0.587 * data[i * 3 + 1] + 0.114 * data[i * 3 + 2];
  let s = 0;
  let n = 0;
  for (let r = 4; r < h - 5; r++) {
    for (let c = 4; c < w - 5; c++) {
      const i = r * w + c;
      s += (y(i + 1) - y(i)) ** 2 + (y(i + w) - y(i)) ** 2;
      n++;
    }
  }
  return s / n;
}

/** PSNR in dB, 4 px border left out. */
function psnr(a: Rgb, b: Rgb): number {
  let e = 0;
  let n = 0;
  for (let r = 4; r < a.height - 4; r++) {
    for (let i = (r * a.width + 4) * 3; i < (r * a.width + a.width - 4) * 3; i++) {
      e += (a.data[i] - b.data[i]) ** 2;
      n++;
    }
  }
  return 10 * Math.log10(n / e);
}

/** The sharp original (PNG) from a wallpaper when one is installed, else a drawn scene. */
async function sharpPhoto(): Promise<{ png: Buffer; source: string }> {
  const folders = ['/usr/share/backgrounds', join(ROOT, 'data', 'photos', 'val')];
  for (const f of folders) {
    if (!existsSync(f)) continue;
    const photo = readdirSync(f).filter((n) => /\.(jpe?g|png)$/i.test(n)).sort()[0];
    if (!photo) continue;
    const path = join(f, photo);
    const png = await sharp(path).resize({ width: 640 }).resize(W, H, { fit: 'cover' }).removeAlpha().png().toBuffer();
    return { png, source: path };
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="#d8e4ef"/>` +
    Array.from({ length: 40 }, (_, i) => `<rect x="${(i * 53) % W}" y="${(i * 37) % H}" width="${10 + (i % 7) * 6}" height="${8 + (i % 5) * 9}" fill="hsl(${i * 47} 60% ${30 + (i % 4) * 12}%)"/>`).join('') +
    `<text x="20" y="140" font-size="56" font-family="sans-serif" fill="#102030">msdi 0123</text></svg>`;
  return { png: await sharp(Buffer.from(svg)).png().toBuffer(), source: 'a drawn scene' };
}

before(async () => {
  skipReason = ensureChromium();
  if (skipReason) return;
  const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-web.mjs')], { encoding: 'utf8' });
  assert.equal(build.status, 0, `npm run build:web failed: ${build.stderr}`);
  dir = mkdtempSync(join(tmpdir(), 'msdi-web-e2e-'));
  const trained = process.env.MSDI_DEBLUR_WEIGHTS || (existsSync(DEFAULT_WEIGHTS.deblur) ? DEFAULT_WEIGHTS.deblur : '');
  let weights = trained;
  if (!trained) {
    weights = join(dir, 'unsharp-mask.safetensors');
    writeUnsharpMaskWeights(weights, 1.5);
  }
  console.log(`web-e2e: deblurring with ${trained ? `trained weights ${trained}` : 'the unsharp-mask msdi_net (no trained weights here)'}`);
  const joint = join(dir, 'joint-random.safetensors');
  manualSeed(5);
  const j = new MSDI2E(4, 4, true);
  saveWeights(j, joint);
  j.dispose();
  srv = await startServer({ port: 0, weights, jointWeights: joint });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu'] });
});

after(async () => {
  await browser?.close();
  await srv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the page: queue place, tiles, a sharper result downloaded, slider, zoom, map, blur transfer, screenshot', { timeout: 300_000 }, async (t: TestContext) => {
  if (skipReason) return void t.skip(skipReason);
  const s = srv!;
  const { png: sharpPng, source } = await sharpPhoto();
  const blurryPng = await sharp(sharpPng).blur(1.5).png().toBuffer();
  const files = { sharp: join(dir, 'sharp.png'), blurry: join(dir, 'blurry.png'), out: join(dir, 'downloaded.png') };
  writeFileSync(files.sharp, sharpPng);
  writeFileSync(files.blurry, blurryPng);

  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(s.url);
  assert.equal(await page.title(), 'msdi — image deblurring');
  assert.equal(await page.locator('#notice').isHidden(), true, 'no missing-weights notice');
  // Every text the status line shows, in order.
  await page.evaluate(() => {
    const w = window as unknown as { statuses: string[] };
    w.statuses = [];
    const el = document.getElementById('status-text')!;
    new MutationObserver(() => w.statuses.push(el.textContent ?? '')).observe(el, { childList: true, characterData: true, subtree: true });
  });

  // Another client's job holds the model, so the page's job has to wait its turn.
  const blocker = fetch(new URL('api/deblur', s.url), { method: 'POST', body: await sharp(sharpPng).resize(768, 512).png().toBuffer() });
  await page.locator('#file').setInputFiles(files.blurry);
  await page.locator('#dl-result[href^="blob:"]').waitFor({ timeout: 240_000 });
  assert.equal((await blocker).status, 200);
  const statuses = await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses);
  assert.ok(statuses.some((x) => /^Waiting in the queue: 1 job ahead$/.test(x)), `queue place shown: ${JSON.stringify(statuses)}`);
  assert.ok(statuses.some((x) => /^Deblurring: tile \d+ of 2$/.test(x)), `tiles shown: ${JSON.stringify(statuses)}`);
  assert.match(await page.locator('#status-text').innerText(), /^Deblurred in [\d.]+ s$/);

  // The download is the deblurred image, sharper than the upload.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#dl-result').click()]);
  assert.equal(download.suggestedFilename(), 'blurry-deblurred.png');
  await download.saveAs(files.out);
  const [out, blurry, original] = await Promise.all([decode(files.out), decode(blurryPng), decode(sharpPng)]);
  assert.deepEqual([out.width, out.height], [W, H]);
  const g = { blurry: gradientEnergy(blurry), out: gradientEnergy(out), sharp: gradientEnergy(original) };
  const p = { blurry: psnr(blurry, original), out: psnr(out, original) };
  console.log(`web-e2e: photo ${source}; gradient energy blurry ${g.blurry.toExponential(3)}, result ${g.out.toExponential(3)}, ` +
    `sharp ${g.sharp.toExponential(3)}; PSNR vs sharp: blurry ${p.blurry.toFixed(2)} dB, result ${p.out.toFixed(2)} dB`);
  assert.ok(g.out > 1.2 * g.blurry, 'the result has more gradient energy than the upload');
  assert.ok(p.out > p.blurry, 'the result is closer to the sharp original than the upload');

  // The comparison slider: drag the handle to a quarter of the width.
  const box = (await page.locator('#viewer').boundingBox())!;
  const handle = (await page.locator('#handle').boundingBox())!;
  await page.mouse.move(handle.x + handle.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  const split = Number(await page.locator('#split').inputValue());
  assert.ok(Math.abs(split - 25) < 2, `split at ${split}%`);
  assert.match(await page.locator('#after-layer').evaluate((e) => (e as HTMLElement).style.clipPath), /^inset\(0(px)? 0(px)? 0(px)? [\d.]+px\)$/);

  // Zoom with the wheel (about the cursor), then 1:1 and fit.
  const zoom0 = parseFloat(await page.locator('#zoom').innerText());
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5);
  await page.mouse.wheel(0, -400);
  await page.waitForFunction((z) => parseFloat(document.getElementById('zoom')!.textContent!) > z, zoom0);
  await page.locator('#actual').click();
  assert.equal(await page.locator('#zoom').innerText(), '100%');
  await page.locator('#fit').click();
  // Back to the halfway split for the picture.
  await page.locator('#split').evaluate((e) => {
    (e as HTMLInputElement).value = '50';
    e.dispatchEvent(new Event('input'));
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  const shots = [join(ARTIFACTS, 'web-e2e.png'), join(ARTIFACTS, 'web-e2e-map.png'), join(ARTIFACTS, 'web-e2e-transfer.png')];
  await page.screenshot({ path: shots[0], fullPage: true });

  // The degradation map as an overlay, at 45% opacity.
  await page.locator('#map-toggle').check();
  await page.locator('#dl-map').waitFor({ state: 'visible', timeout: 120_000 });
  await page.locator('#map-opacity').evaluate((e) => {
    (e as HTMLInputElement).value = '0.45';
    e.dispatchEvent(new Event('input'));
  });
  assert.equal(await page.locator('#map-layer').evaluate((e) => (e as HTMLElement).style.opacity), '0.45');
  assert.equal(await page.locator('#map-layer').isVisible(), true);
  assert.match(await page.locator('#status-text').innerText(), /^Degradation map in [\d.]+ s$/);
  await page.screenshot({ path: shots[1], fullPage: true });

  // Blur transfer: sharp + blurry, level 1.5.
  await page.locator('#tab-reblur').click();
  assert.equal(await page.locator('#viewer').isHidden(), true);
  await page.locator('#sharp').setInputFiles(files.sharp);
  await page.locator('#blurry').setInputFiles(files.blurry);
  await page.locator('#level').evaluate((e) => {
    (e as HTMLInputElement).value = '1.5';
    e.dispatchEvent(new Event('input'));
  });
  assert.equal(await page.locator('#level-out').innerText(), '1.5');
  await page.locator('#run-reblur').click();
  await page.locator('#dl-result[download="sharp-reblurred-1.5.png"]').waitFor({ timeout: 120_000 });
  const [reblurred] = await Promise.all([page.waitForEvent('download'), page.locator('#dl-result').click()]);
  const meta = await sharp(await reblurred.path()).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', W, H]);
  await page.screenshot({ path: shots[2], fullPage: true });
  console.log(`web-e2e: screenshots ${shots.join(', ')}`);

  assert.deepEqual(pageErrors, []);
  await context.close();
});
