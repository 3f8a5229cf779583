/**
 * Error type for every problem found while reading or writing a weights file
 * (safetensors or torch checkpoint). The message is always a single line of
 * the form `<file>: <problem>`.
 */
import * as fs from 'node:fs';

export class WeightsFileError extends Error {
  /** The file the problem concerns, as the caller named it. */
  readonly file: string;
  /** The problem, without the file prefix. */
  readonly problem: string;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    // one line, no control characters (problems may quote bytes from a corrupt file)
    const oneLine = (s: string): string =>
      s
        .replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' ')
        // eslint-disable-next-line no-control-regex
        .replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
        .trim();
    const f = oneLine(file);
    const p = oneLine(problem);
    super(`${f}: ${p}`, options);
    this.name = 'WeightsFileError';
    this.file = f;
    this.problem = p;
  }
}

/** The bytes of a weights file; an unreadable file is a WeightsFileError naming it. */
export function readWeightsBytes(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new WeightsFileError(file, `cannot read file (${err.code ?? err.message})`, { cause: e });
  }
}
