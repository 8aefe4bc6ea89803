"""Bundled teaching datasets: a checksummed registry and loaders.

Every dataset is a CSV file in the repository's ``data/`` folder, listed in
``data/registry.csv`` with its SHA-256 checksum. Nothing is downloaded: a missing or altered
file raises an error that names it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

__all__ = ["list_datasets", "load_dataset", "data_dir"]


def data_dir() -> Path:
    """Folder that holds the bundled CSV files.

    The ``MLM_DATA_DIR`` environment variable overrides the default, which is the ``data/``
    folder beside the package (the repository root in a development install).
    """
    env = os.environ.get("MLM_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class _Spec:
    description: str
    files: tuple[str, ...]
    level1: str
    level2: str
    build: Callable[[dict[str, pd.DataFrame]], pd.DataFrame]


def _snake(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={c: c.lower() for c in df.columns})


def _build_hsb(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    students = _snake(raw["hsb_students.csv"]).drop(columns="meanses")
    students["school"] = students["school"].astype(str)
    schools = _build_hsb_schools(raw)
    out = students.merge(schools, on="school", how="left", validate="many_to_one")
    out["minority"] = (out["minority"] == "Yes").astype("int64")
    out["female"] = (out["sex"] == "Female").astype("int64")
    out["sex"] = pd.Categorical(out["sex"], categories=["Male", "Female"])
    cols = ["school", "student", "mathach", "ses", "minority", "female", "sex"]
    out["student"] = out.groupby("school", sort=False).cumcount() + 1
    rest = [c for c in out.columns if c not in cols]
    return out[cols + rest]


def _build_hsb_schools(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    schools = _snake(raw["hsb_schools.csv"])
    schools["school"] = schools["school"].astype(str)
    schools["sector"] = pd.Categorical(schools["sector"], categories=["Public", "Catholic"])
    schools["catholic"] = (schools["sector"] == "Catholic").astype("int64")
    return schools


def _build_sleepstudy(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = _snake(raw["sleepstudy.csv"])
    out["subject"] = out["subject"].astype(str)
    return out[["subject", "days", "reaction"]]


def _build_egsingle(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = raw["egsingle.csv"].copy()
    out["schoolid"] = out["schoolid"].astype(str)
    out["childid"] = out["childid"].astype(str)
    out["female"] = (out["female"] == "Female").astype("int64")
    cols = ["schoolid", "childid", "year", "grade", "math", "retained", "female", "black",
            "hispanic", "size", "lowinc", "mobility"]
    return out[cols]


def _build_contraception(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = raw["contraception.csv"].copy()
    out["woman"] = out["woman"].astype(str)
    out["district"] = out["district"].astype(str)
    out["use"] = (out["use"] == "Y").astype("int64")
    out["urban"] = (out["urban"] == "Y").astype("int64")
    out["livch"] = pd.Categorical(out["livch"].astype(str), categories=["0", "1", "2", "3+"])
    return out[["woman", "district", "use", "age", "livch", "urban"]]


def _build_orthodont(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = _snake(raw["orthodont.csv"])
    out["female"] = (out["sex"] == "Female").astype("int64")
    out["sex"] = pd.Categorical(out["sex"], categories=["Male", "Female"])
    return out[["subject", "age", "distance", "sex", "female"]]


_DATASETS: dict[str, _Spec] = {
    "hsb": _Spec(
        "High School and Beyond (1982): maths achievement of 7185 students in 160 US high "
        "schools, student file merged with the school file (Raudenbush & Bryk 2002, ch. 4)",
        ("hsb_students.csv", "hsb_schools.csv"),
        "student",
        "school",
        _build_hsb,
    ),
    "hsb_schools": _Spec(
        "High School and Beyond school file: one row per school (160 schools)",
        ("hsb_schools.csv",),
        "school",
        "",
        _build_hsb_schools,
    ),
    "sleepstudy": _Spec(
        "Reaction times (ms) of 18 truck drivers over 10 days of sleep restriction "
        "(Belenky et al. 2003), repeated measures within subjects",
        ("sleepstudy.csv",),
        "day",
        "subject",
        _build_sleepstudy,
    ),
    "egsingle": _Spec(
        "Mathematics scores of 1721 Chicago pupils in 60 schools, measured in up to six "
        "school years (three levels: years within children within schools)",
        ("egsingle.csv",),
        "year",
        "child",
        _build_egsingle,
    ),
    "contraception": _Spec(
        "Contraceptive use (0/1) of 1934 women in 60 districts of Bangladesh, 1988 "
        "Fertility Survey (binary outcome)",
        ("contraception.csv",),
        "woman",
        "district",
        _build_contraception,
    ),
    "orthodont": _Spec(
        "Distance (mm) from the pituitary to the pterygomaxillary fissure of 27 children, "
        "measured at ages 8, 10, 12 and 14 (Potthoff & Roy 1964)",
        ("orthodont.csv",),
        "age",
        "subject",
        _build_orthodont,
    ),
}


def _registry(folder: Path) -> pd.DataFrame:
    path = folder / "registry.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"data registry {path.name!r} not found in {folder}; set MLM_DATA_DIR to the "
            f"course's data/ folder"
        )
    return pd.read_csv(path, dtype=str).set_index("file")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=16)
def _read_verified(path: Path, sha256: str, columns: str, mtime_ns: int) -> pd.DataFrame:
    digest = _sha256(path)
    if digest != sha256:
        raise ValueError(
            f"data file {path.name!r} does not match its checksum in registry.csv "
            f"(expected {sha256[:12]}..., found {digest[:12]}...); restore the original file "
            f"(git checkout -- data/{path.name})"
        )
    frame = pd.read_csv(path)
    expected = columns.split(";")
    if list(frame.columns) != expected:
        raise ValueError(
            f"data file {path.name!r} has columns {list(frame.columns)}, expected {expected}"
        )
    return frame


def _read(file: str, folder: Path, registry: pd.DataFrame) -> pd.DataFrame:
    path = folder / file
    if file not in registry.index:
        raise KeyError(f"data file {file!r} is not listed in registry.csv")
    if not path.is_file():
        raise FileNotFoundError(
            f"data file {file!r} not found in {folder}; restore it (git checkout -- data/{file})"
        )
    entry = registry.loc[file]
    frame = _read_verified(path, entry["sha256"], entry["columns"], path.stat().st_mtime_ns)
    if len(frame) != int(entry["rows"]):
        raise ValueError(f"data file {file!r} has {len(frame)} rows, expected {entry['rows']}")
    return frame.copy()


def list_datasets() -> pd.DataFrame:
    """List the bundled datasets.

    Returns
    -------
    pandas.DataFrame
        One row per dataset with columns ``name``, ``description``, ``level1``, ``level2``
        and ``files``.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> "hsb" in set(mlm.list_datasets()["name"])
    True
    """
    return pd.DataFrame(
        [
            {
                "name": name,
                "description": spec.description,
                "level1": spec.level1,
                "level2": spec.level2,
                "files": ", ".join(spec.files),
            }
            for name, spec in _DATASETS.items()
        ]
    )


def load_dataset(name: str) -> pd.DataFrame:
    """Load a bundled dataset as a long-format data frame.

    Each file is checked against its SHA-256 checksum and expected columns before use.

    Parameters
    ----------
    name : str
        One of the names in :func:`list_datasets`: ``"hsb"`` (students merged with their
        school's variables), ``"hsb_schools"``, ``"sleepstudy"``, ``"egsingle"``,
        ``"contraception"`` or ``"orthodont"``. ``data/README.md`` is the codebook.

    Returns
    -------
    pandas.DataFrame
        A fresh copy; changing it does not affect later loads. Column names are snake_case.
        For ``"hsb"``: ``school`` (str identifier), ``student`` (number within school),
        ``mathach``, ``ses``, ``minority`` and ``female`` (0/1), ``sex`` (categorical),
        and the school variables ``size``, ``sector`` (categorical, ``Public`` first, so it
        is the reference level), ``catholic`` (0/1), ``pracad``, ``disclim``, ``himinty``,
        ``meanses``.

    Raises
    ------
    KeyError
        If ``name`` is not a bundled dataset.
    FileNotFoundError
        If a file of the dataset is missing.
    ValueError
        If a file does not match its checksum, columns or row count.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> hsb.shape
    (7185, 14)
    >>> hsb["school"].nunique()
    160
    >>> list(hsb["sector"].cat.categories)
    ['Public', 'Catholic']
    """
    if name not in _DATASETS:
        raise KeyError(f"unknown dataset {name!r}; available: {', '.join(_DATASETS)}")
    spec = _DATASETS[name]
    folder = data_dir()
    registry = _registry(folder)
    raw = {file: _read(file, folder, registry) for file in spec.files}
    return spec.build(raw).reset_index(drop=True)
