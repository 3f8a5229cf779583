/** Parameter initialisation as torch's defaults, drawn from libtorch's seeded generator. */
import { Tensor, tidy, F } from '../engine/index.js';

/** U(-1/sqrt(fanIn), 1/sqrt(fanIn)): torch's kaiming_uniform(a = sqrt(5)) for conv weights and biases. */
export function uniformInit(shape: number[], fanIn: number): Tensor {
  const bound = 1 / Math.sqrt(Math.max(1, fanIn));
  return tidy(() => Tensor.rand(shape).mul(2 * bound).sub(bound));
}

/** A random unit vector, as spectral_norm initialises u and v. */
export function normalVector(n: number): Tensor {
  return tidy(() => F.normalize(Tensor.randn([n]), { dim: 0, eps: 1e-12 }));
}
