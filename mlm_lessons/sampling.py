"""Sampling distributions under a known model: are a model's standard errors honest?

:func:`sampling_study` takes one fit as the truth, simulates outcomes from it and refits
several candidate models (the right one and wrong ones) to every simulated outcome. For each
candidate and fixed effect it compares the standard deviation of the estimates over the
replications (the true sampling SD of that estimator) with the mean standard error the
candidate reports, and counts how often its Wald interval covers the true value. A model
whose random part is wrong (a crossed factor fitted as nested, a factor left out) reports
standard errors that are too small for the effects of predictors measured on the mangled
factor, and its intervals cover less often than they claim.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from mlm_lessons._checks import (
    MLMWarning,
    check_conf_level,
    check_count,
    check_fit,
    check_fit_dict,
    check_seed,
)
from mlm_lessons.models import MixedFit

__all__ = ["sampling_study"]

_HINT = "(from fit_mixed, fit_null, ...)"


def _refit(fit: MixedFit, y) -> tuple[MixedFit | None, bool]:
    """``fit.refit(y)``; its warnings are counted (a singular refit), not shown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLMWarning)
        try:
            new = fit.refit(y)
        except (ValueError, np.linalg.LinAlgError):
            return None, False
    if not np.isfinite(new.loglik):
        return None, False
    return new, bool(new.singular)


def sampling_study(
    truth: MixedFit,
    fits: Mapping[str, MixedFit],
    *,
    n_sims: int,
    seed: int,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    r"""Simulate from one model, refit several, and compare their SEs with the truth.

    Parameters
    ----------
    truth : MixedFit
        The generating model: outcomes are simulated from its estimates
        (:meth:`MixedFit.simulate`), which are the true values of the study.
    fits : dict of str to MixedFit
        The candidate models, keyed by the name to show, fitted to the same rows and
        outcome as ``truth`` (``truth`` itself may be one of them). Each is refitted, with
        its own random part and criterion, to every simulated outcome. Their fixed effects
        must be fixed effects of ``truth``.
    n_sims : int
        Number of simulated outcome vectors (at least 2).
    seed : int
        Seed of the simulation; every candidate is refitted to the same outcomes.
    conf_level : float, default 0.95
        Level of the Wald intervals whose coverage is counted.

    Returns
    -------
    pandas.DataFrame
        One row per candidate and fixed effect, candidates in the order given:
        ``model, term, truth, mean_estimate, sd_estimate, mean_std_error, se_ratio,
        coverage, coverage_mc_se, n_sims, n_singular, n_failed``. ``sd_estimate`` is the
        standard deviation of the estimates over the replications (the estimator's true
        sampling SD, up to Monte Carlo error); ``mean_std_error`` the mean of the standard
        errors the candidate reported; ``se_ratio`` their ratio (1 when the SEs are
        honest, below 1 when they are too small); ``coverage`` the share of Wald
        intervals that contain the true value, with Monte Carlo standard error
        :math:`\sqrt{c(1-c)/n}`. ``n_singular`` counts refits at a boundary (kept, as an
        analyst would keep them) and ``n_failed`` refits without a finite optimum
        (left out).

    Raises
    ------
    TypeError
        If ``truth`` or a value of ``fits`` is not a :class:`~mlm_lessons.MixedFit`, or
        ``fits`` is not a dict.
    ValueError
        If ``fits`` is empty, a candidate was fitted to other rows or another outcome than
        ``truth``, has a fixed effect that ``truth`` lacks, or ``n_sims``, ``seed`` or
        ``conf_level`` is invalid.

    Notes
    -----
    With :math:`\hat\gamma^{(s)}` and :math:`\widehat{SE}^{(s)}` a candidate's estimate and
    standard error in replication :math:`s = 1, \dots, S`,

    .. math::

        \text{se\_ratio} = \frac{S^{-1} \sum_s \widehat{SE}^{(s)}}
        {\operatorname{SD}_s(\hat\gamma^{(s)})}, \qquad
        \text{coverage} = S^{-1} \sum_s
        \mathbb{1}\{|\hat\gamma^{(s)} - \gamma| \le z_{1-\alpha/2}\, \widehat{SE}^{(s)}\}.

    The Monte Carlo error of ``sd_estimate`` is about ``sd_estimate / sqrt(2 (S - 1))``,
    10% for 50 replications. Each refit starts at the candidate's estimates
    (:meth:`MixedFit.refit`). Validated against closed forms on balanced crossed designs,
    where every candidate's estimate of the intercept is the grand mean and its true
    variance is :math:`\tau_a/I + \tau_b/J + \sigma^2/(IJ)` (``tests/test_sampling.py``).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> pen = mlm.load_dataset("penicillin")
    >>> crossed = mlm.fit_mixed(pen, "diameter ~ 1 + (1 | plate) + (1 | sample)")
    >>> plates = mlm.fit_mixed(pen, "diameter ~ 1 + (1 | plate)")
    >>> study = mlm.sampling_study(crossed, {"crossed": crossed, "plates only": plates},
    ...                            n_sims=50, seed=1)
    >>> study[["model", "se_ratio"]].round(1)
             model  se_ratio
    0      crossed       1.0
    1  plates only       0.2
    """
    check_fit(truth, "truth", _HINT)
    check_fit_dict(fits, "sampling_study(truth, {'crossed': fit1, 'nested': fit2}, ...)", _HINT)
    n_sims = check_count(n_sims, "n_sims", minimum=2)
    seed = check_seed(seed)
    conf_level = check_conf_level(conf_level)
    true_values = truth.params
    for name, fit in fits.items():
        diffs = truth.fingerprint.differences(fit.fingerprint)
        if fit.outcome != truth.outcome:
            diffs.insert(0, f"outcomes {truth.outcome!r} and {fit.outcome!r}")
        if diffs:
            raise ValueError(
                f"fits[{name!r}] was not fitted to the data of truth ({'; '.join(diffs)}); "
                f"fit every candidate to the same data frame as truth"
            )
        extra = [t for t in fit.params.index if t not in true_values.index]
        if extra:
            raise ValueError(
                f"fits[{name!r}] has fixed effects that truth lacks ({', '.join(extra)}), "
                f"so they have no true value; give truth every fixed effect of the "
                f"candidates"
            )

    ys = truth.simulate(n_sims, seed=seed)
    crit = stats.norm.ppf(0.5 + conf_level / 2)
    rows = []
    for name, fit in fits.items():
        terms = list(fit.params.index)
        est = np.full((n_sims, len(terms)), np.nan)
        se = np.full_like(est, np.nan)
        n_singular = 0
        for s, y in enumerate(ys):
            new, singular = _refit(fit, y)
            if new is None:
                continue
            n_singular += singular
            est[s] = new.params.to_numpy()
            se[s] = new.fixed["std_error"].to_numpy()
        ok = ~np.isnan(est[:, 0]) if terms else np.ones(n_sims, bool)
        n_ok = int(ok.sum())
        for j, term in enumerate(terms):
            e, s_ = est[ok, j], se[ok, j]
            gamma = float(true_values[term])
            sd = float(np.std(e, ddof=1)) if n_ok > 1 else np.nan
            mean_se = float(np.mean(s_)) if n_ok else np.nan
            cover = float(np.mean(np.abs(e - gamma) <= crit * s_)) if n_ok else np.nan
            rows.append(
                {
                    "model": name,
                    "term": term,
                    "truth": gamma,
                    "mean_estimate": float(np.mean(e)) if n_ok else np.nan,
                    "sd_estimate": sd,
                    "mean_std_error": mean_se,
                    "se_ratio": mean_se / sd if n_ok > 1 and sd > 0 else np.nan,
                    "coverage": cover,
                    "coverage_mc_se": float(np.sqrt(cover * (1 - cover) / n_ok))
                    if n_ok
                    else np.nan,
                    "n_sims": n_sims,
                    "n_singular": int(n_singular),
                    "n_failed": n_sims - n_ok,
                }
            )
    return pd.DataFrame(rows)
