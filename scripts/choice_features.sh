#!/usr/bin/env bash
# Step 1 of the shipped models' choice (docs/protocol.md): build the three rated sets at 224 and 300 px
# (group split, seed 0) and write the frozen, mirror-averaged stage features of every candidate backbone
# for every picture. Resumable: a built dataset or a written feature file is kept.
#   scripts/choice_features.sh [DATA] [WORK]     (defaults ../shared/data runs/choice)
set -euo pipefail
DATA=${1:-../shared/data}
WORK=${2:-runs/choice}
PICAFFECT=${PICAFFECT:-.venv/bin/picaffect}
SETS=(--source "oasis=$DATA/oasis" --source "emotion6=$DATA/emotion6" --source "bass=$DATA/bass")
mkdir -p "$WORK/features"
for size in 224 300; do
  ds=runs/data/oasis+emotion6+bass-${size}px-group
  [ -f "$ds/report.json" ] || "$PICAFFECT" build "$ds" "${SETS[@]}" --size "$size" --split group --seed 0 --no-plots
done
# The default's candidates: Lite0 on pictures built at its own side, as `make default-model` builds them.
out="$WORK/features/default-lite0@224.npz"
[ -f "$out" ] || "$PICAFFECT" features efficientnet_lite0 --data runs/data/oasis+emotion6+bass-224px-group \
  --model-option features=stages --out "$out"
# The accurate model's candidate members: each read from the 300 px pictures, resized as lite_ensemble resizes them.
for member in lite0@224 lite1@240 lite1@280 lite2@260 lite2@300; do
  out="$WORK/features/$member.npz"
  [ -f "$out" ] || "$PICAFFECT" features lite_ensemble --data runs/data/oasis+emotion6+bass-300px-group \
    --model-option "members=$member" --out "$out"
done
echo "features written under $WORK/features"
