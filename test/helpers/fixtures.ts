/** Access to the reference tensors made with the official code (../shared/fixtures). */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/engine/io/index.js';
import { rawToTensor } from '../../src/engine/raw.js';
import { Tensor, tidy } from '../../src/engine/index.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');
export const fixturePath = (name: string): string => join(FIXTURES, name);

export class Fixture {
  readonly raw;
  constructor(readonly name: string) {
    this.raw = readSafetensors(fixturePath(name)).tensors;
  }
  has(key: string): boolean {
    return this.raw.has(key);
  }
  keys(): string[] {
    return [...this.raw.keys()];
  }
  /** A new tensor (caller disposes, or call inside tidy). */
  tensor(key: string): Tensor {
    const r = this.raw.get(key);
    if (!r) throw new Error(`${this.name}: no tensor "${key}"`);
    return rawToTensor(r);
  }
  /** max |a - ref| */
  maxAbsDiff(a: Tensor, key: string): number {
    return tidy(() => a.sub(this.tensor(key)).abs().max().item());
  }
  /** max |a - ref| / max |ref| */
  relDiff(a: Tensor, key: string): number {
    return tidy(() => {
      const ref = this.tensor(key);
      const scale = Math.max(ref.abs().max().item(), 1e-12);
      return a.sub(ref).abs().max().item() / scale;
    });
  }
}
