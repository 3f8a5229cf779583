// The no-degradation ablation of a trained deblurring network, for both to be fine-tuned from
// one ancestor when the ablation trained beside it is lost: the trunk of NETWORK (msdi2_net
// weights with the representation), without the representation and without the modulated skip
// blocks, which the ablation does not have. Not the same function as NETWORK (its skip blocks are
// trained, not the identity): the script prints how far apart the two deblur a random image, and
// the pair's first scores say how far apart they start on real pairs.
// The reverse of scripts/warm-start-from-ablation.mts.
//
// Usage: node --import tsx scripts/ablation-from-network.mts NETWORK OUT.safetensors
import { readNetworkWeights } from '../src/train/checkpoint.js';
import { detectArch, buildModel } from '../src/models/registry.js';
import { loadStateDict, saveWeights } from '../src/nn/state-dict.js';
import type { MsdiNet } from '../src/models/msdi-net.js';
import { outputGap } from './lib/output-gap.mjs';

const [netFile, out] = process.argv.slice(2);
if (!netFile || !out) {
  console.error('usage: ablation-from-network.mts NETWORK OUT.safetensors');
  process.exit(2);
}
const weights = readNetworkWeights(netFile);
const spec = detectArch(weights, netFile);
if (!spec.degradation || spec.arch !== 'msdi2_net') {
  console.error(`ablation-from-network: ${netFile}: not msdi2_net weights with a representation`);
  process.exit(1);
}
const net = buildModel(spec).eval() as MsdiNet;
const ablation = buildModel({ ...spec, arch: 'msdi_net', degradation: false }).eval() as MsdiNet;
loadStateDict(net, weights, { source: netFile });
try {
  // the trunk, every tensor of it from NETWORK (none left at its initialisation); the rest left out
  loadStateDict(ablation, weights, { strict: 'missing', source: netFile });
} catch (e) {
  console.error(`ablation-from-network: ${(e as Error).message}`);
  process.exit(1);
}
const diff = outputGap(net, ablation).mean;
saveWeights(ablation, out, {
  half: true,
  metadata: {
    arch: 'msdi_net', wf: String(spec.wf), ndf: String(spec.ndf), stage: 'stage2', ablation: 'no-degradation',
    source: `trunk of ${netFile.split('/').pop()}, without the representation and the modulated skip blocks`,
  },
});
console.log(`${out}: mean absolute difference from ${netFile.split('/').pop()} on a test image ${diff.toExponential(2)}`);
