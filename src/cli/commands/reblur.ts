/**
 * msdi reblur <sharp> --like <blurry> [--level L] -o out.png [--weights W] [--force]:
 * blur transfer. The blur of <blurry>, as the joint model's degradation representation
 * describes it, is applied to <sharp>; --level scales it (0 none, 1 as <blurry>, 2 double).
 * The output keeps <sharp>'s alpha and bit depth.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatFromPath } from '../../data/image-io.js';
import { DEFAULT_MAX_PIXELS, probeImageFile, readImageFile, writeImageFile } from '../../data/image-file.js';
import { DEFAULT_WEIGHTS, loadModel, type LoadedModel } from '../../eval/model.js';
import { reblur, reblurringModel } from '../../eval/reblur.js';
import { ampOption, intOption, parse, UsageError } from '../args.js';

const HELP = `usage: msdi reblur <sharp> --like <blurry> -o OUT.png [options]

  --like FILE        the blurry image whose blur is transferred (any size)
  --level L          0 (no added blur) .. 1 (the blur of --like, default) .. 2 (stronger)
  -o, --out FILE     output image (.png, .jpg, .webp)
  --weights FILE     joint MSDI2E weights; default: the bundled ones
  --amp off|bf16     bf16: convolutions in bfloat16 (faster on CPUs with AVX-512 BF16; default off)
  --max-pixels N     refuse larger images (default ${DEFAULT_MAX_PIXELS})
  --force            replace an existing output`;

/** Checks shared by the image commands, before any work: inputs exist, output allowed. */
export function checkInput(path: string): void {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  if (statSync(path).isDirectory()) throw new Error(`${path}: is a folder, expected an image file`);
}

export function checkOutput(out: string, inputs: string[], force: boolean): void {
  try {
    formatFromPath(out);
  } catch {
    throw new UsageError(`-o ${out}: expected a .png, .jpg, .jpeg or .webp file name`);
  }
  if (inputs.some((i) => resolve(i) === resolve(out))) throw new Error(`${out}: would overwrite an input`);
  if (existsSync(out)) {
    if (statSync(out).isDirectory()) throw new Error(`${out}: is a folder, expected an image file name`);
    if (!force) throw new Error(`${out}: already exists (--force to overwrite)`);
  }
}

/** Loads --weights or the bundled joint weights, with a one-line error when they are missing. */
export function loadJoint(weights: string | undefined): LoadedModel {
  if (weights === undefined && !existsSync(DEFAULT_WEIGHTS.joint)) {
    throw new Error(`no bundled joint weights (${DEFAULT_WEIGHTS.joint} is missing): pass --weights FILE, or train them (see README)`);
  }
  return loadModel(weights, { kind: 'joint' });
}

export function parseLevel(value: string | undefined): number {
  if (value === undefined) return 1;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 2) throw new UsageError(`--level: expected a number from 0 to 2, got ${JSON.stringify(value)}`);
  return n;
}

export async function reblurCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    like: { type: 'string' }, level: { type: 'string' }, out: { type: 'string', short: 'o' },
    weights: { type: 'string' }, force: { type: 'boolean' }, amp: { type: 'string' }, 'max-pixels': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 'reblur');
  if (values.help) return void console.log(HELP);
  if (positionals.length !== 1 || !values.like || !values.out) throw new UsageError(HELP.split('\n')[0]);
  const level = parseLevel(values.level);
  const amp = ampOption(values.amp);
  const sharpPath = positionals[0];
  const likePath: string = values.like;
  const out: string = values.out;
  checkInput(sharpPath);
  checkInput(likePath);
  const force = Boolean(values.force);
  checkOutput(out, [sharpPath, likePath], force);
  const maxPixels = intOption(values['max-pixels'], '--max-pixels', DEFAULT_MAX_PIXELS, 1);
  // Headers first: non-images and decompression bombs stop here, before the model loads.
  for (const p of [sharpPath, likePath]) await probeImageFile(p, { maxPixels });
  const model = loadJoint(values.weights);
  try {
    reblurringModel(model); // a deblur-only model stops here, before decoding anything
    const [sharp, like] = await Promise.all([readImageFile(sharpPath, { maxPixels }), readImageFile(likePath, { maxPixels })]);
    const t0 = Date.now();
    const rgb = reblur(model, sharp.rgb, like.rgb, { level, amp });
    await writeImageFile(out, { ...sharp, rgb }, { force });
    console.log(`${out}: ${rgb.width}x${rgb.height} reblurred like ${likePath} at level ${level} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } finally {
    model.dispose();
  }
}
