#!/usr/bin/env bash
# How fast a GPU trains msdi2_net, ours against PyTorch eager, on a lent GPU machine
# (scripts/gpu/bundle.sh packs what it needs; carry .gpu and dist): one stage-2 step (the batch
# copied from the CPU, forward, PSNRLoss, backward, gradient norm, Adam) for each spec
# WF:BATCH:AMP:LAYOUT, its losses read back after each step and after a row of steps
# (step-bench.mjs), then the same step in PyTorch for each TORCH spec and PyTorch's per-kernel
# CUDA times of one step of the last (torch-profile.txt). Results in $OUT:
# step-msdi.jsonl, step-torch.jsonl (one JSON line a spec), torch-profile.txt.
# Env: OUT (required), BUNDLE (.gpu), DEVICE (cuda; cpu rehearses), SIZE (256), SPADE (32),
# REPEATS (8), SPECS and TORCH_SPECS (below; TORCH_SPECS= leaves PyTorch out), PYTHON (python3:
# the one with the CUDA PyTorch).
cd "$(dirname "$0")/../.."
. scripts/gpu/prepare.sh # t0, B, DEVICE, W, log
gpu_node
gpu_addon || exit 1
SIZE=${SIZE:-256}; SPADE=${SPADE:-32}; REPEATS=${REPEATS:-8}
# Precision and layout at the bundled width and batch, then larger batches and wf 12 (the widest
# that fits the 25 MB weights limit with the representation): a GPU that the small network
# leaves idle trains them at little more time a step.
SPECS=${SPECS:-8:32:off:nchw 8:32:bf16:nchw 8:32:bf16:nhwc 8:64:bf16:nchw 8:128:bf16:nchw 12:32:bf16:nchw}
TORCH_SPECS=${TORCH_SPECS-8:32:off:nchw 8:32:bf16:nchw} # set but empty: no PyTorch
# shellcheck disable=SC2086
MSDI_THREADS=${MSDI_THREADS:-4} node scripts/gpu/step-bench.mjs "$DEVICE" "$SIZE" "$SPADE" "$REPEATS" $SPECS | tee "$OUT/step-msdi.jsonl"
cp "$OUT/step-msdi.jsonl" "$W/" # for a later session.sh call on this machine (AUTO_BATCH=1)
log "msdi done"
ref() { # WF:BATCH:AMP:LAYOUT [more args]
  local wf batch amp layout
  IFS=: read -r wf batch amp layout <<<"$1"; shift
  [ "$layout" = nhwc ] && set -- --channels-last "$@"
  "${PYTHON:-python3}" scripts/torch_reference.py train --device "$DEVICE" --wf "$wf" --batch "$batch" --size "$SIZE" \
    --spade-hidden "$SPADE" --amp "$amp" --threads "${MSDI_THREADS:-4}" "$@"
}
[ -n "$TORCH_SPECS" ] || { log "done (TORCH_SPECS empty: no PyTorch)"; exit 0; }
for s in $TORCH_SPECS; do ref "$s" --repeats "$REPEATS" --warmup 3; done | tee "$OUT/step-torch.jsonl"
log "PyTorch done"
last=${TORCH_SPECS##* }
ref "$last" --repeats 1 --warmup 3 --profile 2>"$OUT/torch-profile.txt" >/dev/null
log "done (PyTorch's kernels for $last: torch-profile.txt)"
