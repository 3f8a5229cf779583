/** Process-wide engine settings: threads, seeds, devices. */
import { readFileSync } from 'node:fs';
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
  if (type === 'cpu' && dtype === 'bfloat16') warnIfBf16Emulated();
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

/**
 * Whether a CPU described by /proc/cpuinfo's text has bfloat16 arithmetic: x86 AVX-512 BF16 or
 * AMX BF16 in its "flags", or BF16 in an Arm CPU's "Features". null: no such line to tell from.
 */
export function cpuinfoHasBf16(cpuinfo: string): boolean | null {
  const line = /^(flags|Features)\s*:(.*)$/m.exec(cpuinfo);
  if (!line) return null;
  const features = new Set(line[2]!.trim().split(/\s+/));
  return line[1] === 'flags' ? features.has('avx512_bf16') || features.has('amx_bf16') : features.has('bf16');
}

let bf16Warned = false;

/**
 * Without bfloat16 instructions oneDNN emulates bf16 convolutions: about 10x the float32 time
 * (a 3x3 convolution, 32 -> 32 channels on 4 x 32 x 128 x 128, on an AMD EPYC without AVX-512),
 * where a CPU that has them takes about 0.6x. Said once per process, as a Node warning.
 */
function warnIfBf16Emulated(): void {
  if (bf16Warned) return;
  bf16Warned = true;
  let info = '';
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return; // not Linux: nothing to tell from
  }
  if (cpuinfoHasBf16(info) === false) {
    process.emitWarning('this CPU has no bfloat16 instructions (AVX-512 BF16 or AMX): amp bf16 is emulated and runs about 10x slower than float32; use amp off', { code: 'MSDI_BF16_EMULATED' });
  }
}
