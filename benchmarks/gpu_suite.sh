#!/usr/bin/env bash
# One prepared pass on a GPU machine, in order of importance, each phase with its own time
# limit and its results packed into $OUT before the next starts (a cut-off call still returns
# what finished):
#   1. engine throughput per architecture against the seed-style loop;
#   2. the accuracy recipe (configs/best.toml), alone on the GPU, then the m5 ensemble;
#   3. the user's full grid (configs/seed.toml, 60 runs of 8 epochs), N runs at once.
# Lessons from the first H200 pass (see the README): sharing the GPU between the two sweeps
# left neither finished in 330 s, and results only packed at the end were lost when the call
# was cut short.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_suite.sh                # the real thing (~10 minutes)
#   OUT=/tmp/gpu TINY=1 PY=.venv/bin/python bash benchmarks/gpu_suite.sh   # CPU rehearsal
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
WORK=${WORK:-/tmp/mnistlab_gpu}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
PY=${PY:-python3}
SEED_WORKERS=${SEED_WORKERS:-10}
BEST_WORKERS=${BEST_WORKERS:-8}
T_THROUGHPUT=${T_THROUGHPUT:-60}
T_BEST=${T_BEST:-240}
T_SEED=${T_SEED:-240}
if [ "${TINY:-0}" = 1 ]; then
  TP_ARGS=(--models lenet fastnet --steps 5)
  SETTINGS=(--set train_subset=300 --set eval_subset=200 --set epochs=1)
  SEED_WORKERS=2 BEST_WORKERS=2
else
  TP_ARGS=(--steps 100)
  SETTINGS=()
fi

start=$(date +%s)
log() { echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$OUT/suite.log"; }
log "host: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo no GPU)"
log "torch: $($PY -c 'import torch; print(torch.__version__, torch.cuda.is_available())')"

log "phase 1: throughput, engine vs seed-style loop"
timeout "$T_THROUGHPUT" $PY benchmarks/throughput.py "${TP_ARGS[@]}" --out "$OUT/throughput.json" 2>&1 | tee -a "$OUT/suite.log"

sweep_phase() {  # name workers limit: run, stop leftovers, report, pack
  local name=$1 workers=$2 limit=$3 t0=$(date +%s)
  timeout "$limit" $PY -m mnistlab sweep "$name" --out "$WORK/$name" --workers "$workers" \
    --no-report "${SETTINGS[@]}" > "$WORK/$name.log" 2>&1
  log "$name sweep: exit $?, wall $(( $(date +%s) - t0 )) s"
  # A sweep stopped by its time limit can leave pool workers behind.
  pkill -f "multiprocessing.spawn" 2>/dev/null; sleep 1
  $PY -m mnistlab sweep "$name" --out "$WORK/$name" --status "${SETTINGS[@]}" | tail -n 1 | tee -a "$OUT/suite.log"
  timeout 60 $PY -m mnistlab report "$WORK/$name" >> "$OUT/suite.log" 2>&1
  grep -h '^|' "$WORK/$name/report/best_per_model.md" 2>/dev/null | tee -a "$OUT/suite.log"
  tar czf "$OUT/$name.tgz" -C "$WORK" --exclude='*.pt' "$name" "$name.log"
}

log "phase 2: the accuracy recipe ($BEST_WORKERS workers)"
sweep_phase best "$BEST_WORKERS" "$T_BEST"
ckpts=$(ls "$WORK"/best/runs/m5-*/checkpoint.pt 2>/dev/null)
if [ -n "$ckpts" ]; then
  timeout 60 $PY -m mnistlab evaluate --ensemble $ckpts 2>&1 | tee -a "$OUT/suite.log" \
    || log "ensemble evaluation failed or timed out"
fi

log "phase 3: the user's grid ($SEED_WORKERS workers)"
sweep_phase seed "$SEED_WORKERS" "$T_SEED"
log "done"
