/**
 * Two methods scored on the same images (msdi eval --json), compared image by image: the mean of
 * the per-image differences with its standard error, how often the second wins, and where they
 * part, by fifths of the images sorted by input PSNR.
 *
 * Synthetic test pairs made from a few photos are not independent: the pairs cut from one photo
 * tend to favour the same method. Given each image's source photo (msdi synth records it), the
 * standard error is also computed clustered by photo (the cluster-robust estimate), with each
 * photo's mean difference, so that one photo cannot pass for a consistent effect.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface ScoredImage {
  name: string;
  psnr: number;
  ssim: number;
  input_psnr?: number;
}

export interface MeanDiff {
  /** mean of B - A over the images */
  mean: number;
  /** standard error of that mean, the images taken as independent */
  se: number;
}

export interface GroupDiff {
  name: string;
  count: number;
  /** mean PSNR of B - A over the group's images */
  psnr: number;
  /** mean input PSNR of the group (fifths only) */
  input_psnr?: number;
}

export interface Comparison {
  count: number;
  a: { psnr: number; ssim: number };
  b: { psnr: number; ssim: number };
  psnr: MeanDiff;
  ssim: MeanDiff;
  /** images where B's PSNR is higher than A's */
  bWins: number;
  /** with the images' source photos: PSNR difference by photo, and the clustered standard error */
  byPhoto?: { groups: GroupDiff[]; se: number };
  /** with input PSNRs: the images in fifths, blurriest first */
  byInputFifth?: GroupDiff[];
}

/** The per-image scores of an `msdi eval --json` report; a clear error for anything else. */
export function readScores(file: string): ScoredImage[] {
  let report: unknown;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not a readable JSON report (${(e as Error).message.split('\n')[0]})`);
  }
  const images = (report as { images?: unknown }).images;
  if (!Array.isArray(images) || images.length === 0) throw new Error(`${file}: no per-image scores (expected the JSON of msdi eval --json)`);
  // reportToJSON writes non-finite numbers (an image identical to its target) as strings
  const num = (v: unknown) => (typeof v === 'string' ? Number(v) : v);
  return images.map((im: Record<string, unknown>, i) => {
    const s = { name: im.name, psnr: num(im.psnr), ssim: num(im.ssim), input_psnr: num(im.input_psnr) };
    if (typeof s.name !== 'string' || typeof s.psnr !== 'number' || typeof s.ssim !== 'number') {
      throw new Error(`${file}: image ${i} has no name, psnr and ssim`);
    }
    return { name: s.name, psnr: s.psnr, ssim: s.ssim, ...(typeof s.input_psnr === 'number' ? { input_psnr: s.input_psnr } : {}) };
  });
}

/** One pair's record in the synth-*.json reports of an msdi synth folder (the fields read here). */
export interface SynthPairRecord {
  name: string;
  photo: string;
  objectPhoto?: string;
}

/** Every pair's record from the synth-*.json reports of an msdi synth folder. */
export function readSynthPairs(dir: string): SynthPairRecord[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => /^synth-.*\.json$/.test(f)).sort();
  } catch (e) {
    throw new Error(`${dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (e as Error).message}`);
  }
  if (!files.length) throw new Error(`${dir}: no synth-*.json records (expected a folder made by msdi synth)`);
  return files.flatMap((f) => (JSON.parse(readFileSync(join(dir, f), 'utf8')) as { pairs?: SynthPairRecord[] }).pairs ?? []);
}

/** Image name -> the photo it was cut from, from the synth-*.json records of an msdi synth folder. */
export function photosOfPairs(dir: string): Map<string, string> {
  return new Map(readSynthPairs(dir).map((p) => [p.name, basename(p.photo)]));
}

/** The arithmetic mean. */
export const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/** The mean of paired differences and its standard error (the pairs taken as independent). */
export function meanDiff(d: number[]): MeanDiff {
  const m = mean(d);
  const n = d.length;
  const variance = n > 1 ? d.reduce((s, x) => s + (x - m) ** 2, 0) / (n - 1) : NaN;
  return { mean: m, se: Math.sqrt(variance / n) };
}

/**
 * Compares B against A over the images both scored (the same names; anything else is an error,
 * since a mean over different images compares nothing).
 */
export function compareScores(a: ScoredImage[], b: ScoredImage[], names: { a: string; b: string }, photoOf?: Map<string, string>): Comparison {
  const byName = new Map(b.map((s) => [s.name, s]));
  const inA = new Set(a.map((s) => s.name));
  const missing = a.find((s) => !byName.has(s.name))?.name ?? b.find((s) => !inA.has(s.name))?.name;
  if (missing !== undefined || a.length !== b.length) {
    throw new Error(`${names.a} and ${names.b} score different images (${missing !== undefined ? `${missing} is in one only` : 'an image twice'})`);
  }
  const pairs = a.map((s) => ({ a: s, b: byName.get(s.name)! }));
  const dPsnr = pairs.map((p) => p.b.psnr - p.a.psnr);
  const out: Comparison = {
    count: pairs.length,
    a: { psnr: mean(pairs.map((p) => p.a.psnr)), ssim: mean(pairs.map((p) => p.a.ssim)) },
    b: { psnr: mean(pairs.map((p) => p.b.psnr)), ssim: mean(pairs.map((p) => p.b.ssim)) },
    psnr: meanDiff(dPsnr),
    ssim: meanDiff(pairs.map((p) => p.b.ssim - p.a.ssim)),
    bWins: dPsnr.filter((d) => d > 0).length,
  };
  if (photoOf) {
    const groups = new Map<string, number[]>();
    pairs.forEach((p, i) => {
      const photo = photoOf.get(p.a.name);
      if (photo === undefined) throw new Error(`${p.a.name}: no source photo in the synth records given`);
      groups.set(photo, [...(groups.get(photo) ?? []), dPsnr[i]!]);
    });
    // Cluster-robust standard error of the mean over images: the residuals summed within each
    // photo, squared, summed, with the small-sample factor G / (G - 1).
    const G = groups.size;
    const m = out.psnr.mean;
    const s = [...groups.values()].reduce((acc, ds) => acc + ds.reduce((t, d) => t + d - m, 0) ** 2, 0);
    out.byPhoto = {
      groups: [...groups].map(([name, ds]) => ({ name, count: ds.length, psnr: mean(ds) })).sort((x, y) => x.psnr - y.psnr),
      se: G > 1 ? Math.sqrt((s * G) / (G - 1)) / pairs.length : NaN,
    };
  }
  if (pairs.every((p) => p.a.input_psnr !== undefined) && pairs.length >= 5) {
    const order = pairs.map((p, i) => ({ input: p.a.input_psnr!, d: dPsnr[i]! })).sort((x, y) => x.input - y.input);
    out.byInputFifth = [0, 1, 2, 3, 4].map((k) => {
      const part = order.slice(Math.round((k * order.length) / 5), Math.round(((k + 1) * order.length) / 5));
      return { name: `fifth ${k + 1}`, count: part.length, psnr: mean(part.map((x) => x.d)), input_psnr: mean(part.map((x) => x.input)) };
    });
  }
  return out;
}

const signed = (v: number, digits: number) => `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;

export function formatComparison(c: Comparison, names: { a: string; b: string }): string {
  const lines = [
    `B ${names.b} against A ${names.a}, ${c.count} images`,
    `PSNR  A ${c.a.psnr.toFixed(3)} dB  B ${c.b.psnr.toFixed(3)} dB  B - A ${signed(c.psnr.mean, 3)} +- ${c.psnr.se.toFixed(3)} dB (standard error, images independent); B better on ${c.bWins} of ${c.count}`,
    `SSIM  A ${c.a.ssim.toFixed(4)}  B ${c.b.ssim.toFixed(4)}  B - A ${signed(c.ssim.mean, 4)} +- ${c.ssim.se.toFixed(4)}`,
  ];
  if (c.byPhoto) {
    lines.push(`by source photo (${c.byPhoto.groups.length}): B - A ${signed(c.psnr.mean, 3)} +- ${c.byPhoto.se.toFixed(3)} dB (standard error clustered by photo)`);
    for (const g of c.byPhoto.groups) lines.push(`  ${signed(g.psnr, 3)} dB  ${String(g.count).padStart(4)} images  ${g.name}`);
  }
  if (c.byInputFifth) {
    lines.push('by input PSNR, blurriest fifth first: B - A');
    for (const g of c.byInputFifth) lines.push(`  ${signed(g.psnr, 3)} dB  ${String(g.count).padStart(4)} images, inputs ${g.input_psnr!.toFixed(2)} dB`);
  }
  return lines.join('\n');
}
