"""The top layer: what a person runs, built on the API below it and imported by none of it.

``commands`` (the ``picaffect`` sub-commands, their options and help), ``cli`` (running
a parsed command and printing what it did), ``arguments`` (command-line options made
from ``TrainConfig``'s fields), ``launcher`` (the start-up re-exec with the allocator
setting), ``predict`` (``picaffect predict`` as one call: its checks, the scoring, the
file), ``outputs`` (prediction files in CSV, JSON, JSONL, Parquet) and ``demo``. This
file imports nothing, so ``python -m picaffect`` pays only for what a command uses.
"""
