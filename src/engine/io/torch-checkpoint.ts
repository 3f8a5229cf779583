/**
 * Reader for PyTorch checkpoints written by torch.save (torch >= 1.6 zip
 * format), in pure TypeScript.
 *
 * The archive is a zip file `<prefix>/data.pkl` + `<prefix>/data/<key>` (one
 * entry per storage). data.pkl is a pickle; it is evaluated by a small,
 * SAFE interpreter that never executes anything: GLOBAL/STACK_GLOBAL names are
 * checked against an allow-list (OrderedDict, the torch tensor rebuild
 * functions and the storage classes) and every other name is refused.
 * zip.ts reads the archive, pickle.ts evaluates data.pkl; this file ties them
 * together and resolves the storages the pickle refers to.
 */
import { WeightsFileError, readWeightsBytes } from './errors.js';
import { itemSize, type RawTensor } from './raw-tensor.js';
import { ZipArchive } from './zip.js';
import { PickleMachine, PyDict, PyGlobal, Storage, Tensor, Tuple, printable, typeName, type PyValue, type Unpickler } from './pickle.js';

export { ZipArchive } from './zip.js';

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
