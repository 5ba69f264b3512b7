#!/usr/bin/env bash
# Step 1 of the shipped models' choice (docs/protocol.md): build the three rated sets at 224 and 300 px
# (group split, seed 0) and write the frozen, mirror-averaged stage features of every candidate backbone
# for every picture. Resumable: a built dataset or a written feature file is kept.
#   scripts/choice_features.sh [DATA] [WORK]     (defaults ../shared/data runs/choice)
set -euo pipefail
DATA=${1:-../shared/data}
WORK=${2:-runs/choice}
PICAFFECT=${PICAFFECT:-.venv/bin/picaffect}
PYTHON=${PYTHON:-.venv/bin/python}
mapfile -t SETS < <("$PYTHON" -m picaffect.data.rated_sets sources "$DATA")
DS224=$("$PYTHON" -m picaffect.data.rated_sets folder 224 group)
DS300=$("$PYTHON" -m picaffect.data.rated_sets folder 300 group)
mkdir -p "$WORK/features"
for size in 224 300; do
  ds=$("$PYTHON" -m picaffect.data.rated_sets folder "$size" group)
  [ -f "$ds/report.json" ] || "$PICAFFECT" build "$ds" "${SETS[@]}" --size "$size" --split group --seed 0 --no-plots
done
# The default's candidates: Lite0 on pictures built at its own side, as `make default-model` builds them.
out="$WORK/features/default-lite0@224.npz"
[ -f "$out" ] || "$PICAFFECT" features efficientnet_lite0 --data "$DS224" \
  --model-option features=stages --out "$out"
# The accurate model's candidate members: each read from the 300 px pictures, resized as lite_ensemble resizes them.
for member in lite0@224 lite1@240 lite1@280 lite2@260 lite2@300; do
  out="$WORK/features/$member.npz"
  [ -f "$out" ] || "$PICAFFECT" features lite_ensemble --data "$DS300" \
    --model-option "members=$member" --out "$out"
done
echo "features written under $WORK/features"
