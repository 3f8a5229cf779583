/**
 * Reader for PyTorch checkpoints written by torch.save (torch >= 1.6 zip
 * format), in pure TypeScript.
 *
 * The archive is a zip file `<prefix>/data.pkl` + `<prefix>/data/<key>` (one
 * entry per storage). data.pkl is a pickle; it is evaluated by a small,
 * SAFE interpreter that never executes anything: GLOBAL/STACK_GLOBAL names are
 * checked against an allow-list (OrderedDict, the torch tensor rebuild
 * functions and the storage classes) and every other name is refused.
 */
import * as zlib from 'node:zlib';

import { WeightsFileError, readWeightsBytes } from './errors.js';
import { itemSize, type DType, type RawTensor } from './raw-tensor.js';

/** Largest tensor (in bytes) a checkpoint may rebuild. */
const MAX_TENSOR_BYTES = 2 ** 31 - 1;
/** Strided (non-contiguous) tensors may be at most this large, or this many times their storage. */
const MAX_GATHER_FLOOR = 64 * 2 ** 20;
const MAX_GATHER_RATIO = 64;
/** Largest zip entry we will inflate or read. */
const MAX_ENTRY_BYTES = 2 ** 31 - 1;
/** Largest integer encoded by LONG1/LONG4 we accept (bytes). */
const MAX_LONG_BYTES = 256;
/** Longest GLOBAL module/name line. */
const MAX_GLOBAL_LINE = 1024;

// ---------------------------------------------------------------------------
// CRC-32

let crcTable: Uint32Array | undefined;

function crc32(bytes: Uint8Array): number {
  // node >= 20.15 has a native implementation
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (typeof native === 'function') return native(bytes) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------
// Zip reader

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;

/** A read-only view of a zip archive held in memory (central directory based). */
export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();
  private readonly dv: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly file: string,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.readCentralDirectory();
  }

  private fail(problem: string): never {
    throw new WeightsFileError(this.file, problem);
  }

  private u16(o: number): number {
    return this.dv.getUint16(o, true);
  }
  private u32(o: number): number {
    return this.dv.getUint32(o, true);
  }
  private u64(o: number, what: string): number {
    const v = this.dv.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`zip ${what} ${v} is too large`);
    return Number(v);
  }

  private readCentralDirectory(): void {
    const len = this.buf.length;
    if (len < 22) this.fail(`zip archive is truncated (${len} bytes, no end-of-central-directory record)`);
    let eocd = -1;
    for (let p = len - 22; p >= Math.max(0, len - 22 - 0xffff); p--) {
      if (this.u32(p) === SIG_EOCD && p + 22 + this.u16(p + 20) <= len) {
        eocd = p;
        break;
      }
    }
    if (eocd < 0) this.fail('zip archive is truncated or corrupt (end-of-central-directory record not found)');
    const diskNo = this.u16(eocd + 4);
    const cdDisk = this.u16(eocd + 6);
    let count = this.u16(eocd + 10);
    let cdSize = this.u32(eocd + 12);
    let cdOffset = this.u32(eocd + 16);
    const loc = eocd - 20;
    if (loc >= 0 && this.u32(loc) === SIG_ZIP64_LOCATOR) {
      const z64 = this.u64(loc + 8, 'zip64 record offset');
      if (z64 + 56 > len || this.u32(z64) !== SIG_ZIP64_EOCD) this.fail('zip64 end-of-central-directory record is missing or corrupt');
      count = this.u64(z64 + 32, 'entry count');
      cdSize = this.u64(z64 + 40, 'central directory size');
      cdOffset = this.u64(z64 + 48, 'central directory offset');
    } else if (diskNo !== 0 || cdDisk !== 0) {
      this.fail('multi-disk zip archives are not supported');
    } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      this.fail('zip archive needs zip64 records, but they are missing');
    }
    if (cdOffset + cdSize > len) {
      this.fail(`zip central directory [${cdOffset}, ${cdOffset + cdSize}] lies outside the ${len}-byte file (truncated?)`);
    }
    if (count > Math.floor(cdSize / 46)) this.fail(`zip archive claims ${count} entries but its central directory is only ${cdSize} bytes`);
    const end = cdOffset + cdSize;
    let p = cdOffset;
    const dec = new TextDecoder('utf-8');
    for (let i = 0; i < count; i++) {
      if (p + 46 > end || this.u32(p) !== SIG_CENTRAL) this.fail(`zip central directory entry ${i} is corrupt`);
      const flags = this.u16(p + 8);
      const method = this.u16(p + 10);
      const crc = this.u32(p + 16);
      let compressedSize = this.u32(p + 20);
      let size = this.u32(p + 24);
      const nameLen = this.u16(p + 28);
      const extraLen = this.u16(p + 30);
      const commentLen = this.u16(p + 32);
      let localOffset = this.u32(p + 42);
      const next = p + 46 + nameLen + extraLen + commentLen;
      if (next > end) this.fail(`zip central directory entry ${i} is corrupt (runs past the directory)`);
      const name = dec.decode(this.buf.subarray(p + 46, p + 46 + nameLen));
      // zip64 extended information extra field
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const id = this.u16(x);
        const sz = this.u16(x + 2);
        if (x + 4 + sz > xEnd) break;
        if (id === 0x0001) {
          let q = x + 4;
          const take = (what: string): number => {
            if (q + 8 > x + 4 + sz) this.fail(`zip64 extra field of entry "${name}" is truncated`);
            const v = this.u64(q, what);
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = take('entry size');
          if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
          if (localOffset === 0xffffffff) localOffset = take('local header offset');
        }
        x += 4 + sz;
      }
      if (!this.entries.has(name)) this.entries.set(name, { name, method, flags, crc, compressedSize, size, localOffset });
      p = next;
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The uncompressed bytes of an entry (a view for STORED entries), CRC-checked. */
  read(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (!e) this.fail(`zip entry "${name}" is missing`);
    const len = this.buf.length;
    const lo = e.localOffset;
    if (lo + 30 > len || this.u32(lo) !== SIG_LOCAL) this.fail(`zip entry "${name}" has a corrupt local header at offset ${lo}`);
    if (e.flags & 1) this.fail(`zip entry "${name}" is encrypted`);
    const start = lo + 30 + this.u16(lo + 26) + this.u16(lo + 28);
    if (start + e.compressedSize > len) {
      this.fail(`zip entry "${name}" data [${start}, ${start + e.compressedSize}] lies outside the ${len}-byte file (truncated?)`);
    }
    if (e.size > MAX_ENTRY_BYTES) this.fail(`zip entry "${name}" is too large (${e.size} bytes)`);
    const raw = this.buf.subarray(start, start + e.compressedSize);
    let out: Uint8Array;
    if (e.method === 0) {
      if (e.compressedSize !== e.size) this.fail(`zip entry "${name}" is stored but its sizes differ (${e.compressedSize} vs ${e.size})`);
      out = raw;
    } else if (e.method === 8) {
      try {
        out = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
      } catch (err) {
        return this.fail(`zip entry "${name}" cannot be inflated (${(err as Error).message})`);
      }
      if (out.length !== e.size) this.fail(`zip entry "${name}" inflates to ${out.length} bytes, expected ${e.size}`);
    } else {
      return this.fail(`zip entry "${name}" uses unsupported compression method ${e.method}`);
    }
    if (crc32(out) !== e.crc) this.fail(`zip entry "${name}" fails its CRC-32 check (corrupt file)`);
    return out;
  }
}

// ---------------------------------------------------------------------------
// Pickle values

class Tuple {
  constructor(readonly items: PyValue[]) {}
}
class PyDict {
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
class PyGlobal {
  constructor(
    readonly fullName: string,
    readonly kind: GlobalKind,
    readonly dtype?: DType,
  ) {}
}
class Storage {
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly bytes: Uint8Array,
  ) {}
}
class Tensor {
  constructor(readonly raw: RawTensor) {}
}
type PyValue =
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

function typeName(v: PyValue | undefined): string {
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

function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\x00-\x1f\x7f"\\]/g, '?');
  return t.length > 200 ? t.slice(0, 200) + '...' : t;
}

// ---------------------------------------------------------------------------
// Pickle interpreter

interface Unpickler {
  /** Resolves a persistent id (BINPERSID) to a value. */
  persistentLoad(pid: PyValue): PyValue;
}

class PickleMachine {
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

// ---------------------------------------------------------------------------
// torch.save archive

/** Preferred sub-dictionaries of a training checkpoint, in order. */
const NESTED_KEYS = ['params', 'params_ema', 'state_dict', 'model'];

function findPrefix(zip: ZipArchive, file: string): string {
  let best: string | undefined;
  for (const name of zip.entries.keys()) {
    if (name === 'data.pkl' || name.endsWith('/data.pkl')) {
      if (best === undefined || name.length < best.length) best = name;
    }
  }
  if (best === undefined) {
    throw new WeightsFileError(file, 'zip archive has no data.pkl entry (not a torch.save checkpoint?)');
  }
  return best.slice(0, best.length - 'data.pkl'.length);
}

/** Parses a torch.save zip checkpoint held in memory. `name` is used in error messages. */
export function parseTorchCheckpoint(buf: Uint8Array, name: string): Map<string, RawTensor> {
  try {
    return parseInner(buf, name);
  } catch (e) {
    if (e instanceof WeightsFileError) throw e;
    const err = e as Error;
    throw new WeightsFileError(name, `internal error while reading checkpoint (${err?.name}: ${err?.message})`, { cause: e });
  }
}

/** Start of a pre-1.6 torch.save file: PROTO 2, LONG1 of the magic number 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/** True when the bytes start like a legacy (non-zip, pre torch 1.6) torch.save file. */
export function isLegacyTorchFile(buf: Uint8Array): boolean {
  return buf.length >= LEGACY_MAGIC.length && LEGACY_MAGIC.every((b, i) => buf[i] === b);
}

function parseInner(buf: Uint8Array, file: string): Map<string, RawTensor> {
  if (isLegacyTorchFile(buf)) {
    throw new WeightsFileError(file, 'legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a newer torch');
  }
  const zip = new ZipArchive(buf, file);
  const prefix = findPrefix(zip, file);
  if (zip.has(`${prefix}byteorder`)) {
    const order = new TextDecoder().decode(zip.read(`${prefix}byteorder`)).trim();
    if (order !== 'little') throw new WeightsFileError(file, `checkpoint byte order "${printable(order)}" is not supported`);
  }
  const storages = new Map<string, Storage>();
  const host: Unpickler = {
    persistentLoad(pid: PyValue): PyValue {
      const bad = (why: string): never => {
        throw new WeightsFileError(file, `malformed persistent id in ${prefix}data.pkl: ${why}`);
      };
      if (!(pid instanceof Tuple)) return bad(`expected a tuple, got ${typeName(pid)}`);
      const [tag, type, key, , count] = pid.items;
      if (tag !== 'storage' || pid.items.length !== 5) return bad('expected ("storage", type, key, location, numel)');
      if (!(type instanceof PyGlobal) || type.kind !== 'storage' || !type.dtype) return bad(`storage type is a ${typeName(type)}`);
      if (typeof key !== 'string') return bad(`storage key is a ${typeName(key)}`);
      if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) return bad('storage numel is not a non-negative integer');
      const id = `${type.dtype}:${key}`;
      const cached = storages.get(id);
      if (cached) return cached;
      const entry = `${prefix}data/${key}`;
      if (!zip.has(entry)) throw new WeightsFileError(file, `storage "${printable(key)}" is missing (no zip entry "${printable(entry)}")`);
      const bytes = zip.read(entry);
      const need = count * itemSize(type.dtype);
      if (bytes.length < need) {
        throw new WeightsFileError(
          file,
          `storage "${printable(key)}" has ${bytes.length} bytes but ${count} ${type.dtype} elements need ${need}`,
        );
      }
      const s = new Storage(key, type.dtype, bytes.subarray(0, need));
      storages.set(id, s);
      return s;
    },
  };
  const pkl = zip.read(`${prefix}data.pkl`);
  const top = new PickleMachine(pkl, file, `${prefix}data.pkl`, host).run();
  if (!(top instanceof PyDict)) {
    throw new WeightsFileError(file, `top-level object of the checkpoint is a ${typeName(top)}, expected a dict of tensors`);
  }
  let dict = top;
  for (const k of NESTED_KEYS) {
    const v = top.map.get(k);
    if (v instanceof PyDict) {
      dict = v;
      break;
    }
  }
  const out = new Map<string, RawTensor>();
  for (const [k, v] of dict.map) {
    if (typeof k !== 'string' || !(v instanceof Tensor)) continue;
    const key = k.startsWith('module.') ? k.slice('module.'.length) : k;
    if (out.has(key)) throw new WeightsFileError(file, `tensor "${printable(key)}" appears twice (with and without the "module." prefix)`);
    out.set(key, v.raw);
  }
  return out;
}

/** Reads a torch.save (zip format) checkpoint; returns its tensors by name. */
export function readTorchCheckpoint(file: string): Map<string, RawTensor> {
  const buf = readWeightsBytes(file);
  return parseTorchCheckpoint(buf, file);
}
