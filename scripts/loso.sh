#!/usr/bin/env bash
# A leave-one-source-out compute run, resumable across sittings, and its committed record:
#
#   scripts/loso.sh KEEP SIZE OUT -- EXPERIMENT-ARGS...
#
# builds the thesis-split dataset at SIZE px if it is missing, runs `picaffect experiment cross-dataset
# --data runs/data/jn{SIZE}t --out OUT EXPERIMENT-ARGS...` (it skips finished runs and continues an
# interrupted one from its last.pt), then scores every finished run on all the pictures of the set it never
# saw, with bootstrap intervals (`picaffect evaluate`), and copies into KEEP: the experiment's report.md and
# results.json, and per held-out set its history, summary and evaluation (SOURCE-held-out/).
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
DATA=runs/data/jn${SIZE}t

[ -f "$DATA/report.json" ] || $PICAFFECT build "$DATA" --split thesis --size "$SIZE" \
    --source oasis="$SETS/oasis" --source emotion6="$SETS/emotion6" --source bass="$SETS/bass"
$PICAFFECT experiment cross-dataset --data "$DATA" --out "$OUT" "$@"

mkdir -p "$KEEP"
cp "$OUT/report.md" "$OUT/results.json" "$KEEP/"
for run in "$OUT"/runs/*/*/; do
    source=$(basename "$(dirname "$run")")
    [ -f "$run/summary.json" ] || { echo "skipped $run: never stopped (no summary.json)"; continue; }
    held="$KEEP/$source-held-out"
    if [ ! "$held/metrics.json" -nt "$run/summary.json" ]; then  # evaluated before this run last stopped
        $PICAFFECT evaluate "$run" --data "$OUT/views/$source" --split validation --out "$OUT/eval/$source" \
            --device cpu >/dev/null
        mkdir -p "$held"
        cp "$OUT/eval/$source/metrics.json" "$OUT/eval/$source/report.md" "$run/history.csv" \
            "$run/summary.json" "$held/"
    fi
    echo "$held: $(grep -m1 '^| validation' "$held/report.md")"
done
