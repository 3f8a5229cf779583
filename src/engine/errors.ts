/** Errors the engine raises. Messages are one line: `<what>: expected <x> for <name>, got <y>`. */

/** A caller passed an argument the engine cannot accept (checked in TypeScript, before libtorch). */
export class ValidationError extends Error {
  override name = 'ValidationError';
}

/** libtorch refused an operation; the message starts with `libtorch:` and is libtorch's own. */
export class NativeError extends Error {
  override name = 'NativeError';
}

/** Builds the one-line validation message used across msdi. */
export function expected(what: string, expectation: string, name: string, got: unknown): ValidationError {
  // Numbers, arrays and descriptions read as they are; other values also name their type.
  const shown = typeof got === 'string' ? JSON.stringify(got) : Array.isArray(got) ? `[${got.join(', ')}]` : String(got);
  const typed = typeof got === 'number' || typeof got === 'string' || Array.isArray(got) ? '' : ` of type ${got === null ? 'null' : typeof got}`;
  return new ValidationError(`${what}: expected ${expectation} for ${name}, got ${shown}${typed}`);
}
