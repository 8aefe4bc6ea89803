"""Timing of the model fits a student waits for, and of a large fit.

Run: make bench   (or .venv/bin/python benchmarks/run.py [--reps 20] [--no-large])

Prints, for the workshop's ladder on HSB (REML): the median wall time of mlm_lessons.fit_mixed
over --reps calls (each includes building the design from the formula), statsmodels'
default MixedLM fit (one call; its log-likelihood shows whether it reached the optimum),
and lme4's median when R with lme4 is installed (benchmarks/lme4_timing.R, same machine,
same run). Then a 1,000,000-row, 10,000-group random-slope fit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import mlm_lessons as mlm

ROOT = Path(__file__).resolve().parent.parent
LADDER = {
    "null": ("mathach ~ 1", None),
    "random_intercept": ("mathach ~ ses", None),
    "random_coefficient": ("mathach ~ cses", "cses"),
    "full": ("mathach ~ meanses*cses + catholic*cses", "cses"),
}


def _median_ms(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def _statsmodels_default(hsb, formula, re_formula):
    import statsmodels.formula.api as smf

    model = smf.mixedlm(formula, hsb, groups=hsb["school"],
                        re_formula=None if re_formula is None else "~" + re_formula)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(reml=True)
    return 1000 * (time.perf_counter() - t0), float(res.llf), len(caught) > 0


def _lme4(reps: int) -> dict[str, float] | None:
    if shutil.which("Rscript") is None:
        return None
    run = subprocess.run(
        ["Rscript", str(ROOT / "benchmarks" / "lme4_timing.R")],
        cwd=ROOT, capture_output=True, text=True, env={"REPS": str(reps), "PATH": "/usr/bin:/bin"},
    )
    if run.returncode != 0:
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])


def ladder(reps: int) -> pd.DataFrame:
    hsb = mlm.center(mlm.load_dataset("hsb"), "ses", group="school", name="cses")
    lme4 = _lme4(reps) or {}
    rows = []
    for name, (formula, re_formula) in LADDER.items():
        ours = _median_ms(lambda: mlm.fit_mixed(hsb, formula, "school", re_formula=re_formula),
                          reps)
        fit = mlm.fit_mixed(hsb, formula, "school", re_formula=re_formula)
        sm_ms, sm_llf, sm_warned = _statsmodels_default(hsb, formula, re_formula)
        rows.append({
            "model": name,
            "mlm_lessons_ms": round(ours, 1),
            "lme4_ms": lme4.get(name, np.nan),
            "statsmodels_default_ms": round(sm_ms, 1),
            "loglik": round(fit.loglik, 4),
            "statsmodels_loglik_gap": round(fit.loglik - sm_llf, 4),
            "statsmodels_warned": sm_warned,
        })
    table = pd.DataFrame(rows)
    total = {"model": "ladder total", "mlm_lessons_ms": table["mlm_lessons_ms"].sum(),
             "lme4_ms": table["lme4_ms"].sum(min_count=len(table)),
             "statsmodels_default_ms": table["statsmodels_default_ms"].sum()}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def large(n_groups: int = 10_000, group_size: int = 100, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), group_size)
    x = rng.normal(size=g.size)
    u = rng.multivariate_normal([0, 0], [[4.0, 0.3], [0.3, 0.25]], size=n_groups)
    y = 10 + 2 * x + u[g, 0] + u[g, 1] * x + rng.normal(0, 3, g.size)
    df = pd.DataFrame({"g": g, "x": x, "y": y})
    t0 = time.perf_counter()
    fit = mlm.fit_mixed(df, "y ~ x", "g", re_formula="x")
    seconds = time.perf_counter() - t0
    return {"rows": g.size, "groups": n_groups, "seconds": round(seconds, 2),
            "converged": fit.converged, "tau": fit.tau.round(3).to_numpy().tolist(),
            "sigma2": round(fit.sigma2, 3), "truth": "tau [[4, .3], [.3, .25]], sigma2 9"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--no-large", action="store_true")
    args = parser.parse_args()
    pd.set_option("display.width", 140)
    print("HSB ladder, REML, median of", args.reps, "calls")
    print(ladder(args.reps).to_string(index=False))
    if not args.no_large:
        print("\nLarge random-slope fit:", large())


if __name__ == "__main__":
    main()
