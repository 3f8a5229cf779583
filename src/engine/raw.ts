/** Conversions between file-level RawTensors (safetensors / torch bytes) and engine Tensors. */
import { Tensor, type DType } from './tensor.js';
import type { RawTensor, DType as FileDType } from './io/raw-tensor.js';
import { ValidationError } from './errors.js';

const TO_ENGINE: Partial<Record<FileDType, DType>> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64', I32: 'int32', U8: 'uint8', BOOL: 'bool',
};
const TO_FILE: Record<DType, FileDType> = {
  float32: 'F32', float16: 'F16', bfloat16: 'BF16', float64: 'F64', int64: 'I64', int32: 'I32', uint8: 'U8', bool: 'BOOL',
};

export function rawToTensor(raw: RawTensor, device = 'cpu'): Tensor {
  const dtype = TO_ENGINE[raw.dtype];
  if (!dtype) throw new ValidationError(`rawToTensor: expected a dtype the engine supports for tensor, got ${raw.dtype}`);
  return Tensor.fromArray(raw.data, raw.shape, { dtype, device });
}

/** The tensor's bytes, optionally converted (float32 -> float16 for compact weights files). */
export function tensorToRaw(t: Tensor, as?: FileDType): RawTensor {
  const target = as && t.dtype.startsWith('float') ? TO_ENGINE[as]! : t.dtype;
  const src = target === t.dtype ? t : t.to({ dtype: target });
  const raw: RawTensor = { dtype: TO_FILE[target], shape: t.shape, data: src.bytes() };
  if (src !== t) src.dispose();
  return raw;
}
