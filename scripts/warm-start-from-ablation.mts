// A deblurring network with the representation that computes exactly what its ablation computes,
// for stage 2 to fine-tune (--init) from where the ablation is: the trunk of ABLATION (msdi_net
// weights, --ablate no-degradation), the representation and the modulations' inner layers of
// WITH_REP (msdi2_net weights of the same width), every modulated skip block set to the identity
// (identitySkipBlocks in src/models/spade.ts). Checks on a random image that OUT and ABLATION
// deblur alike before writing OUT (float16, as exports are).
//
// Usage: node --import tsx scripts/warm-start-from-ablation.mts ABLATION WITH_REP OUT.safetensors
import { readNetworkWeights } from '../src/train/checkpoint.js';
import { detectArch, buildModel } from '../src/models/registry.js';
import { loadStateDict, saveWeights } from '../src/nn/state-dict.js';
import { identitySkipBlocks } from '../src/models/spade.js';
import type { MsdiNet } from '../src/models/msdi-net.js';
import { outputGap } from './lib/output-gap.mjs';

const [ablFile, repFile, out] = process.argv.slice(2);
if (!ablFile || !repFile || !out) {
  console.error('usage: warm-start-from-ablation.mts ABLATION WITH_REP OUT.safetensors');
  process.exit(2);
}
const fail = (msg: string) => {
  console.error(`warm-start-from-ablation: ${msg}`);
  process.exit(1);
};
const abl = readNetworkWeights(ablFile);
const rep = readNetworkWeights(repFile);
const ablSpec = detectArch(abl, ablFile);
const repSpec = detectArch(rep, repFile);
if (ablSpec.degradation) fail(`${ablFile}: has a representation; expected the no-degradation ablation`);
if (!repSpec.degradation || repSpec.arch !== 'msdi2_net') fail(`${repFile}: not msdi2_net weights with a representation`);

const ablation = buildModel(ablSpec).eval() as MsdiNet;
const net = buildModel(repSpec).eval() as MsdiNet;
loadStateDict(ablation, abl, { source: ablFile });
loadStateDict(net, rep, { source: repFile });
loadStateDict(net, abl, { strict: false, source: ablFile }); // the trunk; shapes checked (the same wf)
identitySkipBlocks(net);

const diff = outputGap(net, ablation).max;
if (!(diff < 1e-4)) fail(`the merged network differs from the ablation by ${diff}`);
saveWeights(net, out, {
  half: true,
  metadata: {
    arch: 'msdi2_net', wf: String(repSpec.wf), ndf: String(repSpec.ndf), stage: 'stage2', ablation: 'none',
    source: `trunk of ${ablFile.split('/').pop()}, representation of ${repFile.split('/').pop()}, identity skip blocks`,
  },
});
console.log(`${out}: deblurs as ${ablFile.split('/').pop()} does (largest difference on a test image ${diff.toExponential(2)})`);
