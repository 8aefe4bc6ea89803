"""Describing two-level data: cluster sizes and variables at each level.

Every function returns a new tidy data frame; the input is never modified.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlm_lessons._checks import (
    check_frame,
    check_groups,
    check_level2_constant,
    check_name_list,
    check_numeric_columns,
)

__all__ = ["cluster_sizes", "variable_levels", "describe_levels"]


def _names(columns: Sequence[str] | str | None, what: str) -> list[str]:
    return check_name_list(columns, what, allow_none=True)


def _check_variables(data: pd.DataFrame, columns: list[str], group: str) -> None:
    if group in columns:
        raise ValueError(
            f"the group column {group!r} cannot also be described as a variable; "
            f"remove it from the list"
        )
    check_numeric_columns(data, columns)


def cluster_sizes(data: pd.DataFrame, group: str) -> pd.DataFrame:
    """How many level-1 units each group holds, summarised in one row.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per level-1 unit.
    group : str
        Level-2 identifier.

    Returns
    -------
    pandas.DataFrame
        One row with ``n_obs`` (N), ``n_groups`` (J), the ``min``, ``q1``, ``median``,
        ``mean``, ``q3`` and ``max`` of the group sizes :math:`n_j`, and ``n0``.

    Raises
    ------
    KeyError
        If ``group`` is not a column.
    TypeError
        If ``group`` is not a string or is a boolean column.
    ValueError
        If ``group`` has missing values, mixes value types or holds non-integer numbers
        (see :func:`mlm_lessons.fit_mixed`), or there is only one group.

    Notes
    -----
    Quartiles use linear interpolation (pandas' default, R's type 7).
    ``n0`` is the "typical" group size of the one-way ANOVA estimator of the
    between-group variance,

    .. math:: n_0 = \\frac{1}{J - 1}\\left(N - \\frac{\\sum_j n_j^2}{N}\\right),

    which equals :math:`n` for balanced data and is a little below the mean size otherwise.
    Validated against R (``lme4_reference.R``): HSB has N = 7185, J = 160, sizes 14 to 67,
    mean 44.906 and :math:`n_0` = 44.887.

    References
    ----------
    Snijders, T. A. B. and Bosker, R. J. (2012). *Multilevel Analysis*, 2nd ed., sec. 3.3.1.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> sizes = mlm.cluster_sizes(mlm.load_dataset("hsb"), "school")
    >>> sizes[["n_obs", "n_groups", "min", "max"]].to_numpy().tolist()
    [[7185, 160, 14, 67]]
    >>> round(float(sizes["n0"].iloc[0]), 3)
    44.887
    """
    check_frame(data)
    sizes = check_groups(data, group, min_groups=2).to_numpy()
    n_obs, n_groups = int(sizes.sum()), len(sizes)
    q1, median, q3 = np.quantile(sizes, [0.25, 0.5, 0.75])
    n0 = (n_obs - float(np.sum(sizes.astype(float) ** 2)) / n_obs) / (n_groups - 1)
    return pd.DataFrame(
        {
            "n_obs": [n_obs],
            "n_groups": [n_groups],
            "min": [int(sizes.min())],
            "q1": [float(q1)],
            "median": [float(median)],
            "mean": [n_obs / n_groups],
            "q3": [float(q3)],
            "max": [int(sizes.max())],
            "n0": [n0],
        }
    )


def variable_levels(
    data: pd.DataFrame, group: str, *, columns: Sequence[str] | str | None = None
) -> pd.DataFrame:
    """Classify variables as level 1 or level 2 and split their spread within and between.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format.
    group : str
        Level-2 identifier.
    columns : str or list of str, optional
        Numeric columns to describe; default every numeric (or boolean) column except
        ``group``.

    Returns
    -------
    pandas.DataFrame
        One row per column: ``column``, ``level`` ("level 2" if the value is constant
        within every group, else "level 1"), ``within_sd``, ``between_sd`` and
        ``share_between``.

    Raises
    ------
    KeyError
        If a column is missing.
    TypeError
        If a requested column is not numeric.
    ValueError
        If a column has missing values, or ``columns`` is empty.

    Notes
    -----
    With :math:`\\bar x_j` the mean of group :math:`j` and :math:`\\bar x` the overall mean,

    .. math::

        s_\\text{within}^2 = \\frac{\\sum_j \\sum_i (x_{ij} - \\bar x_j)^2}{N - J}, \\qquad
        s_\\text{between}^2 = \\frac{\\sum_j (\\bar x_j - \\bar x_{\\cdot})^2}{J - 1},

        \\text{share\\_between} = \\frac{\\sum_j n_j (\\bar x_j - \\bar x)^2}
            {\\sum_j \\sum_i (x_{ij} - \\bar x)^2},

    where :math:`\\bar x_{\\cdot}` is the mean of the group means. ``share_between`` is the
    correlation ratio :math:`\\eta^2` (the between-group sum of squares over the total): a
    description of the sample, not an estimate of the intra-class correlation, which it
    overstates because group means also vary by chance. For a level-2 variable
    ``within_sd`` is 0 and ``share_between`` is 1. Validated against R's
    ``aov(mathach ~ factor(school))`` on HSB (sums of squares and mean squares).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": [1, 1, 2, 2], "x": [1.0, 3.0, 5.0, 7.0], "z": [0, 0, 1, 1]})
    >>> variable_levels(df, "g")
      column    level  within_sd  between_sd  share_between
    0      x  level 1   1.414214    2.828427            0.8
    1      z  level 2   0.000000    0.707107            1.0
    """
    check_frame(data)
    check_groups(data, group, min_groups=2, min_size=2)
    if columns is None:
        cols = [
            c
            for c in data.columns
            if c != group
            and (pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c]))
        ]
    else:
        cols = _names(columns, "columns")
    if not cols:
        raise ValueError("no columns to describe: pass columns= with numeric column names")
    _check_variables(data, cols, group)
    codes, uniques = pd.factorize(data[group])
    J, N = len(uniques), len(data)
    n_j = np.bincount(codes, minlength=J).astype(float)
    rows = []
    for c in cols:
        x = data[c].to_numpy(dtype=float)
        means = np.bincount(codes, weights=x, minlength=J) / n_j
        dev = x - means[codes]
        ss_within = float(dev @ dev)
        constant = bool(np.all(np.abs(dev) <= 1e-12 * max(1.0, float(np.max(np.abs(x))))))
        total = x - x.mean()
        ss_total = float(total @ total)
        if constant:
            within_sd, share = 0.0, 1.0 if ss_total > 0 else np.nan
        else:
            within_sd = np.sqrt(ss_within / (N - J))
            share = 1.0 - ss_within / ss_total
        level = "level 2" if constant else "level 1"
        rows.append((c, level, within_sd, float(np.std(means, ddof=1)), share))
    return pd.DataFrame(
        rows, columns=["column", "level", "within_sd", "between_sd", "share_between"]
    )


def describe_levels(
    data: pd.DataFrame,
    group: str,
    *,
    level1: Sequence[str] | str = (),
    level2: Sequence[str] | str = (),
) -> pd.DataFrame:
    """Summary statistics of each variable at its own level.

    Level-1 variables are summarised over the level-1 rows; level-2 variables over the
    groups, one value per group, so that large groups do not count more than small ones.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, level-2 variables repeated on every row of their group.
    group : str
        Level-2 identifier.
    level1, level2 : str or list of str
        Numeric columns measured on level-1 and on level-2 units.

    Returns
    -------
    pandas.DataFrame
        One row per variable, level-1 variables first: ``variable``, ``level``, ``n``
        (rows or groups summarised), ``mean``, ``sd`` (denominator ``n - 1``), ``min``,
        ``max``.

    Raises
    ------
    KeyError
        If a column is missing.
    TypeError
        If a column is not numeric.
    ValueError
        If no variable is given, a variable is declared at both levels, or a declared
        level-2 variable varies within a group.

    Notes
    -----
    A level-2 variable's mean over groups differs from its mean over rows whenever group
    size is related to its value; the row mean weights each group by :math:`n_j`.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": [1, 1, 1, 2], "y": [1.0, 2.0, 3.0, 6.0], "z": [0, 0, 0, 1]})
    >>> describe_levels(df, "g", level1="y", level2="z")
      variable    level  n  mean        sd  min  max
    0        y  level 1  4   3.0  2.160247  1.0  6.0
    1        z  level 2  2   0.5  0.707107  0.0  1.0
    """
    check_frame(data)
    check_groups(data, group, min_groups=1)
    l1, l2 = _names(level1, "level1"), _names(level2, "level2")
    if not l1 and not l2:
        raise ValueError("give at least one variable in level1= or level2=")
    both = sorted(set(l1) & set(l2))
    if both:
        raise ValueError(f"variable(s) {both} declared in both level1 and level2; choose one")
    _check_variables(data, l1 + l2, group)
    grouped = data.groupby(group, sort=False, observed=True)
    rows = []
    for c in l1:
        rows.append((c, "level 1", data[c].astype(float)))
    if l2:
        check_level2_constant(data, l2, group)
        first = grouped[l2].first()
        for c in l2:
            rows.append((c, "level 2", first[c].astype(float)))
    out = [
        (name, level, len(v), v.mean(), v.std(ddof=1), v.min(), v.max()) for name, level, v in rows
    ]
    return pd.DataFrame(out, columns=["variable", "level", "n", "mean", "sd", "min", "max"])
