/** msdi synth --from PHOTOS --out DIR --count N --seed S [--size 320] [--levels L,...] [--motion]: synthetic blurry/sharp pairs. */
import { synthFolder, checkLevels } from '../../data/synth/index.js';
import { parse, intOption, UsageError } from '../args.js';
import { Progress } from '../progress.js';

const HELP = `usage: msdi synth --from PHOTOS --out DIR --count N [--seed S] [--size 320] [--start I] [--levels L,...] [--motion]
--levels 0.5,2 also writes each pair's blur at those levels (the motion and defocus scaled) to
DIR/level-0.5/ and DIR/level-2/, where the motion stays inside the scene; input/ and target/ are
the same as without it. --motion also writes each pair's true blur to DIR/motion/NAME.f32: raw
float32, 9 x size x size, channels dx0 dy0 dxq1 dyq1 dxq3 dyq3 dx1 dy1 defocus (where the content
seen at a pixel at the start, a quarter, three quarters and the end of the exposure is in the
sharp frame, in pixels from it; the defocus disc radius).`;

export async function synth(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    from: { type: 'string' }, out: { type: 'string' }, count: { type: 'string' }, seed: { type: 'string' },
    size: { type: 'string' }, start: { type: 'string' }, levels: { type: 'string' }, motion: { type: 'boolean' },
    help: { type: 'boolean' },
  }, 'synth');
  if (values.help) return void console.log(HELP);
  if (!values.from || !values.out || !values.count) throw new UsageError(HELP.split('\n')[0]);
  let levels: number[] | undefined;
  try {
    levels = values.levels === undefined ? undefined : checkLevels(String(values.levels).split(',').map((v: string) => (v.trim() === '' ? NaN : Number(v))), '--levels');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const count = intOption(values.count, '--count', 0, 1);
  const bar = new Progress('synth', count);
  const res = await synthFolder({
    from: values.from, out: values.out, count,
    seed: intOption(values.seed, '--seed', 0, 0),
    size: intOption(values.size, '--size', 320, 64),
    start: intOption(values.start, '--start', 0, 0),
    synth: { ...(levels ? { levels } : {}), ...(values.motion ? { motion: true } : {}) },
    onProgress: (done) => bar.update(done),
  });
  bar.done(`${res.count} pairs in ${values.out}/input and ${values.out}/target`);
}
