// One stage-2 training step of msdi2_net as msdi trains it (Stage2Task.step: the batch copied
// from the CPU, forward, PSNRLoss x2, backward, gradient norm, Adam), timed on DEVICE for each
// SPEC = WF:BATCH:AMP:LAYOUT (amp off|bf16, layout nchw|nhwc); one JSON line each, median of
// REPEATS steps after 3 untimed ones, each read back before the next (median_ms), and the mean
// of REPEATS steps in a row read back after the last, as the trainer runs them on a GPU
// (in_row_ms). scripts/gpu/step-bench.sh runs it beside the same step in PyTorch eager
// (scripts/torch_reference.py train).
// Usage: node scripts/gpu/step-bench.mjs DEVICE SIZE SPADE REPEATS SPEC...
import { trainStep, median } from '../../dist/cli/commands/bench-models.js';
import { cudnnBenchmark } from '../../dist/engine/index.js';

const [device, size, spade, repeats, ...specs] = process.argv.slice(2);
if (!device || !specs.length) {
  console.error('usage: node scripts/gpu/step-bench.mjs DEVICE SIZE SPADE REPEATS WF:BATCH:AMP:LAYOUT...');
  process.exit(2);
}
if (device.startsWith('cuda')) cudnnBenchmark(true); // as the trainer on CUDA
for (const spec of specs) {
  const [wf, batch, amp, layout] = spec.split(':');
  if (!(+wf > 0 && +batch > 0 && ['off', 'bf16'].includes(amp) && ['nchw', 'nhwc'].includes(layout))) {
    console.error(`step-bench: ${spec}: expected WF:BATCH:off|bf16:nchw|nhwc`);
    process.exit(2);
  }
  const step = trainStep({ wf: +wf, batch: +batch, size: +size, spadeHidden: +spade, amp, channelsLast: layout === 'nhwc', device });
  try {
    for (let i = 0; i < 3; i++) step.run(); // cuDNN's algorithm search, the allocator's first blocks
    const times = Array.from({ length: +repeats }, () => step.run());
    const ms = median(times);
    // the same steps in a row, their losses read after the last (the trainer on a GPU)
    const rowMs = step.inRow(+repeats);
    console.log(JSON.stringify({ who: 'msdi', device, wf: +wf, batch: +batch, size: +size, spade: +spade, amp, layout, median_ms: +ms.toFixed(2), crops_per_s: +(1000 * +batch / ms).toFixed(1), in_row_ms: +rowMs.toFixed(2), in_row_crops_per_s: +(1000 * +batch / rowMs).toFixed(1), times_ms: times.map((t) => +t.toFixed(1)) }));
  } finally {
    step.dispose();
  }
}
