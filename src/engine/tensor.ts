/**
 * Tensor: one libtorch tensor, owned by exactly one JavaScript object.
 *
 * Native memory is explicit: `dispose()` frees it at once (idempotent), and `tidy(fn)`
 * frees every tensor created inside `fn` except those returned or `keep()`-ed (the scope
 * closes even when `fn` throws), as tfjs does. `Tensor.live` counts tensors not yet
 * disposed, so tests can assert that a loop does not leak.
 */
import { native, type Handle } from './native.js';
import { expected, ValidationError } from './errors.js';

export type DType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';
export type Device = string; // 'cpu' | 'cuda' | 'cuda:1'
export type Scalar = number;
export type Operand = Tensor | number;
export type TypedArrayFor = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array;

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

// ------------------------------------------------------------------ scopes

const scopes: Set<Tensor>[] = [];
let liveCount = 0;

function track(t: Tensor): void {
  liveCount++;
  const top = scopes[scopes.length - 1];
  if (top) top.add(t);
}

/** Removes `t` from every open scope: it survives them all and must be disposed by its owner. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Tensor>, seen = new Set<object>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (value instanceof Tensor) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out, seen);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, seen);
  }
}

/**
 * Runs `fn` in a scope: every tensor created inside is disposed when it returns, except
 * the tensors in its result (a tensor, or arrays / plain objects / maps of them), which move
 * to the enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new ValidationError('tidy: expected a synchronous function for fn, got an async one');
  }
  const kept = new Set<Tensor>();
  collect(result, kept);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Number of tensors created and not yet disposed (a leak detector for tests). */
export function liveTensors(): number {
  return liveCount;
}

// ------------------------------------------------------------------ the tensor

function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

function operand(x: Operand): Handle | number {
  return isTensor(x) ? x.handle : x;
}

const VIEW_FOR: Record<DType, { new (n: number): ArrayBufferView; name: string }> = {
  float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array,
  float16: Uint16Array, bfloat16: Uint16Array, uint8: Uint8Array, bool: Uint8Array,
};

const BYTES: Record<DType, number> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, uint8: 1, bool: 1,
};

export class Tensor {
  #handle: Handle | null;
  #meta: { shape: number[]; dtype: DType; device: Device } | null = null;

  /** Wraps a native handle; the new Tensor owns it. */
  constructor(handle: Handle) {
    this.#handle = handle;
    track(this);
  }

  get handle(): Handle {
    if (this.#handle === null) throw new ValidationError('Tensor: expected a live tensor for this, got one already disposed');
    return this.#handle;
  }

  get disposed(): boolean {
    return this.#handle === null;
  }

  dispose(): void {
    if (this.#handle === null) return;
    native.free(this.#handle);
    this.#handle = null;
    liveCount--;
  }

  private get meta() {
    const h = this.handle; // throws once disposed, even when the metadata is cached
    if (!this.#meta) this.#meta = native.meta(h) as { shape: number[]; dtype: DType; device: Device };
    return this.#meta;
  }
  get shape(): number[] { return this.meta.shape.slice(); }
  get dtype(): DType { return this.meta.dtype; }
  get device(): Device { return this.meta.device; }
  get ndim(): number { return this.meta.shape.length; }
  get numel(): number { return this.meta.shape.reduce((a, b) => a * b, 1); }
  size(dim: number): number {
    const s = this.meta.shape;
    return s[dim < 0 ? s.length + dim : dim];
  }

  // ---------------------------------------------------------------- creation

  static fromArray(data: ArrayLike<number> | TypedArrayFor, shape: number[], opts: CreateOptions = {}): Tensor {
    const dtype = opts.dtype ?? 'float32';
    checkShape('Tensor.fromArray', shape);
    let view: ArrayBufferView;
    if (ArrayBuffer.isView(data)) {
      // Raw bytes (Uint8Array) suit any dtype; otherwise the array's element type must be the dtype's.
      if (!(data instanceof Uint8Array) && !(data instanceof VIEW_FOR[dtype])) {
        throw expected('Tensor.fromArray', `a ${VIEW_FOR[dtype].name} or a raw Uint8Array (dtype ${dtype})`, 'data', data.constructor.name);
      }
      view = data;
    } else if (dtype === 'float32') {
      view = Float32Array.from(data as ArrayLike<number>);
    } else if (dtype === 'float64') {
      view = Float64Array.from(data as ArrayLike<number>);
    } else if (dtype === 'int32') {
      view = Int32Array.from(data as ArrayLike<number>);
    } else if (dtype === 'int64') {
      view = BigInt64Array.from(Array.from(data as ArrayLike<number>, (v) => BigInt(Math.trunc(v))));
    } else if (dtype === 'uint8' || dtype === 'bool') {
      view = Uint8Array.from(data as ArrayLike<number>);
    } else {
      throw expected('Tensor.fromArray', 'a Uint16Array of raw bits', 'data of a 16-bit tensor', typeof data);
    }
    const need = shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    if (view.byteLength !== need) {
      throw expected('Tensor.fromArray', `${need} bytes for shape [${shape.join(', ')}] ${dtype}`, 'data', `${view.byteLength} bytes`);
    }
    const t = new Tensor(native.fromBuffer(view, shape, dtype, opts.device ?? 'cpu'));
    if (opts.requiresGrad) t.requiresGrad_(true);
    return t;
  }

  static scalar(v: number, opts: CreateOptions = {}): Tensor {
    return Tensor.full([], v, opts);
  }
  static zeros(shape: number[], opts: CreateOptions = {}): Tensor {
    return create('zeros', shape, opts);
  }
  static ones(shape: number[], opts: CreateOptions = {}): Tensor {
    return create('ones', shape, opts);
  }
  static randn(shape: number[], opts: CreateOptions = {}): Tensor {
    return create('randn', shape, opts);
  }
  static rand(shape: number[], opts: CreateOptions = {}): Tensor {
    return create('rand', shape, opts);
  }
  static full(shape: number[], value: number, opts: CreateOptions = {}): Tensor {
    checkShape('Tensor.full', shape);
    const t = new Tensor(native.full(shape, opts.dtype ?? 'float32', opts.device ?? 'cpu', value));
    if (opts.requiresGrad) t.requiresGrad_(true);
    return t;
  }
  static arange(start: number, end: number, step = 1, opts: CreateOptions = {}): Tensor {
    return new Tensor(native.arange(start, end, step, opts.dtype ?? 'float32', opts.device ?? 'cpu'));
  }

  // ---------------------------------------------------------------- data out

  /** Contiguous CPU copy as a typed array matching the dtype (16-bit floats: raw Uint16 bits). */
  data(): TypedArrayFor {
    const buf = native.toBuffer(this.handle);
    switch (this.dtype) {
      case 'float32': return new Float32Array(buf);
      case 'float64': return new Float64Array(buf);
      case 'int32': return new Int32Array(buf);
      case 'int64': return new BigInt64Array(buf);
      case 'float16':
      case 'bfloat16': return new Uint16Array(buf);
      default: return new Uint8Array(buf);
    }
  }
  /** Contiguous CPU copy converted to float32. */
  toFloat32(): Float32Array {
    if (this.dtype === 'float32') return this.data() as Float32Array;
    return tidy(() => this.to({ dtype: 'float32' }).data() as Float32Array);
  }
  /** Raw little-endian bytes of the contiguous CPU copy. */
  bytes(): Uint8Array {
    return new Uint8Array(native.toBuffer(this.handle));
  }
  item(): number {
    return native.item(this.handle);
  }
  /** Nested JavaScript arrays (for small tensors and tests). */
  toArray(): unknown {
    const flat = Array.from(this.toFloat32());
    const shape = this.shape;
    const build = (offset: number, dim: number): unknown => {
      if (dim === shape.length) return flat[offset];
      const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: shape[dim] }, (_, i) => build(offset + i * stride, dim + 1));
    };
    return build(0, 0);
  }

  to(opts: { dtype?: DType; device?: Device }): Tensor {
    return new Tensor(native.to(this.handle, opts.dtype ?? null, opts.device ?? null));
  }

  // ---------------------------------------------------------------- elementwise

  add(o: Operand): Tensor { return new Tensor(native.add(this.handle, operand(o))); }
  sub(o: Operand): Tensor { return new Tensor(native.sub(this.handle, operand(o))); }
  mul(o: Operand): Tensor { return new Tensor(native.mul(this.handle, operand(o))); }
  div(o: Operand): Tensor { return new Tensor(native.div(this.handle, operand(o))); }
  /** this + o * s, in one kernel. */
  addScaled(o: Tensor, s: number): Tensor { return new Tensor(native.addScaled(this.handle, o.handle, s)); }
  maximum(o: Operand): Tensor { return new Tensor(native.maximum(this.handle, operand(o))); }
  pow(e: Operand): Tensor { return new Tensor(native.pow(this.handle, operand(e))); }
  eq(o: Operand): Tensor { return new Tensor(native.eq(this.handle, operand(o))); }
  gt(o: Operand): Tensor { return new Tensor(native.gt(this.handle, operand(o))); }
  lt(o: Operand): Tensor { return new Tensor(native.lt(this.handle, operand(o))); }
  matmul(o: Tensor): Tensor { return new Tensor(native.matmul(this.handle, o.handle)); }
  neg(): Tensor { return new Tensor(native.neg(this.handle)); }
  abs(): Tensor { return new Tensor(native.abs(this.handle)); }
  log(): Tensor { return new Tensor(native.log(this.handle)); }
  exp(): Tensor { return new Tensor(native.exp(this.handle)); }
  sqrt(): Tensor { return new Tensor(native.sqrt(this.handle)); }
  rsqrt(): Tensor { return new Tensor(native.rsqrt(this.handle)); }
  sigmoid(): Tensor { return new Tensor(native.sigmoid(this.handle)); }
  tanh(): Tensor { return new Tensor(native.tanh(this.handle)); }
  relu(): Tensor { return new Tensor(native.relu(this.handle)); }
  sign(): Tensor { return new Tensor(native.sign(this.handle)); }
  round(): Tensor { return new Tensor(native.round(this.handle)); }
  floor(): Tensor { return new Tensor(native.floor(this.handle)); }
  leakyRelu(slope = 0.01): Tensor { return new Tensor(native.leakyRelu(this.handle, slope)); }
  clamp(min: number | null, max: number | null = null): Tensor {
    return new Tensor(native.clamp(this.handle, min, max));
  }
  clone(): Tensor { return new Tensor(native.clone(this.handle)); }
  contiguous(): Tensor { return new Tensor(native.contiguous(this.handle)); }
  /** A 4-D tensor laid out NHWC in memory (same shape and values); no copy when it already is. */
  channelsLast(): Tensor { return new Tensor(native.contiguousAs(this.handle, true)); }
  /** Re-lays this 4-D tensor out NHWC in place (same tensor for autograd and optimisers). */
  setChannelsLast_(): this { native.setChannelsLast(this.handle); return this; }
  /** Moves this tensor to `device` in place (same handle, parameters stay parameters). */
  moveTo_(device: Device): this {
    native.moveTo(this.handle, device);
    this.#meta = null;
    return this;
  }
  /** True when this 4-D tensor is laid out NHWC (and not also NCHW, as 1x1 images are). */
  get isChannelsLast(): boolean { return native.isChannelsLast(this.handle); }
  detach(): Tensor { return new Tensor(native.detach(this.handle)); }
  /** True when every element is finite (no NaN, no infinity). */
  allFinite(): boolean {
    return tidy(() => new Tensor(native.allFinite(this.handle)).item() !== 0);
  }
  where(cond: Tensor, other: Tensor): Tensor {
    return new Tensor(native.where(cond.handle, this.handle, other.handle));
  }

  // ---------------------------------------------------------------- reductions

  sum(dims?: number[] | number, keepdim = false): Tensor { return this.reduce('sum', dims, keepdim); }
  mean(dims?: number[] | number, keepdim = false): Tensor { return this.reduce('mean', dims, keepdim); }
  max(dims?: number[] | number, keepdim = false): Tensor { return this.reduce('max', dims, keepdim); }
  min(dims?: number[] | number, keepdim = false): Tensor { return this.reduce('min', dims, keepdim); }
  /** Population variance (unbiased = false). */
  var(dims?: number[] | number, keepdim = false): Tensor { return this.reduce('var', dims, keepdim); }
  argmax(dim: number, keepdim = false): Tensor { return new Tensor(native.argmax(this.handle, dim, keepdim)); }
  private reduce(kind: string, dims: number[] | number | undefined, keepdim: boolean): Tensor {
    const d = dims === undefined ? null : typeof dims === 'number' ? [dims] : dims;
    return new Tensor(native.reduce(this.handle, kind, d, keepdim));
  }

  // ---------------------------------------------------------------- shape

  reshape(shape: number[]): Tensor { return new Tensor(native.reshape(this.handle, shape)); }
  permute(dims: number[]): Tensor { return new Tensor(native.permute(this.handle, dims)); }
  transpose(a: number, b: number): Tensor {
    const dims = Array.from({ length: this.ndim }, (_, i) => i);
    const n = this.ndim;
    const ia = a < 0 ? n + a : a;
    const ib = b < 0 ? n + b : b;
    [dims[ia], dims[ib]] = [dims[ib], dims[ia]];
    return this.permute(dims);
  }
  expand(shape: number[]): Tensor { return new Tensor(native.expand(this.handle, shape)); }
  flip(dims: number[]): Tensor { return new Tensor(native.flip(this.handle, dims)); }
  rot90(k: number, dims: [number, number] = [-2, -1]): Tensor { return new Tensor(native.rot90(this.handle, k, dims)); }
  /** Elements start..end (exclusive, negative counts from the end) along `dim`. */
  slice(dim: number, start: number, end = Number.MAX_SAFE_INTEGER, step = 1): Tensor {
    return new Tensor(native.slice(this.handle, dim, start, end, step));
  }
  chunk(n: number, dim = 0): Tensor[] { return native.chunk(this.handle, n, dim).map((h) => new Tensor(h)); }
  unsqueeze(dim: number): Tensor {
    const s = this.shape;
    s.splice(dim < 0 ? s.length + 1 + dim : dim, 0, 1);
    return this.reshape(s);
  }
  squeeze(dim: number): Tensor {
    const s = this.shape;
    const d = dim < 0 ? s.length + dim : dim;
    if (s[d] !== 1) return this.reshape(s);
    s.splice(d, 1);
    return this.reshape(s);
  }
  flatten(): Tensor { return this.reshape([-1]); }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.indexSelect(this.handle, dim, index.handle));
  }

  // ---------------------------------------------------------------- autograd

  requiresGrad_(on = true): this {
    native.setRequiresGrad(this.handle, on);
    return this;
  }
  get requiresGrad(): boolean { return native.requiresGrad(this.handle); }
  backward(grad?: Tensor): void { native.backward(this.handle, grad ? grad.handle : null); }
  /** The accumulated gradient (a new Tensor sharing its storage), or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g ? new Tensor(g) : null;
  }
  zeroGrad(): void { native.zeroGrad(this.handle); }
  /** Copies `src` into this tensor in place, outside autograd. */
  copy_(src: Tensor): this {
    native.copyInto(this.handle, src.handle);
    return this;
  }

  toString(): string {
    return this.disposed ? 'Tensor(disposed)' : `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device})`;
  }
}

function create(kind: 'zeros' | 'ones' | 'randn' | 'rand', shape: number[], opts: CreateOptions): Tensor {
  checkShape(`Tensor.${kind}`, shape);
  const t = new Tensor(native[kind](shape, opts.dtype ?? 'float32', opts.device ?? 'cpu'));
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

function checkShape(what: string, shape: number[]): void {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw expected(what, 'an array of non-negative integers', 'shape', shape);
  }
}

// ------------------------------------------------------------------ free functions

export function cat(ts: Tensor[], dim = 0): Tensor {
  return new Tensor(native.cat(ts.map((t) => t.handle), dim));
}
export function stack(ts: Tensor[], dim = 0): Tensor {
  return new Tensor(native.stack(ts.map((t) => t.handle), dim));
}

/** Disposes every tensor found in `value` (a tensor, arrays / objects / maps of them). */
export function disposeAll(value: unknown): void {
  const s = new Set<Tensor>();
  collect(value, s);
  for (const t of s) t.dispose();
}
