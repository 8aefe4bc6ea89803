"""Figures for two-level data and fitted mixed models (matplotlib only).

Every function draws on the Axes passed as ``ax`` (a new figure is created when ``ax`` is
None) and returns that Axes, so figures can be combined and adjusted. Colours come from the
Okabe-Ito palette :data:`PALETTE`, which stays distinguishable for the common forms of colour
blindness. Random choices (which groups to show, jitter) use ``numpy.random.default_rng(seed)``,
so a figure is the same on every run.

The course's look (font sizes, colour cycle, no top and right spines) is the rcParams dict
:data:`STYLE`; apply it once per notebook with ``plt.rcParams.update(mlm.plots.STYLE)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from scipy import stats

from mlm_lessons._checks import (
    check_axes,
    check_choice,
    check_columns,
    check_conf_level,
    check_count,
    check_distinct,
    check_fit,
    check_label,
    check_level2_constant,
    check_name,
    check_numeric,
    check_numeric_data,
    check_real_array,
    check_seed,
    check_single_factor,
)
from mlm_lessons.compare import _group_slopes

__all__ = [
    "PALETTE",
    "STYLE",
    "plot_caterpillar",
    "plot_fitted_lines",
    "plot_group_means",
    "plot_icc_curves",
    "plot_proposition",
    "plot_shrinkage",
    "plot_spaghetti",
    "plot_within_spread",
]

#: Okabe-Ito colour-blind-safe palette: orange, sky blue, bluish green, yellow, blue,
#: vermillion, reddish purple, black (Okabe & Ito 2008, "Color universal design").
PALETTE: list[str] = [
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#000000",
]

_ORANGE, _BLUE, _VERMILLION, _BLACK = PALETTE[0], PALETTE[4], PALETTE[5], PALETTE[7]
_GREY = "#7F7F7F"
# Order for categorical lines: yellow (PALETTE[3]) is too light for thin lines on white.
_CYCLE = [PALETTE[i] for i in (4, 0, 2, 5, 6, 1, 7)]

#: rcParams of the course's figures: readable font sizes, the Okabe-Ito colour cycle and
#: light axes. Apply with ``plt.rcParams.update(mlm.plots.STYLE)``.
STYLE: dict[str, object] = {
    "figure.figsize": (7.0, 4.2),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 12,
    "axes.labelsize": 12,
    "axes.titlesize": 13,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "legend.fontsize": 11,
    "legend.frameon": False,
    "axes.prop_cycle": cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "lines.linewidth": 1.5,
}


# --- helpers ---------------------------------------------------------------------------------


def _axes(ax):
    check_axes(ax)
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _sample_groups(groups: Sequence, n_groups: int | None, seed: int) -> list:
    """A seeded sample of ``n_groups`` groups (all of them when None or too many)."""
    groups = list(groups)
    n_groups = check_count(n_groups, "n_groups", allow_none=True)
    seed = check_seed(seed)
    if n_groups is None or n_groups >= len(groups):
        return groups
    rng = np.random.default_rng(seed)
    keep = set(rng.choice(len(groups), size=n_groups, replace=False).tolist())
    return [g for i, g in enumerate(groups) if i in keep]


def _group_ols(data, outcome, predictor, group) -> pd.DataFrame:
    """Per-group OLS intercept and slope (as :func:`per_group_slopes`), with the x range."""
    codes, groups = pd.factorize(data[group], sort=False)
    J = len(groups)
    x = data[predictor].to_numpy(dtype=float)
    res = _group_slopes(data[outcome].to_numpy(dtype=float), x, codes, J)
    x_min, x_max = np.full(J, np.inf), np.full(J, -np.inf)
    np.minimum.at(x_min, codes, x)
    np.maximum.at(x_max, codes, x)
    return pd.DataFrame(
        {
            "group": np.asarray(groups),
            "n": res["n"],
            "intercept": res["intercept"],
            "slope": res["slope"],
            "x_min": x_min,
            "x_max": x_max,
        }
    )


def _fit_parts(fit):
    """The data, outcome name, and group column of a MixedFit (duck-typed)."""
    check_fit(fit, hint="from mlm_lessons (e.g. mlm.fit_null(...))")
    check_single_factor(fit, "this plot")
    return fit.data, fit.outcome, fit.group


def _labels(**labels) -> None:
    for name, value in labels.items():
        check_label(value, name)


def _start(ax, n_groups=None, seed=0, **labels) -> None:
    """The checks every plot makes before drawing: axes, labels, sample size and seed."""
    check_axes(ax)
    _labels(**labels)
    check_count(n_groups, "n_groups", allow_none=True)
    check_seed(seed)


def _check_in_model(fit, predictor: str) -> None:
    """``ValueError`` unless ``predictor`` is a variable of the fit's fixed part."""
    from mlm_lessons._design import _rhs_variables
    from mlm_lessons._formula import parse_formula

    parsed = parse_formula(fit.formula)
    used = _rhs_variables(parsed.fixed)
    if predictor == fit.outcome or predictor not in used:
        what = "the outcome" if predictor == fit.outcome else "not a predictor of the model"
        raise ValueError(
            f"predictor {predictor!r} is {what} (fixed part: {parsed.fixed}), so every fitted "
            f"line against it would be flat; choose one of {', '.join(map(repr, used))}, or "
            f"refit the model with it"
        )


def _typical_row(data: pd.DataFrame) -> pd.DataFrame:
    """One row: numeric columns at their mean, the others at their most frequent value."""
    row = {}
    for c in data.columns:
        s = data[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            row[c] = [s.mean()]
        else:
            row[c] = pd.Series([s.mode().iloc[0]], dtype=s.dtype)
    return pd.DataFrame(row)


# --- describing grouped data -----------------------------------------------------------------


def plot_group_means(
    data: pd.DataFrame,
    outcome: str,
    group: str,
    *,
    order: str = "mean",
    conf_level: float = 0.95,
    ax=None,
    ylabel: str | None = None,
    xlabel: str | None = None,
):
    """Each group's mean with a t confidence interval, ordered, with the grand mean.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per level-1 unit.
    outcome, group : str
        Numeric outcome and level-2 identifier.
    order : {"mean", "size"}, default "mean"
        Sort the groups by their mean, or by their size (ties broken by the mean).
    conf_level : float, default 0.95
        Level of each group's interval ``mean +- t(n_j - 1) * sd_j / sqrt(n_j)``.
        A group with a single row gets no interval.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.
    ylabel, xlabel : str, optional
        Axis labels (give units in ``ylabel``); defaults name the columns.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    KeyError
        If a column is not in ``data``.
    ValueError
        If ``order`` is unknown, ``conf_level`` is not in (0, 1), or a column has missing
        values.

    Notes
    -----
    The dashed line is the grand mean of all level-1 values, :math:`\\bar y_{..}`. Each
    interval uses only its own group's standard deviation, so small groups get wide
    intervals: this is the picture of "no pooling".

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> ax = mlm.plot_group_means(hsb, "mathach", "school", ylabel="Mean maths score")
    >>> len(ax.containers[0].lines[0].get_xdata())
    160
    """
    check_choice(order, "order", ("mean", "size"))
    check_conf_level(conf_level)
    _start(ax, ylabel=ylabel, xlabel=xlabel)
    check_name(outcome, "outcome")
    check_numeric_data(data, [outcome], group, role="outcome")
    g = data.groupby(group, sort=True, observed=True)[outcome].agg(["size", "mean", "std"])
    g = g.sort_values(["mean"] if order == "mean" else ["size", "mean"], kind="mergesort")
    tcrit = stats.t.ppf((1 + conf_level) / 2, np.maximum(g["size"] - 1, 1))
    n = g["size"].to_numpy()
    half = np.where(n > 1, tcrit * g["std"].to_numpy(dtype=float) / np.sqrt(n), np.nan)
    ax = _axes(ax)
    x = np.arange(1, len(g) + 1)
    ax.errorbar(
        x,
        g["mean"].to_numpy(dtype=float),
        yerr=half,
        fmt="o",
        ms=3,
        color=_BLUE,
        ecolor=_BLUE,
        elinewidth=0.8,
        alpha=0.9,
        label=f"group mean, {conf_level:.0%} CI",
    )
    ax.axhline(data[outcome].mean(), color=_VERMILLION, ls="--", lw=1.5, label="grand mean")
    what = "mean" if order == "mean" else "size"
    ax.set_xlabel(xlabel or f"{group}, ordered by {what} (rank)")
    ax.set_ylabel(ylabel or f"Mean of {outcome}")
    if len(g) <= 30:
        ax.set_xticks(x, [str(i) for i in g.index], rotation=90)
    ax.legend(loc="upper left")
    return ax


def plot_within_spread(
    data: pd.DataFrame,
    outcome: str,
    group: str,
    *,
    n_groups: int | None = 20,
    seed: int = 0,
    ax=None,
    ylabel: str | None = None,
    xlabel: str | None = None,
):
    """Box plots with the raw level-1 values for a sample of groups, sorted by median.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format.
    outcome, group : str
        Numeric outcome and level-2 identifier.
    n_groups : int or None, default 20
        Number of groups drawn at random (seeded); None shows every group.
    seed : int, default 0
        Seed of the sample of groups and of the horizontal jitter of the points.
    ax : matplotlib.axes.Axes, optional
    ylabel, xlabel : str, optional

    Returns
    -------
    matplotlib.axes.Axes
        One box per group, with the group labels as tick labels.

    Raises
    ------
    KeyError, ValueError
        For a missing column, missing values or a bad ``n_groups``.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> ax = mlm.plot_within_spread(mlm.load_dataset("hsb"), "mathach", "school", n_groups=10)
    >>> len(ax.get_xticklabels())
    10
    """
    _start(ax, n_groups, seed, ylabel=ylabel, xlabel=xlabel)
    check_name(outcome, "outcome")
    check_numeric_data(data, [outcome], group, role="outcome")
    groups = _sample_groups(sorted(data[group].unique(), key=str), n_groups, seed)
    sub = data[data[group].isin(groups)]
    med = sub.groupby(group, observed=True)[outcome].median()
    order = sorted(groups, key=lambda g: (med[g], str(g)))
    values = [sub.loc[sub[group] == g, outcome].to_numpy(dtype=float) for g in order]
    ax = _axes(ax)
    pos = np.arange(1, len(order) + 1)
    ax.boxplot(
        values,
        positions=pos,
        widths=0.6,
        showfliers=False,
        patch_artist=True,
        boxprops={"facecolor": "white", "edgecolor": _BLACK},
        medianprops={"color": _VERMILLION, "linewidth": 2},
    )
    rng = np.random.default_rng(seed)
    for p, v in zip(pos, values):
        ax.scatter(p + rng.uniform(-0.2, 0.2, len(v)), v, s=6, color=_BLUE, alpha=0.5, zorder=3)
    ax.set_xticks(pos, [str(g) for g in order], rotation=90 if len(order) > 8 else 0)
    ax.set_xlabel(xlabel or f"{group} (sorted by median)")
    ax.set_ylabel(ylabel or outcome)
    return ax


def plot_spaghetti(
    data: pd.DataFrame,
    outcome: str,
    predictor: str,
    group: str,
    *,
    n_groups: int | None = None,
    seed: int = 0,
    hue: str | None = None,
    ax=None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    """Each group's own least-squares line, drawn over the group's observed range of x.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format.
    outcome, predictor, group : str
        Numeric outcome, numeric level-1 predictor and level-2 identifier.
    n_groups : int or None, default None
        Number of groups drawn at random (seeded); None draws every group.
    seed : int, default 0
    hue : str, optional
        A level-2 column (constant within groups) that colours the lines, with a legend.
    ax : matplotlib.axes.Axes, optional
    xlabel, ylabel : str, optional

    Returns
    -------
    matplotlib.axes.Axes
        One line per drawn group. Groups whose predictor does not vary have no line.

    Raises
    ------
    KeyError, ValueError
        For a missing column, missing values, or a ``hue`` that varies within a group.

    Notes
    -----
    The lines are separate OLS fits ("no pooling"): a group with few rows or a narrow
    range of x can get an extreme slope.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> sleep = mlm.load_dataset("sleepstudy")
    >>> ax = mlm.plot_spaghetti(sleep, "reaction", "days", "subject")
    >>> len(ax.lines)
    18
    """
    _start(ax, n_groups, seed, xlabel=xlabel, ylabel=ylabel)
    check_name(outcome, "outcome")
    check_name(predictor, "predictor")
    check_distinct(outcome=outcome, predictor=predictor, group=group)
    check_numeric_data(data, [outcome, predictor], group)
    if hue is not None:
        check_name(hue, "hue")
        check_columns(data, [hue], role="hue column")
        check_level2_constant(data, [hue], group, role="hue column",
                              advice="hue must be a level-2 variable (constant within each "
                                     "group) to colour whole lines")
    groups = _sample_groups(sorted(data[group].unique(), key=str), n_groups, seed)
    sub = data[data[group].isin(groups)]
    lines = _group_ols(sub, outcome, predictor, group).dropna(subset=["slope"])
    ax = _axes(ax)
    if hue is None:
        colours = {g: _BLUE for g in lines["group"]}
        levels = []
    else:
        first = sub.groupby(group, observed=True)[hue].first()
        if isinstance(first.dtype, pd.CategoricalDtype):
            levels = [c for c in first.cat.categories if c in set(first)]
        else:
            levels = sorted(first.unique(), key=str)
        cmap = {lv: _CYCLE[i % len(_CYCLE)] for i, lv in enumerate(levels)}
        colours = {g: cmap[first[g]] for g in lines["group"]}
    alpha = 0.8 if len(lines) <= 20 else 0.5
    for r in lines.itertuples():
        xs = np.array([r.x_min, r.x_max])
        ax.plot(xs, r.intercept + r.slope * xs, color=colours[r.group], lw=1, alpha=alpha)
    if levels:
        handles = [Line2D([], [], color=cmap[lv], lw=2, label=f"{hue} = {lv}") for lv in levels]
        ax.legend(handles=handles, loc="upper left")
    ax.set_xlabel(xlabel or predictor)
    ax.set_ylabel(ylabel or outcome)
    return ax


# --- fitted models ---------------------------------------------------------------------------


def plot_fitted_lines(
    fit,
    predictor: str,
    *,
    n_groups: int | None = None,
    seed: int = 0,
    ax=None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    """Each group's fitted line (fixed effects plus BLUPs) and the population-average line.

    Parameters
    ----------
    fit : MixedFit
        A fitted model whose fixed part contains ``predictor``.
    predictor : str
        Column of the fitted data on the x axis.
    n_groups : int or None, default None
        Number of groups drawn at random (seeded); None draws every group.
    seed : int, default 0
    ax : matplotlib.axes.Axes, optional
    xlabel, ylabel : str, optional

    Returns
    -------
    matplotlib.axes.Axes
        One thin line per drawn group, over the group's observed range of ``predictor``,
        then the population-average line (``conditional=False``) in bold.

    Raises
    ------
    TypeError
        If ``fit`` is not a MixedFit.
    KeyError
        If ``predictor`` is not a column of the fitted data.
    ValueError
        If ``predictor`` is not a variable of the model's fixed part (its lines would be
        flat) or is the outcome, or the fit has several grouping factors.

    Notes
    -----
    Lines come from ``fit.predict`` on a grid. Other columns are held at the group's own
    values: level-2 variables at their value, other level-1 variables at the group mean.
    The population line holds them at the overall mean (numeric) or most frequent value.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> sleep = mlm.load_dataset("sleepstudy")
    >>> fit = mlm.fit_random_coefficient(sleep, "reaction", "subject", predictors=["days"])
    >>> ax = mlm.plot_fitted_lines(fit, "days")
    >>> len(ax.lines)  # 18 subjects + the population-average line
    19
    """
    data, outcome, group = _fit_parts(fit)
    _start(ax, n_groups, seed, xlabel=xlabel, ylabel=ylabel)
    check_name(predictor, "predictor")
    check_columns(data, [predictor], role="predictor")
    check_numeric(data, predictor, role="predictor")
    _check_in_model(fit, predictor)
    groups = _sample_groups(list(pd.unique(data[group])), n_groups, seed)
    ax = _axes(ax)
    alpha = 0.8 if len(groups) <= 20 else 0.5
    numeric = [
        c
        for c in data.columns
        if pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c])
    ]
    for g in groups:
        d = data[data[group] == g]
        xs = np.linspace(d[predictor].min(), d[predictor].max(), 2)
        grid = d.iloc[[0, 0]].copy()
        for c in numeric:
            grid[c] = d[c].mean()
        grid[predictor] = xs
        ax.plot(xs, fit.predict(grid).to_numpy(), color=_BLUE, lw=1, alpha=alpha)
    xs = np.linspace(data[predictor].min(), data[predictor].max(), 2)
    grid = pd.concat([_typical_row(data)] * 2, ignore_index=True)
    grid[predictor] = xs
    ax.plot(
        xs,
        fit.predict(grid, conditional=False).to_numpy(),
        color=_VERMILLION,
        lw=3.5,
        label="population average (fixed effects)",
    )
    ax.legend(
        handles=[
            Line2D([], [], color=_BLUE, lw=1, label=f"one {group} (fixed + BLUPs)"),
            ax.lines[-1],
        ],
        loc="upper left",
    )
    ax.set_xlabel(xlabel or predictor)
    ax.set_ylabel(ylabel or f"Predicted {outcome}")
    return ax


def plot_caterpillar(
    fit,
    *,
    term: str = "Intercept",
    conf_level: float = 0.95,
    ax=None,
    ylabel: str | None = None,
    xlabel: str | None = None,
):
    """Empirical Bayes predictions (BLUPs) of one random effect, sorted, with intervals.

    Parameters
    ----------
    fit : MixedFit
    term : str, default "Intercept"
        Random-effect term, as in ``fit.random_effects()["term"]``.
    conf_level : float, default 0.95
        Each bar is ``estimate +- z * std_error`` with the conditional standard deviation.
    ax : matplotlib.axes.Axes, optional
    ylabel, xlabel : str, optional

    Returns
    -------
    matplotlib.axes.Axes
        One point with its interval per group, and a line at zero.

    Raises
    ------
    ValueError
        If ``term`` is not a random effect of the fit, or ``conf_level`` is not in (0, 1).

    Notes
    -----
    The intervals are prediction intervals for :math:`u_j` given the estimated fixed
    effects and variance components (lme4's ``condVar``); they ignore the uncertainty of
    those estimates.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> fit = mlm.fit_null(mlm.load_dataset("hsb"), "mathach", "school")
    >>> ax = mlm.plot_caterpillar(fit)
    >>> len(ax.containers[0].lines[0].get_xdata())
    160
    """
    _fit_parts(fit)
    check_conf_level(conf_level)
    _start(ax, ylabel=ylabel, xlabel=xlabel)
    check_name(term, "term")
    re = fit.random_effects()
    terms = list(pd.unique(re["term"]))
    if term not in terms:
        raise ValueError(f"term {term!r} is not a random effect of this fit; choose from {terms}")
    r = re[re["term"] == term].sort_values(["estimate"], kind="mergesort")
    z = stats.norm.ppf((1 + conf_level) / 2)
    x = np.arange(1, len(r) + 1)
    ax = _axes(ax)
    ax.errorbar(
        x,
        r["estimate"].to_numpy(dtype=float),
        yerr=z * r["std_error"].to_numpy(dtype=float),
        fmt="o",
        ms=3,
        color=_BLUE,
        ecolor=_BLUE,
        elinewidth=0.8,
        label=f"BLUP, {conf_level:.0%} interval",
    )
    ax.axhline(0, color=_BLACK, lw=1)
    if len(r) <= 30:
        ax.set_xticks(x, [str(g) for g in r["group"]], rotation=90)
    ax.set_xlabel(xlabel or f"{fit.group}, ordered by its prediction (rank)")
    ax.set_ylabel(ylabel or f"Predicted random effect ({term})")
    ax.legend(loc="upper left")
    return ax


def plot_shrinkage(
    fit,
    *,
    predictor: str | None = None,
    ax=None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    """Each group's own OLS estimate against its empirical Bayes (shrunken) estimate.

    Parameters
    ----------
    fit : MixedFit
        For ``predictor=None``, a null model (fixed and random intercept only); the OLS
        estimate is the group mean and the EB estimate ``gamma00 + u0j``. Otherwise a model
        whose fixed part is the intercept and ``predictor`` and whose random part includes
        ``predictor``; the OLS estimate is the group's own slope, the EB estimate
        ``gamma10 + u1j``.
    predictor : str, optional
    ax : matplotlib.axes.Axes, optional
    xlabel, ylabel : str, optional

    Returns
    -------
    matplotlib.axes.Axes
        One point per group (area proportional to the group size), the identity line, and
        a horizontal line at the fixed effect toward which the estimates are shrunk.

    Raises
    ------
    ValueError
        If the fit does not match the comparison (see ``fit``).

    Notes
    -----
    Points below the identity line above the fixed effect (and above it below) have been
    pulled toward the average; the pull is strongest for small groups and noisy OLS
    estimates. Groups whose predictor does not vary have no OLS slope and are left out.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> fit = mlm.fit_null(mlm.load_dataset("hsb"), "mathach", "school")
    >>> ax = mlm.plot_shrinkage(fit)
    >>> len(ax.collections[0].get_offsets())
    160
    """
    data, outcome, group = _fit_parts(fit)
    _start(ax, xlabel=xlabel, ylabel=ylabel)
    if predictor is not None:
        check_name(predictor, "predictor")
    fixed = list(fit.params.index)
    random = list(fit.random_effects()["term"].unique())
    coefs = fit.group_coefficients()
    if predictor is None:
        if fixed != ["Intercept"] or random != ["Intercept"]:
            raise ValueError(
                "without predictor=, plot_shrinkage compares group means with the intercepts "
                f"of a null model; this fit has fixed {fixed} and random {random}: pass "
                "predictor= or fit mlm.fit_null"
            )
        stat = data.groupby(group, sort=False, observed=True)[outcome].agg(["size", "mean"])
        ols = stat["mean"]
        term = "Intercept"
        what = f"mean {outcome}"
    else:
        if predictor not in random or set(fixed) != {"Intercept", predictor}:
            raise ValueError(
                f"predictor {predictor!r} must be the only fixed predictor and have a random "
                f"slope; this fit has fixed {fixed} and random {random}"
            )
        per = _group_ols(data, outcome, predictor, group).set_index("group")
        stat = per.rename(columns={"n": "size"})
        ols = per["slope"]
        term = predictor
        what = f"slope of {predictor}"
    eb = coefs[term].reindex(ols.index)
    keep = ols.notna().to_numpy()
    sizes = stat["size"].to_numpy()[keep]
    ax = _axes(ax)
    ax.scatter(
        ols.to_numpy()[keep],
        eb.to_numpy()[keep],
        s=sizes * 40 / np.max(sizes),
        color=_BLUE,
        alpha=0.6,
        edgecolor="white",
        lw=0.3,
        label=f"one {group}",
    )
    lo = float(np.nanmin([ols.min(), eb.min()]))
    hi = float(np.nanmax([ols.max(), eb.max()]))
    ax.plot([lo, hi], [lo, hi], color=_BLACK, lw=1, ls="--", label="no shrinkage (y = x)")
    ax.axhline(fit.params[term], color=_VERMILLION, lw=1.5, label="fixed effect")
    ax.set_xlabel(xlabel or f"{group}'s own OLS estimate ({what})")
    ax.set_ylabel(ylabel or f"Empirical Bayes estimate ({what})")
    ax.legend(loc="upper left")
    return ax


# --- concepts --------------------------------------------------------------------------------

_PROP_KINDS = ("micro", "macro", "macro-micro")
_PROP_LABELS = {
    "Z": "Z",
    "Y": "Y",
    "x": "x",
    "y": "y",
    "level2": "Level 2\n(macro)",
    "level1": "Level 1\n(micro)",
}


def plot_proposition(kind: str, *, labels: Mapping[str, str] | None = None, ax=None):
    """Diagram of a multilevel proposition (after Snijders and Bosker 2012, ch. 2).

    Parameters
    ----------
    kind : {"micro", "macro", "macro-micro"}
        ``"micro"``: x -> y, both at level 1. ``"macro"``: Z -> Y, both at level 2 (Y is a
        level-2 outcome, e.g. a group mean). ``"macro-micro"``: Z at level 2 affects y at
        level 1 directly and changes the level-1 relation x -> y (a cross-level
        interaction).
    labels : dict, optional
        Text of the boxes and rows, keys ``"Z", "Y", "x", "y", "level2", "level1"``;
        missing keys keep the generic defaults.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Axis lines hidden; a dashed line separates level 2 (top) from level 1 (bottom).

    Raises
    ------
    ValueError
        If ``kind`` or a key of ``labels`` is unknown.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> ax = mlm.plot_proposition("macro-micro", labels={"Z": "sector", "x": "SES"})
    >>> sorted(t.get_text() for t in ax.texts)[-3:]
    ['SES', 'sector', 'y']
    """
    check_choice(kind, "kind", _PROP_KINDS)
    check_axes(ax)
    if labels is not None and not isinstance(labels, Mapping):
        raise TypeError(f"labels must be a dict such as {{'Z': 'sector'}}, not "
                        f"{type(labels).__name__}")
    labels = dict(labels or {})
    for key, text in labels.items():
        check_label(text, f"labels[{key!r}]")
    unknown = set(labels) - set(_PROP_LABELS)
    if unknown:
        raise ValueError(f"unknown labels key(s) {sorted(unknown)}; use {sorted(_PROP_LABELS)}")
    text = {**_PROP_LABELS, **labels}
    ax = _axes(ax)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    top, bottom, left, right = 0.75, 0.25, 0.36, 0.84
    half_w, half_h = 0.12, 0.11
    ax.axhline(0.5, color=_GREY, ls="--", lw=1)
    ax.text(0.02, top, text["level2"], va="center", ha="left", fontsize=12, color=_GREY)
    ax.text(0.02, bottom, text["level1"], va="center", ha="left", fontsize=12, color=_GREY)

    def box(x, y, key, colour):
        ax.add_patch(
            FancyBboxPatch(
                (x - half_w, y - half_h),
                2 * half_w,
                2 * half_h,
                boxstyle="round,pad=0.01",
                facecolor="white",
                edgecolor=colour,
                lw=2,
            )
        )
        ax.text(x, y, text[key], ha="center", va="center", fontsize=12)

    def arrow(start, end, colour=_BLACK):
        ax.add_patch(
            FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=18, lw=2, color=colour)
        )

    gap = half_w + 0.015
    if kind == "micro":
        box(left, bottom, "x", _BLUE)
        box(right, bottom, "y", _BLUE)
        arrow((left + gap, bottom), (right - gap, bottom))
    elif kind == "macro":
        box(left, top, "Z", _ORANGE)
        box(right, top, "Y", _ORANGE)
        arrow((left + gap, top), (right - gap, top))
    else:
        box(left, top, "Z", _ORANGE)
        box(left, bottom, "x", _BLUE)
        box(right, bottom, "y", _BLUE)
        arrow((left + gap, bottom), (right - gap, bottom))
        arrow((left + half_w, top - half_h - 0.01), (right - half_w, bottom + half_h + 0.01))
        mid = ((left + right) / 2, bottom + 0.01)
        arrow((left + 0.03, top - half_h - 0.01), mid, _VERMILLION)
    return ax


def plot_icc_curves(
    tau2_values: Sequence[float] | np.ndarray,
    sigma2_values: Sequence[float] | np.ndarray,
    *,
    ax=None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    """The intra-class correlation ``tau2 / (tau2 + sigma2)`` as ``tau2`` grows.

    Parameters
    ----------
    tau2_values : array_like
        Between-group variances on the x axis (non-negative).
    sigma2_values : array_like
        Within-group variances (positive); one curve each.
    ax : matplotlib.axes.Axes, optional
    xlabel, ylabel : str, optional

    Returns
    -------
    matplotlib.axes.Axes
        One line per value of ``sigma2``, with a legend.

    Raises
    ------
    ValueError
        If a variance is negative (or ``sigma2`` zero), or a sequence is empty.

    Examples
    --------
    >>> import numpy as np
    >>> import mlm_lessons as mlm
    >>> ax = mlm.plot_icc_curves(np.linspace(0, 20, 50), [10, 40])
    >>> round(float(ax.lines[0].get_ydata()[-1]), 3)  # 20 / (20 + 10)
    0.667
    """
    tau2 = check_real_array(tau2_values, "tau2_values", minimum=0.0,
                            what="finite and non-negative (they are variances)").ravel()
    sigma2 = check_real_array(sigma2_values, "sigma2_values", minimum=0.0, strict_min=True,
                              what="finite and positive (they are variances)").ravel()
    _labels(xlabel=xlabel, ylabel=ylabel)
    ax = _axes(ax)
    order = np.argsort(tau2)
    for i, s2 in enumerate(sigma2):
        ax.plot(
            tau2[order],
            tau2[order] / (tau2[order] + s2),
            color=_CYCLE[i % len(_CYCLE)],
            lw=2,
            label=f"σ² = {s2:g}",
        )
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel or "Between-group variance τ²")
    ax.set_ylabel(ylabel or "Intra-class correlation ρ")
    ax.legend(title="within-group variance", loc="upper left")
    return ax
