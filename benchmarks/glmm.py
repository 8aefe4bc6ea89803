"""Time fit_glmm and glmer on every fit of the glmer reference suite, in the same run.

    .venv/bin/python benchmarks/glmm.py [--reps N] [--only id,id] [--no-r] [--out FILE]

For each fit of ``tests/reference/glmer_suite.json`` our fit is timed (the fastest of
``--reps`` runs after a warm-up: on a shared machine the minimum is the least disturbed
figure), alternating run by run with glmer with its default controls, timed by an R
process serving ``benchmarks/glmer_timing.R --serve`` (the fastest of as many runs, same
rule), so that the two times of a fit are taken under the same load. The table of both times and their ratio
(ours / glmer) is printed with the median and the worst ratio and the number of fits slower
than glmer, and written to ``benchmarks/results/glmer_suite.csv`` (``--out``). Needs R with
lme4 for the glmer column (``--no-r`` times ours only). ``make bench`` runs it
(benchmarks/run.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "glmer_suite.csv"
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


class Glmer:
    """An R process (``benchmarks/glmer_timing.R --serve``) that times glmer on request."""

    def __init__(self):
        env = {**os.environ, "REPS": "1"}
        self.proc = subprocess.Popen(["Rscript", "benchmarks/glmer_timing.R", "--serve"],
                                     cwd=ROOT, env=env, text=True, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if self._line() != "ready":
            raise RuntimeError(f"benchmarks/glmer_timing.R failed:\n{self.proc.stderr.read()}")

    def _line(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmarks/glmer_timing.R stopped:\n{self.proc.stderr.read()}")
        return line.strip()

    def time(self, fit_id: str) -> float:
        self.proc.stdin.write(fit_id + "\n")
        self.proc.stdin.flush()
        got_id, seconds = self._line().split()
        assert got_id == fit_id, (got_id, fit_id)
        return float(seconds)

    def close(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=60)


def time_pair(ref: dict, data: pd.DataFrame, reps: int, glmer: Glmer | None):
    """Fastest of ``reps`` fits of ours and of glmer's (seconds), one of each in turn, after
    one warm-up fit of each."""
    formula = ref["formula"].replace("^", "**")

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mlm.fit_glmm(data, formula, family=ref["family"], n_agq=ref["nAGQ"])

    run()
    ours, theirs = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        ours.append(time.perf_counter() - t0)
        theirs.append(glmer.time(ref["id"]) if glmer is not None else np.nan)
    return float(np.min(ours)), float(np.min(theirs))


def summary(table: pd.DataFrame) -> str:
    r = table["ratio"].dropna()
    if not len(r):
        return "no glmer times"
    return (f"ratio ours / glmer over {len(r)} fits: median {r.median():.3f}, worst "
            f"{r.max():.3f} ({r.idxmax()}), slower than glmer: {int((r > 1).sum())}")


def run_suite(reps: int = 5, only: str = "", with_r: bool = True, out: Path | None = RESULTS,
              verbose: bool = True) -> pd.DataFrame:
    """Time the suite (ours, then glmer), print and write the table; return it."""
    fits = suite.load_glmm_suite()
    if only:
        keep = set(only.split(","))
        fits = [f for f in fits if f["id"] in keep]
    glmer = Glmer() if with_r and shutil.which("Rscript") is not None else None
    cache: dict = {}
    rows = []
    try:
        for ref in fits:  # ours, then glmer, fit by fit: both under the same machine load
            if ref["dataset"] not in cache:
                cache[ref["dataset"]] = suite_data(ref["dataset"])
            ours, theirs = time_pair(ref, cache[ref["dataset"]], reps, glmer)
            rows.append({"id": ref["id"], "ours_s": ours, "glmer_s": theirs,
                         "ratio": ours / theirs})
            if verbose:
                print(f"{ref['id']:30s} {ours:8.3f} s {theirs:8.3f} s {ours / theirs:6.3f}",
                      file=sys.stderr)
    finally:
        if glmer is not None:
            glmer.close()
    table = pd.DataFrame(rows).set_index("id")
    print(table.round(4).to_string())
    print("\n" + summary(table))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w") as fh:
            fh.write(f"# fit_glmm and glmer (default controls) on tests/reference/glmer_suite.json"
                     f": fastest of {reps} runs each, same run; {platform.machine()}, "
                     f"Python {platform.python_version()}\n# {summary(table)}\n")
            table.round(4).to_csv(fh)
        print(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", default="")
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    run_suite(args.reps, args.only, not args.no_r, args.out)


if __name__ == "__main__":
    main()
