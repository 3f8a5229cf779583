// synth-is-current.mts SYNTH_DIR PHOTOS_DIR (run with node --import tsx): exits 0 when SYNTH_DIR
// is a complete msdi synth folder made from exactly the photos now in PHOTOS_DIR, 1 (with the
// reason on stderr) otherwise. Scripts that reuse pairs made in an earlier session call it, so
// that a change of scripts/photo-split.txt (photos added, moved between train and val) remakes
// the pairs instead of scoring against a stale held-out set.
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { readSynthPairs } from '../../src/eval/compare.js';
import { listPhotos } from '../../src/data/synth/index.js';

const [dir, photos] = process.argv.slice(2);
if (!dir || !photos) {
  console.error('usage: node --import tsx scripts/lib/synth-is-current.mts SYNTH_DIR PHOTOS_DIR');
  process.exit(2);
}
const fail = (why: string): never => {
  console.error(`${dir}: ${why}`);
  process.exit(1);
};
if (!existsSync(dir)) process.exit(1); // no folder yet: nothing to say
let pairs: ReturnType<typeof readSynthPairs> = [];
try {
  pairs = readSynthPairs(dir);
} catch (e) {
  // synth writes its report last: a folder without a readable one is incomplete
  fail(`no synth report (an interrupted run): ${(e as Error).message}`);
}
const used = new Set(pairs.flatMap((p) => [basename(p.photo), ...(p.objectPhoto ? [basename(p.objectPhoto)] : [])]));
const now = new Set((await listPhotos(photos)).map((p) => basename(p)));
const gone = [...used].filter((n) => !now.has(n));
const unused = [...now].filter((n) => !used.has(n));
if (gone.length > 0) fail(`made from ${gone.length} photo(s) no longer in ${photos} (${gone[0]}, ...)`);
if (unused.length > 0) fail(`${unused.length} photo(s) of ${photos} not used (${unused[0]}, ...)`);
