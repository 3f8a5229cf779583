/**
 * The true blur of a synthetic pair, pixel by pixel: a ground truth for what a degradation
 * representation should describe (and an oracle to compare learnt ones against).
 */
import type { Affine } from './camera.js';
import { pathAt } from './camera.js';
import { compositeObjects, type MovingObject } from './objects.js';
import { MOTION_CHANNELS } from './options.js';

/** The exposure's instants the offsets are taken at, as fractions of it. */
const INSTANTS = [0, 0.25, 0.75, 1];

/**
 * MOTION_CHANNELS x S x S (channels-first; see SynthPair.motion). `cam(tau)` is the camera map at
 * sub-frame time tau in [0, n-1] (identity at the middle), `m` the canvas margin, `defocus` the
 * per-pixel disc radius or null.
 */
export function motionField(
  S: number, m: number, n: number, cam: (tau: number) => Affine, objects: MovingObject[], defocus: Float32Array | null,
): Float32Array {
  const plane = S * S;
  const out = new Float32Array(MOTION_CHANNELS.length * plane);
  // which object (the topmost, as composited) covers each pixel in the sharp frame
  const owner = new Int16Array(plane).fill(-1);
  const mid = (n - 1) / 2;
  const C = S + 2 * m;
  objects.forEach((ob, k) => {
    const cover = new Float32Array(C * C * 3);
    compositeObjects(cover, C, [{ ...ob, rgb: new Float32Array(ob.rgb.length).fill(1) }], mid);
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) if (cover[((y + m) * C + x + m) * 3]! > 0.5) owner[y * S + x] = k;
    }
  });
  INSTANTS.forEach((f, j) => {
    const tau = f * (n - 1);
    const A = cam(tau);
    const shift = objects.map((ob) => {
      const [px, py] = pathAt(ob.pos, tau);
      const [qx, qy] = pathAt(ob.pos, mid);
      return [px - qx, py - qy];
    });
    const dx = out.subarray(2 * j * plane, (2 * j + 1) * plane);
    const dy = out.subarray((2 * j + 1) * plane, (2 * j + 2) * plane);
    for (let y = 0; y < S; y++) {
      const py = y + m;
      for (let x = 0; x < S; x++) {
        const px = x + m;
        const i = y * S + x;
        let ox = A.a00 * px + A.a01 * py + A.b0 - px;
        let oy = A.a10 * px + A.a11 * py + A.b1 - py;
        const k = owner[i]!;
        if (k >= 0) {
          ox -= shift[k]![0]!;
          oy -= shift[k]![1]!;
        }
        dx[i] = ox;
        dy[i] = oy;
      }
    }
  });
  if (defocus) out.set(defocus, 2 * INSTANTS.length * plane);
  return out;
}
