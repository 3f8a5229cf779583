/** Process-wide engine settings: threads, seeds, devices. */
import { availableParallelism } from 'node:os';
import { native } from './native.js';
import { expected } from './errors.js';

export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw expected('setNumThreads', 'a positive integer', 'n', n);
  native.setNumThreads(n);
}
export const getNumThreads = (): number => native.getNumThreads();
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) throw expected('manualSeed', 'a non-negative integer', 'seed', seed);
  native.manualSeed(seed);
}
export const cudaAvailable = (): boolean => native.cudaAvailable();
/** cuDNN picks the fastest convolution algorithm per shape after timing them (CUDA only). */
export const cudnnBenchmark = (on: boolean): void => native.cudnnBenchmark(on);
/** The lower precisions that autocast can run in (bfloat16 needs no loss scaling). */
export type AutocastDType = 'bfloat16' | 'float16';
let autocastDepth = 0;
/** msdi's mixed-precision option, as configs (`"amp"`), `--amp` and the library spell it. */
export type Amp = 'off' | 'bf16';

/** The autocast dtype of an Amp (null: off, as is undefined); anything else throws, naming `what`. */
export function ampDtype(amp: Amp | undefined, what: string): AutocastDType | null {
  if (amp === undefined || amp === 'off') return null;
  if (amp === 'bf16') return 'bfloat16';
  throw new Error(`${what}: expected 'off' or 'bf16' for amp, got ${JSON.stringify(amp)}`);
}

/**
 * Runs fn under libtorch's autocast for `device`'s type: convolutions in `dtype`, precision-
 * sensitive ops in float32, weights kept float32. Outputs come back in mixed dtypes: cast them to
 * float32 before a loss. dtype null runs fn as it is. Nested calls keep the outer one's setting.
 */
export function withAutocast<T>(device: string, dtype: AutocastDType | null, fn: () => T): T {
  if (!dtype || autocastDepth > 0) return fn();
  if (dtype !== 'bfloat16' && dtype !== 'float16') throw expected('withAutocast', "'bfloat16' or 'float16'", 'dtype', dtype);
  const type = device.startsWith('cuda') ? 'cuda' : 'cpu';
  native.autocast(type, dtype);
  autocastDepth++;
  try {
    return fn();
  } finally {
    autocastDepth--;
    native.autocast(type, null);
  }
}

/**
 * Runs fn while no other thread of this process runs a model (re-entrant; other threads' calls
 * wait). The deblur, reblur and degradation-map entry points take it, so that JavaScript threads
 * (the server's model threads, a library user's workers) run their models one at a time: a
 * bfloat16 autocast run beside a float32 one corrupts the float32 results in libtorch 1.13 on the
 * CPU (native/msdi.cc), and two runs at once only share the same cores anyway.
 */
export function exclusive<T>(fn: () => T): T {
  native.exclusiveEnter();
  try {
    return fn();
  } finally {
    native.exclusiveExit();
  }
}
export const libtorchVersion = (): string => native.version();
export const parallelInfo = (): string => native.parallelInfo();
/** Hands freed heap memory back to the system (glibc malloc_trim); cheap next to a forward pass. */
export const releaseFreeMemory = (): void => native.releaseFreeMemory();

/** 'cuda' when requested and available, else 'cpu'; an explicit cuda request without CUDA fails. */
export function resolveDevice(requested?: string): string {
  if (!requested || requested === 'auto') return cudaAvailable() ? 'cuda' : 'cpu';
  if (requested.startsWith('cuda') && !cudaAvailable()) {
    throw expected('device', 'a device this libtorch supports (built without CUDA)', '--device', requested);
  }
  return requested;
}

// Use every core by default (libtorch may start with one intra-op thread); MSDI_THREADS overrides.
const fromEnv = Number(process.env.MSDI_THREADS);
native.setNumThreads(Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : availableParallelism());
