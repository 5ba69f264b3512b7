"""A readout on frozen features, refitted with a user's rated pilot pictures added at a weight.

The shipped recipes end in a ridge readout fitted on the training rows' features: a linear
ridge (``probe.fit_linear_readout``, optionally followed by a recalibration line) or an RBF
kernel ridge (``kernel_probe.fit_kernel_ridge``). Adding k pilot rows, each weighing
``weight`` training rows, with the readout's penalties and standardisation kept at the
training rows' choice, is an exact Gaussian-process update of the readout as fitted
(Rasmussen & Williams 2006, 2.2 and 6.2: ridge regression is the posterior mean of a
Gaussian prior whose noise is one training row's):

    refit(x) = model(x) + s K(x, P) (K(P, P) + I / weight)^-1 (y_P - readout(P))

``K`` is the readout's posterior covariance after its training rows, in units of one
training row's noise; ``readout`` the ridge before the recalibration line ``a + s *
readout``; ``model`` the whole as shipped. For the linear ridge on standardised features
z with penalty alpha and an unpenalised intercept, ``K(x, x') = z A^-1 z'`` + 1 / n with
``A = Z'Z + alpha I`` (one SVD of the training rows); for the kernel ridge,
``K = (k(x, x') - k(x, X)(k(X, X) + alpha I)^-1 k(X, x')) / alpha``, its intercept (the
training mean) kept. ``evaluation/pilot_conformal.py`` chooses the weight by leave-one-out
on the pilot from these covariances alone; ``linear_update`` turns the chosen update into
new head weights, so a refitted linear readout ships as an ordinary checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernel_probe import COMPONENTS, KernelRidge, fit_kernel_ridge
from .probe import Ridge, fit_linear_readout

READOUTS = ("linear", "rbf")


@dataclass
class ReadoutPrior:
    """A readout fitted on training rows (ratings on 1..9), ready to be refitted with pilot rows.

    ``line``: (2, 2) the recalibration line's intercept and slope per dimension (0 and 1 without one), so that
    the model's prediction is ``line[:, 0] + line[:, 1] * readout``.
    """
    kind: str
    alphas: np.ndarray
    line: np.ndarray
    ridge: Ridge | None = None
    kernel: KernelRidge | None = None
    info: dict | None = None

    # -- predictions ------------------------------------------------------------------------------------------------
    def readout(self, x: np.ndarray) -> np.ndarray:
        """(N, 2) the ridge's own predictions (before the recalibration line)."""
        x = np.asarray(x, np.float64)
        if self.kind == "linear":
            w, b = self.ridge.weights(self.alphas)
            return x @ w + b
        return self.kernel.predict(x, list(self.alphas))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, 2) the model's predictions on 1..9: the readout and its recalibration line."""
        return self.line[:, 0] + self.line[:, 1] * self.readout(x)

    # -- the Gaussian-process view ----------------------------------------------------------------------------------
    def coordinates(self, x: np.ndarray) -> np.ndarray:
        """The rows in the readout's own space: standardised features (linear) or principal components (rbf)."""
        x = np.asarray(x, np.float64)
        if self.kind == "linear":
            return (x - self.ridge.mean) / self.ridge.std
        return ((x - self.kernel.mean) / self.kernel.std) @ self.kernel.basis

    def covariance(self, a: np.ndarray, b: np.ndarray, j: int) -> np.ndarray:
        """(len(a), len(b)) the posterior covariance of dimension j's readout between rows given by
        ``coordinates``, in units of one training row's noise."""
        if self.kind == "linear":
            alpha = float(self.alphas[j])
            v = self.ridge.vt.T                                      # (width, rank)
            shrink = 1 / (self.ridge.s ** 2 + alpha) - 1 / alpha
            return ((a @ v) * shrink) @ (b @ v).T + a @ b.T / alpha + 1.0 / self._rows
        alpha = float(self.alphas[j])
        k = self.kernel
        ka, kb = self.rbf(a, k.z), self.rbf(b, k.z)
        inner = (k.evecs.T @ kb.T) / (k.evals + alpha)[:, None]
        return (self.rbf(a, b) - (ka @ k.evecs) @ inner) / alpha

    def rbf(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The readout's RBF kernel between rows given in component space."""
        d = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * a @ b.T
        return np.exp(-self.kernel.gamma * np.maximum(d, 0))

    @property
    def _rows(self) -> int:
        return int(self.info["rows"])

    def residuals(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(r, u), (N, 2) each: the pilot's residuals on the readout's scale, and rating - model - slope * r
        (what ``pilot_conformal.fit_refit`` takes)."""
        y = np.asarray(y, np.float64)
        r = y - self.readout(x)
        return r, y - self.predict(x) - self.line[:, 1] * r

    def linear_update(self, pilot: np.ndarray, dual: np.ndarray, j: int) -> tuple[np.ndarray, float]:
        """Dimension j's refit as a change of the linear head on raw features: ``(dw, db)`` such that the refitted
        prediction is ``model(x) + x @ dw + db``; ``dual`` = (K + I / weight)^-1 r from the chosen refit."""
        if self.kind != "linear":
            raise ValueError("only a linear readout's refit is a change of its weights")
        alpha = float(self.alphas[j])
        z = self.coordinates(pilot)
        v = self.ridge.vt.T
        shrink = 1 / (self.ridge.s ** 2 + alpha) - 1 / alpha
        beta = v @ (shrink * (v.T @ (z.T @ dual))) + z.T @ dual / alpha   # A^-1 Z_P' dual, standardised units
        dw = beta / self.ridge.std
        db = float(dual.sum() / self._rows - self.ridge.mean @ dw)
        s = float(self.line[j, 1])
        return s * dw, s * db


def kernel_head_solution(prior: ReadoutPrior, pilot: np.ndarray, duals: list[np.ndarray | None],
                         lines: list[tuple[float, float]]) -> dict[str, np.ndarray]:
    """A kernel head (``models.kernel_head.KernelRidgeHead``'s buffers, on 1..9) over the training rows and the
    pilot's: per dimension the refit where ``duals[j]`` is given, else the line ``a + s * readout`` of ``lines[j]``.

    The refit's update ``K(x, P) v`` expands into kernel columns: on the training rows
    ``-(k(X, X) + alpha I)^-1 k(X, P) v / alpha``, on the pilot rows ``v / alpha``.
    """
    if prior.kind != "rbf":
        raise ValueError("only a kernel readout is written as a kernel head")
    k = prior.kernel
    zp = prior.coordinates(pilot)
    base = k.dual(list(prior.alphas))
    dual = np.zeros((len(k.z) + len(zp), len(prior.alphas)))
    intercept = np.zeros(len(prior.alphas))
    cross = prior.rbf(k.z, zp)
    for j, alpha in enumerate(prior.alphas):
        if duals[j] is not None:
            v = np.asarray(duals[j], np.float64)
            dual[:len(k.z), j] = base[:, j] - k.evecs @ ((k.evecs.T @ (cross @ v)) / (k.evals + alpha)) / alpha
            dual[len(k.z):, j] = v / alpha
            intercept[j] = k.ym[j]
        else:
            a, slope = lines[j]
            dual[:len(k.z), j] = slope * base[:, j]
            intercept[j] = a + slope * k.ym[j]
    return {"mean": k.mean, "projection": k.basis / k.std[:, None], "support": np.vstack([k.z, zp]), "dual": dual,
            "intercept": intercept, "gamma": np.float64(k.gamma)}


def linear_prior(x: np.ndarray, y: np.ndarray, groups: np.ndarray, recalibrate: bool) -> ReadoutPrior:
    """The linear ridge recipe (``fit_linear_readout``) on training rows, kept for refitting."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    fitted = fit_linear_readout(x, y, groups, recalibrate=recalibrate)
    lines = fitted.info.get("recalibration") or [{"intercept": 0.0, "slope": 1.0}] * y.shape[1]
    line = np.array([[c["intercept"], c["slope"]] for c in lines], np.float64)
    return ReadoutPrior("linear", np.asarray(fitted.info["alpha"], np.float64), line, ridge=Ridge(x, y),
                        info={**fitted.info, "rows": int(len(x))})


def kernel_prior(x: np.ndarray, y: np.ndarray, groups: np.ndarray, components: int = COMPONENTS) -> ReadoutPrior:
    """The RBF kernel ridge recipe (``fit_kernel_ridge``) on training rows, kept for refitting."""
    fitted, alphas, info = fit_kernel_ridge(np.asarray(x, np.float64), np.asarray(y, np.float64), groups, components)
    return ReadoutPrior("rbf", np.asarray(alphas, np.float64), np.array([[0.0, 1.0], [0.0, 1.0]]), kernel=fitted,
                        info={**info, "rows": int(len(x)), "components": int(fitted.basis.shape[1])})
