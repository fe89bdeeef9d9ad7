#!/usr/bin/env bash
# The GPU path in one run of at most 10 minutes, on a machine with an NVIDIA GPU (the device tool runs it in
# the repository root; nothing is installed: the package runs from this checkout through PYTHONPATH).
#
#   OUT=... bash tools/gpu_check.sh            # BUDGET=540 (seconds in all), CHUNK=1 (0: no Fig. 1f chunk)
#
#   1. the kernels' test run on this GPU (the probe `choose` runs), and their compile report for it
#   2. bench in fresh processes, medians after warm-up: one network and 30 networks (Fig. 1f), with peak GPU
#      memory (allocated, and reserved: the capture peak) and, where bench counts them, operations and syncs
#      per episode
#   3. every CUDA test, without -x: each failure is listed
#   4. if everything passed: the first chunk of the Fig. 1f sweep (tools/fig1f_chunk.sh) in the time left
# Results under $OUT, at most 8 files (each under 16 MB): gpu_check.log, bench_1.json, bench_30.json and the
# chunk's fig1f_chunk.log and 4 archives of checkpoints. The last lines say what to commit.
set -u
OUT=${OUT:-gpu_check_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-540}
SECONDS=0
failed=0
step() { echo; echo "== $1 (at ${SECONDS} s)"; }
bench() {  # K, timed episodes, time limit
  timeout "$3" $PY - "$1" "$2" <<'EOF'
import json, sys, torch
from transitive.scale.benchmark import population_speed
members, episodes = int(sys.argv[1]), int(sys.argv[2])
result = population_speed(members, episodes, 32, "cuda")
result["peak_gpu_memory_reserved_gb"] = torch.cuda.max_memory_reserved() / 1e9
print(json.dumps(result))
EOF
}
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
  nproc; git log --oneline -1 2>/dev/null | cut -c1-100
  cap=$($PY -c "import torch; a, b = torch.cuda.get_device_capability(); print(10 * a + b)")

  step "1. the GPU kernels' test run on this GPU, and their compile report for sm_$cap"
  timeout 120 $PY -c "
from transitive.engine import gpu_probe
problem = gpu_probe.kernel_failure('cuda', 200)
print(problem or 'test run passed: the GPU kernels compile, run and give finite results at n = 200')
raise SystemExit(1 if problem else 0)" || failed=1
  timeout 60 $PY tools/compile_gpu_kernels.py --arch "$cap" | grep -v "^Triton"

  step "2. bench: one network, batch 32 (30 timed episodes after 5)"
  bench 1 30 120 | tail -1 | tee "$OUT/bench_1.json"
  step "   bench: 30 networks, batch 32 (20 timed episodes after 5)"
  bench 30 20 150 | tail -1 | tee "$OUT/bench_30.json"

  step "3. every CUDA test (no -x: all failures listed)"
  timeout 200 $PY -m pytest -q -p no:cacheprovider -rfE tests/test_gpu_kernel.py tests/test_gpu_probe.py \
    tests/test_cuda.py tests/test_item_draws.py 2>&1 | tail -25
  [ "${PIPESTATUS[0]}" = 0 ] || failed=1
  timeout 80 $PY -m pytest -q -p no:cacheprovider -rfE tests/test_population.py -k cuda 2>&1 | tail -8
  [ "${PIPESTATUS[0]}" = 0 ] || failed=1

  left=$(( BUDGET - SECONDS - 75 ))  # the chunk's start-up, capture and packing take about a minute
  if [ "$failed" != 0 ]; then
    step "4. no Fig. 1f chunk: a step above failed"
  elif [ "${CHUNK:-1}" = 0 ] || [ "$left" -lt 60 ]; then
    step "4. no Fig. 1f chunk (CHUNK=0, or $left s left)"
  else
    step "4. the first chunk of the Fig. 1f sweep: 30 seeds for $left s"
    MINUTES=$($PY -c "print(round($left / 60, 2))") OUT="$OUT" timeout $(( left + 120 )) bash tools/fig1f_chunk.sh \
      | tail -12
  fi
  echo
  echo "== done in ${SECONDS} s; $([ "$failed" = 0 ] && echo 'every check passed' || echo 'SOME CHECKS FAILED (above)')"
  echo "To commit (here, after the device tool has copied $OUT):"
  echo "  $OUT/gpu_check.log -> docs/measurements/gpu_check_<gpu>_<date>.log; bench_1.json and bench_30.json beside it"
  echo "  the chunk, if it ran: bash tools/fig1f_chunk.sh unpack <copied folder>, then"
  echo "  git add runs/fig1f/seed_*/net.ckpt (and its fig1f_chunk.log in docs/measurements/)"
} 2>&1 | tee "$OUT/gpu_check.log"
