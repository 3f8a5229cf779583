/**
 * The local launcher of data-parallel training, after torchrun: starts `nproc` ranks of a script
 * on this machine (child_process.fork) with torchrun's environment variables, and watches them.
 *
 *  - global rank = nodeRank * nproc + localRank; WORLD_SIZE = nnodes * nproc.
 *  - each rank gets max(1, floor(cores / nproc)) intra-op threads (MSDI_THREADS), unless
 *    MSDI_THREADS is set already.
 *  - a rank that exits with an error, or is killed, stops the run: the others get SIGTERM (then
 *    SIGKILL after a grace period) and the launcher ends non-zero, naming the rank.
 *  - SIGINT / SIGTERM to the launcher go to every rank once (the ranks run in their own process
 *    group, so a Ctrl-C in a terminal is not delivered twice); the ranks agree to stop, rank 0
 *    writes a checkpoint, and the launcher ends by the same signal.
 *  - a rank whose launcher disappears stops itself (see watchLauncher).
 *
 * Nothing here loads libtorch: the launcher process only waits.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

export interface LaunchOptions {
  /** the module each rank runs, and its arguments */
  script: string;
  args: string[];
  /** ranks on this machine */
  nproc: number;
  /** machines in the run, and this one's index */
  nnodes?: number;
  nodeRank?: number;
  /** rank 0's machine and the rendezvous port (single machine: 127.0.0.1 and a free port) */
  masterAddr?: string;
  masterPort?: number;
  /** time between SIGTERM and SIGKILL when stopping the surviving ranks (ms, default 10 s) */
  graceMs?: number;
  /** where the launcher's own messages go (default stderr) */
  say?: (line: string) => void;
}

export interface LaunchResult {
  /** 0 when every rank succeeded */
  code: number;
  /** the signal the launcher was stopped by (forwarded to the ranks), if any */
  signal: NodeJS.Signals | null;
  /** the first rank that failed, and how */
  failed: { rank: number; code: number | null; signal: NodeJS.Signals | null } | null;
}

/**
 * The exit code of a rank that stopped because a collective failed, i.e. because of another rank
 * (see CollectiveError). The launcher names the rank that failed first for another reason.
 */
export const EXIT_COLLECTIVE = 3;

/** How long the launcher waits for the cause after a rank exits with EXIT_COLLECTIVE. */
const CAUSE_WAIT_MS = 3000;

/** torchrun's default rendezvous port. */
export const DEFAULT_MASTER_PORT = 29500;

/** A TCP port that is free on `host` right now. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Intra-op threads for each of `nproc` ranks sharing this machine's cores. */
export function threadsPerRank(nproc: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / nproc));
}

function describeExit(rank: number, code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `rank ${rank} was killed by ${signal}` : `rank ${rank} exited with code ${code}`;
}

export async function launch(o: LaunchOptions): Promise<LaunchResult> {
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  const world = nnodes * o.nproc;
  const masterAddr = o.masterAddr ?? '127.0.0.1';
  const masterPort = o.masterPort ?? (nnodes === 1 ? await freePort(masterAddr) : DEFAULT_MASTER_PORT);
  const say = o.say ?? ((line: string) => console.error(line));
  const threads = process.env.MSDI_THREADS || String(threadsPerRank(o.nproc));
  const graceMs = o.graceMs ?? 10_000;

  const children: ChildProcess[] = [];
  let failed: LaunchResult['failed'] = null; // the first rank that failed on its own
  let consequence: LaunchResult['failed'] = null; // the first that failed because of another
  let signal: NodeJS.Signals | null = null;
  let stopping = false;
  const timers: NodeJS.Timeout[] = [];
  let running = 0;

  const alive = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
  const stopOthers = () => {
    if (stopping) return;
    stopping = true;
    for (const c of alive()) c.kill('SIGTERM');
    timers.push(setTimeout(() => alive().forEach((c) => c.kill('SIGKILL')), graceMs));
  };
  const onSignal = (sig: NodeJS.Signals) => {
    signal = sig;
    for (const c of alive()) c.kill(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await new Promise<void>((resolve) => {
      for (let local = 0; local < o.nproc; local++) {
        const rank = nodeRank * o.nproc + local;
        const env = {
          ...process.env,
          RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: String(o.nproc),
          GROUP_RANK: String(nodeRank), MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort), MSDI_THREADS: threads,
        };
        const child = fork(o.script, o.args, { env, detached: true, stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
        running++;
        children.push(child);
        child.on('error', (e) => say(`msdi train: rank ${rank}: ${e.message}`));
        child.on('exit', (code, sig) => {
          running--;
          // Success, the end the launcher asked for by forwarding a signal, or its own stop.
          const ok = code === 0 || (signal !== null && sig === signal) || (stopping && sig !== null);
          if (!ok && code === EXIT_COLLECTIVE) {
            // Another rank is the cause: give it a moment to exit and be named.
            consequence ??= { rank, code, signal: sig };
            timers.push(setTimeout(stopOthers, CAUSE_WAIT_MS));
          } else if (!ok && !failed) {
            failed = { rank, code, signal: sig };
            say(`msdi train: ${describeExit(rank, code, sig)}; stopping the other ranks`);
            stopOthers();
          }
          if (running === 0) resolve();
        });
      }
    });
  } finally {
    timers.forEach(clearTimeout);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const f = (failed ?? consequence) as LaunchResult['failed'];
  return { code: f ? 1 : 0, signal, failed: f };
}

/**
 * In a rank started by launch(): ends this process when the launcher goes away (its IPC channel
 * closes), so that ranks never outlive a launcher that was killed.
 */
export function watchLauncher(rank: number): void {
  if (!process.send) return;
  process.on('disconnect', () => {
    console.error(`msdi train: rank ${rank}: the launcher went away; stopping`);
    process.exit(1);
  });
  process.channel?.unref(); // the channel must not keep a finished rank alive
}
