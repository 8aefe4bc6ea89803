"""Loaders for the lme4 / glmer reference suites in ``tests/reference``.

The suites are written by R (``lme4_suite.R``, ``glmer_suite.R``) from the data files in
``tests/reference/data`` (written by ``suite_data.R``); their layout is documented in
``tests/reference/README.md``. These functions only read and check files; nothing here fits a
model.

Data types of :func:`load_suite_data`: ``data/datasets.json`` lists every column as
``"string"``, ``"integer"`` or ``"double"``. String columns (the factors, including numeric-
looking ids such as ``"1224"``) come back with pandas' string dtype (``str`` under the pinned
pandas 3), holding Python ``str`` values, never as numbers or ``Categorical``, so that group
labels and reference levels sort exactly as R sorted them (R used the C locale: byte order,
which is Python's ``sorted()`` order for these ASCII labels; ``"10"`` sorts before ``"2"``).
Integer columns are ``int64`` and double columns ``float64`` (pandas 3 parses decimals
correctly rounded; R wrote at most 15 significant digits). The files hold no missing values,
and no text is turned into NaN (``keep_default_na=False``).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import pandas as pd

__all__ = [
    "DATA_DIR",
    "GLMM_FIT_KEYS",
    "LMM_FIT_KEYS",
    "glmm_fit",
    "lmm_fit",
    "load_bad_inputs",
    "load_glmm_suite",
    "load_lmm_suite",
    "load_registry",
    "load_suite_data",
    "load_suite_document",
    "sha256_of",
]

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
SUITE_FILES = {"lmm": HERE / "lme4_suite.json", "glmm": HERE / "glmer_suite.json"}

#: Keys every LMM fit record has (``lme4_suite.json``; REML fits add ``REMLcrit``, ML fits
#: ``deviance``).
LMM_FIT_KEYS = frozenset({
    "id", "model", "dataset", "formula", "REML", "pair", "features", "description", "call",
    "nobs", "ngrps", "fixef", "sigma", "theta", "varcorr", "logLik", "objective_name",
    "objective", "AIC", "BIC", "df", "isSingular", "convergence", "ranef", "fitted_first5",
    "predict_fixed_first5", "optimizer_check", "dense_check",
})

#: Keys every GLMM fit record has (``glmer_suite.json``; Poisson and negative-binomial fits
#: add ``overdispersion``, fits with one scalar random effect ``quadrature_check``).
GLMM_FIT_KEYS = frozenset({
    "id", "model", "dataset", "formula", "family", "link", "nAGQ", "features", "description",
    "call", "nobs", "ngrps", "fixef", "theta", "varcorr", "nb_theta", "logLik", "deviance",
    "minus2logLik", "logLik_scale", "saturated_loglik", "logLik_full", "AIC", "BIC", "df",
    "isSingular", "convergence", "ranef", "fitted_first5", "linear_predictor_first5",
    "optimizer_check", "hessian_check",
})


@lru_cache(maxsize=None)
def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def load_suite_document(suite: str) -> dict:
    """The whole parsed JSON of one suite: versions, controls, datasets, fits, ...

    Parameters
    ----------
    suite : {"lmm", "glmm"}
        ``"lmm"`` for ``lme4_suite.json``, ``"glmm"`` for ``glmer_suite.json``.

    Returns
    -------
    dict
        A fresh copy; changing it does not change later calls.

    Raises
    ------
    ValueError
        If `suite` is not one of the two names.

    Examples
    --------
    >>> load_suite_document("lmm")["suite"]
    'lme4_suite'
    """
    if suite not in SUITE_FILES:
        raise ValueError(f"suite must be 'lmm' or 'glmm', not {suite!r}")
    return json.loads(json.dumps(_read_json(SUITE_FILES[suite])))


def load_lmm_suite() -> list[dict]:
    """The lmer fits of ``lme4_suite.json``, in the order R wrote them.

    Returns
    -------
    list of dict
        One record per fit, with the keys of :data:`LMM_FIT_KEYS` (see the README).

    Examples
    --------
    >>> fits = load_lmm_suite()
    >>> fit = next(f for f in fits if f["id"] == "sleep_slope_reml")
    >>> fit["formula"], fit["fixef"]["names"]
    ('Reaction ~ Days + (Days | Subject)', ['(Intercept)', 'Days'])
    """
    return load_suite_document("lmm")["fits"]


def load_glmm_suite() -> list[dict]:
    """The glmer fits of ``glmer_suite.json``, in the order R wrote them.

    Returns
    -------
    list of dict
        One record per fit, with the keys of :data:`GLMM_FIT_KEYS` (see the README).

    Examples
    --------
    >>> fit = next(f for f in load_glmm_suite() if f["id"] == "cbpp_ri_agq10")
    >>> fit["family"], fit["link"], fit["nAGQ"]
    ('binomial', 'logit', 10)
    """
    return load_suite_document("glmm")["fits"]


def load_bad_inputs() -> dict[str, dict]:
    """glmer's answers on the deliberately bad inputs (``glmer_suite.json``, ``bad_inputs``).

    Returns
    -------
    dict
        Case id -> record with ``formula``, ``family``, ``what``, ``error`` (glmer's error
        message, or None) and ``warnings``.

    Examples
    --------
    >>> load_bad_inputs()["negative_count"]["error"]
    "negative values not allowed for the 'Poisson' family"
    """
    return load_suite_document("glmm")["bad_inputs"]


def _by_id(fits: list[dict], fit_id: str) -> dict:
    for fit in fits:
        if fit["id"] == fit_id:
            return fit
    raise KeyError(f"no fit {fit_id!r}; known ids: {', '.join(f['id'] for f in fits)}")


def lmm_fit(fit_id: str) -> dict:
    """One LMM fit record by id, e.g. ``"exam_block_ml"``.

    Raises
    ------
    KeyError
        If there is no such fit (the message lists the known ids).
    """
    return _by_id(load_lmm_suite(), fit_id)


def glmm_fit(fit_id: str) -> dict:
    """One GLMM fit record by id, e.g. ``"epil_ri_agq25"``.

    Raises
    ------
    KeyError
        If there is no such fit (the message lists the known ids).
    """
    return _by_id(load_glmm_suite(), fit_id)


def load_registry(data_dir: Path | None = None) -> dict[str, dict]:
    """``data/datasets.json``: file, source package and version, column types, sha256.

    Examples
    --------
    >>> load_registry()["penicillin"]["columns"]
    {'diameter': 'integer', 'plate': 'string', 'sample': 'string'}
    """
    path = Path(data_dir or DATA_DIR) / "datasets.json"
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes (of the ``.gz`` file itself for compressed data)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


_DTYPES = {"string": str, "integer": "int64", "double": "float64"}


def load_suite_data(name: str, *, check: bool = True, data_dir: Path | None = None) -> pd.DataFrame:
    """One reference data set as the R suites read it.

    Parameters
    ----------
    name : str
        A key of ``data/datasets.json``, e.g. ``"sleepstudy"`` or ``"insteval"``.
    check : bool, default True
        Verify the file's sha256 against ``datasets.json`` first.
    data_dir : path, optional
        Another directory with the same layout (for tests of this loader).

    Returns
    -------
    pandas.DataFrame
        A new frame on every call, in the file's row order; dtypes as in the module notes.

    Raises
    ------
    KeyError
        If `name` is not a registered data set (the message lists them).
    ValueError
        If the file's sha256 or its columns do not match ``datasets.json``.

    Examples
    --------
    >>> d = load_suite_data("sleepstudy")
    >>> d.dtypes.astype(str).to_dict()
    {'Reaction': 'float64', 'Days': 'int64', 'Subject': 'str'}
    >>> sorted(d["Subject"].unique())[:3]
    ['308', '309', '310']
    """
    data_dir = Path(data_dir or DATA_DIR)
    registry = load_registry(data_dir)
    if name not in registry:
        raise KeyError(f"no reference data set {name!r}; known: {', '.join(sorted(registry))}")
    info = registry[name]
    path = data_dir / info["file"]
    if check and (sha := sha256_of(path)) != info["sha256"]:
        raise ValueError(
            f"{path.name}: sha256 {sha} does not match datasets.json ({info['sha256']}); "
            "re-run Rscript tests/reference/suite_data.R and the suites, or restore the file"
        )
    columns = info["columns"]
    frame = pd.read_csv(
        path,
        dtype={col: _DTYPES[kind] for col, kind in columns.items()},
        keep_default_na=False,
        na_values=[],
    )
    if list(frame.columns) != list(columns) or len(frame) != info["rows"]:
        raise ValueError(
            f"{path.name}: columns {list(frame.columns)} and {len(frame)} rows do not match "
            f"datasets.json ({list(columns)}, {info['rows']} rows)"
        )
    return frame
