from __future__ import annotations

import json
import math
from functools import partial

import numpy as np
import pytest
from scipy.stats import pearsonr

from picaffect.core.metrics import (
    bootstrap_ci,
    calibration_slope,
    ccc,
    mae,
    majority_sign,
    pcc,
    rmse,
    rmse_mean_baseline,
    sagr,
    sagr_majority,
    summarize,
)
from picaffect.core.jsonsafe import jsonable
from picaffect.core.scale import Scale


# ------------------------------------------------------------------ single metrics

def test_hand_case_rmse_mae_sagr():
    y, yhat = [1, 5, 9], [2, 5, 8]
    assert rmse(y, yhat) == pytest.approx(math.sqrt(2 / 3))
    assert mae(y, yhat) == pytest.approx(2 / 3)
    # 1 and 2 both below 5, 5 and 5 both sign 0, 9 and 8 both above.
    assert sagr(y, yhat) == 1.0


def test_sagr_midpoint_label_disagrees_with_positive_prediction():
    # sign(5 - 5) = 0 is not sign(5.5 - 5) = +1; 6 vs 6 agrees.
    assert sagr([5, 6], [5.5, 6]) == 0.5
    assert sagr([4.9, 5.1], [5.1, 4.9]) == 0.0
    # Another midpoint (1..7 scale).
    assert sagr([3, 5], [3.5, 4.5], midpoint=4) == 1.0
    assert sagr([3, 5], [4.5, 4.5], midpoint=4) == 0.5


def test_pcc_matches_scipy(rng):
    y = rng.uniform(1, 9, 50)
    yhat = 0.5 * y + rng.normal(0, 1, 50)
    assert pcc(y, yhat) == pytest.approx(pearsonr(y, yhat)[0], abs=1e-12)
    assert pcc([1, 2, 3], [3, 1, 2]) == pytest.approx(-0.5)


def test_pcc_nan_when_undefined():
    assert math.isnan(pcc([1, 2, 3], [4, 4, 4]))
    assert math.isnan(pcc([0.1, 0.1, 0.1], [1, 2, 3]))  # constant that rounds unevenly
    assert math.isnan(pcc([3.0], [4.0]))
    assert math.isnan(pcc([], []))


def test_ccc_equals_pcc_when_moments_match_and_drops_when_shifted():
    y = np.array([1.0, 2.0, 3.0])
    # Same mean and variance, different order: cov -1/3, var 2/3 each.
    assert ccc(y, [3, 1, 2]) == pytest.approx(pcc(y, [3, 1, 2])) == pytest.approx(-0.5)
    assert ccc(y, y) == pytest.approx(1.0)
    # Shift by 1: 2 * (2/3) / (2/3 + 2/3 + 1) = 4/7, while Pearson r stays 1.
    assert pcc(y, y + 1) == pytest.approx(1.0)
    assert ccc(y, y + 1) == pytest.approx(4 / 7)
    # Predicting a constant scores 0; two equal constants are undefined.
    assert ccc(y, [2, 2, 2]) == 0.0
    assert math.isnan(ccc([5, 5], [5, 5]))


def test_pooled_metrics_flatten_their_input():
    y = np.array([[1.0, 9.0], [5.0, 3.0]])
    yhat = np.array([[2.0, 8.0], [5.0, 4.0]])
    assert rmse(y, yhat) == pytest.approx(rmse(y.ravel(), yhat.ravel()))
    assert pcc(y, yhat) == pytest.approx(pearsonr(y.ravel(), yhat.ravel())[0])


def test_majority_sign_and_its_sagr():
    # Training signs +, +, -, 0 -> +1; y 8 (+) agrees, 2 (-) and 5 (0) do not, 6 (+) does.
    assert majority_sign([6, 7, 3, 5]) == 1
    assert sagr_majority([8, 2, 5, 6], [6, 7, 3, 5]) == 0.5
    # A tie between + and - goes to +1.
    assert majority_sign([6, 3]) == 1
    assert sagr_majority([2, 7, 7], [6, 3]) == pytest.approx(2 / 3)
    # Mostly negative training labels.
    assert sagr_majority([2, 7, 7], [2, 3, 6]) == pytest.approx(1 / 3)
    # Mostly at the midpoint: predicting the midpoint.
    assert majority_sign([5, 5, 6]) == 0
    assert sagr_majority([5, 6], [5, 5, 6]) == 0.5
    assert math.isnan(sagr_majority([5, 6], []))
    assert math.isnan(sagr_majority([], [6]))


def test_rmse_mean_baseline():
    assert rmse_mean_baseline([1, 3], 2.0) == pytest.approx(1.0)
    assert rmse_mean_baseline([1, 3, 5], 1.0) == pytest.approx(math.sqrt((0 + 4 + 16) / 3))


# ------------------------------------------------------------------------ errors

def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        rmse([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(3, 2\)"):
        summarize(np.ones((2, 2)), np.ones((3, 2)), ci=False)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        summarize(np.ones((2, 3)), np.ones((2, 3)), ci=False)


def test_nan_inputs_are_counted():
    with pytest.raises(ValueError, match=r"yhat contains 2 NaN"):
        pcc([1, 2, 3], [np.nan, 2, np.nan])
    with pytest.raises(ValueError, match=r"y contains 1 NaN"):
        summarize([[np.nan, 5]], [[5, 5]], ci=False)
    with pytest.raises(ValueError, match=r"train_y contains 1 NaN"):
        summarize([[5, 5]], [[5, 5]], train_y=[[5, np.nan]], ci=False)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci(rmse, [1, np.nan], [1, 2])


# --------------------------------------------------------------------- bootstrap

def _noisy(rng, n):
    y = rng.uniform(1, 9, n)
    return y, y + rng.normal(0, 1, n)


def test_bootstrap_is_seeded(rng):
    y, yhat = _noisy(rng, 200)
    a = bootstrap_ci(rmse, y, yhat, n_boot=300, seed=3)
    assert a == bootstrap_ci(rmse, y, yhat, n_boot=300, seed=3)
    assert a != bootstrap_ci(rmse, y, yhat, n_boot=300, seed=4)
    assert all(isinstance(v, float) for v in a)


def test_bootstrap_contains_estimate_and_narrows_with_n(rng):
    y, yhat = _noisy(rng, 100)
    Y, Yhat = _noisy(rng, 2000)
    for fn in (rmse, pcc, ccc, sagr):
        low, high = bootstrap_ci(fn, y, yhat, n_boot=400)
        assert low <= fn(y, yhat) <= high
        big_low, big_high = bootstrap_ci(fn, Y, Yhat, n_boot=400)
        assert big_high - big_low < high - low


def test_bootstrap_generic_fn_uses_same_resamples(rng):
    y, yhat = _noisy(rng, 60)
    batched = bootstrap_ci(rmse, y, yhat, n_boot=200, seed=1)
    looped = bootstrap_ci(lambda a, b: rmse(a, b), y, yhat, n_boot=200, seed=1)
    assert looped == pytest.approx(batched)
    s_batched = bootstrap_ci(partial(sagr, midpoint=4.0), y, yhat, n_boot=200, seed=1)
    s_looped = bootstrap_ci(lambda a, b: sagr(a, b, midpoint=4.0), y, yhat, n_boot=200, seed=1)
    assert s_looped == pytest.approx(s_batched)


def test_bootstrap_resamples_rows_of_pairs(rng):
    y = rng.uniform(1, 9, (80, 2))
    yhat = y + rng.normal(0, 1, (80, 2))
    low, high = bootstrap_ci(rmse, y, yhat, n_boot=200)
    assert low <= rmse(y, yhat) <= high


def test_bootstrap_edge_cases():
    assert all(math.isnan(v) for v in bootstrap_ci(rmse, [], []))
    assert bootstrap_ci(rmse, [3.0], [4.0], n_boot=50) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci(pcc, [3.0], [4.0], n_boot=50))
    with pytest.raises(ValueError):
        bootstrap_ci(rmse, [1, 2], [1, 2], level=1.5)


def test_batched_bootstrap_equals_the_plain_loop(rng):
    """The vectorised kernels (chosen for rmse, pcc, ...) give what one call per resample gives."""
    y, yhat = _noisy(rng, 300)
    for fn in (rmse, pcc, ccc, sagr):
        plain = lambda a, b, fn=fn: fn(a, b)  # not in the batched table: resampled one at a time  # noqa: E731
        assert bootstrap_ci(fn, y, yhat, n_boot=200, seed=3) == pytest.approx(
            bootstrap_ci(plain, y, yhat, n_boot=200, seed=3), abs=1e-9)


def test_calibration_slope():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert calibration_slope(y, y) == pytest.approx(1.0)
    assert calibration_slope(y, 2 * y + 3) == pytest.approx(0.5)  # predictions spread twice too wide
    assert calibration_slope(y, y / 2) == pytest.approx(2.0)  # shrunk towards the mean
    assert math.isnan(calibration_slope(y, [5, 5, 5, 5]))
    assert math.isnan(calibration_slope([1.0], [2.0]))
    # A least-squares fit of y on yhat has slope 1 by construction: y = a + b yhat -> slope of y on (a + b yhat) = 1.
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y2 = 3 * x + rng.normal(size=200)
    b, a = np.polyfit(x, y2, 1)
    assert calibration_slope(y2, a + b * x) == pytest.approx(1.0)
    low, high = bootstrap_ci(calibration_slope, y2, a + b * x, n_boot=200)
    assert low < 1.0 < high


# --------------------------------------------------------------------- summarize

def test_summarize_structure_and_pooling(rng):
    y = rng.uniform(1, 9, (40, 2))
    yhat = np.clip(y + rng.normal(0, 1, (40, 2)), 1, 9)
    train = rng.uniform(1, 9, (30, 2))
    s = summarize(y, yhat, train_y=train, n_boot=100)
    assert s["n"] == 40 and set(s) == {"n", "valence", "arousal", "overall"}
    keys = {"rmse", "mae", "pcc", "ccc", "slope", "sagr", "sagr_majority", "rmse_mean_baseline", "ci95"}
    for name in ("valence", "arousal", "overall"):
        assert set(s[name]) == keys
        assert set(s[name]["ci95"]) == {"rmse", "pcc", "ccc", "slope", "sagr"}
        low, high = s[name]["ci95"]["rmse"]
        assert low <= s[name]["rmse"] <= high
    for fn in (rmse, mae, pcc, ccc, sagr):
        assert s["overall"][fn.__name__] == pytest.approx(fn(y.ravel(), yhat.ravel()))
        assert s["valence"][fn.__name__] == pytest.approx(fn(y[:, 0], yhat[:, 0]))
        assert s["arousal"][fn.__name__] == pytest.approx(fn(y[:, 1], yhat[:, 1]))
    assert s["valence"]["slope"] == pytest.approx(calibration_slope(y[:, 0], yhat[:, 0]))
    for j, name in enumerate(("valence", "arousal")):
        assert s[name]["sagr_majority"] == pytest.approx(sagr_majority(y[:, j], train[:, j]))
        assert s[name]["rmse_mean_baseline"] == pytest.approx(rmse_mean_baseline(y[:, j], train[:, j].mean()))
    # Overall baselines pool the per-dimension predictions.
    pooled_pred = np.broadcast_to(train.mean(axis=0), y.shape)
    assert s["overall"]["rmse_mean_baseline"] == pytest.approx(rmse(y, pooled_pred))
    assert s["overall"]["sagr_majority"] == pytest.approx(
        (s["valence"]["sagr_majority"] + s["arousal"]["sagr_majority"]) / 2
    )
    json.dumps(s, allow_nan=False)
    assert all(type(v) is float for v in s["overall"].values() if not isinstance(v, dict))


def test_summarize_hand_baselines_and_scale():
    y = [[8, 2], [2, 2], [6, 5]]
    yhat = [[7, 3], [3, 6], [6, 5]]
    train = [[6, 3], [7, 3], [3, 7]]  # valence majority +, arousal majority -
    s = summarize(y, yhat, train_y=train, ci=False)
    assert "ci95" not in s["valence"]
    assert s["valence"]["sagr_majority"] == pytest.approx(2 / 3)
    assert s["arousal"]["sagr_majority"] == pytest.approx(2 / 3)  # 2, 2 below 5; 5 at it
    assert s["overall"]["sagr_majority"] == pytest.approx(4 / 6)
    assert s["arousal"]["sagr"] == pytest.approx(2 / 3)  # 2 vs 6 disagrees
    # On a 1..7 scale the midpoint is 4: arousal 5 vs 5 now both positive, 2 vs 6 still not.
    s7 = summarize(y, yhat, scale=Scale(1, 7), ci=False)
    assert s7["arousal"]["sagr"] == pytest.approx(2 / 3)
    assert s7["valence"]["sagr"] == pytest.approx(1.0)  # 2 vs 3 agree below 4


def test_summarize_empty_and_single():
    s = summarize(np.zeros((0, 2)), np.zeros((0, 2)), train_y=[[5, 5]], n_boot=20)
    assert s["n"] == 0
    for name in ("valence", "arousal", "overall"):
        block = s[name]
        assert all(math.isnan(block[k]) for k in ("rmse", "mae", "pcc", "ccc", "slope", "sagr", "sagr_majority"))
        assert all(math.isnan(v) for pair in block["ci95"].values() for v in pair)
    json.dumps(jsonable(s), allow_nan=False)  # NaN is written as null in metrics.json
    assert summarize([], [], ci=False)["n"] == 0

    one = summarize([[5, 5]], [[6, 4]], n_boot=20)
    assert one["n"] == 1
    assert one["valence"]["rmse"] == 1.0 and math.isnan(one["valence"]["pcc"])
    assert one["overall"]["ccc"] == 0.0  # y constant, yhat varies around the same mean
