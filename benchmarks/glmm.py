"""Time fit_glmm and glmer on the fits of the glmer reference suite, in the same run.

    .venv/bin/python benchmarks/glmm.py [--reps N] [--only id,id] [--no-r]

For each fit of ``tests/reference/glmer_suite.json`` our fit is timed (median of ``--reps``
runs after a warm-up), then glmer with its default controls by ``Rscript
benchmarks/glmer_timing.R`` (median of ``REPS`` runs), and the table of both times and their
ratio (ours / glmer) is printed with the median and the worst ratio. Needs R with lme4 for the
glmer column (``--no-r`` times ours only).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mlm_lessons as mlm  # noqa: E402

_spec = importlib.util.spec_from_file_location("suite", ROOT / "tests" / "reference" / "suite.py")
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)


def suite_data(name: str) -> pd.DataFrame:
    d = suite.load_suite_data(name)
    for c in d.columns:
        if pd.api.types.is_string_dtype(d[c].dtype) or d[c].dtype == object:
            d[c] = pd.Categorical(d[c], categories=sorted(d[c].unique()))
    return d


def time_ours(ref: dict, data: pd.DataFrame, reps: int) -> float:
    formula = ref["formula"].replace("^", "**")

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mlm.fit_glmm(data, formula, family=ref["family"], n_agq=ref["nAGQ"])

    run()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_glmer(ids: list[str], reps: int) -> dict:
    env = {**os.environ, "REPS": str(reps)}
    out = subprocess.run(["Rscript", "benchmarks/glmer_timing.R", ",".join(ids)], cwd=ROOT,
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"benchmarks/glmer_timing.R failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args()
    fits = suite.load_glmm_suite()
    if args.only:
        keep = set(args.only.split(","))
        fits = [f for f in fits if f["id"] in keep]
    cache: dict = {}
    rows = []
    for ref in fits:
        if ref["dataset"] not in cache:
            cache[ref["dataset"]] = suite_data(ref["dataset"])
        rows.append({"id": ref["id"], "ours_s": time_ours(ref, cache[ref["dataset"]],
                                                          args.reps)})
        print(f"{ref['id']:30s} {rows[-1]['ours_s']:8.3f} s", file=sys.stderr)
    table = pd.DataFrame(rows).set_index("id")
    if not args.no_r:
        glmer = time_glmer([f["id"] for f in fits], args.reps)
        table["glmer_s"] = pd.Series(glmer)
        table["ratio"] = table["ours_s"] / table["glmer_s"]
    print(table.round(3).to_string())
    if "ratio" in table:
        print(f"\nratio ours / glmer: median {table['ratio'].median():.3f}, "
              f"worst {table['ratio'].max():.3f} ({table['ratio'].idxmax()})")


if __name__ == "__main__":
    main()
