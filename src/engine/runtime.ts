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
