// The representation of a stage-1 model (net_prior and prior_upsampling: what stage 2 takes
// and freezes) as its own float16 safetensors file, for `msdi train stage2 --init`.
// Usage: node --import tsx scripts/gpu/representation.mts STAGE1 OUT.safetensors
// (STAGE1: MSDI2E weights, or a stage-1 checkpoint.)
import { writeSafetensors, type RawTensor } from '../../src/engine/io/index.js';
import { readNetworkWeights } from '../../src/train/checkpoint.js';
import { isRepresentationKey } from '../../src/models/registry.js';
import { tidy } from '../../src/engine/index.js';
import { rawToTensor, tensorToRaw } from '../../src/engine/raw.js';

const [src, out] = process.argv.slice(2);
if (!src || !out) throw new Error('usage: representation.mts STAGE1 OUT.safetensors');
const rep = new Map<string, RawTensor>();
for (const [k, v] of readNetworkWeights(src)) {
  if (isRepresentationKey(k)) rep.set(k, tidy(() => tensorToRaw(rawToTensor(v), 'F16')));
}
if (!rep.size) throw new Error(`${src}: no net_prior / prior_upsampling weights (not a stage-1 model)`);
writeSafetensors(out, rep, { arch: 'MSDI2E-representation', source: src.split('/').pop() ?? src });
console.log(`${out}: ${rep.size} tensors of the representation`);
