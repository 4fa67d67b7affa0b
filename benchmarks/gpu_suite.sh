#!/usr/bin/env bash
# One prepared pass on a GPU machine: engine throughput per architecture, the user's full grid
# (configs/seed.toml, 60 runs of 8 epochs) and the accuracy recipe (configs/best.toml), the
# latter two sharing the GPU at once. Every phase has its own time limit, and what finished is
# packed into $OUT after each phase, so a cut-off run still returns its ledgers.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_suite.sh                # the real thing (~9 minutes on an H200)
#   OUT=/tmp/gpu TINY=1 bash benchmarks/gpu_suite.sh         # rehearsal on a CPU, ~2 minutes
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
WORK=${WORK:-/tmp/mnistlab_gpu}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
PY=${PY:-python3}
SEED_WORKERS=${SEED_WORKERS:-10}
BEST_WORKERS=${BEST_WORKERS:-4}
T_THROUGHPUT=${T_THROUGHPUT:-75}
T_SWEEPS=${T_SWEEPS:-400}
if [ "${TINY:-0}" = 1 ]; then
  TP_ARGS=(--models lenet fastnet --steps 5)
  SEED_SET=(--set train_subset=300 --set eval_subset=200 --set epochs=1)
  BEST_SET=(--set train_subset=300 --set eval_subset=200 --set epochs=1)
  SEED_WORKERS=2 BEST_WORKERS=1
else
  TP_ARGS=(--steps 100)
  SEED_SET=()
  BEST_SET=()
fi

start=$(date +%s)
log() { echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$OUT/suite.log"; }
log "host: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo no GPU)"
log "torch: $($PY -c 'import torch; print(torch.__version__, torch.cuda.is_available())')"

log "phase 1: throughput, engine vs seed-style loop"
timeout "$T_THROUGHPUT" $PY benchmarks/throughput.py "${TP_ARGS[@]}" --out "$OUT/throughput.json" 2>&1 | tee -a "$OUT/suite.log"

log "phase 2: seed grid ($SEED_WORKERS workers) and best recipe ($BEST_WORKERS workers), together"
timed_sweep() {  # name workers settings...
  local name=$1 workers=$2 t0; shift 2; t0=$(date +%s.%N)
  timeout "$T_SWEEPS" $PY -m mnistlab sweep "$name" --out "$WORK/$name" --workers "$workers" \
    --no-report "$@" > "$WORK/$name.log" 2>&1
  echo "$name sweep: exit $?, wall $($PY -c "import time; print(round(time.time() - $t0, 1))") s" >> "$WORK/$name.log"
}
timed_sweep seed "$SEED_WORKERS" "${SEED_SET[@]}" &
timed_sweep best "$BEST_WORKERS" "${BEST_SET[@]}" &
wait
# A sweep stopped by its time limit can leave pool workers behind: stop them before phase 3.
pkill -f "multiprocessing.spawn" 2>/dev/null; sleep 1
tail -n 3 "$WORK/seed.log" "$WORK/best.log" | tee -a "$OUT/suite.log"

log "phase 3: reports, ensemble, pack"
for s in seed best; do
  $PY -m mnistlab sweep $s --out "$WORK/$s" --status "${SEED_SET[@]}" > "$WORK/$s.status" 2>&1
  tail -n 1 "$WORK/$s.status" | tee -a "$OUT/suite.log"
  timeout 60 $PY -m mnistlab report "$WORK/$s" >> "$OUT/suite.log" 2>&1
done
ckpts=$(ls "$WORK"/best/runs/m5-*/checkpoint.pt 2>/dev/null)
if [ -n "$ckpts" ]; then
  timeout 120 $PY -m mnistlab evaluate --ensemble $ckpts 2>&1 | tee -a "$OUT/suite.log" \
    || echo "ensemble evaluation failed or timed out" | tee -a "$OUT/suite.log"
fi
# The ledgers without checkpoints (small), and the m5 checkpoints on their own.
tar czf "$OUT/ledgers.tgz" -C "$WORK" --exclude='*.pt' seed best seed.log best.log 2>/dev/null
[ -n "$ckpts" ] && tar czf "$OUT/m5_checkpoints.tgz" -C "$WORK" $(cd "$WORK" && ls best/runs/m5-*/checkpoint.pt)
log "done"
