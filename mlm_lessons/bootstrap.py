"""Parametric bootstrap of a fitted two-level model: simulate, refit, test.

The parametric bootstrap treats a fitted model as the truth: it draws new outcome vectors
from the model's estimates (:func:`simulate_from_fit`), refits the model to each of them
(:func:`parametric_bootstrap`) and, for a likelihood-ratio test, refits a reduced and a
full model to outcomes drawn from the reduced one (:func:`bootstrap_lrt`). The
distribution of the refitted estimates or statistics stands in for their sampling
distribution, without the large-sample approximations that fail at the boundary of the
parameter space or with few groups.

Every refit is :meth:`MixedFit.refit` (the fitted model's design with a new outcome, the
same engine and convergence rule as :func:`mlm_lessons.fit_mixed`, started at the fitted
estimates), as in MixedModels.jl's ``parametricbootstrap``: simulate, refit, repeat.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mlm_lessons._checks import MLMWarning, check_count, check_fit, check_method, check_seed
from mlm_lessons._display import ResultDisplay
from mlm_lessons._threads import single_blas_thread
from mlm_lessons.inference import nesting
from mlm_lessons.models import MixedFit, embed_theta

__all__ = [
    "BootstrapLRTResult",
    "bootstrap_lrt",
    "parametric_bootstrap",
    "simulate_from_fit",
]


# --- input checks ----------------------------------------------------------------------------


def _check_fit(fit: object, name: str = "fit") -> MixedFit:
    return check_fit(fit, name, "from mlm_lessons (e.g. mlm.fit_mixed(...))")


# --- simulation ------------------------------------------------------------------------------


def simulate_from_fit(fit: MixedFit, *, n_sims: int, seed: int) -> np.ndarray:
    r"""New outcome vectors drawn from a fitted model's estimates.

    Parameters
    ----------
    fit : MixedFit
        A fitted model (:func:`mlm_lessons.fit_mixed` or a model stage).
    n_sims : int
        Number of outcome vectors.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same draws.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_sims, fit.n_obs)``; row ``s`` is one simulated outcome, in the row
        order of the fitted data.

    Raises
    ------
    TypeError
        If ``fit`` is not a :class:`~mlm_lessons.MixedFit`, or ``n_sims`` or ``seed`` is
        not an integer.
    ValueError
        If ``n_sims`` is not positive or ``seed`` is negative.

    Notes
    -----
    :meth:`MixedFit.simulate`: for every grouping factor and group,
    :math:`u^*_j \sim N(0, \hat T)`, and :math:`\varepsilon^* \sim N(0, \hat\sigma^2 I)`,
    all independent, added to :math:`X\hat\gamma`: the model's assumptions, with its
    estimates as the truth. A singular :math:`\hat T` (a variance estimated at zero) is
    allowed.

    Validated in ``tests/test_bootstrap.py``: the mean and the within-group covariance of
    the draws match :math:`X\hat\gamma` and :math:`Z_j \hat T Z_j' + \hat\sigma^2 I`, and
    REML refits recover the variance components on average.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> fit = mlm.fit_null(mlm.load_dataset("hsb"), "mathach", "school")
    >>> y = mlm.simulate_from_fit(fit, n_sims=3, seed=1)
    >>> y.shape
    (3, 7185)
    """
    _check_fit(fit)
    n_sims = check_count(n_sims, "n_sims")
    return fit.simulate(n_sims, seed=check_seed(seed))


def _quiet_refit(fit: MixedFit, y, method: str):
    """``fit.refit(y, method=...)`` with its warnings counted rather than shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MLMWarning)
        try:
            new = fit.refit(y, method=method)
        except ValueError:
            return None, caught
    return new, caught


@single_blas_thread
def parametric_bootstrap(
    fit: MixedFit, *, n_boot: int, seed: int, method: str | None = None
) -> pd.DataFrame:
    r"""Refit a model to outcomes simulated from its own estimates.

    Parameters
    ----------
    fit : MixedFit
        The fitted model; its estimates are the truth of the simulation.
    n_boot : int
        Number of simulated data sets.
    seed : int
        Seed of the simulation (:func:`simulate_from_fit`).
    method : {"REML", "ML"}, optional
        Criterion of the refits; the fit's own method when omitted. The same ``seed`` with
        both methods refits the same simulated outcomes, so the two can be compared pair by
        pair.

    Returns
    -------
    pandas.DataFrame
        One row per simulated data set: ``replicate``, then one column per fixed effect
        (named as in ``fit.params``), one per variance component (named as in
        ``fit.variance_components()``: ``tau00, tau11, ..., tau01, ..., sigma2``) and
        ``loglik``. A refit that finds no finite optimum gives a row of NaN; their number
        is in ``attrs["n_failed"]``. ``attrs["truth"]`` holds the generating values.

    Raises
    ------
    TypeError
        If ``fit`` is not a :class:`~mlm_lessons.MixedFit`.
    ValueError
        If ``n_boot`` is not a positive integer or ``method`` is unknown.

    Notes
    -----
    Each refit maximises the same profiled (RE)ML criterion as
    :func:`mlm_lessons.fit_mixed`, from the fit's estimates, with a bounded one-dimensional
    search for a random intercept and SLSQP otherwise (falling back to ``fit_mixed``'s
    optimizer when needed). The tests check that a refit of the observed outcome
    reproduces ``fit_mixed`` and that refits of simulated outcomes reach at least
    ``fit_mixed``'s log-likelihood.

    The mean of the replicates minus the truth estimates the bias of an estimator,
    :math:`E(\hat\theta) - \theta`, for data like the observed ones (Davison and Hinkley
    1997, ch. 2).

    References
    ----------
    Davison, A. C. and Hinkley, D. V. (1997). *Bootstrap Methods and their Application*.
    Cambridge University Press.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> fit = mlm.fit_null(hsb[hsb["school"].isin(hsb["school"].unique()[:20])],
    ...                    "mathach", "school")
    >>> boot = mlm.parametric_bootstrap(fit, n_boot=20, seed=1)
    >>> list(boot.columns)
    ['replicate', 'Intercept', 'tau00', 'sigma2', 'loglik']
    >>> len(boot), boot.attrs["n_failed"]
    (20, 0)
    """
    _check_fit(fit)
    n_boot = check_count(n_boot, "n_boot")
    check_seed(seed)
    method = check_method(fit.method if method is None else method)
    ys = fit.simulate(n_boot, seed=seed)
    vc = fit.variance_components()
    vc_names = list(vc.index)
    fixed_names = list(fit.params.index)
    rows = []
    n_singular = n_unconverged = 0
    for y in ys:
        new, caught = _quiet_refit(fit, y, method)
        if new is None or not np.isfinite(new.loglik):
            rows.append([np.nan] * (len(fixed_names) + len(vc_names) + 1))
            continue
        n_singular += new.singular
        n_unconverged += not new.converged
        rows.append([*new.params.to_numpy(), *new.variance_components()["estimate"],
                     new.loglik])
    out = pd.DataFrame(rows, columns=[*fixed_names, *vc_names, "loglik"], dtype=float)
    out.insert(0, "replicate", np.arange(n_boot))
    out.attrs["truth"] = {**fit.params.to_dict(), **vc["estimate"].to_dict()}
    out.attrs["n_failed"] = int(out["loglik"].isna().sum())
    out.attrs["n_singular"] = int(n_singular)
    out.attrs["n_unconverged"] = int(n_unconverged)
    return out


# --- bootstrap likelihood-ratio test ---------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BootstrapLRTResult(ResultDisplay):
    """A likelihood-ratio test with a parametric-bootstrap p-value.

    Attributes
    ----------
    statistic : float
        Observed ``2 (loglik_full - loglik_reduced)``, at least 0.
    df : int
        Number of extra parameters in the full model.
    p_value : float
        Bootstrap p-value ``(1 + #{draws >= statistic}) / (1 + n_valid)``.
    p_chi2 : float
        The naive chi-square(df) p-value, for comparison.
    draws : numpy.ndarray
        The bootstrap statistics (NaN for failed refits), one per simulated data set.
    n_boot, n_failed : int
        Simulated data sets, and those where a refit found no finite optimum.
    method : str
        ``"REML"`` (same fixed part, REML fits) or ``"ML"``.
    refitted : bool
        True when REML fits were refitted by ML because their fixed parts differ.
    """

    statistic: float
    df: int
    p_value: float
    p_chi2: float
    draws: np.ndarray
    n_boot: int
    n_failed: int
    method: str
    refitted: bool


@single_blas_thread
def bootstrap_lrt(
    reduced: MixedFit, full: MixedFit, *, n_boot: int, seed: int
) -> BootstrapLRTResult:
    r"""Likelihood-ratio test of nested models with a parametric-bootstrap p-value.

    Parameters
    ----------
    reduced, full : MixedFit
        Nested models fitted to the same data: every fixed and random term of ``reduced``
        is in ``full``.
    n_boot : int
        Number of data sets simulated from ``reduced``.
    seed : int
        Seed of the simulation.

    Returns
    -------
    BootstrapLRTResult

    Raises
    ------
    TypeError
        If an argument is not a :class:`~mlm_lessons.MixedFit`.
    ValueError
        If the models are not nested, use different rows or groups, or ``n_boot`` is not
        a positive integer.

    Notes
    -----
    With the same fixed part, REML fits are compared as they are; otherwise both models
    are refitted by ML. The statistic is :math:`LR = 2(\ell_1 - \ell_0)`. Outcomes are
    simulated from the reduced model (:func:`simulate_from_fit`), both models are refitted
    to each, and the p-value is the share of simulated statistics at least as large as the
    observed one, counting the observed one (Davison and Hinkley 1997, eq. 4.11):

    .. math:: p = \frac{1 + \#\{LR^*_b \ge LR\}}{1 + B}.

    This needs no assumption about the null distribution, which is not chi-square when a
    variance is tested at zero (Self and Liang 1987). Each full-model refit starts next to
    the reduced model's estimates (extra variances at zero) and keeps the best of that
    optimum, the reduced estimates themselves and the observed full fit's estimates, so
    every simulated statistic is at least zero, as it must be for nested models.

    Validated in ``tests/test_bootstrap.py``: the observed statistic reproduces lme4's
    ``anova(refit = FALSE)`` on HSB; when the reduced model is true, about half of the
    bootstrap statistics for one tested variance are zero (the chi-bar-square mixture) and
    the p-values are uniform within Monte Carlo error. The approach is that of
    ``pbkrtest::PBmodcomp`` in R (Halekoh and Højsgaard 2014).

    References
    ----------
    Davison, A. C. and Hinkley, D. V. (1997). *Bootstrap Methods and their Application*.
    Cambridge University Press.

    Halekoh, U. and Højsgaard, S. (2014). A Kenward-Roger approximation and parametric
    bootstrap methods for tests in linear mixed models: the R package pbkrtest. *Journal
    of Statistical Software* 59(9).

    Self, S. G. and Liang, K.-Y. (1987). Asymptotic properties of maximum likelihood
    estimators and likelihood ratio tests under nonstandard conditions. *Journal of the
    American Statistical Association* 82(398), 605-610.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.center(mlm.load_dataset("hsb"), "ses", group="school", name="cses")
    >>> small = hsb[hsb["school"].isin(hsb["school"].unique()[:30])]
    >>> ri = mlm.fit_mixed(small, "mathach ~ cses", "school")
    >>> rs = mlm.fit_mixed(small, "mathach ~ cses", "school", re_formula="cses",
    ...                    diagonal=True)
    >>> res = mlm.bootstrap_lrt(ri, rs, n_boot=19, seed=1)
    >>> res.df, res.method, res.n_boot, res.draws.shape
    (1, 'REML', 19, (19,))
    """
    _check_fit(reduced, "reduced")
    _check_fit(full, "full")
    n_boot = check_count(n_boot, "n_boot")
    check_seed(seed)
    same_fixed, _ = nesting(reduced, full)
    refitted = False
    if same_fixed and reduced.method == full.method:
        method = reduced.method
    else:
        method = "ML"
        refitted = reduced.method != "ML" or full.method != "ML"
        reduced, full = reduced.refit(method="ML"), full.refit(method="ML")
    statistic = max(0.0, 2.0 * (full.loglik - reduced.loglik))
    df = full.n_params - reduced.n_params

    ys = reduced.simulate(n_boot, seed=seed)
    draws = np.full(n_boot, np.nan)
    for b, y in enumerate(ys):
        r_new, _ = _quiet_refit(reduced, y, method)
        if r_new is None:
            continue
        f_new, _ = _quiet_refit(full, y, method)
        if f_new is None:
            continue
        # the full model contains the reduced one: its maximum is at least the reduced
        # maximum (evaluate it there, in case the optimizer stopped at a worse point)
        f_dev = min(-2.0 * f_new.loglik, f_new.objective(embed_theta(r_new, f_new)))
        draws[b] = max(0.0, -2.0 * r_new.loglik - f_dev)
    valid = draws[np.isfinite(draws)]
    n_failed = n_boot - len(valid)
    # Statistics equal up to optimizer noise count as "at least as large".
    tol = 1e-6 * max(1.0, statistic)
    p_value = (1 + np.sum(valid >= statistic - tol)) / (1 + len(valid))
    return BootstrapLRTResult(
        statistic=float(statistic),
        df=int(df),
        p_value=float(p_value),
        p_chi2=float(stats.chi2.sf(statistic, df)),
        draws=draws,
        n_boot=n_boot,
        n_failed=int(n_failed),
        method=method,
        refitted=refitted,
    )
