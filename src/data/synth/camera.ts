/** Camera shake: smooth random trajectories of affine maps, and warping the scene by them. */
import type { Rng } from '../rng.js';
import type { SynthDefaults } from './options.js';

export interface Affine {
  a00: number;
  a01: number;
  a10: number;
  a11: number;
  b0: number;
  b1: number;
}

/**
 * A smooth random 2-D path of `n` points and (about) the given length: a random walk on the
 * heading with momentum (a constant bend plus small random turns) and jittered step lengths.
 */
export function momentumPath(rng: Rng, n: number, length: number): Array<[number, number]> {
  const pts: Array<[number, number]> = [[0, 0]];
  if (n < 2) return pts;
  const step = length / (n - 1);
  let heading = rng.uniform(0, 2 * Math.PI);
  const bend = rng.normal() * 0.12; // systematic curvature (rad per step)
  const wobble = rng.uniform(0, 0.35); // random turning (rad per step)
  let turnRate = 0;
  let x = 0;
  let y = 0;
  for (let k = 1; k < n; k++) {
    turnRate = 0.6 * turnRate + wobble * rng.normal(); // momentum on the turn rate
    heading += bend + turnRate;
    const s = step * Math.max(0, 1 + 0.2 * rng.normal());
    x += s * Math.cos(heading);
    y += s * Math.sin(heading);
    pts.push([x, y]);
  }
  // rescale to the requested path length
  let len = 0;
  for (let k = 1; k < n; k++) len += Math.hypot(pts[k]![0] - pts[k - 1]![0], pts[k]![1] - pts[k - 1]![1]);
  const f = len > 1e-9 ? length / len : 0;
  return pts.map(([px, py]) => [px * f, py * f]);
}

export interface CameraMotion {
  /** camera map at continuous time tau in [0, n-1] (sub-frame index units); identity at the middle */
  at: (tau: number) => Affine;
  translationPx: number;
  rotationRad: number;
  zoom: number;
  maxDisplacement: number;
}

/** linear interpolation of a polyline sampled at integer times (linear extrapolation past the ends) */
export function pathAt(path: Array<[number, number]>, tau: number): [number, number] {
  const n = path.length;
  if (n === 1) return path[0]!;
  const k = Math.min(n - 2, Math.max(0, Math.floor(tau)));
  const f = tau - k;
  const a = path[k]!;
  const b = path[k + 1]!;
  return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])];
}

export const IDENTITY: Affine = { a00: 1, a01: 0, a10: 0, a11: 1, b0: 0, b1: 0 };

function cameraAffine(cx: number, cy: number, theta: number, s: number, tx: number, ty: number): Affine {
  const c = Math.cos(theta) * s;
  const sn = Math.sin(theta) * s;
  // q = C + s R (p - C) + t
  return {
    a00: c,
    a01: -sn,
    a10: sn,
    a11: c,
    b0: cx - (c * cx - sn * cy) + tx,
    b1: cy - (sn * cx + c * cy) + ty,
  };
}

/** The corners of the output area [m, m+S-1]^2 of the canvas. */
function corners(m: number, S: number): Array<readonly [number, number]> {
  return [[m, m], [m + S - 1, m], [m, m + S - 1], [m + S - 1, m + S - 1]];
}

/** largest |A p - B p| over the corners of the output area [m, m+S-1]^2 */
export function affineDistance(A: Affine, B: Affine, m: number, S: number): number {
  let worst = 0;
  for (const [x, y] of corners(m, S)) {
    const dx = (A.a00 - B.a00) * x + (A.a01 - B.a01) * y + (A.b0 - B.b0);
    const dy = (A.a10 - B.a10) * x + (A.a11 - B.a11) * y + (A.b1 - B.b1);
    worst = Math.max(worst, Math.hypot(dx, dy));
  }
  return worst;
}

/** largest per-axis |A p + b - p| over the corners of the output area [m, m+S-1]^2 */
export function maxDisplacement(frames: Affine[], m: number, S: number): number {
  let worst = 0;
  for (const f of frames) {
    for (const [x, y] of corners(m, S)) {
      const qx = f.a00 * x + f.a01 * y + f.b0;
      const qy = f.a10 * x + f.a11 * y + f.b1;
      worst = Math.max(worst, Math.abs(qx - x), Math.abs(qy - y));
    }
  }
  return worst;
}

export function makeCameraMotion(rng: Rng, n: number, S: number, m: number, o: SynthDefaults): CameraMotion {
  const mid = (n - 1) >> 1;
  // translation path length: mostly log-uniform, sometimes (almost) no shake
  const maxT = o.maxTranslation * S;
  const minT = Math.min(0.01 * S, maxT);
  const translation = rng.bool(0.1) ? rng.uniform(0, minT) : rng.logUniform(Math.max(minT, 1e-3), Math.max(maxT, 2e-3));
  const path = momentumPath(rng, n, translation);
  const maxRot = (o.maxRotationDeg * Math.PI) / 180;
  let rotation = rng.bool(0.8) ? Math.max(-maxRot, Math.min(maxRot, rng.normal() * maxRot * 0.5)) : 0;
  const rotCurve = rng.uniform(-1, 1);
  let zoom = rng.bool(0.4) ? rng.uniform(-o.maxZoom, o.maxZoom) : 0;
  const zoomCurve = rng.uniform(-1, 1);
  // rotation/zoom centre: anywhere over (and a bit beyond) the output area
  const cx = m + rng.uniform(-0.3, 1.3) * S;
  const cy = m + rng.uniform(-0.3, 1.3) * S;
  let tScale = 1;
  const pm = path[mid]!;
  const tm = n > 1 ? mid / (n - 1) : 0.5;
  const make = (tau: number): Affine => {
    if (tau === mid) return IDENTITY;
    const t = n > 1 ? tau / (n - 1) : 0.5;
    const rotAt = (u: number) => rotation * (u + rotCurve * u * (1 - u));
    const zoomAt = (u: number) => zoom * (u + zoomCurve * u * (1 - u));
    const [px, py] = pathAt(path, tau);
    return cameraAffine(
      cx,
      cy,
      rotAt(t) - rotAt(tm),
      Math.exp(zoomAt(t) - zoomAt(tm)),
      (px - pm[0]) * tScale,
      (py - pm[1]) * tScale,
    );
  };
  let disp = 0;
  for (let attempt = 0; attempt < 40; attempt++) {
    const probe: Affine[] = [];
    // every instant rendered: tau in [-0.5, n - 0.5] (each sub-frame's exposure is centred on it)
    for (let k = -1; k <= 2 * n - 1; k++) probe.push(make(k / 2));
    disp = maxDisplacement(probe, m, S);
    if (disp <= m - 1.5) break;
    // too much motion for the margin: shrink everything and try again
    tScale *= 0.85;
    rotation *= 0.85;
    zoom *= 0.85;
  }
  return { at: make, translationPx: translation * tScale, rotationRad: rotation, zoom, maxDisplacement: disp };
}

/** I + L (A - I): the camera map with L times its displacement from the middle frame. */
export function scaleAffine(A: Affine, L: number): Affine {
  return {
    a00: 1 + L * (A.a00 - 1), a01: L * A.a01, a10: L * A.a10, a11: 1 + L * (A.a11 - 1),
    b0: L * A.b0, b1: L * A.b1,
  };
}

/** acc += bilinear(world at A(p)) for the S x S output area starting at (m, m) of the C x C canvas */
export function accumulateWarp(acc: Float32Array, world: Float32Array, C: number, S: number, m: number, f: Affine): void {
  const maxC = C - 1.000001;
  for (let y = 0; y < S; y++) {
    const py = y + m;
    let qx = f.a00 * m + f.a01 * py + f.b0;
    let qy = f.a10 * m + f.a11 * py + f.b1;
    let o = y * S * 3;
    for (let x = 0; x < S; x++, o += 3) {
      const sx = qx < 0 ? 0 : qx > maxC ? maxC : qx;
      const sy = qy < 0 ? 0 : qy > maxC ? maxC : qy;
      qx += f.a00;
      qy += f.a10;
      const x0 = sx | 0;
      const y0 = sy | 0;
      const fx = sx - x0;
      const fy = sy - y0;
      const p00 = (y0 * C + x0) * 3;
      const p01 = p00 + 3;
      const p10 = p00 + C * 3;
      const p11 = p10 + 3;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      acc[o] = acc[o]! + w00 * world[p00]! + w01 * world[p01]! + w10 * world[p10]! + w11 * world[p11]!;
      acc[o + 1] =
        acc[o + 1]! + w00 * world[p00 + 1]! + w01 * world[p01 + 1]! + w10 * world[p10 + 1]! + w11 * world[p11 + 1]!;
      acc[o + 2] =
        acc[o + 2]! + w00 * world[p00 + 2]! + w01 * world[p01 + 2]! + w10 * world[p10 + 2]! + w11 * world[p11 + 2]!;
    }
  }
}
