/** Validation during training: PSNR / SSIM of the model's output on held-out pairs (8-bit, as published). */
import { Tensor, tidy, inferenceMode, type Device } from '../engine/index.js';
import { psnr, ssim3d } from '../metrics/index.js';
import type { Image8 } from '../metrics/index.js';

export interface ValPair {
  name: string;
  blurry: Float32Array;
  sharp: Float32Array;
  width: number;
  height: number;
}

/** CHW float 0..1 -> HWC 8-bit (clamp, x255, round), the community's protocol. */
export function chwToImage8(chw: Float32Array, width: number, height: number): Image8 {
  const n = width * height;
  const data = new Uint8Array(n * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) {
      const v = chw[c * n + i];
      data[i * 3 + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
    }
  }
  return { width, height, channels: 3, data };
}

export interface ValResult {
  psnr: number;
  ssim: number;
  inputPsnr: number;
}

/** Runs `restore` (N x 3 x H x W on `device` -> same) on every pair and averages the metrics. */
export function validate(pairs: ValPair[], restore: (x: Tensor) => Tensor, device: Device = 'cpu'): ValResult {
  let p = 0;
  let s = 0;
  let ip = 0;
  for (const pair of pairs) {
    const out = inferenceMode(() => tidy(() => {
      const x = Tensor.fromArray(pair.blurry, [1, 3, pair.height, pair.width], { device });
      return restore(x).toFloat32();
    }));
    const pred = chwToImage8(out, pair.width, pair.height);
    const target = chwToImage8(pair.sharp, pair.width, pair.height);
    p += psnr(pred, target);
    s += ssim3d(pred, target);
    ip += psnr(chwToImage8(pair.blurry, pair.width, pair.height), target);
  }
  const n = Math.max(pairs.length, 1);
  return { psnr: p / n, ssim: s / n, inputPsnr: ip / n };
}
