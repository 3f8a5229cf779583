/** Small helpers shared by the CLI commands: argument parsing and one-line usage errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Amp } from '../engine/index.js';

/** A mistake in how the command was called: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Parsed {
  values: Record<string, string | boolean | undefined> & { [k: string]: any };
  positionals: string[];
}

export function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>, command: string): Parsed {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as Parsed;
  } catch (e) {
    throw new UsageError(`${command}: ${(e as Error).message.split('\n')[0]}`);
  }
}

export function intOption(value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`expected an integer >= ${min} for ${name}, got ${JSON.stringify(value)}`);
  return n;
}

/** --amp off|bf16 (mixed precision for the model's forward passes); default off. */
export function ampOption(value: string | undefined): Amp {
  if (value === undefined || value === 'off' || value === 'bf16') return value ?? 'off';
  throw new UsageError(`--amp: expected off or bf16, got ${JSON.stringify(value)}`);
}
