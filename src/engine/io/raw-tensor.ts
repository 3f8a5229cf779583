/**
 * A framework-neutral tensor as stored in a weights file: a dtype, a shape and
 * the raw little-endian bytes of the elements in row-major (C) order.
 */

export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface RawTensor {
  dtype: DType;
  shape: number[];
  /** Little-endian element bytes, exactly numel(shape) * itemSize(dtype) long. */
  data: Uint8Array;
}

const ITEM_SIZE: Readonly<Record<DType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export const DTYPES: readonly DType[] = Object.keys(ITEM_SIZE) as DType[];

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(ITEM_SIZE, x);
}

/** Bytes per element of `dtype`. */
export function itemSize(dtype: DType): number {
  const n = ITEM_SIZE[dtype];
  if (n === undefined) throw new TypeError(`unknown dtype ${JSON.stringify(dtype)}`);
  return n;
}

/** Number of elements of a tensor of this shape (1 for a scalar, shape []). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`invalid dimension ${String(d)} in shape [${shape.join(', ')}]`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new RangeError(`shape [${shape.join(', ')}] has too many elements`);
  return n;
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A view of `bytes` whose byteOffset is a multiple of `align` (copying if needed). */
function aligned(bytes: Uint8Array, align: number): ArrayBuffer {
  if (bytes.byteOffset % align === 0 && bytes.buffer instanceof ArrayBuffer) {
    return bytes.buffer;
  }
  return bytes.slice().buffer as ArrayBuffer;
}

function alignedOffset(bytes: Uint8Array, align: number): number {
  return bytes.byteOffset % align === 0 && bytes.buffer instanceof ArrayBuffer ? bytes.byteOffset : 0;
}

let f16Table: Float32Array | undefined;

/** Float32 value of every half-precision bit pattern (exact). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      // zero or subnormal: mant * 2^-24 is exact in float32
      table[h] = (sign ? -1 : 1) * mant * 2 ** -24;
    } else if (exp === 31) {
      bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf or NaN (payload kept)
    } else {
      bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  f16Table = table;
  return table;
}

/** Half-precision bits of a float32 given by its bits, rounding to nearest even. */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00; // infinity
    // NaN: keep the top payload bits, force quiet so it never becomes infinity
    return sign | 0x7c00 | 0x200 | (mant >>> 13);
  }
  if (exp >= 143) return sign | 0x7c00; // |x| >= 65536: overflow to infinity
  if (exp >= 113) {
    // normal half range (unbiased exponent -14..15)
    let half = ((exp - 112) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1) !== 0)) half++; // may carry into inf: correct
    return sign | half;
  }
  if (exp < 102) return sign; // below half of the smallest subnormal (2^-25): signed zero
  // subnormal half: value = M * 2^(exp-150); in units of 2^-24 that is M >> (126 - exp)
  const m = mant | 0x800000;
  const shift = 126 - exp; // 14..24
  let half = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (half & 1) !== 0)) half++; // may become the smallest normal: correct
  return sign | half;
}

/** Converts any RawTensor to a new Float32Array of numel elements (ints and bool to their values). */
export function toFloat32(raw: RawTensor): Float32Array {
  const n = numel(raw.shape);
  const size = itemSize(raw.dtype);
  if (raw.data.length !== n * size) {
    throw new RangeError(`tensor data is ${raw.data.length} bytes, expected ${n * size} for ${raw.dtype}[${raw.shape.join(', ')}]`);
  }
  const out = new Float32Array(n);
  const bytes = raw.data;
  if (!HOST_LITTLE_ENDIAN) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const t = halfTable();
    for (let i = 0; i < n; i++) {
      const o = i * size;
      switch (raw.dtype) {
        case 'F64': out[i] = dv.getFloat64(o, true); break;
        case 'F32': out[i] = dv.getFloat32(o, true); break;
        case 'F16': out[i] = t[dv.getUint16(o, true)]; break;
        case 'BF16': out[i] = new Float32Array(new Uint32Array([dv.getUint16(o, true) << 16]).buffer)[0]; break;
        case 'I64': out[i] = Number(dv.getBigInt64(o, true)); break;
        case 'I32': out[i] = dv.getInt32(o, true); break;
        case 'I16': out[i] = dv.getInt16(o, true); break;
        case 'I8': out[i] = dv.getInt8(o); break;
        case 'U8': out[i] = dv.getUint8(o); break;
        case 'BOOL': out[i] = dv.getUint8(o) !== 0 ? 1 : 0; break;
      }
    }
    return out;
  }
  switch (raw.dtype) {
    case 'F32':
      out.set(new Float32Array(aligned(bytes, 4), alignedOffset(bytes, 4), n));
      break;
    case 'F64':
      out.set(new Float64Array(aligned(bytes, 8), alignedOffset(bytes, 8), n));
      break;
    case 'F16': {
      const src = new Uint16Array(aligned(bytes, 2), alignedOffset(bytes, 2), n);
      const t = halfTable();
      for (let i = 0; i < n; i++) out[i] = t[src[i]];
      break;
    }
    case 'BF16': {
      const src = new Uint16Array(aligned(bytes, 2), alignedOffset(bytes, 2), n);
      const dst = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) dst[i] = src[i] << 16;
      break;
    }
    case 'I64': {
      const src = new BigInt64Array(aligned(bytes, 8), alignedOffset(bytes, 8), n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      break;
    }
    case 'I32':
      out.set(new Int32Array(aligned(bytes, 4), alignedOffset(bytes, 4), n));
      break;
    case 'I16':
      out.set(new Int16Array(aligned(bytes, 2), alignedOffset(bytes, 2), n));
      break;
    case 'I8':
      out.set(new Int8Array(bytes.buffer, bytes.byteOffset, n));
      break;
    case 'U8':
      out.set(bytes.subarray(0, n));
      break;
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = bytes[i] !== 0 ? 1 : 0;
      break;
  }
  return out;
}

/**
 * Builds a RawTensor from float32 values: F32 copies the bytes, F16 rounds to
 * nearest even (overflow to +-inf, NaN stays NaN, subnormals kept).
 */
export function fromFloat32(arr: Float32Array | readonly number[], shape: readonly number[], dtype: 'F32' | 'F16' = 'F32'): RawTensor {
  const n = numel(shape);
  if (arr.length !== n) throw new RangeError(`got ${arr.length} values for shape [${shape.join(', ')}] (${n} elements)`);
  const src = arr instanceof Float32Array ? arr : Float32Array.from(arr);
  if (dtype === 'F32') {
    const data = new Uint8Array(n * 4);
    if (HOST_LITTLE_ENDIAN) {
      new Float32Array(data.buffer).set(src);
    } else {
      const dv = new DataView(data.buffer);
      for (let i = 0; i < n; i++) dv.setFloat32(i * 4, src[i], true);
    }
    return { dtype: 'F32', shape: [...shape], data };
  }
  if (dtype === 'F16') {
    const bits = new Uint32Array(src.buffer, src.byteOffset, n);
    const data = new Uint8Array(n * 2);
    for (let i = 0; i < n; i++) {
      const h = f32BitsToF16Bits(bits[i]);
      data[2 * i] = h & 0xff;
      data[2 * i + 1] = h >>> 8;
    }
    return { dtype: 'F16', shape: [...shape], data };
  }
  throw new TypeError(`fromFloat32 supports F32 and F16, not ${String(dtype)}`);
}
