"""simulate_from_fit, parametric_bootstrap and bootstrap_lrt against closed forms, lme4 and
simulations with known truth.

References: tests/reference/lme4_reference.json (lme4 1.1-31, ``anova(refit = FALSE)`` for
REML tests and ML fits for fixed-part tests); the moments of the model (mean X gamma,
covariance Z T Z' + sigma2 I); Self and Liang (1987) for the null distribution of the LR
statistic of one variance (a 50:50 mixture of a point mass at 0 and chi-square(1)).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_reference.json").read_text())


def _fit_quietly(*args, **kwargs):
    """fit_mixed on simulated data, where a boundary estimate is an expected outcome."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlm.BoundaryWarning)
        return mlm.fit_mixed(*args, **kwargs)


def _random_intercept_data(n_groups, group_size, seed, *, tau00=4.0, sigma2=16.0):
    """y = 10 + 2 x + u0j + e_ij with x ~ N(0, 1): the null model of a random-slope test."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), group_size)
    x = rng.standard_normal(n_groups * group_size)
    u = rng.standard_normal(n_groups) * np.sqrt(tau00)
    y = 10 + 2 * x + u[g] + rng.standard_normal(len(g)) * np.sqrt(sigma2)
    return pd.DataFrame({"g": g, "x": x, "y": y})


@pytest.fixture(scope="module")
def small_hsb(hsb):
    return hsb[hsb["school"].isin(hsb["school"].unique()[:30])]


@pytest.fixture(scope="module")
def sleep_slope(sleepstudy):
    return mlm.fit_mixed(sleepstudy, "reaction ~ days", "subject", re_formula="days")


# --- simulate_from_fit -----------------------------------------------------------------------


def test_simulated_mean_and_covariance_match_the_model(sleep_slope):
    fit = sleep_slope
    n_sims = 4000
    y = mlm.simulate_from_fit(fit, n_sims=n_sims, seed=11)
    assert y.shape == (n_sims, fit.n_obs)
    m = fit.matrices()
    X, Z = m.X.to_numpy(), m.Z[fit.group].to_numpy()
    codes = pd.factorize(m.groups[fit.group])[0]
    T = fit.tau.to_numpy()
    # Closed form: E(y) = X gamma; Var(y_j) = Z_j T Z_j' + sigma2 I.
    mean = X @ fit.params.to_numpy()
    rows = codes == 0
    Zj = Z[rows]
    V = Zj @ T @ Zj.T + fit.sigma2 * np.eye(rows.sum())
    # Mean: 180 z-scores with SE sqrt(V_ii / n_sims); |z| < 4.5 fails by chance with
    # probability about 180 * 7e-6 = 1e-3 (the seed is fixed, so the test is deterministic).
    var_all = np.einsum("ij,jk,ik->i", Z, T, Z) + fit.sigma2
    z = (y.mean(axis=0) - mean) / np.sqrt(var_all / n_sims)
    assert np.max(np.abs(z)) < 4.5
    # Covariance of group 0: SE of a sample covariance of normals is
    # sqrt((V_ii V_kk + V_ik^2) / n); allow 4.5 SE on each of the 55 distinct entries.
    S = np.cov(y[:, rows].T)
    se = np.sqrt((np.outer(np.diag(V), np.diag(V)) + V**2) / n_sims)
    assert np.max(np.abs(S - V) / se) < 4.5


def test_simulation_is_seeded(small_hsb):
    fit = mlm.fit_null(small_hsb, "mathach", "school")
    a = mlm.simulate_from_fit(fit, n_sims=3, seed=5)
    assert_array_equal(a, mlm.simulate_from_fit(fit, n_sims=3, seed=5))
    assert not np.allclose(a, mlm.simulate_from_fit(fit, n_sims=3, seed=6))


def test_simulation_allows_a_zero_variance():
    df = _random_intercept_data(20, 5, seed=3, tau00=0.0)
    fit = _fit_quietly(df, "y ~ x", "g", re_formula="x", diagonal=True)
    y = mlm.simulate_from_fit(fit, n_sims=2, seed=1)
    assert np.all(np.isfinite(y))


# --- refits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("re_formula", [None, "cses"])
def test_refit_of_the_observed_outcome_reproduces_fit_mixed(small_hsb, method, re_formula):
    fit = mlm.fit_mixed(small_hsb, "mathach ~ cses", "school", re_formula=re_formula,
                        method=method)
    new = fit.refit(fit.matrices().y.to_numpy())
    # Same deviance and optimum: log-likelihoods to 1e-6, estimates to 1e-4 relative.
    assert new.loglik == pytest.approx(fit.loglik, abs=1e-6)
    assert_allclose(new.params.to_numpy(), fit.params.to_numpy(), rtol=1e-4)
    assert new.sigma2 == pytest.approx(fit.sigma2, rel=1e-4)


def test_refits_of_simulated_outcomes_agree_with_fit_mixed(small_hsb):
    fit = mlm.fit_mixed(small_hsb, "mathach ~ cses", "school", re_formula="cses")
    boot = mlm.parametric_bootstrap(fit, n_boot=4, seed=21)
    ys = mlm.simulate_from_fit(fit, n_sims=4, seed=21)
    for b, y in enumerate(ys):
        ref = _fit_quietly(small_hsb.assign(mathach=y), "mathach ~ cses", "school",
                           re_formula="cses")
        # The fast refit maximises the same criterion: never worse than fit_mixed's
        # optimum by more than optimizer noise (1e-5), and at the same point (T to 2e-3,
        # the flat-likelihood tolerance of tests/test_models.py, plus 1e-3 absolute).
        assert boot.loc[b, "loglik"] >= ref.loglik - 1e-5
        vc = ref.variance_components()["estimate"]
        assert_allclose(boot.loc[b, vc.index].to_numpy(float), vc.to_numpy(), rtol=2e-3,
                        atol=1e-3)


def test_parametric_bootstrap_columns_and_truth(small_hsb):
    fit = mlm.fit_mixed(small_hsb, "mathach ~ cses", "school", re_formula="cses")
    boot = mlm.parametric_bootstrap(fit, n_boot=3, seed=1)
    assert list(boot.columns) == [
        "replicate", "Intercept", "cses", "tau00", "tau11", "tau01", "sigma2", "loglik"
    ]
    assert boot.attrs["truth"]["tau11"] == pytest.approx(float(fit.tau.iloc[1, 1]))
    assert boot.attrs["n_failed"] == 0


def test_reml_refits_recover_the_variance_components(small_hsb):
    fit = mlm.fit_null(small_hsb, "mathach", "school")
    boot = mlm.parametric_bootstrap(fit, n_boot=300, seed=2)
    truth = boot.attrs["truth"]
    # REML is nearly unbiased here (30 schools, tau00 far from 0, so truncation at zero is
    # rare): the mean of 300 refits is within 3.5 Monte Carlo SEs of the generating value.
    for name in ["tau00", "sigma2", "Intercept"]:
        mc_se = boot[name].std() / np.sqrt(len(boot))
        assert abs(boot[name].mean() - truth[name]) < 3.5 * mc_se, name


def test_ml_underestimates_tau00_with_few_groups():
    # 10 groups and 4 level-2 coefficients: ML divides the between-group sum of squares by
    # J instead of J - 4, so E(tau00_ML) is well below the truth (about 0.6 of it) while
    # REML is close. The paired difference is compared with its Monte Carlo SE.
    rng = np.random.default_rng(8)
    df = _random_intercept_data(10, 5, seed=4)
    for k in range(3):
        df[f"w{k}"] = np.repeat(rng.standard_normal(10), 5)
    fit = mlm.fit_mixed(df, "y ~ x + w0 + w1 + w2", "g")
    ml = mlm.parametric_bootstrap(fit, n_boot=300, seed=3, method="ML")
    reml = mlm.parametric_bootstrap(fit, n_boot=300, seed=3, method="REML")
    diff = ml["tau00"] - reml["tau00"]
    assert diff.mean() < -3 * diff.std() / np.sqrt(len(diff))
    truth = ml.attrs["truth"]["tau00"]
    assert ml["tau00"].mean() < 0.85 * truth
    assert abs(reml["tau00"].mean() - truth) < 3.5 * reml["tau00"].std() / np.sqrt(300)


# --- bootstrap_lrt ---------------------------------------------------------------------------


def test_observed_statistic_matches_lme4_reml(hsb):
    ref = REF["lrt"]["random_slope_cses"]
    ri = mlm.fit_mixed(hsb, "mathach ~ cses", "school")
    rs = mlm.fit_mixed(hsb, "mathach ~ cses", "school", re_formula="cses")
    res = mlm.bootstrap_lrt(ri, rs, n_boot=5, seed=1)
    # lme4: anova(m0, m1, refit = FALSE)$Chisq[2]; log-likelihoods agree to 1e-3, so the
    # statistic to 2e-3.
    assert res.statistic == pytest.approx(ref["LR"], abs=2e-3)
    assert res.df == ref["df"]
    assert res.p_chi2 == pytest.approx(ref["p_naive"], rel=1e-3)
    assert res.method == "REML" and not res.refitted
    assert res.draws.shape == (5,) and np.all(res.draws >= 0)


def test_fixed_part_difference_refits_by_ml(hsb):
    ref = REF["lrt"]["fixed_cses_vs_full_ML"]
    rc = mlm.fit_mixed(hsb, "mathach ~ cses", "school", re_formula="cses")
    full = mlm.fit_full_model(hsb, "mathach", "school", level1=["cses"],
                              level2=["meanses", "catholic"])
    res = mlm.bootstrap_lrt(rc, full, n_boot=3, seed=1)
    # lme4: anova(hsb_random_coefficient_cses, hsb_full) on ML fits.
    assert res.method == "ML" and res.refitted
    assert res.statistic == pytest.approx(ref["LR"], abs=2e-3)
    assert res.df == ref["df"]
    # The observed LR of 215 is far beyond every draw: p = 1 / (1 + B).
    assert res.p_value == pytest.approx(1 / 4)


def test_null_distribution_of_one_variance_is_the_mixture():
    # Reduced model true (no random slope). Self and Liang (1987): asymptotically half of
    # the LR statistics are 0 and the other half chi-square(1), so the 95% quantile is
    # chi2.ppf(0.90, 1) = 2.71. With 300 draws the share at 0 has Monte Carlo SE 0.029;
    # REML in finite samples puts slightly more than half at 0 (0.52-0.58 in trial runs
    # of this design), so the window is 0.42-0.68. The 95% quantile of 300 draws has a
    # Monte Carlo SE of about 0.35; allow 1.1.
    df = _random_intercept_data(30, 8, seed=1)
    ri = mlm.fit_mixed(df, "y ~ x", "g")
    rs = _fit_quietly(df, "y ~ x", "g", re_formula="x", diagonal=True)
    res = mlm.bootstrap_lrt(ri, rs, n_boot=300, seed=2)
    assert res.n_failed == 0
    at_zero = np.mean(res.draws < 1e-6)
    assert 0.42 < at_zero < 0.68
    q95 = np.quantile(res.draws, 0.95)
    assert abs(q95 - stats.chi2.ppf(0.90, 1)) < 1.1


@pytest.mark.slow
def test_bootstrap_p_values_are_uniform_under_the_null():
    # 100 data sets from the reduced model, each tested with 39 bootstrap draws. Under the
    # null a bootstrap test has P(p <= a) = a for the levels a = k/40 (up to the
    # bootstrap's own approximation), but only below the point mass: about half of the
    # observed statistics are exactly 0 and get p = 1, so the p-values are uniform on
    # (0, 0.5) and not above. Check the rejection rates at 0.1 and 0.25 (binomial SEs 0.030
    # and 0.043 with 100 data sets; allow 3 SE) and that about half of the p-values are 1.
    pvals = []
    for r in range(100):
        df = _random_intercept_data(15, 6, seed=100 + r)
        ri = _fit_quietly(df, "y ~ x", "g")
        rs = _fit_quietly(df, "y ~ x", "g", re_formula="x", diagonal=True)
        pvals.append(mlm.bootstrap_lrt(ri, rs, n_boot=39, seed=r).p_value)
    pvals = np.array(pvals)
    for a in (0.1, 0.25):
        assert abs(np.mean(pvals <= a) - a) < 3 * np.sqrt(a * (1 - a) / 100), a
    assert 0.3 < np.mean(pvals == 1.0) < 0.75


# --- bad input -------------------------------------------------------------------------------


def test_errors(small_hsb, sleep_slope):
    ri = mlm.fit_mixed(small_hsb, "mathach ~ cses", "school")
    rs = mlm.fit_mixed(small_hsb, "mathach ~ cses", "school", re_formula="cses")
    with pytest.raises(TypeError, match="must be a MixedFit"):
        mlm.simulate_from_fit("model", n_sims=1, seed=1)
    with pytest.raises(TypeError, match="reduced must be a MixedFit"):
        mlm.bootstrap_lrt(None, rs, n_boot=1, seed=1)
    with pytest.raises(ValueError, match="n_sims must be an integer >= 1"):
        mlm.simulate_from_fit(ri, n_sims=0, seed=1)
    with pytest.raises(TypeError, match="n_boot must be an integer >= 1"):
        mlm.parametric_bootstrap(ri, n_boot=2.5, seed=1)
    with pytest.raises(ValueError, match="method must be 'REML' or 'ML'"):
        mlm.parametric_bootstrap(ri, n_boot=1, seed=1, method="OLS")
    with pytest.raises(ValueError, match="pass the smaller model first"):
        mlm.bootstrap_lrt(rs, ri, n_boot=1, seed=1)
    with pytest.raises(ValueError, match="not fitted to the same data"):
        mlm.bootstrap_lrt(ri, sleep_slope, n_boot=1, seed=1)
    other = mlm.fit_mixed(small_hsb.iloc[:-5], "mathach ~ cses", "school", re_formula="cses")
    with pytest.raises(ValueError, match="not fitted to the same data"):
        mlm.bootstrap_lrt(ri, other, n_boot=1, seed=1)
    ses = mlm.fit_mixed(small_hsb, "mathach ~ ses", "school", re_formula="ses")
    with pytest.raises(ValueError, match="not nested"):
        mlm.bootstrap_lrt(ri, ses, n_boot=1, seed=1)
