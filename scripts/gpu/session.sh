#!/usr/bin/env bash
# One session of msdi training on a lent GPU machine: one that has a CUDA PyTorch (python3 -c
# 'import torch') but no Node and no internet. It unpacks what scripts/gpu/bundle.sh packed
# (Node, the npm packages msdi runs on, training photos, a stage-1 representation), builds the
# addon against that PyTorch's libtorch, checks the CUDA path against the CPU, synthesises the
# training pairs, trains runs side by side until the time is up, and exports them (RUNS, default
# all three):
#   stage2     msdi2_net with the representation of $BUNDLE/rep.safetensors, frozen
#   ablation   the same network without the representation (--ablate no-degradation)
#   stage1     MSDI2E, joint reblurring / deblurring, for blur transfer
# Both stage-2 runs get the same number of steps (the schedule is sized from a short timed
# start of all three runs together). Results go to $OUT (weights as float16, logs, checks).
#
# Env: BUNDLE (.gpu), OUT (required), BUDGET seconds from start to the end of the exports
# (560), DEVICE (cuda; cpu rehearses the script on a CPU machine), PAIRS (2400), SHARDS (14),
# RUNS (stage2 ablation stage1), CAL (steps of the timed start, 100),
# G1 / G2 (JSON configs of the stage-1 / stage-2 runs), WORKERS (loader threads per run, 4),
# BUILD=1 (build the addon with g++ on a CPU rehearsal too), SKIP_CHECKS=1 (no CPU-vs-GPU checks),
# AUTO_BATCH=1 (stage 2's batch and layout from an earlier step-bench.sh call on this machine;
# stage-2 runs alone are then sized from its step time, with no timed start).
# PREPARE_ONLY=1: Node, the addon, the pairs and the checks only (the first of two calls on one
# machine; set INIT2 there too, for the deblurring check).
# INIT2 / INITA / INIT1: weights each run starts from, to continue earlier sessions' exports by
# fine-tuning (default: stage 2 from $BUNDLE/rep.safetensors, the others from scratch).
# SYNTH_LEVELS (e.g. 0.5,2): the pairs also at those blur levels (msdi synth --levels; three
# times the synthesis), for a G1 with "levels" and "levelWeight".
# CHAIN=1: stage 1 first, then stage 2 and its ablation on its representation (RUNS is then all
# three; SPLIT, 0.5, is stage 1's share of the training time): a width with no stage 1 yet.
cd "$(dirname "$0")/../.."
. scripts/gpu/prepare.sh # t0, B, DEVICE, W, log
BUDGET=${BUDGET:-560}
PAIRS=${PAIRS:-2400}
SHARDS=${SHARDS:-14}
WORKERS=${WORKERS:-4}
left() { echo $(( t0 + BUDGET - $(date +%s) )); }

# 1. Node and the npm packages
gpu_node

# 2. training pairs, in shards (synth is deterministic per pair index), while the addon builds
data="$W/synth-train"
if ! ls "$data"/synth-*.json >/dev/null 2>&1; then
  for i in $(seq 0 $((SHARDS - 1))); do
    s=$(( i * PAIRS / SHARDS )); e=$(( (i + 1) * PAIRS / SHARDS ))
    node bin/msdi.js synth --from "$B/photos" --out "$data" --count $((e - s)) --start $s --seed 1 ${SYNTH_LEVELS:+--levels "$SYNTH_LEVELS"} >/dev/null 2>&1 &
  done
fi

# 3. the addon, against the libtorch inside PyTorch
gpu_addon || exit 1
wait
ls "$data"/synth-*.json >/dev/null 2>&1 || { log "synth failed"; exit 1; }
log "pairs: $(ls "$data/input" | wc -l)"

# 4. the CUDA path against the CPU: the same few training steps, and a deblur (SKIP_CHECKS=1: not;
# a call after one that ran them on this warm machine keeps their result)
if [ -s "$W/checks.txt" ] && [ "${SKIP_CHECKS:-0}" != 1 ]; then
  { echo "checks kept from an earlier call on this machine:"; cat "$W/checks.txt"; } > "$OUT/check.txt"
  SKIP_CHECKS=1
fi
[ "${SKIP_CHECKS:-0}" = 1 ] || {
  small="$W/check-data"; rm -rf "$small"; mkdir -p "$small/input" "$small/target"
  for f in $(ls "$data/input" | head -8); do cp "$data/input/$f" "$small/input/"; cp "$data/target/$f" "$small/target/"; done
  echo '{ "preset": "test-stage2", "wf": 8, "spadeHidden": 32, "crop": 64, "batch": 4, "iters": 5, "valEvery": 1000000, "ckptEvery": 5 }' > "$W/check.json"
  for dev in cpu "$DEVICE"; do
    rm -rf "$W/check-$dev"
    node bin/msdi.js train stage2 --data "$small" --out "$W/check-$dev" --init "$B/rep.safetensors" --config "$W/check.json" --device "$dev" --quiet >/dev/null
  done
  node -e '
    const fs = require("fs");
    const read = (d) => fs.readFileSync(d + "/log.jsonl", "utf8").trim().split("\n").map(JSON.parse).filter((r) => r.kind === "train").map((r) => r.l_psnr);
    const [a, b] = [read(process.argv[1]), read(process.argv[2])];
    console.log("stage-2 losses, cpu:", a.map((v) => v.toFixed(5)).join(" "), "| device:", b.map((v) => v.toFixed(5)).join(" "));
    console.log("largest difference:", Math.max(...a.map((v, i) => Math.abs(v - b[i]))).toExponential(2));
  ' "$W/check-cpu" "$W/check-$DEVICE"
  # the weights the stage-2 run starts from (the bundled ones may have been left behind to fit the carry)
  dw=${INIT2:-weights/msdi-deblur.safetensors}
  if [ -f "$dw" ]; then
    rm -rf "$W/deblur-cpu" "$W/deblur-dev" "$W/deblur-check.json"
    node bin/msdi.js deblur assets/sample-blurry.png -o "$W/deblur-cpu/s.png" --weights "$dw" --force >/dev/null
    node bin/msdi.js deblur assets/sample-blurry.png -o "$W/deblur-dev/s.png" --weights "$dw" --device "$DEVICE" --force >/dev/null
    node bin/msdi.js eval --results "$W/deblur-dev" --target "$W/deblur-cpu" --json "$W/deblur-check.json" >/dev/null
    node -e 'const r = require(process.argv[1]); console.log("deblur on the device vs the CPU:", typeof r.psnr === "number" ? r.psnr.toFixed(2) + " dB" : "identical (" + r.psnr + ")")' "$W/deblur-check.json"
  else
    echo "deblur check skipped: no $dw (set INIT2 or keep the bundled weights)"
  fi
} 2>&1 | tee "$OUT/check.txt"
[ "${SKIP_CHECKS:-0}" = 1 ] || cp "$OUT/check.txt" "$W/checks.txt"
log "checks done"
# PREPARE_ONLY=1: stop here. A warm machine keeps the addon, the pairs and the checks' result,
# so a session.sh call right after spends its whole budget on the runs.
[ "${PREPARE_ONLY:-0}" = 1 ] && { log "prepared"; exit 0; }

# 5. the runs: a timed start of all of them together (or, for stage-2 runs with AUTO_BATCH, call 1's
# step benchmark), then the real runs sized to the time left
G2=${G2:-'{ "preset": "cpu-stage2", "crop": 256, "batch": 16, "ckptEvery": 250, "keepLast": 2, "logEvery": 20 }'}
G1=${G1:-'{ "preset": "cpu-stage1", "identity": 0.25, "encoderFrom": "reblur", "perceptual": "l1", "weights": { "pixel": 10, "gan": 1, "feat": 10, "perceptual": 10 }, "spadeHidden": 32, "crop": 256, "batch": 8, "ckptEvery": 250, "keepLast": 2, "logEvery": 20 }'}
RUNS=${RUNS:-stage2 ablation stage1}
echo "$G2" > "$W/g2.json"; echo "$G1" > "$W/g1.json"
# AUTO_BATCH=1: stage 2's batch and layout from the step benchmark that an earlier call on this
# machine left in $W (scripts/gpu/step-bench.sh): among G2's width in G2's precision, the largest
# batch that gives at least 1.25x the crops a second of the next smaller one (more crops a
# minute, but not at the price of many fewer steps for little gain).
if [ "${AUTO_BATCH:-0}" = 1 ]; then
  if [ -s "$W/step-msdi.jsonl" ]; then
    # prints the MSDI_CHANNELS_LAST value of the chosen layout (- for none), its step in ms as the
    # trainer runs steps (in a row), and why, separated by tabs
    IFS=$'\t' read -r layout step_ms pick < <(node -e '
      const fs = require("fs");
      const cfgFile = process.argv[2];
      const g2 = JSON.parse(fs.readFileSync(cfgFile, "utf8"));
      const wf = g2.wf ?? 8, amp = g2.amp ?? "off";
      const rows = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse).filter((r) => r.wf === wf && r.amp === amp);
      if (!rows.length) { console.log(`-\t-\tno benchmark row for wf ${wf}, amp ${amp}; G2 as given`); process.exit(0); }
      // steps in a row, as the trainer runs them (benchmarks before that field: one step at a time)
      const cps = (r) => r.in_row_crops_per_s ?? r.crops_per_s;
      const best = new Map(); // batch -> its fastest layout
      for (const r of rows) if (!best.has(r.batch) || cps(r) > cps(best.get(r.batch))) best.set(r.batch, r);
      const byBatch = [...best.values()].sort((a, b) => a.batch - b.batch);
      let pick = byBatch[0];
      for (const r of byBatch.slice(1)) if (cps(r) >= 1.25 * cps(pick)) pick = r;
      g2.batch = pick.batch;
      fs.writeFileSync(cfgFile, JSON.stringify(g2));
      console.log(`${pick.layout === "nchw" ? 0 : 1}\t${pick.in_row_ms ?? pick.median_ms}\tbatch ${pick.batch}, ${pick.layout} (${cps(pick)} crops/s; ${byBatch.map((r) => `${r.batch}: ${cps(r)} ${r.layout}`).join(", ")})`);
    ' "$W/step-msdi.jsonl" "$W/g2.json")
    log "AUTO_BATCH: $pick" | tee -a "$OUT/check.txt"
    [ "$layout" = - ] || { MSDI_CHANNELS_LAST=$layout; export MSDI_CHANNELS_LAST; BENCH_MS=$step_ms; }
  else
    log "AUTO_BATCH: no step benchmark in $W; G2 as given" | tee -a "$OUT/check.txt"
  fi
fi
common=(--data "$data" --workers "$WORKERS" --device "$DEVICE" --quiet)
start_run() { # $1 run, $2 folder, $3 iters, then extra args
  local r=$1 dir=$2 iters=$3; shift 3
  case $r in
    stage2) set -- train stage2 --config "$W/g2.json" --init "${INIT2:-$B/rep.safetensors}" "$@" ;;
    ablation) set -- train stage2 --config "$W/g2.json" --ablate no-degradation ${INITA:+--init "$INITA"} "$@" ;;
    stage1) set -- train stage1 --config "$W/g1.json" ${INIT1:+--init "$INIT1"} "$@" ;;
    *) log "unknown run $r"; return 1 ;;
  esac
  MSDI_THREADS=2 node bin/msdi.js "$@" "${common[@]}" --out "$dir" --iters "$iters" &
}
# The timed start runs CAL steps; the rate is the mean over the later half of its logged
# stretches (past cuDNN's tuning and every run's start, so the contention is the real one, and
# with the loader's cache of decoded images warmer: a rate from a cold cache sizes the schedules
# short).
CAL=${CAL:-100}
calibrate() { # runs...
  for r in "$@"; do rm -rf "${W:?}/cal-$r"; start_run "$r" "$W/cal-$r" 100000 --stop-after "$CAL" >"$W/cal-$r.out" 2>&1; done
  wait
}
trained() { grep -q '"kind":"train"' "$W/cal-$1/log.jsonl" 2>/dev/null; }
# timed RUNS...: a timed start of those runs together. Mixed precision has not run on a GPU
# before: if a timed start fails with it, the session goes on in float32 rather than losing its
# training time.
timed() {
  calibrate "$@"
  for r in "$@"; do
    if ! trained "$r" && grep -q '"amp" *: *"bf16"' "$W/g1.json" "$W/g2.json"; then
      log "$r: the timed start failed ($(tail -n 1 "$W/cal-$r.out")); again without mixed precision" | tee -a "$OUT/check.txt"
      for f in "$W/g1.json" "$W/g2.json"; do node -e 'const fs = require("fs"); const c = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); c.amp = "off"; fs.writeFileSync(process.argv[1], JSON.stringify(c))' "$f"; done
      calibrate "$@"
      break
    fi
  done
  for r in "$@"; do trained "$r" || { log "$r: the timed start failed: $(tail -n 1 "$W/cal-$r.out")" | tee -a "$OUT/check.txt"; exit 1; }; done
}
latest_ckpt() { ls "$1"/ckpt-*.safetensors 2>/dev/null | sort | tail -n 1; }
# rate DIR [KEY]: the mean of KEY (s_per_it; s_wait_per_it: the part spent waiting for batches)
rate() { node -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse).filter((r) => r.kind === "train");
  const late = rows.length > 2 ? rows.slice(Math.max(2, rows.length >> 1)) : rows.slice(-1);
  const k = process.argv[2] || "s_per_it";
  console.log((late.reduce((s, r) => s + (r[k] ?? NaN), 0) / late.length).toPrecision(3))' "$1/log.jsonl" "${2:-}"; }
declare -A iters
# train SECONDS RUNS...: sizes the runs' schedules to SECONDS at their timed-start rates, trains
# them together, and stops them (SIGTERM: each checkpoints first) 15 s past SECONDS.
train() {
  local secs=$1; shift
  if [ "$secs" -lt 30 ]; then log "no time left to train $* ($secs s)" | tee -a "$OUT/check.txt"; return 1; fi
  for r in "$@"; do
    if [ -n "${BENCH_MS:-}" ]; then
      # from the step benchmark: runs side by side take turns on the GPU, so a step of each costs
      # the sum of theirs (a little less in the eighth session of November 27: the ablation's step
      # is cheaper, and the network runs alone once its ablation is done); 25 s for their start
      s=$(node -e "console.log(($BENCH_MS * $# / 1000).toPrecision(3))")
      iters[$r]=$(node -e "console.log(Math.max(50, Math.floor(($secs - 25) * 0.95 / $s / 50) * 50))")
      log "$r: $s s a step (the step benchmark's $BENCH_MS ms, $# runs at once): ${iters[$r]} steps in $secs s" | tee -a "$OUT/check.txt"
    else
      s=$(rate "$W/cal-$r")
      iters[$r]=$(node -e "console.log(Math.max(50, Math.floor($secs * 0.85 / $s / 50) * 50))")
      log "$r: $s s a step (with $* at once; $(rate "$W/cal-$r" s_wait_per_it) s of it waiting for batches): ${iters[$r]} steps in $secs s" | tee -a "$OUT/check.txt"
    fi
  done
  # both stage-2 runs get the steps of the slower of them, so that they compare at equal steps
  if [ -n "${iters[stage2]:-}" ] && [ -n "${iters[ablation]:-}" ]; then
    n=$(( iters[stage2] < iters[ablation] ? iters[stage2] : iters[ablation] ))
    iters[stage2]=$n; iters[ablation]=$n
  fi
  for r in "$@"; do rm -rf "${W:?}/$r"; start_run "$r" "$W/$r" "${iters[$r]}"; done
  local pids; pids=$(jobs -p)
  ( sleep $(( secs + 15 )); kill -TERM $pids 2>/dev/null ) &
  local watchdog=$!
  wait $pids
  kill $watchdog 2>/dev/null
}
if [ "${CHAIN:-0}" = 1 ]; then
  # CHAIN=1: stage 1, then stage 2 and its ablation on the representation it has just learnt
  # (for a width with no representation yet: G1 and G2 with the same "wf"). SPLIT: stage 1's
  # share of the training time (0.5).
  RUNS="stage1 stage2 ablation"
  BENCH_MS= # stage 1 has no step benchmark: timed starts size all three
  timed stage1
  INIT2=$(latest_ckpt "$W/cal-stage1") # the timed start of stage 2 needs a representation of its width
  [ -n "$INIT2" ] || { log "stage 1's timed start left no checkpoint" | tee -a "$OUT/check.txt"; exit 1; }
  timed stage2 ablation
  train_s=$(( $(left) - 50 - 20 )) # 20: the handover between the two
  train "$(node -e "console.log(Math.floor($train_s * ${SPLIT:-0.5}))")" stage1
  INIT2=$(latest_ckpt "$W/stage1")
  [ -n "$INIT2" ] || { log "stage 1 left no checkpoint" | tee -a "$OUT/check.txt"; exit 1; }
  log "stage 1 done; stage 2 on $(basename "$INIT2")"
  train $(( $(left) - 50 )) stage2 ablation
elif [ -n "${BENCH_MS:-}" ] && [[ " $RUNS " != *" stage1 "* ]]; then
  # stage-2 runs at the benchmarked batch: sized from the benchmark, no timed start (48 s in the
  # eighth session of November 27); 30 s kept for the exports (they took 2 s)
  log "no timed start: the runs are sized from the step benchmark" | tee -a "$OUT/check.txt"
  train $(( $(left) - 30 )) $RUNS
else
  BENCH_MS=
  timed $RUNS
  train $(( $(left) - 50 )) $RUNS
fi
log "training done"

# 6. exports (float16) and logs
logs=()
for r in $RUNS; do
  [ -d "$W/$r" ] || continue
  node bin/msdi.js export "$W/$r" -o "$OUT/$r.safetensors" --half | tee -a "$OUT/check.txt"
  logs+=("$r/log.jsonl" "$r/config.json" "cal-$r/log.jsonl")
done
tar -czf "$OUT/logs.tgz" -C "$W" "${logs[@]}" 2>/dev/null
log "done"
