/**
 * A zip archive reader for torch.save checkpoints (stored and deflated entries, zip64), in pure
 * TypeScript: every entry's size is bounded and its CRC-32 checked.
 */
import * as zlib from 'node:zlib';

import { WeightsFileError } from './errors.js';

/** Largest zip entry we will inflate or read. */
const MAX_ENTRY_BYTES = 2 ** 31 - 1;

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
