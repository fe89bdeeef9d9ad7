#!/usr/bin/env bash
# Ship a finished training run of runs/: copy its parameter file to the repository root, move its training
# log (net_NAME.csv) there too, and evaluate it.
#
#   tools/finish_run.sh active|passive [BATCH]     (BATCH: standard-evaluation episodes, default 2000)
#
# Writes runs/NAME/evaluation/: the figures of the standard evaluation, list linking, sham, m(t) and the
# learning curve (PNG), key_numbers.json/.md, and classify.txt / classify.json (the verdict with its numbers),
# all from one set of runs (each experiment is run once).
# Refuses a run that has not reached its last episode unless UNFINISHED=1 (to try the script on a
# run in progress; nothing is copied to the root then). A run already shipped (its checkpoint removed,
# the root file equal to runs/NAME/net_NAME.dat) is evaluated again.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: tools/finish_run.sh active|passive [BATCH]}
batch=${2:-2000}
run=runs/$name
params=$run/net_$name.dat
threads=${THREADS:-2}
checkpoint=$run/net_$name.ckpt
if [[ -f $checkpoint ]]; then
    done=$(python - "$checkpoint" <<'PY'
import sys, torch
saved = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
print(int(saved["episode"] >= saved["config"]["episodes"]))
PY
)
elif [[ -f $params && -f net_$name.dat ]] && cmp -s "$params" "net_$name.dat"; then
    done=1  # shipped already and its checkpoint removed from the tree: evaluate it again
else
    echo "error: no checkpoint $checkpoint and no shipped net_$name.dat equal to $params" >&2
    exit 2
fi
if [[ $done != 1 && ${UNFINISHED:-0} != 1 ]]; then
    echo "error: $run has not finished (resume it, or set UNFINISHED=1 to evaluate it anyway)" >&2
    exit 2
fi
target=net_$name.dat
[[ $done == 1 ]] && cp "$params" "$target" || target=$params
# The training log goes beside the shipped file (one copy, at the root), where `figures` finds it.
curve=$run/net_$name.csv
if [[ $done == 1 && -f $curve ]]; then
    mv "$curve" "net_$name.csv"
fi
[[ -f $curve ]] || curve=net_$name.csv
out=$run/evaluation
mkdir -p "$out"
python -m transitive figures "$target" --out "$out" --batch "$batch" --curve "$curve" \
    --only fig2,fig3,fig5,fig6,curve --classify --threads "$threads"
rm -f "$out"/*.pdf
echo "evaluated $target into $out"
