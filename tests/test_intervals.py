"""Prediction intervals: conformal coverage on problems with a known answer, and the calibration's storage."""
from __future__ import annotations

import math

import numpy as np
import pytest

from picaffect.core.errors import CheckpointError, UsageError
from picaffect.evaluation.conformal import coverage_block, fit_calibration, leave_one_source_out_check
from picaffect.inference.intervals import (Calibration, check_level, conformal_quantile, equal_sources_quantile,
                                          scheme_quantile)


def heteroscedastic(n: int, seed: int, p: int = 12):
    """Ratings whose prediction error is Gaussian with a known SD, exp(0.5 x0) for valence and
    exp(0.4 x1) for arousal times 0.5, where x are the pictures' 'features'."""
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, p))
    sigma = 0.5 * np.exp(np.stack([0.5 * x[:, 0], 0.4 * x[:, 1]], axis=1))
    y = g.uniform(3, 7, (n, 2))
    return x, y, y - g.normal(size=(n, 2)) * sigma, sigma


def test_conformal_quantile_is_the_order_statistic():
    scores = np.arange(1, 10, dtype=float)[::-1]  # 9 scores, given unsorted
    assert conformal_quantile(scores, 0.9) == 9.0       # ceil(10 * 0.9) = 9th smallest
    assert conformal_quantile(scores, 0.5) == 5.0       # ceil(10 * 0.5) = 5th
    assert math.isinf(conformal_quantile(scores, 0.95))  # ceil(9.5) = 10 > 9: no finite bound
    calibration = Calibration(errors={"a": {"valence": tuple(scores), "arousal": tuple(scores)}}, adaptive=False,
                              scheme="pooled")
    with pytest.raises(UsageError, match="at least 19 calibration rows"):
        calibration.quantiles(0.95)


@pytest.mark.parametrize("bad", [0, 1, 90, -0.1, "x"])
def test_levels_outside_zero_one_are_refused(bad):
    with pytest.raises(UsageError, match="level"):
        check_level(bad)


def test_normalised_conformal_covers_and_adapts_on_a_known_problem():
    """Errors N(0, sigma(x)^2) with sigma known: the 90 % intervals hold 90 % of fresh ratings, their half-widths
    follow sigma (1.645 sigma is the narrowest interval that covers 90 % of each picture's ratings), and they are
    narrower on average than a constant interval of the same coverage."""
    x, y, yhat, _ = heteroscedastic(3000, 0)
    sources = np.repeat(["a", "b", "c"], 1000)
    calibration, head, _ = fit_calibration(x, y - yhat, sources)
    assert calibration.adaptive and head is not None and calibration.n == 3000
    xt, yt, yht, sigma = heteroscedastic(20000, 1)
    bounds = calibration.bounds(yht, head(xt), 0.9)
    block = coverage_block(yt, yht, bounds)
    for j, dim in enumerate(("valence", "arousal")):
        assert 0.87 <= block[dim]["coverage"] <= 0.93, block
        assert block[dim]["width_vs_constant"] < 0.95, block
        half = (bounds[:, 2 * j + 1] - bounds[:, 2 * j]) / 2
        inside = (bounds[:, 2 * j] > 1) & (bounds[:, 2 * j + 1] < 9)  # unclipped rows
        ratio = half[inside] / sigma[inside, j]
        assert 1.645 * 0.85 < np.median(ratio) < 1.645 * 1.2
        assert np.corrcoef(half[inside], sigma[inside, j])[0, 1] > 0.8
    # another level: the share inside follows it
    wide = coverage_block(yt, yht, calibration.bounds(yht, head(xt), 0.5))
    assert 0.46 <= wide["valence"]["coverage"] <= 0.54


def test_constant_errors_give_a_plain_interval_of_the_right_coverage():
    """Homoscedastic errors: nothing for the error head to find, so the calibration is not adaptive
    (difficulty 1) and the interval is +- the 90 % quantile of |error| (1.645 SD)."""
    g = np.random.default_rng(3)
    x = g.normal(size=(1500, 8))
    residuals = g.normal(size=(1500, 2)) * 0.7
    calibration, head, _ = fit_calibration(x, residuals, np.repeat(["a", "b", "c"], 500))
    assert head is None and not calibration.adaptive
    assert calibration.quantiles(0.9) == pytest.approx([1.645 * 0.7] * 2, rel=0.08)
    y = np.full((40000, 2), 5.0)
    yhat = y - g.normal(size=(40000, 2)) * 0.7
    block = coverage_block(y, yhat, calibration.bounds(yhat, None, 0.9))
    assert 0.88 <= block["valence"]["coverage"] <= 0.92 and 0.88 <= block["arousal"]["coverage"] <= 0.92


def test_bounds_are_clipped_to_the_scale_and_refuse_a_missing_difficulty():
    calibration = Calibration(errors={"a": {"valence": tuple(np.linspace(0, 2, 99)),
                                            "arousal": tuple(np.linspace(0, 1, 99))}}, adaptive=True, scheme="pooled")
    bounds = calibration.bounds(np.array([[8.5, 1.2], [5.0, 5.0]]), np.ones((2, 2)), 0.9)
    assert bounds[0, 1] == 9.0 and bounds[0, 2] == 1.0  # clipped
    assert bounds[1] == pytest.approx([5 - 1.8, 5 + 1.8, 5 - 0.9, 5 + 0.9], abs=0.03)
    with pytest.raises(CheckpointError, match="difficulty"):
        calibration.bounds(np.array([[5.0, 5.0]]), None)


def test_a_calibration_round_trips_through_json():
    calibration = Calibration(errors={"a": {"valence": (0.1, -0.5, 2.0), "arousal": (0.2, 0.3, -0.4)},
                                      "b": {"valence": (-1.0, 0.25), "arousal": (0.5, 0.75)}}, adaptive=True,
                              info={"protocol": {"name": "refit-head"}}, scheme="worst-source")
    again = Calibration.from_json(calibration.to_json())
    assert again == calibration
    with pytest.raises(CheckpointError, match="version"):
        Calibration.from_dict({**calibration.to_dict(), "version": 99})
    with pytest.raises(CheckpointError, match="unknown interval scheme"):
        Calibration.from_dict({**calibration.to_dict(), "scheme": "median"})


def test_a_version_1_calibration_reads_as_the_pooled_scores_it_held():
    """Files calibrated before schemes existed kept sorted |errors| of all sources together: they give the
    same split-conformal widths as before."""
    scores = np.linspace(0.1, 3.0, 99)
    old = {"format": "picaffect.calibration", "version": 1, "adaptive": False,
           "scores": {"valence": scores.tolist(), "arousal": (scores / 2).tolist()}, "info": {"rows": 99}}
    calibration = Calibration.from_dict(old)
    assert calibration.scheme == "pooled" and calibration.n == 99
    assert calibration.quantiles(0.9) == pytest.approx([conformal_quantile(scores, 0.9),
                                                       conformal_quantile(scores / 2, 0.9)])


def test_equal_sources_and_worst_source_are_not_ruled_by_the_largest_source():
    """1,000 small errors in one source and 10 large ones in another: pooled, the large source hardly moves the
    90 % quantile; weighed equally, or taken at the worse source, the width must cover the small source's 10s."""
    small, large = np.linspace(0.001, 1.0, 1000), np.full(10, 10.0)
    assert scheme_quantile([small, large], 0.9, "pooled") < 1.0
    assert scheme_quantile([small, large], 0.9, "equal-sources") == 10.0
    assert scheme_quantile([small, large], 0.9, "worst-source") == 10.0
    # one source: equal weights are the plain conformal quantile
    assert equal_sources_quantile([small], 0.9) == conformal_quantile(small, 0.9)
    with pytest.raises(UsageError, match="unknown interval scheme"):
        scheme_quantile([small], 0.9, "median")


def test_the_standardised_scheme_covers_new_sources_with_their_own_bias():
    """A random source effect: each source's errors are N(bias, 1) with bias ~ N(0, 0.8^2). Calibrated on four
    sources, the standardised 90 % interval holds about 90 % of the errors of new sources on average, and
    more than pooled conformal does (which treats the four biases it saw as all there are)."""
    g = np.random.default_rng(11)
    covered = {"standardised": [], "pooled": []}
    for _ in range(150):
        calibration_sources = [g.normal(g.normal(0, 0.8), 1.0, 300) for _ in range(4)]
        new = g.normal(g.normal(0, 0.8, (40, 1)), 1.0, (40, 200))  # 40 new sources of 200 pictures
        for scheme in covered:
            q = scheme_quantile(calibration_sources, 0.9, scheme)
            covered[scheme].append(float((np.abs(new) <= q).mean()))
    mean = {k: float(np.mean(v)) for k, v in covered.items()}
    assert 0.88 <= mean["standardised"] <= 0.96, mean
    assert mean["standardised"] > mean["pooled"] + 0.01, mean


def test_the_leave_one_source_out_check_sees_a_source_that_is_harder():
    """Source c's errors are three times as large and nothing in the features says so: calibrated on a and b, c's
    intervals cover far less than 90 % (the check reports it rather than hiding it), and a and b, calibrated with
    c's large errors among their calibration rows, more than 90 %."""
    g = np.random.default_rng(5)
    x = g.normal(size=(1800, 6))
    sources = np.repeat(["a", "b", "c"], 600)
    y = g.uniform(2, 8, (1800, 2))
    yhat = y - g.normal(size=(1800, 2)) * np.where(sources == "c", 1.5, 0.5)[:, None]
    check = leave_one_source_out_check(y, yhat, sources, x)
    coverage = {s: check[s]["levels"]["0.9"]["intervals"]["valence"]["coverage"] for s in "abc"}
    assert coverage["c"] < 0.6
    assert coverage["a"] > 0.95 and coverage["b"] > 0.95


def test_jackknife_plus_bounds_are_its_order_statistics_of_the_leave_one_out_lines():
    """Barber et al. 2021: low = the floor(a (k + 1))-th smallest of centre_i - |e_i|, high = the
    ceil((1 - a)(k + 1))-th smallest of centre_i + |e_i|, centre_i = offset_i + slope_i * prediction; widened to
    hold the prediction."""
    from picaffect.inference.intervals import jackknife_plus_bounds, pilot_minimum

    g = np.random.default_rng(0)
    k = 19
    offset, slope, errors = g.normal(0, 0.2, k), g.uniform(0.9, 1.1, k), g.normal(0, 1, k)
    p = np.array([2.0, 5.0, 8.5])
    low, high = jackknife_plus_bounds(p, offset, slope, errors, np.ones(3), 0.9)
    for i, x in enumerate(p):
        centres = offset + slope * x
        assert low[i] == pytest.approx(min(np.sort(centres - np.abs(errors))[1], x))    # floor(0.1 * 20) = 2nd
        assert high[i] == pytest.approx(max(np.sort(centres + np.abs(errors))[17], x))  # ceil(0.9 * 20) = 18th
    assert pilot_minimum(0.9) == 9 and pilot_minimum(0.95) == 19 and pilot_minimum(0.8) == 4
    low, high = jackknife_plus_bounds(p, offset[:8], slope[:8], errors[:8], np.ones(3), 0.9)
    assert np.isinf(low).all() and np.isinf(high).all()


def test_a_jackknife_plus_calibration_round_trips_and_refuses_incomplete_lines():
    lines = {d: {"offset": (0.1, -0.1) * 5, "slope": (1.0,) * 10} for d in ("valence", "arousal")}
    values = tuple(float(v) for v in np.linspace(-1, 1, 9).round(2)) + (0.5,)
    errors = {"pilot": {d: values for d in ("valence", "arousal")}}
    calibration = Calibration(errors=errors, adaptive=False, scheme="jackknife+", jackknife=lines)
    again = Calibration.from_json(calibration.to_json())
    assert again == calibration and again.n == 10
    bounds = again.bounds(np.array([[5.0, 5.0]]), None, 0.9)
    assert (bounds[0, [0, 2]] < 5).all() and (bounds[0, [1, 3]] > 5).all()
    with pytest.raises(CheckpointError, match="offset and a slope for each of its 10"):
        Calibration(errors=errors, adaptive=False, scheme="jackknife+",
                    jackknife={d: {"offset": (0.0,), "slope": (1.0,)} for d in ("valence", "arousal")})
    with pytest.raises(CheckpointError, match="needs its leave-one-out lines"):
        Calibration(errors=errors, adaptive=False, scheme="jackknife+")


def test_level_messages_say_what_was_meant():
    with pytest.raises(UsageError) as e:
        check_level(1.5)
    assert "did you mean" not in str(e.value)
    with pytest.raises(UsageError, match=r"did you mean 0\.95\?"):
        check_level(95)
    calibration = Calibration(errors={"a": {"valence": (0.5,) * 30, "arousal": (0.5,) * 30}}, adaptive=False)
    with pytest.raises(UsageError, match=r"a 99\.9 % interval needs at least 999 calibration rows"):
        calibration.quantiles(0.999)
