#!/usr/bin/env bash
# Trains msdi's bundled default weights on this machine, resumably: run it again after a stop
# and every stage continues where it was (checkpoints every 100 steps).
#
#   1. data: 2400 training pairs and 200 validation pairs, synthesised from Debian photos
#      (training and validation photos apart: scripts/photo-split.txt)
#   2. stage 1: MSDI2E (joint reblurring / deblurring) with the cpu-stage1 preset: a 3000-step
#      schedule, stopped after STAGE1_STOP steps (the stage-2 encoder comes from that checkpoint)
#   3. stage 2: msdi2_net with the stage-1 representation frozen, and the same network without
#      the representation (--ablate no-degradation), in alternating chunks of CHUNK steps, so
#      that both have always trained for the same number of steps when the job is stopped
#
# Usage: bash scripts/train-default.sh [RUNS_DIR]   (default $HOME/msdi-train)
# Env: STAGE1_ITERS (3000), STAGE1_STOP (1500), STAGE2_ITERS (10000; the cosine schedule spans
# them), CHUNK (500).
# A run resumes with the configuration it started with (its config.json).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-$HOME/msdi-train}"
STAGE1_ITERS="${STAGE1_ITERS:-3000}"
STAGE1_STOP="${STAGE1_STOP:-1500}"
STAGE2_ITERS="${STAGE2_ITERS:-10000}"
CHUNK="${CHUNK:-500}"
msdi() { node bin/msdi.js "$@"; }
mkdir -p "$RUNS"

bash scripts/get-photos.sh # idempotent: picks up changes of scripts/photo-split.txt
# Pairs made earlier are kept if complete and made from today's photos (photo-split.txt changes).
current() { node --import tsx scripts/lib/synth-is-current.mts "$@"; }
current "$RUNS/synth-train" data/photos/train || { rm -rf "$RUNS/synth-train"; msdi synth --from data/photos/train --out "$RUNS/synth-train" --count 2400 --seed 1; }
current "$RUNS/synth-val" data/photos/val || { rm -rf "$RUNS/synth-val"; msdi synth --from data/photos/val --out "$RUNS/synth-val" --count 200 --seed 2; }
data=(--data "$RUNS/synth-train" --val "$RUNS/synth-val")

# Step count of a run: the newest checkpoint's number (0 when none).
steps() { ls "$1"/ckpt-*.safetensors 2>/dev/null | sed 's/.*ckpt-0*\([0-9]*\)\.safetensors/\1/' | sort -n | tail -1 || true; }
resume() { [ -n "$(steps "$1")" ] && echo --resume || true; }

s1=$(steps "$RUNS/stage1"); s1=${s1:-0}
if [ "$s1" -lt "$STAGE1_STOP" ]; then
  msdi train stage1 "${data[@]}" --out "$RUNS/stage1" --iters "$STAGE1_ITERS" --stop-after $((STAGE1_STOP - s1)) \
    $(resume "$RUNS/stage1") --quiet
fi
init="$RUNS/stage1/ckpt-$(printf %08d "$STAGE1_STOP").safetensors"

while :; do
  s2=$(steps "$RUNS/stage2"); s2=${s2:-0}
  ab=$(steps "$RUNS/stage2-no-degradation"); ab=${ab:-0}
  [ "$s2" -ge "$STAGE2_ITERS" ] && [ "$ab" -ge "$STAGE2_ITERS" ] && break
  if [ "$s2" -le "$ab" ]; then
    msdi train stage2 "${data[@]}" --out "$RUNS/stage2" --init "$init" --iters "$STAGE2_ITERS" \
      --stop-after "$CHUNK" $(resume "$RUNS/stage2") --quiet
  else
    msdi train stage2 "${data[@]}" --out "$RUNS/stage2-no-degradation" --ablate no-degradation \
      --iters "$STAGE2_ITERS" --stop-after "$CHUNK" $(resume "$RUNS/stage2-no-degradation") --quiet
  fi
done
echo "train-default: done; export with: npx msdi export $RUNS/stage2 -o weights/msdi-deblur.safetensors --half --force"
