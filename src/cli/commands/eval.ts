/**
 * msdi eval: PSNR / SSIM as the community reports them (src/eval/evaluate.ts).
 *   msdi eval --input DIR --target DIR [--weights W] [--grid feather|official] [--save DIR] [--json FILE] [--per-image]
 *     runs the model on every input and scores its outputs;
 *   msdi eval --results DIR --target DIR [--input DIR] [--json FILE] [--per-image]
 *     scores existing results (any method's), matched to the targets by file stem.
 * A GoPro-layout folder (DIR/input, DIR/target) can stand for either folder.
 */
import { loadModel } from '../../eval/model.js';
import { evaluateModel, formatTable, matchInputFolders, scoreFolders, writeReport, type EvalReport, type RestoreFn } from '../../eval/evaluate.js';
import { ampOption, parse, UsageError } from '../args.js';
import { Progress } from '../progress.js';

const HELP = `usage: msdi eval --input DIR --target DIR [--weights W] [--grid feather|official] [--ensemble] [--amp bf16] [--save DIR] [--json FILE] [--per-image]
       msdi eval --results DIR --target DIR [--input DIR] [--json FILE] [--per-image]
A folder with input/ and target/ subfolders (GoPro layout) can be given for --input or --target.
--grid official (default) is the paper's 256x256 tiling; feather blends overlapping tiles without seams.
--ensemble averages the 8 flips/transposes of every tile (self-ensemble; not what the paper reports).
--amp bf16 runs the convolutions in bfloat16 (as msdi deblur --amp).
Metrics: 8-bit RGB, crop_border 0; SSIM = the official 3-D SSIM, SSIM/ch = classic per-channel SSIM.`;

const GRIDS = ['official', 'feather'] as const;
type Grid = (typeof GRIDS)[number];

export async function evalCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    input: { type: 'string' }, target: { type: 'string' }, results: { type: 'string' }, weights: { type: 'string' },
    grid: { type: 'string' }, json: { type: 'string' }, save: { type: 'string' }, 'per-image': { type: 'boolean' },
    ensemble: { type: 'boolean' }, amp: { type: 'string' }, help: { type: 'boolean' },
  }, 'eval');
  if (values.help) return void console.log(HELP);
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
