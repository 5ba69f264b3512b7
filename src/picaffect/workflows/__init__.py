"""Multi-stage jobs: the only place that joins training and evaluation (the thesis experiment, leave one source out)."""
