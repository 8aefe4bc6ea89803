"""Less appropriate ways of analysing grouped data, side by side with a multilevel model.

The workshop lists three shortcuts that ignore or misuse the grouping: aggregating (a
regression of the group means), disaggregating (one regression per group) and pooling
(one regression of all rows, as if they were independent). :func:`compare_approaches`
puts them next to a cluster-robust standard error and a random-intercept model, so the
chapter can show what goes wrong with each.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from mlm_lessons._checks import (
    check_conf_level,
    check_distinct,
    check_frame,
    check_groups,
    check_names,
    check_numeric_columns,
)

__all__ = ["per_group_slopes", "compare_approaches"]

APPROACHES = (
    "aggregated: regression of group means",
    "disaggregated: mean of per-group slopes",
    "pooled OLS (naive SE)",
    "pooled OLS (cluster-robust SE)",
    "multilevel: random intercept",
)


# --- small array helpers, shared with mlm_lessons.simulate ------------------------------------


def _ols(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS coefficients, ``(X'X)^-1`` and residuals."""
    XtX_inv = np.linalg.inv(X.T @ X)
    beta = XtX_inv @ (X.T @ y)
    return beta, XtX_inv, y - X @ beta


def _naive_vcov(XtX_inv: np.ndarray, resid: np.ndarray) -> np.ndarray:
    """Classical OLS covariance ``s^2 (X'X)^-1`` with ``s^2 = RSS / (n - k)``."""
    n, k = len(resid), XtX_inv.shape[0]
    return (resid @ resid) / (n - k) * XtX_inv


def _cluster_vcov(
    X: np.ndarray, resid: np.ndarray, codes: np.ndarray, XtX_inv: np.ndarray
) -> np.ndarray:
    """Cluster-robust (sandwich) covariance with the usual small-sample factor.

    ``c (X'X)^-1 (sum_g X_g' e_g e_g' X_g) (X'X)^-1`` with
    ``c = G/(G-1) * (n-1)/(n-k)``: Stata's ``vce(cluster)``, R's
    ``sandwich::vcovCL(type = "HC1")`` and statsmodels' ``cov_type="cluster"`` (defaults
    ``use_correction=True, df_correction=True``).
    """
    n, k = X.shape
    G = int(codes.max()) + 1
    scores = np.column_stack([np.bincount(codes, X[:, a] * resid, minlength=G) for a in range(k)])
    meat = scores.T @ scores
    c = G / (G - 1) * (n - 1) / (n - k)
    return c * XtX_inv @ meat @ XtX_inv


def _t_interval(estimate: float, se: float, df: float, conf_level: float) -> tuple[float, float]:
    crit = stats.t.ppf(0.5 + conf_level / 2, df)
    return estimate - crit * se, estimate + crit * se


def _check_inputs(
    data: pd.DataFrame, outcome: str, predictor: str, group: str, *, min_groups: int
) -> pd.Series:
    check_frame(data)
    check_names(outcome=outcome, predictor=predictor, group=group)
    check_distinct(outcome=outcome, predictor=predictor, group=group)
    check_numeric_columns(data, [outcome], role="outcome")
    check_numeric_columns(data, [predictor], role="predictor")
    return check_groups(data, group, min_groups=min_groups, min_size=2)


def _group_slopes(y: np.ndarray, x: np.ndarray, codes: np.ndarray, J: int) -> dict:
    """Per-group simple regressions from centred cross-products (vectorised over groups)."""
    n = np.bincount(codes, minlength=J).astype(float)
    xbar = np.bincount(codes, x, minlength=J) / n
    ybar = np.bincount(codes, y, minlength=J) / n
    xc, yc = x - xbar[codes], y - ybar[codes]
    sxx = np.bincount(codes, xc * xc, minlength=J)
    sxy = np.bincount(codes, xc * yc, minlength=J)
    syy = np.bincount(codes, yc * yc, minlength=J)
    # A slope needs two distinct predictor values: Sxx must be clearly above rounding error.
    scale = np.bincount(codes, x * x, minlength=J)
    ok = (n >= 2) & (sxx > 1e-10 * np.maximum(scale, np.finfo(float).tiny))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(ok, sxy / sxx, np.nan)
        rss = np.maximum(syy - slope * sxy, 0.0)
        se = np.where(ok & (n >= 3), np.sqrt(rss / (n - 2) / sxx), np.nan)
    return {
        "n": n.astype(int),
        "intercept": np.where(ok, ybar - slope * xbar, np.nan),
        "slope": slope,
        "slope_se": se,
        "xbar": xbar,
        "ybar": ybar,
    }


def per_group_slopes(data: pd.DataFrame, outcome: str, predictor: str, group: str) -> pd.DataFrame:
    r"""One ordinary least-squares regression per group (the "disaggregated" approach).

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per level-1 unit. Not modified.
    outcome, predictor, group : str
        Column names of the numeric outcome, the numeric level-1 predictor and the level-2
        identifier.

    Returns
    -------
    pandas.DataFrame
        One row per group, in order of first appearance: ``group, n, intercept, slope,
        slope_se``. Groups where the slope is not estimable (one row, or a predictor
        that does not vary within the group) get NaN; ``slope_se`` is NaN also for groups
        of two rows (no residual degrees of freedom). The number of groups without a
        slope is stored in ``attrs["n_not_estimable"]``.

    Raises
    ------
    KeyError
        If a column is not in ``data``.
    TypeError
        If a column name is not a string, or the outcome or predictor is not numeric.
    ValueError
        If a used column has missing or infinite values, the outcome, predictor and group
        are not three different columns, the group column is not a valid identifier, or
        every group has a single row.

    Notes
    -----
    For group :math:`j`, :math:`\hat\beta_{1j} = S_{xy,j}/S_{xx,j}` and
    :math:`\mathrm{SE} = \sqrt{\mathrm{RSS}_j / ((n_j - 2) S_{xx,j})}`, with sums of
    squares and cross-products around the group means. Validated against R's ``lm`` fitted
    school by school on High School and Beyond (``tests/test_compare.py``).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> slopes = mlm.per_group_slopes(mlm.load_dataset("hsb"), "mathach", "ses", "school")
    >>> slopes.head(3).round(3)
      group   n  intercept  slope  slope_se
    0  1224  47     10.805  2.509     1.765
    1  1288  25     13.115  3.255     2.080
    2  1296  48      8.094  1.076     1.209
    >>> slopes["slope"].agg(["mean", "std"]).round(2).tolist()
    [2.2, 1.63]
    """
    _check_inputs(data, outcome, predictor, group, min_groups=1)
    codes, groups = pd.factorize(data[group], sort=False)
    J = len(groups)
    res = _group_slopes(
        data[outcome].to_numpy(dtype=float), data[predictor].to_numpy(dtype=float), codes, J
    )
    out = pd.DataFrame(
        {
            "group": groups,
            "n": res["n"],
            "intercept": res["intercept"],
            "slope": res["slope"],
            "slope_se": res["slope_se"],
        }
    )
    out.attrs["n_not_estimable"] = int(np.isnan(res["slope"]).sum())
    return out


def _formula_name(name: str) -> str:
    return name if name.isidentifier() else f"Q({name!r})"


def compare_approaches(
    data: pd.DataFrame,
    outcome: str,
    predictor: str,
    group: str,
    *,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    r"""The slope of ``outcome`` on ``predictor`` estimated five ways.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per level-1 unit. Not modified.
    outcome, predictor, group : str
        Column names of the numeric outcome, the numeric level-1 predictor and the level-2
        identifier.
    conf_level : float, default 0.95
        Level of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per approach, in this order, with columns ``approach, estimate,
        std_error, ci_low, ci_high, n_units, note``. ``n_units`` is the number of units
        the standard error treats as independent.

        - ``"aggregated: regression of group means"``: OLS of the group means of the
          outcome on the group means of the predictor (J units, t with J - 2 df);
        - ``"disaggregated: mean of per-group slopes"``: the unweighted mean of the
          per-group OLS slopes (:func:`per_group_slopes`), SE = SD / sqrt(k) over the k
          groups with a slope (t with k - 1 df);
        - ``"pooled OLS (naive SE)"``: OLS on all N rows with the classical SE (t with
          N - 2 df);
        - ``"pooled OLS (cluster-robust SE)"``: the same slope with the cluster-robust SE
          (t with J - 1 df);
        - ``"multilevel: random intercept"``: REML fit of
          ``outcome ~ predictor + (1 | group)`` (:func:`mlm_lessons.fit_mixed`), Wald
          interval with the normal quantile.

    Raises
    ------
    KeyError
        If a column is not in ``data``.
    TypeError
        If a column name is not a string, or the outcome or predictor is not numeric.
    ValueError
        If a used column has missing or infinite values, two roles name the same column,
        every group has a single row, there are fewer than three groups, fewer
        than two groups have an estimable slope, the group means of the predictor do not
        vary, or ``conf_level`` is not between 0 and 1.

    Notes
    -----
    The cluster-robust covariance is
    :math:`c\,(X'X)^{-1}\big(\sum_g X_g'\hat e_g \hat e_g' X_g\big)(X'X)^{-1}` with
    :math:`c = \frac{G}{G-1}\frac{N-1}{N-k}`. This is R's
    ``sandwich::vcovCL(fit, cluster = ~group, type = "HC1")``, Stata's ``vce(cluster)`` and
    statsmodels' ``OLS(...).fit(cov_type="cluster", cov_kwds={"groups": g})`` with its
    default ``use_correction=True`` and ``df_correction=True``; the interval uses the t
    distribution with G - 1 degrees of freedom, as Stata does.

    Validated on High School and Beyond against R (``lm``, ``sandwich`` 3.0.2, lme4
    1.1-31): pooled slope 3.184 (SE 0.0971, cluster-robust 0.1335), regression of school
    means 5.909, mean of 160 school slopes 2.20 (SD 1.63), random intercept 2.390.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> tab = mlm.compare_approaches(mlm.load_dataset("hsb"), "mathach", "ses", "school")
    >>> tab[["approach", "estimate", "std_error", "n_units"]].round(3)
                                      approach  estimate  std_error  n_units
    0    aggregated: regression of group means     5.909      0.371      160
    1  disaggregated: mean of per-group slopes     2.202      0.129      160
    2                    pooled OLS (naive SE)     3.184      0.097     7185
    3           pooled OLS (cluster-robust SE)     3.184      0.133      160
    4             multilevel: random intercept     2.390      0.106      160
    """
    check_conf_level(conf_level)
    _check_inputs(data, outcome, predictor, group, min_groups=3)
    from mlm_lessons.models import fit_mixed

    y = data[outcome].to_numpy(dtype=float)
    x = data[predictor].to_numpy(dtype=float)
    codes, groups = pd.factorize(data[group], sort=False)
    J, N = len(groups), len(y)
    rows = []

    def t_row(approach, estimate, se, df, n_units, note):
        """One row of the table, with a t interval on ``df`` degrees of freedom."""
        return (approach, estimate, se, *_t_interval(estimate, se, df, conf_level), n_units, note)

    # Aggregated: OLS of group means.
    g = _group_slopes(y, x, codes, J)
    if np.ptp(g["xbar"]) <= 1e-10 * max(np.std(x), np.finfo(float).tiny):
        raise ValueError(
            f"the group means of {predictor!r} are all equal; the regression of group means "
            f"is not defined (is {predictor!r} centred within groups?)"
        )
    Xa = np.column_stack([np.ones(J), g["xbar"]])
    beta, XtX_inv, resid = _ols(Xa, g["ybar"])
    se = float(np.sqrt(_naive_vcov(XtX_inv, resid)[1, 1]))
    rows.append(
        t_row(
            APPROACHES[0],
            beta[1],
            se,
            J - 2,
            J,
            "between-group slope of the group means; ignores within-group variation and "
            "group sizes",
        )
    )

    # Disaggregated: mean of per-group slopes.
    slopes = g["slope"][~np.isnan(g["slope"])]
    k = len(slopes)
    if k < 2:
        raise ValueError(
            f"only {k} group(s) have an estimable slope of {predictor!r}; per-group "
            f"regressions need groups with at least two distinct values of it"
        )
    est, se = float(slopes.mean()), float(slopes.std(ddof=1) / np.sqrt(k))
    dropped = J - k
    note = "unweighted mean of per-group OLS slopes; SE from their spread"
    if dropped:
        note += f"; {dropped} group(s) without an estimable slope left out"
    rows.append(t_row(APPROACHES[1], est, se, k - 1, k, note))

    # Pooled OLS, naive and cluster-robust SE.
    Xp = np.column_stack([np.ones(N), x])
    beta, XtX_inv, resid = _ols(Xp, y)
    se = float(np.sqrt(_naive_vcov(XtX_inv, resid)[1, 1]))
    rows.append(t_row(APPROACHES[2], beta[1], se, N - 2, N, "treats every row as independent"))
    se = float(np.sqrt(_cluster_vcov(Xp, resid, codes, XtX_inv)[1, 1]))
    rows.append(
        t_row(
            APPROACHES[3],
            beta[1],
            se,
            J - 1,
            J,
            "same slope; SE allows any correlation within groups (sandwich, HC1 factor)",
        )
    )

    # Multilevel, random intercept.
    fit = fit_mixed(
        data,
        f"{_formula_name(outcome)} ~ {_formula_name(predictor)}",
        group,
        conf_level=conf_level,
    )
    r = fit.fixed.iloc[1]
    rows.append(
        (
            APPROACHES[4],
            r["estimate"],
            r["std_error"],
            r["ci_low"],
            r["ci_high"],
            J,
            "REML; a weighted mix of the within- and between-group slopes",
        )
    )
    out = pd.DataFrame(
        rows,
        columns=["approach", "estimate", "std_error", "ci_low", "ci_high", "n_units", "note"],
    )
    for c in ["estimate", "std_error", "ci_low", "ci_high"]:
        out[c] = out[c].astype(float)
    out["n_units"] = out["n_units"].astype(int)
    return out
