/** msdi synth --from PHOTOS --out DIR --count N --seed S [--size 320]: synthetic blurry/sharp pairs. */
import { synthFolder } from '../../data/synth.js';
import { parse, intOption, UsageError } from '../args.js';
import { Progress } from '../progress.js';

const HELP = 'usage: msdi synth --from PHOTOS --out DIR --count N [--seed S] [--size 320] [--start I]';

export async function synth(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    from: { type: 'string' }, out: { type: 'string' }, count: { type: 'string' }, seed: { type: 'string' },
    size: { type: 'string' }, start: { type: 'string' }, help: { type: 'boolean' },
  }, 'synth');
  if (values.help) return void console.log(HELP);
  if (!values.from || !values.out || !values.count) throw new UsageError(HELP);
  const count = intOption(values.count, '--count', 0, 1);
  const bar = new Progress('synth', count);
  const res = await synthFolder({
    from: values.from, out: values.out, count,
    seed: intOption(values.seed, '--seed', 0, 0),
    size: intOption(values.size, '--size', 320, 64),
    start: intOption(values.start, '--start', 0, 0),
    onProgress: (done) => bar.update(done),
  });
  bar.done(`${res.count} pairs in ${values.out}/input and ${values.out}/target`);
}
