"""Noise ceilings from published rating SD and N (classical test theory)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from picaffect.evaluation.reliability import ceiling, noise_ceilings, r_with_ceiling, reliability


def test_reliability_formula_by_hand():
    means = np.array([2.0, 4.0, 6.0, 8.0])  # var (ddof 1) = 20/3
    sds = np.array([2.0, 2.0, 2.0, 2.0])
    ns = np.array([4, 4, 4, 4])  # error variance of each mean: 4 / 4 = 1
    assert reliability(means, sds, ns) == pytest.approx(1 - 1 / (20 / 3))
    assert ceiling(reliability(means, sds, ns)) == pytest.approx(math.sqrt(1 - 3 / 20))


def test_reliability_recovers_a_simulated_ceiling():
    """Means = true scores + rater noise of variance SD^2/N: the ceiling matches the r of means with truth."""
    gen = np.random.default_rng(0)
    truth = gen.normal(5, 1, 20_000)
    sd, n = 2.0, 16
    means = truth + gen.normal(0, sd / math.sqrt(n), truth.size)
    rel = reliability(means, np.full(truth.size, sd), np.full(truth.size, n))
    assert rel == pytest.approx(1 / (1 + 0.25), abs=0.01)
    assert ceiling(rel) == pytest.approx(np.corrcoef(means, truth)[0, 1], abs=0.01)


def test_noise_ceilings_need_sd_and_n():
    rows = pd.DataFrame({"valence_raw": [1.0, 3.0, 5.0], "valence_sd": [1.0, 1.0, 1.0], "valence_n": [10, 10, 10],
                         "arousal_raw": [1.0, 2.0, 3.0], "arousal_sd": [None, None, None],
                         "arousal_n": [None, None, None]})
    out = noise_ceilings(rows)
    assert out["valence"]["reliability"] == pytest.approx(1 - 0.1 / 4) and out["valence"]["n"] == 3
    assert math.isnan(out["arousal"]["r_ceiling"]) and out["arousal"]["n"] == 0
    assert r_with_ceiling(0.5, out["valence"]) == f"0.50 (≤ {math.sqrt(1 - 0.025):.3f})"
    assert r_with_ceiling(0.5, out["arousal"]) == "0.50"
