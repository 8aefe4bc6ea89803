"""Copy the lme4 numbers the chapters compare with into the package, as tidy tables.

The chapters run alone (Colab, Binder, an installed package), so they cannot read
``tests/reference/``. This script writes, from the R output kept there:

- ``mlm_lessons/datasets/lme4_hsb.csv``: the High School and Beyond quantities chapters 9
  and 10 cite (from ``tests/reference/lme4_reference.json``, made by
  ``tests/reference/lme4_reference.R``);
- ``mlm_lessons/datasets/lme4_egsingle.csv``: the three-level fits of chapter 17 (a copy of
  ``tests/reference/lme4_threelevel.csv``, made by ``tests/reference/lme4_threelevel.R``);

and prints their registry rows. ``tests/test_data.py`` checks that the shipped tables equal
the R output. Run from the repository root: ``.venv/bin/python scripts/export_lme4_references.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "tests" / "reference"
OUT = ROOT / "mlm_lessons" / "datasets"


def hsb_rows(ref: dict) -> list[dict]:
    """The quantities of lme4_reference.json that chapters 9 and 10 glue, one row each."""
    full = ref["hsb_full"]
    pre = ref["pre"]["REML"]["random_coefficient_cses_to_full"]
    return [
        {"model": "hsb_full", "method": "REML", "quantity": "loglik",
         "lme4": full["REML"]["logLik"]},
        {"model": "hsb_full", "method": "ML", "quantity": "loglik",
         "lme4": full["ML"]["logLik"]},
        {"model": "hsb_full", "method": "REML", "quantity": "T[cses,cses]",
         "lme4": full["REML"]["T"]["by_name"]["cses"]["cses"]},
        {"model": "hsb_full", "method": "REML", "quantity": "loglik_drop_at_published",
         "lme4": ref["checks"]["hsb_full_published_vs_reml"]["loglik_drop_at_published"]},
        {"model": "random_coefficient_cses_to_full", "method": "REML", "quantity": "pre_tau00",
         "lme4": pre["pre_tau00"]},
        {"model": "random_coefficient_cses_to_full", "method": "REML", "quantity": "pre_tau11",
         "lme4": pre["pre_tau11"]},
        {"model": "fixed_cses_vs_full", "method": "ML", "quantity": "LR",
         "lme4": ref["lrt"]["fixed_cses_vs_full_ML"]["LR"]},
    ]


def tables() -> dict[str, pd.DataFrame]:
    ref = json.loads((REF / "lme4_reference.json").read_text())
    return {
        "lme4_hsb.csv": pd.DataFrame(hsb_rows(ref)),
        "lme4_egsingle.csv": pd.read_csv(REF / "lme4_threelevel.csv"),
    }


def main() -> None:
    for name, table in tables().items():
        path = OUT / name
        table.to_csv(path, index=False, float_format="%.15g")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{name},{digest},{len(table)},{';'.join(table.columns)}")


if __name__ == "__main__":
    main()
