"""A model calibrated on a rated pilot of the user's own pictures: correction, refit, and jackknife+ intervals.

Why a pilot: the shipped intervals are calibrated on the training sets, so on a new
picture set they hold only where the set resembles them (each set has its own bias and
spread, ``results/intervals/search.md``). A random pilot of k pictures from the user's own
set is exchangeable with the rest of that set, which is all conformal prediction needs,
and it also shows the model the set's bias.

Per dimension, two ways of adjusting the model to the pilot compete:

- **correction**: the model's prediction p becomes ``p + d0 + d1 (p - m)`` (m: the fit
  rows' mean prediction), fitted by least squares on the pilot with ``l0`` and ``l1``
  pseudo-pictures at "no correction" (a prior on intercept 0 and slope 1):
  ``d0 = sum(r) / (n + l0)``, ``d1 = cov(p, r) n / ((n + l1) var(p))`` for residuals r.
  ``l0`` and ``l1`` (``PENALTIES``, infinity included: no correction) are chosen by
  leave-one-out on the pilot, so that a small pilot that says little changes little.
- **refit**: the readout refitted on its training rows plus the pilot's rows at a weight c
  (``WEIGHTS``, 0 included: the model as it is), c chosen by leave-one-out. With the
  readout's penalty and standardisation held at the training rows' choice, a ridge readout
  with added rows is a Gaussian-process update of the shipped one (Rasmussen & Williams
  2006, 2.2): ``new(x) = base(x) + s K(x, P) (K(P, P) + I / c)^-1 r``, with K the readout's
  posterior covariance after its training rows (``training/pilot_refit.py``), r the pilot's
  residuals on the readout's scale and s the slope of its recalibration line. Leave-one-out
  is then closed-form (Rasmussen & Williams 2006, 5.4.2), and a left-out row's refit is a
  rank-one downdate, so nested leave-one-out costs O(k^3) per weight.

Per dimension, the pipeline whose leave-one-out error on the pilot (at its own chosen
penalty or weight) is smaller is kept (``choose``). The intervals are made of **nested**
leave-one-out errors of that whole procedure: picture i is predicted by the procedure run
without it, its penalties, its weight and its choice of pipeline all made on the other
pictures by their own leave-one-out, so no choice that flatters the pilot narrows them:

- after a correction (and where every leave-one-out run chose one too), **jackknife+**
  (Barber, Candès, Ramdas & Tibshirani 2021): the leave-one-out fits are lines in the
  prediction, so the file keeps them
  (``intervals.Calibration.jackknife``) and the interval is exactly jackknife+'s. Its
  theorem: for a picture drawn at random from the same set as the pilot, the 1 - a
  interval holds the rating with probability at least 1 - 2a whatever the data, and
  close to 1 - a when the fit is stable (as a two-parameter line shrunk toward the
  identity is); no correction at all is split conformal on the pilot: at least 1 - a.
- after a refit (or where some leave-one-out runs chose one), those fits are not lines in
  the file's prediction, so the interval is the **jackknife**'s, prediction +- the ceil((1 - a)(k + 1))-th smallest
  leave-one-out error: valid when the refit is stable (Barber et al. 2021, section 5);
  its coverage is what ``results/pilot/`` measured.

Pure numpy on matrices (the refit's covariances come in as arrays), so that the
``calibrate`` workflow and the simulation study (``benchmarks/pilot_study.py``) run
exactly this code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..inference.intervals import (DIMENSIONS, PILOT_SCHEME, PILOT_SOURCE, Calibration, jackknife_plus_bounds,
                                   percent, pilot_minimum)

LEVEL = 0.9
MIN_PILOT = 10   # the fewest pilot pictures calibrate accepts: jackknife+ at 90 % needs 9, the study checked 10
PENALTIES = (math.inf, 200.0, 100.0, 50.0, 20.0, 10.0, 5.0, 2.0, 1.0, 0.0)   # pseudo-pictures at "no correction"
WEIGHTS = (0.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)             # a pilot row's weight in a refit
SLOPE_RANGE = (0.2, 5.0)   # a correction's slope stays within this: a pilot never flips or flattens the scale
MIN_ADAPTIVE = 20          # fewer pilot pictures cannot tell an error head from noise
MIN_GAIN = 0.01            # the error head must narrow the pilot's intervals by 1 % to be kept


def minimum_pilot(level: float = LEVEL) -> int:
    """The fewest pilot pictures for ``level``: jackknife+ needs level / (1 - level) leave-one-out errors (9 at
    90 %), and picaffect asks for at least ``MIN_PILOT``."""
    return max(MIN_PILOT, pilot_minimum(level))


# -- correction: a line shrunk toward the identity ------------------------------------------------------------------
def correction_line(n, sp, sr, spp, spr, l0, l1) -> tuple[np.ndarray, np.ndarray]:
    """Offset and slope of the shrunk correction ``y ~ a + b p`` fitted on rows with these sums (broadcasting):
    n rows, sums of p, r = y - p, p^2 and p r; ``l0``, ``l1`` the pseudo-pictures of the bias and slope priors."""
    with np.errstate(divide="ignore", invalid="ignore"):
        m = sp / n
        spread = spp - n * m * m
        d0 = np.where(np.isinf(l0), 0.0, sr / (n + np.where(np.isinf(l0), 0.0, l0)))
        d1 = np.where(np.isinf(l1) | (spread <= 1e-9 * np.maximum(n, 1)), 0.0,
                      (spr - m * sr) / (spread * (1 + np.where(np.isinf(l1), 0.0, l1) / n)))
    b = np.clip(1 + d1, *SLOPE_RANGE)
    return m + d0 - b * m, b


def penalty_grid() -> tuple[np.ndarray, np.ndarray]:
    """Every pair of pseudo-picture counts (bias prior, slope prior) the correction's leave-one-out chooses from."""
    l0, l1 = np.meshgrid(np.array(PENALTIES), np.array(PENALTIES), indexing="ij")
    return l0.reshape(-1), l1.reshape(-1)


@dataclass
class CorrectionFit:
    """The correction fitted on the whole pilot (``offset``, ``slope``, its penalties), and the nested
    leave-one-out fits: picture i's line fitted without it (``loo_offset``, ``loo_slope``) and its error.
    ``loo_sse``: the whole pilot's leave-one-out squared error at the chosen penalties (what chose them);
    ``inner_sse``: for each i, the same on the pilot without i (what chose picture i's penalties)."""
    offset: float
    slope: float
    penalties: tuple[float, float]
    loo_offset: np.ndarray
    loo_slope: np.ndarray
    errors: np.ndarray
    loo_sse: float = math.nan
    inner_sse: np.ndarray | None = None

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return self.offset + self.slope * np.asarray(p, np.float64)


def fit_correction(p: np.ndarray, y: np.ndarray) -> CorrectionFit:
    """The shrunk bias and scale correction of predictions ``p`` toward ratings ``y`` (module docstring)."""
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    k = len(p)
    r = y - p
    l0, l1 = penalty_grid()
    total = np.array([k, p.sum(), r.sum(), (p * p).sum(), (p * r).sum()])
    rows = np.stack([np.ones(k), p, r, p * p, p * r], 1)                     # each row's part of the sums
    # nested: for left-out i and inner left-out j, the line fitted without both, judged on j
    without_ij = total[None, None, :] - rows[:, None, :] - rows[None, :, :]  # (i, j, 5)
    a, b = correction_line(*(without_ij[..., s, None] for s in range(5)), l0[None, None], l1[None, None])
    inner = (y[None, :, None] - a - b * p[None, :, None]) ** 2               # (i, j, grid)
    inner[np.arange(k), np.arange(k)] = 0.0
    inner_sse = inner.sum(1)                                                 # (i, grid)
    best = inner_sse.argmin(1)                                               # (i,) penalties chosen without i
    without_i = total[None, :] - rows                                        # (i, 5)
    loo_a, loo_b = correction_line(*(without_i[:, s] for s in range(5)), l0[best], l1[best])
    # the whole pilot: penalties by plain leave-one-out
    a1, b1 = correction_line(*(without_i[:, s, None] for s in range(5)), l0[None], l1[None])
    sse = ((y[:, None] - a1 - b1 * p[:, None]) ** 2).sum(0)
    choice = int(sse.argmin())
    a_all, b_all = correction_line(*total, l0[choice], l1[choice])
    return CorrectionFit(float(a_all), float(b_all), (float(l0[choice]), float(l1[choice])), loo_a, loo_b,
                         y - (loo_a + loo_b * p), float(sse[choice]), inner_sse[np.arange(k), best])


# -- refit: the readout with the pilot's rows added at a weight -----------------------------------------------------
@dataclass
class RefitFit:
    """The refit chosen on the whole pilot (``weight``; ``dual``: (K + I / weight)^-1 r, the update's coefficients
    of the pilot rows' covariances) and the nested leave-one-out errors; ``loo_rmse``: plain leave-one-out RMSE by
    weight (what chose it); ``inner_sse``: for each i, the leave-one-out squared error on the pilot without i at
    the weight chosen there."""
    weight: float
    dual: np.ndarray
    errors: np.ndarray
    loo_rmse: dict[float, float] = field(default_factory=dict)
    inner_sse: np.ndarray | None = None

    @property
    def loo_sse(self) -> float:
        return float(len(self.errors) * self.loo_rmse[self.weight] ** 2)


def fit_refit(cov: np.ndarray, r: np.ndarray, u: np.ndarray, slope: float) -> RefitFit:
    """The refit's weight and its nested leave-one-out errors on the pilot, for one dimension.

    ``cov``: (k, k) the readout's posterior covariance between the pilot pictures (in units of one training row's
    noise); ``r``: the pilot's residuals on the readout's own scale (rating - readout before its recalibration
    line); ``slope``: that line's slope (1 without); ``u``: rating - model prediction - slope * r (0 without a
    line), so that a refit predicting ``readout + delta`` errs by ``u + slope * (r - delta)``.
    """
    cov, r, u = (np.asarray(a, np.float64) for a in (cov, r, u))
    k = len(r)
    base = u + slope * r                       # errors of the model as it is (weight 0)
    nested = np.full((len(WEIGHTS), k), np.nan)  # error on i of the refit without i, at each weight
    inner = np.full((len(WEIGHTS), k), np.nan)   # sum over j != i of the squared error of the refit without i, j
    plain = np.full(len(WEIGHTS), np.nan)
    duals = []
    for w, weight in enumerate(WEIGHTS):
        if weight == 0:
            nested[w], inner[w] = base, (base ** 2).sum() - base ** 2
            plain[w] = float(np.sqrt(np.mean(base ** 2)))
            duals.append(np.zeros(k))
            continue
        g = np.linalg.inv(cov + np.eye(k) / weight)
        g = (g + g.T) / 2
        alpha = g @ r
        loo = u + slope * alpha / np.diag(g)                                 # plain leave-one-out errors
        plain[w] = float(np.sqrt(np.mean(loo ** 2)))
        duals.append(alpha)
        # without i: G_i = G - G[:, i] G[i, :] / G_ii (row and column i become 0), alpha_i = G_i r
        gi = g[None, :, :] - g.T[:, :, None] * g[:, None, :] / np.diag(g)[:, None, None]   # (i, j, l)
        ai = gi @ r                                                          # (i, j)
        di = np.einsum("ijj->ij", gi)
        with np.errstate(divide="ignore", invalid="ignore"):
            inner_err = u[None, :] + slope * ai / di
        inner_err[np.arange(k), np.arange(k)] = 0.0
        inner[w] = (inner_err ** 2).sum(1)
        nested[w] = u + slope * (r - np.einsum("ij,ij->i", cov, ai))         # predicted from the others only
    chosen = inner.argmin(0)                                                 # each i's weight, chosen without i
    best = int(np.argmin(plain))
    return RefitFit(WEIGHTS[best], duals[best], nested[chosen, np.arange(k)],
                    {WEIGHTS[w]: plain[w] for w in range(len(WEIGHTS))}, inner[chosen, np.arange(k)])


# -- the choice, per dimension --------------------------------------------------------------------------------------
@dataclass
class DimensionFit:
    """What the pilot chose for one dimension and the leave-one-out errors (and lines) its intervals are made of."""
    kept: str                        # "correction" or "refit"
    correction: CorrectionFit
    refit: RefitFit | None
    shipped_errors: np.ndarray       # rating - the model's prediction, untouched by the pilot
    errors: np.ndarray               # the kept pipeline's nested leave-one-out errors
    loo_offset: np.ndarray           # picture i's leave-one-out fit as a line in the file's prediction
    loo_slope: np.ndarray
    exact: np.ndarray | None = None  # whether picture i's line is its fit (else the file's prediction stands in)

    @property
    def method(self) -> str:
        """jackknife+ where every leave-one-out fit is a line in the file's prediction (a correction), else the
        jackknife (a refit somewhere: its leave-one-out fits are taken as the file's prediction)."""
        return "jackknife+" if self.exact is None or bool(np.all(self.exact)) else "jackknife"

    @property
    def corrected(self) -> bool:
        """Whether the kept correction changes the predictions (some penalty finite)."""
        return not all(math.isinf(x) for x in self.correction.penalties)

    @property
    def adjustment(self) -> str:
        """What the file does with this dimension, in words."""
        if self.kept == "refit":
            return f"readout refitted with the pilot's pictures at weight {self.refit.weight:g}"
        if not self.corrected:
            return "none (the pilot's leave-one-out preferred the predictions as they were)"
        c = self.correction
        return (f"correction: {c.offset:.2f} + {c.slope:.2f} x prediction ({c.offset + (c.slope - 1) * 5:+.2f} "
                f"points at 5)")


def choose(p: np.ndarray, y: np.ndarray, refit: RefitFit | None = None, allowed: str = "auto") -> DimensionFit:
    """Correction or refit for one dimension (``allowed``: auto, none, correction or refit; ``refit`` None where
    the readout cannot be refitted).

    auto keeps the pipeline whose leave-one-out squared error on the pilot, each at its own chosen penalty or
    weight, is smaller. Its errors are those of the whole procedure, that choice included: picture i's error
    comes from the pipeline the same rule picks on the pilot without i, so a choice that flatters the pilot
    cannot make the intervals narrower than they should be.
    """
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    k = len(p)
    if allowed == "none":
        identity = CorrectionFit(0.0, 1.0, (math.inf, math.inf), np.zeros(k), np.ones(k), y - p)
        return DimensionFit("correction", identity, None, y - p, y - p, np.zeros(k), np.ones(k))
    c = fit_correction(p, y)
    if refit is None or allowed == "correction":
        inner_refit, kept = np.zeros(k, bool), "correction"
    elif allowed == "refit":
        inner_refit, kept = np.ones(k, bool), "refit"
    else:
        inner_refit = refit.inner_sse < c.inner_sse
        kept = "refit" if refit.loo_sse < c.loo_sse else "correction"
    errors = np.where(inner_refit, refit.errors if refit is not None else 0.0, c.errors)
    exact = ~inner_refit if kept == "correction" else np.zeros(k, bool)
    # picture i's fit a_i + b_i p, written in the file's prediction q = a + b p: offset a_i - b_i a / b, slope b_i / b;
    # a fit that is not a line in the file's prediction (a refit, or a correction where the file holds a refit) is
    # taken as the file's own prediction: the jackknife's approximation
    offset = np.where(exact, c.loo_offset - c.loo_slope * c.offset / c.slope, 0.0)
    slope = np.where(exact, c.loo_slope / c.slope, 1.0)
    return DimensionFit(kept, c, refit, y - p, errors, offset, slope, exact)


def use_error_head(errors: np.ndarray, difficulty: np.ndarray | None) -> bool:
    """Whether the model's error head narrows the pilot's intervals (mean width at 90 % coverage of |e| / d
    scaled back by d against constant ones, both on the pilot) by ``MIN_GAIN``; never below ``MIN_ADAPTIVE``."""
    if difficulty is None or len(errors) < MIN_ADAPTIVE:
        return False
    e, d = np.abs(np.asarray(errors, np.float64)), np.asarray(difficulty, np.float64)
    ratio = np.quantile(e / d, LEVEL) * d.mean() / max(np.quantile(e, LEVEL), 1e-12)
    return bool(ratio <= 1 - MIN_GAIN)


def pilot_calibration(fits: dict[str, DimensionFit], difficulty: np.ndarray | None, info: dict) -> Calibration:
    """The file's calibration: the kept pipelines' leave-one-out errors (divided by the pilot pictures'
    difficulty where ``difficulty`` is given: (k, 2), ones for a dimension without an error head) and lines."""
    d = np.ones((len(next(iter(fits.values())).errors), 2)) if difficulty is None else np.asarray(difficulty)
    errors = {PILOT_SOURCE: {dim: tuple(fits[dim].errors / d[:, j]) for j, dim in enumerate(DIMENSIONS)}}
    lines = {dim: {"offset": tuple(fits[dim].loo_offset), "slope": tuple(fits[dim].loo_slope)} for dim in DIMENSIONS}
    return Calibration(errors=errors, adaptive=difficulty is not None, info=info, scheme=PILOT_SCHEME,
                       jackknife=lines)


def guarantee(fits: dict[str, DimensionFit], k: int, level: float = LEVEL) -> str:
    """The coverage the intervals promise, per dimension, in words a methods section can use."""
    parts = []
    for d in DIMENSIONS:
        f = fits[d]
        if f.method == "jackknife+" and not f.corrected and np.allclose(f.errors, f.shipped_errors):
            # nothing was fitted on the pilot, nor on any part of it: split conformal
            parts.append(f"{d}: at least {percent(level)} (split conformal on the pilot: nothing was fitted on it)")
        elif f.method == "jackknife+":
            parts.append(f"{d}: at least {percent(1 - 2 * (1 - level))} whatever the ratings, and close to "
                         f"{percent(level)} for a stable fit such as this shrunk line (jackknife+, Barber et al. 2021)")
        else:
            refits = k if f.exact is None else int(np.sum(~f.exact))
            parts.append(f"{d}: close to {percent(level)} when one pilot picture barely moves the fit (the jackknife, "
                         f"Barber et al. 2021: {refits} of the {k} leave-one-out runs refitted the readout or differ "
                         f"from the file's own fit in kind, so their errors stand around the file's prediction; no "
                         f"finite-sample bound)")
    return (f"For a picture drawn at random from the same set as the {k} pilot pictures, the {percent(level)} "
            f"interval holds its rating with probability " + "; ".join(parts) + ".")


def coverage_and_width(y: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """The share of ratings inside their interval, and the mean width."""
    y, low, high = (np.asarray(a, np.float64) for a in (y, low, high))
    return float(((y >= low - 1e-9) & (y <= high + 1e-9)).mean()), float((high - low).mean())


def dimension_bounds(fit: DimensionFit, predictions: np.ndarray, scale: np.ndarray | None = None,
                     level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """(N,) low and high on 1..9 of the file's intervals for one dimension, from the file's own ``predictions``
    (what ``Calibration.bounds`` computes, without building a calibration: the study calls it per draw)."""
    predictions = np.asarray(predictions, np.float64)
    low, high = jackknife_plus_bounds(predictions, fit.loo_offset, fit.loo_slope, fit.errors,
                                      np.ones_like(predictions) if scale is None else scale, level)
    return np.clip(low, 1.0, 9.0), np.clip(high, 1.0, 9.0)
