"""Evaluation: the metrics SPEC.md fixes (RMSE, MAE, PCC, CCC, SAGR and the baselines beside them)."""
