#!/usr/bin/env bash
# Continues a fair pair of stage-2 runs on this machine, resumably: the deblurring network with
# its representation and its --ablate no-degradation twin, each fine-tuned from earlier weights
# (for example a GPU session's exports), in alternating chunks of CHUNK steps, so that both have
# always trained for the same number of steps when the job is stopped (a chunk ends at a
# multiple of CHUNK, so a run stopped midway catches up to the other's step first). Run it again
# after a stop and both continue where they were. Every chunk reads CONFIG again (iters included),
# so an edit of it, a shorter schedule say, applies to both runs from their next chunks.
#
# To stop both at the same step (for a comparison at the end of a session), touch RUNS_DIR/STOP:
# the job ends once the two runs are level, and removes the file.
#
# Usage: bash scripts/continue-pair.sh STAGE2_WEIGHTS ABLATION_WEIGHTS CONFIG RUNS_DIR
#   STAGE2_WEIGHTS / ABLATION_WEIGHTS: msdi2_net and msdi_net weights (msdi export, or .safetensors
#   from scripts/gpu/session.sh); CONFIG: a stage-2 config file (its "iters" is the schedule);
#   RUNS_DIR gets pair-stage2/ and pair-ablation/.
# Env: DATA (training pairs, $HOME/msdi-train/synth-train), VAL (validation pairs,
#   $HOME/msdi-train/synth-val), CHUNK (250).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 4 ] || { echo "usage: bash scripts/continue-pair.sh STAGE2_WEIGHTS ABLATION_WEIGHTS CONFIG RUNS_DIR" >&2; exit 2; }
w2=$1 wa=$2 config=$3 runs=$4
for f in "$w2" "$wa" "$config"; do [ -f "$f" ] || { echo "continue-pair: $f: no such file" >&2; exit 2; }; done
DATA="${DATA:-$HOME/msdi-train/synth-train}"
VAL="${VAL:-$HOME/msdi-train/synth-val}"
CHUNK="${CHUNK:-250}"
mkdir -p "$runs"
msdi() { node bin/msdi.js "$@"; }
steps() { ls "$1"/ckpt-*.safetensors 2>/dev/null | sed 's/.*ckpt-0*\([0-9]*\)\.safetensors/\1/' | sort -n | tail -1 || true; }

while :; do
  iters=$(node -e 'const n = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).iters;
    if (!Number.isInteger(n) || n < 1) { console.error(`continue-pair: ${process.argv[1]}: expected "iters", the schedule both runs end at`); process.exit(2); }
    console.log(n)' "$config")
  s2=$(steps "$runs/pair-stage2"); s2=${s2:-0}
  ab=$(steps "$runs/pair-ablation"); ab=${ab:-0}
  [ "$s2" -ge "$iters" ] && [ "$ab" -ge "$iters" ] && break
  if [ -e "$runs/STOP" ] && [ "$s2" -eq "$ab" ]; then
    rm -f "$runs/STOP"
    echo "continue-pair: stopped as asked, both runs at step $s2"
    exit 0
  fi
  if [ "$s2" -le "$ab" ]; then
    if [ "$s2" -gt 0 ]; then from=(--resume); else from=(--init "$w2"); fi
    msdi train stage2 --data "$DATA" --val "$VAL" --out "$runs/pair-stage2" --config "$config" "${from[@]}" --stop-after $((CHUNK - s2 % CHUNK)) --quiet
  else
    if [ "$ab" -gt 0 ]; then from=(--resume); else from=(--init "$wa"); fi
    msdi train stage2 --ablate no-degradation --data "$DATA" --val "$VAL" --out "$runs/pair-ablation" --config "$config" "${from[@]}" --stop-after $((CHUNK - ab % CHUNK)) --quiet
  fi
done
echo "continue-pair: done; score both with msdi eval after msdi export RUN -o W --half"
