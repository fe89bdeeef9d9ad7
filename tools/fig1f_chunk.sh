#!/usr/bin/env bash
# One chunk of the Fig. 1f sweep (30 seeds x 30,000 episodes, the paper's settings) on a machine with a GPU,
# for machines lent a few minutes at a time. Run in the repository root; nothing is installed (PYTHONPATH).
#
#   MINUTES=7 SEEDS=0-29 OUT=... bash tools/fig1f_chunk.sh        # on the GPU machine
#   bash tools/fig1f_chunk.sh unpack FOLDER                       # here: the archives it wrote, into runs/
#
# The chunk resumes every seed of runs/fig1f from its checkpoint (or starts it), trains all seeds at once for
# about MINUTES minutes, stops where the carried state resets (small checkpoints: parameters, Adam state,
# random generator and training log, about 1.5 MB a seed) and packs runs/fig1f into archives of at most
# 8 seeds under $OUT (each well under 16 MB). Unpacked here and committed, they are where the next chunk
# starts. Nothing depends on a machine staying up: a chunk that dies leaves the last committed checkpoints.
set -euo pipefail
if [ "${1:-}" = "unpack" ]; then
  for archive in "${2:?the folder holding fig1f_seeds_*.tar.gz}"/fig1f_seeds_*.tar.gz; do
    tar -xzf "$archive" -C runs
  done
  python3 -m transitive curves runs/fig1f --out runs/fig1f/fig1f.png >/dev/null 2>&1 || true
  ls runs/fig1f
  exit 0
fi
OUT=${OUT:-fig1f_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SEEDS=${SEEDS:-0-29}
{
  date -u; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
  resume=""; ls runs/fig1f/seed_*/net.ckpt >/dev/null 2>&1 && resume=--resume  # the first chunk starts
  # shellcheck disable=SC2086  (EXTRA: more options, word-split on purpose; for tests of this script only)
  python3 -m transitive train --seeds "$SEEDS" --out runs/fig1f $resume --device "${DEVICE:-cuda}" --quiet \
    --stop-after-minutes "${MINUTES:-7}" ${EXTRA:-}
  cd runs
  seeds=$(ls -d fig1f/seed_* | sed 's/.*seed_//' | sort -n)
  set -- $seeds
  while [ $# -gt 0 ]; do
    group=(); for _ in 1 2 3 4 5 6 7 8; do [ $# -gt 0 ] && { group+=("fig1f/seed_$1"); shift; }; done
    first=${group[0]#fig1f/seed_}; last=${group[${#group[@]}-1]#fig1f/seed_}
    tar -czf "$OUT/fig1f_seeds_$first-$last.tar.gz" "${group[@]}"
  done
  ls -la "$OUT"
} 2>&1 | tee "$OUT/fig1f_chunk.log"
