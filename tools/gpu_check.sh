#!/usr/bin/env bash
# Checks of the CUDA path and speed figures on a GPU machine (the device tool runs it in the repository root).
# Writes its log and JSON results under $OUT (default: ./gpu_check_out); copy them to docs/measurements/.
# About 6 minutes: CUDA tests, the runner against the plain loop, single-run and population training speed.
set -u
OUT=${OUT:-gpu_check_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
  nproc
  $PY -m pip install -q --no-deps -e . 2>&1 | tail -1
  echo "== tests on CUDA (episode runners, training, population: captured vs uncaptured, population vs separate)"
  timeout 300 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_episode.py tests/test_population.py 2>&1 | tail -5
  echo "== bench (package vs plain), cuda, batch 32"
  timeout 120 $PY -m transitive bench --device cuda --episodes 20 --json | tail -1 | tee "$OUT/bench_cuda.json"
  echo "== population of 1 (the single-run target: >= 50 episodes/s)"
  timeout 120 $PY -m transitive bench --device cuda --population 1 --episodes 30 --json | tail -1 | tee "$OUT/population_1.json"
  echo "== population of 30 (the Fig. 1f target: >= 250 episodes/s in aggregate)"
  timeout 240 $PY -m transitive bench --device cuda --population 30 --episodes 20 --json | tail -1 | tee "$OUT/population_30.json"
  echo "== evaluation on cuda, batch 2000"
  start=$(date +%s%N)
  timeout 60 $PY -m transitive eval net_active.dat --batch 2000 --device cuda --json --quiet | tail -1 | tee "$OUT/eval_cuda.json"
  end=$(date +%s%N)
  echo "eval batch 2000: $(( (end - start) / 1000000 )) ms"
} 2>&1 | tee "$OUT/gpu_check.log"
