/**
 * Small seeded PRNG for reproducible data synthesis: xoshiro128** (Blackman & Vigna), seeded
 * through splitmix32 so that any 32-bit seed (including 0) gives a well-mixed state.
 * Pure integer arithmetic: the same seed gives the same stream on every platform.
 * Never use Math.random in the data pipeline; derive per-sample generators with `deriveSeed`.
 */

/** splitmix32 step: returns [next state, output]. */
function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [state, z >>> 0];
}

/** Normalises a user seed (any finite number, possibly > 2^32 or negative) to a uint32. */
function seedToU32(seed: number): number {
  if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
  const s = Math.trunc(seed);
  // fold the high bits in so that seeds above 2^32 are not silently equal
  const lo = s >>> 0;
  const hi = Math.floor(s / 4294967296) >>> 0;
  return (lo ^ Math.imul(hi, 0x9e3779b1)) >>> 0;
}

/**
 * Mixes a base seed with any number of integer keys (e.g. a sample index) into a new uint32 seed.
 * deriveSeed(s, i) and deriveSeed(s, j) give unrelated streams for i != j.
 */
export function deriveSeed(seed: number, ...keys: number[]): number {
  let [st, h] = splitmix32(seedToU32(seed));
  for (const k of keys) {
    [st, h] = splitmix32((st ^ Math.imul(seedToU32(k) ^ h, 0x27d4eb2f)) | 0);
  }
  return h >>> 0;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    let st = seedToU32(seed) | 0;
    let out: number;
    [st, out] = splitmix32(st);
    this.s0 = out | 0;
    [st, out] = splitmix32(st);
    this.s1 = out | 0;
    [st, out] = splitmix32(st);
    this.s2 = out | 0;
    [st, out] = splitmix32(st);
    this.s3 = out | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next uint32 (xoshiro128**). */
  nextU32(): number {
    const s1 = this.s1;
    const t = s1 << 9;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r >>> 0;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  float(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** Log-uniform in [lo, hi) (lo, hi > 0). */
  logUniform(lo: number, hi: number): number {
    return Math.exp(this.uniform(Math.log(lo), Math.log(hi)));
  }

  /** Uniform integer in [lo, hi] (inclusive), unbiased. */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) {
      throw new Error(`Rng.int: bad range [${lo}, ${hi}]`);
    }
    const n = hi - lo + 1;
    if (n > 4294967296) throw new Error('Rng.int: range too large');
    // rejection sampling to avoid modulo bias
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return lo + (x % n);
  }

  /** true with probability p. */
  bool(p = 0.5): boolean {
    return this.float() < p;
  }

  /** Standard normal (Box-Muller, caches the second value). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * v;
    this.spareNormal = r * Math.sin(a);
    return r * Math.cos(a);
  }

  /** A random element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick: empty array');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** In-place Fisher-Yates shuffle; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const t = items[i] as T;
      items[i] = items[j] as T;
      items[j] = t;
    }
    return items;
  }

  /** A new independent generator seeded from this one (advances this stream). */
  fork(): Rng {
    return new Rng(deriveSeed(this.nextU32(), this.nextU32()));
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
