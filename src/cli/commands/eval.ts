/**
 * msdi eval: PSNR / SSIM as the community reports them (src/eval/evaluate.ts).
 *   msdi eval --input DIR --target DIR [--weights W] [--grid feather|official] [--save DIR] [--json FILE] [--per-image]
 *     runs the model on every input and scores its outputs;
 *   msdi eval --results DIR --target DIR [--input DIR] [--json FILE] [--per-image]
 *     scores existing results (any method's), matched to the targets by file stem.
 *   msdi eval --compare A.json B.json [--by-photo SYNTH_DIR] [--json FILE]
 *     compares two such reports image by image (src/eval/compare.ts).
 * A GoPro-layout folder (DIR/input, DIR/target) can stand for either folder.
 */
import { loadModel } from '../../eval/model.js';
import { evaluateModel, formatTable, matchInputFolders, scoreFolders, writeReport, type EvalReport, type RestoreFn } from '../../eval/evaluate.js';
import { compareScores, formatComparison, photosOfPairs, readScores } from '../../eval/compare.js';
import { writeFileAtomic } from '../../data/atomic-write.js';
import { ampOption, parse, UsageError, type Parsed } from '../args.js';
import { Progress } from '../progress.js';

const HELP = `usage: msdi eval --input DIR --target DIR [--weights W] [--grid feather|official] [--ensemble] [--amp bf16] [--save DIR] [--json FILE] [--per-image]
       msdi eval --results DIR --target DIR [--input DIR] [--json FILE] [--per-image]
       msdi eval --compare A.json B.json [--by-photo SYNTH_DIR] [--json FILE]
A folder with input/ and target/ subfolders (GoPro layout) can be given for --input or --target.
--grid official (default) is the paper's 256x256 tiling; feather blends overlapping tiles without seams.
--ensemble averages the 8 flips/transposes of every tile (self-ensemble; not what the paper reports).
--amp bf16 runs the convolutions in bfloat16 (as msdi deblur --amp).
Metrics: 8-bit RGB, crop_border 0; SSIM = the official 3-D SSIM, SSIM/ch = classic per-channel SSIM.
--compare: B against A on the same images (two --json reports): the mean difference and its
standard error, wins, fifths by input PSNR; --by-photo (the msdi synth folder of the pairs) adds
each source photo's mean difference and the standard error clustered by photo.`;

const GRIDS = ['official', 'feather'] as const;
type Grid = (typeof GRIDS)[number];

export async function evalCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    input: { type: 'string' }, target: { type: 'string' }, results: { type: 'string' }, weights: { type: 'string' },
    grid: { type: 'string' }, json: { type: 'string' }, save: { type: 'string' }, 'per-image': { type: 'boolean' },
    ensemble: { type: 'boolean' }, amp: { type: 'string' }, compare: { type: 'boolean' }, 'by-photo': { type: 'string' },
    help: { type: 'boolean' },
  }, 'eval');
  if (values.help) return void console.log(HELP);
  if (values.compare) return compareReports(values, positionals);
  if (values['by-photo'] !== undefined) throw new UsageError('--by-photo applies to --compare');
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (${HELP.split('\n')[0]})`);
  if (values.grid !== undefined && !GRIDS.includes(values.grid as Grid)) {
    throw new UsageError(`expected ${GRIDS.join(' or ')} for --grid, got "${values.grid}"`);
  }
  let bar: Progress | undefined;
  let imagesDone = 0;
  const onProgress = (done: number, total: number, name: string) => {
    bar ??= new Progress('eval', total, 'img');
    bar.update(done, name);
    imagesDone = done;
  };

  let report: EvalReport;
  if (values.results !== undefined) {
    for (const k of ['weights', 'grid', 'save', 'ensemble', 'amp'] as const) {
      if (values[k] !== undefined) throw new UsageError(`--${k} runs the model; it does not apply to --results`);
    }
    if (!values.target) throw new UsageError('expected --target DIR with --results DIR');
    report = await scoreFolders({ results: values.results, target: values.target, input: values.input, onProgress });
  } else {
    if (!values.input) throw new UsageError(HELP.split('\n')[0]);
    const amp = ampOption(values.amp);
    matchInputFolders(values.input, values.target); // check the folders before loading the model
    const model = loadModel(values.weights);
    try {
      const { deblurImage } = await import('../../eval/deblur.js');
      const grid = (values.grid ?? 'official') as Grid;
      const restore: RestoreFn = (img) =>
        deblurImage(model, img, { grid, ensemble: values.ensemble, amp, onProgress: (d, t) => bar?.update(imagesDone, `tile ${d}/${t}`) });
      report = await evaluateModel({ input: values.input, target: values.target, restore, save: values.save, onProgress });
    } finally {
      model.dispose();
    }
  }
  bar?.done(`${report.count} image${report.count === 1 ? '' : 's'}`);
  if (values.json) await writeReport(values.json, report);
  console.log(formatTable(report, { perImage: values['per-image'] }));
}

async function compareReports(values: Parsed['values'], positionals: string[]): Promise<void> {
  if (positionals.length !== 2) throw new UsageError(`--compare takes two JSON reports of msdi eval --json, got ${positionals.length} file${positionals.length === 1 ? '' : 's'}`);
  for (const k of ['input', 'target', 'results', 'weights', 'grid', 'save', 'per-image', 'ensemble', 'amp'] as const) {
    if (values[k] !== undefined) throw new UsageError(`--${k} does not apply to --compare`);
  }
  const [fa, fb] = positionals as [string, string];
  const names = { a: fa, b: fb };
  const c = compareScores(readScores(fa), readScores(fb), names, values['by-photo'] ? photosOfPairs(values['by-photo']) : undefined);
  if (values.json) await writeFileAtomic(values.json, new TextEncoder().encode(JSON.stringify({ files: names, ...c }, null, 2) + '\n'), { force: true });
  console.log(formatComparison(c, names));
}
