/**
 * msdi deblur <files or folders...> -o <file or folder>: restores photos of any size, tile by
 * tile. Everything that can be checked before the work starts (options, inputs' headers, the
 * pixel limit, outputs that would be replaced) is checked first, so a mistake writes nothing.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import {
  DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, outputFormatFromPath, probeImageFile, readImageFile, writeImageFile,
  type ImageHeader, type OutputFormat,
} from '../../data/image-file.js';
import { defaultOverlap, deblurImage, planFor } from '../../eval/deblur.js';
import { DEFAULT_WEIGHTS, loadModel } from '../../eval/model.js';
import { tileCount } from '../../eval/tiles.js';
import { ampOption, intOption, parse, UsageError } from '../args.js';
import { Progress } from '../progress.js';

const HELP = `usage: msdi deblur <files or folders...> -o <file or folder> [options]

  -o, --out FILE|DIR     one input and an image extension: that file; otherwise a folder
                         (created) where outputs keep the input names
  --weights FILE         weights (.safetensors or official .pth); default: the bundled ones
  --device cpu|cuda      (default cpu)
  --grid feather|official  feather: overlapping tiles blended without seams (default);
                         official: the paper's test protocol (grids(), averaged overlaps)
  --tile N               crop size the network sees, a multiple of 16 (default 256)
  --overlap N            least overlap between feather tiles in px (default 32, a quarter of
                         tiles under 128; feather only)
  --batch N              tiles per forward pass (default 4 for wf <= 16, else 1)
  --ensemble             self-ensemble: average the 8 flips/transposes of every tile (8x the time)
  --amp off|bf16         bf16: convolutions in bfloat16, about 0.7x the time on CPUs with
                         AVX-512 BF16 (about 10x without: msdi warns), outputs about 57 dB
                         PSNR from float32's (default off)
  --format png|jpg|webp|tif  output format (default: the input's)
  --quality N            JPEG / WebP quality (default 95)
  --max-pixels N         refuse larger images (default ${DEFAULT_MAX_PIXELS})
  --force                replace existing outputs`;

const FORMATS: Record<string, { format: OutputFormat; ext: string }> = {
  png: { format: 'png', ext: '.png' },
  jpg: { format: 'jpeg', ext: '.jpg' },
  jpeg: { format: 'jpeg', ext: '.jpg' },
  webp: { format: 'webp', ext: '.webp' },
  tif: { format: 'tiff', ext: '.tif' },
  tiff: { format: 'tiff', ext: '.tif' },
};

interface Job {
  input: string;
  output: string;
  format: OutputFormat;
  header?: ImageHeader;
}

function isImageName(name: string): boolean {
  return !name.startsWith('.') && (IMAGE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());
}

/** Inputs as files: folders expand to the images directly inside them, sorted. */
function expandInputs(positionals: string[]): { files: string[]; sawFolder: boolean } {
  const files: string[] = [];
  let sawFolder = false;
  for (const p of positionals) {
    if (!existsSync(p)) throw new Error(`${p}: no such file or folder`);
    if (statSync(p).isDirectory()) {
      sawFolder = true;
      const names = readdirSync(p).filter((n) => isImageName(n) && statSync(join(p, n)).isFile()).sort();
      if (names.length === 0) throw new Error(`${p}: no images in this folder (${IMAGE_EXTENSIONS.join(', ')})`);
      files.push(...names.map((n) => join(p, n)));
    } else {
      files.push(p);
    }
  }
  return { files, sawFolder };
}

export async function deblurCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    out: { type: 'string', short: 'o' }, weights: { type: 'string' }, device: { type: 'string' },
    grid: { type: 'string' }, tile: { type: 'string' }, overlap: { type: 'string' }, batch: { type: 'string' },
    format: { type: 'string' }, quality: { type: 'string' }, 'max-pixels': { type: 'string' },
    force: { type: 'boolean' }, ensemble: { type: 'boolean' }, amp: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, 'deblur');
  if (values.help) return void console.log(HELP);
  if (positionals.length === 0 || !values.out) throw new UsageError(HELP.split('\n')[0]);

  const grid = values.grid ?? 'feather';
  if (grid !== 'feather' && grid !== 'official') throw new UsageError(`--grid: expected feather or official, got ${JSON.stringify(grid)}`);
  const tile = intOption(values.tile, '--tile', 256, 16);
  if (tile % 16 !== 0) throw new UsageError(`--tile: expected a multiple of 16 (the network halves the size 4 times), got ${tile}`);
  const overlap = intOption(values.overlap, '--overlap', defaultOverlap(tile), 0);
  if (grid === 'feather' && overlap >= tile) throw new UsageError(`--overlap: expected less than the tile size ${tile}, got ${overlap}`);
  const batch = values.batch === undefined ? undefined : intOption(values.batch, '--batch', 1, 1);
  const quality = intOption(values.quality, '--quality', 95, 1);
  if (quality > 100) throw new UsageError(`--quality: expected 1..100, got ${quality}`);
  const maxPixels = intOption(values['max-pixels'], '--max-pixels', DEFAULT_MAX_PIXELS, 1);
  const device = values.device ?? 'cpu';
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new UsageError(`--device: expected cpu or cuda, got ${JSON.stringify(device)}`);
  const forced = values.format === undefined ? undefined : FORMATS[values.format.toLowerCase()];
  if (values.format !== undefined && !forced) throw new UsageError(`--format: expected png, jpg, webp or tif, got ${JSON.stringify(values.format)}`);
  const force = Boolean(values.force);
  const amp = ampOption(values.amp);

  // Inputs and outputs.
  const out: string = values.out;
  const { files, sawFolder } = expandInputs(positionals);
  const outIsDir = existsSync(out) && statSync(out).isDirectory();
  const outFormat = outputFormatFromPath(out);
  const fileMode = files.length === 1 && !sawFolder && !outIsDir && outFormat !== null;
  if (!fileMode && !outIsDir && outFormat !== null) {
    throw new UsageError(`-o ${out}: several images (or a folder) need an output folder, not an image file name`);
  }
  if (!fileMode && existsSync(out) && !outIsDir) throw new Error(`${out}: exists and is not a folder`);
  const jobs: Job[] = files.map((input) => {
    if (fileMode) {
      if (forced && forced.format !== outFormat) throw new UsageError(`--format ${values.format} disagrees with the extension of -o ${out}`);
      return { input, output: out, format: outFormat! };
    }
    const ext = extname(input);
    const own = outputFormatFromPath(input);
    const chosen = forced ?? (own ? { format: own, ext } : FORMATS.png);
    return { input, output: join(out, basename(input, ext) + chosen.ext), format: chosen.format };
  });
  const seen = new Map<string, string>();
  const inputs = new Set(files.map((f) => resolve(f)));
  for (const j of jobs) {
    const key = resolve(j.output);
    const other = seen.get(key);
    if (other) throw new Error(`${j.output}: two inputs would both be written there (${other} and ${j.input})`);
    seen.set(key, j.input);
    if (inputs.has(key)) throw new Error(`${j.output}: would overwrite an input`);
    if (!force && existsSync(j.output)) throw new Error(`${j.output}: already exists (--force to overwrite)`);
  }
  // Headers, before any work: non-images, empty files and decompression bombs stop here.
  for (const j of jobs) j.header = await probeImageFile(j.input, { maxPixels });

  if (values.weights === undefined && !existsSync(DEFAULT_WEIGHTS.deblur)) {
    throw new Error(`no bundled weights (${DEFAULT_WEIGHTS.deblur} is missing): pass --weights FILE, or train them (see README)`);
  }
  const model = loadModel(values.weights, { device });
  try {
    if (!fileMode) await mkdir(out, { recursive: true });
    let failed = 0;
    for (const [k, j] of jobs.entries()) {
      try {
        const img = await readImageFile(j.input, { maxPixels });
        const { width, height } = img.rgb;
        const total = tileCount(planFor(height, width, { grid, tile, overlap }));
        const label = jobs.length > 1 ? `${basename(j.input)} (${k + 1}/${jobs.length})` : basename(j.input);
        const bar = new Progress(label, total, 'tile');
        const rgb = deblurImage(model, img.rgb, { grid, tile, overlap, batch, ensemble: values.ensemble, amp, onProgress: (done) => bar.update(done) });
        await writeImageFile(j.output, { ...img, rgb }, { force, quality, format: j.format });
        bar.done(`${width}x${height}, ${total} tiles -> ${j.output}`);
      } catch (e) {
        if (jobs.length === 1) throw e;
        failed++;
        console.error(`msdi deblur: ${String((e as Error).message ?? e).split('\n')[0]}`);
      }
    }
    if (failed) throw new Error(`${failed} of ${jobs.length} images failed (see above)`);
  } finally {
    model.dispose();
  }
}
