/**
 * Atomic file writes: the bytes go to a temporary file in the same folder, which is then
 * renamed (or hard-linked, when an existing file must not be replaced) into place, so a failed
 * or killed write never leaves a partial file under the final name.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { link, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

// Temporary files being written, removed if the process is interrupted meanwhile.
const pending = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
function onSignal(sig: NodeJS.Signals): void {
  for (const t of pending) rmSync(t, { force: true });
  pending.clear();
  process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as Record<string, number>)[sig]);
}
function track(tmp: string): void {
  if (pending.size === 0) for (const s of SIGNALS) process.on(s, onSignal);
  pending.add(tmp);
}
function untrack(tmp: string): void {
  pending.delete(tmp);
  if (pending.size === 0) for (const s of SIGNALS) process.off(s, onSignal);
}

/** Writes `data` to `path` through a temporary file in the same folder; refuses to replace a file unless `force`. */
export async function writeFileAtomic(path: string, data: Uint8Array, o: { force?: boolean } = {}): Promise<void> {
  const dir = dirname(path);
  if (!o.force && existsSync(path)) throw new Error(`${path}: already exists (--force to overwrite)`);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  track(tmp);
  try {
    await writeFile(tmp, data, { flag: 'wx' });
    if (o.force) {
      await rename(tmp, path);
    } else {
      // link() never replaces an existing file, unlike rename(): no race with another writer.
      try {
        await link(tmp, path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new Error(`${path}: already exists (--force to overwrite)`);
        if (existsSync(path)) throw new Error(`${path}: already exists (--force to overwrite)`);
        await rename(tmp, path); // file systems without hard links
      }
    }
  } finally {
    await rm(tmp, { force: true });
    untrack(tmp);
  }
}

/**
 * Synchronously replaces a small file that a program rewrites in place (a run's log, config or
 * plot): the text goes to PATH.tmp, renamed over `path`, so a kill never leaves it half-written.
 * A PATH.tmp left by a kill is overwritten by the next call.
 */
export function replaceFileSync(path: string, text: string): void {
  writeFileSync(path + '.tmp', text);
  renameSync(path + '.tmp', path);
}
