// PENDING: not in the suite (scripts/run-tests.mjs runs test/*.test.ts only): the bundled joint
// weights blur more from level 0 to 1 (test/reblur.test.ts), and past level 1 their output
// comes closer to the true stronger blur (README, "Blur levels"), but it also gets a fine grain
// that raises the gradient energy (x1e3 at levels 0, 0.5, 1, 1.5, 2: 3.02, 1.47, 1.16, 1.23,
// 1.51; the weights bundled before the level fine-tune: 2.76, 1.91, 1.89, 2.91, 4.55). Run it
// with node --import tsx --test test/pending/reblur-extrapolation.test.ts
// (MSDI_JOINT_WEIGHTS=<MSDI2E weights> to check other weights).
/**
 * Blur transfer past level 1 (the paper's extrapolated blur levels, up to 2): level 2 must blur
 * more than level 1, and clearly more than level 0.5.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_WEIGHTS, loadModel } from '../../src/eval/model.js';
import { levelPairs, levelStats } from '../helpers/reblur-pairs.js';

const model = loadModel(process.env.MSDI_JOINT_WEIGHTS || DEFAULT_WEIGHTS.joint, { kind: 'joint' });
after(() => model.dispose());

test('reblur: level 2 blurs more than level 1, clearly more than level 0.5', () => {
  const levels = [0.5, 1, 2];
  const { energy } = levelStats(model, levelPairs(), levels);
  assert.ok(energy[2] < energy[1], `level 2 (${energy[2]}) should be blurrier than level 1 (${energy[1]})`);
  assert.ok(energy[2] < 0.85 * energy[0], `level 2 (${energy[2]}) should clearly blur more than level 0.5 (${energy[0]})`);
});
