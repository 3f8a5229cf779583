#!/usr/bin/env node
// Copies photos at the size msdi synth works at (short side 1024, as its photoShortSide) as
// WebP, quality 90: a tenth of the bytes, for carrying them to a machine without the Debian
// packages they come from. Usage: shrink-photos.mjs FROM TO
import sharp from 'sharp';
import { readdirSync, mkdirSync } from 'node:fs';
import { join, parse } from 'node:path';

const [from, to] = process.argv.slice(2);
if (!from || !to) {
  console.error('usage: shrink-photos.mjs FROM TO');
  process.exit(2);
}
mkdirSync(to, { recursive: true });
for (const f of readdirSync(from).sort()) {
  if (!/\.(jpe?g|png|webp|tiff?)$/i.test(f)) continue;
  const img = sharp(join(from, f)).rotate();
  const { width, height } = await img.metadata();
  const resized = Math.min(width, height) > 1024 ? img.resize(width < height ? { width: 1024 } : { height: 1024 }) : img;
  await resized.webp({ quality: 90 }).toFile(join(to, `${parse(f).name}.webp`));
}
