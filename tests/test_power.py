"""power_simulation and power_approximation against fit_mixed, exact distributions and the
design effect.

References: fit_mixed (validated against lme4 in tests/test_models.py) replicate by
replicate; the exact noncentral-t distribution of the Wald statistic in a balanced design;
the normal approximation with the GLS standard error; Kish's design effect.
Monte Carlo tolerances are 3.5 binomial standard errors, sqrt(p (1 - p) / n_sims): a
correct implementation fails one such check with probability about 5e-4, and the seeds are
fixed, so the tests are deterministic.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import mlm_lessons as mlm
from mlm_lessons import power


def _mc_tol(p, n_sims, k=3.5):
    return k * np.sqrt(p * (1 - p) / n_sims)


@pytest.mark.parametrize("tau11", [0.0, 0.3])
def test_closed_form_matches_fit_mixed_replicate_by_replicate(tau11):
    J, n = 12, 6
    rng = np.random.default_rng(5)
    y, x, z = power._draw(rng, 8, J, n, "gamma11", 0.4, 0.5, tau11, 1.0)
    res = power._analyse(y, x, z, random_slope=tau11 > 0)
    compared = 0
    for s in range(y.shape[0]):
        df = pd.DataFrame({
            "g": np.repeat(np.arange(J), n),
            "x": np.tile(x, J),
            "z": np.repeat(z, n),
            "y": y[s].ravel(),
        })
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mlm.MLMWarning)
            fit = mlm.fit_mixed(df, "y ~ z * x", "g", re_formula="x" if tau11 else None)
        fx = fit.fixed.set_index("term")
        # Estimates: the closed form is the GLS estimate whatever T is (identical designs).
        for coef, term in [("gamma01", "z"), ("gamma10", "x"), ("gamma11", "z:x")]:
            assert res[coef][0][s] == pytest.approx(fx.loc[term, "estimate"], abs=1e-6)
        # SEs agree with REML when every variance estimate is inside the parameter space
        # (rtol 1e-3: fit_mixed's optimizer tolerance on T).
        T = fit.tau.to_numpy()
        if np.min(np.linalg.eigvalsh(T)) > 1e-4:
            compared += 1
            for coef, term in [("gamma01", "z"), ("gamma10", "x"), ("gamma11", "z:x")]:
                assert res[coef][1][s] == pytest.approx(fx.loc[term, "std_error"], rel=1e-3)
    assert compared >= 4


@pytest.mark.parametrize("effect", ["level1", "level2", "cross-level"])
@pytest.mark.parametrize("tau11", [0.0, 0.1])
def test_type_one_error_equals_alpha(effect, tau11):
    # The t tests are exact in this design, so the rejection rate under the null is alpha
    # within Monte Carlo error, even with 8 groups.
    res = mlm.power_simulation(n_groups=8, group_size=5, effect=effect, effect_size=0.0,
                               tau00=0.3, tau11=tau11, sigma2=0.7, n_sims=4000, seed=3)
    assert abs(res["power"].iloc[0] - 0.05) < _mc_tol(0.05, 4000)


def test_z_test_is_liberal_with_few_groups():
    # With 6 groups the level-2 Wald z test compares a t(4) statistic with normal
    # quantiles: P(|t4| > 1.96) = 0.12, far above 0.05.
    res = mlm.power_simulation(n_groups=6, group_size=10, effect="level2", effect_size=0.0,
                               tau00=0.3, sigma2=0.7, n_sims=4000, seed=4, test="z")
    expected = 2 * stats.t.sf(1.96, 4)
    assert abs(res["power"].iloc[0] - expected) < _mc_tol(expected, 4000)


def test_power_increases_with_the_number_of_groups():
    res = mlm.power_simulation(n_groups=[6, 12, 24, 48], group_size=10,
                               effect=["level2", "cross-level"], effect_size=0.3,
                               tau00=0.2, tau11=0.05, sigma2=0.8, n_sims=1000, seed=5)
    for _, r in res.groupby("effect"):
        p = r.sort_values("n_groups")["power"].to_numpy()
        se = r.sort_values("n_groups")["mc_se"].to_numpy()
        assert np.all(np.diff(p) > -2 * (se[1:] + se[:-1]))
        assert p[-1] - p[0] > 0.3


def test_level1_power_matches_the_gls_normal_approximation():
    # Balanced random-intercept design: SE(gamma10) = sqrt(sigma2 / (J n Var(x))), the GLS
    # closed form; df = N - J - 2 = 268, so t and normal differ by < 0.005 in power.
    J, n, sigma2, delta = 30, 10, 0.8, 0.12
    se = np.sqrt(sigma2 / (J * n))
    crit = stats.norm.ppf(0.975)
    expected = stats.norm.cdf(delta / se - crit) + stats.norm.cdf(-delta / se - crit)
    approx = mlm.power_approximation(n_groups=J, group_size=n, effect="level1",
                                     effect_size=delta, tau00=0.2, sigma2=sigma2)
    assert approx["std_error"].iloc[0] == pytest.approx(se)
    assert approx["power"].iloc[0] == pytest.approx(expected)
    sim = mlm.power_simulation(n_groups=J, group_size=n, effect="level1", effect_size=delta,
                               tau00=0.2, sigma2=sigma2, n_sims=4000, seed=6)
    assert abs(sim["power"].iloc[0] - expected) < _mc_tol(expected, 4000) + 0.005


def test_level2_power_matches_the_exact_noncentral_t():
    # (gamma01_hat - gamma01) / SE is N(0, 1) and SE_hat^2 / SE^2 is chi2(J-2)/(J-2),
    # independent: the statistic is noncentral t(J - 2, gamma01 / SE).
    J, n, tau00, sigma2, delta = 8, 10, 0.5, 0.5, 0.6
    se = np.sqrt((tau00 + sigma2 / n) / J)
    crit = stats.t.ppf(0.975, J - 2)
    nct = stats.nct(J - 2, delta / se)
    expected = nct.sf(crit) + nct.cdf(-crit)
    sim = mlm.power_simulation(n_groups=J, group_size=n, effect="level2", effect_size=delta,
                               tau00=tau00, sigma2=sigma2, n_sims=4000, seed=7)
    assert abs(sim["power"].iloc[0] - expected) < _mc_tol(expected, 4000)


def test_level2_standard_error_is_the_design_effect_formula():
    tau00, sigma2 = 0.25, 0.75
    icc = tau00 / (tau00 + sigma2)
    res = mlm.power_approximation(n_groups=[10, 40], group_size=[5, 30], effect="level2",
                                  effect_size=0.2, tau00=tau00, sigma2=sigma2)
    N = res["n_groups"] * res["group_size"]
    deff = mlm.design_effect(icc, res["group_size"].to_numpy())
    assert_allclose(res["std_error"], np.sqrt((tau00 + sigma2) / N * deff), rtol=1e-12)


def test_grid_and_seeds():
    kw = dict(group_size=5, effect="level2", effect_size=0.3, tau00=0.2, sigma2=0.8,
              n_sims=200, seed=9)
    one = mlm.power_simulation(n_groups=10, **kw)
    grid = mlm.power_simulation(n_groups=[10, 20], **kw)
    assert list(grid.columns) == ["n_groups", "group_size", "effect", "effect_size", "power",
                                  "mc_se", "n_sims"]
    # Each combination has its own random stream: adding J = 20 leaves J = 10 unchanged.
    assert grid["power"].iloc[0] == one["power"].iloc[0]
    assert len(mlm.power_simulation(n_groups=[10, 20], **{**kw, "group_size": [5, 6]})) == 4


def test_errors():
    kw = dict(n_groups=10, group_size=5, effect="level1", effect_size=0.3, tau00=0.2,
              sigma2=0.8, n_sims=10, seed=1)
    with pytest.raises(ValueError, match="effect must be one of"):
        mlm.power_simulation(**{**kw, "effect": "level3"})
    with pytest.raises(ValueError, match="n_groups must be integers >= 4"):
        mlm.power_simulation(**{**kw, "n_groups": 3})
    with pytest.raises(ValueError, match="group_size must be integers >= 3"):
        mlm.power_simulation(**{**kw, "group_size": [5, 2]})
    with pytest.raises(ValueError, match=r"tau00 must be a variance \(a number >= 0\)"):
        mlm.power_simulation(**{**kw, "tau00": -1})
    with pytest.raises(ValueError, match="sigma2 must be a positive variance"):
        mlm.power_simulation(**{**kw, "sigma2": 0})
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        mlm.power_simulation(**kw, alpha=1.5)
    with pytest.raises(ValueError, match="test must be 't' or 'z'"):
        mlm.power_simulation(**kw, test="F")
    with pytest.raises(ValueError, match="n_sims must be an integer >= 1"):
        mlm.power_simulation(**{**kw, "n_sims": 0})
    with pytest.raises(ValueError, match="effect_size must be finite numbers"):
        mlm.power_approximation(n_groups=10, group_size=5, effect="level2",
                                effect_size=np.nan, tau00=0.2, sigma2=0.8)
