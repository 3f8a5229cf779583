/**
 * Evaluation as the deblurring community reports it (the official Learning_degradation /
 * BasicSR test protocol, SPEC section 3):
 *  - every image is compared as 8-bit RGB: float outputs are clamped to [0, 1], multiplied by
 *    255 in float32 and rounded half to even (numpy's `(img * 255.0).round()` in `tensor2img`);
 *    image files are decoded to 8-bit RGB (loadImage8);
 *  - crop_border 0, no Y channel: PSNR over all H x W x 3 samples; `ssim` is the repo's 3-D
 *    SSIM (ssim3d); `ssim_per_channel` is the classic per-channel SSIM;
 *  - the summary numbers are plain arithmetic means over images;
 *  - when the blurry inputs are known: `input_psnr` / `input_ssim` (input vs target), and the
 *    paper's split into the blurriest 10% (lowest input PSNR) and the sharpest 10% (highest
 *    input PSNR) of the images, at least one image per group.
 *
 * Folders are matched by file stem, so results saved as .png score against .jpg targets.
 * A folder with no images of its own but an `input/` or `target/` subfolder (the GoPro layout
 * DIR/input, DIR/target) stands for that subfolder.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import { loadImage8, psnr, ssim3d, ssimPerChannel, type Image8 } from '../metrics/index.js';
import type { RGBImage } from '../data/image-io.js';
import { writeFileAtomic } from '../data/atomic-write.js';

/** Extensions recognised as images (as the paired-data loader). */
export const EVAL_IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.bmp'];

/**
 * An image to score: a file path; an Image8 (HWC, values 0..255: Uint8 as is, Float32 clamped
 * to 0..255 and rounded); or an RGBImage (HWC float 0..1, no `channels` field: clamp, x255,
 * round as the official code).
 */
export type ImageSource = Image8 | RGBImage | string;

export interface ScorePair {
  name: string;
  output: ImageSource;
  target: ImageSource;
  input?: ImageSource;
}

export interface ImageScore {
  name: string;
  psnr: number;
  ssim: number;
  ssim_per_channel: number;
  input_psnr?: number;
  input_ssim?: number;
}

export interface GroupScore {
  count: number;
  psnr: number;
  ssim: number;
  ssim_per_channel: number;
  /** mean input PSNR of the group */
  input_psnr: number;
  /** the images in the group, by increasing input PSNR */
  names: string[];
}

export interface EvalReport {
  psnr: number;
  ssim: number;
  ssim_per_channel: number;
  input_psnr?: number;
  input_ssim?: number;
  count: number;
  images: ImageScore[];
  /** the 10% of images with the lowest input PSNR (null when the inputs are unknown) */
  blurriest10: GroupScore | null;
  /** the 10% of images with the highest input PSNR (null when the inputs are unknown) */
  sharpest10: GroupScore | null;
  protocol: string;
  /** where the images came from (folder evaluations) */
  folders?: { results?: string; target: string; input?: string; save?: string };
}

export const PROTOCOL = '8-bit RGB (clamp, x255, round), crop_border 0; psnr: all channels; ssim: 3-D Gaussian SSIM (official); ssim_per_channel: classic BasicSR SSIM';

export type ProgressFn = (done: number, total: number, name: string) => void;

export interface ScoreOptions {
  /** called with 0 before the first image and after every image */
  onProgress?: ProgressFn;
}

// ---------------------------------------------------------------------------------------------
// 8-bit conversion

function isImage8(x: Image8 | RGBImage): x is Image8 {
  return typeof (x as Image8).channels === 'number';
}

/** Python / numpy `round`: half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Float 0..1 samples to bytes exactly as the official `tensor2img` does on a float32 array:
 * clamp to [0, 1], multiply by 255 in float32, round half to even.
 */
export function quantize01(data: Float32Array | Float64Array): Uint8Array {
  const out = new Uint8Array(data.length);
  const f = Math.fround;
  for (let i = 0; i < data.length; i++) {
    let v = data[i];
    v = v > 0 ? (v < 1 ? v : 1) : 0; // NaN -> 0
    out[i] = roundHalfEven(f(f(v) * 255));
  }
  return out;
}

/** An in-memory image as an 8-bit RGB Image8 (see ImageSource for the accepted forms). */
export function toImage8(img: Image8 | RGBImage, what = 'image'): Image8 {
  if (img === null || typeof img !== 'object' || !Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width <= 0 || img.height <= 0) {
    throw new Error(`${what}: expected an Image8 or RGBImage object`);
  }
  const { width, height } = img;
  if (!isImage8(img)) {
    if (!(img.data instanceof Float32Array) || img.data.length !== width * height * 3) {
      throw new Error(`${what}: expected ${width}x${height}x3 float samples (RGBImage)`);
    }
    return { width, height, channels: 3, data: quantize01(img.data) };
  }
  if (img.channels !== 3) throw new Error(`${what}: expected 3 channels (RGB), got ${img.channels}`);
  if (img.data.length !== width * height * 3) throw new Error(`${what}: expected ${width * height * 3} samples, got ${img.data.length}`);
  if (img.data instanceof Uint8Array) return img;
  if (!(img.data instanceof Float32Array)) throw new Error(`${what}: expected Uint8Array or Float32Array samples`);
  const src = img.data;
  const data = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    data[i] = roundHalfEven(v > 0 ? (v < 255 ? v : 255) : 0);
  }
  return { width, height, channels: 3, data };
}

async function resolveImage(src: ImageSource, what: string): Promise<Image8> {
  if (typeof src === 'string') return loadImage8(src);
  return toImage8(src, what);
}

// ---------------------------------------------------------------------------------------------
// scoring

function size(img: Image8): string {
  return `${img.width}x${img.height}`;
}

/** Scores one image (output, target and optional input as 8-bit RGB of the same size). */
export function scoreImage(name: string, output: Image8, target: Image8, input?: Image8): ImageScore {
  if (output.width !== target.width || output.height !== target.height) {
    throw new Error(`${name}: output is ${size(output)} but target is ${size(target)}`);
  }
  const s: ImageScore = {
    name,
    psnr: psnr(output, target),
    ssim: ssim3d(output, target),
    ssim_per_channel: ssimPerChannel(output, target),
  };
  if (input) {
    if (input.width !== target.width || input.height !== target.height) {
      throw new Error(`${name}: input is ${size(input)} but target is ${size(target)}`);
    }
    s.input_psnr = psnr(input, target);
    s.input_ssim = ssim3d(input, target);
  }
  return s;
}

function mean(xs: number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Size of the blurriest / sharpest groups: 10% of n, rounded half up, at least 1. */
export function groupSize(n: number): number {
  return Math.max(1, Math.floor((n + 5) / 10));
}

function group(images: ImageScore[]): GroupScore {
  return {
    count: images.length,
    psnr: mean(images.map((s) => s.psnr)),
    ssim: mean(images.map((s) => s.ssim)),
    ssim_per_channel: mean(images.map((s) => s.ssim_per_channel)),
    input_psnr: mean(images.map((s) => s.input_psnr!)),
    names: images.map((s) => s.name),
  };
}

/** The report of a set of per-image scores: means and (with inputs) the 10% groups. */
export function summarize(images: ImageScore[]): EvalReport {
  if (images.length === 0) throw new Error('evaluate: no images to score');
  const withInput = images.filter((s) => s.input_psnr !== undefined).length;
  if (withInput !== 0 && withInput !== images.length) {
    throw new Error(`evaluate: the input is known for ${withInput} of ${images.length} images only (give all or none)`);
  }
  const report: EvalReport = {
    psnr: mean(images.map((s) => s.psnr)),
    ssim: mean(images.map((s) => s.ssim)),
    ssim_per_channel: mean(images.map((s) => s.ssim_per_channel)),
    count: images.length,
    images,
    blurriest10: null,
    sharpest10: null,
    protocol: PROTOCOL,
  };
  if (withInput) {
    report.input_psnr = mean(images.map((s) => s.input_psnr!));
    report.input_ssim = mean(images.map((s) => s.input_ssim!));
    const byInput = [...images].sort((a, b) => a.input_psnr! - b.input_psnr! || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const k = groupSize(images.length);
    report.blurriest10 = group(byInput.slice(0, k));
    report.sharpest10 = group(byInput.slice(byInput.length - k));
  }
  return report;
}

/**
 * Scores pairs of images (paths or in-memory images); see the file comment for the protocol.
 * Files are decoded one image ahead of the metric computation.
 */
export async function scoreImages(pairs: ScorePair[], o: ScoreOptions = {}): Promise<EvalReport> {
  if (!Array.isArray(pairs) || pairs.length === 0) throw new Error('evaluate: no images to score');
  const seen = new Set<string>();
  for (const p of pairs) {
    if (seen.has(p.name)) throw new Error(`evaluate: image name "${p.name}" appears twice`);
    seen.add(p.name);
  }
  const withInput = pairs.filter((p) => p.input !== undefined).length;
  if (withInput !== 0 && withInput !== pairs.length) {
    throw new Error(`evaluate: the input is given for ${withInput} of ${pairs.length} images only (give all or none)`);
  }
  const load = (p: ScorePair) =>
    Promise.all([
      resolveImage(p.output, `${p.name} (output)`),
      resolveImage(p.target, `${p.name} (target)`),
      p.input === undefined ? Promise.resolve(undefined) : resolveImage(p.input, `${p.name} (input)`),
    ]);
  const scores: ImageScore[] = [];
  o.onProgress?.(0, pairs.length, '');
  let next = load(pairs[0]);
  for (let i = 0; i < pairs.length; i++) {
    const [out, tgt, inp] = await next;
    if (i + 1 < pairs.length) {
      next = load(pairs[i + 1]);
      next.catch(() => {}); // surfaced when awaited
    }
    scores.push(scoreImage(pairs[i].name, out, tgt, inp));
    o.onProgress?.(i + 1, pairs.length, pairs[i].name);
  }
  return summarize(scores);
}

// ---------------------------------------------------------------------------------------------
// folders

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function imageFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true })
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && !e.name.startsWith('.') && EVAL_IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase()))
    .map((e) => e.name)
    .sort();
}

/**
 * The folder that holds the `role` images: `dir` itself when it has images, else `dir/<role>`
 * for role input / target (GoPro layout). Throws a one-line error naming the folder.
 */
export function resolveImageFolder(dir: string, role: 'input' | 'target' | 'results'): string {
  if (!existsSync(dir)) throw new Error(`${dir}: no such folder (${role} images)`);
  if (!isDir(dir)) throw new Error(`${dir}: not a folder (${role} images)`);
  if (imageFiles(dir).length > 0) return dir;
  if (role !== 'results' && isDir(join(dir, role)) && imageFiles(join(dir, role)).length > 0) return join(dir, role);
  throw new Error(`${dir}: no ${role} images (${EVAL_IMAGE_EXTENSIONS.join(' ')})${role === 'results' ? '' : ` and no ${role}/ subfolder with images`}`);
}

/** stem -> file path of the images in a folder; a stem present twice (a.png, a.jpg) is an error. */
export function imagesByStem(folder: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const f of imageFiles(folder)) {
    const stem = f.slice(0, f.length - extname(f).length);
    const prev = map.get(stem);
    if (prev !== undefined) throw new Error(`${folder}: two images named ${stem} (${basename(prev)} and ${f})`);
    map.set(stem, join(folder, f));
  }
  return map;
}

function fewNames(names: string[], k = 5): string {
  return names.slice(0, k).join(', ') + (names.length > k ? `, ... (${names.length} in all)` : '');
}

/**
 * Checks that `a` and `b` hold the same stems; otherwise a one-line error naming both folders
 * and a few names found on one side only.
 */
function checkSameStems(a: Map<string, string>, aDir: string, aRole: string, b: Map<string, string>, bDir: string, bRole: string): void {
  const onlyA = [...a.keys()].filter((s) => !b.has(s)).map((s) => basename(a.get(s)!));
  const onlyB = [...b.keys()].filter((s) => !a.has(s)).map((s) => basename(b.get(s)!));
  if (onlyA.length === 0 && onlyB.length === 0) return;
  const parts: string[] = [];
  if (onlyA.length) parts.push(`${onlyA.length} ${aRole} image${onlyA.length > 1 ? 's' : ''} in ${aDir} without a ${bRole} in ${bDir}: ${fewNames(onlyA)}`);
  if (onlyB.length) parts.push(`${onlyB.length} ${bRole} image${onlyB.length > 1 ? 's' : ''} in ${bDir} without a ${aRole} in ${aDir}: ${fewNames(onlyB)}`);
  throw new Error(`file names do not match (compared without extension): ${parts.join('; ')}`);
}

/** The report's name for an image: the target's file name. */
function targetName(path: string): string {
  return basename(path);
}

export interface ScoreFoldersOptions extends ScoreOptions {
  /** folder of restored images (any method's) */
  results: string;
  /** folder of sharp images, or a GoPro-layout folder (DIR/target) */
  target: string;
  /**
   * folder of blurry inputs (or a GoPro-layout folder); when omitted and `target` is a
   * GoPro-layout folder with an input/ subfolder, that subfolder is used
   */
  input?: string;
}

/** Scores a folder of results against a folder of targets, matched by file stem. */
export async function scoreFolders(o: ScoreFoldersOptions): Promise<EvalReport> {
  const resultsDir = resolveImageFolder(o.results, 'results');
  const targetDir = resolveImageFolder(o.target, 'target');
  let inputDir: string | undefined;
  if (o.input !== undefined) inputDir = resolveImageFolder(o.input, 'input');
  else if (targetDir !== o.target && isDir(join(o.target, 'input')) && imageFiles(join(o.target, 'input')).length > 0) inputDir = join(o.target, 'input');
  const results = imagesByStem(resultsDir);
  const targets = imagesByStem(targetDir);
  checkSameStems(results, resultsDir, 'result', targets, targetDir, 'target');
  let inputs: Map<string, string> | undefined;
  if (inputDir !== undefined) {
    inputs = imagesByStem(inputDir);
    checkSameStems(inputs, inputDir, 'input', targets, targetDir, 'target');
  }
  const stems = [...targets.keys()].sort();
  const pairs: ScorePair[] = stems.map((s) => ({
    name: targetName(targets.get(s)!),
    output: results.get(s)!,
    target: targets.get(s)!,
    input: inputs?.get(s),
  }));
  const report = await scoreImages(pairs, o);
  report.folders = { results: resultsDir, target: targetDir, ...(inputDir !== undefined ? { input: inputDir } : {}) };
  return report;
}

// ---------------------------------------------------------------------------------------------
// running a model

export type RestoreFn = (img: RGBImage) => Promise<RGBImage> | RGBImage;

export interface EvaluateModelOptions extends ScoreOptions {
  /** folder of blurry inputs, or a GoPro-layout folder (DIR/input, DIR/target) */
  input: string;
  /** folder of sharp targets (or a GoPro-layout folder); may be omitted when `input` is a GoPro-layout folder */
  target?: string;
  /** the model: blurry RGB 0..1 -> restored RGB 0..1 of the same size */
  restore: RestoreFn;
  /** when set, every output is written here as <stem>.png (8-bit, exactly the pixels scored) */
  save?: string;
}

/** Writes 8-bit RGB as PNG: to a temporary name in the same folder, then renamed into place. */
export async function writePng8(path: string, img: Image8): Promise<void> {
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer();
  await writeFileAtomic(path, buf, { force: true });
}

function image8ToRGB(img: Image8): RGBImage {
  const d = img.data;
  const data = new Float32Array(d.length);
  for (let i = 0; i < d.length; i++) data[i] = d[i] / 255;
  return { width: img.width, height: img.height, data };
}

export interface InputFolders {
  inputDir: string;
  targetDir: string;
  /** stem -> file */
  inputs: Map<string, string>;
  targets: Map<string, string>;
}

/**
 * The input and target folders of a model evaluation (`target` may be omitted when `input` is
 * a GoPro-layout folder), their images matched by stem. Cheap (no decoding): call it to check
 * the folders before loading a model. Throws one-line errors naming the folders.
 */
export function matchInputFolders(input: string, target?: string): InputFolders {
  const inputDir = resolveImageFolder(input, 'input');
  let targetDir: string;
  if (target !== undefined) targetDir = resolveImageFolder(target, 'target');
  else if (inputDir !== input) targetDir = resolveImageFolder(join(input, 'target'), 'target');
  else throw new Error(`${input}: no target folder given (give --target DIR, or use the layout ${input}/input, ${input}/target)`);
  const inputs = imagesByStem(inputDir);
  const targets = imagesByStem(targetDir);
  checkSameStems(inputs, inputDir, 'input', targets, targetDir, 'target');
  return { inputDir, targetDir, inputs, targets };
}

/**
 * Runs `restore` on every input image (decoded to 8-bit RGB, then 0..1 floats, as the
 * official test loader), optionally saves the outputs, and scores them against the targets
 * (input PSNR / SSIM and the 10% groups included).
 */
export async function evaluateModel(o: EvaluateModelOptions): Promise<EvalReport> {
  if (typeof o.restore !== 'function') throw new Error('evaluateModel: expected a restore function');
  const { inputDir, targetDir, inputs, targets } = matchInputFolders(o.input, o.target);
  if (o.save !== undefined) await mkdir(o.save, { recursive: true });

  const stems = [...targets.keys()].sort();
  const load = (s: string) => Promise.all([loadImage8(inputs.get(s)!), loadImage8(targets.get(s)!)]);
  const scores: ImageScore[] = [];
  const pending: Promise<void>[] = [];
  o.onProgress?.(0, stems.length, '');
  let next = load(stems[0]);
  for (let i = 0; i < stems.length; i++) {
    const stem = stems[i];
    const name = targetName(targets.get(stem)!);
    const [inp, tgt] = await next;
    if (i + 1 < stems.length) {
      next = load(stems[i + 1]);
      next.catch(() => {});
    }
    const restored = await o.restore(image8ToRGB(inp));
    if (!restored || restored.width !== inp.width || restored.height !== inp.height) {
      const got = restored && Number.isInteger(restored.width) ? `${restored.width}x${restored.height}` : String(restored);
      throw new Error(`${name}: restore returned ${got} for a ${inp.width}x${inp.height} input`);
    }
    const out = toImage8(restored, `${name} (output)`);
    if (o.save !== undefined) {
      const write = writePng8(join(o.save, `${stem}.png`), out);
      write.catch(() => {});
      pending.push(write);
      if (pending.length > 4) await pending.shift();
    }
    scores.push(scoreImage(name, out, tgt, inp));
    o.onProgress?.(i + 1, stems.length, name);
  }
  await Promise.all(pending);
  const report = summarize(scores);
  report.folders = { target: targetDir, input: inputDir, ...(o.save !== undefined ? { save: o.save } : {}) };
  return report;
}

// ---------------------------------------------------------------------------------------------
// output

/** JSON text of a report (non-finite numbers, e.g. the PSNR of identical images, as "Infinity"). */
export function reportToJSON(report: EvalReport): string {
  return JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2) + '\n';
}

/** Writes the report as JSON atomically (temporary file in the same folder, then rename). */
export async function writeReport(path: string, report: EvalReport): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(reportToJSON(report)), { force: true });
}

export interface FormatTableOptions {
  /** always list every image (default: only when there are at most `maxRows`) */
  perImage?: boolean;
  /** default 20 */
  maxRows?: number;
}

function num(v: number | undefined, digits: number): string {
  if (v === undefined) return '';
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return v.toFixed(digits);
}

/**
 * A terminal table: one row per image (when few, or with perImage), then the mean, the
 * blurriest 10% and the sharpest 10% (when the inputs are known).
 */
export function formatTable(report: EvalReport, o: FormatTableOptions = {}): string {
  const hasInput = report.input_psnr !== undefined;
  const header = ['image', 'PSNR', 'SSIM', 'SSIM/ch', ...(hasInput ? ['in PSNR', 'in SSIM'] : [])];
  const row = (label: string, s: { psnr: number; ssim: number; ssim_per_channel: number; input_psnr?: number; input_ssim?: number }) => [
    label, num(s.psnr, 3), num(s.ssim, 4), num(s.ssim_per_channel, 4),
    ...(hasInput ? [num(s.input_psnr, 3), num(s.input_ssim, 4)] : []),
  ];
  const body: string[][] = [];
  const showImages = o.perImage || report.count <= (o.maxRows ?? 20);
  if (showImages) for (const s of report.images) body.push(row(s.name, s));
  const summary: string[][] = [row(`mean (${report.count} image${report.count === 1 ? '' : 's'})`, report)];
  if (report.blurriest10) summary.push(row(`blurriest 10% (${report.blurriest10.count})`, report.blurriest10));
  if (report.sharpest10) summary.push(row(`sharpest 10% (${report.sharpest10.count})`, report.sharpest10));
  const all = [header, ...body, ...summary];
  const widths = header.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  const fmt = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const lines = [fmt(header), rule];
  if (body.length) lines.push(...body.map(fmt), rule);
  lines.push(...summary.map(fmt));
  return lines.join('\n');
}
