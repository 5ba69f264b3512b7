#!/usr/bin/env bash
# A leave-one-source-out compute run, resumable across sittings, and its committed record:
#
#   scripts/loso.sh KEEP SIZE OUT -- EXPERIMENT-ARGS...
#
# builds the rated sets (src/picaffect/data/rated_sets.py) with the thesis split at SIZE px if that dataset is
# missing (runs/data/oasis+emotion6+bass-SIZEpx-thesis, the one folder scheme), runs `picaffect experiment
# cross-dataset --data DATASET --out OUT EXPERIMENT-ARGS...` (it skips finished runs, continues an interrupted
# one from its last.pt, and scores every run on all the pictures of the set it never saw, with bootstrap
# intervals, in the run's evaluation/), then copies into KEEP: the experiment's report.md and results.json,
# and per held-out set the run's history, summary and that evaluation (SOURCE-held-out/).
#
# Checkpoints are never committed: on a machine without OUT/runs, the runs train from the start.
# Start it as a compute run: ../shared/tools/compute-run LOG -- scripts/loso.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] && [ "$4" = "--" ] || { echo "usage: $0 KEEP SIZE OUT -- EXPERIMENT-ARGS..." >&2; exit 2; }
KEEP=$1 SIZE=$2 OUT=$3
shift 4
SETS=${SETS:-../shared/data}
PICAFFECT=${PICAFFECT:-.venv/bin/picaffect}
PY=${PY:-.venv/bin/python}
DATA=$($PY -m picaffect.data.rated_sets folder "$SIZE" thesis)
mapfile -t SOURCES < <($PY -m picaffect.data.rated_sets sources "$SETS")

[ -f "$DATA/report.json" ] || $PICAFFECT build "$DATA" --split thesis --size "$SIZE" "${SOURCES[@]}"
$PICAFFECT experiment cross-dataset --data "$DATA" --out "$OUT" "$@"

mkdir -p "$KEEP"
cp "$OUT/report.md" "$OUT/results.json" "$KEEP/"
for run in "$OUT"/runs/*/*/; do
    run=${run%/}
    source=$(basename "$(dirname "$run")")
    [ -f "$run/summary.json" ] || { echo "skipped $run: never stopped (no summary.json)"; continue; }
    held="$KEEP/$source-held-out"
    mkdir -p "$held"
    # the experiment's report scored the run on its held-out source already: its evaluation is copied, not redone
    cp "$run/evaluation/metrics.json" "$run/evaluation/report.md" "$run/history.csv" "$run/summary.json" "$held/"
    echo "$held: $(grep -m1 '^| validation' "$held/report.md")"
done
