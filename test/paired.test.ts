import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { listPairs, loadPairs, PairedLoader, type PairBatch } from '../src/data/paired.js';
import { Rng } from '../src/data/rng.js';
import { makeIdentityPairs } from '../src/data/identity-pairs.js';
import { channelOrder, PERMUTATIONS } from '../src/data/channel-permutation.js';

const W = 40;
const H = 30;
const NAMES = ['a.png', 'b.png', 'c.png', 'd.png', 'e.png'];

let root: string;
let dir: string; // 5 pairs of 40x30 random PNGs, target == input
const src = new Map<string, Uint8Array>(); // name -> HWC RGB pixels

async function writePng(path: string, px: Uint8Array, w: number, h: number, channels: 1 | 3 = 3): Promise<void> {
  await sharp(Buffer.from(px), { raw: { width: w, height: h, channels } }).png().toFile(path);
}

async function makeDataset(d: string, names: string[], w = W, h = H, seed = 1): Promise<void> {
  await mkdir(join(d, 'input'), { recursive: true });
  await mkdir(join(d, 'target'), { recursive: true });
  const rng = new Rng(seed);
  for (const name of names) {
    const px = new Uint8Array(w * h * 3);
    for (let k = 0; k < px.length; k++) px[k] = rng.int(0, 255);
    src.set(name, px);
    await writePng(join(d, 'input', name), px, w, h);
    await writePng(join(d, 'target', name), px, w, h);
  }
}

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function sameBatch(a: PairBatch, b: PairBatch): boolean {
  return (
    a.n === b.n &&
    a.size === b.size &&
    a.names.join('|') === b.names.join('|') &&
    sameBytes(a.blurry, b.blurry) &&
    sameBytes(a.sharp, b.sharp)
  );
}

/** Sample k of a batch as an S x S HWC uint8 array. */
function sampleHWC(b: PairBatch, k: number, which: 'blurry' | 'sharp' = 'blurry'): Uint8Array {
  const S = b.size;
  const plane = S * S;
  const data = b[which];
  const off = k * 3 * plane;
  const out = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round(data[off + c * plane + p]! * 255);
  }
  return out;
}

/** The S x S window at (top, left) of an HWC image of width w. */
function windowOf(img: Uint8Array, w: number, top: number, left: number, S: number): Uint8Array {
  const out = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++) out.set(img.subarray(((top + y) * w + left) * 3, ((top + y) * w + left + S) * 3), y * S * 3);
  return out;
}

/** Dihedral variant of a square HWC image: optional mirror (x -> S-1-x), then k quarter turns. */
function dihedral(img: Uint8Array, S: number, k: number, mirror: boolean): Uint8Array {
  let cur = img;
  if (mirror) {
    const o = new Uint8Array(cur.length);
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) o[(y * S + x) * 3 + c] = cur[(y * S + (S - 1 - x)) * 3 + c]!;
    cur = o;
  }
  for (let r = 0; r < k; r++) {
    const o = new Uint8Array(cur.length);
    // quarter turn: out(y, x) = in(x, S-1-y)
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) o[(y * S + x) * 3 + c] = cur[(x * S + (S - 1 - y)) * 3 + c]!;
    cur = o;
  }
  return cur;
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Which dihedral variant (0..7) of which source window the crop is; throws if none. */
function identify(crop: Uint8Array, name: string, S: number): { variant: number; top: number; left: number } {
  const img = src.get(name)!;
  for (let top = 0; top + S <= H; top++) {
    for (let left = 0; left + S <= W; left++) {
      const win = windowOf(img, W, top, left, S);
      for (let v = 0; v < 8; v++) {
        if (eq(dihedral(win, S, v % 4, v >= 4), crop)) return { variant: v, top, left };
      }
    }
  }
  throw new Error(`crop of ${name} is no dihedral variant of any ${S}x${S} window`);
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'msdi-paired-'));
  dir = join(root, 'gopro');
  await makeDataset(dir, NAMES);
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('listPairs', () => {
  test('sorted names present in both folders', () => {
    assert.deepEqual(listPairs(dir), NAMES);
  });

  test('clear errors naming the folder', async () => {
    const bad = join(root, 'bad');
    await mkdir(join(bad, 'target'), { recursive: true });
    assert.throws(() => listPairs(bad), (e: Error) => e.message.includes(join(bad, 'input')) && /missing/.test(e.message));
    await mkdir(join(bad, 'input'));
    assert.throws(() => listPairs(bad), (e: Error) => e.message.includes(join(bad, 'input')) && /no blurry images/.test(e.message));
    await writeFile(join(bad, 'input', 'x.png'), 'not used');
    assert.throws(() => listPairs(bad), (e: Error) => e.message.includes(join(bad, 'target')) && /no sharp images/.test(e.message));
    await writeFile(join(bad, 'target', 'y.png'), 'not used');
    await writeFile(join(bad, 'input', 'z.png'), 'not used');
    await writeFile(join(bad, 'target', 'z.png'), 'not used');
    assert.throws(
      () => listPairs(bad),
      (e: Error) => !e.message.includes('\n') && /do not match/.test(e.message) && /x\.png/.test(e.message) && /y\.png/.test(e.message),
    );
    const none = join(root, 'nowhere');
    assert.throws(() => new PairedLoader({ dir: none, crop: 8, batch: 1, seed: 0 }), (e: Error) => e.message.includes(join(none, 'input')));
  });
});

describe('PairedLoader', () => {
  test('shapes, ranges, pairing', async () => {
    const L = new PairedLoader({ dir, crop: 16, batch: 3, seed: 5, workers: 0 });
    try {
      assert.deepEqual(L.names, NAMES);
      const b = await L.get(0);
      assert.equal(b.n, 3);
      assert.equal(b.size, 16);
      assert.equal(b.names.length, 3);
      assert.equal(b.blurry.length, 3 * 3 * 16 * 16);
      assert.equal(b.sharp.length, 3 * 3 * 16 * 16);
      for (const v of b.blurry) assert.ok(v >= 0 && v <= 1);
      assert.ok(sameBytes(b.blurry, b.sharp));
    } finally {
      await L.close();
    }
    await assert.rejects(L.get(1), /close/);
  });

  test('deterministic across workers, prefetch and fetch history', async () => {
    const o = { dir, crop: 16, batch: 2, seed: 11 };
    const A = new PairedLoader({ ...o, workers: 0, prefetch: 0 });
    const B = new PairedLoader({ ...o, workers: 1, prefetch: 2 });
    const C = new PairedLoader({ ...o, workers: 2, prefetch: 3 });
    try {
      const a: PairBatch[] = [];
      for (let s = 0; s < 10; s++) a.push(await A.get(s));
      const b: PairBatch[] = [];
      for (let s = 0; s < 10; s++) b.push(await B.get(s));
      for (let s = 0; s < 10; s++) assert.ok(sameBatch(a[s]!, b[s]!), `workers 0 vs 1, step ${s}`);
      // C: random access, get(7) first (no earlier steps), then out of order; concurrent calls
      const c7 = await C.get(7);
      assert.ok(sameBatch(c7, a[7]!), 'get(7) without 0..6');
      const [c3, c9, c4] = await Promise.all([C.get(3), C.get(9), C.get(4)]);
      assert.ok(sameBatch(c3, a[3]!));
      assert.ok(sameBatch(c9, a[9]!));
      assert.ok(sameBatch(c4, a[4]!));
      assert.ok(sameBatch(await C.get(7), a[7]!), 'get(7) again');
      for (const x of a) assert.ok(sameBytes(x.blurry, x.sharp), 'pairs survive augmentation');
    } finally {
      await Promise.all([A.close(), B.close(), C.close()]);
    }
  });

  test('different seeds differ', async () => {
    const A = new PairedLoader({ dir, crop: 16, batch: 2, seed: 1, workers: 0 });
    const B = new PairedLoader({ dir, crop: 16, batch: 2, seed: 2, workers: 0 });
    try {
      let differ = 0;
      for (let s = 0; s < 3; s++) if (!sameBatch(await A.get(s), await B.get(s))) differ++;
      assert.equal(differ, 3);
    } finally {
      await Promise.all([A.close(), B.close()]);
    }
  });

  test('every sample once per epoch (also when batch does not divide N)', async () => {
    for (const batch of [1, 2, 3]) {
      const L = new PairedLoader({ dir, crop: 8, batch, seed: 3, workers: 0, prefetch: 0 });
      try {
        const stream: string[] = [];
        const steps = Math.ceil(20 / batch);
        for (let s = 0; s < steps; s++) stream.push(...(await L.get(s)).names);
        const orders = new Set<string>();
        for (let e = 0; e < 4; e++) {
          const epoch = stream.slice(e * 5, e * 5 + 5);
          assert.deepEqual([...epoch].sort(), NAMES, `batch ${batch}, epoch ${e}`);
          orders.add(epoch.join());
        }
        assert.ok(orders.size > 1, 'epochs are reshuffled');
      } finally {
        await L.close();
      }
    }
  });

  test('augmentation: crops are windows of the source, all 8 dihedral variants occur', async () => {
    const S = 12;
    const L = new PairedLoader({ dir, crop: S, batch: 2, seed: 7, workers: 0, prefetch: 4 });
    const P = new PairedLoader({ dir, crop: S, batch: 2, seed: 7, workers: 0, augment: false });
    try {
      const variants = new Set<number>();
      const tops = new Set<number>();
      const lefts = new Set<number>();
      for (let s = 0; s < 40; s++) {
        const b = await L.get(s);
        assert.ok(sameBytes(b.blurry, b.sharp), `pairing at step ${s}`);
        for (let k = 0; k < b.n; k++) {
          const id = identify(sampleHWC(b, k), b.names[k]!, S);
          variants.add(id.variant);
          tops.add(id.top);
          lefts.add(id.left);
        }
        if (s < 8) {
          // without augmentation: same names and crop positions, never transformed
          const p = await P.get(s);
          assert.deepEqual(p.names, b.names);
          for (let k = 0; k < p.n; k++) assert.equal(identify(sampleHWC(p, k), p.names[k]!, S).variant, 0);
        }
      }
      assert.equal(variants.size, 8, `variants seen: ${[...variants].sort()}`);
      assert.ok(tops.size > 5 && lefts.size > 10, 'crop positions vary');
    } finally {
      await Promise.all([L.close(), P.close()]);
    }
  });

  test('images smaller than the crop: error naming the file (main thread and worker)', async () => {
    for (const workers of [0, 1]) {
      const L = new PairedLoader({ dir, crop: 31, batch: 1, seed: 0, workers });
      try {
        await assert.rejects(L.get(0), (e: Error) => /smaller than the crop size 31/.test(e.message) && e.message.includes(join(dir, 'input')));
      } finally {
        await L.close();
      }
    }
  });

  test('shards of world 2 together equal the global batch', async () => {
    const o = { dir, crop: 10, batch: 4, seed: 9, workers: 0 };
    const G = new PairedLoader(o);
    const R0 = new PairedLoader({ ...o, shard: { rank: 0, world: 2 } });
    const R1 = new PairedLoader({ ...o, shard: { rank: 1, world: 2 } });
    try {
      for (let s = 0; s < 4; s++) {
        const [g, r0, r1] = await Promise.all([G.get(s), R0.get(s), R1.get(s)]);
        assert.equal(r0.n, 2);
        assert.equal(r1.n, 2);
        assert.deepEqual([...r0.names, ...r1.names], g.names);
        const cat = new Float32Array(g.blurry.length);
        cat.set(r0.blurry, 0);
        cat.set(r1.blurry, r0.blurry.length);
        assert.ok(sameBytes(cat, g.blurry), `step ${s}`);
      }
    } finally {
      await Promise.all([G.close(), R0.close(), R1.close()]);
    }
    assert.throws(() => new PairedLoader({ ...o, batch: 3, shard: { rank: 0, world: 2 } }), /divisible/);
  });
});

describe('blur levels (msdi synth --levels folders)', () => {
  test('each sample gets a level its pair has, cropped and augmented like the pair; pairs without get level 1', async () => {
    // level files here are the inverted images: a sample's level crop must be 1 - its blurry crop
    const d = join(root, 'levels');
    await makeDataset(d, NAMES.map((n) => `level-test-${n}`), W, H, 7); // own names: src keeps the main dataset's pixels
    const have: Record<string, number[]> = { 'level-test-a.png': [0.5, 2], 'level-test-b.png': [2], 'level-test-c.png': [2] };
    for (const [name, levels] of Object.entries(have)) {
      for (const L of levels) {
        await mkdir(join(d, `level-${L}`), { recursive: true });
        await writePng(join(d, `level-${L}`, name), src.get(name)!.map((v) => 255 - v), W, H);
      }
    }
    const o = { dir: d, crop: 12, batch: 4, seed: 3, levels: [0.5, 2] };
    const main = new PairedLoader({ ...o, workers: 0 });
    const threaded = new PairedLoader({ ...o, workers: 1 });
    const seen = new Set<string>();
    try {
      for (let step = 0; step < 8; step++) {
        const [b, t] = await Promise.all([main.get(step), threaded.get(step)]);
        assert.ok(sameBatch(b, t) && sameBytes(b.levelBlurry!, t.levelBlurry!) && sameBytes(b.levels!, t.levels!), `step ${step}: workers differ`);
        const per = 3 * b.size * b.size;
        b.names.forEach((name, k) => {
          const L = b.levels![k]!;
          seen.add(`${name}@${L}`);
          const level = b.levelBlurry!.subarray(k * per, (k + 1) * per);
          const blurry = b.blurry.subarray(k * per, (k + 1) * per);
          if (have[name]) {
            assert.ok(have[name]!.includes(L), `${name} got level ${L}`);
            assert.ok(level.every((v, i) => Math.abs(v - (1 - blurry[i]!)) < 1e-6), `${name}: the level crop is not the pair's window`);
          } else {
            assert.equal(L, 1);
            assert.ok(sameBytes(level, blurry));
          }
        });
      }
    } finally {
      await Promise.all([main.close(), threaded.close()]);
    }
    assert.ok(seen.has('level-test-a.png@0.5') && seen.has('level-test-a.png@2'), `both levels of a drawn: ${[...seen].join(' ')}`);
    assert.throws(() => new PairedLoader({ ...o, levels: [3] }), /no blur levels 3 in .*level-L/);
  });
});

describe('decoded-image cache (cacheBytes)', () => {
  test('the same batches as without it; once the images are in, crops come from memory (files gone); the budget holds', async () => {
    // 4 pairs of 8-bit PNGs and one of 16 bits, targets inverted, level-2 files for two pairs
    const d = join(root, 'cached');
    const names = ['p.png', 'q.png', 'r.png', 's.png', 't16.png'];
    for (const sub of ['input', 'target', 'level-2']) await mkdir(join(d, sub), { recursive: true });
    const rng = new Rng(21);
    for (const name of names) {
      if (name.startsWith('t16')) {
        const u16 = new Uint16Array(W * H * 3).map(() => rng.int(0, 65535));
        for (const [sub, px] of [['input', u16], ['target', u16.map((v) => 65535 - v)]] as const) {
          await sharp(px, { raw: { width: W, height: H, channels: 3 } }).toColourspace('rgb16').png().toFile(join(d, sub, name));
        }
        continue;
      }
      const px = new Uint8Array(W * H * 3).map(() => rng.int(0, 255));
      await writePng(join(d, 'input', name), px, W, H);
      await writePng(join(d, 'target', name), px.map((v) => 255 - v), W, H);
      if (name < 'r') await writePng(join(d, 'level-2', name), px.map((v) => v >> 1), W, H);
    }
    const o = { dir: d, crop: 12, batch: 3, seed: 9, levels: [2] };
    const same = (a: PairBatch, b: PairBatch) => sameBatch(a, b) && sameBytes(a.levelBlurry!, b.levelBlurry!);
    const plain = new PairedLoader({ ...o, workers: 0 });
    const loaders = [new PairedLoader({ ...o, workers: 0, cacheBytes: 1e9 }), new PairedLoader({ ...o, workers: 2, cacheBytes: 1e9 })];
    // room for about three of the 12 images (8-bit: 3600 bytes, 16-bit: 7200)
    const small = new PairedLoader({ ...o, workers: 1, cacheBytes: 12000 });
    try {
      const want: PairBatch[] = [];
      for (let step = 0; step < 16; step++) want.push(await plain.get(step));
      for (const L of [...loaders, small]) {
        for (let step = 0; step < 12; step++) assert.ok(same(await L.get(step), want[step]!), `step ${step}, workers ${L.workers}, cache ${L.cacheBytes}`);
      }
      for (const L of loaders) assert.deepEqual(L.cacheStats(), { images: 12, bytes: 10 * W * H * 3 + 2 * W * H * 6, full: false });
      // full: it decodes crops only from then on, as without a cache
      const s = small.cacheStats();
      assert.ok(s.images >= 2 && s.images < 12 && s.bytes <= 12000 && s.full, `small cache: ${JSON.stringify(s)}`);
      await rm(d, { recursive: true });
      for (const L of loaders) {
        for (let step = 12; step < 16; step++) assert.ok(same(await L.get(step), want[step]!), `step ${step} from memory, workers ${L.workers}`);
      }
      // (steps 12 and 13 were prefetched before the files went)
      await assert.rejects(small.get(15), /cannot read|cannot decode|no such file/i, 'the small cache cannot hold everything');
    } finally {
      await Promise.all([plain.close(), small.close(), ...loaders.map((L) => L.close())]);
    }
    assert.throws(() => new PairedLoader({ ...o, cacheBytes: -1 }), /cacheBytes must be an integer >= 0/);
  });
});

describe('loadPairs', () => {
  test('whole images, limit, centred maxSide crop', async () => {
    const all = await loadPairs(dir);
    assert.deepEqual(
      all.map((p) => p.name),
      NAMES,
    );
    const p = all[1]!;
    assert.equal(p.width, W);
    assert.equal(p.height, H);
    assert.equal(p.blurry.length, 3 * W * H);
    const px = src.get(p.name)!;
    const plane = W * H;
    for (let k = 0; k < plane; k += 37) {
      for (let c = 0; c < 3; c++) assert.equal(p.blurry[c * plane + k], Math.fround(px[k * 3 + c]! / 255));
    }
    assert.ok(sameBytes(p.blurry, p.sharp));
    assert.equal((await loadPairs(dir, { limit: 2 })).length, 2);
    const [q] = await loadPairs(dir, { limit: 1, maxSide: 20 });
    assert.equal(q!.width, 20);
    assert.equal(q!.height, 20);
    const win = windowOf(src.get(q!.name)!, W, 5, 10, 20);
    for (let k = 0; k < 400; k++) for (let c = 0; c < 3; c++) assert.equal(q!.blurry[c * 400 + k], Math.fround(win[k * 3 + c]! / 255));
  });

  test('16-bit, grey and EXIF-rotated files', async () => {
    const d = join(root, 'formats');
    await mkdir(join(d, 'input'), { recursive: true });
    await mkdir(join(d, 'target'), { recursive: true });
    // 16-bit RGB PNG, 20x16
    const u16 = new Uint16Array(20 * 16 * 3);
    for (let k = 0; k < u16.length; k++) u16[k] = (k * 2654435761) % 65536;
    const png16 = await sharp(u16, { raw: { width: 20, height: 16, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    // grey 8-bit PNG, 20x16
    const grey = new Uint8Array(20 * 16);
    for (let k = 0; k < grey.length; k++) grey[k] = (k * 7) % 256;
    // JPEG stored 16 wide x 20 high with EXIF orientation 6 (displayed 20 x 16)
    const rgb = new Uint8Array(16 * 20 * 3).fill(128);
    const jpg = await sharp(Buffer.from(rgb), { raw: { width: 16, height: 20, channels: 3 } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    for (const sub of ['input', 'target']) {
      await writeFile(join(d, sub, 'a16.png'), png16);
      await writePng(join(d, sub, 'b_grey.png'), grey, 20, 16, 1);
      await writeFile(join(d, sub, 'c_rot.jpg'), jpg);
    }
    const pairs = await loadPairs(d);
    assert.deepEqual(
      pairs.map((p) => [p.name, p.width, p.height]),
      [
        ['a16.png', 20, 16],
        ['b_grey.png', 20, 16],
        ['c_rot.jpg', 20, 16],
      ],
    );
    const plane = 20 * 16;
    for (let k = 0; k < plane; k += 13) {
      for (let c = 0; c < 3; c++) assert.equal(pairs[0]!.blurry[c * plane + k], Math.fround(u16[k * 3 + c]! / 65535));
      for (let c = 0; c < 3; c++) assert.equal(pairs[1]!.blurry[c * plane + k], Math.fround(grey[k]! / 255));
    }
    const L = new PairedLoader({ dir: d, crop: 16, batch: 3, seed: 0, workers: 1 });
    try {
      const b = await L.get(0);
      assert.equal(b.n, 3);
      assert.ok(sameBytes(b.blurry, b.sharp));
    } finally {
      await L.close();
    }
  });
});

describe('identity pairs (stage 1: some inputs are the sharp image itself)', () => {
  const fakeBatch = (n: number, size = 4): PairBatch => {
    const per = 3 * size * size;
    const blurry = new Float32Array(n * per).map((_, k) => -1 - k);
    const sharp = new Float32Array(n * per).map((_, k) => k);
    return { blurry, sharp, n, size, names: Array.from({ length: n }, (_, k) => `${k}.png`) };
  };

  test('the chosen samples get the sharp image, the others keep the blurry one', () => {
    const b = fakeBatch(8);
    const per = 48;
    const replaced = makeIdentityPairs(b, { seed: 1, step: 3, fraction: 0.5 });
    assert.ok(replaced.length > 0 && replaced.length < 8, `replaced ${replaced}`);
    for (let k = 0; k < 8; k++) {
      const got = b.blurry.subarray(k * per, (k + 1) * per);
      const want = replaced.includes(k) ? b.sharp.subarray(k * per, (k + 1) * per) : fakeBatch(8).blurry.subarray(k * per, (k + 1) * per);
      assert.deepEqual(got, want, `sample ${k}`);
    }
    assert.deepEqual(makeIdentityPairs(fakeBatch(8), { seed: 1, step: 3, fraction: 0.5 }), replaced, 'a pure function of seed and step');
    assert.notDeepEqual(makeIdentityPairs(fakeBatch(8), { seed: 1, step: 4, fraction: 0.5 }), replaced);
  });

  test('the fraction holds over many samples; 0 and 1 are none and all; shards agree with the whole batch', () => {
    let count = 0;
    for (let step = 0; step < 100; step++) count += makeIdentityPairs(fakeBatch(4), { seed: 0, step, fraction: 0.25 }).length;
    assert.ok(count > 70 && count < 130, `${count} of 400 at 0.25`);
    assert.deepEqual(makeIdentityPairs(fakeBatch(4), { seed: 0, step: 0, fraction: 0 }), []);
    assert.deepEqual(makeIdentityPairs(fakeBatch(4), { seed: 0, step: 0, fraction: 1 }), [0, 1, 2, 3]);
    for (let step = 0; step < 20; step++) {
      const whole = makeIdentityPairs(fakeBatch(4), { seed: 7, step, fraction: 0.5 });
      const lo = makeIdentityPairs(fakeBatch(2), { seed: 7, step, fraction: 0.5, first: 0 });
      const hi = makeIdentityPairs(fakeBatch(2), { seed: 7, step, fraction: 0.5, first: 2 }).map((k) => k + 2);
      assert.deepEqual([...lo, ...hi], whole, `step ${step}`);
    }
    assert.throws(() => makeIdentityPairs(fakeBatch(1), { seed: 0, step: 0, fraction: 1.5 }), /expected a fraction in \[0, 1\], got 1.5/);
  });
});

describe('channel permutation (colour augmentation)', () => {
  test('each sample\'s channels come in the order channelOrder draws, alike in both images; crops and flips do not move', async () => {
    const o = { dir, crop: 16, batch: 4, seed: 3 };
    const plain = new PairedLoader({ ...o, workers: 0 });
    const permuted = new PairedLoader({ ...o, workers: 1, permuteChannels: true });
    const half = new PairedLoader({ ...o, workers: 0, permuteChannels: true, shard: { rank: 1, world: 2 } });
    const seen = new Set<string>();
    const plane = 16 * 16;
    try {
      for (let step = 0; step < 6; step++) {
        const [a, b, h] = [await plain.get(step), await permuted.get(step), await half.get(step)];
        for (let i = 0; i < 4; i++) {
          const order = channelOrder(3, step, i);
          seen.add(order.join(''));
          for (const k of ['blurry', 'sharp'] as const) {
            for (let c = 0; c < 3; c++) {
              const want = a[k].subarray((3 * i + order[c]!) * plane, (3 * i + order[c]! + 1) * plane);
              assert.ok(sameBytes(b[k].subarray((3 * i + c) * plane, (3 * i + c + 1) * plane), want), `step ${step} sample ${i} ${k} channel ${c}`);
              if (i >= 2) assert.ok(sameBytes(h[k].subarray((3 * (i - 2) + c) * plane, (3 * (i - 2) + c + 1) * plane), want), `shard: step ${step} sample ${i}`);
            }
          }
        }
      }
    } finally {
      await Promise.all([plain.close(), permuted.close(), half.close()]);
    }
    assert.equal(seen.size, 6, `all six orders drawn over 24 samples: ${[...seen]}`);
    assert.deepEqual(PERMUTATIONS.map((p) => [...p].sort().join('')), Array(6).fill('012'));
  });
});
