"""core.ridge, the one ridge solver of the probe and the error head, against the textbook closed form."""
import numpy as np
import pytest

from picaffect.core.ridge import Ridge, StandardisedSVD, drop_constant, offset_scale
from picaffect.evaluation.conformal import ridge_path

ALPHAS = np.array([0.01, 1.0, 30.0, 1e4])


def _data(rows: int = 50, width: int = 8, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, width)) * rng.uniform(0.1, 20, width) + rng.normal(size=width) * 10
    x[:, 2] = 4.0                                           # a constant column
    y = np.stack([x[:, 0] - 0.2 * x[:, 1], x[:, 3]], 1) + rng.normal(size=(rows, 2)) + 5
    return x, y


def _closed_form(x: np.ndarray, y: np.ndarray, alpha: float, standardise) -> tuple[np.ndarray, float]:
    """Solve (Z'Z + aI) v = Z'(y - ȳ) on the standardised features, then map v back to raw units."""
    mean, std, z = standardise(x)
    v = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    w = v / std
    return w, y.mean() - mean @ w


def test_weights_match_the_closed_form_per_output_penalty():
    x, y = _data()
    ridge = Ridge(x, y)
    for a0, a1 in [(0.01, 1e4), (1.0, 30.0)]:
        w, b = ridge.weights(np.array([a0, a1]))
        for j, alpha in enumerate((a0, a1)):
            w_ref, b_ref = _closed_form(x, y[:, j], alpha, offset_scale)
            # atol: a constant column's weight is SVD rounding over the probe's 1e-6 scale (about 1e-7)
            np.testing.assert_allclose(w[:, j], w_ref, rtol=1e-7, atol=1e-6)
            np.testing.assert_allclose(b[j], b_ref, rtol=1e-7)


def test_path_matches_the_closed_form_for_every_penalty():
    x, y = _data()
    w, b = Ridge(x, y[:, 0], drop_constant).path(ALPHAS)
    assert w.shape == (len(ALPHAS), x.shape[1]) and b.shape == (len(ALPHAS),)
    for i, alpha in enumerate(ALPHAS):
        w_ref, b_ref = _closed_form(x, y[:, 0], alpha, drop_constant)
        np.testing.assert_allclose(w[i], w_ref, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(b[i], b_ref, rtol=1e-9)


def test_a_constant_column_changes_no_prediction():
    """Fitted with or without a constant column, the ridge predicts the same: the column's weight is (near) 0
    and nothing turns infinite."""
    x, y = _data()
    others = np.delete(x, 2, axis=1)
    for standardise in (offset_scale, drop_constant):
        w, b = Ridge(x, y, standardise).weights(np.array([1.0, 50.0]))
        w_ref, b_ref = Ridge(others, y, standardise).weights(np.array([1.0, 50.0]))
        assert np.all(np.isfinite(w)) and np.all(np.isfinite(b))
        assert np.all(np.abs(w[2]) < 1e-6)
        np.testing.assert_allclose(x @ w + b, others @ w_ref + b_ref, rtol=1e-9)


def test_drop_constant_zeroes_a_column_that_varies_only_by_rounding():
    """A feature that moves by float32 rounding alone is dropped, not scaled up into a large weight."""
    x, y = _data()
    x[:, 5] = 1000.0 + np.random.default_rng(0).normal(size=len(x)) * 1e-6
    mean, std, z = drop_constant(x)
    assert std[5] == 1.0 and np.all(z[:, 5] == 0.0)
    w, _ = Ridge(x, y[:, 0], drop_constant).path(np.array([1.0]))
    assert abs(w[0, 5]) < 1e-12
    # the probe's standardisation keeps it, and rounding noise becomes a weight in the thousands
    assert abs(Ridge(x, y[:, 0], offset_scale).path(np.array([1.0]))[0][0, 5]) > 1e3


def test_a_shared_svd_gives_the_same_fit_as_a_fresh_one():
    x, y = _data()
    svd = StandardisedSVD.of(x, drop_constant)
    for j in range(2):
        shared = Ridge.on(svd, y[:, j]).path(ALPHAS)
        fresh = Ridge(x, y[:, j], drop_constant).path(ALPHAS)
        for a, b in zip(shared, fresh):
            np.testing.assert_array_equal(a, b)


def test_conformal_ridge_path_is_the_core_solver_with_its_standardisation():
    x, y = _data()
    w, b, scale = ridge_path(x, y[:, 1], ALPHAS)
    w_core, b_core = Ridge(x, y[:, 1], drop_constant).path(ALPHAS)
    np.testing.assert_array_equal(w, w_core)
    np.testing.assert_array_equal(b, b_core)
    np.testing.assert_array_equal(scale, np.stack(drop_constant(x)[:2]))


def test_path_refuses_several_target_columns():
    x, y = _data()
    with pytest.raises(ValueError, match="one target column"):
        Ridge(x, y).path(ALPHAS)
