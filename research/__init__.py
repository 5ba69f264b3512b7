"""Accuracy research: the studies behind the shipped models' choices, each one resumable script.

Beside ``benchmarks/`` (speed and memory only), built on the library's own parts: datasets
by ``picaffect.data.build`` in the one folder scheme (``data/rated_sets.py``), features by
``workflows/features.py``, training by ``workflows/stages.run_stages``, ridge readouts by
``training/probe.py``. Run from the repository root as modules:

    .venv/bin/python -m research.accuracy_search --help    # issue 17's search (probes, readouts, fine-tuning)
    .venv/bin/python -m research.accuracy_probes --help    # ridge probes on `picaffect features` files
    .venv/bin/python -m research.interval_search --help    # interval schemes, leaving one source out
    .venv/bin/python -m research.int8_onnx --help          # an int8 ONNX variant's speed and drift
    .venv/bin/python -m research.bn_diagnostic --help      # issue 10's BatchNorm fault, step by step

Their records and reports live under ``results/`` (accuracy/, intervals/, bench/, thesis/).
"""
