#!/usr/bin/env bash
# Issue 18's leave-one-source-out table with the best thesis CNN (Emosepar, recipe `thesis`, the thesis's
# augmentation): trained on two of OASIS, Emotion6 and BASS, tested on the third, each in turn. A compute
# run (hours on 2 cores), started as
#
#   ../shared/tools/compute-run runs/loso-thesis.log -- scripts/loso_thesis.sh
#
# It resumes: `picaffect experiment cross-dataset` skips finished runs and continues an interrupted one from
# its last.pt. A sitting's run folders do not always survive to the next sitting's machine, so the runs as they
# stood when a sitting ended are committed in results/cross-dataset/emosepar-thesis/resume/ (checkpoints,
# config, history) and copied back here first when the run folder is missing. When all three runs have
# finished, the experiment writes report.md and results.json, which are copied next to the resume folder.
set -euo pipefail
cd "$(dirname "$0")/.."
SETS=${SETS:-../shared/data}
PICAFFECT=${PICAFFECT:-.venv/bin/picaffect}
DATA=runs/data/jn150t
OUT=runs/cross-emosepar-thesis
KEEP=results/cross-dataset/emosepar-thesis

[ -f "$DATA/report.json" ] || $PICAFFECT build "$DATA" --split thesis --size 150 \
    --source oasis="$SETS/oasis" --source emotion6="$SETS/emotion6" --source bass="$SETS/bass"
if [ ! -d "$OUT/runs" ] && [ -d "$KEEP/resume/runs" ]; then
    mkdir -p "$OUT" && cp -r "$KEEP/resume/runs" "$OUT/"
    echo "restored the runs of an earlier sitting from $KEEP/resume/"
fi
$PICAFFECT experiment cross-dataset --data "$DATA" --out "$OUT" --models emosepar --recipe thesis \
    --augment thesis --epochs 200 --patience 20 --precision bf16 --budget-minutes 240
cp "$OUT/report.md" "$OUT/results.json" "$KEEP/"
