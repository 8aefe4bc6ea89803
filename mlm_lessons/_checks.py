"""Input validation and the package's warning classes (private)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "MLMWarning",
    "ConvergenceWarning",
    "BoundaryWarning",
    "check_frame",
    "check_names",
    "check_columns",
    "check_numeric",
    "check_no_missing",
    "check_groups",
    "check_group_ids",
    "check_conf_level",
    "check_method",
    "check_numeric_columns",
    "check_numeric_data",
]


class MLMWarning(UserWarning):
    """Base class of every warning raised by :mod:`mlm_lessons`."""


class ConvergenceWarning(MLMWarning):
    """The optimizer did not reach a point where the gradient vanishes."""


class BoundaryWarning(MLMWarning):
    """A variance component is estimated at (or next to) zero, or a correlation at +-1."""


def check_frame(data: object) -> pd.DataFrame:
    """Raise ``TypeError`` unless ``data`` is a non-empty pandas DataFrame."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"data must be a pandas DataFrame in long format (one row per level-1 unit), "
            f"not {type(data).__name__}"
        )
    if len(data) == 0:
        raise ValueError("data has no rows")
    return data


def check_names(**names: object) -> None:
    """Raise ``TypeError`` for the first argument (``role=name``) that is not a string."""
    for what, name in names.items():
        if not isinstance(name, str):
            raise TypeError(f"{what} must be a column name (str), not {type(name).__name__}")


def check_columns(data: pd.DataFrame, columns: Iterable[str], *, role: str = "column") -> None:
    """Raise ``KeyError`` naming every requested column that is not in ``data``."""
    missing = [c for c in columns if c not in data.columns]
    if missing:
        available = ", ".join(map(str, data.columns))
        names = ", ".join(repr(c) for c in missing)
        raise KeyError(f"{role} {names} not in data; available columns: {available}")


def check_numeric(data: pd.DataFrame, column: str, *, role: str = "column") -> None:
    """Raise ``TypeError`` unless ``data[column]`` is numeric (bool counts as numeric)."""
    if not (
        pd.api.types.is_numeric_dtype(data[column]) or pd.api.types.is_bool_dtype(data[column])
    ):
        raise TypeError(
            f"{role} {column!r} must be numeric, but has dtype {data[column].dtype}; "
            f"convert it (e.g. pd.to_numeric) or code it as 0/1"
        )


def check_no_missing(data: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise ``ValueError`` naming each column with missing values and how many."""
    for c in columns:
        n = int(data[c].isna().sum())
        if n:
            raise ValueError(
                f"column {c!r} has {n} missing value(s); drop those rows first, "
                f"e.g. data.dropna(subset=[{c!r}])"
            )


def check_method(method: str) -> str:
    """Raise ``ValueError`` unless ``method`` is ``"REML"`` or ``"ML"``; return it."""
    if method not in ("REML", "ML"):
        raise ValueError(f"method must be 'REML' or 'ML', not {method!r}")
    return method


def check_numeric_columns(data: pd.DataFrame, columns: Sequence[str]) -> None:
    """Check that every column is in ``data``, numeric and without missing values."""
    check_columns(data, columns)
    for c in columns:
        check_numeric(data, c)
    check_no_missing(data, columns)


def check_numeric_data(
    data: pd.DataFrame, columns: Sequence[str], group: str | None = None
) -> pd.Series | None:
    """:func:`check_frame`, :func:`check_numeric_columns`, then the group sizes (if any)."""
    check_frame(data)
    check_numeric_columns(data, columns)
    if group is None:
        return None
    return check_groups(data, group, min_groups=1)


def check_groups(
    data: pd.DataFrame, group: str, *, min_groups: int = 2, min_size: int = 1
) -> pd.Series:
    """Validate the level-2 identifier and return the group sizes.

    Raises ``ValueError`` when ``group`` has missing values, when there are fewer than
    ``min_groups`` groups, or when every group has fewer than ``min_size`` rows.
    """
    check_columns(data, [group], role="group column")
    n_na = int(data[group].isna().sum())
    if n_na:
        raise ValueError(
            f"group column {group!r} has {n_na} missing value(s); every row needs a group: "
            f"drop those rows or give them an identifier"
        )
    sizes = data.groupby(group, sort=False, observed=True).size()
    if len(sizes) < min_groups:
        raise ValueError(
            f"group column {group!r} has {len(sizes)} distinct value(s); a multilevel model "
            f"needs at least {min_groups} groups"
        )
    if min_size > 1 and int(np.max(sizes.to_numpy())) < min_size:
        raise ValueError(
            f"every group in {group!r} has fewer than {min_size} rows; level-1 and level-2 "
            f"variation cannot be separated"
        )
    return sizes


def check_conf_level(conf_level: float) -> float:
    """Raise ``ValueError`` unless ``0 < conf_level < 1``; return it unchanged."""
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, not {conf_level!r}")
    return conf_level


def check_group_ids(data: pd.DataFrame, group: str) -> None:
    """Raise ``ValueError`` when ``data[group]`` cannot serve as identifiers of groups.

    Identifiers are labels: integers, strings, categories. Missing ids, a column that mixes
    types (``1`` and ``"1"`` would silently be two groups) and floating-point values that are
    not whole numbers (a measurement such as a school mean, whose equal values would merge
    groups, or ids that differ in the last bit) are rejected with what to do.
    """
    if not isinstance(group, str):
        raise TypeError(f"group must be a column name (str), not {type(group).__name__}")
    check_columns(data, [group], role="group column")
    col = data[group]
    n_na = int(col.isna().sum())
    if n_na:
        raise ValueError(
            f"group column {group!r} has {n_na} missing value(s); every row needs a group: "
            f"drop those rows or give them an identifier"
        )
    if pd.api.types.is_float_dtype(col.dtype):
        values = col.to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"group column {group!r} has infinite values")
        if not np.all(values == np.round(values)):
            raise ValueError(
                f"group column {group!r} holds non-integer numbers (e.g. "
                f"{values[values != np.round(values)][0]!r}): it looks like a measurement, not "
                f"an identifier, and equal values would be merged into one group. Pass the "
                f"column that identifies the groups; if this one does, convert it with "
                f"data[{group!r}].astype(str)"
            )
    elif pd.api.types.is_object_dtype(col.dtype):
        kinds = {_kind(v) for v in pd.unique(col.to_numpy())}
        if len(kinds) > 1:
            raise ValueError(
                f"group column {group!r} mixes value types ({', '.join(sorted(kinds))}): "
                f"1 and '1' would be different groups. Convert it to one type, e.g. "
                f"data[{group!r}].astype(str)"
            )


def _kind(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, float | np.floating):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


# --- warnings that point at the caller's line ---------------------------------------------------


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` with the stack level of the first frame outside mlm_lessons."""
    import sys
    import warnings

    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in (
        "mlm_lessons", "threadpoolctl", "contextlib"
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


# --- scalars ------------------------------------------------------------------------------------


def check_count(value: object, name: str, *, minimum: int = 1) -> int:
    """An integer of at least ``minimum`` (bool is not a count); ``ValueError`` otherwise."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer >= {minimum}, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def check_seed(seed: object, name: str = "seed") -> int:
    """A reproducible seed: a non-negative integer (None is refused: results must repeat)."""
    if seed is None:
        raise TypeError(
            f"{name} must be a non-negative integer so that the result can be reproduced; "
            f"pass e.g. {name}=1"
        )
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer):
        raise TypeError(f"{name} must be a non-negative integer, not {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {seed!r}")
    return int(seed)


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return bool(value)


# --- designs -----------------------------------------------------------------------------------


def check_level2_constant(data: pd.DataFrame, columns, group: str) -> None:
    """``ValueError`` for a level-2 variable that varies within a group of ``group``."""
    check_columns(data, list(columns) + [group])
    for c in columns:
        n_distinct = data.groupby(group, sort=False, observed=True)[c].nunique(dropna=False)
        bad = n_distinct[n_distinct > 1]
        if len(bad):
            raise ValueError(
                f"level-2 variable {c!r} varies within {len(bad)} group(s) of {group!r} "
                f"(e.g. {bad.index[0]!r}); a level-2 variable has one value per group: pass "
                f"it as a level-1 variable, or use its group mean"
            )


def check_design(design) -> None:
    """Identifiability checks of a built design (the same for every model of the package)."""
    n, p = design.n, design.p
    y = design.y
    if n - p <= 0:
        raise ValueError(
            f"{n} observations cannot estimate {p} fixed effects and a residual variance"
        )
    if not np.all(np.isfinite(design.X)):
        bad = [name for name, col in zip(design.fixed_names, design.X.T)
               if not np.all(np.isfinite(col))]
        raise ValueError(
            f"fixed-effect column(s) {bad} have infinite values (a log of 0, or a division by "
            f"0?); remove or recode those rows"
        )
    if np.ptp(y) == 0 and design.trials is None:
        raise ValueError(
            f"outcome {design.outcome!r} is constant ({y[0]:g}); there is no variance to model"
        )
    if p and np.linalg.matrix_rank(design.X) < p:
        raise ValueError(_rank_message(design))
    for t in design.terms:
        if t.n_levels < 2:
            what = "group column" if len(t.group_columns) == 1 else "grouping factor"
            raise ValueError(
                f"{what} {t.group!r} has {t.n_levels} distinct value(s); a multilevel model "
                f"needs at least 2 groups (and, to estimate their variance well, many more)"
            )
        if t.n_levels >= n:
            raise ValueError(
                f"every group in {t.group!r} has a single row ({n} rows, {t.n_levels} groups): "
                f"level-1 and level-2 variance cannot be separated; check that {t.group!r} "
                f"identifies groups, not rows"
            )
        if t.n_levels * t.q >= n and design.trials is None:
            raise ValueError(
                f"{t.n_levels} groups x {t.q} random effects of {t.group!r} are at least the "
                f"{n} observations: the random effects and the residual variance are not "
                f"identified; simplify the random part"
            )
        Zc = t.Z
        const_cols = (np.ptp(Zc, axis=0) == 0) if len(Zc) else np.zeros(t.q, bool)
        if t.q > 1 and const_cols.any():
            for j in np.flatnonzero(~const_cols):
                col = Zc[:, j]
                mean = np.bincount(t.codes, col, minlength=t.n_levels) / np.maximum(
                    np.bincount(t.codes, minlength=t.n_levels), 1)
                if np.allclose(col, mean[t.codes], rtol=0, atol=1e-12 * max(1, np.abs(col).max())):
                    raise ValueError(
                        f"{t.columns[j]!r} is constant within every group of {t.group!r}, so "
                        f"its random slope cannot be told apart from the random intercept "
                        f"(it is a level-2 variable there); drop it from the random part"
                    )
        if np.linalg.matrix_rank(Zc) < t.q:
            raise ValueError(
                f"the random effects {list(t.columns)} of {t.group!r} are linearly dependent "
                f"(a column is constant or a combination of others); drop one"
            )


def _rank_message(design) -> str:
    X = design.X
    names = list(design.fixed_names)
    dependent = []
    for j in range(X.shape[1]):
        others = np.delete(X, j, axis=1)
        if others.shape[1] and np.linalg.matrix_rank(others) == np.linalg.matrix_rank(X):
            dependent.append(names[j])
    const = [nm for nm, col in zip(names, X.T) if np.ptp(col) == 0 and nm != "Intercept"]
    hint = f" ({', '.join(map(repr, const))} is constant)" if const else ""
    return (
        f"the fixed-effects design is rank deficient{hint}: the columns "
        f"{', '.join(map(repr, dependent or names))} are linearly dependent (a predictor is "
        f"constant, duplicated or a combination of others, e.g. the outcome among the "
        f"predictors or a group mean next to its group's dummies); drop one of them"
    )


def check_fitted(design, eng) -> None:
    """Errors that only the fit reveals: a residual variance of zero."""
    y = design.y
    if eng.sigma2 <= 1e-10 * max(np.var(y), np.finfo(float).tiny):
        for t in design.terms:
            means = np.bincount(t.codes, y, minlength=t.n_levels) / np.bincount(
                t.codes, minlength=t.n_levels)
            if np.allclose(y, means[t.codes]):
                raise ValueError(
                    f"outcome {design.outcome!r} is constant within every group of "
                    f"{t.group!r}: there is no within-group variation, so a multilevel model "
                    f"of the rows is not identified; analyse the group values instead"
                )
        raise ValueError(
            f"the model reproduces outcome {design.outcome!r} exactly (residual variance "
            f"zero): a predictor is a copy or a function of the outcome; remove it"
        )


def check_new_data(data: object, design, group_levels) -> pd.DataFrame:
    """New data for predictions: the columns the model needs, with the fit's types."""
    check_frame(data)
    from mlm_lessons._design import _rhs_variables

    need = _rhs_variables(design.formula.fixed)
    for off in design.formula.offsets:
        need += _rhs_variables(off)
    groups = [c for t in design.terms if t.group in group_levels for c in t.group_columns]
    for t in design.terms:
        if t.group in group_levels:
            for spec in design.formula.random:
                if spec.group == t.group:
                    need += _rhs_variables(spec.expr)
    need = list(dict.fromkeys(need + groups))
    check_columns(data, need, role="column needed for the prediction")
    check_no_missing(data, need)
    for c in need:
        if c in design.data.columns:
            fitted_numeric = pd.api.types.is_numeric_dtype(design.data[c].dtype)
            new_numeric = pd.api.types.is_numeric_dtype(data[c].dtype)
            if fitted_numeric and not new_numeric and c not in groups:
                raise TypeError(
                    f"column {c!r} is numeric in the fitted data but has dtype "
                    f"{data[c].dtype} here (numbers stored as text?); convert it with "
                    f"pd.to_numeric"
                )
    for c in groups:
        a, b = design.data[c], data[c]
        kind = [pd.api.types.is_numeric_dtype(a.dtype), pd.api.types.is_numeric_dtype(b.dtype)]
        if kind[0] != kind[1]:
            raise TypeError(
                f"group column {c!r} has dtype {b.dtype} here but {a.dtype} in the fitted "
                f"data, so no group would match; convert it (e.g. .astype({a.dtype.name!r}))"
            )
    return data
