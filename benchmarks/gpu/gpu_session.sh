#!/usr/bin/env bash
# The GPU session of the deep wing: a correctness check against stored CPU results, then the GPU experiment,
# everything a reader needs landing in $OUT (default runs/gpu_out). Needs only the checkout and the GPU
# image's packages (jax, numpy, scipy, xarray, h5py, matplotlib; no netCDF library).
#
#   bash benchmarks/gpu/gpu_session.sh          # call 1 (≤ 8.7 min, hard limits): device, agreement check (≤ 90 s),
#                                           #   experiment (no new run after 300 s); exit 0 done, 3 partial (landed)
#   bash benchmarks/gpu/gpu_session.sh resume   # call 2, only if call 1 exited 3 (≤ 3 min, same warm machine:
#                                           #   the run directory runs/deep_gpu_edim is resumed)
#   bash benchmarks/gpu/gpu_session.sh smoke    # the CPU rehearsal: the same steps at tiny sizes
# RUN_DIR=... overrides the experiment's run directory (default runs/deep_gpu_edim[_smoke] in the checkout).
#
# Lands in $OUT: session.log (everything printed), device.txt, gpu_deep_check.json, and deep_gpu_edim/
# {summary.json, heatmap.png, best_vs_c.png, curves.png, run.tar.gz}. Exit status: the first failure
# (1: the device disagrees with the CPU reference; 3: the experiment stopped at its time limit, partial
# results landed; 124: a step hit its hard timeout), else 0.
set -u
MODE=${1:-run}
OUT=${OUT:-runs/gpu_out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OUT
PY=${PY:-python3}
LOG="$OUT/session.log"
status=0
step() {  # step SECONDS COMMAND...: run with a hard timeout, log it, remember the first failure
  local limit=$1; shift
  echo "== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  echo "== exit $rc" | tee -a "$LOG"
  if [ "$status" = 0 ] && [ "$rc" != 0 ]; then status=$rc; fi
}
case "$MODE" in
  run|resume|smoke) ;;
  *) echo "usage: bash benchmarks/gpu/gpu_session.sh [run|resume|smoke]" >&2; exit 2 ;;
esac
{ nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; } > "$OUT/device.txt"
$PY -c "import jax, equinox, optax; print('jax', jax.__version__, 'equinox', equinox.__version__, 'optax', optax.__version__, jax.devices())" >> "$OUT/device.txt" 2>&1
cat "$OUT/device.txt" | tee -a "$LOG"
SMOKE=""
[ "$MODE" = smoke ] && SMOKE="--cpu-smoke"
if [ "$MODE" != resume ]; then
  step 90 $PY benchmarks/gpu/gpu_deep_check.py $SMOKE --no-throughput --out "$OUT/gpu_deep_check.json"
fi
LIMIT=300; HARD=420
[ "$MODE" = resume ] && { LIMIT=100; HARD=170; }
step $HARD $PY experiments/deep_gpu_edim.py $SMOKE --quiet --time-limit $LIMIT ${RUN_DIR:+--run-dir "$RUN_DIR"}
echo "landed in $OUT:" | tee -a "$LOG"
(cd "$OUT" && find . -type f | sort) | tee -a "$LOG"
exit $status
