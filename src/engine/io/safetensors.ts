/**
 * Reader and writer for the safetensors format
 * (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON header, then the data section. Reading validates
 * the header strictly; every problem is a WeightsFileError naming the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

import { WeightsFileError, readWeightsBytes } from './errors.js';
import { isDType, itemSize, type RawTensor } from './raw-tensor.js';

/** Largest JSON header accepted (the reference implementation uses the same limit). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsContents {
  tensors: Map<string, RawTensor>;
  metadata: Record<string, string>;
}

/** obj[key] = value, also for keys like "__proto__" (which plain assignment would not store). */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function fmtList(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 80 ? s.slice(0, 80) + '...' : s;
  } catch {
    return String(v);
  }
}

/** Parses a safetensors file held in memory. `name` is used in error messages. */
export function parseSafetensors(buf: Uint8Array, name: string): SafetensorsContents {
  try {
    return parseInner(buf, name);
  } catch (e) {
    if (e instanceof WeightsFileError) throw e;
    const err = e as Error;
    throw new WeightsFileError(name, `internal error while reading safetensors (${err?.name}: ${err?.message})`, { cause: e });
  }
}

function parseInner(buf: Uint8Array, name: string): SafetensorsContents {
  const fail = (problem: string): never => {
    throw new WeightsFileError(name, problem);
  };
  if (buf.length < 8) fail(`file is ${buf.length} bytes, shorter than the 8-byte header length prefix`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen64 = dv.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLen64} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
  }
  const headerLen = Number(headerLen64);
  if (8 + headerLen > buf.length) {
    fail(`header length ${headerLen} runs past the end of the ${buf.length}-byte file (truncated?)`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + headerLen));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    fail(`header must be a JSON object, got ${describe(header)}`);
  }
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const ranges: { name: string; begin: number; end: number }[] = [];
  const infos: { name: string; dtype: RawTensor['dtype']; shape: number[]; begin: number; end: number }[] = [];

  for (const [key, entry] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
        fail(`"__metadata__" must be an object of string values, got ${describe(entry)}`);
      }
      for (const [mk, mv] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof mv !== 'string') fail(`"__metadata__" value for ${JSON.stringify(mk)} must be a string, got ${describe(mv)}`);
        setOwn(metadata, mk, mv as string);
      }
      continue;
    }
    const t = `tensor ${JSON.stringify(key)}`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      fail(`${t} entry must be an object with dtype, shape and data_offsets, got ${describe(entry)}`);
    }
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (dtype === undefined) fail(`${t} has no "dtype"`);
    if (!isDType(dtype)) fail(`${t} has unsupported dtype ${fmtList(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      fail(`${t} shape must be an array of non-negative integers, got ${fmtList(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
    ) {
      fail(`${t} data_offsets must be [begin, end] non-negative integers, got ${fmtList(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`${t} data offsets [${begin}, ${end}] have begin > end`);
    if (end > dataLen) {
      fail(`${t} data offsets [${begin}, ${end}] lie outside the ${dataLen}-byte data section`);
    }
    const dims = shape as number[];
    let count = 1;
    for (const d of dims) count *= d;
    const expected = count * itemSize(dtype as RawTensor['dtype']);
    if (end - begin !== expected) {
      fail(
        `${t} has ${end - begin} data bytes but ${dtype as string}[${dims.join(', ')}] needs ${
          Number.isSafeInteger(expected) ? expected : 'too many'
        }`,
      );
    }
    infos.push({ name: key, dtype: dtype as RawTensor['dtype'], shape: dims.slice(), begin, end });
    if (end > begin) ranges.push({ name: key, begin, end });
  }

  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < ranges.length; i++) {
    const a = ranges[i - 1];
    const b = ranges[i];
    if (b.begin < a.end) {
      fail(
        `tensors ${JSON.stringify(a.name)} [${a.begin}, ${a.end}] and ${JSON.stringify(b.name)} [${b.begin}, ${b.end}] have overlapping data ranges`,
      );
    }
  }

  const tensors = new Map<string, RawTensor>();
  for (const info of infos) {
    tensors.set(info.name, {
      dtype: info.dtype,
      shape: info.shape,
      data: buf.slice(dataStart + info.begin, dataStart + info.end),
    });
  }
  return { tensors, metadata };
}

/** Reads and validates a .safetensors file. */
export function readSafetensors(file: string): SafetensorsContents {
  return parseSafetensors(readWeightsBytes(file), file);
}

/** Serialises tensors to safetensors bytes: [header length][header][data...]; returns the parts. */
export function encodeSafetensors(
  tensors: Map<string, RawTensor> | Record<string, RawTensor>,
  metadata: Record<string, string> | undefined,
  name: string,
): { header: Uint8Array; chunks: Uint8Array[]; byteLength: number } {
  const entries: [string, RawTensor][] =
    tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const head: Record<string, unknown> = {};
  if (metadata !== undefined) {
    const md: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new WeightsFileError(name, `metadata value for ${JSON.stringify(k)} must be a string`);
      setOwn(md, k, v);
    }
    head.__metadata__ = md;
  }
  let offset = 0;
  const chunks: Uint8Array[] = [];
  const seen = new Set<string>();
  for (const [key, t] of entries) {
    const what = `tensor ${JSON.stringify(key)}`;
    if (key === '__metadata__') throw new WeightsFileError(name, `"__metadata__" cannot be used as a tensor name`);
    if (seen.has(key)) throw new WeightsFileError(name, `duplicate ${what}`);
    seen.add(key);
    if (!t || !isDType(t.dtype)) throw new WeightsFileError(name, `${what} has unsupported dtype ${fmtList(t?.dtype)}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new WeightsFileError(name, `${what} shape must be an array of non-negative integers, got ${fmtList(t.shape)}`);
    }
    if (!(t.data instanceof Uint8Array)) throw new WeightsFileError(name, `${what} data must be a Uint8Array`);
    let count = 1;
    for (const d of t.shape) count *= d;
    const expected = count * itemSize(t.dtype);
    if (t.data.length !== expected) {
      throw new WeightsFileError(
        name,
        `${what} has ${t.data.length} data bytes but ${t.dtype}[${t.shape.join(', ')}] needs ${expected}`,
      );
    }
    setOwn(head, key, { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + expected] });
    offset += expected;
    chunks.push(t.data);
  }
  const json = new TextEncoder().encode(JSON.stringify(head));
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  header.fill(0x20, 8 + json.length);
  return { header, chunks, byteLength: header.length + offset };
}

/**
 * Writes tensors (keys sorted) as a safetensors file. The file is written to a
 * temporary file in the same folder and renamed over `file`, so readers never
 * see a partial file.
 */
export function writeSafetensors(
  file: string,
  tensors: Map<string, RawTensor> | Record<string, RawTensor>,
  metadata?: Record<string, string>,
): void {
  const { header, chunks } = encodeSafetensors(tensors, metadata, file);
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    const writeAll = (bytes: Uint8Array): void => {
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(fd!, bytes, done, bytes.length - done);
    };
    writeAll(header);
    for (const c of chunks) writeAll(c);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        /* ignore */
      }
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* ignore */
    }
    if (e instanceof WeightsFileError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new WeightsFileError(file, `cannot write file (${err.code ?? err.message})`, { cause: e });
  }
}
