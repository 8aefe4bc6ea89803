"""Checking a fitted two-level model: residuals, random effects, influential groups.

The level-1 residuals and the level-2 random effects (:meth:`MixedFit.random_effects`) are
the two sets of estimated errors of a two-level model; each is checked for normality, for
constant variance and for outliers. Leaving out one group at a time and refitting shows
which groups drive the fixed effects.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mlm_lessons._checks import (
    MLMWarning,
    _plain,
    check_axes,
    check_count,
    check_fit,
    check_label,
    check_name,
    check_name_list,
    check_numeric_columns,
    check_real_array,
    check_single_factor,
    warn,
)
from mlm_lessons._display import ResultDisplay
from mlm_lessons._threads import single_blas_thread
from mlm_lessons.models import MixedFit

__all__ = [
    "GroupInfluence",
    "group_residual_sd",
    "influence_groups",
    "plot_qq",
    "plot_residuals",
    "residual_table",
]


def _check_fit(fit: object, what: str = "this diagnostic") -> MixedFit:
    fit = check_fit(fit, hint="(from mlm.fit_mixed or a fit_* stage function)")
    check_single_factor(fit, what)
    return fit


def residual_table(fit: MixedFit) -> pd.DataFrame:
    r"""Row-level fitted values and level-1 residuals of a fitted model.

    Parameters
    ----------
    fit : MixedFit
        A fitted model.

    Returns
    -------
    pandas.DataFrame
        Indexed like the fitted data, with columns ``group``, ``observed``, ``fitted``
        (conditional on the group's BLUPs), ``residual`` (observed minus fitted) and
        ``std_residual`` (residual divided by :math:`\hat\sigma`).

    Raises
    ------
    TypeError
        If ``fit`` is not a :class:`~mlm_lessons.MixedFit`.

    Notes
    -----
    The level-1 residual of row :math:`i` in group :math:`j` is
    :math:`\hat\varepsilon_{ij} = y_{ij} - x_{ij}'\hat\gamma - z_{ij}'\hat u_j`, lme4's
    ``residuals(m)``; ``std_residual`` is :math:`\hat\varepsilon_{ij}/\hat\sigma`, lme4's
    ``residuals(m, scaled = TRUE)``. Because the BLUPs are shrunken, these residuals are
    slightly correlated within a group and their variance is a little below
    :math:`\sigma^2`; for checking the shape of the distribution that does not matter.
    Validated in ``tests/test_diagnostics.py``: fitted plus residual reproduces the
    outcome, and the fitted values of a random-intercept model equal
    :math:`x'\hat\gamma + \hat u_j` computed from the BLUPs.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> fit = mlm.fit_mixed(hsb, "mathach ~ ses", "school")
    >>> res = mlm.residual_table(fit)
    >>> list(res.columns)
    ['group', 'observed', 'fitted', 'residual', 'std_residual']
    >>> float(round(res["std_residual"].std(), 2))
    0.99
    """
    fit = _check_fit(fit, "residual_table")
    data = fit.data
    fitted = fit.predict(conditional=True)
    observed = fit.matrices().y
    resid = observed - fitted
    return pd.DataFrame(
        {
            "group": data[fit.group].to_numpy(),
            "observed": observed.to_numpy(),
            "fitted": fitted.to_numpy(),
            "residual": resid.to_numpy(),
            "std_residual": resid.to_numpy() / np.sqrt(fit.sigma2),
        },
        index=data.index,
    )


def group_residual_sd(fit: MixedFit) -> pd.DataFrame:
    r"""Size and standard deviation of the level-1 residuals in each group.

    A model with one level-1 variance :math:`\sigma^2` predicts the same residual spread
    in every group. Plot ``residual_sd`` against a level-2 variable (size, sector) to
    see whether it depends on it.

    Parameters
    ----------
    fit : MixedFit

    Returns
    -------
    pandas.DataFrame
        One row per group, in the order of the fitted data: ``group``, ``n``,
        ``residual_mean`` and ``residual_sd`` (denominator :math:`n_j - 1`; NaN for a
        group of one row).

    Raises
    ------
    TypeError
        If ``fit`` is not a :class:`~mlm_lessons.MixedFit`.

    Notes
    -----
    Under the model, :math:`(n_j - 1) s_j^2 / \sigma^2` is roughly
    :math:`\chi^2_{n_j - 1}`, so the :math:`s_j` of groups of 40 rows scatter about
    :math:`\pm 11\%` around :math:`\hat\sigma`. Levene's or Bartlett's test of the
    residuals by group formalise the comparison (Snijders and Bosker 2012, sec. 10.4).

    References
    ----------
    Snijders, T. A. B. and Bosker, R. J. (2012). *Multilevel Analysis*, 2nd ed. Sage.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> fit = mlm.fit_null(mlm.load_dataset("hsb"), "mathach", "school")
    >>> sd = mlm.group_residual_sd(fit)
    >>> sd.head(3).round(2)
      group   n  residual_mean  residual_sd
    0  1224  47          -0.26         7.59
    1  1288  25           0.13         7.02
    2  1296  48          -0.43         5.35
    """
    res = residual_table(_check_fit(fit, "group_residual_sd"))
    grouped = res.groupby("group", sort=False, observed=True)["residual"]
    out = pd.DataFrame(
        {
            "n": grouped.size(),
            "residual_mean": grouped.mean(),
            "residual_sd": grouped.std(ddof=1),
        }
    )
    out.index.name = "group"
    return out.reset_index()


@dataclass(frozen=True)
class GroupInfluence(ResultDisplay):
    """How much each group moves the fixed effects (the result of :func:`influence_groups`).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per group left out: ``group``, ``n``, ``cooks_d``, ``max_abs_std_change``
        (largest ``|std_change|`` over the terms), ``term_max`` (the term where it occurs)
        and ``converged`` (of the refit without the group).
    changes : pandas.DataFrame
        Long format, one row per group and term: ``group``, ``term``, ``estimate`` (all
        groups), ``estimate_without`` (group left out), ``change`` (``estimate -
        estimate_without``) and ``std_change`` (``change`` divided by the full fit's
        standard error, a DFBETAS-like measure).
    terms : tuple of str
        The fixed effects that ``cooks_d`` summarises.
    method : str
        "REML" or "ML", the criterion of the fit and of every refit.
    """

    table: pd.DataFrame
    changes: pd.DataFrame
    terms: tuple[str, ...]
    method: str


@single_blas_thread
def influence_groups(
    fit: MixedFit,
    *,
    terms: Sequence[str] | None = None,
    groups: Sequence[object] | None = None,
) -> GroupInfluence:
    r"""Leave each group out, refit, and measure the change in the fixed effects.

    Parameters
    ----------
    fit : MixedFit
        The model fitted to all groups.
    terms : sequence of str, optional
        Fixed effects that Cook's distance summarises (default: all). ``changes`` lists
        these terms only.
    groups : sequence, optional
        Groups to leave out, one at a time (default: every group).

    Returns
    -------
    GroupInfluence
        ``table`` (one row per group, with Cook's distance) and ``changes`` (one row per
        group and term).

    Raises
    ------
    TypeError
        If ``fit`` is not a :class:`~mlm_lessons.MixedFit`.
    KeyError
        If a term is not a fixed effect of ``fit`` or a group is not in its data.
    ValueError
        If ``terms`` or ``groups`` is empty, or a group is listed twice.

    Warns
    -----
    MLMWarning
        Once, naming the groups whose refit is on the boundary (a variance at zero or a
        correlation at +-1) or did not converge.

    Notes
    -----
    With :math:`\hat\gamma` the estimates from all groups, :math:`\hat\gamma_{(j)}` those
    without group :math:`j` (variance components re-estimated too) and
    :math:`\hat V = \widehat{\mathrm{Var}}(\hat\gamma)` from the full fit, restricted to
    the :math:`p` chosen terms, the group's Cook's distance is

    .. math:: D_j = (\hat\gamma - \hat\gamma_{(j)})' \hat V^{-1}
              (\hat\gamma - \hat\gamma_{(j)}) / p ,

    the measure of Christensen, Pearson and Johnson (1992) and of HLMdiag's
    ``cooks.distance`` computed by full refits rather than a one-step approximation. Each
    refit maximises the same (RE)ML criterion on the data without group :math:`j`, built from
    the full fit's per-group cross-products minus the group's share and started at the full
    fit's variance parameters, so it reaches the optimum of :func:`~mlm_lessons.fit_mixed`
    on the reduced data in a fraction of the time.
    :math:`D_j` well above the others (a common rule of thumb: above :math:`4/J`) marks a
    group worth a closer look, not one to drop. Validated in
    ``tests/test_diagnostics.py`` against the closed form of balanced data (where the
    estimates are ordinary least squares on group means and within groups) and on
    simulated data with a planted outlying group.

    References
    ----------
    Christensen, R., Pearson, L. M. and Johnson, W. (1992). Case-deletion diagnostics for
    mixed models. *Technometrics* 34(1), 38-45.

    Loy, A. and Hofmann, H. (2014). HLMdiag: A suite of diagnostics for hierarchical linear
    models in R. *Journal of Statistical Software* 56(5).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> fit = mlm.fit_mixed(hsb, "mathach ~ ses", "school")
    >>> infl = mlm.influence_groups(fit, groups=["1224", "1288", "1296"])
    >>> infl.table[["group", "n", "cooks_d"]].round(4)
      group   n  cooks_d
    0  1224  47   0.0026
    1  1288  25   0.0010
    2  1296  48   0.0120
    """
    fit = _check_fit(fit, "influence_groups")
    names = list(fit.fixed["term"])
    if terms is None:
        chosen = names
    else:
        chosen = check_name_list(terms, "terms")
        if not chosen:
            raise ValueError("terms is empty; pass fixed-effect names or leave it out")
        unknown = [t for t in chosen if t not in names]
        if unknown:
            raise KeyError(
                f"term(s) {unknown} are not fixed effects of the fit; available: {names}"
            )
    all_groups = pd.Index(pd.unique(fit.matrices().groups[fit.group]))
    if groups is None:
        leave_out = list(all_groups)
    else:
        if isinstance(groups, str) or not isinstance(groups, Sequence | np.ndarray | pd.Index
                                                         | pd.Series):
            raise TypeError(f"groups must be a list of group identifiers, not "
                            f"{type(groups).__name__} {groups!r}")
        leave_out = list(groups)
        if not leave_out:
            raise ValueError("groups is empty; pass group identifiers or leave it out")
        missing = [g for g in leave_out if g not in all_groups]
        if missing:
            shown = ", ".join(repr(_plain(v)) for v in all_groups[:3])
            raise KeyError(
                f"group(s) {[_plain(m) for m in missing[:5]]} not in the fitted data's "
                f"{fit.group!r} column (its groups are {shown}, ...); labels must match in "
                f"type too (e.g. '1224', not 1224)"
            )
        if len(set(leave_out)) != len(leave_out):
            raise ValueError("groups lists a group more than once")

    sizes = fit.matrices().groups[fit.group].value_counts(sort=False)
    beta = fit.params[chosen].to_numpy()
    cols = [names.index(t) for t in chosen]
    se = fit.fixed.set_index("term").loc[chosen, "std_error"].to_numpy()
    v_inv = np.linalg.inv(fit.vcov().loc[chosen, chosen].to_numpy())
    rows, change_rows, troubled = [], [], []
    for g, (without_all, converged, degenerate) in zip(leave_out, _leave_one_out(fit, leave_out)):
        if degenerate or not converged:
            troubled.append(g)
        without = without_all[cols]
        diff = beta - without
        std = diff / se
        k = int(np.argmax(np.abs(std)))
        rows.append(
            (
                g,
                int(sizes[g]),
                float(diff @ v_inv @ diff / len(chosen)),
                float(abs(std[k])),
                chosen[k],
                converged,
            )
        )
        change_rows.extend(zip([g] * len(chosen), chosen, beta, without, diff, std))
    table = pd.DataFrame(
        rows,
        columns=["group", "n", "cooks_d", "max_abs_std_change", "term_max", "converged"],
    )
    changes = pd.DataFrame(
        change_rows,
        columns=["group", "term", "estimate", "estimate_without", "change", "std_change"],
    )
    if troubled:
        warn(
            f"refitting without group(s) {troubled[:10]} gave a boundary or non-converged "
            f"fit; their changes may reflect a degenerate refit: refit those with fit_mixed",
            MLMWarning,
        )
    return GroupInfluence(table=table, changes=changes, terms=tuple(chosen), method=fit.method)


def _leave_one_out(fit: MixedFit, leave_out: list):
    """Yield ``(beta without the group, converged, degenerate)`` for each group left out.

    Each refit is :meth:`MixedFit.drop_groups`: the fit's own design without the group's
    rows, started at the full fit's variance parameters.
    """
    for g in leave_out:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MLMWarning)
            new = fit.drop_groups([g])
        yield new.params.to_numpy(), bool(new.converged), bool(new.singular)


# --- plots ------------------------------------------------------------------------------


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    return ax


def _colours() -> list[str]:
    from mlm_lessons.plots import PALETTE

    return list(PALETTE)


def plot_qq(values, *, ax=None, label: str = "Sample quantile"):
    """Normal Q-Q plot: ordered values against standard normal quantiles, with a fitted line.

    Parameters
    ----------
    values : array-like
        Residuals or random effects (NaNs are dropped).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when omitted.
    label : str, default "Sample quantile"
        The y-axis label (say what the values are, with units).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If fewer than three values remain after dropping NaNs.
    TypeError
        If the values are not numeric.

    Notes
    -----
    The points and the least-squares line are those of :func:`scipy.stats.probplot`
    (Filliben's plotting positions), so the line's slope estimates the standard
    deviation. Points that bend away from the line at both ends mean heavier tails than
    the normal distribution.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> fit = mlm.fit_null(mlm.load_dataset("hsb"), "mathach", "school")
    >>> ax = mlm.plot_qq(mlm.residual_table(fit)["residual"], label="Residual (points)")
    >>> len(ax.lines)
    2
    """
    check_axes(ax)
    check_label(label, "label")
    x = pd.Series(values)
    if not pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x):
        raise TypeError(f"values must be numeric, not dtype {x.dtype}")
    x = check_real_array(x.dropna().to_numpy(dtype=float), "values", allow_empty=True,
                         what="finite numbers")
    if len(x) < 3:
        raise ValueError(f"a Q-Q plot needs at least 3 values, got {len(x)}")
    (osm, osr), (slope, intercept, _) = stats.probplot(x, dist="norm")
    colours = _colours()
    ax = _axes(ax)
    ax.plot(osm, osr, "o", ms=3, alpha=0.5, color=colours[0], label="observed")
    ends = np.array([osm[0], osm[-1]])
    ax.plot(ends, intercept + slope * ends, "-", color=colours[1], lw=1.5, label="normal reference")
    ax.set_xlabel("Standard normal quantile")
    ax.set_ylabel(label)
    return ax


def plot_residuals(fit: MixedFit, *, against: str = "fitted", ax=None, bins: int = 10):
    """Level-1 residuals against the fitted values or a numeric column, with binned means.

    Parameters
    ----------
    fit : MixedFit
    against : str, default "fitted"
        ``"fitted"`` for the conditional fitted values, or the name of a numeric column of
        the fitted data (a predictor, or one left out of the model).
    ax : matplotlib.axes.Axes, optional
    bins : int, default 10
        Number of equal-count bins of the x variable whose mean residual is drawn as a
        line; a pattern means the mean structure is wrong.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        If ``fit`` is not a MixedFit or the column is not numeric.
    KeyError
        If ``against`` is neither "fitted" nor a column of the fitted data.
    ValueError
        If ``bins`` is not an integer of at least 2.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> fit = mlm.fit_mixed(mlm.load_dataset("hsb"), "mathach ~ ses", "school")
    >>> ax = mlm.plot_residuals(fit, against="ses")
    >>> ax.get_xlabel()
    'ses'
    """
    fit = _check_fit(fit, "plot_residuals")
    check_name(against, "against")
    check_axes(ax)
    bins = check_count(bins, "bins", minimum=2)
    res = residual_table(fit)
    if against == "fitted":
        x = res["fitted"]
        xlabel = "Fitted value (conditional on the group)"
    else:
        data = fit.data
        check_numeric_columns(data, [against], role="column")
        x = data[against].astype(float)
        xlabel = against
    colours = _colours()
    ax = _axes(ax)
    ax.scatter(x, res["residual"], s=4, alpha=0.25, color=colours[0], label="rows")
    cut = pd.qcut(x, q=bins, duplicates="drop")
    binned = res["residual"].groupby(cut, observed=True).mean()
    centres = x.groupby(cut, observed=True).mean()
    ax.plot(
        centres.to_numpy(),
        binned.to_numpy(),
        "o-",
        color=colours[1],
        lw=2,
        label="mean residual by bin",
    )
    ax.axhline(0, color="0.3", lw=1, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Level-1 residual")
    return ax
