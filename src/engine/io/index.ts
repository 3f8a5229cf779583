/**
 * Weights IO: safetensors read/write and torch.save checkpoint reading, in pure
 * TypeScript. Every problem with a file is reported as a WeightsFileError.
 */

import { WeightsFileError, readWeightsBytes } from './errors.js';
import type { RawTensor } from './raw-tensor.js';
import { parseSafetensors } from './safetensors.js';
import { isLegacyTorchFile, parseTorchCheckpoint } from './torch-checkpoint.js';

export { WeightsFileError } from './errors.js';
export { DTYPES, f32BitsToF16Bits, fromFloat32, isDType, itemSize, numel, toFloat32 } from './raw-tensor.js';
export type { DType, RawTensor } from './raw-tensor.js';
export {
  MAX_HEADER_BYTES,
  encodeSafetensors,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
} from './safetensors.js';
export type { SafetensorsContents } from './safetensors.js';
export { ZipArchive, isLegacyTorchFile, parseTorchCheckpoint, readTorchCheckpoint } from './torch-checkpoint.js';

/** True when the bytes start like a zip archive ("PK\x03\x04"), i.e. a torch.save checkpoint. */
export function isZip(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x50 && buf[1] === 0x4b && buf[2] === 0x03 && buf[3] === 0x04;
}

/** Parses weights held in memory, choosing the format from the content. */
export function parseWeights(buf: Uint8Array, name: string): Map<string, RawTensor> {
  if (isZip(buf) || isLegacyTorchFile(buf)) return parseTorchCheckpoint(buf, name);
  return parseSafetensors(buf, name).tensors;
}

/**
 * Reads a weights file: a torch.save checkpoint (zip) or a safetensors file,
 * detected from the content rather than the extension.
 */
export function readWeightsFile(file: string): Map<string, RawTensor> {
  const buf = readWeightsBytes(file);
  return parseWeights(buf, file);
}
