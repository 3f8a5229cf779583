/**
 * msdi as a library.
 *
 *   import { loadModel, deblur, reblur, degradationMap, evaluate } from 'msdi';
 *   const model = loadModel();                       // bundled weights, or loadModel('msdi_net.pth')
 *   const sharp = await deblur('blurry.jpg', { model, output: 'sharp.png', onProgress: (d, t) => ... });
 *
 * Images are files (anything sharp reads) or RGBImage values (HWC floats 0..1). Functions that
 * take `output` write it atomically (temporary file, then rename) and refuse to overwrite
 * unless `force` is set.
 */
import { readImageFile, writeImageFile, type ImageFile } from './data/image-file.js';
import type { RGBImage } from './data/image-io.js';
import { loadModel, type LoadedModel } from './eval/model.js';
import { deblurImage, type DeblurOptions } from './eval/deblur.js';
import { reblur as reblurImage, type ReblurOptions } from './eval/reblur.js';
import { degradationMap as mapImage, type DegradationMapOptions } from './eval/degradation-map.js';
import { evaluateModel, scoreFolders, type EvalReport } from './eval/evaluate.js';

export { loadModel, DEFAULT_WEIGHTS, type LoadedModel, type LoadModelOptions } from './eval/model.js';
export { scoreFolders, scoreImages, formatTable, type EvalReport } from './eval/evaluate.js';
export { readImageFile, writeImageFile, type ImageFile } from './data/image-file.js';
export type { RGBImage } from './data/image-io.js';
export type { DeblurOptions } from './eval/deblur.js';
export type { ReblurOptions } from './eval/reblur.js';
export type { DegradationMapOptions } from './eval/degradation-map.js';
export * as engine from './engine/index.js';

export type ImageInput = string | RGBImage;

interface ModelChoice {
  /** A loaded model (reuse it across calls), else `weights` or the bundled default weights. */
  model?: LoadedModel;
  weights?: string;
}

interface Output {
  /** Write the result here (PNG / JPEG / WebP / TIFF by extension). */
  output?: string;
  force?: boolean;
}

async function read(img: ImageInput): Promise<ImageFile> {
  if (typeof img === 'string') return readImageFile(img);
  return { rgb: img, alpha: null, bitDepth: 8, grey: false };
}

async function withModel<T>(o: ModelChoice, kind: 'deblur' | 'joint' | 'representation', fn: (m: LoadedModel) => Promise<T>): Promise<T> {
  const model = o.model ?? loadModel(o.weights, { kind });
  try {
    return await fn(model);
  } finally {
    if (!o.model) model.dispose();
  }
}

/** Deblurs an image of any size (tiled, blended without seams). Alpha and bit depth are kept when writing. */
export async function deblur(input: ImageInput, o: DeblurOptions & ModelChoice & Output = {}): Promise<RGBImage> {
  const file = await read(input);
  return withModel(o, 'deblur', async (model) => {
    const rgb = deblurImage(model, file.rgb, o);
    if (o.output) await writeImageFile(o.output, { ...file, rgb }, { force: o.force });
    return rgb;
  });
}

/** Blur transfer: `sharp` reblurred with the blur of `like`, at `level` (0 none, 1 like's, up to 2). */
export async function reblur(sharp: ImageInput, like: ImageInput, o: ReblurOptions & ModelChoice & Output = {}): Promise<RGBImage> {
  const [s, l] = await Promise.all([read(sharp), read(like)]);
  return withModel(o, 'joint', async (model) => {
    const rgb = reblurImage(model, s.rgb, l.rgb, o);
    if (o.output) await writeImageFile(o.output, { ...s, rgb }, { force: o.force });
    return rgb;
  });
}

/** A picture of the spatially varying degradation representation of `blurry`, at image size. */
export async function degradationMap(blurry: ImageInput, o: DegradationMapOptions & ModelChoice & Output = {}): Promise<RGBImage> {
  const file = await read(blurry);
  return withModel(o, 'representation', async (model) => {
    const rgb = mapImage(model, file.rgb, o);
    if (o.output) await writeImageFile(o.output, { rgb, alpha: null, bitDepth: 8, grey: false }, { force: o.force });
    return rgb;
  });
}

/**
 * PSNR / SSIM as published. With `results`, scores existing outputs against `target`;
 * otherwise runs the model on `input` (tiled as `grid` says; official by default) and scores it.
 */
export async function evaluate(o: ModelChoice & {
  input?: string; target?: string; results?: string; save?: string; grid?: 'feather' | 'official';
  onProgress?: (done: number, total: number, name: string) => void;
}): Promise<EvalReport> {
  if (o.results) {
    if (!o.target) throw new Error('evaluate: expected a target folder for target, got none');
    return scoreFolders({ results: o.results, target: o.target, input: o.input, onProgress: o.onProgress });
  }
  if (!o.input) throw new Error('evaluate: expected an input folder (or results) for input, got none');
  const input = o.input;
  return withModel(o, 'deblur', (model) => evaluateModel({
    input, target: o.target, save: o.save, onProgress: o.onProgress,
    restore: (img) => deblurImage(model, img, { grid: o.grid ?? 'official' }),
  }));
}
