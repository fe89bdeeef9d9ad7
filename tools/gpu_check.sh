#!/usr/bin/env bash
# Checks of the GPU path and the speed figures, on a machine with an NVIDIA GPU (the device tool runs it in the
# repository root; nothing is installed: the package runs from this checkout through PYTHONPATH).
# Writes its log and JSON results under $OUT (default: ./gpu_check_out); copy them to docs/measurements/.
# At most about 10 minutes (each step has its own time limit; the log under $OUT grows as it goes):
#   1. the GPU kernels compiled for this GPU (registers, spills)
#   2-3. bench in fresh processes, medians after warm-up: one network (the path of `train --seed 0 --device
#      cuda` and of main.ipynb's meta-training) and 30 networks (Fig. 1f), with peak GPU memory
#   4. the CUDA tests: the Triton kernels at full size against the plain definition, training on CUDA
#      (captured vs uncaptured, population vs separate runs, resume)
#   5. the real `train --seeds 0-29` with logging and saving, 300 episodes, against its bench figure
#   6. the CPU: seconds per episode of the compiled CPU kernel (regression check) on this machine's cores
set -u
OUT=${OUT:-gpu_check_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
  nproc; git log --oneline -1 2>/dev/null
  cap=$($PY -c "import torch; a, b = torch.cuda.get_device_capability(); print(10 * a + b)")
  echo "== 1. the kernels compiled for sm_$cap"
  timeout 60 $PY tools/compile_gpu_kernels.py --arch "$cap"
  echo "== 2. bench: one network, batch 32 (30 timed episodes after 5)"
  timeout 90 $PY -m transitive bench --device cuda --population 1 --episodes 30 --json | tail -1 \
    | tee "$OUT/bench_1.json"
  echo "== 3. bench: 30 networks, batch 32 (20 timed episodes after 5)"
  timeout 120 $PY -m transitive bench --device cuda --population 30 --episodes 20 --json | tail -1 \
    | tee "$OUT/bench_30.json"
  echo "== 4. tests on CUDA"
  timeout 200 $PY -m pytest -q -p no:cacheprovider -x tests/test_gpu_kernel.py tests/test_cuda.py \
    tests/test_population.py -k "gpu or fused or cuda or graphs or kernel" 2>&1 | tail -8
  echo "== 5. train --seeds 0-29 --episodes 300, logging every 10 and saving every 200"
  rm -rf /tmp/fig1f_probe; start=$(date +%s%N)
  timeout 100 $PY -m transitive train --seeds 0-29 --episodes 300 --out /tmp/fig1f_probe --device cuda --quiet | tail -2
  end=$(date +%s%N)
  echo "train --seeds 0-29: 9000 member-episodes in $(( (end - start) / 1000000 )) ms (capture and start-up included)"
  tail -3 /tmp/fig1f_probe/seed_0/net.csv | cut -d, -f1-4,16
  echo "== 6. CPU kernel, batch 32, $(nproc) threads"
  timeout 40 $PY -m transitive bench --device cpu --episodes 3 --json | tail -1 | tee "$OUT/bench_cpu.json"
} 2>&1 | tee "$OUT/gpu_check.log"
