/**
 * msdi command line: `msdi <command> [options]`. Every failure prints one line naming the
 * file and the problem and exits non-zero (2 for usage mistakes, 1 otherwise).
 */
import { UsageError } from './args.js';

type Command = { summary: string; run: (argv: string[]) => Promise<void> | void };

const COMMANDS: Record<string, Command> = {
  selfcheck: { summary: 'check the engine and the networks against the reference fixtures', run: async (a) => (await import('./commands/selfcheck.js')).selfcheck(a) },
  info: { summary: 'architecture, config, parameters and MACs of weights or a named config', run: async (a) => (await import('./commands/info.js')).info(a) },
  synth: { summary: 'make realistic blurry/sharp pairs from sharp photos (GoPro layout)', run: async (a) => (await import('./commands/synth.js')).synth(a) },
  deblur: { summary: 'deblur photos of any size, tile by tile (files or folders)', run: async (a) => (await import('./commands/deblur.js')).deblurCommand(a) },
  reblur: { summary: 'transfer the blur of a blurry image to a sharp one, at a chosen level (joint weights)', run: async (a) => (await import('./commands/reblur.js')).reblurCommand(a) },
  degradation: { summary: 'picture of the spatially varying degradation representation of a blurry image', run: async (a) => (await import('./commands/degradation.js')).degradationCommand(a) },
  eval: { summary: 'PSNR / SSIM as published: run the model on a test set, or score existing results', run: async (a) => (await import('./commands/eval.js')).evalCommand(a) },
  train: { summary: 'train stage1 (MSDI2E, the representation) or stage2 (MSDI-Net)', run: async (a) => (await import('./commands/train.js')).trainCommand(a) },
  export: { summary: 'network weights of a training run or checkpoint, optionally float16', run: async (a) => (await import('./commands/export.js')).exportCommand(a) },
  serve: { summary: 'the web page and HTTP API on this machine (deblur, blur transfer, degradation map)', run: async (a) => (await import('./commands/serve.js')).serveCommand(a) },
  bench: { summary: 'speed against PyTorch on this machine (npm run bench)', run: async (a) => (await import('./commands/bench.js')).bench(a) },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(12)} ${c.summary}`);
  return ['usage: msdi <command> [options]', '', 'commands:', ...rows, '', 'msdi <command> --help for its options'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`msdi: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
    return 2;
  }
  try {
    await cmd.run(rest);
    return 0;
  } catch (e) {
    const err = e as Error;
    console.error(`msdi ${name}: ${String(err.message ?? err).split('\n')[0]}`);
    if (process.env.MSDI_DEBUG) console.error(err.stack);
    return err instanceof UsageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
