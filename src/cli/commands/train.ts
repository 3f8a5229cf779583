/**
 * msdi train stage1|stage2 --data DIR [--val DIR] --out RUN [--config PRESET|file.json]
 *   [--init WEIGHTS] [--ablate no-degradation|no-reblur] [--resume] [--iters N] [--stop-after N]
 *   [--device cpu|cuda]
 *   [--nproc N [--nnodes M --node-rank R --master-addr A --master-port P]]
 *
 * With --nproc / --nnodes this process is torchrun-like launcher (src/train/launch.ts) that runs
 * the same command as N ranks; a process started with RANK and WORLD_SIZE in its environment
 * (by that launcher, or by torchrun --no-python) is one rank of data-parallel training.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, loadRunConfig, PRESETS, type Ablation } from '../../train/config.js';
import { parse, intOption, UsageError } from '../args.js';
import { resolveDevice } from '../../engine/index.js';

const HELP = `usage: msdi train stage1|stage2 --data DIR --out RUN [--val DIR] [--config PRESET|file.json]
                  [--init WEIGHTS] [--ablate no-degradation|no-reblur] [--resume]
                  [--iters N] [--batch N] [--crop N] [--stop-after N] [--seed S] [--workers N]
                  [--device cpu|cuda] [--nproc N] [--nnodes M --node-rank R --master-addr HOST] [--master-port P]
--init: for stage 2, a stage-1 checkpoint or MSDI2E weights (its representation, frozen); for
either stage, weights or a checkpoint of the network it trains, to fine-tune from.
--batch is the global batch: with N processes on M machines each takes batch / (N x M) of it.
presets: ${Object.keys(PRESETS).join(', ')}`;

const LAUNCHER_OPTIONS = {
  nproc: { type: 'string' }, nnodes: { type: 'string' }, 'node-rank': { type: 'string' },
  'master-addr': { type: 'string' }, 'master-port': { type: 'string' },
} as const;

/** argv without the launcher's own options (what each rank runs). */
function withoutLauncherOptions(argv: string[], options: Parameters<typeof parse>[1]): string[] {
  const { tokens } = parseArgs({ args: argv, options, allowPositionals: true, strict: true, tokens: true });
  const drop = new Set<number>();
  for (const t of tokens ?? []) {
    if (t.kind !== 'option' || !(t.name in LAUNCHER_OPTIONS)) continue;
    drop.add(t.index);
    if (t.value !== undefined && !t.inlineValue) drop.add(t.index + 1);
  }
  return argv.filter((_, i) => !drop.has(i));
}

export async function trainCommand(argv: string[]): Promise<void> {
  const options = {
    data: { type: 'string' }, val: { type: 'string' }, out: { type: 'string' }, config: { type: 'string' },
    init: { type: 'string' }, ablate: { type: 'string' }, resume: { type: 'boolean' }, iters: { type: 'string' },
    batch: { type: 'string' }, crop: { type: 'string' }, 'stop-after': { type: 'string' }, seed: { type: 'string' },
    workers: { type: 'string' }, device: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean' }, ...LAUNCHER_OPTIONS,
  } as const;
  const { values, positionals } = parse(argv, options, 'train');
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
  // --resume continues a run as it was configured (its config.json), unless --config says otherwise.
  const runConfig = join(values.out, 'config.json');
  const resumed = values.resume && !values.config && existsSync(runConfig);
  const source = resumed ? runConfig : values.config ?? `cpu-${stage}`;
  const overrides = {
    iters: values.iters === undefined ? undefined : intOption(values.iters, '--iters', 1),
    batch: values.batch === undefined ? undefined : intOption(values.batch, '--batch', 1),
    crop: values.crop === undefined ? undefined : intOption(values.crop, '--crop', 16),
    seed: values.seed === undefined ? undefined : intOption(values.seed, '--seed', 0, 0),
    workers: values.workers === undefined ? undefined : intOption(values.workers, '--workers', 0, 0),
  };
  const config = resumed ? loadRunConfig(source, overrides) : loadConfig(source, overrides, stage);
  if (config.stage !== stage) throw new UsageError(`config ${source} is for ${config.stage}, not ${stage}`);
  const stopAfter = values['stop-after'] === undefined ? undefined : intOption(values['stop-after'], '--stop-after', 1);
  const device = values.device ?? 'cpu';
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new UsageError(`--device: expected cpu or cuda, got ${JSON.stringify(device)}`);

  const { distEnv } = await import('../../train/distributed.js');
  const rank = distEnv();
  if (device !== 'cpu' && (rank || Object.keys(LAUNCHER_OPTIONS).some((k) => values[k] !== undefined))) {
    throw new UsageError('--device cuda: data-parallel training runs on the CPU only for now (one process per GPU is not implemented)');
  }
  if (device !== 'cpu') resolveDevice(device); // fails clearly on a libtorch without CUDA
  if (Object.keys(LAUNCHER_OPTIONS).some((k) => values[k] !== undefined)) {
    if (rank) throw new UsageError('--nproc / --nnodes: this process is already a rank of a launched run (RANK and WORLD_SIZE are set)');
    return launchRanks(values, config.batch, ['train', ...withoutLauncherOptions(argv, options)]);
  }

  const { train } = await import('../../train/trainer.js');
  const run = {
    config, ablation, data: values.data, val: values.val, out: values.out, resume: values.resume, init: values.init, stopAfter,
    quiet: values.quiet, device,
  };
  if (!rank || rank.world === 1) {
    const result = await train(run);
    console.log(JSON.stringify({ step: result.step, finished: result.finished, losses: result.lastLosses, val: result.val }));
    return endBySignal(result.interrupted);
  }

  // One rank of data-parallel training.
  const { watchLauncher, EXIT_COLLECTIVE } = await import('../../train/launch.js');
  const { ProcessGroup, CollectiveError } = await import('../../train/distributed.js');
  watchLauncher(rank.rank);
  let result;
  try {
    const group = ProcessGroup.init({ rank: rank.rank, world: rank.world, masterAddr: rank.masterAddr, masterPort: rank.masterPort });
    try {
      result = await train({ ...run, group, quiet: values.quiet || rank.rank > 0 });
    } finally {
      group.dispose();
    }
  } catch (e) {
    const message = `rank ${rank.rank}: ${(e as Error).message}`;
    if (e instanceof CollectiveError) {
      // another rank is the cause: say so with the exit code the launcher reads that way
      console.error(`msdi train: ${message}`);
      process.exit(EXIT_COLLECTIVE);
    }
    throw new Error(message, { cause: e });
  }
  if (rank.rank === 0) {
    console.log(JSON.stringify({ step: result.step, finished: result.finished, losses: result.lastLosses, val: result.val, world: rank.world }));
  }
  return endBySignal(result.interrupted);
}

function endBySignal(signal: NodeJS.Signals | null): void {
  if (signal) {
    // Checkpoint written: end as an interrupted program does, by the signal itself. (A normal
    // exit after a caught SIGINT can hang in libtorch's thread-pool teardown.)
    process.kill(process.pid, signal);
  }
}

async function launchRanks(values: Record<string, unknown>, batch: number, rankArgv: string[]): Promise<void> {
  const str = (k: string) => values[k] as string | undefined;
  const nproc = intOption(str('nproc'), '--nproc', 1);
  const nnodes = intOption(str('nnodes'), '--nnodes', 1);
  const nodeRank = intOption(str('node-rank'), '--node-rank', 0, 0);
  if (nodeRank >= nnodes) throw new UsageError(`expected an integer below --nnodes ${nnodes} for --node-rank, got ${nodeRank}`);
  if (nnodes > 1 && !str('master-addr')) {
    throw new UsageError('--nnodes > 1 needs --master-addr (the address of the machine started with --node-rank 0)');
  }
  const masterPort = str('master-port') === undefined ? undefined : intOption(str('master-port'), '--master-port', 1);
  if (masterPort !== undefined && masterPort > 65535) throw new UsageError(`expected a TCP port (1..65535) for --master-port, got ${masterPort}`);
  const world = nproc * nnodes;
  if (batch % world !== 0) {
    throw new UsageError(`the global batch ${batch} is not divisible by the ${world} ranks (--nproc ${nproc} x --nnodes ${nnodes}); change --batch`);
  }
  const { glooMissing } = await import('../../train/distributed.js');
  const missing = world > 1 ? glooMissing() : null;
  if (missing) throw new Error(missing);
  const { launch } = await import('../../train/launch.js');
  const script = process.argv[1];
  if (!script) throw new Error('cannot tell which script to start as the ranks (process.argv[1] is empty)');
  const r = await launch({ script, args: rankArgv, nproc, nnodes, nodeRank, masterAddr: str('master-addr'), masterPort });
  if (r.failed) {
    const f = r.failed;
    throw new Error(`data-parallel training failed: rank ${f.rank} ${f.signal ? `was killed by ${f.signal}` : `exited with code ${f.code}`}`);
  }
  endBySignal(r.signal);
}
