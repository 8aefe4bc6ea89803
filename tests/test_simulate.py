"""Tests of mlm_lessons.simulate: data with known truth, and the simulation studies.

References are the data-generating model itself (moments of the draws, parameters recovered
by fit_mixed) and the nominal coverage of intervals, with binomial tolerances.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import mlm_lessons as mlm
from mlm_lessons.simulate import _check_tau, _fit_engine

BASE = dict(gamma00=10.0, tau00=4.0, sigma2=25.0)


# --- simulate_two_level ----------------------------------------------------------------------


def test_layout_and_truth():
    df = mlm.simulate_two_level(12, 3, **BASE, gamma10=2.0, x_between_sd=1.0, seed=3)
    assert list(df.columns) == ["group", "x", "z", "y"]
    assert len(df) == 36
    assert df["group"].nunique() == 12
    assert df["group"].iloc[0] == "g01" and df["group"].iloc[-1] == "g12"
    # z is a level-2 variable: constant within each group
    assert (df.groupby("group")["z"].nunique() == 1).all()
    truth = df.attrs["truth"]
    assert truth["gamma10"] == 2.0 and truth["tau00"] == 4.0 and truth["group_size"] == 3
    assert truth["icc"] == pytest.approx(4 / 29)


def test_unbalanced_sizes_and_reproducibility():
    sizes = [1, 5, 2, 7]
    a = mlm.simulate_two_level(4, sizes, **BASE, seed=11)
    b = mlm.simulate_two_level(4, np.array(sizes), **BASE, seed=11)
    c = mlm.simulate_two_level(4, sizes, **BASE, seed=12)
    assert a.groupby("group").size().tolist() == sizes
    assert a.attrs["truth"]["group_size"] == sizes
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["y"], c["y"])


@pytest.mark.parametrize(
    "tau00, tau11, tau01", [(4.0, 1.0, 0.5), (4.0, 1.0, -2.0), (0.0, 1.0, 0.0), (2.0, 0.0, 0.0)]
)
def test_covariance_factor(tau00, tau11, tau01):
    # closed form: the factor reproduces T, also when T is singular
    L = _check_tau(tau00, tau11, tau01)
    assert_allclose(L @ L.T, [[tau00, tau01], [tau01, tau11]], atol=1e-12)


def test_moments_of_the_draws():
    # Known truth: z ~ N(0, 1) per group; x = xbar_j + N(0, 1) with SD(xbar_j) = 0.7.
    # With J = 4000 groups, the SE of a variance estimate of a unit-variance normal is
    # sqrt(2/J) = 0.022; tolerance 0.1 is more than 4 SE.
    df = mlm.simulate_two_level(4000, 4, **BASE, x_between_sd=0.7, seed=5)
    z = df.groupby("group")["z"].first()
    assert abs(z.mean()) < 0.1 and abs(z.var() - 1) < 0.1
    within = (df["x"] - df.groupby("group")["x"].transform("mean")).pow(2).sum() / (len(df) - 4000)
    assert abs(within - 1) < 0.05  # SE sqrt(2/12000) = 0.013
    # Var(group mean of x) = 0.49 + 1/4
    assert abs(df.groupby("group")["x"].mean().var() - (0.49 + 0.25)) < 0.1


def test_fit_recovers_the_truth():
    # Known truth recovered by REML: each fixed effect within 4 of its SEs; variance
    # components within 4 approximate SEs (sqrt(2/J) relative for tau, sqrt(2/N) for sigma2,
    # inflated by the level-1 noise in a group's slope and intercept).
    truth = dict(
        gamma00=10.0,
        gamma10=2.0,
        gamma01=1.5,
        gamma11=-0.8,
        tau00=4.0,
        tau11=1.0,
        tau01=0.6,
        sigma2=9.0,
    )
    df = mlm.simulate_two_level(400, 25, **truth, x_between_sd=0.5, seed=2024)
    fit = mlm.fit_mixed(df, "y ~ z * x", "group", re_formula="x")
    est = fit.params
    se = fit.fixed.set_index("term")["std_error"]
    for term, key in [
        ("Intercept", "gamma00"),
        ("x", "gamma10"),
        ("z", "gamma01"),
        ("z:x", "gamma11"),
    ]:
        assert abs(est[term] - truth[key]) < 4 * se[term], term
    J, n = 400, 25
    T = fit.tau.to_numpy()
    assert abs(T[0, 0] - 4.0) < 4 * np.sqrt(2 / J) * (4.0 + 9.0 / n)
    assert abs(T[1, 1] - 1.0) < 4 * np.sqrt(2 / J) * (1.0 + 9.0 / n)
    assert abs(T[0, 1] - 0.6) < 4 * np.sqrt((4.0 * 1.0 + 0.6**2) / J) * 1.5
    assert abs(fit.sigma2 - 9.0) < 4 * np.sqrt(2 / (J * n)) * 9.0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_groups=2.5), TypeError, "n_groups must be an integer"),
        (dict(n_groups=0), ValueError, "n_groups must be an integer >= 1"),
        (dict(group_size=[2, 2]), ValueError, "group_size has 2 entries but n_groups is 3"),
        (dict(group_size=[2, 0, 2]), ValueError, "every group_size must be at least 1"),
        (dict(group_size=0), ValueError, "every group_size must be at least 1"),
        (dict(group_size=[1.5, 2, 2]), TypeError, "group_size must be an integer or a 1-d"),
        (dict(group_size="5"), TypeError, "group_size must be an integer or a 1-d"),
        (dict(tau00=-1.0), ValueError, r"tau00 must be a variance \(a number >= 0\)"),
        (dict(tau11=-0.1), ValueError, r"tau11 must be a variance \(a number >= 0\)"),
        (dict(tau01=3.0, tau11=1.0), ValueError, "not positive semi-definite"),
        (dict(sigma2=0.0), ValueError, "sigma2 must be a positive variance"),
        (dict(sigma2="1"), TypeError, "sigma2 must be a number"),
        (dict(gamma10=np.inf), ValueError, "gamma10 must be a finite number"),
        (dict(x_between_sd=-1.0), ValueError, "x_between_sd must be a number >= 0"),
        (dict(seed=None), TypeError, "seed must be a non-negative integer"),
        (dict(seed=1.5), TypeError, "seed must be a non-negative integer"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = dict(n_groups=3, group_size=2, **BASE, seed=1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        mlm.simulate_two_level(**args)


# --- the engine shortcut used by the studies ---------------------------------------------------


@pytest.mark.parametrize("re_formula, zcols", [(None, 1), ("x", 2)])
def test_engine_shortcut_equals_fit_mixed(re_formula, zcols):
    df = mlm.simulate_two_level(
        40, 12, gamma00=10.0, gamma10=1.0, tau00=4.0, tau11=1.0, sigma2=4.0, seed=8
    )
    fit = mlm.fit_mixed(df, "y ~ x", "group", re_formula=re_formula)
    codes = pd.factorize(df["group"], sort=False)[0]
    X = np.column_stack([np.ones(len(df)), df["x"].to_numpy()])
    beta, se, sol = _fit_engine(df["y"].to_numpy(), X, X[:, :zcols], codes)
    # the same engine and start; the design matrices differ only by rounding, which the
    # optimizer can carry to about 1e-9 relative (its convergence tolerance is far tighter
    # than the statistical precision), so rtol 1e-6 is a strict check
    assert_allclose(beta, fit.fixed["estimate"], rtol=1e-6)
    assert_allclose(se, fit.fixed["std_error"], rtol=1e-6)
    assert_allclose(sol.sigma2, fit.sigma2, rtol=1e-6)


# --- coverage_study ----------------------------------------------------------------------------

STUDY = dict(n_groups=30, group_size=30, gamma10=2.0, sigma2=10.0, x_between_sd=0.5)


def _binomial_tolerance(n_sims, p=0.95, k=3.5):
    # k Monte Carlo standard errors of a coverage proportion around p
    return k * np.sqrt(p * (1 - p) / n_sims)


def test_coverage_study_layout_quick():
    res = mlm.coverage_study(10, **STUDY, tau00=4.0, tau11=1.0, seed=1)
    assert res["method"].tolist() == list(mlm.simulate.COVERAGE_METHODS)
    assert list(res.columns) == [
        "method",
        "coverage",
        "coverage_mc_se",
        "mean_estimate",
        "sd_estimate",
        "mean_std_error",
        "n_sims",
    ]
    assert (res["n_sims"] == 10).all()
    # both OLS rows are the same estimator
    assert res.loc[0, "mean_estimate"] == res.loc[1, "mean_estimate"]
    again = mlm.coverage_study(10, **STUDY, tau00=4.0, tau11=1.0, seed=1)
    pd.testing.assert_frame_equal(res, again)


@pytest.mark.slow
def test_coverage_without_clustering_is_nominal():
    # Known truth: with tau00 = tau11 = 0 the rows are independent, so every method's 95%
    # interval covers gamma10 in about 95% of data sets (binomial tolerance, 3.5 MC SEs).
    n = 200
    res = mlm.coverage_study(n, **STUDY, tau00=0.0, tau11=0.0, seed=2).set_index("method")
    tol = _binomial_tolerance(n)
    for method in res.index:
        assert abs(res.loc[method, "coverage"] - 0.95) < tol, method
    # and every estimator is unbiased: mean within 4 MC SEs of the truth
    mc_se = res["sd_estimate"] / np.sqrt(n)
    assert (np.abs(res["mean_estimate"] - 2.0) < 4 * mc_se).all()


@pytest.mark.slow
def test_coverage_with_random_slopes():
    # Known truth: the sampling variance of the pooled slope is about 0.07 here (tau11 / J
    # = 0.033, plus tau00 carried by the group means of x, plus sigma2 / Sxx), while the
    # naive SE^2 is about (sigma2 + tau00 + tau11 E[x^2]) / Sxx = 0.014; so the naive
    # coverage is about P(|Z| < 1.96 * 0.44) = 0.61. The random intercept model omits tau11
    # too. The random slope model and the cluster-robust SE are near 95% (3.5 MC SEs).
    n = 200
    res = mlm.coverage_study(n, **STUDY, tau00=4.0, tau11=1.0, seed=3).set_index("method")
    tol = _binomial_tolerance(n)
    assert res.loc["pooled OLS, naive SE", "coverage"] < 0.85
    assert res.loc["multilevel (random intercept)", "coverage"] < 0.85
    assert abs(res.loc["multilevel (random slope)", "coverage"] - 0.95) < tol
    assert abs(res.loc["pooled OLS, cluster-robust SE", "coverage"] - 0.95) < tol
    # the random-slope SE estimates the true sampling SD (within 10%, MC error of an SD
    # over 200 draws is 5%)
    row = res.loc["multilevel (random slope)"]
    assert abs(row["mean_std_error"] / row["sd_estimate"] - 1) < 0.1


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_sims=1), ValueError, "n_sims must be an integer >= 2"),
        (dict(n_groups=2), ValueError, "n_groups must be an integer >= 3"),
        (dict(conf_level=95), ValueError, "conf_level must be between 0 and 1"),
        (dict(tau11=-1.0), ValueError, r"tau11 must be a variance \(a number >= 0\)"),
        (dict(group_size=1, n_groups=4), ValueError, "too few to fit a random slope"),
        (dict(seed=None), TypeError, "seed must be a non-negative integer"),
    ],
)
def test_coverage_bad_input(kwargs, error, match):
    args = dict(n_sims=5, **STUDY, tau00=1.0, tau11=0.0, seed=1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        mlm.coverage_study(**args)


# --- icc_estimator_study (its bias checks are in test_icc.py) -----------------------------------


def test_icc_study_layout_and_balanced_agreement():
    res = mlm.icc_estimator_study(5, n_groups=10, group_size=6, tau2=2.0, sigma2=6.0, seed=4)
    assert res["estimator"].tolist() == ["slide", "anova", "reml"]
    assert list(res.columns) == ["estimator", "true_icc", "mean", "bias", "sd", "rmse", "n_sims"]
    assert_allclose(res["true_icc"], 0.25)
    assert_allclose(res["bias"], res["mean"] - 0.25)
    # closed form: on balanced data REML equals the (clipped) ANOVA estimate
    assert_allclose(
        res.loc[1, ["mean", "sd"]].astype(float),
        res.loc[2, ["mean", "sd"]].astype(float),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_sims=1), ValueError, "n_sims must be an integer >= 2"),
        (dict(n_groups=1), ValueError, "n_groups must be an integer >= 2"),
        (dict(group_size=1), ValueError, "every group has a single row"),
        (dict(tau2=-1.0), ValueError, r"tau2 must be a variance \(a number >= 0\)"),
        (dict(sigma2=0.0), ValueError, "sigma2 must be a positive variance"),
        (dict(seed="a"), TypeError, "seed must be a non-negative integer"),
    ],
)
def test_icc_study_bad_input(kwargs, error, match):
    args = dict(n_sims=3, n_groups=5, group_size=4, tau2=1.0, sigma2=4.0, seed=1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        mlm.icc_estimator_study(**args)


# --- efficiency_study -----------------------------------------------------------------------

EFFICIENCY = dict(gamma10=2.0, tau00=4.0, tau11=0.25, sigma2=10.0)


def test_equal_designs_make_the_two_estimates_identical():
    # Closed form: when every group has the same x values, X_j = Z_j and V_j are the same in
    # every group, so each group's GLS estimate is its OLS line and GLS weights the groups
    # equally: the random-slope gamma10 is exactly the mean of the per-group OLS slopes,
    # whatever the variance estimates.
    rng = np.random.default_rng(5)
    x = np.array([-1.5, -0.4, 0.2, 0.9, 1.3])
    J = 8
    data = pd.DataFrame(
        {
            "g": np.repeat([f"g{j}" for j in range(J)], len(x)),
            "x": np.tile(x, J),
        }
    )
    u0, u1 = 2.0 * rng.standard_normal(J), 0.7 * rng.standard_normal(J)
    codes = np.repeat(np.arange(J), len(x))
    data["y"] = 1 + u0[codes] + (2 + u1[codes]) * data["x"] + rng.standard_normal(len(data))
    fit = mlm.fit_mixed(data, "y ~ x + (x | g)")
    slopes = mlm.per_group_slopes(data, "y", "x", "g")["slope"]
    assert_allclose(fit.params["x"], slopes.mean(), rtol=1e-8)
    # and the study's own per-group slopes are the OLS slopes of per_group_slopes
    from mlm_lessons.simulate import _group_slopes

    assert_allclose(_group_slopes(data["x"].to_numpy(), data["y"].to_numpy(), codes, J), slopes)


def test_efficiency_study_layout_and_reproducibility():
    res = mlm.efficiency_study(6, n_groups=6, group_size=5, **EFFICIENCY, seed=2)
    assert res["method"].tolist() == list(mlm.simulate.EFFICIENCY_METHODS)
    assert list(res.columns) == [
        "method",
        "mean_estimate",
        "bias",
        "sd_estimate",
        "rmse",
        "rmse_ratio",
        "mean_std_error",
        "coverage",
        "coverage_mc_se",
        "n_sims",
    ]
    assert_allclose(res["bias"], res["mean_estimate"] - 2.0)
    assert res.loc[0, "rmse_ratio"] == 1.0
    again = mlm.efficiency_study(6, n_groups=6, group_size=5, **EFFICIENCY, seed=2)
    pd.testing.assert_frame_equal(res, again)


@pytest.mark.slow
def test_random_slopes_beat_disaggregation_with_few_unequal_groups():
    # Known truth, gamma10 = 2. With ten groups of 3 to 40 rows the per-group slopes of the
    # small groups have sampling variances sigma2 / Sxx_j of 5 or more, beside tau11 = 0.25,
    # and the unweighted mean gives them full weight: its variance is about
    # sum_j (tau11 + sigma2 / Sxx_j) / J^2, several times that of the precision-weighted
    # GLS estimate. Both estimators are unbiased (mean within 4 MC SEs of the truth).
    n = 200
    sizes = [3, 3, 4, 4, 5, 5, 20, 30, 40, 50]
    res = mlm.efficiency_study(n, n_groups=10, group_size=sizes, **EFFICIENCY, seed=3)
    res = res.set_index("method")
    mc_se = res["sd_estimate"] / np.sqrt(n)
    assert (np.abs(res["bias"]) < 4 * mc_se).all()
    assert res.loc["multilevel (random slope)", "rmse_ratio"] < 0.6
    # the mean of slopes' own interval keeps about its level (t on J - 1 df)
    row = res.loc["mean of per-group OLS slopes"]
    assert abs(row["coverage"] - 0.95) < _binomial_tolerance(n)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_sims=1), ValueError, r"n_sims must be an integer >= 2, not 1"),
        (dict(n_groups=2), ValueError, r"n_groups must be an integer >= 3, not 2"),
        (dict(group_size=2), ValueError, "at least 3 rows"),
        (dict(sigma2=0.0), ValueError, r"sigma2 must be a positive variance \(a number > 0\), not 0"),
        (dict(conf_level=1.5), ValueError, "conf_level must be between 0 and 1"),
        (dict(seed=None), TypeError, "seed must be a non-negative integer .*so that the result can be reproduced"),
    ],
)
def test_efficiency_bad_input(kwargs, error, match):
    args = dict(n_sims=3, n_groups=5, group_size=4, **EFFICIENCY, seed=1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        mlm.efficiency_study(**args)
