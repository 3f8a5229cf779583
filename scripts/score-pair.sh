#!/usr/bin/env bash
# score-pair.sh: scores a deblurring network with the representation against its ablation, as
# the training log does after every run: both on the held-out pairs (msdi eval, reports next to
# the weights as NAME.eval.json), the ablation against the network image by image and by source
# photo (msdi eval --compare --by-photo), and whether the network reads its representation
# (scripts/probe-deblur-representation.mts). About 6 minutes on this project's 2-core CPU.
#
#   scripts/score-pair.sh REP.safetensors ABLATION.safetensors [VAL_DIR]
#
# VAL_DIR: the held-out pairs made by msdi synth (default $HOME/msdi-train/synth-val; see README,
# "Training", for how they are made).
set -euo pipefail
cd "$(dirname "$0")/.."
rep=${1:?usage: scripts/score-pair.sh REP.safetensors ABLATION.safetensors [VAL_DIR]}
abl=${2:?usage: scripts/score-pair.sh REP.safetensors ABLATION.safetensors [VAL_DIR]}
val=${3:-$HOME/msdi-train/synth-val}
for w in "$rep" "$abl"; do
  [ -f "$w" ] || { echo "score-pair: $w: no such file" >&2; exit 1; }
done
ls "$val"/synth-*.json >/dev/null 2>&1 || { echo "score-pair: $val: no msdi synth folder (synth-*.json)" >&2; exit 1; }
# scores on an older held-out set are not comparable with the README's: say so, but go on
node --import tsx scripts/lib/synth-is-current.mts "$val" data/photos/val 2>/dev/null \
  || echo "score-pair: warning: $val was not made from the photos now in data/photos/val" >&2
for w in "$rep" "$abl"; do
  node bin/msdi.js eval --input "$val" --target "$val" --weights "$w" --json "${w%.safetensors}.eval.json" | tail -n 4
done
node bin/msdi.js eval --compare "${rep%.safetensors}.eval.json" "${abl%.safetensors}.eval.json" --by-photo "$val"
node --import tsx scripts/probe-deblur-representation.mts "$rep" "$val" 100
