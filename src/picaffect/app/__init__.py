"""The top layer: what a person runs, built on the API below it and imported by none of it.

``cli`` (the ``picaffect`` command: parsing and printing), ``arguments`` (command-line
options made from ``TrainConfig``'s fields), ``launcher`` (the start-up re-exec with the
allocator setting), ``outputs`` (prediction files in CSV, JSON, JSONL, Parquet) and
``demo``. This file imports nothing, so ``python -m picaffect`` pays only for what a
command uses.
"""
