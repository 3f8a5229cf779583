/**
 * A multiply-accumulate counter over a forward pass. Conv layers report numel(output) x
 * (in/groups x k x k) while counting is on; everything else is free, as the paper's table counts.
 */
import type { Tensor } from '../engine/index.js';

let counter: { macs: number } | null = null;

export function countMacs(t: Tensor, perElement: number): void {
  if (counter) counter.macs += t.numel * perElement;
}

/** Runs `fn` and returns the MACs its convolutions performed. */
export function measureMacs(fn: () => void): number {
  const prev = counter;
  counter = { macs: 0 };
  try {
    fn();
    return counter.macs;
  } finally {
    counter = prev;
  }
}
