/**
 * A real msdi_net (wf 4) whose weights make it an unsharp mask: out = x + k (x - box3(x)),
 * for tests that need a network that sharpens without trained weights.
 *
 * Every trunk weight is zero except one path of identities: conv_02 computes k (x - box3(x))
 * into channels 0..2, cat12, the level-0 blocks of the second stage (their 1x1 `identity`
 * convs), its skip convs and the last up block pass those channels on, and `last` copies them
 * out; the network adds x itself (out_2 = last(...) + x). With conv_1 / conv_2 at zero, every
 * block reduces to its identity conv; the stage-1 path, the CSFF convs and the deeper levels
 * contribute zero. The degradation encoder keeps its random weights (its map still works).
 */
import { Tensor, manualSeed, tidy } from '../../src/engine/index.js';
import { MsdiNet } from '../../src/models/msdi-net.js';
import { loadStateDict, saveWeights } from '../../src/nn/state-dict.js';

export function writeUnsharpMaskWeights(file: string, k = 1.5, seed = 3): void {
  manualSeed(seed);
  const wf = 4;
  const net = new MsdiNet({ wf, version: 1 });
  try {
    const sd = net.stateDict();
    const values = new Map<string, Tensor>();
    const level0 = 3; // index of the widest (level 0) block in the up paths and skip lists
    const identity1x1 = (key: string, offset = 0) => {
      const [o, i] = sd.get(key)!.shape;
      const w = new Float32Array(o * i);
      for (let c = 0; c < 3; c++) w[c * i + c + offset] = 1;
      values.set(key, Tensor.fromArray(w, [o, i, 1, 1]));
    };
    for (const [key, t] of sd) {
      if (key.startsWith('net_prior.') || key.startsWith('prior_upsampling.') || key.startsWith('ad1_list.')) continue;
      values.set(key, tidy(() => Tensor.zeros(t.shape)));
    }
    // conv_02: k (x - box3(x)) on channels 0..2.
    const w02 = new Float32Array(wf * 3 * 9);
    for (let c = 0; c < 3; c++) for (let j = 0; j < 9; j++) w02[(c * 3 + c) * 9 + j] = j === 4 ? k * (8 / 9) : -k / 9;
    values.set('conv_02.weight', Tensor.fromArray(w02, [wf, 3, 3, 3]));
    identity1x1('cat12.weight');
    identity1x1('down_path_2.0.identity.weight');
    for (const s of [2, 4, 5, 6]) identity1x1(`skip_conv_${s}.${level0}.identity.weight`);
    identity1x1(`up_path_2.${level0}.conv_block.identity.weight`, wf); // cat([up, bridge]): the bridge's channels
    const last = new Float32Array(3 * wf * 9);
    for (let c = 0; c < 3; c++) last[(c * wf + c) * 9 + 4] = 1;
    values.set('last.weight', Tensor.fromArray(last, [3, wf, 3, 3]));
    loadStateDict(net, values, { strict: false });
    for (const t of values.values()) t.dispose();
    saveWeights(net, file);
  } finally {
    net.dispose();
  }
}
