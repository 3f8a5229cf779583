/**
 * Widening a trained deblurring network (src/models/widen.ts, scripts/widen-network.mts): the
 * wider network deblurs a real image as the narrow one does, in evaluation and in training mode
 * (spectral power iterations included), and its new channels get gradients, so training can go on
 * from there; a stage-2 run given narrower weights than its config's wf widens them so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { manualSeed, noGrad, tidy, type Tensor } from '../src/engine/index.js';
import { buildModel, detectArch } from '../src/models/registry.js';
import { loadWidened, widenStateDict } from '../src/models/widen.js';
import type { MsdiNet } from '../src/models/msdi-net.js';
import { loadStateDict } from '../src/nn/state-dict.js';
import { readNetworkWeights } from '../src/train/checkpoint.js';
import { DEFAULT_WEIGHTS } from '../src/eval/model.js';
import { readImageRGB } from '../src/data/image-io.js';
import { imageToTensor } from '../src/eval/reblur.js';
import { psnrLoss } from '../src/losses/index.js';
import { Stage2Task } from '../src/train/tasks.js';
import { PRESETS, loadConfig } from '../src/train/config.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ABLATION = join(ROOT, 'weights', 'msdi-deblur-ablation.safetensors');

/** The bundled network (or its ablation) and the same weights widened to `wf`. */
function narrowAndWide(file: string, wf: number): { narrow: MsdiNet; wide: MsdiNet } {
  const weights = readNetworkWeights(file);
  const spec = detectArch(weights, file);
  const narrow = buildModel(spec) as MsdiNet;
  loadStateDict(narrow, weights, { source: file });
  manualSeed(0);
  const wide = buildModel({ ...spec, wf, ndf: wf }) as MsdiNet;
  loadWidened(wide, narrow);
  return { narrow, wide };
}

async function sampleCrop(): Promise<Tensor> {
  const img = await readImageRGB(join(ROOT, 'assets', 'sample-blurry.png'));
  return tidy(() => imageToTensor(img).slice(2, 0, 96).slice(3, 0, 96).contiguous());
}

test('the bundled network and its ablation widened from wf 8 to 12 deblur the sample as before', async () => {
  const x = await sampleCrop();
  for (const file of [DEFAULT_WEIGHTS.deblur, ABLATION]) {
    const { narrow, wide } = narrowAndWide(file, 12);
    try {
      assert.equal(wide.stateDict().get('conv_01.weight')!.shape[0], 12);
      for (const mode of ['eval', 'train'] as const) {
        narrow[mode]();
        wide[mode]();
        const [gap, change] = tidy(() => noGrad(() => {
          const a = narrow.forward(x).out2;
          const b = wide.forward(x).out2;
          return [a.sub(b).abs().max().item(), a.sub(x).abs().mean().item()];
        }));
        assert.ok(change > 1e-3, `${file} (${mode}): the network changes the image (${change})`);
        assert.ok(gap < 1e-5, `${file} (${mode}): widened output differs by ${gap}`);
      }
    } finally {
      narrow.dispose();
      wide.dispose();
    }
  }
  x.dispose();
});

test('the new channels of a widened network get gradients', async () => {
  const x = await sampleCrop();
  const { narrow, wide } = narrowAndWide(DEFAULT_WEIGHTS.deblur, 12);
  try {
    wide.train();
    tidy(() => {
      const o = wide.forward(x);
      psnrLoss(o.out1, x, 0.5).add(psnrLoss(o.out2, x, 0.5)).backward();
    });
    // the output convolution reads the new channels through zero weights: their gradient is not zero
    const grad = tidy(() => {
      const g = wide.stateDict().get('last.weight')!.grad!;
      return [g.slice(1, 4, 6).abs().sum().item(), g.slice(1, 10, 12).abs().sum().item()];
    });
    assert.ok(grad[0] > 0 && grad[1] > 0, `gradient on the new input channels of last: ${grad}`);
  } finally {
    narrow.dispose();
    wide.dispose();
    x.dispose();
  }
});

test('widening refuses a narrower network as the target, and a config an odd wf', () => {
  assert.throws(() => loadConfig('cpu-stage2', { wf: 11 }), /expected an even number for wf, got 11/);
  manualSeed(0);
  const spec = { arch: 'msdi_net' as const, wf: 4, ndf: 4, degradation: false, reblur: true, spadeHidden: 16 };
  const a = buildModel(spec);
  const b = buildModel({ ...spec, wf: 6, ndf: 6 });
  try {
    assert.throws(() => widenStateDict(b.stateDict(), a.stateDict()), /cannot widen 6 channels to 4/);
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('stage 2 started from narrower weights (a config with a larger wf) widens them: the run starts from what they compute', async () => {
  const x = await sampleCrop();
  for (const [file, ablation] of [[DEFAULT_WEIGHTS.deblur, 'none'], [ABLATION, 'no-degradation']] as const) {
    const weights = readNetworkWeights(file);
    const narrow = buildModel(detectArch(weights, file)).eval() as MsdiNet;
    loadStateDict(narrow, weights);
    const task = new Stage2Task({ ...PRESETS['cpu-stage2'], wf: 12 }, ablation, { tensors: weights, source: file });
    try {
      assert.equal(task.g.stateDict().get('conv_01.weight')!.shape[0], 12);
      const gap = tidy(() => noGrad(() => task.restore(x).sub(narrow.forward(x).out2).abs().max().item()));
      assert.ok(gap < 1e-5, `${file}: the widened run's network differs by ${gap}`);
    } finally {
      task.dispose();
      narrow.dispose();
    }
  }
  x.dispose();
});
