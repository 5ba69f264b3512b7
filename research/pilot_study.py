"""Does a rated pilot of a new picture set make intervals that hold on it, and predictions that rank it better?

A simulation of ``picaffect calibrate MODEL --pilot FILE`` on the three shared sets, from cached
features (no network runs):

    nice -n 19 .venv/bin/python -m research.pilot_study --readout rbf      # results/pilot/rbf/
    nice -n 19 .venv/bin/python -m research.pilot_study --readout linear   # results/pilot/linear/

``--features`` defaults to the cached mirror-averaged stage features of Lite0 at 224 px
(``runs/choice/features/default-lite0@224.npz``), the default model's backbone. For each source
in turn, the model never sees it: the recipe (``--readout rbf``, the default's since the models
were re-chosen: the RBF kernel ridge, ``kernel_probe.fit_kernel_ridge``; ``--readout linear``:
the ridge readout with its recalibration line, ``probe.fit_linear_readout``, the default's
before) is refitted on the other two sources' fitting rows (train and test: ``train+test``). Then, ``--draws`` times for each pilot size k, k
pictures drawn at random from the held-out source are its pilot and the rest are the pictures to
norm: the pilot calibration runs exactly as ``calibrate --pilot`` runs it
(``evaluation.pilot_conformal``: the shrunk correction and the readout refit, each with nested
leave-one-out, the choice per dimension, jackknife+ or jackknife intervals), and is scored on the
rest. Beside it, on the same rest: the model without any pilot and the shipped kind of calibration
(``calibrate``'s refit-head protocol: pooled split conformal on the other sources' leave-one-source-out
errors), and the pilot's intervals with no adjustment (plain split conformal on the pilot).

Per held-out source, dimension and k: the mean coverage of 90 % intervals over draws with its 5th and
95th percentiles, the mean width, the oracle width (the constant width that covers exactly 90 % of the
same rest around the same predictions, known only here), and RMSE and r on the rest as shipped, with
the correction, with the refit and with what the pilot kept. ``OUT/study.json`` holds them;
``make figures`` renders it into ``OUT/README.md``.

The features are the lead's cached mirror-averaged stage features of every picture (the default's
backbone); ``predict`` does not mirror by default, so predictions here are a little smoother than a
user's. The model here is the recipe refitted without the held-out source, as ``calibrate``'s
leave-one-source-out protocol does: it is not the shipped file, which has seen all three sources.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from picaffect.core.atomic import write_bytes_atomically
from picaffect.core.jsonsafe import jsonable
from picaffect.core.metrics import pcc
from picaffect.evaluation.conformal import constant_width, fit_calibration
from picaffect.evaluation.markdown import fmt, markdown_table
from picaffect.evaluation.pilot_conformal import LEVEL, choose, coverage_and_width, dimension_bounds, fit_refit
from picaffect.inference.intervals import DIMENSIONS
from picaffect.training.pilot_refit import READOUTS, kernel_prior, linear_prior
from picaffect.workflows.calibrate import refit_head_predictions, refit_kernel_predictions

KS = (10, 20, 40, 80)
VARIANTS = ("shipped", "corrected", "refitted", "kept")


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {"x": f["features"].astype(np.float64), "y": f["ratings"].astype(np.float64),
                "source": f["source"].astype(str), "split": f["split"].astype(str), "group": f["group"].astype(str),
                "meta": json.loads(str(f["meta"]))}


def no_pilot_calibrations(data: dict, readout: str, components: int) -> dict:
    """Per source, the calibration ``calibrate``'s refit-head protocol makes without it: pooled split conformal on
    the other sources' leave-one-source-out errors (constant widths, as the shipped default)."""
    x, y, sources = data["x"], data["y"], data["source"]
    if readout == "rbf":
        yhat = refit_kernel_predictions(x, y, sources, data["group"], components)
    else:
        yhat = refit_head_predictions(x, y, sources)
    out = {}
    for name in dict.fromkeys(sources.tolist()):
        others = sources != name
        out[name], _, _ = fit_calibration(None, y[others] - yhat[others], sources[others], scheme="pooled")
    return out


def _summary(values: list[float]) -> dict:
    a = np.asarray(values, np.float64)
    return {"mean": float(np.nanmean(a)), "p5": float(np.nanpercentile(a, 5)), "p95": float(np.nanpercentile(a, 95))}


def study_source(data: dict, held: str, args: argparse.Namespace, calibration) -> dict:
    """Every draw of every k for one held-out source."""
    start = time.perf_counter()
    fit_rows = (data["source"] != held) & np.isin(data["split"], args.fit_splits)
    x_fit, y_fit, g_fit = data["x"][fit_rows], data["y"][fit_rows], data["group"][fit_rows]
    prior = kernel_prior(x_fit, y_fit, g_fit, args.components) if args.readout == "rbf" else \
        linear_prior(x_fit, y_fit, g_fit, args.recalibrate)
    rows = data["source"] == held
    x, y = data["x"][rows], data["y"][rows]
    n = len(y)
    p = prior.predict(x)
    z = prior.coordinates(x)
    cov = [prior.covariance(z, z, j) for j in range(2)]
    r, u = prior.residuals(x, y)
    slope = prior.line[:, 1]
    no_pilot = calibration.bounds(p, None, LEVEL)
    block: dict = {"n": n, "fitted_on": int(fit_rows.sum()), "recipe": jsonable(prior.info), "by_k": {}}
    for k in args.ks:
        if k >= n - 10:
            continue
        cells = {d: {key: [] for key in ("coverage", "width", "oracle", "no_pilot_coverage", "no_pilot_width",
                                         "plain_coverage", "plain_width", "refit_kept", "refit_weight",
                                         *(f"rmse_{v}" for v in VARIANTS), *(f"r_{v}" for v in VARIANTS))}
                 for d in DIMENSIONS}
        for draw in range(args.draws):
            g = np.random.default_rng([args.seed, sum(map(ord, held)), k, draw])
            pilot = np.sort(g.choice(n, k, replace=False))
            rest = np.setdiff1d(np.arange(n), pilot)
            for j, d in enumerate(DIMENSIONS):
                c = cells[d]
                refit = fit_refit(cov[j][np.ix_(pilot, pilot)], r[pilot, j], u[pilot, j], float(slope[j]))
                fit = choose(p[pilot, j], y[pilot, j], refit, "auto")
                shipped = p[rest, j]
                corrected = fit.correction(shipped)
                refitted = shipped + slope[j] * cov[j][np.ix_(rest, pilot)] @ refit.dual
                kept = refitted if fit.kept == "refit" else corrected
                low, high = dimension_bounds(fit, kept, None, LEVEL)
                cover, width = coverage_and_width(y[rest, j], low, high)
                c["coverage"].append(cover)
                c["width"].append(width)
                c["oracle"].append(constant_width(y[rest, j], kept, LEVEL))
                cover, width = coverage_and_width(y[rest, j], no_pilot[rest, 2 * j], no_pilot[rest, 2 * j + 1])
                c["no_pilot_coverage"].append(cover)
                c["no_pilot_width"].append(width)
                plain = choose(p[pilot, j], y[pilot, j], None, "none")
                cover, width = coverage_and_width(y[rest, j], *dimension_bounds(plain, shipped, None, LEVEL))
                c["plain_coverage"].append(cover)
                c["plain_width"].append(width)
                c["refit_kept"].append(float(fit.kept == "refit"))
                c["refit_weight"].append(refit.weight)
                for name, pred in zip(VARIANTS, (shipped, corrected, refitted, kept)):
                    c[f"rmse_{name}"].append(float(np.sqrt(np.mean((y[rest, j] - pred) ** 2))))
                    c[f"r_{name}"].append(float(pcc(y[rest, j], pred)))
        block["by_k"][str(k)] = {d: {key: _summary(values) for key, values in cells[d].items()} for d in DIMENSIONS}
        print(f"  {held} k={k}: {args.draws} draws, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    block["seconds"] = round(time.perf_counter() - start, 1)
    return block


def run(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    data = load(args.features)
    calibrations = no_pilot_calibrations(data, args.readout, args.components)
    record = {"command": args.command, "features": str(args.features), "features_meta": data["meta"],
              "readout": args.readout, "recalibrate": bool(args.recalibrate and args.readout == "linear"),
              "fit_splits": list(args.fit_splits), "ks": list(args.ks), "draws": args.draws, "seed": args.seed,
              "level": LEVEL, "sources": {}}
    for held in dict.fromkeys(data["source"].tolist()):
        print(f"{held} held out", file=sys.stderr, flush=True)
        record["sources"][held] = study_source(data, held, args, calibrations[held])
    record["seconds"] = round(time.perf_counter() - start, 1)
    return jsonable(record)


# -- the report -------------------------------------------------------------------------------------------------------
GOALS = ("k = 40, every source and dimension: mean coverage within 0.87-0.93 and 5th percentile >= 0.80",
         "k = 40: the refitted model's mean r on the rest >= the shipped model's, on every source and dimension",
         "k >= 20: RMSE on the rest with correction (what the pilot kept) <= without + 0.02, everywhere",
         "k = 40: mean width <= 1.15 x the oracle width")


def goal_rows(record: dict) -> list[list[str]]:
    """One row per goal, source and dimension: the figure and whether it meets the goal."""
    rows = []
    for source, block in record["sources"].items():
        for d in DIMENSIONS:
            at = block["by_k"].get("40", {}).get(d)
            if at:
                cov = at["coverage"]
                rows.append([GOALS[0].split(":")[0], source, d, f"{cov['mean']:.3f} (p5 {cov['p5']:.3f})",
                             _ok(0.87 <= cov["mean"] <= 0.93 and cov["p5"] >= 0.80)])
                gain = at["r_refitted"]["mean"] - at["r_shipped"]["mean"]
                rows.append(["refit r >= shipped r, k = 40", source, d,
                             f"{fmt(at['r_refitted']['mean'])} vs {fmt(at['r_shipped']['mean'])} ({gain:+.3f})",
                             _ok(gain >= 0)])
                ratio = at["width"]["mean"] / at["oracle"]["mean"]
                rows.append(["width <= 1.15 x oracle, k = 40", source, d,
                             f"{fmt(at['width']['mean'])} / {fmt(at['oracle']['mean'])} = {ratio:.2f}",
                             _ok(ratio <= 1.15)])
            gaps = [(block["by_k"][k][d]["rmse_kept"]["mean"] - block["by_k"][k][d]["rmse_shipped"]["mean"], k)
                    for k in block["by_k"] if int(k) >= 20]
            if gaps:
                worst = max(gaps)
                rows.append(["RMSE kept <= shipped + 0.02, k >= 20", source, d,
                             f"worst {worst[0]:+.3f} (k = {worst[1]})", _ok(worst[0] <= 0.02)])
    return rows


def beta_rows(ks: list[int]) -> list[list[str]]:
    """Exact split conformal's coverage over pilots of k pictures: Beta(m, k + 1 - m), m = ceil(level (k + 1))."""
    from scipy.stats import beta

    rows = []
    for k in ks:
        m = math.ceil(LEVEL * (k + 1) - 1e-9)
        rows.append([str(k), fmt(m / (k + 1)), fmt(beta.ppf(0.05, m, k + 1 - m)), fmt(beta.ppf(0.95, m, k + 1 - m))])
    return rows


def _ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def _cell(s: dict) -> str:
    return f"{fmt(s['mean'])} [{fmt(s['p5'])}, {fmt(s['p95'])}]"


TITLE = "# Calibrating on a rated pilot of a new picture set: simulation study"


def markdown(record: dict) -> str:
    """The study's report, every figure from the record: what ``make figures`` puts in the study's README
    (``scripts/figures.py``, block ``pilot-study/FOLDER``)."""
    out = [f"Made by `{record['command']}` in {record['seconds']:.0f} s (nice 19 beside other jobs: not a speed "
           f"figure). Features: `{record['features']}` (mirror-averaged, {record['features_meta'].get('model')} "
           f"{record['features_meta'].get('arguments')}, {record['features_meta'].get('size')} px). Readout: "
           f"{record['readout']}{' with its recalibration line' if record['recalibrate'] else ''}, refitted on the "
           f"{'+'.join(record['fit_splits'])} rows of the other two sources for each held-out source. "
           f"{record['draws']} random pilots per k; 90 % intervals. The protocol is `research/pilot_study.py`'s "
           f"docstring; the method is `src/picaffect/evaluation/pilot_conformal.py`'s (what `picaffect calibrate "
           f"--pilot` runs).\n",
           "## Goals (issue 33)\n",
           markdown_table(["goal", "held out", "dimension", "figure", "verdict"], goal_rows(record)),
           "\nHow far the 5th percentile can go: even exact split conformal prediction with k exchangeable "
           "scores covers a fraction of new pictures that varies from one pilot to the next as Beta(m, k + 1 - m), "
           "m = ceil(0.9 (k + 1)) (Vovk 2012; Angelopoulos & Bates 2023), whose 5th percentile is the "
           "best any pilot of that size can promise at its nominal level:\n",
           markdown_table(["k", "mean coverage", "5th percentile", "95th percentile"], beta_rows(record["ks"])),
           "\n## Every source, dimension and pilot size\n",
           "*coverage*: mean over draws of the share of the rest inside its 90 % interval [5th, 95th percentile "
           "over draws]; *width*: mean interval width; *oracle*: the constant width covering exactly 90 % of the "
           "same rest around the same predictions; *no pilot*: the shipped kind of calibration (pooled split "
           "conformal on the other sources' held-out errors) around the model without a pilot; *plain pilot*: "
           "split conformal on the pilot around the unadjusted model; RMSE and r on the rest: as shipped (no "
           "pilot), corrected, refitted, and what the pilot kept (refit kept: share of draws).\n"]
    for source, block in record["sources"].items():
        out.append(f"\n### {source} held out ({block['n']} pictures; recipe fitted on {block['fitted_on']} rows)\n")
        rows = []
        for k, dims in block["by_k"].items():
            for d in DIMENSIONS:
                c = dims[d]
                rows.append([k, d, _cell(c["coverage"]), fmt(c["width"]["mean"]), fmt(c["oracle"]["mean"]),
                             f"{fmt(c['no_pilot_coverage']['mean'])} / {fmt(c['no_pilot_width']['mean'])}",
                             f"{fmt(c['plain_coverage']['mean'])} / {fmt(c['plain_width']['mean'])}",
                             " / ".join(fmt(c[f"rmse_{v}"]["mean"]) for v in VARIANTS),
                             " / ".join(fmt(c[f"r_{v}"]["mean"]) for v in ("shipped", "refitted", "kept")),
                             f"{c['refit_kept']['mean']:.0%}"])
        out.append(markdown_table(["k", "dimension", "coverage [p5, p95]", "width", "oracle",
                                   "no pilot: coverage / width", "plain pilot: coverage / width",
                                   "RMSE shipped / corrected / refitted / kept", "r shipped / refitted / kept",
                                   "refit kept"], rows))
    return "\n".join(out) + "\n"


def write(record: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(out / "study.json", (json.dumps(record, indent=1, allow_nan=False) + "\n").encode())
    readme = out / "README.md"
    if not readme.is_file():  # a page with the study's block, which `make figures` fills from study.json
        marker = f"figures:pilot-study/{out.name}"
        readme_text = f"{TITLE}\n\n<!-- {marker}:start -->\n<!-- {marker}:end -->\n"
        write_bytes_atomically(readme, readme_text.encode())


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m research.pilot_study", description=__doc__.splitlines()[0])
    p.add_argument("--features", type=Path, default=Path("runs/choice/features/default-lite0@224.npz"),
                   help="cached features of every picture of the three sets (features, ratings, source, split, group)")
    p.add_argument("--readout", choices=READOUTS, default="rbf", help="the recipe's readout (default rbf, the "
                                                                      "default model's)")
    p.add_argument("--no-recalibrate", dest="recalibrate", action="store_false",
                   help="linear readout without its recalibration line (the default's recipe has one)")
    p.add_argument("--components", type=int, default=256, help="rbf: principal components (the recipe's 256)")
    p.add_argument("--fit-splits", default="train,test", type=lambda s: tuple(s.split(",")),
                   help="the splits the recipe fits on (default train,test: ridge_fit train+test)")
    p.add_argument("--ks", default=",".join(map(str, KS)), type=lambda s: tuple(int(v) for v in s.split(",")),
                   help="pilot sizes (default 10,20,40,80)")
    p.add_argument("--draws", type=int, default=200, help="random pilots per source and k (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="where study.json and README.md go (default "
                                                              "results/pilot/READOUT)")
    p.add_argument("--report-only", action="store_true", help="print the report of OUT/study.json without rerunning (make figures puts it in README.md)")
    args = p.parse_args(argv)
    args.out = args.out or Path("results/pilot") / args.readout
    args.command = "python -m research.pilot_study " + " ".join(map(shlex.quote, argv if argv is not None
                                                                       else sys.argv[1:]))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report_only:
        record = json.loads((args.out / "study.json").read_text())
    else:
        record = run(args)
    write(record, args.out)
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
