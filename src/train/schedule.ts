/** CosineAnnealingLR as BasicSR uses it: lr(t) = etaMin + (lr0 - etaMin) (1 + cos(pi t / T)) / 2. */
export function cosineLr(step: number, lr0: number, etaMin: number, tMax: number): number {
  const t = Math.min(step, tMax);
  return etaMin + ((lr0 - etaMin) * (1 + Math.cos((Math.PI * t) / tMax))) / 2;
}
