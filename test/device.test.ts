/**
 * Moving networks between devices, as far as a CPU-only libtorch can check it: a move to the
 * device a network is on is free, a move libtorch refuses fails cleanly, a CUDA request fails
 * with a one-line message. The CUDA path itself (training on a GPU matches the CPU) is checked
 * on a GPU machine by scripts/gpu/check.sh.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, tidy, cudaAvailable, liveTensors } from '../src/engine/index.js';
import { MsdiNet } from '../src/models/msdi-net.js';
import { prepareForInference } from '../src/nn/layers.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'msdi.js');

test('Module.to the device it is on changes nothing: same tensors, folded weights kept, same output', () => {
  const net = new MsdiNet({ wf: 4, version: 2, degradation: true, spadeHidden: 16 }).eval();
  try {
    prepareForInference(net, { channelsLast: true });
    const x = Tensor.rand([1, 3, 32, 32]);
    const before = tidy(() => net.forward(x).out2.data());
    const handles = net.parameters().map((p) => p.handle);
    const live = liveTensors();
    assert.equal(net.to('cpu'), net);
    assert.equal(net.device, 'cpu');
    assert.equal(liveTensors(), live, 'nothing made, nothing freed (the folded weights stay)');
    assert.deepEqual(net.parameters().map((p) => p.handle), handles);
    assert.deepEqual(tidy(() => net.forward(x).out2.data()), before);
    x.dispose();
  } finally {
    net.dispose();
  }
});

test('Module.to a device libtorch cannot move parameters to in place: a one-line error', () => {
  const net = new MsdiNet({ wf: 4, version: 2, degradation: true, spadeHidden: 16 });
  try {
    // the meta device's tensors are of another kind: libtorch refuses to swap them in
    assert.throws(() => net.to('meta'), (e: Error) => /incompatible tensor type/.test(e.message) && !e.message.includes('\n'));
    assert.equal(net.parameters()[0]!.device, 'cpu', 'the tensor that failed stays where it was');
  } finally {
    net.dispose();
  }
});

test('train --device cuda on a libtorch without CUDA: one-line error, exit 1, no run folder', { skip: cudaAvailable() }, () => {
  const root = mkdtempSync(join(tmpdir(), 'msdi-device-'));
  try {
    const out = join(root, 'run');
    const r = spawnSync(process.execPath, [CLI, 'train', 'stage2', '--data', root, '--out', out, '--device', 'cuda'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /--device.*"cuda"/);
    assert.ok(!existsSync(out), 'nothing written');
    const bad = spawnSync(process.execPath, [CLI, 'train', 'stage2', '--data', root, '--out', out, '--device', 'gpu'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--device: expected cpu or cuda, got "gpu"/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
