/** Gradient modes: no-grad and inference mode, scoped to a synchronous function. */
import { native } from './native.js';

/** Runs `fn` without recording operations for autograd. */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs `fn` with gradients explicitly enabled (inside a noGrad block, for example). */
export function enableGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(true);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/**
 * Runs `fn` in libtorch's inference mode: no autograd bookkeeping and no version counters,
 * the fastest way to evaluate. Tensors created inside can never join a graph later.
 */
export function inferenceMode<T>(fn: () => T): T {
  native.enterInference();
  try {
    return fn();
  } finally {
    native.exitInference();
  }
}

export function isGradEnabled(): boolean {
  const prev = native.setGradEnabled(true);
  native.setGradEnabled(prev);
  return prev;
}
