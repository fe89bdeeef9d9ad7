#!/usr/bin/env bash
# Checks of the CUDA path and speed figures on a GPU machine (the device tool runs it in the repository root).
# Writes its log and JSON results under $OUT (default: ./gpu_check_out).
set -u
OUT=${OUT:-gpu_check_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
  nproc
  echo "== tests on CUDA"
  timeout 240 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_episode.py 2>&1 | tail -5
  echo "== bench (package vs plain), cuda, batch 32"
  timeout 120 $PY -m transitive bench --device cuda --episodes 20 --json | tail -1 | tee "$OUT/bench_cuda.json"
  echo "== training speed on cuda: 400 episodes, batch 32, paper protocol"
  rm -rf /tmp/gpu_run; mkdir -p /tmp/gpu_run
  start=$(date +%s%N)
  timeout 240 $PY -m transitive train --out /tmp/gpu_run/net.dat --episodes 400 --seed 0 --regime continual \
      --save-every 200 --device cuda --quiet
  end=$(date +%s%N)
  echo "train 400 episodes: $(( (end - start) / 1000000 )) ms (incl. start-up)"
  tail -2 /tmp/gpu_run/net.csv
  echo "== evaluation on cuda, batch 2000"
  start=$(date +%s%N)
  timeout 60 $PY -m transitive eval runs/active/net_active.dat --batch 2000 --device cuda --json | tail -1 | tee "$OUT/eval_cuda.json"
  end=$(date +%s%N)
  echo "eval batch 2000: $(( (end - start) / 1000000 )) ms"
} 2>&1 | tee "$OUT/gpu_check.log"
