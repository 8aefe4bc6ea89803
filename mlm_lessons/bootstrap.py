"""Parametric bootstrap of a fitted two-level model: simulate, refit, test.

The parametric bootstrap treats a fitted model as the truth: it draws new outcome vectors
from the model's estimates (:func:`simulate_from_fit`), refits the model to each of them
(:func:`parametric_bootstrap`) and, for a likelihood-ratio test, refits a reduced and a
full model to outcomes drawn from the reduced one (:func:`bootstrap_lrt`). The
distribution of the refitted estimates or statistics stands in for their sampling
distribution, without the large-sample approximations that fail at the boundary of the
parameter space or with few groups.

Refits reuse the fitted model's design matrices and the same deviance as
:func:`mlm_lessons.fit_mixed` (profiled over the fixed effects and sigma2), started from
the fitted estimates, so that one refit takes a few milliseconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from mlm_lessons import _lmm
from mlm_lessons._checks import check_method
from mlm_lessons._display import ResultDisplay
from mlm_lessons.models import MixedFit, _check_mixed_fit

__all__ = [
    "BootstrapLRTResult",
    "bootstrap_lrt",
    "parametric_bootstrap",
    "simulate_from_fit",
]


# --- input checks ----------------------------------------------------------------------------


def _check_fit(fit: object, name: str = "fit") -> MixedFit:
    return _check_mixed_fit(fit, "from mlm_lessons (e.g. mlm.fit_mixed(...))", name)


def _check_count(value: object, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


# --- simulation ------------------------------------------------------------------------------


def _tau_factor(T: np.ndarray) -> np.ndarray:
    """A matrix A with A A' = T, valid also when T is singular (a boundary estimate)."""
    w, V = np.linalg.eigh((T + T.T) / 2)
    return V * np.sqrt(np.clip(w, 0.0, None))


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
        If ``fit`` is not a :class:`~mlm_lessons.MixedFit`.
    ValueError
        If ``n_sims`` is not a positive integer.

    Notes
    -----
    For group :math:`j`, :math:`y^*_j = X_j\hat\gamma + Z_j u^*_j + \varepsilon^*_j` with
    :math:`u^*_j \sim N(0, \hat T)` and :math:`\varepsilon^*_j \sim N(0, \hat\sigma^2 I)`,
    all independent: the model's assumptions, with its estimates as the truth. The random
    effects of all replicates are drawn first, then the residuals. A singular
    :math:`\hat T` (a variance estimated at zero) is allowed.

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
    n_sims = _check_count(n_sims, "n_sims")
    d, sol = fit._design, fit._solution
    rng = np.random.default_rng(seed)
    A = _tau_factor(fit.tau.to_numpy())
    J, q = fit.n_groups, A.shape[0]
    u = rng.standard_normal((n_sims, J, q)) @ A.T
    e = rng.standard_normal((n_sims, fit.n_obs)) * np.sqrt(fit.sigma2)
    mean = d.X @ sol.beta if d.X.shape[1] else np.zeros(fit.n_obs)
    return mean + np.einsum("iq,siq->si", d.Z, u[:, d.codes, :]) + e


# --- fast refits -----------------------------------------------------------------------------


class _Refitter:
    """Refit one model's design to new outcome vectors (the y-free cross-products are kept)."""

    def __init__(self, fit: MixedFit, method: str):
        d = fit._design
        self.X, self.Z, self.codes = d.X, d.Z, d.codes
        self.reml = method == "REML"
        self.diagonal = fit.diagonal
        self.q = self.Z.shape[1]
        self.J = fit.n_groups
        self.base = _lmm.sufficient_stats(d.y, d.X, d.Z, d.codes)
        self.bounds = _lmm.lower_bounds(self.q, self.diagonal)

    def stats(self, y: np.ndarray) -> _lmm.Stats:
        Zty = np.stack(
            [np.bincount(self.codes, self.Z[:, a] * y, minlength=self.J) for a in range(self.q)],
            axis=1,
        )
        return dataclasses.replace(
            self.base, Zty=Zty, Xty=self.X.T @ y, yty=float(y @ y)
        )

    def fit(
        self, y: np.ndarray, starts: list[np.ndarray], points: tuple = ()
    ) -> _lmm.Solution | None:
        """The (RE)ML solution for outcome ``y``, or None when no finite optimum is found.

        ``starts`` are starting values of the optimizer; ``points`` are candidates that are
        only evaluated (the best of all wins). The deviance has a zero derivative where a
        standard deviation is zero, so a start must not put one exactly at zero: use
        :func:`_off_boundary`.
        """
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            return self._fit(y, starts, points)

    def _fit(self, y, starts, points) -> _lmm.Solution | None:
        st = self.stats(y)

        def f(t):
            return _lmm.deviance(np.atleast_1d(t), st, self.reml, self.diagonal)

        cands = []
        if len(starts[0]) == 1:
            top = 10.0 * max(1.0, max(float(s[0]) for s in starts))
            res = optimize.minimize_scalar(
                lambda t: f([t]), bounds=(0.0, top), method="bounded", options={"xatol": 1e-7}
            )
            cands += [(np.array([res.x]), res.fun), (np.array([0.0]), f([0.0]))]
            if res.x > 0.99 * top:  # the optimum may lie beyond the bracket
                cands.append(self._robust(st, starts[0]))
        else:
            # SLSQP rather than L-BFGS-B: the same optimum in these refits, and it does not
            # slow down when BLAS threads compete for a busy CPU (L-BFGS-B's setulb can
            # then take milliseconds per iteration, and a bootstrap calls it thousands of
            # times).
            for s in starts:
                res = optimize.minimize(
                    f, s, method="SLSQP", bounds=self.bounds, jac="2-point",
                    options={"ftol": 1e-10, "maxiter": 500},
                )
                cands.append((res.x, res.fun))
        cands += [(np.asarray(p, dtype=float), f(p)) for p in points]
        theta, dev = min(cands, key=lambda c: c[1])
        if not np.isfinite(dev):
            theta, dev = self._robust(st, starts[0])
            if not np.isfinite(dev):
                return None
        return _lmm.solve(theta, st, self.reml, self.diagonal)

    def _robust(self, st, start):
        opt = _lmm.optimize_theta(st, start, self.reml, self.diagonal)
        return opt.theta, opt.deviance


def _theta(fit: MixedFit) -> np.ndarray:
    return _off_boundary(_lmm.theta_from_lambda(fit._solution.lam, fit.diagonal), fit)


def _off_boundary(theta: np.ndarray, fit: MixedFit, floor: float = 0.1) -> np.ndarray:
    """Move zero diagonal elements of Lambda (relative SDs) to ``floor`` for a start."""
    q = fit.tau.shape[0]
    theta = np.array(theta, dtype=float)
    diag = (
        np.arange(q)
        if fit.diagonal
        else np.array([k for k, (i, j) in enumerate(
            (i, j) for j in range(q) for i in range(j, q)) if i == j])
    )
    theta[diag] = np.maximum(theta[diag], floor)
    return theta


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
    n_boot = _check_count(n_boot, "n_boot")
    method = check_method(fit.method if method is None else method)
    ys = simulate_from_fit(fit, n_sims=n_boot, seed=seed)
    refitter = _Refitter(fit, method)
    start = [_theta(fit)]
    vc_names = list(fit.variance_components().index)
    fixed_names = list(fit.params.index)
    q = refitter.q
    pairs = [(i, i) for i in range(q)]
    if not fit.diagonal:
        pairs += [(i, j) for i in range(q) for j in range(i + 1, q)]
    rows = []
    for y in ys:
        sol = refitter.fit(y, start)
        if sol is None:
            rows.append([np.nan] * (len(fixed_names) + len(vc_names) + 1))
            continue
        T = sol.sigma2 * sol.lam @ sol.lam.T
        rows.append(
            [*sol.beta, *(T[i, j] for i, j in pairs), sol.sigma2, -sol.deviance / 2]
        )
    out = pd.DataFrame(rows, columns=[*fixed_names, *vc_names, "loglik"], dtype=float)
    out.insert(0, "replicate", np.arange(n_boot))
    vc = fit.variance_components()["estimate"]
    out.attrs["truth"] = {**fit.params.to_dict(), **vc.to_dict()}
    out.attrs["n_failed"] = int(out["loglik"].isna().sum())
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


def _nesting(reduced: MixedFit, full: MixedFit) -> list[int]:
    """Check that ``reduced`` is nested in ``full``; positions of its random terms in full."""
    if reduced.group != full.group:
        raise ValueError(
            f"the models use different groups ({reduced.group!r} and {full.group!r}); "
            f"a likelihood-ratio test needs the same grouping"
        )
    same_rows = reduced.n_obs == full.n_obs and reduced._data.index.equals(full._data.index)
    if not same_rows or not np.array_equal(reduced._design.y, full._design.y):
        raise ValueError(
            "the models were fitted to different rows or outcomes; fit both to the same "
            "data frame (drop missing values first)"
        )
    fx_r, fx_f = list(reduced.params.index), list(full.params.index)
    missing = [t for t in fx_r if t not in fx_f]
    rn_r, rn_f = list(reduced.tau.index), list(full.tau.index)
    missing += [f"random {t}" for t in rn_r if t not in rn_f]
    if missing:
        raise ValueError(
            f"reduced is not nested in full: {', '.join(missing)} not in the full model; "
            f"pass the smaller model first"
        )
    idx = [rn_f.index(t) for t in rn_r]
    if idx != sorted(idx) or (full.diagonal and not reduced.diagonal and len(rn_r) > 1):
        raise ValueError(
            "the reduced model's random part is not nested in the full model's (order of "
            "random terms, or correlated effects against diagonal=True)"
        )
    if full.n_params <= reduced.n_params:
        raise ValueError(
            f"full has {full.n_params} parameters and reduced {reduced.n_params}; the full "
            f"model must have more: pass the smaller model first"
        )
    return idx


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
    n_boot = _check_count(n_boot, "n_boot")
    _nesting(reduced, full)
    same_fixed = list(reduced.params.index) == list(full.params.index)
    refitted = False
    if same_fixed and reduced.method == full.method:
        method = reduced.method
    else:
        method = "ML"
        refitted = reduced.method != "ML" or full.method != "ML"
        reduced, full = reduced.refit(method="ML"), full.refit(method="ML")
    idx = _nesting(reduced, full)
    statistic = max(0.0, 2.0 * (full.loglik - reduced.loglik))
    df = full.n_params - reduced.n_params

    ys = simulate_from_fit(reduced, n_sims=n_boot, seed=seed)
    r_fit, f_fit = _Refitter(reduced, method), _Refitter(full, method)
    r_start, f_start = _theta(reduced), _theta(full)
    draws = np.full(n_boot, np.nan)
    for b, y in enumerate(ys):
        s0 = r_fit.fit(y, [r_start])
        if s0 is None:
            continue
        embedded = _embed_solution(s0, full, idx)
        s1 = f_fit.fit(y, [_off_boundary(embedded, full)], points=(embedded, f_start))
        if s1 is None:
            continue
        draws[b] = max(0.0, s0.deviance - s1.deviance)
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


def _embed_solution(sol: _lmm.Solution, full: MixedFit, idx: list[int]) -> np.ndarray:
    q = full.tau.shape[0]
    lam = np.zeros((q, q))
    lam[np.ix_(idx, idx)] = sol.lam
    return _lmm.theta_from_lambda(lam, full.diagonal)
