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
