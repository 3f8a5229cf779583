/** CosineAnnealingLR as BasicSR uses it: lr(t) = etaMin + (lr0 - etaMin) (1 + cos(pi t / T)) / 2. */
export function cosineLr(step: number, lr0: number, etaMin: number, tMax: number): number {
  const t = Math.min(step, tMax);
  return etaMin + ((lr0 - etaMin) * (1 + Math.cos((Math.PI * t) / tMax))) / 2;
}

/**
 * The cosine above after a linear warm-up: the rate rises from lr/warmup to the cosine's over the
 * first `warmup` steps. For runs started from trained weights with a fresh Adam, whose first
 * updates move every weight by about the rate whatever its gradient (its second moments are not
 * yet estimated). It did not keep CPU fine-tunes of the bundled network at batch 8 from losing
 * ground (training log, "5000 CPU steps with a warm-up"): their batches' noise does that.
 */
export function scheduledLr(step: number, lr0: number, etaMin: number, tMax: number, warmup: number): number {
  const lr = cosineLr(step, lr0, etaMin, tMax);
  return warmup > 0 && step < warmup ? (lr * (step + 1)) / warmup : lr;
}
