/** Procedural test images. */
import { createImage, type RGBImage } from '../../src/data/image-io.js';
import { Rng } from '../../src/data/rng.js';

/** A photo-like scene: smooth shading plus many opaque discs of all sizes (edges everywhere, in all orientations). */
export function discScene(w: number, h: number, seed: number): RGBImage {
  const img = createImage(w, h);
  const r = new Rng(seed);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      img.data[i] = 0.5 + 0.2 * Math.sin(x * 0.05 + y * 0.03);
      img.data[i + 1] = 0.5 + 0.2 * Math.sin(y * 0.045);
      img.data[i + 2] = 0.5;
    }
  }
  for (let k = 0; k < Math.round((w * h) / 180); k++) {
    const cx = r.uniform(0, w);
    const cy = r.uniform(0, h);
    const rad = r.logUniform(1.5, 14);
    const col = [r.float(), r.float(), r.float()];
    for (let y = Math.max(0, Math.floor(cy - rad)); y < Math.min(h, cy + rad); y++) {
      for (let x = Math.max(0, Math.floor(cx - rad)); x < Math.min(w, cx + rad); x++) {
        if ((x - cx) ** 2 + (y - cy) ** 2 <= rad * rad) img.data.set(col, (y * w + x) * 3);
      }
    }
  }
  return img;
}
