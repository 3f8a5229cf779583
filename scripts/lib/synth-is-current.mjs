// synth-is-current.mjs SYNTH_DIR PHOTOS_DIR: exits 0 when SYNTH_DIR is a complete msdi synth
// folder made from exactly the photos now in PHOTOS_DIR, 1 (with the reason on stderr) otherwise.
// Scripts that reuse pairs made in an earlier session call it, so that a change of
// scripts/photo-split.txt (photos added, moved between train and val) remakes the pairs
// instead of scoring against a stale held-out set.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';

const [dir, photos] = process.argv.slice(2);
if (!dir || !photos) {
  console.error('usage: node scripts/lib/synth-is-current.mjs SYNTH_DIR PHOTOS_DIR');
  process.exit(2);
}
const fail = (why) => {
  console.error(`${dir}: ${why}`);
  process.exit(1);
};
let reports = [];
try {
  reports = readdirSync(dir).filter((n) => /^synth-.*\.json$/.test(n));
} catch {
  process.exit(1); // no folder yet: nothing to say
}
// synth writes its report last: a folder without one is incomplete
if (reports.length === 0) fail('no synth report (an interrupted run)');
const used = new Set();
for (const r of reports) {
  for (const p of JSON.parse(readFileSync(`${dir}/${r}`, 'utf8')).pairs) {
    used.add(basename(p.photo));
    if (p.objectPhoto) used.add(basename(p.objectPhoto));
  }
}
const exts = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff']);
const now = new Set(readdirSync(photos).filter((n) => !n.startsWith('.') && exts.has(extname(n).toLowerCase())));
const gone = [...used].filter((n) => !now.has(n));
const unused = [...now].filter((n) => !used.has(n));
if (gone.length > 0) fail(`made from ${gone.length} photo(s) no longer in ${photos} (${gone[0]}, ...)`);
if (unused.length > 0) fail(`${unused.length} photo(s) of ${photos} not used (${unused[0]}, ...)`);
