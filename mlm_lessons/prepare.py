"""Preparing two-level data: centering and group aggregates.

Every function returns a new data frame; the input is never modified.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mlm_lessons._checks import check_name_list, check_new_column, check_numeric_data

__all__ = ["center", "group_means", "add_group_mean"]


def center(
    data: pd.DataFrame, column: str, *, group: str | None = None, name: str | None = None
) -> pd.DataFrame:
    """Center a predictor at its grand mean or at its group means.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format.
    column : str
        Numeric column to center.
    group : str, optional
        Level-2 identifier. When given, each value is centered at its own group's mean
        (group-mean centering, "centering within cluster"); otherwise at the mean of all
        rows (grand-mean centering).
    name : str, optional
        Name of the new column; default ``column + "_cgm"`` (grand mean) or
        ``column + "_cwc"`` (within cluster).

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` with the centered column added.

    Raises
    ------
    KeyError
        If a column is not in ``data``.
    TypeError
        If a name is not a string or ``column`` is not numeric.
    ValueError
        If ``column`` has missing or infinite values, ``group`` is not a valid identifier
        (missing, mixed types, non-integer numbers), or ``name`` would overwrite ``column``
        or ``group``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": [1, 1, 2, 2], "x": [1.0, 3.0, 10.0, 14.0]})
    >>> center(df, "x", group="g")["x_cwc"].tolist()
    [-1.0, 1.0, -2.0, 2.0]
    >>> center(df, "x")["x_cgm"].tolist()
    [-6.0, -4.0, 3.0, 7.0]
    """
    check_numeric_data(data, [column], group)
    default = f"{column}_cgm" if group is None else f"{column}_cwc"
    name = check_new_column(name, default, {"centred": column, "group": group})
    out = data.copy()
    if group is None:
        out[name] = out[column] - out[column].mean()
    else:
        means = out.groupby(group, sort=False, observed=True)[column].transform("mean")
        out[name] = out[column] - means
    return out


def add_group_mean(
    data: pd.DataFrame, column: str, group: str, *, name: str | None = None
) -> pd.DataFrame:
    """Attach each row's group mean of ``column`` (a level-2 variable built from level 1).

    Returns a copy of ``data`` with the new column (default name ``column + "_mean"``); the
    checks and errors are those of :func:`center`.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": [1, 1, 2], "x": [1.0, 3.0, 5.0]})
    >>> add_group_mean(df, "x", "g")["x_mean"].tolist()
    [2.0, 2.0, 5.0]
    """
    from mlm_lessons._checks import check_name

    check_name(group, "group")
    check_numeric_data(data, [column], group)
    name = check_new_column(name, f"{column}_mean", {"averaged": column, "group": group})
    out = data.copy()
    out[name] = out.groupby(group, sort=False, observed=True)[column].transform("mean")
    return out


def group_means(data: pd.DataFrame, columns: Sequence[str] | str, group: str) -> pd.DataFrame:
    """One row per group: its size and the mean of each column.

    Returns
    -------
    pandas.DataFrame
        Columns ``group`` (named as in ``data``), ``n`` and one mean per column, in order
        of first appearance of the groups.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": ["a", "a", "b"], "y": [1.0, 3.0, 5.0]})
    >>> group_means(df, "y", "g")
       g  n    y
    0  a  2  2.0
    1  b  1  5.0
    """
    from mlm_lessons._checks import check_name

    check_name(group, "group")
    cols = check_name_list(columns, "columns", allow_empty=False)
    check_numeric_data(data, cols, group)
    grouped = data.groupby(group, sort=False, observed=True)
    out = grouped[cols].mean()
    out.insert(0, "n", grouped.size())
    return out.reset_index()
