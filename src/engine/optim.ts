/** libtorch's own Adam, plus gradient-norm clipping, driven from TypeScript. */
import { native, type OptimHandle } from './native.js';
import { Tensor, keep } from './tensor.js';
import { expected } from './errors.js';

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** Per-parameter Adam state, in parameter order; tensors are copies owned by the caller. */
export interface AdamParamState {
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
}

export class Adam {
  #h: OptimHandle | null;
  readonly params: Tensor[];
  #lr: number;

  constructor(params: Tensor[], o: AdamOptions) {
    if (!(o.lr >= 0)) throw expected('Adam', 'a non-negative number', 'lr', o.lr);
    const [b1, b2] = o.betas ?? [0.9, 0.999];
    this.params = params;
    this.#lr = o.lr;
    this.#h = native.adamNew(params.map((p) => p.handle), o.lr, b1, b2, o.eps ?? 1e-8, o.weightDecay ?? 0);
  }

  private get h(): OptimHandle {
    if (!this.#h) throw expected('Adam', 'a live optimizer', 'this', 'disposed');
    return this.#h;
  }

  get lr(): number { return this.#lr; }
  set lr(v: number) {
    native.adamSetLr(this.h, v);
    this.#lr = v;
  }
  step(): void { native.adamStep(this.h); }
  zeroGrad(): void { native.adamZeroGrad(this.h); }

  /** Copies of the moment estimates and step counts (null for a parameter never stepped). */
  getState(): (AdamParamState | null)[] {
    return native.adamGetState(this.h).map((s) =>
      s ? { step: s.step, expAvg: keep(new Tensor(s.expAvg)), expAvgSq: keep(new Tensor(s.expAvgSq)) } : null);
  }
  setState(state: (AdamParamState | null)[]): void {
    if (state.length !== this.params.length) {
      throw expected('Adam.setState', `${this.params.length} entries`, 'state', `${state.length} entries`);
    }
    state.forEach((s, i) => {
      if (s) native.adamSetState(this.h, i, s.step, s.expAvg.handle, s.expAvgSq.handle);
    });
  }

  dispose(): void {
    if (this.#h) native.adamFree(this.#h);
    this.#h = null;
  }
}

/**
 * Scales gradients so their global L2 norm is at most maxNorm (Infinity: measures only); returns
 * the norm before, as a 0-dim tensor on the gradients' device, without waiting for it: on a GPU
 * the step goes on queueing work, and the norm is read when it is needed.
 */
export function clipGradNormTensor(params: Tensor[], maxNorm: number): Tensor {
  return new Tensor(native.clipGradNorm(params.map((p) => p.handle), maxNorm));
}

/** clipGradNormTensor, the norm read back as a number. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  const norm = clipGradNormTensor(params, maxNorm);
  try {
    return norm.item();
  } finally {
    norm.dispose();
  }
}
