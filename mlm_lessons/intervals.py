r"""Confidence intervals for variance components: profile likelihood and parametric bootstrap.

A variance component is not estimated with a normal sampling distribution: its estimate is
skewed and bounded by zero, so ``estimate +- 1.96 SE`` intervals are poor and can include
negative values. Two better intervals, on the scale lme4's ``confint`` reports (standard
deviations, correlations, and the residual standard deviation sigma):

- **profile likelihood**: the set of values of one parameter whose profile deviance (the
  other parameters re-estimated) is within the chi-square(1) quantile of the minimum; an
  interval may reach the boundary (a standard deviation of 0, a correlation of +-1);
- **parametric bootstrap**: percentiles of the estimates refitted to outcomes simulated from
  the fit (:func:`mlm_lessons.parametric_bootstrap`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

from mlm_lessons._checks import (
    MLMWarning,
    check_choice,
    check_conf_level,
    check_count,
    check_fit,
    check_seed,
)
from mlm_lessons._threads import single_blas_thread
from mlm_lessons.models import MixedFit

__all__ = ["confint_variance"]


class _Params:
    """The variance parameters of a fit as one vector: SDs, correlations, then sigma."""

    def __init__(self, fit: MixedFit):
        self.fit = fit
        self.levels = list(fit.levels)
        self.names, self.kinds, self.slots = [], [], []
        several = len(self.levels) > 1
        vc = fit.variance_components()
        for level, tau in fit.taus.items():
            prefix = f"{level}: " if several else ""
            cols = list(tau.index)
            for i, c in enumerate(cols):
                self.names.append(f"{prefix}sd({c})")
                self.kinds.append("sd")
                self.slots.append((level, i, i))
            rows = vc[(vc["level"] == level) & vc["description"].str.startswith("Cov(")]
            for desc in rows["description"]:
                a, b = desc[4:-1].split(", ", 1)
                i, j = cols.index(a), cols.index(b)
                self.names.append(f"{prefix}cor({a}, {b})")
                self.kinds.append("cor")
                self.slots.append((level, i, j))
        self.names.append("sigma")
        self.kinds.append("sigma")
        self.slots.append(None)
        self.kinds = np.array(self.kinds)
        self.lower = np.where(self.kinds == "cor", -1.0, 0.0)
        self.upper = np.where(self.kinds == "cor", 1.0, np.inf)

    def estimate(self) -> np.ndarray:
        fit = self.fit
        out = []
        taus = fit.taus
        for kind, slot in zip(self.kinds, self.slots):
            if kind == "sigma":
                out.append(np.sqrt(fit.sigma2))
                continue
            level, i, j = slot
            T = taus[level].to_numpy()
            if kind == "sd":
                out.append(np.sqrt(max(T[i, i], 0.0)))
            else:
                d = np.sqrt(T[i, i] * T[j, j])
                out.append(T[i, j] / d if d > 0 else 0.0)
        return np.array(out, dtype=float)

    def deviance(self, psi: np.ndarray) -> float:
        fit = self.fit
        taus = {level: np.zeros_like(t.to_numpy()) for level, t in fit.taus.items()}
        sds = {}
        for v, kind, slot in zip(psi, self.kinds, self.slots):
            if kind == "sd":
                level, i, _ = slot
                sds[(level, i)] = v
                taus[level][i, i] = v * v
        for v, kind, slot in zip(psi, self.kinds, self.slots):
            if kind == "cor":
                level, i, j = slot
                taus[level][i, j] = taus[level][j, i] = v * sds[(level, i)] * sds[(level, j)]
        sigma = psi[-1]
        if not sigma > 0:
            return np.inf
        for T in taus.values():
            if np.linalg.eigvalsh(T).min() < -1e-10 * max(1.0, np.abs(T).max()):
                return np.inf
        return fit.deviance_at(taus, sigma * sigma)


class _Profile:
    """The profile deviance of parameter j; each optimisation starts from the nearest point
    already profiled (continuation), so that the path from the estimate outward is followed."""

    def __init__(self, params: _Params, j: int, psi_hat: np.ndarray):
        self.params, self.j, self.psi_hat = params, j, psi_hat
        self.free = np.arange(len(psi_hat)) != j
        self.bounds = [(lo, None if np.isinf(hi) else hi)
                       for lo, hi in zip(params.lower[self.free], params.upper[self.free])]
        self.done = {float(psi_hat[j]): psi_hat[self.free].copy()}

    def __call__(self, v: float) -> float:
        v = float(v)
        near = min(self.done, key=lambda a: abs(a - v))
        x0 = self.done[near]

        def g(z):
            psi = self.psi_hat.copy()
            psi[self.j] = v
            psi[self.free] = z
            return self.params.deviance(psi)

        if not self.free.any():
            return g(np.zeros(0))
        # the deviance is +inf outside the parameter space (a barrier); where a finite-
        # difference step crosses it, scipy computes inf - inf, which the line search rejects
        with np.errstate(invalid="ignore"):
            res = optimize.minimize(g, x0, method="L-BFGS-B", bounds=self.bounds,
                                    options={"ftol": 1e-13, "gtol": 1e-9, "maxls": 50})
        val = min(float(res.fun), g(x0))
        if np.isfinite(val):
            self.done[v] = res.x if res.fun <= g(x0) else x0
        return val


def _limit(f, d0, crit, start, stop, step):
    """Where f - d0 crosses crit, walking from ``start`` (the estimate) towards ``stop``."""
    def excess(v):
        return f(v) - d0 - crit

    direction = np.sign(step)
    v = start
    for _ in range(200):
        nxt = v + step
        if direction * (nxt - stop) >= 0:  # the next step passes the bound
            nxt = stop
        e = excess(nxt)
        if e > 0:
            return optimize.brentq(excess, v, nxt, xtol=1e-7 * max(1.0, abs(start)))
        if nxt == stop:
            return stop
        if e < -0.75 * crit:  # still near the minimum: larger steps
            step *= 2
        v = nxt
    return stop


@single_blas_thread
def confint_variance(fit: MixedFit, *, method: str = "profile", conf_level: float = 0.95,
                     n_boot: int = 500, seed: int = 1) -> pd.DataFrame:
    r"""Confidence intervals of every standard deviation, correlation and sigma of a fit.

    Parameters
    ----------
    fit : MixedFit
    method : {"profile", "bootstrap"}, default "profile"
        Profile likelihood, or percentiles of a parametric bootstrap.
    conf_level : float, default 0.95
    n_boot : int, default 500
        Bootstrap replicates (``method="bootstrap"``).
    seed : int, default 1
        Seed of the bootstrap simulation.

    Returns
    -------
    pandas.DataFrame
        One row per parameter (``sd(Intercept)``, ``sd(x)``, ``cor(Intercept, x)``, ...,
        prefixed by the grouping factor when there are several, then ``sigma``): ``parameter,
        estimate, ci_low, ci_high, method, at_boundary`` (the interval reaches a standard
        deviation of 0 or a correlation of +-1).

    Notes
    -----
    *Profile.* With :math:`d(\psi)` the deviance (the REML criterion of a REML fit) as a
    function of the standard deviations, correlations and :math:`\sigma`, the profile of one
    parameter is :math:`d_p(v) = \min d(\psi)` over the others with that parameter fixed at
    :math:`v`; the interval is :math:`\{v : d_p(v) - d(\hat\psi) \le \chi^2_{1,\text{conf}}\}`.
    When :math:`d_p` at the boundary (an SD of 0, a correlation of +-1) is within the
    quantile, the interval reaches it. For an ML fit this is lme4's
    ``confint(fit, method = "profile")`` (Bates et al. 2015, section 5.1), computed by root
    finding on the profile rather than on a grid, and agrees with it to 1e-4 (sleepstudy,
    ``tests/test_intervals.py``). For a REML fit the profile is that of the REML criterion,
    whose intervals account for the estimated fixed effects; lme4 profiles the ML deviance
    even for REML fits, so its intervals for a REML fit are the ML ones.

    *Bootstrap.* The ``(1 - conf)/2`` and ``(1 + conf)/2`` quantiles of the estimates refitted
    to outcomes simulated from the fit (Davison and Hinkley 1997, ch. 5): no assumption about
    the shape of the sampling distribution, at the cost of ``n_boot`` refits.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> sleep = mlm.load_dataset("sleepstudy")
    >>> fit = mlm.fit_mixed(sleep, "reaction ~ days + (days | subject)", method="ML")
    >>> mlm.confint_variance(fit)[["parameter", "ci_low", "ci_high"]].round(3)
                  parameter  ci_low  ci_high
    0         sd(Intercept)  14.381   37.716
    1              sd(days)   3.801    8.753
    2  cor(Intercept, days)  -0.481    0.685
    3                 sigma  22.898   28.858
    """
    check_fit(fit, hint="(from fit_mixed or a fit_* stage function)")
    conf_level = check_conf_level(conf_level)
    check_choice(method, "method", ("profile", "bootstrap"))
    # checked whichever the method, so that a wrong argument never passes unnoticed
    n_boot = check_count(n_boot, "n_boot", minimum=10)
    seed = check_seed(seed)
    params = _Params(fit)
    psi_hat = params.estimate()
    if method == "bootstrap":
        lo, hi = _bootstrap(fit, params, n_boot, seed, conf_level)
    else:
        lo, hi = _profile_limits(params, psi_hat, conf_level)
    at_boundary = (np.isclose(lo, params.lower) & (params.kinds != "sigma")) | np.isclose(
        hi, params.upper)
    return pd.DataFrame({
        "parameter": params.names,
        "estimate": psi_hat,
        "ci_low": lo,
        "ci_high": hi,
        "method": method,
        "at_boundary": at_boundary,
    })


def _profile_limits(params: _Params, psi_hat: np.ndarray, conf_level: float):
    d0 = params.deviance(psi_hat)
    crit = float(stats.chi2.ppf(conf_level, 1))
    lo = np.empty(len(psi_hat))
    hi = np.empty(len(psi_hat))
    for j, (v, kind) in enumerate(zip(psi_hat, params.kinds)):
        scale = max(abs(v), 1e-3) if kind != "cor" else 0.1
        prof = _Profile(params, j, psi_hat)
        stop = params.lower[j] if kind != "sigma" else v * 1e-3  # sigma -> 0: deviance -> inf
        lo[j] = _limit(prof, d0, crit, v, stop, -scale * 0.1) \
            if v > params.lower[j] else params.lower[j]
        hi_stop = params.upper[j] if np.isfinite(params.upper[j]) else v + 1e3 * scale
        hi[j] = _limit(prof, d0, crit, v, hi_stop, scale * 0.1) \
            if v < params.upper[j] else params.upper[j]
    return lo, hi


def _bootstrap(fit, params, n_boot, seed, conf_level):
    ys = fit.simulate(n_boot, seed=seed)
    draws = []
    for y in ys:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MLMWarning)
            try:
                new = fit.refit(y)
            except ValueError:
                continue
        draws.append(_Params(new).estimate())
    draws = np.array(draws)
    a = (1 - conf_level) / 2
    return np.quantile(draws, a, axis=0), np.quantile(draws, 1 - a, axis=0)
