/**
 * Synthetic blurry/sharp training pairs made the way GoPro was made: by averaging the sub-frames
 * of a (simulated) high-speed video in linear light, with the middle sub-frame as the sharp target.
 *
 * Per pair (all randomness from a seeded Rng, never Math.random):
 *  1. scene: a random crop of a photo at a random scale (area-style resampling in linear light),
 *     random horizontal flip; the crop is larger than the output by a margin so that every warped
 *     sub-frame samples inside it (no border artefacts, nothing to crop away afterwards);
 *  2. sRGB -> linear light with the exact sRGB EOTF;
 *  3. camera shake: a smooth random trajectory (random walk with momentum) of in-plane translation
 *     plus rotation about a random centre plus slight zoom over N (odd) sub-frames; each sub-frame
 *     is the scene warped by that affine map with bilinear sampling. Rotation and zoom make the
 *     blur vary across the frame;
 *  4. moving objects (sometimes): 1..3 patches from another region/photo with a soft blobby alpha
 *     mask, each moving along its own trajectory in the world, so the blur differs locally;
 *     Each sub-frame integrates its own short exposure (a random duty cycle of the frame
 *     interval, rendered at several instants when the motion is fast) so that large motions smear
 *     continuously instead of leaving n sharp copies;
 *  5. sub-frames averaged in linear light; sometimes a depth-like defocus (disc kernel whose radius
 *     varies smoothly across the frame) on the blurry image only;
 *  6. signal-dependent Poisson-Gaussian sensor noise (small) on the blurry image, back to sRGB
 *     (exact OETF), quantised to 8 bit;
 *  7. sharp target = the middle sub-frame (identity camera transform, objects at their middle
 *     positions), same pipeline, no noise, quantised to 8 bit.
 */
import { assertRGBImage, type RGBImage } from '../image-io.js';
import type { Rng } from '../rng.js';
import { accumulateWarp, affineDistance, makeCameraMotion, maxDisplacement, scaleAffine, type Affine } from './camera.js';
import { linearToSrgb8 } from './colour.js';
import { defocusRadiusMap, variableDiscBlur } from './defocus.js';
import { motionField } from './motion.js';
import { compositeObjects, makeObjects, type MovingObject } from './objects.js';
import { checkLevels, resolveOptions, type SynthOptions, type SynthPair } from './options.js';
import { resampleToLinear, textureScore } from './resample.js';

/**
 * Makes one blurry/sharp pair (both `size` x `size`, sRGB 0..1 quantised to 8 bit) from a photo
 * (sRGB 0..1). Deterministic for a given rng state and options.
 */
export function synthesizePair(photo: RGBImage, rng: Rng, opts: SynthOptions = {}): SynthPair {
  assertRGBImage(photo, 'synthesizePair: photo');
  const o = resolveOptions(opts);
  const S = o.size;
  const m = Math.ceil(0.15 * S) + 2; // margin: camera displacement never exceeds it
  const C = S + 2 * m;

  // sub-frame count (odd)
  const odds: number[] = [];
  for (let k = o.subFrames[0]; k <= o.subFrames[1]; k++) if (k % 2 === 1) odds.push(k);
  const n = rng.pick(odds);
  const mid = (n - 1) >> 1;

  // 1-2. scene crop at a random scale, linear light
  const short = Math.min(photo.width, photo.height);
  const fMin = Math.min(1, short / C);
  const fMax = Math.max(fMin, Math.min(o.maxDownscale, short / C));
  const scale = fMax > fMin * 1.0001 ? rng.logUniform(fMin, fMax) : fMin;
  let cropX = 0;
  let cropY = 0;
  let bestScore = -1;
  for (let t = 0; t < Math.max(1, o.cropTries); t++) {
    const x = rng.uniform(0, Math.max(0, photo.width - C * scale));
    const y = rng.uniform(0, Math.max(0, photo.height - C * scale));
    const score = textureScore(photo, x, y, C * scale, scale);
    if (score > bestScore) {
      bestScore = score;
      cropX = x;
      cropY = y;
    }
    if (score >= o.minTexture) break;
  }
  const flip = o.flip && rng.bool();
  const scene = resampleToLinear(photo, cropX, cropY, scale, C, C, flip);

  // 3. camera motion
  const cam = makeCameraMotion(rng, n, S, m, o);

  // 4. moving objects
  const nObj = rng.bool(o.objectProb) ? rng.int(1, Math.max(1, o.maxObjects)) : 0;
  const sources = opts.objectSources && opts.objectSources.length > 0 ? opts.objectSources : [photo];
  for (const s of sources) assertRGBImage(s, 'synthesizePair: objectSources');
  const objects = nObj > 0 ? makeObjects(rng, n, S, m, sources, nObj) : [];

  // render and average the sub-frames. Each sub-frame integrates its own short exposure (a duty
  // cycle of the frame interval, sampled with `micro` instants) so that fast motion gives a
  // continuous smear rather than n discrete copies; with a duty cycle < 1 some of the GoPro-like
  // gaps between frames remain. The sharp target is the instantaneous middle frame.
  const duty = rng.uniform(0.6, 1.0);
  let speed = 0; // largest image motion (px) per sub-frame interval
  for (let k = 0; k + 1 < n; k++) speed = Math.max(speed, affineDistance(cam.at(k), cam.at(k + 1), m, S));
  for (const ob of objects) {
    const spinStep = n > 1 ? (Math.abs(ob.spin) / (n - 1)) * 0.5 * Math.hypot(ob.w, ob.h) : 0;
    for (let k = 0; k + 1 < n; k++) {
      const d = Math.hypot(ob.pos[k + 1]![0] - ob.pos[k]![0], ob.pos[k + 1]![1] - ob.pos[k]![1]);
      speed = Math.max(speed, d + spinStep + affineDistance(cam.at(k), cam.at(k + 1), m, S));
    }
  }
  const microCap = Math.max(1, Math.floor(o.maxWarps / n));
  const microFor = (level: number) => Math.max(1, Math.min(microCap, Math.ceil((duty * speed * level) / o.microStepPx)));
  const micro = microFor(1);
  const world = objects.length > 0 ? new Float32Array(scene.length) : scene;
  const renderAt = (tau: number, into: Float32Array, poseAt: (tau: number) => Affine, objs: MovingObject[]) => {
    if (objs.length > 0) {
      world.set(scene);
      compositeObjects(world, C, objs, tau);
    }
    accumulateWarp(into, world, C, S, m, poseAt(tau));
  };
  /** The mean of the exposure's instants, in linear light. */
  const expose = (poseAt: (tau: number) => Affine, objs: MovingObject[], mic: number): Float32Array => {
    const acc = new Float32Array(S * S * 3);
    for (let k = 0; k < n; k++) {
      for (let j = 0; j < mic; j++) {
        const tau = mic === 1 ? k : k + duty * ((j + 0.5) / mic - 0.5);
        renderAt(tau, acc, poseAt, objs);
      }
    }
    const inv = 1 / (n * mic);
    for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! * inv;
    return acc;
  };
  const acc = expose(cam.at, objects, micro);
  const sharpLin = new Float32Array(S * S * 3);
  renderAt(mid, sharpLin, cam.at, objects);

  // 5. spatially varying defocus (blurry only)
  let defocusRadius = 0;
  let defocusMap: Float32Array | null = null;
  if (rng.bool(o.defocusProb) && o.maxDefocusRadius > 0) {
    defocusRadius = rng.uniform(Math.min(1, o.maxDefocusRadius), o.maxDefocusRadius);
    defocusMap = defocusRadiusMap(rng, S, defocusRadius);
    variableDiscBlur(acc, S, defocusMap);
  }

  // 6. sensor noise (blurry only), in linear light
  let shot = 0;
  let read = 0;
  const addNoise = (img: Float32Array, r: Rng) => {
    const read2 = read * read;
    for (let i = 0; i < img.length; i++) {
      const x = img[i]!;
      const sd = Math.sqrt(Math.max(0, shot * x + read2));
      img[i] = x + sd * r.normal();
    }
  };
  if (o.noise) {
    shot = rng.logUniform(o.shotNoise[0], o.shotNoise[1]);
    read = rng.logUniform(o.readNoise[0], o.readNoise[1]);
    addNoise(acc, rng);
  }

  const blurry = linearToSrgb8(acc, S, S);
  const sharp = linearToSrgb8(sharpLin, S, S);

  // 7. other blur levels: everything above drew from `rng` as without levels, so the pair is the
  // same; the levels' noise comes from a generator forked after it.
  let levels: SynthPair['levels'];
  if (opts.levels?.length) {
    const levelRng = rng.fork();
    levels = [];
    for (const L of checkLevels(opts.levels, 'synthesizePair: levels')) {
      if (L * cam.maxDisplacement > m - 1.5) continue; // the motion would leave the scene canvas
      const objs = objects.map((ob) => {
        const [mx, my] = ob.pos[mid]!;
        return { ...ob, pos: ob.pos.map(([x, y]): [number, number] => [mx + L * (x - mx), my + L * (y - my)]), spin: ob.spin * L };
      });
      const img = expose((tau) => scaleAffine(cam.at(tau), L), objs, microFor(L));
      if (defocusMap) variableDiscBlur(img, S, defocusMap.map((r) => r * L));
      if (o.noise) addNoise(img, levelRng);
      levels.push({ level: L, blurry: linearToSrgb8(img, S, S) });
    }
  }
  return {
    blurry,
    sharp,
    ...(levels ? { levels } : {}),
    ...(opts.motion ? { motion: motionField(S, m, n, cam.at, objects, defocusMap) } : {}),
    info: {
      subFrames: n,
      microSamples: micro,
      duty,
      translationPx: cam.translationPx,
      rotationDeg: (cam.rotationRad * 180) / Math.PI,
      zoom: cam.zoom,
      maxDisplacementPx: cam.maxDisplacement,
      objects: objects.length,
      defocusRadius,
      shotNoise: shot,
      readNoise: read,
      crop: { x: cropX, y: cropY, scale, flip, texture: bestScore },
    },
  };
}
