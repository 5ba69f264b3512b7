#!/usr/bin/env bash
# Issue 18's first leave-one-source-out table (results/cross-dataset/emosepar-thesis/): Emosepar with the thesis's
# recipe and augmentation, trained on two of OASIS, Emotion6 and BASS, tested on the third, each in turn. A
# compute run (hours on 2 cores), resumable across sittings (see scripts/loso.sh), started as
#
#   ../shared/tools/compute-run runs/loso-thesis.log -- scripts/loso_thesis.sh
exec "$(dirname "$0")/loso.sh" results/cross-dataset/emosepar-thesis 150 runs/cross-emosepar-thesis -- \
    --models emosepar --recipe thesis --augment thesis --epochs 200 --patience 20 --precision bf16 --budget-minutes 240
