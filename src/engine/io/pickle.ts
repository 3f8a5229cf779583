/**
 * A SAFE pickle interpreter for torch.save's data.pkl: it never executes anything.
 * GLOBAL/STACK_GLOBAL names are checked against an allow-list (OrderedDict, the torch tensor
 * rebuild functions and the storage classes) and every other name is refused; tensors are
 * rebuilt from their storages with bounded sizes.
 */
import { WeightsFileError } from './errors.js';
import { itemSize, type DType, type RawTensor } from './raw-tensor.js';

/** Largest tensor (in bytes) a checkpoint may rebuild. */
const MAX_TENSOR_BYTES = 2 ** 31 - 1;
/** Strided (non-contiguous) tensors may be at most this large, or this many times their storage. */
const MAX_GATHER_FLOOR = 64 * 2 ** 20;
const MAX_GATHER_RATIO = 64;
/** Largest integer encoded by LONG1/LONG4 we accept (bytes). */
const MAX_LONG_BYTES = 256;
/** Longest GLOBAL module/name line. */
const MAX_GLOBAL_LINE = 1024;

export class Tuple {
  constructor(readonly items: PyValue[]) {}
}
export class PyDict {
  readonly map = new Map<unknown, PyValue>();
  /** State given by BUILD (e.g. OrderedDict._metadata); kept, never interpreted. */
  state: PyValue = null;
}
class PySet {
  constructor(readonly items: PyValue[]) {}
}
type GlobalKind =
  | 'ordered_dict'
  | 'rebuild_tensor_v2'
  | 'rebuild_parameter'
  | 'rebuild_parameter_with_state'
  | 'rebuild_from_type_v2'
  | 'tensor_class'
  | 'storage';
export class PyGlobal {
  constructor(
    readonly fullName: string,
    readonly kind: GlobalKind,
    readonly dtype?: DType,
  ) {}
}
export class Storage {
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly bytes: Uint8Array,
  ) {}
}
export class Tensor {
  constructor(readonly raw: RawTensor) {}
}
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Tuple
  | PyValue[]
  | PyDict
  | PySet
  | PyGlobal
  | Storage
  | Tensor;

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  BFloat16Storage: 'BF16',
};

const ALLOWED_GLOBALS = new Map<string, PyGlobal>();
{
  const add = (full: string, kind: GlobalKind, dtype?: DType): void => {
    ALLOWED_GLOBALS.set(full, new PyGlobal(full, kind, dtype));
  };
  add('collections.OrderedDict', 'ordered_dict');
  add('torch._utils._rebuild_tensor_v2', 'rebuild_tensor_v2');
  add('torch._utils._rebuild_parameter', 'rebuild_parameter');
  add('torch._utils._rebuild_parameter_with_state', 'rebuild_parameter_with_state');
  add('torch._tensor._rebuild_from_type_v2', 'rebuild_from_type_v2');
  add('torch.Tensor', 'tensor_class');
  add('torch.nn.parameter.Parameter', 'tensor_class');
  for (const [cls, dt] of Object.entries(STORAGE_DTYPES)) add(`torch.${cls}`, 'storage', dt);
  add('torch.storage.UntypedStorage', 'storage', 'U8');
  add('torch.UntypedStorage', 'storage', 'U8');
}

export function typeName(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'bigint') return 'huge integer';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof Tuple) return 'tuple';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyDict) return 'dict';
  if (v instanceof PySet) return 'set';
  if (v instanceof PyGlobal) return `global "${v.fullName}"`;
  if (v instanceof Storage) return 'storage';
  if (v instanceof Tensor) return 'tensor';
  return 'object';
}

export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\x00-\x1f\x7f"\\]/g, '?');
  return t.length > 200 ? t.slice(0, 200) + '...' : t;
}

export interface Unpickler {
  /** Resolves a persistent id (BINPERSID) to a value. */
  persistentLoad(pid: PyValue): PyValue;
}

export class PickleMachine {
  private pos = 0;
  private stack: PyValue[] = [];
  private marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private readonly dv: DataView;
  private readonly utf8 = new TextDecoder('utf-8');
  private opStart = 0;

  constructor(
    private readonly data: Uint8Array,
    private readonly file: string,
    private readonly entry: string,
    private readonly host: Unpickler,
  ) {
    this.dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  fail(problem: string): never {
    throw new WeightsFileError(this.file, `malformed pickle ${this.entry} at byte ${this.opStart}: ${problem}`);
  }

  private need(n: number): number {
    if (!(n >= 0) || this.pos + n > this.data.length) this.fail('unexpected end of data (truncated pickle)');
    const p = this.pos;
    this.pos += n;
    return p;
  }
  private u8(): number {
    return this.data[this.need(1)];
  }
  private u16(): number {
    return this.dv.getUint16(this.need(2), true);
  }
  private u32(): number {
    return this.dv.getUint32(this.need(4), true);
  }
  private i32(): number {
    return this.dv.getInt32(this.need(4), true);
  }
  private u64(): number {
    const v = this.dv.getBigUint64(this.need(8), true);
    if (v > BigInt(this.data.length)) this.fail(`length ${v} exceeds the pickle size`);
    return Number(v);
  }
  private bytes(n: number): Uint8Array {
    const p = this.need(n);
    return this.data.subarray(p, p + n);
  }
  private line(): string {
    const start = this.pos;
    const limit = Math.min(this.data.length, start + MAX_GLOBAL_LINE);
    let i = start;
    while (i < limit && this.data[i] !== 0x0a) i++;
    if (i >= limit) this.fail('unterminated text line');
    this.pos = i + 1;
    return this.utf8.decode(this.data.subarray(start, i));
  }

  private push(v: PyValue): void {
    this.stack.push(v);
  }
  private pop(): PyValue {
    const floor = this.marks.length ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length <= floor) this.fail('stack underflow');
    return this.stack.pop() as PyValue;
  }
  private top(): PyValue {
    const floor = this.marks.length ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length <= floor) this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }
  private popMark(): PyValue[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail('no MARK on the stack');
    return this.stack.splice(m);
  }
  private memoGet(i: number): PyValue {
    if (!this.memo.has(i)) this.fail(`memo entry ${i} is missing`);
    return this.memo.get(i) as PyValue;
  }
  private memoPut(i: number): void {
    this.memo.set(i, this.top());
  }

  private resolveGlobal(module: string, name: string): PyGlobal {
    const full = `${module}.${name}`;
    const g = ALLOWED_GLOBALS.get(full);
    if (!g) throw new WeightsFileError(this.file, `forbidden global "${printable(full)}" in pickle; refusing to load`);
    return g;
  }

  private decodeLong(b: Uint8Array): number | bigint {
    if (b.length === 0) return 0;
    if (b.length > MAX_LONG_BYTES) this.fail(`integer of ${b.length} bytes is too large`);
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  private call(fn: PyValue, args: PyValue): PyValue {
    if (!(fn instanceof PyGlobal)) this.fail(`cannot call a ${typeName(fn)}`);
    if (!(args instanceof Tuple)) this.fail(`arguments for "${fn.fullName}" must be a tuple, got ${typeName(args)}`);
    const a = args.items;
    switch (fn.kind) {
      case 'ordered_dict': {
        const d = new PyDict();
        if (a.length > 1) this.fail('OrderedDict() takes at most one argument');
        if (a.length === 1) {
          const src = a[0];
          if (src instanceof PyDict) for (const [k, v] of src.map) d.map.set(k, v);
          else if (Array.isArray(src) || src instanceof Tuple) {
            for (const pair of Array.isArray(src) ? src : src.items) {
              const kv = pair instanceof Tuple ? pair.items : Array.isArray(pair) ? pair : null;
              if (!kv || kv.length !== 2) this.fail('OrderedDict() argument items must be pairs');
              d.map.set(kv[0], kv[1]);
            }
          } else this.fail(`OrderedDict() cannot be built from a ${typeName(src)}`);
        }
        return d;
      }
      case 'rebuild_tensor_v2':
        return this.rebuildTensor(a);
      case 'rebuild_parameter':
      case 'rebuild_parameter_with_state':
        if (a.length < 1 || !(a[0] instanceof Tensor)) this.fail(`"${fn.fullName}" expects a tensor, got ${typeName(a[0])}`);
        return a[0];
      case 'rebuild_from_type_v2': {
        // (func, new_type, args, state): only rebuild functions, only tensor classes
        if (a.length < 3) this.fail(`"${fn.fullName}" expects (func, new_type, args, state)`);
        const [func, newType, inner] = a;
        if (!(newType instanceof PyGlobal) || newType.kind !== 'tensor_class') this.fail(`"${fn.fullName}" new_type must be a tensor class`);
        if (
          !(func instanceof PyGlobal) ||
          !(func.kind === 'rebuild_tensor_v2' || func.kind === 'rebuild_parameter' || func.kind === 'rebuild_parameter_with_state')
        ) {
          this.fail(`"${fn.fullName}" func must be a tensor rebuild function`);
        }
        return this.call(func, inner);
      }
      default:
        return this.fail(`"${fn.fullName}" cannot be called`);
    }
  }

  private int(v: PyValue, what: string): number {
    if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
    return this.fail(`${what} must be an integer, got ${typeName(v)}${typeof v === 'number' ? ` ${v}` : ''}`);
  }

  private intTuple(v: PyValue, what: string): number[] {
    if (!(v instanceof Tuple)) this.fail(`${what} must be a tuple, got ${typeName(v)}`);
    return v.items.map((x, i) => {
      const n = this.int(x, `${what}[${i}]`);
      if (n < 0) this.fail(`${what}[${i}] is negative (${n})`);
      return n;
    });
  }

  /** torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
  private rebuildTensor(a: PyValue[]): Tensor {
    if (a.length < 4 || a.length > 7) this.fail(`_rebuild_tensor_v2 expects 4 to 7 arguments, got ${a.length}`);
    const storage = a[0];
    if (!(storage instanceof Storage)) this.fail(`_rebuild_tensor_v2 expects a storage, got ${typeName(storage)}`);
    const offset = this.int(a[1], 'storage_offset');
    if (offset < 0) this.fail(`storage_offset is negative (${offset})`);
    const size = this.intTuple(a[2], 'size');
    const stride = this.intTuple(a[3], 'stride');
    if (size.length !== stride.length) this.fail(`size has ${size.length} dims but stride has ${stride.length}`);
    const isz = itemSize(storage.dtype);
    const storageNumel = Math.floor(storage.bytes.length / isz);
    let n = 1;
    for (const d of size) n *= d;
    if (n * isz > MAX_TENSOR_BYTES) this.fail(`tensor of size [${size.join(', ')}] is too large`);
    const shape = size.slice();
    if (n === 0) return new Tensor({ dtype: storage.dtype, shape, data: new Uint8Array(0) });
    let maxIndex = offset;
    for (let i = 0; i < size.length; i++) maxIndex += (size[i] - 1) * stride[i];
    if (!(maxIndex < storageNumel)) {
      this.fail(
        `tensor of size [${size.join(', ')}], stride [${stride.join(', ')}], offset ${offset} reaches element ${maxIndex}` +
          ` of storage "${storage.key}" which has only ${storageNumel} elements`,
      );
    }
    let contiguous = true;
    let expect = 1;
    for (let i = size.length - 1; i >= 0; i--) {
      if (size[i] !== 1 && stride[i] !== expect) contiguous = false;
      expect *= size[i];
    }
    if (contiguous) {
      return new Tensor({ dtype: storage.dtype, shape, data: storage.bytes.slice(offset * isz, (offset + n) * isz) });
    }
    // gather a strided view into a contiguous buffer; a view may repeat elements
    // (stride 0), but not blow a small storage up into an enormous tensor
    if (n * isz > Math.max(MAX_GATHER_FLOOR, MAX_GATHER_RATIO * storage.bytes.length)) {
      this.fail(`strided tensor of size [${size.join(', ')}] is implausibly large for its ${storage.bytes.length}-byte storage`);
    }
    const out = new Uint8Array(n * isz);
    const src = storage.bytes;
    const nd = size.length;
    const idx = new Array<number>(nd).fill(0);
    let srcEl = offset;
    for (let k = 0; k < n; k++) {
      const s = srcEl * isz;
      const d = k * isz;
      for (let b = 0; b < isz; b++) out[d + b] = src[s + b];
      // advance the multi-index (last dim fastest)
      for (let dim = nd - 1; dim >= 0; dim--) {
        idx[dim]++;
        srcEl += stride[dim];
        if (idx[dim] < size[dim]) break;
        srcEl -= stride[dim] * size[dim];
        idx[dim] = 0;
      }
    }
    return new Tensor({ dtype: storage.dtype, shape, data: out });
  }

  run(): PyValue {
    const data = this.data;
    for (;;) {
      this.opStart = this.pos;
      if (this.pos >= data.length) this.fail('pickle ended without a STOP opcode (truncated?)');
      const op = data[this.pos++];
      switch (op) {
        case 0x80: {
          // PROTO
          const v = this.u8();
          if (v > 5) this.fail(`unsupported pickle protocol ${v}`);
          break;
        }
        case 0x95: // FRAME
          this.need(8);
          break;
        case 0x2e: // STOP '.'
          return this.pop();
        // --- constants / scalars
        case 0x4e: // NONE 'N'
          this.push(null);
          break;
        case 0x88: // NEWTRUE
          this.push(true);
          break;
        case 0x89: // NEWFALSE
          this.push(false);
          break;
        case 0x4a: // BININT 'J'
          this.push(this.i32());
          break;
        case 0x4b: // BININT1 'K'
          this.push(this.u8());
          break;
        case 0x4d: // BININT2 'M'
          this.push(this.u16());
          break;
        case 0x8a: // LONG1
          this.push(this.decodeLong(this.bytes(this.u8())));
          break;
        case 0x8b: {
          // LONG4
          const n = this.i32();
          if (n < 0) this.fail('LONG4 with negative length');
          if (n > MAX_LONG_BYTES) this.fail(`integer of ${n} bytes is too large`);
          this.push(this.decodeLong(this.bytes(n)));
          break;
        }
        case 0x49: {
          // INT 'I' (text)
          const s = this.line().trim();
          if (s === '00') this.push(false);
          else if (s === '01') this.push(true);
          else {
            if (!/^[-+]?\d{1,15}$/.test(s)) this.fail(`bad INT literal "${printable(s)}"`);
            this.push(Number(s));
          }
          break;
        }
        case 0x4c: {
          // LONG 'L' (text)
          const s = this.line().trim().replace(/L$/, '');
          if (!/^[-+]?\d{1,15}$/.test(s)) this.fail(`bad LONG literal "${printable(s)}"`);
          this.push(Number(s));
          break;
        }
        case 0x47: // BINFLOAT 'G' (big-endian double)
          this.push(this.dv.getFloat64(this.need(8), false));
          break;
        case 0x46: {
          // FLOAT 'F' (text)
          const s = this.line().trim();
          const v = Number(s);
          if (s === '' || (Number.isNaN(v) && !/^[-+]?nan$/i.test(s))) this.fail(`bad FLOAT literal "${printable(s)}"`);
          this.push(v);
          break;
        }
        // --- strings and bytes
        case 0x58: // BINUNICODE 'X'
          this.push(this.utf8.decode(this.bytes(this.u32())));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.push(this.utf8.decode(this.bytes(this.u8())));
          break;
        case 0x8d: // BINUNICODE8
          this.push(this.utf8.decode(this.bytes(this.u64())));
          break;
        case 0x54: {
          // BINSTRING 'T'
          const n = this.i32();
          if (n < 0) this.fail('BINSTRING with negative length');
          this.push(Buffer.from(this.bytes(n)).toString('latin1'));
          break;
        }
        case 0x55: // SHORT_BINSTRING 'U'
          this.push(Buffer.from(this.bytes(this.u8())).toString('latin1'));
          break;
        case 0x42: // BINBYTES 'B'
          this.push(this.bytes(this.u32()).slice());
          break;
        case 0x43: // SHORT_BINBYTES 'C'
          this.push(this.bytes(this.u8()).slice());
          break;
        case 0x8e: // BINBYTES8
        case 0x96: // BYTEARRAY8
          this.push(this.bytes(this.u64()).slice());
          break;
        // --- containers
        case 0x28: // MARK '('
          this.marks.push(this.stack.length);
          break;
        case 0x7d: // EMPTY_DICT '}'
          this.push(new PyDict());
          break;
        case 0x5d: // EMPTY_LIST ']'
          this.push([]);
          break;
        case 0x29: // EMPTY_TUPLE ')'
          this.push(new Tuple([]));
          break;
        case 0x8f: // EMPTY_SET
          this.push(new PySet([]));
          break;
        case 0x74: // TUPLE 't'
          this.push(new Tuple(this.popMark()));
          break;
        case 0x85: {
          // TUPLE1
          const a = this.pop();
          this.push(new Tuple([a]));
          break;
        }
        case 0x86: {
          // TUPLE2
          const b = this.pop();
          const a = this.pop();
          this.push(new Tuple([a, b]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.push(new Tuple([a, b, c]));
          break;
        }
        case 0x6c: // LIST 'l'
          this.push(this.popMark());
          break;
        case 0x64: {
          // DICT 'd'
          const items = this.popMark();
          if (items.length % 2) this.fail('DICT with an odd number of items');
          const d = new PyDict();
          for (let i = 0; i < items.length; i += 2) d.map.set(items[i], items[i + 1]);
          this.push(d);
          break;
        }
        case 0x91: // FROZENSET
          this.push(new PySet(this.popMark()));
          break;
        case 0x73: {
          // SETITEM 's'
          const v = this.pop();
          const k = this.pop();
          const d = this.top();
          if (!(d instanceof PyDict)) this.fail(`SETITEM on a ${typeName(d)}`);
          d.map.set(k, v);
          break;
        }
        case 0x75: {
          // SETITEMS 'u'
          const items = this.popMark();
          const d = this.top();
          if (!(d instanceof PyDict)) this.fail(`SETITEMS on a ${typeName(d)}`);
          if (items.length % 2) this.fail('SETITEMS with an odd number of items');
          for (let i = 0; i < items.length; i += 2) d.map.set(items[i], items[i + 1]);
          break;
        }
        case 0x61: {
          // APPEND 'a'
          const v = this.pop();
          const l = this.top();
          if (!Array.isArray(l)) this.fail(`APPEND on a ${typeName(l)}`);
          l.push(v);
          break;
        }
        case 0x65: {
          // APPENDS 'e'
          const items = this.popMark();
          const l = this.top();
          if (!Array.isArray(l)) this.fail(`APPENDS on a ${typeName(l)}`);
          for (const v of items) l.push(v);
          break;
        }
        case 0x90: {
          // ADDITEMS
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof PySet)) this.fail(`ADDITEMS on a ${typeName(s)}`);
          s.items.push(...items);
          break;
        }
        // --- stack manipulation
        case 0x30: // POP '0'
          if (this.marks.length && this.stack.length === this.marks[this.marks.length - 1]) this.marks.pop();
          else this.pop();
          break;
        case 0x31: // POP_MARK '1'
          this.popMark();
          break;
        case 0x32: // DUP '2'
          this.push(this.top());
          break;
        // --- memo
        case 0x71: // BINPUT 'q'
          this.memo.set(this.u8(), this.top());
          break;
        case 0x72: // LONG_BINPUT 'r'
          this.memo.set(this.u32(), this.top());
          break;
        case 0x70: {
          // PUT 'p' (text)
          const s = this.line();
          if (!/^\d{1,10}$/.test(s)) this.fail(`bad PUT index "${printable(s)}"`);
          this.memo.set(Number(s), this.top());
          break;
        }
        case 0x94: // MEMOIZE
          this.memoPut(this.memo.size);
          break;
        case 0x68: // BINGET 'h'
          this.push(this.memoGet(this.u8()));
          break;
        case 0x6a: // LONG_BINGET 'j'
          this.push(this.memoGet(this.u32()));
          break;
        case 0x67: {
          // GET 'g' (text)
          const s = this.line();
          if (!/^\d{1,10}$/.test(s)) this.fail(`bad GET index "${printable(s)}"`);
          this.push(this.memoGet(Number(s)));
          break;
        }
        // --- globals and object construction (allow-listed, never executed)
        case 0x63: {
          // GLOBAL 'c'
          const module = this.line();
          const name = this.line();
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings');
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case 0x69: {
          // INST 'i': check the name first so dangerous names are reported as such
          const module = this.line();
          const name = this.line();
          this.resolveGlobal(module, name);
          this.fail('INST opcode is not supported');
          break;
        }
        case 0x52: {
          // REDUCE 'R'
          const args = this.pop();
          const fn = this.pop();
          this.push(this.call(fn, args));
          break;
        }
        case 0x81: {
          // NEWOBJ
          const args = this.pop();
          const cls = this.pop();
          if (!(cls instanceof PyGlobal) || cls.kind !== 'ordered_dict') this.fail(`NEWOBJ of a ${typeName(cls)} is not supported`);
          this.push(this.call(cls, args));
          break;
        }
        case 0x92: {
          // NEWOBJ_EX
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!(cls instanceof PyGlobal) || cls.kind !== 'ordered_dict') this.fail(`NEWOBJ_EX of a ${typeName(cls)} is not supported`);
          if (!(kwargs instanceof PyDict) || kwargs.map.size) this.fail('NEWOBJ_EX with keyword arguments is not supported');
          this.push(this.call(cls, args));
          break;
        }
        case 0x62: {
          // BUILD 'b': record state on dicts, ignore it on tensors; never call __setstate__
          const state = this.pop();
          const inst = this.top();
          if (inst instanceof PyDict) inst.state = state;
          else if (!(inst instanceof Tensor)) this.fail(`BUILD on a ${typeName(inst)} is not supported`);
          break;
        }
        case 0x51: {
          // BINPERSID 'Q'
          const pid = this.pop();
          this.push(this.host.persistentLoad(pid));
          break;
        }
        case 0x50: // PERSID 'P'
          this.fail('text persistent ids (PERSID) are not supported');
          break;
        case 0x82:
        case 0x83:
        case 0x84: // EXT1/2/4
          throw new WeightsFileError(this.file, 'forbidden extension-registry global (EXT opcode) in pickle; refusing to load');
        default:
          this.fail(`unsupported or invalid pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
  }
}
