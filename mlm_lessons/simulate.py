r"""Two-level data with known truth, and small simulation studies built on it.

:func:`simulate_two_level` draws data from the workshop's combined model

.. math::

    y_{ij} = \gamma_{00} + \gamma_{01} z_j + \gamma_{10} x_{ij} + \gamma_{11} z_j x_{ij}
             + u_{0j} + u_{1j} x_{ij} + \varepsilon_{ij}.

:func:`coverage_study` asks how often each method's 95% interval for
:math:`\gamma_{10}` covers the truth; :func:`efficiency_study` compares the accuracy of the
mean of per-group slopes with that of the random-slope model; :func:`icc_estimator_study`
compares estimators of the intraclass correlation. Every function takes a ``seed``, so results are reproducible.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from scipy import stats

from mlm_lessons import _engine
from mlm_lessons._checks import check_conf_level, check_count, check_real, check_seed
from mlm_lessons._threads import single_blas_thread
from mlm_lessons.compare import _cluster_vcov, _naive_vcov, _ols

__all__ = ["simulate_two_level", "coverage_study", "efficiency_study", "icc_estimator_study"]

COVERAGE_METHODS = (
    "pooled OLS, naive SE",
    "pooled OLS, cluster-robust SE",
    "multilevel (random slope)",
    "multilevel (random intercept)",
)

EFFICIENCY_METHODS = (
    "mean of per-group OLS slopes",
    "multilevel (random slope)",
)


# --- validation ----------------------------------------------------------------------------


def _check_int(value, name: str, minimum: int) -> int:
    return check_count(value, name, minimum=minimum)


def _check_real(value, name: str, *, minimum: float | None = None, strict: bool = False) -> float:
    what = None
    if name.startswith("tau") and name[3:] in ("00", "11", "2"):
        what = "a variance (a number >= 0)"
    elif name == "sigma2":
        what = "a positive variance (a number > 0)"
    return check_real(value, name, minimum=minimum, strict_min=strict, what=what)


def _check_sizes(n_groups, group_size) -> np.ndarray:
    J = _check_int(n_groups, "n_groups", 1)
    if isinstance(group_size, numbers.Integral) and not isinstance(group_size, bool):
        sizes = np.full(J, int(group_size))
    else:
        arr = np.asarray(group_size)
        if arr.ndim != 1 or not (
            np.issubdtype(arr.dtype, np.integer)
            or (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)))
        ):
            raise TypeError(
                f"group_size must be an integer or a 1-d array of integers, not {group_size!r}"
            )
        if len(arr) != J:
            raise ValueError(
                f"group_size has {len(arr)} entries but n_groups is {J}; give one size per "
                f"group or a single integer"
            )
        sizes = arr.astype(int)
    if sizes.min() < 1:
        raise ValueError(f"every group_size must be at least 1, got {sizes.min()}")
    return sizes


def _check_tau(tau00: float, tau11: float, tau01: float) -> np.ndarray:
    """Return a factor L with L L' = T, after checking that T is positive semi-definite."""
    tau00 = _check_real(tau00, "tau00", minimum=0.0)
    tau11 = _check_real(tau11, "tau11", minimum=0.0)
    tau01 = _check_real(tau01, "tau01")
    if tau01**2 > tau00 * tau11 * (1 + 1e-12):
        raise ValueError(
            f"the level-2 covariance matrix [[tau00, tau01], [tau01, tau11]] is not positive "
            f"semi-definite: tau01^2 = {tau01**2:g} exceeds tau00 * tau11 = "
            f"{tau00 * tau11:g} (|correlation| would exceed 1)"
        )
    l11 = np.sqrt(tau00)
    l21 = tau01 / l11 if l11 > 0 else 0.0
    l22 = np.sqrt(max(tau11 - l21**2, 0.0))
    return np.array([[l11, 0.0], [l21, l22]])


def _rng(seed) -> np.random.Generator:
    seed = check_seed(seed, generator=True)
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# --- data generation -----------------------------------------------------------------------


def _draw(rng, sizes, L, gammas, sigma, x_between_sd):
    """Arrays (codes, x, z, y) from the combined model; the order of draws is fixed."""
    J = len(sizes)
    g00, g01, g10, g11 = gammas
    z = rng.standard_normal(J)
    xbar = x_between_sd * rng.standard_normal(J)
    u = rng.standard_normal((J, 2)) @ L.T
    codes = np.repeat(np.arange(J), sizes)
    x = xbar[codes] + rng.standard_normal(len(codes))
    e = sigma * rng.standard_normal(len(codes))
    zc = z[codes]
    y = g00 + g01 * zc + (g10 + g11 * zc) * x + u[codes, 0] + u[codes, 1] * x + e
    return codes, x, z, y


def simulate_two_level(
    n_groups: int,
    group_size,
    *,
    gamma00: float,
    gamma10: float = 0.0,
    gamma01: float = 0.0,
    gamma11: float = 0.0,
    tau00: float,
    tau11: float = 0.0,
    tau01: float = 0.0,
    sigma2: float,
    x_between_sd: float = 0.0,
    seed,
) -> pd.DataFrame:
    r"""Draw a two-level data set from the combined multilevel model.

    Parameters
    ----------
    n_groups : int
        Number of level-2 units J (at least 1).
    group_size : int or array of int
        Rows per group: one integer for a balanced design, or ``n_groups`` integers.
    gamma00, gamma10, gamma01, gamma11 : float
        Fixed effects: intercept, slope of ``x``, effect of ``z`` on the intercept and on
        the slope (cross-level interaction).
    tau00, tau11, tau01 : float
        Variance of the random intercepts, of the random slopes, and their covariance.
    sigma2 : float
        Level-1 residual variance (positive).
    x_between_sd : float, default 0
        Standard deviation of the group means of ``x``. With 0, ``x`` varies only within
        groups.
    seed : int or numpy.random.Generator
        Seed of the random numbers (required, so that every result can be reproduced).

    Returns
    -------
    pandas.DataFrame
        One row per level-1 unit with columns ``group`` (string ids ``"g01"``, ...,
        sorted like the groups), ``x`` (level-1 predictor), ``z`` (level-2 predictor,
        constant within groups) and ``y``. ``attrs["truth"]`` holds every parameter
        (a dict), including ``icc = tau00 / (tau00 + sigma2)``.

    Raises
    ------
    TypeError
        If a size is not an integer, a parameter is not a number (a string such as
        ``"0.2"`` or a boolean included), or ``seed`` is None or not an integer.
    ValueError
        If a size is below 1, ``group_size`` has the wrong length, a variance is
        negative, ``sigma2`` is not positive, ``seed`` is negative, or the covariance matrix of
        :math:`(u_{0j}, u_{1j})` is not positive semi-definite.

    Notes
    -----
    Level 2: :math:`z_j \sim N(0, 1)`, :math:`\bar x_j \sim N(0, s_b^2)` with
    :math:`s_b` = ``x_between_sd``, and :math:`(u_{0j}, u_{1j})' \sim N(0, T)` with
    :math:`T = \begin{pmatrix}\tau_{00} & \tau_{01}\\ \tau_{01} & \tau_{11}\end{pmatrix}`.
    Level 1: :math:`x_{ij} = \bar x_j + N(0, 1)` and

    .. math::

        y_{ij} = \gamma_{00} + \gamma_{01} z_j + \gamma_{10} x_{ij}
                 + \gamma_{11} z_j x_{ij} + u_{0j} + u_{1j} x_{ij} + \varepsilon_{ij},
        \qquad \varepsilon_{ij} \sim N(0, \sigma^2).

    All draws are independent. The tests check the moments of the draws against these
    formulas and recover the parameters with :func:`mlm_lessons.fit_mixed`.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> df = mlm.simulate_two_level(3, 2, gamma00=10, tau00=4, sigma2=25, seed=1)
    >>> df.shape, list(df.columns)
    ((6, 4), ['group', 'x', 'z', 'y'])
    >>> df["group"].tolist()
    ['g1', 'g1', 'g2', 'g2', 'g3', 'g3']
    >>> df.attrs["truth"]["icc"]
    0.13793103448275862
    """
    sizes = _check_sizes(n_groups, group_size)
    gammas = tuple(
        _check_real(v, name)
        for v, name in (
            (gamma00, "gamma00"),
            (gamma01, "gamma01"),
            (gamma10, "gamma10"),
            (gamma11, "gamma11"),
        )
    )
    L = _check_tau(tau00, tau11, tau01)
    sigma2 = _check_real(sigma2, "sigma2", minimum=0.0, strict=True)
    x_between_sd = _check_real(x_between_sd, "x_between_sd", minimum=0.0)
    rng = _rng(seed)
    codes, x, z, y = _draw(rng, sizes, L, gammas, np.sqrt(sigma2), x_between_sd)
    width = len(str(len(sizes)))
    labels = np.array([f"g{j + 1:0{width}d}" for j in range(len(sizes))])
    out = pd.DataFrame({"group": labels[codes], "x": x, "z": z[codes], "y": y})
    out.attrs["truth"] = {
        "n_groups": len(sizes),
        "group_size": int(sizes[0]) if np.all(sizes == sizes[0]) else sizes.tolist(),
        "gamma00": gammas[0],
        "gamma01": gammas[1],
        "gamma10": gammas[2],
        "gamma11": gammas[3],
        "tau00": float(tau00),
        "tau11": float(tau11),
        "tau01": float(tau01),
        "sigma2": sigma2,
        "x_between_sd": x_between_sd,
        "icc": float(tau00) / (float(tau00) + sigma2),
        "seed": seed if not isinstance(seed, np.random.Generator) else None,
    }
    return out


# --- fitting without the formula layer (the same engine as fit_mixed) ----------------------


def _fit_engine(y, X, Z, codes, *, reml: bool = True):
    """Fixed effects, their SEs and the solution, from the engine behind ``fit_mixed``.

    The simulation studies fit thousands of small models; building patsy design matrices
    would take most of the time, so they call the engine directly. ``tests/test_simulate.py``
    checks that this gives exactly what :func:`mlm_lessons.fit_mixed` gives.
    """
    q = Z.shape[1]
    term = _engine.ReTerm(codes, Z, int(codes.max()) + 1, _engine.Layout.of(q, [tuple(range(q))]))
    fit = _engine.fit_lmm(y, X, [term], reml)
    return fit.beta, np.sqrt(np.diag(fit.vcov)), fit


@single_blas_thread
def coverage_study(
    n_sims: int,
    *,
    n_groups: int,
    group_size,
    gamma10: float,
    tau00: float,
    tau11: float,
    sigma2: float,
    x_between_sd: float,
    conf_level: float = 0.95,
    seed,
) -> pd.DataFrame:
    r"""How often does each method's interval for the slope cover the true slope?

    Each replication draws a data set with :func:`simulate_two_level` (``gamma00 = 0``,
    no level-2 predictor, uncorrelated random effects) and estimates :math:`\gamma_{10}`
    four ways.

    Parameters
    ----------
    n_sims : int
        Number of simulated data sets (at least 2).
    n_groups, group_size, gamma10, tau00, tau11, sigma2, x_between_sd
        As in :func:`simulate_two_level`; ``n_groups`` must be at least 3.
    conf_level : float, default 0.95
        Nominal level of the intervals.
    seed : int or numpy.random.Generator
        Seed of the whole study.

    Returns
    -------
    pandas.DataFrame
        One row per method, ``"pooled OLS, naive SE"``, ``"pooled OLS, cluster-robust
        SE"``, ``"multilevel (random slope)"``, ``"multilevel (random intercept)"``, with
        columns ``method, coverage, coverage_mc_se, mean_estimate, sd_estimate,
        mean_std_error, n_sims``. ``coverage`` is the share of intervals that contain
        ``gamma10``; ``coverage_mc_se`` its Monte Carlo standard error
        :math:`\sqrt{c(1-c)/n_{sims}}`; ``sd_estimate`` the standard deviation of the
        estimates over replications (the true sampling SD, to compare with
        ``mean_std_error``).

    Raises
    ------
    TypeError, ValueError
        As :func:`simulate_two_level`, and if ``n_sims < 2``, ``n_groups < 3`` or
        ``conf_level`` is not between 0 and 1.

    Notes
    -----
    Intervals: pooled OLS with the classical SE and t(N - 2); the same slope with the
    cluster-robust SE (HC1 factor, as :func:`mlm_lessons.compare_approaches`) and
    t(J - 1); REML fits of ``y ~ x`` with a random intercept and slope (``re_formula="x"``)
    and with a random intercept only, Wald intervals with the normal quantile, as
    :func:`mlm_lessons.fit_mixed` reports them. The fits use the same engine as
    :func:`mlm_lessons.fit_mixed` without the formula layer, which makes a replication
    take about 25 ms. Boundary fits (a variance estimated at zero) are kept, as an
    analyst would keep them.

    When ``tau11 > 0`` the slope varies across groups, so rows of a group share
    :math:`u_{1j}`; the naive and the random-intercept intervals then ignore that source
    of variation and cover less than ``conf_level``. The tests check the coverage
    against the nominal level with binomial tolerances.

    Examples
    --------
    The settings used in the book, with 200 replications (5 to 7 s; a few shown here):
    the naive interval covers about 60% of the time, the random-slope model's about 95%.

    >>> import mlm_lessons as mlm
    >>> res = mlm.coverage_study(5, n_groups=30, group_size=30, gamma10=2.0, tau00=4.0,
    ...                          tau11=1.0, sigma2=10.0, x_between_sd=0.5, seed=1)
    >>> res[["method", "n_sims"]]
                              method  n_sims
    0           pooled OLS, naive SE       5
    1  pooled OLS, cluster-robust SE       5
    2      multilevel (random slope)       5
    3  multilevel (random intercept)       5
    """
    n_sims = _check_int(n_sims, "n_sims", 2)
    _check_int(n_groups, "n_groups", 3)
    sizes = _check_sizes(n_groups, group_size)
    gamma10 = _check_real(gamma10, "gamma10")
    L = _check_tau(tau00, tau11, 0.0)
    sigma2 = _check_real(sigma2, "sigma2", minimum=0.0, strict=True)
    x_between_sd = _check_real(x_between_sd, "x_between_sd", minimum=0.0)
    check_conf_level(conf_level)
    if sizes.sum() <= 4:
        raise ValueError(f"{sizes.sum()} rows in all are too few to fit a random slope")
    rng = _rng(seed)
    J, N = len(sizes), int(sizes.sum())
    t_naive = stats.t.ppf(0.5 + conf_level / 2, N - 2)
    t_cluster = stats.t.ppf(0.5 + conf_level / 2, J - 1)
    z = stats.norm.ppf(0.5 + conf_level / 2)
    crit = np.array([t_naive, t_cluster, z, z])
    est = np.empty((n_sims, 4))
    se = np.empty((n_sims, 4))
    for s in range(n_sims):
        codes, x, _, y = _draw(
            rng, sizes, L, (0.0, 0.0, gamma10, 0.0), np.sqrt(sigma2), x_between_sd
        )
        X = np.column_stack([np.ones(N), x])
        beta, XtX_inv, resid = _ols(X, y)
        est[s, 0] = est[s, 1] = beta[1]
        se[s, 0] = np.sqrt(_naive_vcov(XtX_inv, resid)[1, 1])
        se[s, 1] = np.sqrt(_cluster_vcov(X, resid, codes, XtX_inv)[1, 1])
        b, sd, _ = _fit_engine(y, X, X, codes)
        est[s, 2], se[s, 2] = b[1], sd[1]
        b, sd, _ = _fit_engine(y, X, X[:, :1], codes)
        est[s, 3], se[s, 3] = b[1], sd[1]
    covered = np.abs(est - gamma10) <= crit * se
    coverage = covered.mean(axis=0)
    return pd.DataFrame(
        {
            "method": list(COVERAGE_METHODS),
            "coverage": coverage,
            "coverage_mc_se": np.sqrt(coverage * (1 - coverage) / n_sims),
            "mean_estimate": est.mean(axis=0),
            "sd_estimate": est.std(axis=0, ddof=1),
            "mean_std_error": se.mean(axis=0),
            "n_sims": n_sims,
        }
    )


def _group_slopes(x: np.ndarray, y: np.ndarray, codes: np.ndarray, J: int) -> np.ndarray:
    """OLS slope of y on x in each group (vectorised; every group has x-variation)."""
    n = np.bincount(codes, minlength=J)
    xbar = np.bincount(codes, x, J) / n
    ybar = np.bincount(codes, y, J) / n
    dx = x - xbar[codes]
    sxy = np.bincount(codes, dx * (y - ybar[codes]), J)
    sxx = np.bincount(codes, dx * dx, J)
    return sxy / sxx


@single_blas_thread
def efficiency_study(
    n_sims: int,
    *,
    n_groups: int,
    group_size,
    gamma10: float,
    tau00: float,
    tau11: float,
    sigma2: float,
    conf_level: float = 0.95,
    seed,
) -> pd.DataFrame:
    r"""How accurately do disaggregation and a random-slope model estimate the average slope?

    Each replication draws a data set with :func:`simulate_two_level` (``gamma00 = 0``, no
    level-2 predictor, uncorrelated random effects, ``x`` varying only within groups) and
    estimates the average within-group slope :math:`\gamma_{10}` two ways: the unweighted
    mean of the per-group OLS slopes (the workshop's "disaggregating", as
    :func:`mlm_lessons.compare_approaches` computes it) and the REML fit of the
    random-slope model ``y ~ x + (x | group)``. Both estimate the same quantity, so their
    root mean squared errors can be compared directly.

    Parameters
    ----------
    n_sims : int
        Number of simulated data sets (at least 2).
    n_groups, group_size, gamma10, tau00, tau11, sigma2
        As in :func:`simulate_two_level`; ``n_groups`` at least 3 and every group at least
        3 rows (so that every group has a slope).
    conf_level : float, default 0.95
        Nominal level of the intervals whose coverage is reported.
    seed : int or numpy.random.Generator
        Seed of the whole study.

    Returns
    -------
    pandas.DataFrame
        One row per method, ``"mean of per-group OLS slopes"`` and ``"multilevel (random
        slope)"``, with columns ``method, mean_estimate, bias, sd_estimate, rmse,
        rmse_ratio, mean_std_error, coverage, coverage_mc_se, n_sims``. ``rmse`` is the
        root mean squared error :math:`\sqrt{\overline{(\hat\gamma_{10} -
        \gamma_{10})^2}}`; ``rmse_ratio`` divides it by the RMSE of the mean of
        per-group slopes (so below 1 means more accurate than disaggregation);
        ``coverage`` is the share of intervals that contain ``gamma10``.

    Raises
    ------
    TypeError, ValueError
        As :func:`simulate_two_level`, and if ``n_sims < 2``, ``n_groups < 3``, a group
        has fewer than 3 rows or ``conf_level`` is not between 0 and 1.

    Notes
    -----
    The mean of the :math:`J` per-group slopes :math:`b_j` has the standard error
    :math:`s_b / \sqrt{J}` and a :math:`t_{J-1}` interval. Each :math:`b_j` has variance
    :math:`\tau_{11} + \sigma^2 / S_{xx,j}`, with :math:`S_{xx,j}` the within-group sum
    of squares of ``x``; the unweighted mean gives every group the same weight, whatever
    its :math:`S_{xx,j}`. The generalised least-squares estimate of the random-slope model
    weights group :math:`j` by about :math:`1/(\tau_{11} + \sigma^2/S_{xx,j})`, which is
    more efficient when the groups carry unequal information (unequal sizes, small groups
    whose :math:`S_{xx,j}` varies by chance) and :math:`\tau_{11}` is small beside
    :math:`\sigma^2/S_{xx,j}`. When every group has the same ``x`` values the two
    estimates are identical (``tests/test_simulate.py`` checks this closed form), and with
    many large groups they nearly are. The REML fits use the engine of
    :func:`mlm_lessons.fit_mixed` without the formula layer; boundary fits are kept.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> res = mlm.efficiency_study(5, n_groups=10, group_size=5, gamma10=2.0, tau00=4.0,
    ...                            tau11=0.25, sigma2=10.0, seed=1)
    >>> res[["method", "n_sims"]]
                             method  n_sims
    0  mean of per-group OLS slopes       5
    1     multilevel (random slope)       5
    """
    n_sims = _check_int(n_sims, "n_sims", 2)
    _check_int(n_groups, "n_groups", 3)
    sizes = _check_sizes(n_groups, group_size)
    if sizes.min() < 3:
        raise ValueError(
            f"every group needs at least 3 rows for its own slope and a random-slope fit, "
            f"but the smallest has {sizes.min()}"
        )
    gamma10 = _check_real(gamma10, "gamma10")
    L = _check_tau(tau00, tau11, 0.0)
    sigma2 = _check_real(sigma2, "sigma2", minimum=0.0, strict=True)
    check_conf_level(conf_level)
    rng = _rng(seed)
    J, N = len(sizes), int(sizes.sum())
    crit = np.array([stats.t.ppf(0.5 + conf_level / 2, J - 1),
                     stats.norm.ppf(0.5 + conf_level / 2)])
    est = np.empty((n_sims, 2))
    se = np.empty((n_sims, 2))
    for s in range(n_sims):
        codes, x, _, y = _draw(rng, sizes, L, (0.0, 0.0, gamma10, 0.0), np.sqrt(sigma2), 0.0)
        slopes = _group_slopes(x, y, codes, J)
        est[s, 0] = slopes.mean()
        se[s, 0] = slopes.std(ddof=1) / np.sqrt(J)
        X = np.column_stack([np.ones(N), x])
        b, sd, _ = _fit_engine(y, X, X, codes)
        est[s, 1], se[s, 1] = b[1], sd[1]
    covered = np.abs(est - gamma10) <= crit * se
    coverage = covered.mean(axis=0)
    rmse = np.sqrt(((est - gamma10) ** 2).mean(axis=0))
    mean = est.mean(axis=0)
    return pd.DataFrame(
        {
            "method": list(EFFICIENCY_METHODS),
            "mean_estimate": mean,
            "bias": mean - gamma10,
            "sd_estimate": est.std(axis=0, ddof=1),
            "rmse": rmse,
            "rmse_ratio": rmse / rmse[0],
            "mean_std_error": se.mean(axis=0),
            "coverage": coverage,
            "coverage_mc_se": np.sqrt(coverage * (1 - coverage) / n_sims),
            "n_sims": n_sims,
        }
    )


@single_blas_thread
def icc_estimator_study(
    n_sims: int,
    *,
    n_groups: int,
    group_size,
    tau2: float,
    sigma2: float,
    seed,
) -> pd.DataFrame:
    r"""Bias and spread of three ICC estimators over data sets with a known ICC.

    Each replication draws a null-model data set, :math:`Y_{ij} = u_{0j} +
    \varepsilon_{ij}` with :math:`\mathrm{Var}(u_{0j}) = \tau^2` and
    :math:`\mathrm{Var}(\varepsilon_{ij}) = \sigma^2` (:func:`simulate_two_level` with
    ``tau00=tau2``), and estimates :math:`\rho = \tau^2/(\tau^2 + \sigma^2)` with
    :func:`mlm_lessons.icc_slide`, :func:`mlm_lessons.icc_anova` and
    :func:`mlm_lessons.icc_reml`.

    Parameters
    ----------
    n_sims : int
        Number of simulated data sets (at least 2).
    n_groups, group_size
        As in :func:`simulate_two_level`; ``n_groups`` at least 2 and at least one group
        with two rows.
    tau2, sigma2 : float
        True between-group variance (0 or more) and within-group variance (positive).
    seed : int or numpy.random.Generator
        Seed of the whole study.

    Returns
    -------
    pandas.DataFrame
        One row per estimator (``"slide"``, ``"anova"``, ``"reml"``) with columns
        ``estimator, true_icc, mean, bias, sd, rmse, n_sims``: the mean of the estimates,
        its difference from the true ICC, their standard deviation and root mean squared
        error. The Monte Carlo standard error of ``bias`` is ``sd / sqrt(n_sims)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`simulate_two_level`, and if ``n_sims < 2``, ``n_groups < 2`` or every
        group has one row.

    Notes
    -----
    The estimators are computed exactly as the public functions compute them (the
    ANOVA ICC is clipped at 0, as :func:`mlm_lessons.icc_anova` reports it); the REML
    fits use the engine of :func:`mlm_lessons.fit_null` without the formula layer (a
    few milliseconds per fit). The slide's estimator is biased upward by about
    :math:`\sigma^2\,\overline{1/n_j}/(\tau^2 + \sigma^2)` (see
    :func:`mlm_lessons.icc_slide`); the other two are nearly unbiased unless the true ICC
    is close to 0, where clipping at 0 pushes their mean up.

    Examples
    --------
    The settings used in the book, with 500 replications (2 to 3 s; a few shown here).
    Pass unequal ``group_size`` to see the REML and ANOVA estimates part.

    >>> import mlm_lessons as mlm
    >>> res = mlm.icc_estimator_study(20, n_groups=30, group_size=10, tau2=1.0,
    ...                               sigma2=9.0, seed=1)
    >>> res[["estimator", "true_icc", "n_sims"]]
      estimator  true_icc  n_sims
    0     slide       0.1      20
    1     anova       0.1      20
    2      reml       0.1      20
    """
    from mlm_lessons.icc import _anova, _anova_from, _slide_from

    n_sims = _check_int(n_sims, "n_sims", 2)
    _check_int(n_groups, "n_groups", 2)
    sizes = _check_sizes(n_groups, group_size)
    if sizes.max() < 2:
        raise ValueError(
            "every group has a single row; the within-group variance cannot be estimated"
        )
    tau2 = _check_real(tau2, "tau2", minimum=0.0)
    L = _check_tau(tau2, 0.0, 0.0)
    sigma2 = _check_real(sigma2, "sigma2", minimum=0.0, strict=True)
    rng = _rng(seed)
    J, N = len(sizes), int(sizes.sum())
    ones = np.ones((N, 1))
    est = np.empty((n_sims, 3))
    for s in range(n_sims):
        codes, _, _, y = _draw(rng, sizes, L, (0.0, 0.0, 0.0, 0.0), np.sqrt(sigma2), 0.0)
        a = _anova(y, codes, J)
        est[s, 0] = _slide_from(a)[0]
        est[s, 1] = _anova_from(a)[0]
        _, _, fit = _fit_engine(y, ones, ones, codes)
        tau00 = float(fit.T[0][0, 0])
        est[s, 2] = tau00 / (tau00 + fit.sigma2)
    truth = float(tau2) / (float(tau2) + sigma2)
    mean = est.mean(axis=0)
    return pd.DataFrame(
        {
            "estimator": ["slide", "anova", "reml"],
            "true_icc": truth,
            "mean": mean,
            "bias": mean - truth,
            "sd": est.std(axis=0, ddof=1),
            "rmse": np.sqrt(((est - truth) ** 2).mean(axis=0)),
            "n_sims": n_sims,
        }
    )
