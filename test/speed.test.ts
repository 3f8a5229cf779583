/**
 * The fast inference path gives the results of the plain one: ConvTranspose2d 2x2/2 as a 1x1
 * convolution plus pixel shuffle (forward and gradients), the NHWC instance norm, and a whole
 * msdi_net with prepareForInference (folded spectral norms, NHWC weights) against the
 * unprepared eval network and the official reference output, within 1e-4; and training with NHWC
 * parameters (stage 2, stage 1 with its discriminator) takes the steps of the NCHW path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture } from './helpers/fixtures.js';
import { mulberry32 } from './helpers/random.js';
import { Tensor, F, tidy, inferenceMode, manualSeed } from '../src/engine/index.js';
import { MsdiNet } from '../src/models/msdi-net.js';
import { loadStateDict } from '../src/nn/state-dict.js';
import { prepareForInference } from '../src/nn/layers.js';

const maxDiff = (a: Tensor, b: Tensor): number => tidy(() => a.sub(b).abs().max().item());

/** Three training batches of two random 32 x 32 pairs. */
function randomBatches(seed: number) {
  const r = mulberry32(seed);
  const image = () => Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => r());
  return [0, 1, 2].map(() => ({ blurry: image(), sharp: image(), n: 2, size: 32, names: ['a', 'b'] }));
}

test('convTranspose2x2 equals convTranspose2d (k 2, s 2) in NCHW and NHWC, gradients too', () => {
  manualSeed(3);
  tidy(() => {
    const x = Tensor.randn([2, 6, 5, 7]);
    const w = Tensor.randn([6, 4, 2, 2]);
    const b = Tensor.randn([4]);
    const ref = F.convTranspose2d(x, w, b, { stride: 2 });
    assert.deepEqual(ref.shape, [2, 4, 10, 14]);
    assert.ok(maxDiff(ref, F.convTranspose2x2(x, w, b)) < 1e-5);
    const nhwc = F.convTranspose2x2(x.channelsLast(), w, b);
    assert.ok(nhwc.isChannelsLast, 'NHWC in, NHWC out');
    assert.ok(maxDiff(ref, nhwc) < 1e-5);
    assert.ok(maxDiff(ref, F.convTranspose2x2(x, w, null).add(b.reshape([1, 4, 1, 1]))) < 1e-5);

    const grads = (fn: (x: Tensor, w: Tensor) => Tensor) => {
      const xg = x.clone().requiresGrad_(true);
      const wg = w.clone().requiresGrad_(true);
      fn(xg, wg).mul(ref).sum().backward();
      return [xg.grad!, wg.grad!];
    };
    const [gx0, gw0] = grads((xx, ww) => F.convTranspose2d(xx, ww, b, { stride: 2 }));
    const [gx1, gw1] = grads((xx, ww) => F.convTranspose2x2(xx, ww, b));
    assert.ok(maxDiff(gx0, gx1) < 1e-4 && maxDiff(gw0, gw1) < 1e-4, 'same gradients');
  });
});

test('instance norm of an NHWC tensor (and of a channel slice of one) equals the NCHW result', () => {
  manualSeed(4);
  tidy(() => {
    const x = Tensor.randn([2, 8, 9, 11]).mul(3).add(1);
    const w = Tensor.randn([4]);
    const b = Tensor.randn([4]);
    const half = x.chunk(2, 1)[0];
    const halfNhwc = x.channelsLast().chunk(2, 1)[0];
    assert.ok(maxDiff(F.instanceNorm(half, w, b), F.instanceNorm(halfNhwc, w, b)) < 1e-5);
    assert.ok(maxDiff(F.instanceNorm(x), F.instanceNorm(x.channelsLast())) < 1e-5);
  });
});

test('prepareForInference: msdi_net outputs within 1e-4 of the unprepared network and of the official code', () => {
  const fx = new Fixture('msdi_net_w4.eval.safetensors');
  const net = new MsdiNet({ wf: 4, version: 1 }).eval();
  try {
    loadStateDict(net, new Fixture('msdi_net_w4.weights.safetensors').raw, { source: 'msdi_net_w4' });
    const plain = inferenceMode(() => tidy(() => net.forward(fx.tensor('input')).out2.contiguous()));
    prepareForInference(net);
    const fast = inferenceMode(() => tidy(() => net.forward(fx.tensor('input')).out2));
    assert.ok(fast.isChannelsLast, 'activations stay NHWC to the output');
    const d = maxDiff(plain, fast);
    assert.ok(d < 1e-4, `prepared vs plain: ${d}`);
    assert.ok(fx.maxAbsDiff(fast, 'out_2') < 1e-4);
    plain.dispose();
    fast.dispose();
  } finally {
    net.dispose();
  }
});

test('stage-2 training with NHWC parameters takes the steps of the NCHW path (losses and weights)', async () => {
  const { Stage2Task, takeStats } = await import('../src/train/tasks.js');
  const { MsdiNet: Net } = await import('../src/models/msdi-net.js');
  const { PRESETS } = await import('../src/train/config.js');
  const { tensorToRaw } = await import('../src/engine/raw.js');
  manualSeed(5);
  const donor = new Net({ wf: 4, version: 2 });
  const init = new Map([...donor.stateDict()].filter(([k]) => /^(net_prior|prior_upsampling)\./.test(k)).map(([k, t]) => [k, tensorToRaw(t)]));
  donor.dispose();
  const cfg = { ...PRESETS['test-stage2'], wf: 4, batch: 2, crop: 32 };
  const batches = randomBatches(7);
  const probe = Tensor.rand([1, 3, 32, 32]);
  const run = (channelsLast: boolean) => {
    const task = new Stage2Task(cfg, 'none', { tensors: init, source: 'random' }, { channelsLast });
    const losses = batches.map((b) => takeStats(task.step(b)).l_psnr!);
    const layout = task.g.conv_01.weight.isChannelsLast;
    task.g.eval();
    const restored = inferenceMode(() => tidy(() => task.g.forward(probe).out2.contiguous()));
    task.dispose();
    return { losses, restored, layout };
  };
  const a = run(false);
  const b = run(true);
  assert.equal(a.layout, false);
  assert.equal(b.layout, true, 'parameters are NHWC');
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(a.losses[i] - b.losses[i]) < 1e-4 * Math.abs(a.losses[i]), `step ${i}: ${a.losses[i]} vs ${b.losses[i]}`);
  // Weights are compared through what they do: Adam divides by each gradient's own size, so
  // parameters whose gradient is ~0 (biases an instance norm cancels) take rounding-sized steps
  // apart in any two float orders (1 vs 2 threads too) without changing the network's output.
  const worst = maxDiff(a.restored, b.restored);
  a.restored.dispose();
  b.restored.dispose();
  probe.dispose();
  assert.ok(worst < 1e-4, `trained networks restore differently: ${worst}`);
});

test('stage-1 training with NHWC parameters (joint model and discriminator) takes the steps of the NCHW path', async () => {
  const { Stage1Task, takeStats } = await import('../src/train/tasks.js');
  const { PRESETS } = await import('../src/train/config.js');
  const cfg = { ...PRESETS['test-stage1'], wf: 4, batch: 2, crop: 32 };
  const batches = randomBatches(11);
  const probe = Tensor.rand([1, 3, 32, 32]);
  const run = (channelsLast: boolean) => {
    const task = new Stage1Task(cfg, 'none', undefined, { channelsLast });
    const steps = batches.map((b) => takeStats(task.step(b)));
    // 1x1 kernels are laid out NCHW and NHWC at once (isChannelsLast says false): left out
    const convs = [...task.g.namedParameters(), ...task.d!.namedParameters()].filter(([, p]) => p.shape.length === 4 && p.shape[2]! * p.shape[3]! > 1);
    const nhwc = convs.filter(([, p]) => p.isChannelsLast).length;
    const restored = tidy(() => task.restore(probe).contiguous());
    task.dispose();
    return { steps, restored, nhwc, convs: convs.length };
  };
  const a = run(false);
  const b = run(true);
  assert.equal(a.nhwc, 0);
  assert.equal(b.nhwc, b.convs, 'every convolution weight of both networks is NHWC');
  for (let i = 0; i < 3; i++) {
    for (const k of ['l_pix', 'l_gan', 'l_feat', 'l_d']) {
      const [x, y] = [a.steps[i]![k]!, b.steps[i]![k]!];
      assert.ok(Math.abs(x - y) < 1e-4 * Math.max(1, Math.abs(x)), `step ${i} ${k}: ${x} vs ${y}`);
    }
  }
  const worst = maxDiff(a.restored, b.restored);
  a.restored.dispose();
  b.restored.dispose();
  probe.dispose();
  assert.ok(worst < 1e-4, `trained networks deblur differently: ${worst}`);
});
