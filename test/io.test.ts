import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

import {
  WeightsFileError,
  ZipArchive,
  fromFloat32,
  parseSafetensors,
  parseTorchCheckpoint,
  parseWeights,
  readSafetensors,
  readTorchCheckpoint,
  readWeightsFile,
  toFloat32,
  writeSafetensors,
  type RawTensor,
} from '../src/engine/io/index.js';
import { mulberry32 } from './helpers/random.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.resolve(repoRoot, '..', 'shared', 'fixtures');
const PTH = path.join(fixtures, 'msdi_net_w4.pth');
const ST = path.join(fixtures, 'msdi_net_w4.weights.safetensors');
const haveFixtures = fs.existsSync(PTH) && fs.existsSync(ST);
const noFixtures = haveFixtures ? false : `fixtures not found under ${fixtures}`;

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'msdi-io-test-'));
}

// ---------------------------------------------------------------------------
// tiny zip writer and pickle builder for hand-made checkpoints

let crcTable: Uint32Array | undefined;
function crc32(b: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = crcTable[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface ZipInput {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  crc?: number;
}

/** Writes a zip of STORED/DEFLATE entries; `zip64` uses zip64 extra fields and end records throughout. */
function makeZip(files: ZipInput[], zip64 = false): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const body = f.deflate ? zlib.deflateRawSync(f.data) : Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength);
    const crc = f.crc ?? crc32(f.data);
    const method = f.deflate ? 8 : 0;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(body.length, 18);
    lh.writeUInt32LE(f.data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(zip64 ? 0xffffffff : body.length, 20);
    ch.writeUInt32LE(zip64 ? 0xffffffff : f.data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(zip64 ? 0xffffffff : offset, 42);
    const extra = Buffer.alloc(zip64 ? 28 : 0);
    if (zip64) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(f.data.length), 4);
      extra.writeBigUInt64LE(BigInt(body.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
      ch.writeUInt16LE(extra.length, 30);
    }
    locals.push(lh, name, body);
    centrals.push(ch, name, extra);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(zip64 ? 0xffff : files.length, 8);
  eocd.writeUInt16LE(zip64 ? 0xffff : files.length, 10);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : offset, 16);
  if (!zip64) return Buffer.concat([...locals, cd, eocd]);
  const rec = Buffer.alloc(56);
  rec.writeUInt32LE(0x06064b50, 0);
  rec.writeBigUInt64LE(44n, 4);
  rec.writeBigUInt64LE(BigInt(files.length), 24);
  rec.writeBigUInt64LE(BigInt(files.length), 32);
  rec.writeBigUInt64LE(BigInt(cd.length), 40);
  rec.writeBigUInt64LE(BigInt(offset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(offset + cd.length), 8);
  locator.writeUInt32LE(1, 16);
  return Buffer.concat([...locals, cd, rec, locator, eocd]);
}

/** Pickle opcodes as byte arrays; join them with pk(...). */
const op = {
  proto: [0x80, 2],
  mark: [0x28],
  emptyDict: [0x7d],
  emptyTuple: [0x29],
  tuple: [0x74],
  tuple1: [0x85],
  reduce: [0x52],
  setitems: [0x75],
  newfalse: [0x89],
  binpersid: [0x51],
  stackGlobal: [0x93],
  stop: [0x2e],
  int1: (n: number) => [0x4b, n],
  str: (s: string) => {
    const b = Buffer.from(s, 'utf8');
    return [0x58, b.length & 0xff, (b.length >> 8) & 0xff, 0, 0, ...b];
  },
  global: (module: string, name: string) => [0x63, ...Buffer.from(`${module}\n${name}\n`, 'latin1')],
};
function pk(...parts: (number[] | number)[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : p)));
}

/** data.pkl for {outerKey: OrderedDict{key: tensor(storage "0", size, stride)}} */
function tensorPickle(outerKey: string, key: string, size: number[], stride: number[], storageNumel: number, storageKey = '0'): Uint8Array {
  return pk(
    op.proto,
    op.emptyDict,
    op.mark,
    op.str(outerKey),
    op.global('collections', 'OrderedDict'),
    op.emptyTuple,
    op.reduce,
    op.mark,
    op.str(key),
    op.global('torch._utils', '_rebuild_tensor_v2'),
    op.mark,
    op.mark,
    op.str('storage'),
    op.global('torch', 'FloatStorage'),
    op.str(storageKey),
    op.str('cpu'),
    op.int1(storageNumel),
    op.tuple,
    op.binpersid,
    op.int1(0),
    op.mark,
    ...size.map(op.int1),
    op.tuple,
    op.mark,
    ...stride.map(op.int1),
    op.tuple,
    op.newfalse,
    op.global('collections', 'OrderedDict'),
    op.emptyTuple,
    op.reduce,
    op.tuple,
    op.reduce,
    op.setitems,
    op.setitems,
    op.stop,
  );
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

function expectWeightsError(fn: () => unknown, file: string, pattern?: RegExp): WeightsFileError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof WeightsFileError, `expected a WeightsFileError, got ${String(caught)}`);
  assert.ok(caught.message.startsWith(`${file}: `), `message should name the file: ${caught.message}`);
  assert.ok(!caught.message.includes('\n'), 'message must be one line');
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

// ---------------------------------------------------------------------------
// (1) torch checkpoint == safetensors export

test('msdi_net_w4.pth holds exactly the tensors of msdi_net_w4.weights.safetensors', { skip: noFixtures }, () => {
  const pth = readTorchCheckpoint(PTH);
  const st = readSafetensors(ST);
  assert.deepEqual(st.metadata, { arch: 'msdi_net', wf: '4', ndf: '4' });
  // The .pth also carries BatchNorm step counters (num_batches_tracked, int64
  // scalars) that the safetensors export leaves out; everything else matches.
  const extra = [...pth.keys()].filter((k) => !st.tensors.has(k));
  assert.equal(extra.length, 4);
  for (const k of extra) {
    assert.match(k, /\.num_batches_tracked$/);
    const t = pth.get(k)!;
    assert.equal(t.dtype, 'I64');
    assert.deepEqual(t.shape, []);
    assert.equal(t.data.length, 8);
  }
  const pthKeys = [...pth.keys()].filter((k) => !k.endsWith('.num_batches_tracked')).sort();
  assert.deepEqual(pthKeys, [...st.tensors.keys()].sort());
  assert.equal(pthKeys.length, 563);
  for (const [k, a] of st.tensors) {
    const b = pth.get(k)!;
    assert.equal(b.dtype, a.dtype, k);
    assert.deepEqual(b.shape, a.shape, k);
    assert.ok(Buffer.from(b.data).equals(Buffer.from(a.data)), `bytes differ for ${k}`);
  }
  // dispatch on content
  assert.equal(readWeightsFile(PTH).size, pth.size);
  assert.equal(readWeightsFile(ST).size, st.tensors.size);
});

// ---------------------------------------------------------------------------
// (2) safetensors roundtrip, F16 conversion, atomic write

test('F16 conversion rounds to nearest even and handles inf/nan/subnormals', () => {
  const values = [
    0, -0, 1, -2.5, 65504, 65519.99, 65520, 1e6, -1e6, Infinity, -Infinity, NaN,
    2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 2 ** -14, 2 ** -14 - 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1e-10,
  ];
  const expected = [
    0, -0, 1, -2.5, 65504, 65504, Infinity, Infinity, -Infinity, Infinity, -Infinity, NaN,
    2 ** -24, 0, 2 ** -24, 2 ** -14, 2 ** -14 - 2 ** -24, 1, 1 + 2 ** -9, 0,
  ];
  const f16 = fromFloat32(values, [values.length], 'F16');
  assert.equal(f16.data.length, values.length * 2);
  const back = toFloat32(f16);
  for (let i = 0; i < values.length; i++) {
    assert.ok(Object.is(back[i], Math.fround(expected[i])), `f16(${values[i]}) = ${back[i]}, want ${expected[i]}`);
  }
  // every finite half value survives half -> f32 -> half
  const all = new Uint8Array(65536 * 2);
  for (let h = 0; h < 65536; h++) {
    all[2 * h] = h & 0xff;
    all[2 * h + 1] = h >> 8;
  }
  const asF32 = toFloat32({ dtype: 'F16', shape: [65536], data: all });
  const again = fromFloat32(asF32, [65536], 'F16');
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaN payloads may be quietened
    assert.equal(again.data[2 * h] | (again.data[2 * h + 1] << 8), h);
  }
  // other dtypes
  const i64 = new Uint8Array(new BigInt64Array([-3n, 7n]).buffer);
  assert.deepEqual([...toFloat32({ dtype: 'I64', shape: [2], data: i64 })], [-3, 7]);
  const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc000]).buffer);
  assert.deepEqual([...toFloat32({ dtype: 'BF16', shape: [2], data: bf16 })], [1, -2]);
  const f64 = new Uint8Array(new Float64Array([0.5, -4]).buffer);
  assert.deepEqual([...toFloat32({ dtype: 'F64', shape: [2], data: f64 })], [0.5, -4]);
  assert.deepEqual([...toFloat32({ dtype: 'BOOL', shape: [3], data: Uint8Array.from([0, 1, 2]) })], [0, 1, 1]);
  assert.deepEqual([...toFloat32({ dtype: 'I8', shape: [2], data: Uint8Array.from([0xff, 5]) })], [-1, 5]);
});

test('safetensors write -> read roundtrip is exact and atomic', () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'model.safetensors');
    const tensors: Record<string, RawTensor> = {
      'z.last': fromFloat32([1, 2, 3, 4, 5, 6], [2, 3]),
      'a.half': fromFloat32([0.1, -2, 65504, 1e-7], [4], 'F16'),
      'm.long': { dtype: 'I64', shape: [2], data: new Uint8Array(new BigInt64Array([1n, -2n]).buffer) },
      'b.bool': { dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
      'c.scalar': fromFloat32([3.5], []),
      'd.empty': { dtype: 'F32', shape: [0, 3], data: new Uint8Array(0) },
      'e.bf16': { dtype: 'BF16', shape: [1, 1], data: Uint8Array.from([0x80, 0x3f]) },
      'f.u8': { dtype: 'U8', shape: [5], data: Uint8Array.from([1, 2, 3, 4, 250]) },
    };
    const metadata = { format: 'pt', note: 'héllo "quoted"' };
    fs.writeFileSync(file, 'old contents');
    writeSafetensors(file, tensors, metadata);
    assert.deepEqual(fs.readdirSync(dir), ['model.safetensors'], 'no temporary file may be left behind');

    const back = readSafetensors(file);
    assert.deepEqual(back.metadata, metadata);
    assert.deepEqual([...back.tensors.keys()], Object.keys(tensors).sort());
    for (const [k, t] of Object.entries(tensors)) {
      const r = back.tensors.get(k)!;
      assert.equal(r.dtype, t.dtype, k);
      assert.deepEqual(r.shape, t.shape, k);
      assert.deepEqual([...r.data], [...t.data], k);
    }
    assert.deepEqual([...toFloat32(back.tensors.get('a.half')!)], [0.0999755859375, -2, 65504, 1.1920928955078125e-7]);

    // layout: 8-byte aligned header padded with spaces, keys sorted, offsets contiguous
    const bytes = fs.readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const headerText = bytes.subarray(8, 8 + n).toString('utf8');
    assert.match(headerText, /^\{.*\} *$/);
    const header = JSON.parse(headerText) as Record<string, { data_offsets: [number, number] }>;
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    assert.deepEqual(names, [...names].sort());
    let expectBegin = 0;
    for (const k of names) {
      assert.equal(header[k].data_offsets[0], expectBegin);
      expectBegin = header[k].data_offsets[1];
    }
    assert.equal(bytes.length, 8 + n + expectBegin);

    // a Map works too, and metadata is optional
    writeSafetensors(file, new Map([['only', fromFloat32([1], [1])]]));
    assert.deepEqual(readSafetensors(file).metadata, {});
    assert.deepEqual(fs.readdirSync(dir), ['model.safetensors']);

    // invalid tensors are refused before anything is written
    expectWeightsError(
      () => writeSafetensors(file, { bad: { dtype: 'F32', shape: [3], data: new Uint8Array(4) } }),
      file,
      /needs 12/,
    );
    assert.deepEqual(fs.readdirSync(dir), ['model.safetensors']);
    assert.equal(readSafetensors(file).tensors.size, 1);
    // writing into a missing folder fails cleanly
    const missing = path.join(dir, 'nope', 'x.safetensors');
    expectWeightsError(() => writeSafetensors(missing, tensors), missing, /cannot write/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------
// (3) malformed safetensors

function safetensorsBytes(header: unknown, dataLen: number, rawHeader?: string | Buffer): Buffer {
  const json = Buffer.isBuffer(rawHeader) ? rawHeader : Buffer.from(rawHeader ?? JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(dataLen)]);
}

test('malformed safetensors files give a WeightsFileError naming the file', () => {
  const dir = tmpDir();
  try {
    const t = (dtype: unknown, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });
    const cases: [string, Buffer, RegExp][] = [
      ['short', Buffer.from([1, 2, 3]), /shorter than the 8-byte/],
      ['empty', Buffer.alloc(0), /shorter than the 8-byte/],
      ['huge-header', Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0x7b, 0x7d]), /exceeds the 100000000-byte limit/],
      ['header-past-end', (() => { const b = safetensorsBytes({}, 0); b.writeBigUInt64LE(1000n); return b; })(), /runs past the end/],
      ['not-json', safetensorsBytes(null, 0, '{"a": '), /not valid JSON/],
      ['not-utf8', safetensorsBytes(null, 0, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), /not valid UTF-8/],
      ['array-header', safetensorsBytes([1, 2], 0), /must be a JSON object/],
      ['number-header', safetensorsBytes(5, 0), /must be a JSON object/],
      ['entry-not-object', safetensorsBytes({ x: 5 }, 0), /tensor "x" entry must be an object/],
      ['unknown-dtype', safetensorsBytes({ x: t('F128', [1], [0, 16]) }, 16), /unsupported dtype "F128"/],
      ['missing-dtype', safetensorsBytes({ x: { shape: [1], data_offsets: [0, 4] } }, 4), /no "dtype"/],
      ['shape-not-array', safetensorsBytes({ x: t('F32', 4, [0, 16]) }, 16), /shape must be an array of non-negative integers/],
      ['shape-negative', safetensorsBytes({ x: t('F32', [-1, 4], [0, 16]) }, 16), /shape must be/],
      ['shape-fraction', safetensorsBytes({ x: t('F32', [1.5], [0, 16]) }, 16), /shape must be/],
      ['shape-string', safetensorsBytes({ x: t('F32', ['4'], [0, 16]) }, 16), /shape must be/],
      ['offsets-missing', safetensorsBytes({ x: t('F32', [4], undefined) }, 16), /data_offsets must be \[begin, end\]/],
      ['offsets-three', safetensorsBytes({ x: t('F32', [4], [0, 8, 16]) }, 16), /data_offsets must be/],
      ['offsets-float', safetensorsBytes({ x: t('F32', [4], [0, 16.5]) }, 17), /data_offsets must be/],
      ['offsets-negative', safetensorsBytes({ x: t('F32', [4], [-16, 0]) }, 16), /data_offsets must be/],
      ['begin-after-end', safetensorsBytes({ x: t('F32', [0], [8, 4]) }, 16), /begin > end/],
      ['end-outside', safetensorsBytes({ x: t('F32', [4], [10, 99999]) }, 5000), /tensor "x" data offsets \[10, 99999\] lie outside the 5000-byte data section/],
      ['size-mismatch', safetensorsBytes({ x: t('F32', [4], [0, 12]) }, 16), /has 12 data bytes but F32\[4\] needs 16/],
      ['overlap', safetensorsBytes({ x: t('F32', [4], [0, 16]), y: t('F32', [2], [8, 16]) }, 16), /overlapping/],
      ['metadata-not-object', safetensorsBytes({ __metadata__: ['a'] }, 0), /"__metadata__" must be an object/],
      ['metadata-not-string', safetensorsBytes({ __metadata__: { epoch: 3 } }, 0), /"__metadata__" value for "epoch" must be a string/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const file = path.join(dir, `${name}.safetensors`);
      fs.writeFileSync(file, bytes);
      expectWeightsError(() => readSafetensors(file), file, pattern);
      expectWeightsError(() => readWeightsFile(file), file, pattern);
    }
    // content dispatch: a header of 0x580 bytes starts with 80 05, like a pickle, but is safetensors
    const tricky = path.join(dir, 'tricky.bin');
    fs.writeFileSync(tricky, safetensorsBytes(null, 4, JSON.stringify({ x: t('F32', [1], [0, 4]) }).padEnd(0x580, ' ')));
    assert.deepEqual([...readWeightsFile(tricky).keys()], ['x']);
    // gaps are allowed, and so are zero-length tensors anywhere
    const gap = path.join(dir, 'gap.safetensors');
    fs.writeFileSync(gap, safetensorsBytes({ x: t('F32', [1], [4, 8]), y: t('U8', [0], [2, 2]), z: t('U8', [2], [10, 12]) }, 16));
    const ok = readSafetensors(gap);
    assert.deepEqual([...ok.tensors.keys()].sort(), ['x', 'y', 'z']);
    // a missing file is a WeightsFileError too
    const missing = path.join(dir, 'missing.safetensors');
    expectWeightsError(() => readSafetensors(missing), missing, /ENOENT/);
    expectWeightsError(() => readWeightsFile(missing), missing, /ENOENT/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------
// (4) hand-built checkpoints: forbidden globals are refused, valid ones load

test('pickles that name dangerous globals are refused', () => {
  const dir = tmpDir();
  try {
    const marker = path.join(dir, 'pwned');
    const evil: [string, Uint8Array][] = [
      ['os.system', pk(op.proto, op.global('os', 'system'), op.str(`touch ${marker}`), op.tuple1, op.reduce, op.stop)],
      ['posix.system', pk(op.proto, op.global('posix', 'system'), op.str(`touch ${marker}`), op.tuple1, op.reduce, op.stop)],
      ['builtins.eval', pk(op.proto, op.str('builtins'), op.str('eval'), op.stackGlobal, op.str('1'), op.tuple1, op.reduce, op.stop)],
      ['subprocess.Popen', pk(op.proto, op.global('subprocess', 'Popen'), op.emptyTuple, op.reduce, op.stop)],
      // hidden inside an otherwise normal state dict, after a valid tensor
      ['os.system', (() => {
        const ok = tensorPickle('params', 'w', [2], [1], 2);
        return pk([...ok.subarray(0, ok.length - 1)], op.global('os', 'system'), op.str('true'), op.tuple1, op.reduce, op.stop);
      })()],
    ];
    for (const [i, [name, pickle]] of evil.entries()) {
      const file = path.join(dir, `evil${i}.pth`);
      fs.writeFileSync(
        file,
        makeZip([
          { name: 'evil/data.pkl', data: pickle },
          { name: 'evil/data/0', data: f32Bytes([1, 2]) },
          { name: 'evil/version', data: Buffer.from('3\n') },
        ]),
      );
      const err = expectWeightsError(() => readTorchCheckpoint(file), file, /forbidden global/);
      assert.equal(err.message, `${file}: forbidden global "${name}" in pickle; refusing to load`);
      expectWeightsError(() => readWeightsFile(file), file, /forbidden global/);
    }
    assert.equal(fs.existsSync(marker), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('hand-built checkpoints: deflate, strided tensors, nesting, module. prefix, errors', () => {
  const name = 'ckpt.pth';
  // transposed view: size (2,3), stride (1,2) over storage [0..5]
  const zip = makeZip([
    { name: 'archive/data.pkl', data: tensorPickle('state_dict', 'module.w', [2, 3], [1, 2], 6), deflate: true },
    { name: 'archive/data/0', data: f32Bytes([0, 1, 2, 3, 4, 5]), deflate: true },
    { name: 'archive/version', data: Buffer.from('3\n') },
  ]);
  const m = parseTorchCheckpoint(zip, name);
  assert.deepEqual([...m.keys()], ['w']);
  const w = m.get('w')!;
  assert.equal(w.dtype, 'F32');
  assert.deepEqual(w.shape, [2, 3]);
  assert.deepEqual([...toFloat32(w)], [0, 2, 4, 1, 3, 5]);
  assert.equal(parseWeights(zip, name).size, 1);

  // zip64 records and extra fields; "params_ema" nesting
  const z64 = makeZip(
    [
      { name: 'deep/data.pkl', data: tensorPickle('params_ema', 'w', [3], [2], 6) },
      { name: 'deep/data/0', data: f32Bytes([0, 1, 2, 3, 4, 5]), deflate: true },
    ],
    true,
  );
  const m64 = parseTorchCheckpoint(z64, name);
  assert.deepEqual([...toFloat32(m64.get('w')!)], [0, 2, 4]);

  const ckpt = (pickle: Uint8Array, storage = f32Bytes([0, 1, 2, 3, 4, 5]), storageName = 'archive/data/0') =>
    makeZip([
      { name: 'archive/data.pkl', data: pickle },
      { name: storageName, data: storage },
    ]);
  // view beyond the storage
  expectWeightsError(() => parseTorchCheckpoint(ckpt(tensorPickle('params', 'w', [4, 3], [3, 1], 6)), name), name, /reaches element 11 of storage "0"/);
  // storage entry missing
  expectWeightsError(() => parseTorchCheckpoint(ckpt(tensorPickle('params', 'w', [2], [1], 2), f32Bytes([1, 2]), 'archive/data/7'), name), name, /storage "0" is missing/);
  // storage shorter than declared
  expectWeightsError(() => parseTorchCheckpoint(ckpt(tensorPickle('params', 'w', [2], [1], 9)), name), name, /storage "0" has 24 bytes/);
  // truncated pickle, bad opcode, stack underflow, memo miss
  const good = tensorPickle('params', 'w', [2], [1], 2);
  expectWeightsError(() => parseTorchCheckpoint(ckpt(good.subarray(0, 40)), name), name, /truncated|without a STOP/);
  expectWeightsError(() => parseTorchCheckpoint(ckpt(pk(op.proto, 0xff, op.stop)), name), name, /unsupported or invalid pickle opcode 0xff/);
  expectWeightsError(() => parseTorchCheckpoint(ckpt(pk(op.proto, op.tuple1, op.stop)), name), name, /stack underflow/);
  expectWeightsError(() => parseTorchCheckpoint(ckpt(pk(op.proto, [0x68, 9], op.stop)), name), name, /memo entry 9 is missing/);
  expectWeightsError(() => parseTorchCheckpoint(ckpt(pk(op.proto, op.emptyTuple, op.stop)), name), name, /top-level object .* is a tuple/);
  // zip problems
  expectWeightsError(() => parseTorchCheckpoint(zip.subarray(0, zip.length - 10), name), name, /zip/);
  expectWeightsError(() => parseTorchCheckpoint(makeZip([{ name: 'x/other', data: new Uint8Array(3) }]), name), name, /no data\.pkl/);
  const badCrc = makeZip([{ name: 'a/data.pkl', data: good, crc: 1234 }]);
  expectWeightsError(() => parseTorchCheckpoint(badCrc, name), name, /CRC-32/);
  const legacy = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
  expectWeightsError(() => parseTorchCheckpoint(legacy, name), name, /legacy/);
  expectWeightsError(() => parseWeights(legacy, name), name, /legacy/);
});

// ---------------------------------------------------------------------------
// (5) fuzz: mutated fixtures end in a result or a WeightsFileError

/** One random mutation: flip/overwrite bytes (biased towards `hot` ranges), truncate, insert or delete. */
function mutate(src: Uint8Array, rnd: () => number, hot: [number, number][]): Uint8Array {
  const pick = (): number => {
    if (hot.length && rnd() < 0.8) {
      const [a, b] = hot[Math.floor(rnd() * hot.length)];
      return a + Math.floor(rnd() * Math.max(1, b - a));
    }
    return Math.floor(rnd() * src.length);
  };
  const kind = rnd();
  if (kind < 0.15) return src.slice(0, Math.floor(rnd() * src.length));
  if (kind < 0.25) {
    const at = pick();
    const n = 1 + Math.floor(rnd() * 16);
    const out = new Uint8Array(Math.max(0, src.length - n));
    out.set(src.subarray(0, Math.min(at, out.length)));
    if (at + n < src.length) out.set(src.subarray(at + n), at);
    return out;
  }
  if (kind < 0.35) {
    const at = pick();
    const ins = Array.from({ length: 1 + Math.floor(rnd() * 16) }, () => Math.floor(rnd() * 256));
    const out = new Uint8Array(src.length + ins.length);
    out.set(src.subarray(0, at));
    out.set(ins, at);
    out.set(src.subarray(at), at + ins.length);
    return out;
  }
  const out = src.slice();
  const count = 1 + Math.floor(rnd() * 8);
  const special = [0, 1, 0x7f, 0x80, 0xff, 0x28, 0x2e, 0x51, 0x52, 0x63, 0x68, 0x71, 0x74, 0x7d, 0x93];
  for (let i = 0; i < count; i++) {
    const at = pick();
    if (at >= out.length) continue;
    const r = rnd();
    out[at] = r < 0.4 ? out[at] ^ (1 << Math.floor(rnd() * 8)) : r < 0.7 ? special[Math.floor(rnd() * special.length)] : Math.floor(rnd() * 256);
  }
  return out;
}

function fuzz(label: string, base: Uint8Array, iterations: number, seed: number, hot: [number, number][], prepare: (m: Uint8Array) => Uint8Array = (m) => m): { ok: number; errors: number } {
  const rnd = mulberry32(seed);
  let ok = 0;
  let errors = 0;
  for (let i = 0; i < iterations; i++) {
    const input = prepare(mutate(base, rnd, hot));
    const started = Date.now();
    try {
      const res = parseWeights(input, `${label}#${i}`);
      assert.ok(res instanceof Map);
      ok++;
    } catch (e) {
      if (!(e instanceof WeightsFileError)) {
        assert.fail(`${label} mutation ${i}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      }
      assert.ok(e.message.startsWith(`${label}#${i}: `));
      assert.ok(!/internal error/.test(e.message), `${label} mutation ${i}: ${e.message}`);
      // eslint-disable-next-line no-control-regex
      assert.ok(!/[\u0000-\u001f]/.test(e.message), `${label} mutation ${i}: control characters in message`);
      errors++;
    }
    assert.ok(Date.now() - started < 5000, `${label} mutation ${i} took too long`);
  }
  return { ok, errors };
}

// 300 per file in the suite; MSDI_FUZZ_COUNT=1000 for the full run (see the README).
const FUZZ_COUNT = Number(process.env.MSDI_FUZZ_COUNT ?? 300) || 300;

test(`fuzz: ${FUZZ_COUNT} mutations of each fixture end in a result or a WeightsFileError`, { skip: noFixtures, timeout: 900_000 }, () => {
  const st = new Uint8Array(fs.readFileSync(ST));
  const headerEnd = 8 + Number(Buffer.from(st).readBigUInt64LE(0));
  const sres = fuzz('st', st, FUZZ_COUNT, 1, [[0, 8], [0, headerEnd]]);

  const pth = new Uint8Array(fs.readFileSync(PTH));
  const zip = new ZipArchive(pth, 'pth');
  const pklName = [...zip.entries.keys()].find((n) => n.endsWith('/data.pkl'))!;
  const pklEntry = zip.entries.get(pklName)!;
  const cdStart = pth.length - 22 - zip.entries.size * 100; // roughly the central directory
  const pres = fuzz('pth', pth, FUZZ_COUNT, 2, [
    [0, pklEntry.localOffset + 200],
    [Math.max(0, cdStart), pth.length],
  ]);

  // The raw mutations above mostly die at the CRC check; also mutate data.pkl
  // itself and re-zip it with a matching CRC so the pickle interpreter is exercised.
  const entries = [...zip.entries.keys()].map((n) => ({ name: n, data: zip.read(n) }));
  const crcs = new Map(entries.map((e) => [e.name, crc32(e.data)]));
  const pkl = zip.read(pklName);
  const kres = fuzz('pkl', pkl, FUZZ_COUNT, 3, [], (mutated) =>
    makeZip(entries.map((e) => (e.name === pklName ? { name: e.name, data: mutated } : { ...e, crc: crcs.get(e.name) }))),
  );
  for (const r of [sres, pres, kres]) assert.equal(r.ok + r.errors, FUZZ_COUNT);
  assert.ok(kres.errors > 0 && sres.errors > 0 && pres.errors > 0);
});
