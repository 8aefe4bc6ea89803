"""Three-level nested models (e.g. measurements within children within schools).

:func:`fit_three_level` is a front end of :func:`mlm_lessons.fit_mixed`: it checks that the
level-2 units are nested in the level-3 units and fits
``formula + (re_formula3 | level3) + (re_formula2 | level2)``. The result is a
:class:`mlm_lessons.MixedFit` like every other fit (``fit.taus[level]``,
``fit.random_effects(level=...)``, ``fit.variance_partition()``, ``fit.icc(level)``).
"""

from __future__ import annotations

import pandas as pd

from mlm_lessons._checks import (
    check_columns,
    check_conf_level,
    check_formula,
    check_frame,
    check_group_ids,
    check_method,
    check_names,
)
from mlm_lessons.models import MixedFit, fit_mixed

__all__ = ["fit_three_level"]


def _re(expr: str | None, name: str) -> str:
    if expr is None:
        return "1"
    if not isinstance(expr, str):
        raise TypeError(f"{name} must be a string such as 'year', not {type(expr).__name__}")
    return expr.strip().lstrip("~").strip() or "1"


def _plain(value):
    """A numpy scalar as the Python value, so messages read 3, not np.int64(3)."""
    return value.item() if hasattr(value, "item") else value


def check_nesting(data: pd.DataFrame, level2: str, level3: str) -> None:
    """``ValueError`` unless every ``level2`` unit lies in one ``level3`` unit."""
    if level2 == level3:
        raise ValueError(f"level2 and level3 are the same column ({level2!r}); pass the "
                         f"column of the level-2 units and that of the level-3 units")
    n_parents = data.groupby(level2, sort=False, observed=True)[level3].nunique()
    crossed = n_parents[n_parents > 1]
    if len(crossed) == 0:
        return
    n_children = data.groupby(level3, sort=False, observed=True)[level2].nunique()
    if (n_children <= 1).all() and data[level3].nunique() > data[level2].nunique():
        raise ValueError(
            f"the levels look swapped: every {level3!r} unit lies within one {level2!r} unit; "
            f"level2 is the lower level (e.g. children), level3 the higher (e.g. schools)"
        )
    example = _plain(crossed.index[0])
    parents = [_plain(v) for v in data.loc[data[level2] == example, level3].unique()[:3]]
    raise ValueError(
        f"{len(crossed)} {level2!r} unit(s) appear in more than one {level3!r} unit (e.g. "
        f"{example!r} in {', '.join(map(repr, parents))}), so the levels are not nested. If "
        f"the labels of {level2!r} restart within each {level3!r} unit, make them unique "
        f"(e.g. data[{level3!r}].astype(str) + ':' + data[{level2!r}].astype(str)) or write "
        f"(1 | {level3}/{level2}) with fit_mixed; if the units really belong to several "
        f"{level3!r} units, the factors are crossed: fit_mixed(data, '... + (1 | {level2}) + "
        f"(1 | {level3})')"
    )


def fit_three_level(
    data: pd.DataFrame,
    formula: str,
    level2: str,
    level3: str,
    *,
    re_formula2: str | None = None,
    re_formula3: str | None = None,
    method: str = "REML",
    conf_level: float = 0.95,
) -> MixedFit:
    r"""Fit a three-level nested linear mixed model by REML or ML.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per level-1 unit.
    formula : str
        Fixed part, ``"y ~ x + z"``.
    level2, level3 : str
        Identifiers of the level-2 units (e.g. children) and of the level-3 units they are
        nested in (e.g. schools). Level-2 identifiers must be unique across level-3 units.
    re_formula2, re_formula3 : str, optional
        Random part at each level (``None`` or ``"1"``: random intercept; ``"year"``: random
        intercept and slope of ``year``, correlated). The levels are independent.
    method : {"REML", "ML"}
    conf_level : float, default 0.95

    Returns
    -------
    MixedFit

    Raises
    ------
    KeyError, TypeError, ValueError
        As :func:`mlm_lessons.fit_mixed`; ``ValueError`` also when a level-2 unit appears
        in more than one level-3 unit (labels that restart within level 3, or crossed
        factors: the message says which fix applies), when the levels are swapped or the
        same column.

    Notes
    -----
    The model is :math:`y_{ijk} = x_{ijk}'\gamma + z_{ijk}'u_{jk} + w_{ijk}'v_k +
    \varepsilon_{ijk}` with :math:`u_{jk} \sim N(0, T_2)`, :math:`v_k \sim N(0, T_3)`,
    :math:`\varepsilon \sim N(0, \sigma^2)`, all independent. Validated against lme4's
    ``lmer(y ~ ... + (re2 | level2) + (re3 | level3))`` on ``egsingle``
    (``tests/test_threelevel.py``) and on other nested data sets.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> eg = mlm.load_dataset("egsingle")
    >>> fit = mlm.fit_three_level(eg, "math ~ year", "childid", "schoolid")
    >>> fit.variance_partition().round(3)
          level  variance  share
    0  schoolid     0.187  0.155
    1   childid     0.670  0.556
    2  residual     0.347  0.288
    """
    check_frame(data)
    check_names(level2=level2, level3=level3)
    check_method(method)
    check_conf_level(conf_level)
    check_formula(formula)
    if "|" in formula:
        raise ValueError("formula is the fixed part only ('y ~ x'); the random parts are "
                         "re_formula2= and re_formula3=")
    check_columns(data, [level2, level3], role="level column")
    check_group_ids(data, level2)
    check_group_ids(data, level3)
    check_nesting(data, level2, level3)
    re2, re3 = _re(re_formula2, "re_formula2"), _re(re_formula3, "re_formula3")
    full = f"{formula} + ({re3} | {level3}) + ({re2} | {level2})"
    return fit_mixed(data, full, method=method, conf_level=conf_level)
