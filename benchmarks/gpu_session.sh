#!/usr/bin/env bash
# The one device-machine session: both GPU checks, each under its own time limit, logs under $OUT.
#   OUT=/tmp/out bash benchmarks/gpu_session.sh          (on the device machine; PYTHONPATH points at the checkout)
set -u
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi -L 2>&1 | tee "$OUT/device.txt"
$PY -c "import jax, diffrax, equinox, optax; print('jax', jax.__version__, 'diffrax', diffrax.__version__, 'equinox', equinox.__version__, 'optax', optax.__version__, jax.devices())" 2>&1 | tee -a "$OUT/device.txt"
timeout ${T1:-220} $PY benchmarks/gpu_check.py --also-default ${GPU_CHECK_ARGS:-} 2>&1 | tee "$OUT/gpu_check.txt"
echo "gpu_check exit ${PIPESTATUS[0]}" | tee -a "$OUT/gpu_check.txt"
timeout ${T2:-240} $PY benchmarks/gpu_deep_check.py --out "$OUT/gpu_deep_check.json" ${DEEP_ARGS:-} 2>&1 | tee "$OUT/gpu_deep_check.txt"
echo "gpu_deep_check exit ${PIPESTATUS[0]}" | tee -a "$OUT/gpu_deep_check.txt"
