#!/usr/bin/env bash
# Issue 36: table 8.1 under the thesis's own recipe (section 7.2: MSE, SGD lr 1e-5, momentum 0.9, Nesterov, time
# decay, batch 64) for Inception v3, Xception and VGG16, cheapest first, each to a stop on patience (20 epochs
# without a better test loss) or the 200-epoch limit, with no wall-clock budget. Same data, split, seed and
# augmentation (none) as the recipe's earlier rows; bf16 autocast and channels-last as every CPU run.
#
#   ../shared/tools/compute-run runs/thesis-recipe.log -- scripts/thesis_recipe.sh [MODEL...]
#
# A compute run of many hours on 2 cores, resumable across sittings: run the same command again and finished runs
# are skipped, an interrupted one continues from its last.pt. The first sitting on a machine seeds runs/thesis/
# with the committed results/thesis/results.json, so the report keeps every earlier row (carried, see
# workflows/experiments.py) until a run here replaces it. After each model the report, results.json, curves and
# that model's log are copied into results/thesis/ and the generated blocks rewritten: commit them then.
set -euo pipefail
cd "$(dirname "$0")/.."
SETS=${SETS:-../shared/data}
OUT=${OUT:-runs/thesis}
KEEP=${KEEP:-results/thesis}
PICAFFECT=${PICAFFECT:-.venv/bin/picaffect}
PY=${PY:-.venv/bin/python}
DATA=$($PY -m picaffect.data.rated_sets folder 150 thesis)
mapfile -t SOURCES < <($PY -m picaffect.data.rated_sets sources "$SETS")
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(inception_v3 xception vgg16)

[ -f "$DATA/report.json" ] || $PICAFFECT build "$DATA" --split thesis --size 150 "${SOURCES[@]}"
mkdir -p "$OUT/logs"
if [ ! -f "$OUT/results.json" ]; then  # carry the committed rows: a report of this folder must not lose them
    cp "$KEEP/results.json" "$OUT/results.json"
    mkdir -p "$OUT/curves" && cp "$KEEP"/curves/*.png "$OUT/curves/"
fi
for model in "${MODELS[@]}"; do
    # A finished run is not evaluated and copied again: a copy now would carry the unfinished run of the next
    # model (its folder is here) into results/thesis in place of its committed row.
    if [ -f "$OUT/runs/$model-thesis-bf16/summary.json" ]; then echo "== $model: finished earlier"; continue; fi
    echo "== $model, thesis recipe, from $(date -u +%FT%TZ)"
    $PICAFFECT experiment thesis --data "$DATA" --out "$OUT" --models "$model" --recipe thesis --augment none \
        --epochs 200 --patience 20 --precision bf16 2>&1 | tee -a "$OUT/logs/$model-thesis.txt"
    cp "$OUT/report.md" "$OUT/results.json" "$KEEP/"
    cp "$OUT"/curves/*.png "$KEEP/curves/"
    cp "$OUT/logs/$model-thesis.txt" "$KEEP/log-$model-thesis.txt"
    $PY scripts/figures.py  # the READMEs' generated blocks follow the new record (tests/test_figures.py checks)
    echo "== $model done at $(date -u +%FT%TZ); commit $KEEP"
done
