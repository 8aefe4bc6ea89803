"""Bundled teaching datasets and published reference tables: a checksummed registry and loaders.

Every dataset is a CSV file shipped inside the package, in ``mlm_lessons/datasets/``, and
listed in ``mlm_lessons/datasets/registry.csv`` with its SHA-256 checksum; the codebook is
``mlm_lessons/datasets/README.md``. The files are read through :mod:`importlib.resources`,
so they are found wherever the package is installed (a wheel, an editable install, a copy on
``PYTHONPATH``). Nothing is downloaded: a missing or altered file raises an error that names
it. The ``MLM_DATA_DIR`` environment variable points the loaders to another folder with the
same layout.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["list_datasets", "load_dataset", "load_reference", "data_dir"]

_PACKAGE_FOLDER = "datasets"
_RESTORE = (
    "reinstall mlm-lessons (pip install --force-reinstall mlm-lessons), or in the course "
    "repository restore it with git checkout -- mlm_lessons/datasets/{file}"
)


def data_dir() -> Path:
    """Folder that holds the bundled CSV files and their registry.

    The default is the ``datasets/`` folder inside the installed package, found with
    :func:`importlib.resources.files`. A non-empty ``MLM_DATA_DIR`` environment variable
    overrides it: the folder it names must hold ``registry.csv`` and the files it lists.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    RuntimeError
        If the package is imported from a zip archive, where its data files are not files
        on disk; install it normally or set ``MLM_DATA_DIR``.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> (mlm.data_dir() / "registry.csv").is_file()
    True
    """
    env = os.environ.get("MLM_DATA_DIR")
    return Path(env) if env else _package_data_dir()


@lru_cache(maxsize=1)
def _package_data_dir() -> Path:
    folder = resources.files("mlm_lessons").joinpath(_PACKAGE_FOLDER)
    if not isinstance(folder, Path):
        raise RuntimeError(
            f"mlm_lessons is imported from an archive ({folder}), so its data files are not "
            f"on disk; install the package with pip, or set MLM_DATA_DIR to a folder with "
            f"the data files and registry.csv"
        )
    return folder


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


def _build_scotssec(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = raw["scotssec.csv"].rename(columns={"second": "secondary"})
    out["primary"] = out["primary"].astype(str)
    out["secondary"] = out["secondary"].astype(str)
    out["pupil"] = [str(i) for i in range(1, len(out) + 1)]
    out["female"] = (out["sex"] == "F").astype("int64")
    out["sex"] = pd.Categorical(out["sex"].map({"M": "Male", "F": "Female"}),
                                categories=["Male", "Female"])
    return out[["pupil", "primary", "secondary", "attain", "verbal", "social", "female", "sex"]]


def _build_penicillin(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = raw["penicillin.csv"].copy()
    out["plate"] = out["plate"].astype(str)
    out["sample"] = out["sample"].astype(str)
    return out[["plate", "sample", "diameter"]]


def _build_exam(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = _snake(raw["exam.csv"])
    out["school"] = out["school"].astype(str)
    out["student"] = out["student"].astype(str)
    out["girl"] = (out["sex"] == "F").astype("int64")
    out["sex"] = pd.Categorical(out["sex"], categories=["M", "F"])
    bands = ["bottom 25%", "mid 50%", "top 25%"]
    out["intake"] = pd.Categorical(out["intake"], categories=bands)
    out["vr"] = pd.Categorical(out["vr"], categories=bands)
    out["schgend"] = pd.Categorical(out["schgend"], categories=["mixed", "boys", "girls"])
    out["type"] = pd.Categorical(out["type"], categories=["Mxd", "Sngl"])
    cols = ["school", "student", "normexam", "standlrt", "sex", "girl", "intake", "schavg",
            "vr", "schgend", "type"]
    return out[cols]


def _build_mmmec(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = raw["mmmec.csv"].copy()
    for c in ("nation", "region", "county"):
        out[c] = out[c].astype(str)
    return out[["nation", "region", "county", "deaths", "expected", "uvb"]]


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
    "scotssec": _Spec(
        "Attainment at 16 of 3435 Scottish pupils from 148 primary and 19 secondary schools, "
        "a cross-classification: pupils of one primary school go to several secondary "
        "schools (Paterson 1991)",
        ("scotssec.csv",),
        "pupil",
        "primary x secondary (crossed)",
        _build_scotssec,
    ),
    "penicillin": _Spec(
        "Diameter (mm) of the zone of inhibition of six penicillin samples, each tested on "
        "each of 24 plates: a fully crossed design (Davies & Goldsmith 1972)",
        ("penicillin.csv",),
        "test",
        "plate x sample (crossed)",
        _build_penicillin,
    ),
    "exam": _Spec(
        "Exam scores (normexam) of 4059 students in 65 inner-London schools, with their "
        "reading test score at intake (Goldstein et al. 1993); the capstone project's data",
        ("exam.csv",),
        "student",
        "school",
        _build_exam,
    ),
    "mmmec": _Spec(
        "Melanoma deaths of men 1971-1980 and the deaths expected, in 354 counties "
        "of 78 regions of 9 European countries, and the county's UV-B dose (count outcome "
        "with an exposure)",
        ("mmmec.csv",),
        "county",
        "region",
        _build_mmmec,
    ),
}


def _registry(folder: Path) -> pd.DataFrame:
    path = folder / "registry.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"data registry {path.name!r} not found in {folder}; "
            + (
                "MLM_DATA_DIR must name a folder with registry.csv and the data files "
                "(unset it to use the files shipped with the package)"
                if os.environ.get("MLM_DATA_DIR")
                else _RESTORE.format(file=path.name)
            )
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
            f"(expected {sha256[:12]}..., found {digest[:12]}...); restore the original file: "
            + _RESTORE.format(file=path.name)
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
            f"data file {file!r} not found in {folder}; " + _RESTORE.format(file=file)
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
        ``"contraception"``, ``"orthodont"``, ``"scotssec"`` (crossed: pupils in primary
        and secondary schools), ``"penicillin"`` (fully crossed: plates and samples),
        ``"exam"`` (the capstone project's data) or ``"mmmec"`` (counts with an exposure:
        melanoma deaths and expected deaths). The codebook, with the source and licence of
        each file, is ``mlm_lessons/datasets/README.md``.

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
    TypeError
        If ``name`` is not a string.
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
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'hsb', not {name!r}")
    if name not in _DATASETS:
        close = [d for d in _DATASETS if d.lower() == name.strip().lower()]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown dataset {name!r}; available: {', '.join(_DATASETS)}{hint}")
    spec = _DATASETS[name]
    folder = data_dir()
    registry = _registry(folder)
    raw = {file: _read(file, folder, registry) for file in spec.files}
    return spec.build(raw).reset_index(drop=True)


@dataclass(frozen=True)
class _Reference:
    description: str
    file: str


_REFERENCES: dict[str, _Reference] = {
    "raudenbush_bryk_2002": _Reference(
        "Published estimates of Raudenbush & Bryk (2002), Tables 4.2-4.5, for the High School "
        "and Beyond models of chapter 4",
        "raudenbush_bryk_2002.csv",
    ),
    "lme4_hsb": _Reference(
        "lme4's numbers for the High School and Beyond models that chapters 9 and 10 cite",
        "lme4_hsb.csv",
    ),
    "lme4_egsingle": _Reference(
        "lme4's three-level fits of egsingle (growth within children within schools), for "
        "chapter 17",
        "lme4_egsingle.csv",
    ),
}


def load_reference(name: str = "raudenbush_bryk_2002") -> pd.DataFrame:
    r"""Load a published reference table that the chapters compare their fits with.

    The file ships with the package and is checked against its SHA-256 checksum, columns and
    row count in ``registry.csv``, like the datasets.

    Parameters
    ----------
    name : str, default "raudenbush_bryk_2002"
        The table. ``"raudenbush_bryk_2002"`` holds the estimates of Raudenbush, S. W. and
        Bryk, A. S. (2002), *Hierarchical Linear Models: Applications and Data Analysis
        Methods*, 2nd ed., Sage, chapter 4: Table 4.2 (one-way ANOVA model), 4.3 (means as
        outcomes), 4.4 (random coefficient, group-mean-centred SES) and 4.5 (intercepts and
        slopes as outcomes), fitted by REML with the HLM software on the High School and
        Beyond data (:func:`load_dataset` ``("hsb")``). The values are transcribed to the
        two decimals the book prints; the notes give lme4 1.1-31's REML estimate of each
        quantity and say where a published value is not the REML optimum (tau11 of Tables
        4.4 and 4.5, sigma2 of Table 4.5). ``"lme4_hsb"`` and ``"lme4_egsingle"`` hold
        lme4 1.1-31's estimates that chapters 9, 10 and 17 compare with (columns ``model,
        method, quantity, lme4``), copied from the R output in the repository's
        ``tests/reference/``.

    Returns
    -------
    pandas.DataFrame
        A fresh copy, one row per published number, with columns ``table`` (e.g.
        ``"Table 4.4"``), ``model`` (the name of the matching lme4 fit in the course's
        tests), ``quantity`` (what is estimated, in the notation of
        :func:`compare_with_published`: ``"fixef[term]"``, ``"se[term]"``,
        ``"T[row,col]"``, ``"sigma2"`` or ``"icc"``), ``published`` (float) and ``note``.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    KeyError
        If ``name`` is not a bundled reference table.
    FileNotFoundError
        If its file is missing.
    ValueError
        If the file does not match its checksum, columns or row count.

    See Also
    --------
    compare_with_published : puts a fit's estimates beside these values.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> published = mlm.load_reference("raudenbush_bryk_2002")
    >>> published.groupby("table").size().to_dict()
    {'Table 4.2': 5, 'Table 4.3': 4, 'Table 4.4': 6, 'Table 4.5': 10}
    >>> published.query("table == 'Table 4.2'")[["quantity", "published"]].head(2)
                 quantity  published
    0  fixef[(Intercept)]      12.64
    1     se[(Intercept)]       0.24
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'raudenbush_bryk_2002', not {name!r}")
    if name not in _REFERENCES:
        raise KeyError(f"unknown reference table {name!r}; available: {', '.join(_REFERENCES)}")
    folder = data_dir()
    return _read(_REFERENCES[name].file, folder, _registry(folder)).reset_index(drop=True)
