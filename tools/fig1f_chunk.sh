#!/usr/bin/env bash
# The Fig. 1f sweep (30 seeds x 30,000 episodes, the paper's settings) in chunks, on GPU machines lent a few
# minutes at a time. Run in the repository root; nothing is installed (the package runs through PYTHONPATH).
#
#   MINUTES=7 SEEDS=0-29 OUT=... bash tools/fig1f_chunk.sh   # on the GPU machine: one chunk
#   bash tools/fig1f_chunk.sh unpack FOLDER                  # here: the chunk's archives into runs/fig1f
#   bash tools/fig1f_chunk.sh finish                         # here, after the last chunk: net.dat, net.csv
#
# A chunk resumes every seed of runs/fig1f from its checkpoint (or starts it), trains all seeds at once for
# about MINUTES minutes, stops where the carried state resets (so a checkpoint is parameters, Adam state,
# random generator and training log only, about 1.5 MB a seed) and packs the checkpoints, 8 seeds to an
# archive, under $OUT (each well under 16 MB). Only the checkpoints are kept between chunks (committed as
# runs/fig1f/seed_<k>/net.ckpt; 30 seeds stay under the 64 MB that travel to the GPU machine): nothing
# depends on a machine staying up, and a chunk that dies leaves the last committed checkpoints. `finish`
# writes each seed's net.dat and net.csv from its checkpoint.
set -euo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
case "${1:-}" in
  unpack)
    mkdir -p runs
    for archive in "${2:?the folder holding fig1f_seeds_*.tar.gz}"/fig1f_seeds_*.tar.gz; do
      tar -xzf "$archive" -C runs
    done
    python3 -c "
import glob, torch
for path in sorted(glob.glob('runs/fig1f/seed_*/net.ckpt')):
    saved = torch.load(path, map_location='cpu', weights_only=True)
    print(path, 'episode', saved['episode'])"
    exit 0 ;;
  finish)
    python3 - <<'EOF'
import glob
from pathlib import Path
import torch
from transitive.training.seed_run import SeedRun
from transitive.training.config import TrainConfig
for path in sorted(glob.glob("runs/fig1f/seed_*/net.ckpt")):
    saved = torch.load(path, map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict({**saved["config"], "device": "cpu"})
    SeedRun(config, Path(path).with_suffix(".dat"), resume=True).save()  # net.dat and net.csv from the checkpoint
    print(path, "episode", saved["episode"])
EOF
    exit 0 ;;
esac
OUT=${OUT:-fig1f_out}; mkdir -p "$OUT"
SEEDS=${SEEDS:-0-29}
{
  date -u; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
  resume=""; ls runs/fig1f/seed_*/net.ckpt >/dev/null 2>&1 && resume=--resume  # the first chunk starts
  # shellcheck disable=SC2086  (EXTRA: more options, word-split on purpose; for tests of this script only)
  # stopped by a signal (exit 130 / 143), train has saved every seed: pack the checkpoints all the same
  python3 -m transitive train --seeds "$SEEDS" --out runs/fig1f $resume --device "${DEVICE:-cuda}" --quiet \
    --stop-after-minutes "${MINUTES:-7}" ${EXTRA:-} || { code=$?; [ "$code" = 130 ] || [ "$code" = 143 ] || exit "$code"; }
  cd runs
  seeds=$(ls -d fig1f/seed_* | sed 's/.*seed_//' | sort -n)
  set -- $seeds
  while [ $# -gt 0 ]; do
    group=(); for _ in 1 2 3 4 5 6 7 8; do [ $# -gt 0 ] && { group+=("fig1f/seed_$1/net.ckpt"); shift; }; done
    first=${group[0]#fig1f/seed_}; first=${first%/net.ckpt}
    last=${group[${#group[@]}-1]#fig1f/seed_}; last=${last%/net.ckpt}
    tar -czf "$OUT/fig1f_seeds_$first-$last.tar.gz" "${group[@]}"
  done
  ls -la "$OUT"
} 2>&1 | tee "$OUT/fig1f_chunk.log"
