// A wider copy of a trained deblurring network (msdi2_net, or the msdi_net ablation) that deblurs
// exactly as it does (src/models/widen.ts), for training to go on at a larger width. The script
// checks the two networks' outputs on a random image and refuses to write if they differ.
//
// Usage: node --import tsx scripts/widen-network.mts NETWORK OUT.safetensors WF [SEED]
import { manualSeed } from '../src/engine/index.js';
import { readNetworkWeights } from '../src/train/checkpoint.js';
import { detectArch, buildModel } from '../src/models/registry.js';
import { loadStateDict, saveWeights } from '../src/nn/state-dict.js';
import { loadWidened } from '../src/models/widen.js';
import type { MsdiNet } from '../src/models/msdi-net.js';
import { outputGap } from './lib/output-gap.mjs';

const [netFile, out, wfArg, seedArg] = process.argv.slice(2);
const wf = Number(wfArg);
if (!netFile || !out || !Number.isInteger(wf)) {
  console.error('usage: widen-network.mts NETWORK OUT.safetensors WF [SEED]');
  process.exit(2);
}
const fail = (msg: string) => {
  console.error(`widen-network: ${netFile}: ${msg}`);
  process.exit(1);
};
const weights = readNetworkWeights(netFile);
const spec = detectArch(weights, netFile);
if (spec.arch !== 'msdi2_net' && spec.arch !== 'msdi_net') fail(`${spec.arch} weights, not a deblurring network`);
if (wf <= spec.wf || wf % 2) fail(`width ${spec.wf}; the new width must be larger and even, not ${wf}`);
const narrow = buildModel(spec).eval() as MsdiNet;
loadStateDict(narrow, weights, { source: netFile });
manualSeed(Number(seedArg ?? 0));
const wide = buildModel({ ...spec, wf, ndf: wf }).eval() as MsdiNet;
loadWidened(wide, narrow, netFile);
const gap = outputGap(narrow, wide);
if (gap.max > 1e-4) fail(`the widened network deblurs differently (largest difference ${gap.max.toExponential(2)})`);
saveWeights(wide, out, {
  half: true,
  metadata: {
    arch: spec.arch, wf: String(wf), ndf: String(wf), stage: 'stage2', ablation: spec.degradation ? 'none' : 'no-degradation',
    source: `${netFile.split('/').pop()} (wf ${spec.wf}) widened to wf ${wf}, the same function`,
  },
});
console.log(`${out}: wf ${spec.wf} -> ${wf}; largest output difference on a test image ${gap.max.toExponential(2)}`);
