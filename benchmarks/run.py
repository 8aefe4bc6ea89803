"""Timing of the model fits a student waits for, of the reference suite, and of large fits.

Run: make bench   (or .venv/bin/python benchmarks/run.py [--reps 20] [--no-large]
                   [--no-suite] [--suite-reps 5] [--no-glmm] [--glmm-reps 5])

1. The workshop's ladder on HSB (REML): the median wall time of mlm_lessons.fit_mixed over
   --reps calls (each includes building the design from the formula), statsmodels' default
   MixedLM fit (one call; its log-likelihood shows whether it reached the optimum), and
   lme4's median when R with lme4 is installed (benchmarks/lme4_timing.R, same run).
2. Every fit of the lme4 reference suite (tests/reference/lme4_suite.json): our median over
   --suite-reps calls and lme4's (benchmarks/lme4_suite_timing.R, same run), their ratio,
   and the median and worst ratio over the suite; the table goes to
   benchmarks/results/lme4_suite.csv.
3. A 1,000,000-row, 10,000-group random-slope fit on ill-conditioned data (a predictor on a
   raw scale of tens), and the crossed InstEval fit of the suite (73,421 rows, 2,972 x 1,128
   levels) against lme4.
4. Every fit of the glmer reference suite (tests/reference/glmer_suite.json): fit_glmm and
   glmer in the same run, the fastest of --glmm-reps runs each (benchmarks/glmm.py); the
   table (ours, glmer, ratio) is written to benchmarks/results/glmer_suite.csv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def large_raw_scale(n_groups: int = 10_000, group_size: int = 100, seed: int = 2) -> dict:
    """The same size, with the predictor on a raw scale (mean 50, SD 15): ill-conditioned."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), group_size)
    x = 50 + 15 * rng.normal(size=g.size)
    u = rng.multivariate_normal([0, 0], [[4.0, 0.01], [0.01, 0.0004]], size=n_groups)
    y = 10 + 0.2 * x + u[g, 0] + u[g, 1] * (x - 50) + rng.normal(0, 3, g.size)
    df = pd.DataFrame({"g": g, "x": x, "y": y})
    t0 = time.perf_counter()
    fit = mlm.fit_mixed(df, "y ~ x + (x | g)")
    seconds = time.perf_counter() - t0
    return {"rows": g.size, "groups": n_groups, "seconds": round(seconds, 2),
            "converged": fit.converged, "sigma2": round(fit.sigma2, 3)}


def _suite_lme4(reps: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    run = subprocess.run(
        ["Rscript", str(ROOT / "benchmarks" / "lme4_suite_timing.R"), "--suite", "lmm",
         "--reps", str(reps)],
        cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )
    if run.returncode != 0:
        print("lme4 suite timing failed:", run.stderr[-500:])
        return None
    doc = json.loads(run.stdout)
    fits = doc["fits"]
    return fits if isinstance(fits, dict) else {f["id"]: f for f in fits}


def suite(reps: int) -> pd.DataFrame:
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "reference"))
    from suite import load_lmm_suite, load_suite_data

    lme4 = _suite_lme4(reps) or {}
    rows = []
    for rec in load_lmm_suite():
        data = load_suite_data(rec["dataset"])
        method = "REML" if rec["REML"] else "ML"

        def fit(data=data, rec=rec, method=method):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return mlm.fit_mixed(data, rec["formula"], method=method)

        n = reps if rec["nobs"] < 50_000 else max(1, reps // 3)
        ours = _median_ms(fit, n)
        theirs = lme4.get(rec["id"], {}).get("median_ms", np.nan)
        rows.append({"id": rec["id"], "rows": rec["nobs"], "mlm_lessons_ms": round(ours, 1),
                     "lme4_ms": round(theirs, 1), "ratio": round(ours / theirs, 3)})
    return pd.DataFrame(rows)


def _write_table(table: pd.DataFrame, name: str, *comments: str) -> None:
    """The table as benchmarks/results/<name>, with '#' lines saying how it was measured."""
    out = ROOT / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        f.writelines(f"# {c}\n" for c in comments)
        table.to_csv(f, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--suite-reps", type=int, default=5)
    parser.add_argument("--no-large", action="store_true")
    parser.add_argument("--no-suite", action="store_true")
    parser.add_argument("--no-glmm", action="store_true")
    parser.add_argument("--glmm-reps", type=int, default=5)
    args = parser.parse_args()
    pd.set_option("display.width", 140)
    pd.set_option("display.max_rows", 500)
    print("HSB ladder, REML, median of", args.reps, "calls")
    print(ladder(args.reps).to_string(index=False))
    if not args.no_suite:
        table = suite(args.suite_reps)
        print(f"\nlme4 reference suite, median of {args.suite_reps} calls each")
        print(table.to_string(index=False))
        ratio = table["ratio"].dropna()
        if len(ratio):
            worst = table.loc[ratio.idxmax()]
            summary = (f"ratio mlm_lessons / lme4: median {ratio.median():.3f}, worst "
                       f"{ratio.max():.3f} ({worst['id']}), fits at or below lme4's time: "
                       f"{int((ratio <= 1).sum())} of {len(ratio)}")
            print(summary)
            _write_table(table, "lme4_suite.csv",
                         f"fit_mixed and lmer (default controls) on "
                         f"tests/reference/lme4_suite.json: median of {args.suite_reps} calls "
                         f"each, same run; {platform.machine()}, Python "
                         f"{platform.python_version()}, load average "
                         f"{os.getloadavg()[0]:.1f} at the end", summary)
    if not args.no_large:
        print("\nLarge random-slope fit:", large())
        print("Large random-slope fit, raw scale:", large_raw_scale())
    if not args.no_glmm:
        import sys

        sys.path.insert(0, str(ROOT / "benchmarks"))
        import glmm

        print(f"\nglmer reference suite, fastest of {args.glmm_reps} runs each")
        glmm.run_suite(args.glmm_reps, verbose=False)


if __name__ == "__main__":
    main()
