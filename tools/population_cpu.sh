#!/usr/bin/env bash
# The CPU population of Fig. 1f (seeds 1-7 of runs/fig1f, one process, all seeds at once) and the frozen-input
# run (runs/frozen_input), meta-trained in the background with one thread each, over several working sessions.
#
#   bash tools/population_cpu.sh [MINUTES]   # first thing in a session: resume both (start them the first time)
#   bash tools/population_cpu.sh status      # the episode each run's checkpoint has reached
#
# Each run stops by itself after about MINUTES minutes (default 140), where the carried state resets, and saves
# a small checkpoint; commit runs/fig1f and runs/frozen_input after that (what is not committed is lost). A run
# is never restarted from scratch: with a checkpoint present it always resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
case "${1:-}" in
  status)
    "$PYTHON" - <<'PY'
import glob, torch
for path in sorted(glob.glob("runs/fig1f/seed_*/net.ckpt") + glob.glob("runs/frozen_input/net.ckpt")):
    print(path, "episode", torch.load(path, map_location="cpu", weights_only=True)["episode"])
PY
    exit 0 ;;
esac
MINUTES=${1:-140}
resume_if() { if compgen -G "$1" >/dev/null; then echo --resume; fi; }  # $1: a glob
mkdir -p runs/fig1f runs/frozen_input
nohup "$PYTHON" -m transitive train --seeds 1-7 --out runs/fig1f --threads 1 --quiet \
  $(resume_if 'runs/fig1f/seed_*/net.ckpt') --stop-after-minutes "$MINUTES" >> runs/fig1f/train.log 2>&1 &
echo "population (seeds 1-7): pid $!"
nohup nice -n 10 "$PYTHON" -m transitive train --out runs/frozen_input/net.dat --seed 0 --frozen-input --threads 1 \
  --quiet $(resume_if runs/frozen_input/net.ckpt) --stop-after-minutes "$MINUTES" >> runs/frozen_input/train.log 2>&1 &
echo "frozen input (seed 0): pid $!"
