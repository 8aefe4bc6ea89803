"""Power of tests of fixed effects in two-level designs, by simulation and by formula.

A balanced design is simulated many times and analysed with the two-level model that
generated it; the power is the share of replicates in which the tested effect is
significant. :func:`power_simulation` does this for a level-1 effect, a level-2 effect
or a cross-level interaction over a grid of numbers of groups and group sizes;
:func:`power_approximation` gives the large-sample formula, in which the design effect
appears.

The design: every group has the same ``group_size`` values of the level-1 predictor
``x`` (centred within the group, standard deviation 1) and the level-2 predictor ``z``
takes evenly spread values over the groups (mean 0, standard deviation 1). Effects are
therefore in outcome units per standard deviation of the predictor. For such balanced
designs the REML estimates and Wald statistics have closed forms (the model's fixed
effects are regressions of the groups' intercepts and slopes on ``z``), which is what makes
thousands of replicates take a fraction of a second.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from mlm_lessons._checks import (
    check_choice,
    check_count,
    check_int_grid,
    check_probability,
    check_real,
    check_real_array,
    check_seed,
)

__all__ = ["power_approximation", "power_simulation"]

EFFECTS = ("level1", "level2", "cross-level")
_COEF = {"level1": "gamma10", "level2": "gamma01", "cross-level": "gamma11"}


# --- checks ----------------------------------------------------------------------------------


def _int_grid(value, name: str, minimum: int) -> list[int]:
    return check_int_grid(value, name, minimum)


def _float_grid(value, name: str) -> list[float]:
    return check_real_array(value, name, what="finite numbers").ravel().tolist()


def _effects(effect) -> list[str]:
    effects = [effect] if isinstance(effect, str) else effect
    if not isinstance(effects, list | tuple) or not effects:
        raise TypeError(f"effect must be one of {', '.join(repr(e) for e in EFFECTS)} (or a "
                        f"list of them), not {effect!r}")
    return [check_choice(e, "effect", EFFECTS) for e in effects]


def _variances(tau00, tau11, sigma2) -> tuple[float, float, float]:
    variance = "a variance (a number >= 0)"
    return (check_real(tau00, "tau00", minimum=0.0, what=variance),
            check_real(tau11, "tau11", minimum=0.0, what=variance),
            check_real(sigma2, "sigma2", minimum=0.0, strict_min=True,
                       what="a positive variance (a number > 0)"))


def _check_alpha(alpha) -> float:
    return check_probability(alpha, "alpha")


# --- the balanced design ---------------------------------------------------------------------


def _spread(k: int) -> np.ndarray:
    """k evenly spread normal scores with mean 0 and standard deviation 1 (divisor k)."""
    v = stats.norm.ppf((np.arange(1, k + 1) - 0.5) / k)
    return (v - v.mean()) / v.std()


def _draw(rng, n_sims, J, n, coef, effect_size, tau00, tau11, sigma2):
    """Outcomes (n_sims, J, n) of the balanced design with one non-zero fixed effect."""
    x, z = _spread(n), _spread(J)
    g01 = effect_size if coef == "gamma01" else 0.0
    g10 = effect_size if coef == "gamma10" else 0.0
    g11 = effect_size if coef == "gamma11" else 0.0
    u0 = rng.standard_normal((n_sims, J)) * np.sqrt(tau00)
    u1 = rng.standard_normal((n_sims, J)) * np.sqrt(tau11)
    e = rng.standard_normal((n_sims, J, n)) * np.sqrt(sigma2)
    intercept = g01 * z + u0  # gamma00 = 0: it does not change any test
    slope = g10 + g11 * z + u1
    return intercept[:, :, None] + slope[:, :, None] * x + e, x, z


def _analyse(y: np.ndarray, x: np.ndarray, z: np.ndarray, random_slope: bool) -> dict:
    """REML estimates, standard errors and degrees of freedom of gamma01, gamma10, gamma11.

    ``y`` has shape (n_sims, J, n); every group has level-1 values ``x`` (mean 0) and
    ``z`` (mean 0) holds the level-2 values. Returns arrays of shape (n_sims,).
    """
    _, J, n = y.shape
    N = J * n
    sxx, szz = float(x @ x), float(z @ z)
    ybar = y.mean(axis=2)
    b1 = y @ x / sxx  # each group's OLS slope
    ssw = np.sum((y - ybar[:, :, None] - b1[:, :, None] * x) ** 2, axis=(1, 2))
    g00, g01 = ybar.mean(axis=1), ybar @ z / szz
    g10, g11 = b1.mean(axis=1), b1 @ z / szz
    rss0 = np.sum((ybar - g00[:, None] - g01[:, None] * z) ** 2, axis=1)
    rss1 = np.sum((b1 - g10[:, None] - g11[:, None] * z) ** 2, axis=1)
    if random_slope:
        sigma2 = ssw / (N - 2 * J)
        v1 = rss1 / (J - 2)  # estimates tau11 + sigma2/Sxx
        df1 = J - 2
    else:
        sigma2 = (ssw + sxx * rss1) / (N - J - 2)
        v1 = sigma2 / sxx
        df1 = N - J - 2
    v0 = rss0 / (J - 2)  # estimates tau00 + sigma2/n
    return {
        "gamma01": (g01, np.sqrt(v0 / szz), J - 2),
        "gamma10": (g10, np.sqrt(v1 / J), df1),
        "gamma11": (g11, np.sqrt(v1 / szz), df1),
    }


def _simulate_cell(seed, n_sims, J, n, effect, effect_size, tau00, tau11, sigma2, alpha, test):
    coef = _COEF[effect]
    rng = np.random.default_rng([seed, J, n, EFFECTS.index(effect)])
    rejected = 0
    chunk = max(1, int(4e6 // (J * n)))  # keep each block of outcomes under ~32 MB
    for start in range(0, n_sims, chunk):
        k = min(chunk, n_sims - start)
        y, x, z = _draw(rng, k, J, n, coef, effect_size, tau00, tau11, sigma2)
        est, se, df = _analyse(y, x, z, random_slope=tau11 > 0)[coef]
        t = est / se
        p = 2 * (stats.t.sf(np.abs(t), df) if test == "t" else stats.norm.sf(np.abs(t)))
        rejected += int(np.sum(p < alpha))
    return rejected / n_sims


def power_simulation(
    *,
    n_groups: int | Sequence[int],
    group_size: int | Sequence[int],
    effect: str | Sequence[str],
    effect_size: float | Sequence[float],
    tau00: float,
    tau11: float = 0.0,
    sigma2: float,
    n_sims: int,
    alpha: float = 0.05,
    seed: int,
    test: str = "t",
) -> pd.DataFrame:
    r"""Power of a test of one fixed effect in a balanced two-level design, by simulation.

    Parameters
    ----------
    n_groups, group_size : int or sequence of int
        Numbers of groups J (at least 4) and rows per group n (at least 3); every
        combination is simulated.
    effect : {"level1", "level2", "cross-level"} or a sequence of them
        The tested coefficient: the slope :math:`\gamma_{10}` of the level-1 predictor
        ``x``, the effect :math:`\gamma_{01}` of the level-2 predictor ``z``, or the
        cross-level interaction :math:`\gamma_{11}` of ``z`` and ``x``.
    effect_size : float or sequence of float
        True value of the tested coefficient, in outcome units per standard deviation of
        the predictor(s); the other fixed effects are 0. With 0 the "power" is the
        type I error rate.
    tau00, tau11, sigma2 : float
        Intercept variance, slope variance of ``x`` (0: a random-intercept model) and
        level-1 variance. The random effects are uncorrelated.
    n_sims : int
        Replicates per combination.
    alpha : float, default 0.05
        Significance level of the two-sided test.
    seed : int
        Seed; each combination of ``n_groups``, ``group_size`` and ``effect`` has its own
        stream derived from it, so adding values to a grid leaves the others unchanged.
    test : {"t", "z"}, default "t"
        Reference distribution of the Wald statistic: t with HLM's degrees of freedom
        (J - 2 for a level-2 coefficient and for level-1 coefficients whose slope is
        random; N - J - 2 for a fixed level-1 slope), or the standard normal, as lme4-based
        Wald z tests and ``fit_mixed``'s ``p_value`` use.

    Returns
    -------
    pandas.DataFrame
        One row per combination: ``n_groups, group_size, effect, effect_size, power,
        mc_se, n_sims``, where ``mc_se = sqrt(power (1 - power) / n_sims)`` is the Monte
        Carlo standard error.

    Raises
    ------
    TypeError
        If a count is not an integer (``5.0`` included), a number is a string or a boolean,
        ``seed`` is not a non-negative integer (``None`` included), or ``effect``/``test`` is
        not a string.
    ValueError
        For an unknown ``effect`` or ``test``, a negative variance, ``alpha`` outside
        (0, 1), too few groups or rows per group, a non-positive ``n_sims`` or a negative
        ``seed``.

    Notes
    -----
    Data: :math:`y_{ij} = \gamma_{01} z_j + (\gamma_{10} + \gamma_{11} z_j) x_i + u_{0j} +
    u_{1j} x_i + e_{ij}` with :math:`u_{0j} \sim N(0, \tau_{00})`, :math:`u_{1j} \sim N(0,
    \tau_{11})`, :math:`e_{ij} \sim N(0, \sigma^2)`; ``x`` and ``z`` are evenly spread
    normal scores with mean 0 and SD 1 (``x`` the same in every group).

    Analysis: the model that generated the data (random slope of ``x`` only when
    ``tau11 > 0``), fitted by REML, Wald test of the coefficient. In this balanced
    design REML has a closed form: :math:`\hat\gamma_{01}` and :math:`\hat\gamma_{00}`
    come from the regression of the group means on ``z``, :math:`\hat\gamma_{10}` and
    :math:`\hat\gamma_{11}` from the regression of the groups' OLS slopes on ``z``, and
    the standard errors from the residual variances of those regressions (Raudenbush and
    Bryk 2002, sec. 3.4), so each statistic has an exact t distribution (noncentral under
    the alternative), the distribution that the formulas of Optimal Design and PINT use.
    This is the REML analysis whenever REML's variance estimates are inside the parameter
    space; in the replicates where REML would set a variance to zero (or a correlation to
    +-1) the unconstrained estimate is kept, which keeps the test exact.
    ``tests/test_power.py`` checks the estimates and standard errors against
    :func:`mlm_lessons.fit_mixed` replicate by replicate, the type I error rate against
    ``alpha``, and the power against the exact noncentral t and the normal approximation
    (:func:`power_approximation`).

    References
    ----------
    Raudenbush, S. W. and Bryk, A. S. (2002). *Hierarchical Linear Models*, 2nd ed.
    Sage.

    Snijders, T. A. B. (2005). Power and sample size in multilevel linear models. In
    *Encyclopedia of Statistics in Behavioral Science*, Wiley, 1570-1573.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> res = mlm.power_simulation(n_groups=[10, 40], group_size=10, effect="level2",
    ...                            effect_size=0.3, tau00=0.2, sigma2=0.8, n_sims=500,
    ...                            seed=1)
    >>> res[["n_groups", "group_size", "effect", "power"]]
       n_groups  group_size  effect  power
    0        10          10  level2  0.336
    1        40          10  level2  0.928
    """
    groups = _int_grid(n_groups, "n_groups", 4)
    sizes = _int_grid(group_size, "group_size", 3)
    effects = _effects(effect)
    deltas = _float_grid(effect_size, "effect_size")
    tau00, tau11, sigma2 = _variances(tau00, tau11, sigma2)
    n_sims = check_count(n_sims, "n_sims")
    alpha = _check_alpha(alpha)
    seed = check_seed(seed)
    check_choice(test, "test", ("t", "z"))
    rows = []
    for eff, J, n, delta in itertools.product(effects, groups, sizes, deltas):
        power = _simulate_cell(seed, n_sims, J, n, eff, delta, tau00, tau11, sigma2, alpha,
                               test)
        rows.append((J, n, eff, delta, power, np.sqrt(power * (1 - power) / n_sims), n_sims))
    return pd.DataFrame(
        rows,
        columns=["n_groups", "group_size", "effect", "effect_size", "power", "mc_se",
                 "n_sims"],
    )


def power_approximation(
    *,
    n_groups: int | Sequence[int],
    group_size: int | Sequence[int],
    effect: str | Sequence[str],
    effect_size: float | Sequence[float],
    tau00: float,
    tau11: float = 0.0,
    sigma2: float,
    alpha: float = 0.05,
) -> pd.DataFrame:
    r"""Large-sample power of a test of one fixed effect in a balanced two-level design.

    Parameters
    ----------
    n_groups, group_size, effect, effect_size, tau00, tau11, sigma2, alpha
        As in :func:`power_simulation` (the same design and model).

    Returns
    -------
    pandas.DataFrame
        One row per combination: ``n_groups, group_size, effect, effect_size,
        std_error, power``.

    Raises
    ------
    TypeError, ValueError
        As :func:`power_simulation`.

    Notes
    -----
    The standard error of the estimate, with ``x`` and ``z`` of standard deviation 1,
    J groups of n rows and N = Jn:

    .. math::

        \mathrm{SE}(\hat\gamma_{01})^2 = \frac{\tau_{00} + \sigma^2/n}{J}
        = \frac{\tau_{00} + \sigma^2}{N}\,\bigl(1 + (n - 1)\rho\bigr),\qquad
        \mathrm{SE}(\hat\gamma_{10})^2 = \mathrm{SE}(\hat\gamma_{11})^2
        = \frac{\tau_{11} + \sigma^2/n}{J},

    with :math:`\rho = \tau_{00}/(\tau_{00} + \sigma^2)`: for a level-2 effect the
    variance is that of a simple random sample of N times the design effect
    (:func:`mlm_lessons.design_effect`). Power is
    :math:`\Phi(|\gamma|/\mathrm{SE} - z_{1-\alpha/2}) +
    \Phi(-|\gamma|/\mathrm{SE} - z_{1-\alpha/2})` (Snijders 2005). It ignores the
    uncertainty of the estimated variances, so it is too optimistic with few groups.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> res = mlm.power_approximation(n_groups=[10, 40], group_size=10, effect="level2",
    ...                               effect_size=0.3, tau00=0.2, sigma2=0.8)
    >>> res[["n_groups", "std_error", "power"]].round(3)
       n_groups  std_error  power
    0        10      0.167  0.434
    1        40      0.084  0.948
    """
    groups = _int_grid(n_groups, "n_groups", 1)
    sizes = _int_grid(group_size, "group_size", 1)
    effects = _effects(effect)
    deltas = _float_grid(effect_size, "effect_size")
    tau00, tau11, sigma2 = _variances(tau00, tau11, sigma2)
    alpha = _check_alpha(alpha)
    crit = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for eff, J, n, delta in itertools.product(effects, groups, sizes, deltas):
        var = (tau00 if eff == "level2" else tau11) + sigma2 / n
        se = np.sqrt(var / J)
        power = stats.norm.cdf(abs(delta) / se - crit) + stats.norm.cdf(-abs(delta) / se - crit)
        rows.append((J, n, eff, delta, se, power))
    return pd.DataFrame(
        rows,
        columns=["n_groups", "group_size", "effect", "effect_size", "std_error", "power"],
    )
