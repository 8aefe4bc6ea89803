"""Within-group, between-group and contextual effects of a level-1 predictor.

A level-1 predictor :math:`x_{ij}` varies both within and between groups. Splitting it into
the group-mean-centred part :math:`x_{ij} - \\bar x_{\\cdot j}` and the group mean
:math:`\\bar x_{\\cdot j}` gives each source of variation its own slope.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlm_lessons._checks import (
    check_axes,
    check_conf_level,
    check_count,
    check_distinct,
    check_frame,
    check_groups,
    check_label,
    check_level2_constant,
    check_method,
    check_name_list,
    check_names,
    check_not_in,
    check_numeric_columns,
    check_seed,
    check_varies_within,
)
from mlm_lessons.models import _wald_table, fit_mixed

__all__ = ["plot_within_between", "within_between"]


def within_between(
    data: pd.DataFrame,
    outcome: str,
    predictor: str,
    group: str,
    *,
    group_mean: str | None = None,
    covariates: Sequence[str] = (),
    method: str = "REML",
    conf_level: float = 0.95,
) -> pd.DataFrame:
    r"""Within, between and contextual effects of a level-1 predictor, with standard errors.

    Fits the random-intercept model

    .. math:: y_{ij} = \gamma_{00} + \gamma_W (x_{ij} - \bar x_{\cdot j})
              + \gamma_B \bar m_j + \dots + u_{0j} + \varepsilon_{ij}

    and reports :math:`\gamma_W` (within), :math:`\gamma_B` (between) and the contextual
    effect :math:`\gamma_B - \gamma_W`.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per level-1 unit. Not modified.
    outcome, predictor, group : str
        Column names of the outcome, the level-1 predictor and the level-2 identifier.
    group_mean : str, optional
        Column holding a group-level mean :math:`m_j` to use as the between-group
        predictor (e.g. one computed from a larger sample). Default: the sample mean of
        ``predictor`` in each group, which makes the within and between parts orthogonal.
    covariates : sequence of str, default ()
        Further fixed effects (column names or patsy terms) added to the model.
    method : {"REML", "ML"}, default "REML"
    conf_level : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        Rows ``within``, ``between``, ``contextual``; columns ``effect, term, estimate,
        std_error, statistic, p_value, ci_low, ci_high`` (``term`` names the model
        coefficient, or ``between - within``). Wald z statistics and intervals.

    Raises
    ------
    KeyError
        If a column is not in ``data``.
    TypeError
        If a name is not a string, or the outcome, the predictor or ``group_mean`` is not
        numeric.
    ValueError
        If a used column has missing or infinite values; two roles name the same column
        (or ``covariates`` repeat one); the predictor is constant within every group (a
        level-2 variable has no within-group effect); ``group_mean`` varies within a group;
        every group has one row; or the model cannot be fitted (see
        :func:`~mlm_lessons.fit_mixed`).

    Notes
    -----
    With the sample group mean, the model with :math:`x_{ij}` in place of the centred
    predictor is the same model re-parameterised: its coefficient of :math:`x_{ij}` is
    :math:`\gamma_W` and its coefficient of :math:`\bar x_{\cdot j}` is the contextual
    effect :math:`\gamma_B - \gamma_W` (Raudenbush and Bryk 2002, ch. 5). Its standard
    error is :math:`\sqrt{v_{BB} + v_{WW} - 2 v_{BW}}` from the covariance matrix of the
    estimates; it equals the standard error of that direct fit. Validated against lme4
    (``tests/reference``: ``hsb_contextual`` and ``hsb_contextual_ses``).

    References
    ----------
    Raudenbush, S. W. and Bryk, A. S. (2002). *Hierarchical Linear Models*, 2nd ed.
    Sage.

    Enders, C. K. and Tofighi, D. (2007). Centering predictor variables in cross-sectional
    multilevel models: a new look at an old issue. *Psychological Methods* 12(2), 121-138.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> wb = mlm.within_between(hsb, "mathach", "ses", "school")
    >>> wb[["effect", "estimate", "std_error"]].round(3)
           effect  estimate  std_error
    0      within     2.191      0.109
    1     between     5.866      0.362
    2  contextual     3.675      0.378
    """
    fit, within_name, mean_name = _fit_within_between(
        data, outcome, predictor, group, group_mean, covariates, method, conf_level
    )
    est = fit.params
    cov = fit.vcov()
    w, b = est[within_name], est[mean_name]
    v = np.array(
        [
            cov.loc[within_name, within_name],
            cov.loc[mean_name, mean_name],
            cov.loc[within_name, within_name]
            + cov.loc[mean_name, mean_name]
            - 2 * cov.loc[within_name, mean_name],
        ]
    )
    estimate = np.array([w, b, b - w])
    between_term = group_mean if group_mean is not None else f"mean({predictor})"
    terms = [f"{predictor} - mean({predictor})", between_term, "between - within"]
    table = _wald_table(terms, estimate, np.sqrt(v), conf_level)
    table.insert(0, "effect", ["within", "between", "contextual"])
    return table


def _fit_within_between(
    data, outcome, predictor, group, group_mean, covariates, method, conf_level
):
    """Fit ``outcome ~ (x - group mean) + group mean + covariates`` with a random intercept."""
    check_frame(data)
    check_names(outcome=outcome, predictor=predictor, group=group)
    if group_mean is not None:
        check_names(group_mean=group_mean)
    check_distinct(outcome=outcome, predictor=predictor, group=group, group_mean=group_mean)
    check_method(method)
    check_conf_level(conf_level)
    covariates = check_name_list(covariates, "covariates")
    for name, role in ((predictor, "predictor"), (outcome, "outcome"), (group, "group column")):
        check_not_in(name, role, covariates, "covariates")
    check_numeric_columns(data, [outcome], role="outcome")
    check_numeric_columns(data, [predictor], role="predictor")
    check_groups(data, group, min_size=2)
    check_varies_within(data, predictor, group, role="predictor")
    work = data.copy()
    base = f"{predictor}__"
    within_name, mean_name = f"{base}within", f"{base}mean"
    means = work.groupby(group, sort=False, observed=True)[predictor].transform("mean")
    work[within_name] = work[predictor] - means
    if group_mean is None:
        work[mean_name] = means
    else:
        check_numeric_columns(data, [group_mean], role="group_mean column")
        check_level2_constant(
            data, [group_mean], group, role="group_mean column",
            advice="group_mean must hold one value per group (e.g. a mean from a larger "
                   "sample); leave it out to use the sample mean of each group")
        work[mean_name] = work[group_mean]
    rhs = " + ".join([within_name, mean_name, *covariates])
    fit = fit_mixed(work, f"{outcome} ~ {rhs}", group, method=method, conf_level=conf_level)
    return fit, within_name, mean_name


def plot_within_between(
    data: pd.DataFrame,
    outcome: str,
    predictor: str,
    group: str,
    *,
    n_groups: int | None = None,
    seed: int = 0,
    ax=None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    r"""Group means with the between-group line and each group's within-group line.

    Fits the model of :func:`within_between` (sample group means) and draws: each group's
    mean of ``outcome`` against its mean of ``predictor`` (points); the between-group line
    :math:`\hat\gamma_{00} + \hat\gamma_B \bar x` (bold); and, over each group's observed
    range of ``predictor``, its fitted line with the within-group slope
    :math:`\hat\gamma_W` (thin), through the group's conditional fitted value at its mean.

    Parameters
    ----------
    data : pandas.DataFrame
    outcome, predictor, group : str
    n_groups : int, optional
        Number of within-group lines drawn (a seeded random sample); all when omitted.
        Every group mean is drawn.
    seed : int, default 0
    ax : matplotlib.axes.Axes, optional
    xlabel, ylabel : str, optional
        Axis labels (default: the column names).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    KeyError, TypeError, ValueError
        As :func:`within_between`; ``ValueError`` also for a bad ``n_groups``.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> ax = mlm.plot_within_between(mlm.load_dataset("hsb"), "mathach", "ses", "school",
    ...                              n_groups=20)
    >>> len(ax.lines)  # 20 within-group lines and the between line
    21
    """
    from mlm_lessons.plots import PALETTE, _axes, _sample_groups

    check_count(n_groups, "n_groups", allow_none=True)
    check_seed(seed)
    check_axes(ax)
    check_label(xlabel, "xlabel")
    check_label(ylabel, "ylabel")
    fit, within_name, mean_name = _fit_within_between(
        data, outcome, predictor, group, None, [], "REML", 0.95
    )
    work = fit.data
    gamma = fit.params
    u = fit.random_effects().set_index("group")["estimate"]
    summary = work.groupby(group, sort=False, observed=True).agg(
        x_mean=(predictor, "mean"),
        y_mean=(outcome, "mean"),
        x_min=(predictor, "min"),
        x_max=(predictor, "max"),
    )
    chosen = _sample_groups(summary.index, n_groups, seed)
    ax = _axes(ax)
    for k, g in enumerate(chosen):
        row = summary.loc[g]
        centre = gamma["Intercept"] + gamma[mean_name] * row["x_mean"] + u[g]
        xs = np.array([row["x_min"], row["x_max"]])
        ax.plot(
            xs,
            centre + gamma[within_name] * (xs - row["x_mean"]),
            color=PALETTE[1],
            lw=0.8,
            alpha=0.7,
            label="within-group lines" if k == 0 else None,
        )
    ax.scatter(
        summary["x_mean"], summary["y_mean"], s=14, color=PALETTE[0], zorder=3, label="group means"
    )
    xs = np.array([summary["x_mean"].min(), summary["x_mean"].max()])
    ax.plot(
        xs,
        gamma["Intercept"] + gamma[mean_name] * xs,
        color=PALETTE[5],
        lw=2.5,
        label="between-group line",
        zorder=4,
    )
    ax.set_xlabel(xlabel or predictor)
    ax.set_ylabel(ylabel or outcome)
    ax.legend()
    return ax
