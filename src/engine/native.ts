/**
 * Loads the N-API addon (native/msdi.cc) and wraps every entry point so that a libtorch
 * failure surfaces as a NativeError thrown from the caller's line.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeError } from './errors.js';

/** Opaque handle to a libtorch tensor owned by the addon. */
export type Handle = { readonly __tensorHandle: unique symbol };
/** Opaque handle to a libtorch Adam optimiser. */
export type OptimHandle = { readonly __optimHandle: unique symbol };
/** Opaque handle to a c10d process group (native/distributed.cc). */
export type GroupHandle = { readonly __groupHandle: unique symbol };
type Num = number;
type H = Handle;
type Operand = H | Num;
type MaybeH = H | null;

export interface NativeBinding {
  fromBuffer(data: ArrayBufferView, shape: Num[], dtype: string, device: string): H;
  toBuffer(t: H): ArrayBuffer;
  meta(t: H): { shape: Num[]; dtype: string; device: string };
  free(t: H): void;
  item(t: H): Num;
  zeros(shape: Num[], dtype: string, device: string): H;
  ones(shape: Num[], dtype: string, device: string): H;
  randn(shape: Num[], dtype: string, device: string): H;
  rand(shape: Num[], dtype: string, device: string): H;
  empty(shape: Num[], dtype: string, device: string): H;
  full(shape: Num[], dtype: string, device: string, value: Num): H;
  arange(start: Num, end: Num, step: Num, dtype: string, device: string): H;
  to(t: H, dtype: string | null, device: string | null): H;
  neg(t: H): H; abs(t: H): H; log(t: H): H; exp(t: H): H; sqrt(t: H): H; rsqrt(t: H): H;
  sigmoid(t: H): H; tanh(t: H): H; relu(t: H): H; sign(t: H): H; round(t: H): H; floor(t: H): H;
  clone(t: H): H; contiguous(t: H): H; detach(t: H): H; allFinite(t: H): H;
  leakyRelu(t: H, slope: Num): H;
  clamp(t: H, min: Num | null, max: Num | null): H;
  pow(t: H, e: Operand): H;
  add(a: H, b: Operand): H; sub(a: H, b: Operand): H; mul(a: H, b: Operand): H; div(a: H, b: Operand): H;
  maximum(a: H, b: Operand): H; eq(a: H, b: Operand): H; gt(a: H, b: Operand): H; lt(a: H, b: Operand): H;
  matmul(a: H, b: H): H;
  addScaled(a: H, b: H, s: Num): H;
  where(c: H, a: H, b: H): H;
  reduce(t: H, kind: string, dims: Num[] | null, keepdim: boolean): H;
  argmax(t: H, dim: Num, keepdim: boolean): H;
  reshape(t: H, shape: Num[]): H; permute(t: H, dims: Num[]): H; expand(t: H, shape: Num[]): H;
  flip(t: H, dims: Num[]): H; rot90(t: H, k: Num, dims: Num[]): H;
  slice(t: H, dim: Num, start: Num, end: Num, step: Num): H;
  chunk(t: H, n: Num, dim: Num): H[];
  cat(ts: H[], dim: Num): H; stack(ts: H[], dim: Num): H;
  indexSelect(t: H, dim: Num, index: H): H;
  conv2d(x: H, w: H, b: MaybeH, stride: Num[], padding: Num[], dilation: Num[], groups: Num): H;
  convTranspose2d(x: H, w: H, b: MaybeH, stride: Num[], padding: Num[], outputPadding: Num[], groups: Num, dilation: Num[]): H;
  convTranspose2x2(x: H, w: H, b: MaybeH): H;
  contiguousAs(t: H, channelsLast: boolean): H;
  profile(file: string | null): void;
  isChannelsLast(t: H): boolean;
  setChannelsLast(t: H): void;
  moveTo(t: H, device: string): void;
  instanceNorm(x: H, w: MaybeH, b: MaybeH, eps: Num): H;
  batchNorm(x: H, w: MaybeH, b: MaybeH, rm: MaybeH, rv: MaybeH, training: boolean, momentum: Num, eps: Num): H;
  pad(x: H, pads: Num[], mode: string, value: Num): H;
  interpolate(x: H, size: Num[], mode: string): H;
  avgPool2d(x: H, k: Num[], s: Num[], p: Num[], ceil: boolean, countIncludePad: boolean): H;
  normalize(x: H, p: Num, dim: Num, eps: Num): H;
  gridSample(x: H, grid: H, mode: string, padding: string): H;
  copyInto(dst: H, src: H): void;
  setRequiresGrad(t: H, on: boolean): void;
  requiresGrad(t: H): boolean;
  backward(t: H, grad: MaybeH): void;
  grad(t: H): H | null;
  zeroGrad(t: H): void;
  setGradEnabled(on: boolean): boolean;
  enterInference(): void;
  exitInference(): void;
  isInference(t: H): boolean;
  adamNew(params: H[], lr: Num, b1: Num, b2: Num, eps: Num, wd: Num): OptimHandle;
  adamStep(o: OptimHandle): void;
  adamSetLr(o: OptimHandle, lr: Num): void;
  adamZeroGrad(o: OptimHandle): void;
  adamFree(o: OptimHandle): void;
  adamGetState(o: OptimHandle): ({ step: Num; expAvg: H; expAvgSq: H } | null)[];
  adamSetState(o: OptimHandle, index: Num, step: Num, expAvg: H, expAvgSq: H): void;
  clipGradNorm(params: H[], maxNorm: Num): H;
  setNumThreads(n: Num): void;
  getNumThreads(): Num;
  manualSeed(seed: Num): void;
  cudaAvailable(): boolean;
  cudnnBenchmark(on: boolean): void;
  autocast(deviceType: 'cpu' | 'cuda', dtype: string | null): void;
  version(): string;
  parallelInfo(): string;
  releaseFreeMemory(): void;
  exclusiveEnter(): void;
  exclusiveExit(): void;
  provokeError(): void;
  // data parallel (native/distributed.cc): collectives are synchronous and in place
  distBackends(): string[];
  distInit(backend: string, addr: string, port: Num, rank: Num, world: Num, timeoutMs: Num, glooInterfaces: string[]): GroupHandle;
  distAllreduce(g: GroupHandle, ts: H[], op: 'sum' | 'avg' | 'max' | 'min'): void;
  distAllreduceGrads(g: GroupHandle, params: H[]): Num;
  distBroadcast(g: GroupHandle, ts: H[], root: Num): void;
  distBarrier(g: GroupHandle): void;
  distDestroy(g: GroupHandle): void;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function load(): NativeBinding {
  const file = join(root, 'build', 'Release', 'msdi_native.node');
  if (!existsSync(file)) {
    throw new Error(`msdi: the native addon is not built (${file} is missing); run "npm run build:native"`);
  }
  const raw = createRequire(import.meta.url)(file) as Record<string, (...a: unknown[]) => unknown>;
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(raw)) {
    wrapped[name] = (...args: unknown[]) => {
      try {
        return fn(...args);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        const err = new NativeError(msg.startsWith('libtorch:') ? msg : `libtorch: ${msg}`);
        Error.captureStackTrace?.(err, wrapped[name] as () => void);
        throw err;
      }
    };
  }
  return wrapped as unknown as NativeBinding;
}

export const native: NativeBinding = load();
