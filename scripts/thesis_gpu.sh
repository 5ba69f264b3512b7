#!/usr/bin/env bash
# The whole thesis experiment (issue 10) on one CUDA GPU, in under 8 minutes of training, writing the same
# reports as the CPU runs, copied to results/gpu/{thesis,cross-dataset,cross-dataset-emosepar}/.
#
#   bash scripts/thesis_gpu.sh [--dry-run] [RATED_SETS_DIR] [WORK_DIR]
#
# RATED_SETS_DIR holds one folder per rated set (src/picaffect/data/rated_sets.py names them; default
# ../shared/data); the datasets are built in runs/data/ (the one folder scheme: reused when there) and WORK_DIR
# receives the run folders (default runs/gpu; never committed). Every step resumes: run it again after an
# interruption and finished runs are skipped. On CUDA the training step runs under bf16 autocast (engine.py).
# --dry-run prints every command instead of running it (tests/test_scripts.py reads it).
#
# Why these numbers: the thesis gives no epoch counts (section 7.2: "varied depending on the learning
# curve"), so every run trains until its test loss has not improved for --patience epochs, with an epoch cap
# and a wall-clock budget per run that together keep the whole script under 8 minutes on one H100/H200
# (Emosepar: ~1 s an epoch of our 2,337 training pictures; VGG16, the slowest: a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
SETS=${1:-../shared/data}
WORK=${2:-runs/gpu}
PICAFFECT=${PICAFFECT:-.venv/bin/picaffect}
PY=${PY:-.venv/bin/python}
DATA=$($PY -m picaffect.data.rated_sets folder 150 thesis)
DATA224=$($PY -m picaffect.data.rated_sets folder 224 group)
mapfile -t SOURCES < <($PY -m picaffect.data.rated_sets sources "$SETS")
start=$(date +%s)

run() {  # a command, or with --dry-run the command as a shell would read it
  if [ -n "$DRY" ]; then printf '%q ' "$@" | sed 's/ $//'; echo; else "$@"; fi
}
build() {  # DATASET SIZE SPLIT: build it unless it is there
  [ -z "$DRY" ] && [ -f "$1/report.json" ] && return 0
  run "$PICAFFECT" build "$1" "${SOURCES[@]}" --size "$2" --split "$3"
}
exp() {
  if [ -n "$DRY" ]; then run "$PICAFFECT" experiment "$@" --device cuda; else "$PICAFFECT" experiment "$@" --device cuda > /dev/null; fi
}

build "$DATA" 150 thesis
build "$DATA224" 224 group
# Thesis recipe (section 7.2, Keras 2 semantics): all four models, then Emosepar with the thesis's augmentation.
exp thesis --data "$DATA" --out "$WORK/thesis" --recipe thesis --augment none --epochs 400 --patience 10 \
    --budget-minutes 1.5 --models emosepar,inception_v3,xception,vgg16
exp thesis --data "$DATA" --out "$WORK/thesis" --recipe thesis --augment thesis --epochs 400 --patience 10 \
    --budget-minutes 1 --models emosepar
# Modern recipe: all four models.
exp thesis --data "$DATA" --out "$WORK/thesis" --recipe modern --augment none --epochs 30 --patience 5 \
    --budget-minutes 0.5 --models emosepar,inception_v3,xception,vgg16
# Leave one source out: the default model's stages, and Emosepar.
exp cross-dataset --data "$DATA224" --out "$WORK/cross-dataset" --stages-from configs/default.yaml \
    --budget-minutes 0.5
exp cross-dataset --data "$DATA" --out "$WORK/cross-dataset-emosepar" --models emosepar --recipe modern \
    --epochs 30 --patience 5 --budget-minutes 0.3

for name in thesis cross-dataset cross-dataset-emosepar; do
  dest=results/gpu/$name
  run mkdir -p "$dest"
  run cp "$WORK/$name/report.md" "$WORK/$name/results.json" "$dest/"
  [ "$name" != thesis ] || run cp -r "$WORK/$name/curves" "$dest/"  # one learning curve per run
done
[ -n "$DRY" ] || echo "thesis_gpu.sh: $(( $(date +%s) - start )) s in all; reports under results/gpu/"
