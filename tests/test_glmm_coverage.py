"""Coverage of fit_glmm's Wald intervals for the fixed effects, by simulation (slow).

Data are simulated from known truth with ``GLMMFit.simulate`` and refitted with ``refit``:
the share of 95% intervals that contain the true value must be within three Monte Carlo
standard errors of 0.95 (``3 sqrt(0.95 0.05 / R)`` = 0.046 for R = 200 replications).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import mlm_lessons as mlm

R = 200
TOL = 3 * np.sqrt(0.95 * 0.05 / R)


def _coverage(fit, truth):
    sims = fit.simulate(R, seed=20261201)
    hits = np.zeros(len(truth))
    for y in sims:
        with warnings.catch_warnings():  # boundary fits belong to the sampling distribution
            warnings.simplefilter("ignore", mlm.BoundaryWarning)
            f = fit.refit(y)
        hits += (f.fixed["ci_low"].to_numpy() <= truth) & (truth <= f.fixed["ci_high"].to_numpy())
    return hits / R


@pytest.mark.slow
def test_coverage_logistic_random_intercept_and_slope():
    rng = np.random.default_rng(1)
    J, m = 60, 20
    g = np.repeat(np.arange(J), m)
    x = rng.normal(size=J * m)
    b = rng.multivariate_normal([0, 0], [[0.8, 0.1], [0.1, 0.3]], J)
    eta = -0.4 + 0.7 * x + b[g, 0] + b[g, 1] * x
    df = pd.DataFrame({"y": (rng.random(J * m) < 1 / (1 + np.exp(-eta))).astype(int),
                       "x": x, "g": g})
    fit = mlm.fit_glmm(df, "y ~ x + (1 + x | g)")
    # the fitted model is the truth of the simulation
    cover = _coverage(fit, fit.params.to_numpy())
    print("coverage", dict(zip(fit.fixed["term"], cover)))
    assert np.all(np.abs(cover - 0.95) < TOL), cover


@pytest.mark.slow
def test_coverage_poisson_with_offset():
    rng = np.random.default_rng(2)
    J, m = 40, 10
    g = np.repeat(np.arange(J), m)
    x = rng.normal(size=J * m)
    expo = rng.uniform(0.5, 3, J * m)
    eta = np.log(expo) + 0.2 + 0.4 * x + rng.normal(0, 0.5, J)[g]
    df = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "g": g,
                       "lexp": np.log(expo)})
    fit = mlm.fit_glmm(df, "y ~ x + offset(lexp) + (1 | g)", family="poisson")
    cover = _coverage(fit, fit.params.to_numpy())
    print("coverage", dict(zip(fit.fixed["term"], cover)))
    assert np.all(np.abs(cover - 0.95) < TOL), cover
