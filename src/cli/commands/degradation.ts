/**
 * msdi degradation <blurry> -o map.png [--weights W] [--overlay A] [--force]: a picture of the
 * spatially varying degradation representation (its first three principal components as
 * RGB; equal colours = equal representation within the picture).
 */
import { DEFAULT_MAX_PIXELS, probeImageFile, readImageFile, writeImageFile } from '../../data/image-file.js';
import { degradationMap, representationModel } from '../../eval/degradation-map.js';
import { intOption, parse, UsageError } from '../args.js';
import { loadModel } from '../../eval/model.js';
import { checkInput, checkOutput } from './reblur.js';

const HELP = `usage: msdi degradation <blurry> -o MAP.png [options]

  -o, --out FILE     output image (.png, .jpg, .webp)
  --weights FILE     MSDI2E, msdi_net or msdi2_net weights; default: the bundled deblurring
                     ones (the representation that drives the deblurring), else the joint ones
  --overlay A        0..1: opacity of the map over the photo (default 1, the map alone)
  --max-pixels N     refuse larger images (default ${DEFAULT_MAX_PIXELS})
  --force            replace an existing output`;

export async function degradationCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    out: { type: 'string', short: 'o' }, weights: { type: 'string' }, overlay: { type: 'string' },
    force: { type: 'boolean' }, 'max-pixels': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, 'degradation');
  if (values.help) return void console.log(HELP);
  if (positionals.length !== 1 || !values.out) throw new UsageError(HELP.split('\n')[0]);
  let overlay = 1;
  if (values.overlay !== undefined) {
    overlay = Number(values.overlay);
    if (values.overlay.trim() === '' || !Number.isFinite(overlay) || overlay < 0 || overlay > 1) {
      throw new UsageError(`--overlay: expected a number from 0 to 1, got ${JSON.stringify(values.overlay)}`);
    }
  }
  const input = positionals[0];
  const out: string = values.out;
  checkInput(input);
  const force = Boolean(values.force);
  checkOutput(out, [input], force);
  const maxPixels = intOption(values['max-pixels'], '--max-pixels', DEFAULT_MAX_PIXELS, 1);
  await probeImageFile(input, { maxPixels }); // non-images and decompression bombs stop here
  const model = loadModel(values.weights, { kind: 'representation' });
  try {
    representationModel(model); // weights without a representation stop here, before decoding
    const img = (await readImageFile(input, { maxPixels })).rgb;
    const map = degradationMap(model, img, { overlay });
    await writeImageFile(out, { rgb: map, alpha: null, bitDepth: 8, grey: false }, { force });
    console.log(`${out}: degradation map of ${input} (${img.width}x${img.height})`);
  } finally {
    model.dispose();
  }
}
