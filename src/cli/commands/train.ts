/**
 * msdi train stage1|stage2 --data DIR [--val DIR] --out RUN [--config PRESET|file.json]
 *   [--init STAGE1] [--ablate no-degradation|no-reblur] [--resume] [--iters N] [--stop-after N]
 */
import { train } from '../../train/trainer.js';
import { loadConfig, PRESETS, type Ablation } from '../../train/config.js';
import { parse, intOption, UsageError } from '../args.js';

const HELP = `usage: msdi train stage1|stage2 --data DIR --out RUN [--val DIR] [--config PRESET|file.json]
                  [--init STAGE1_CHECKPOINT] [--ablate no-degradation|no-reblur] [--resume]
                  [--iters N] [--batch N] [--crop N] [--stop-after N] [--seed S] [--workers N]
presets: ${Object.keys(PRESETS).join(', ')}`;

export async function trainCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    data: { type: 'string' }, val: { type: 'string' }, out: { type: 'string' }, config: { type: 'string' },
    init: { type: 'string' }, ablate: { type: 'string' }, resume: { type: 'boolean' }, iters: { type: 'string' },
    batch: { type: 'string' }, crop: { type: 'string' }, 'stop-after': { type: 'string' }, seed: { type: 'string' },
    workers: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean' },
  }, 'train');
  if (values.help) return void console.log(HELP);
  const stage = positionals[0];
  if (stage !== 'stage1' && stage !== 'stage2') throw new UsageError(HELP.split('\n')[0]);
  if (!values.data || !values.out) throw new UsageError('expected --data DIR and --out RUN');
  const ablation = (values.ablate ?? 'none') as Ablation;
  if (!['none', 'no-degradation', 'no-reblur'].includes(ablation)) {
    throw new UsageError(`expected no-degradation or no-reblur for --ablate, got "${values.ablate}"`);
  }
  if (ablation === 'no-degradation' && stage !== 'stage2') throw new UsageError('--ablate no-degradation applies to stage2');
  if (ablation === 'no-reblur' && stage !== 'stage1') throw new UsageError('--ablate no-reblur applies to stage1');
  const config = loadConfig(values.config ?? `cpu-${stage}`, {
    iters: values.iters === undefined ? undefined : intOption(values.iters, '--iters', 1),
    batch: values.batch === undefined ? undefined : intOption(values.batch, '--batch', 1),
    crop: values.crop === undefined ? undefined : intOption(values.crop, '--crop', 16),
    seed: values.seed === undefined ? undefined : intOption(values.seed, '--seed', 0, 0),
    workers: values.workers === undefined ? undefined : intOption(values.workers, '--workers', 0, 0),
  });
  if (config.stage !== stage) throw new UsageError(`config ${values.config} is for ${config.stage}, not ${stage}`);
  const result = await train({
    config, ablation, data: values.data, val: values.val, out: values.out, resume: values.resume, init: values.init,
    stopAfter: values['stop-after'] === undefined ? undefined : intOption(values['stop-after'], '--stop-after', 1),
    quiet: values.quiet,
  });
  console.log(JSON.stringify({ step: result.step, finished: result.finished, losses: result.lastLosses, val: result.val }));
  if (result.interrupted) {
    // Checkpoint written: end as an interrupted program does, by the signal itself. (A normal
    // exit after a caught SIGINT can hang in libtorch's thread-pool teardown.)
    process.kill(process.pid, result.interrupted);
  }
}
