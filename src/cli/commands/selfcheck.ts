/**
 * msdi selfcheck: proves the engine works on this machine (libtorch found, ops, autograd,
 * Adam) and, where the reference fixtures are present, that msdi_net reproduces the
 * official code's output.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, tidy, noGrad, F, Adam, libtorchVersion, getNumThreads, cudaAvailable } from '../../engine/index.js';
import { readSafetensors } from '../../engine/io/index.js';
import { rawToTensor } from '../../engine/raw.js';
import { MsdiNet } from '../../models/msdi-net.js';
import { loadStateDict } from '../../nn/state-dict.js';
import { parse } from '../args.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function check(name: string, ok: boolean, detail: string): void {
  if (!ok) throw new Error(`selfcheck failed: ${name}: ${detail}`);
  console.log(`ok  ${name.padEnd(34)} ${detail}`);
}

export function selfcheck(argv: string[]): void {
  const { values } = parse(argv, { fixtures: { type: 'string' } }, 'selfcheck');
  console.log(`libtorch ${libtorchVersion()}, ${getNumThreads()} threads, CUDA ${cudaAvailable() ? 'available' : 'not available'}`);
  tidy(() => {
    // A 3x3 box filter over ones with zero padding: 9 inside, 4 in the corners.
    const y = F.conv2d(Tensor.ones([1, 1, 4, 4]), Tensor.ones([1, 1, 3, 3]), null, { padding: 1 }).data();
    check('conv2d', y[0] === 4 && y[5] === 9, `corner ${y[0]}, centre ${y[5]}`);
    // d/dw of sum((w x)^2) = 2 w x^2; at w = 3, x = 2: 24.
    const w = Tensor.fromArray([3], [1]).requiresGrad_(true);
    w.mul(2).pow(2).sum().backward();
    check('autograd', w.grad!.item() === 24, `grad ${w.grad!.item()}`);
    const p = Tensor.fromArray([1], [1]).requiresGrad_(true);
    const opt = new Adam([p], { lr: 0.1 });
    p.mul(p).sum().backward();
    opt.step();
    check('adam', Math.abs(p.item() - 0.9) < 1e-6, `1 -> ${p.item().toFixed(6)} after one step`);
    opt.dispose();
  });
  const fx = resolve(values.fixtures ?? join(ROOT, '..', 'shared', 'fixtures'));
  const weights = join(fx, 'msdi_net_w4.weights.safetensors');
  if (!existsSync(weights)) {
    console.log(`--  msdi_net vs official code          skipped (no fixtures at ${fx})`);
    return;
  }
  const net = new MsdiNet({ wf: 4, version: 1 });
  try {
    loadStateDict(net, readSafetensors(weights).tensors, { source: weights });
    net.eval();
    const ev = readSafetensors(join(fx, 'msdi_net_w4.eval.safetensors')).tensors;
    noGrad(() => tidy(() => {
      const out = net.forward(rawToTensor(ev.get('input')!)).out2;
      const err = out.sub(rawToTensor(ev.get('out_2')!)).abs().max().item();
      check('msdi_net vs official code', err < 1e-4, `max |difference| ${err.toExponential(2)} (tolerance 1e-4)`);
    }));
  } finally {
    net.dispose();
  }
}
