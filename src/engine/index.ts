/** The engine: libtorch tensors, autograd, optimisers and weights IO for TypeScript. */
export { Tensor, tidy, keep, liveTensors, cat, stack, disposeAll } from './tensor.js';
export type { DType, Device, Operand, CreateOptions } from './tensor.js';
export * as F from './functional.js';
export { noGrad, enableGrad, inferenceMode, isGradEnabled } from './autograd.js';
export { Adam, clipGradNorm, clipGradNormTensor } from './optim.js';
export type { AdamOptions, AdamParamState } from './optim.js';
export { setNumThreads, getNumThreads, manualSeed, cudaAvailable, cudnnBenchmark, withAutocast, ampDtype, cpuinfoHasBf16, exclusive, libtorchVersion, parallelInfo, resolveDevice, releaseFreeMemory } from './runtime.js';
export type { AutocastDType, Amp } from './runtime.js';
export { ValidationError, NativeError, expected } from './errors.js';
export { profileOps, type OpTime } from './profile.js';
