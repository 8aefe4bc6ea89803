"""sampling_study: closed forms on a balanced crossed design, known truth, bad input.

On a balanced, fully crossed design with one observation per cell, every model's GLS
estimate of the intercept is the grand mean, whose true variance is
tau_a / N_A + tau_b / N_B + sigma2 / (N_A N_B). A model that leaves factor b out reports about
tau_a / N_A + (sigma2 + tau_b) / (N_A N_B) instead. Tolerances are Monte Carlo errors: the SD of
S estimates is off by about 1 / sqrt(2 (S - 1)) relative (4% for S = 300), coverage by
sqrt(c (1 - c) / S) (1.3 points).
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import mlm_lessons as mlm

N_A, N_B = 40, 8  # levels of a and b


@pytest.fixture(scope="module")
def balanced():
    rng = np.random.default_rng(11)
    a = np.repeat(np.arange(N_A), N_B)
    b = np.tile(np.arange(N_B), N_A)
    y = (
        10
        + rng.normal(0, 1.0, N_A)[a]
        + rng.normal(0, np.sqrt(2.0), N_B)[b]
        + rng.normal(0, 1, N_A * N_B)
    )
    data = pd.DataFrame({"a": a.astype(str), "b": b.astype(str), "y": y})
    crossed = mlm.fit_mixed(data, "y ~ 1 + (1 | a) + (1 | b)")
    a_only = mlm.fit_mixed(data, "y ~ 1 + (1 | a)")
    return data, crossed, a_only


@pytest.fixture(scope="module")
def study(balanced):
    _, crossed, a_only = balanced
    return mlm.sampling_study(
        crossed, {"crossed": crossed, "a only": a_only}, n_sims=300, seed=5
    ).set_index("model")


@pytest.mark.slow
def test_true_sd_is_the_closed_form(balanced, study):
    _, crossed, _ = balanced
    ta, tb = (crossed.taus[g].iloc[0, 0] for g in ("a", "b"))
    true_sd = np.sqrt(ta / N_A + tb / N_B + crossed.sigma2 / (N_A * N_B))
    mc = 1 / np.sqrt(2 * (300 - 1))
    for model in ("crossed", "a only"):
        # both estimators are the grand mean: the same estimates, the same true SD
        assert_allclose(study.loc[model, "sd_estimate"], true_sd, rtol=4 * mc)
    assert_allclose(
        study.loc["crossed", "mean_estimate"], study.loc["a only", "mean_estimate"], rtol=1e-8
    )
    assert_allclose(study.loc["crossed", "truth"], crossed.params["Intercept"])


@pytest.mark.slow
def test_right_model_is_honest_and_wrong_model_is_not(balanced, study):
    _, crossed, _ = balanced
    ta, tb = (crossed.taus[g].iloc[0, 0] for g in ("a", "b"))
    s2 = crossed.sigma2
    true_var = ta / N_A + tb / N_B + s2 / (N_A * N_B)
    # the crossed model's SEs match the sampling SD (MC error ~4%, REML SEs of a mean over
    # N_B = 8 levels of b are a little small: allow 12%) and its intervals cover ~95%
    assert_allclose(study.loc["crossed", "se_ratio"], 1.0, atol=0.12)
    assert abs(study.loc["crossed", "coverage"] - 0.95) < 0.05
    # leaving b out: the reported variance is about tau_a / N_A + (sigma2 + tau_b) / (N_A N_B)
    expected_ratio = np.sqrt((ta / N_A + (s2 + tb * (N_B - 1) / N_B) / (N_A * N_B)) / true_var)
    assert expected_ratio < 0.8  # the design makes the error large
    assert_allclose(study.loc["a only", "se_ratio"], expected_ratio, rtol=0.12)
    assert study.loc["a only", "coverage"] < 0.85
    assert (study["n_failed"] == 0).all() and (study["n_sims"] == 300).all()


def test_known_truth_random_intercept_coverage():
    # the generating model refitted to its own simulations covers at the nominal level
    sim = mlm.simulate_two_level(40, 10, gamma00=1.0, gamma10=0.5, tau00=1.0, sigma2=2.0, seed=3)
    fit = mlm.fit_mixed(sim, "y ~ x + (1 | group)")
    res = mlm.sampling_study(fit, {"right": fit}, n_sims=200, seed=9)
    assert list(res["term"]) == ["Intercept", "x"]
    # 200 replications: coverage within 3.5 binomial SEs of 0.95 (0.054)
    assert (np.abs(res["coverage"] - 0.95) < 0.054).all()
    assert (np.abs(res["se_ratio"] - 1) < 0.2).all()
    assert_allclose(res["coverage_mc_se"], np.sqrt(res["coverage"] * (1 - res["coverage"]) / 200))


def test_bad_input(balanced):
    data, crossed, a_only = balanced
    with pytest.raises(TypeError, match="truth must be a MixedFit"):
        mlm.sampling_study("crossed", {"x": crossed}, n_sims=5, seed=1)
    with pytest.raises(TypeError, match="fits must be a dict"):
        mlm.sampling_study(crossed, [crossed], n_sims=5, seed=1)
    with pytest.raises(ValueError, match="fits is empty"):
        mlm.sampling_study(crossed, {}, n_sims=5, seed=1)
    with pytest.raises(TypeError, match=r"fits\['x'\] must be a MixedFit"):
        mlm.sampling_study(crossed, {"x": 1}, n_sims=5, seed=1)
    other = mlm.fit_mixed(data.iloc[:-8], "y ~ 1 + (1 | a)")
    with pytest.raises(ValueError, match=r"fits\['short'\] was not fitted to the data of truth"):
        mlm.sampling_study(crossed, {"short": other}, n_sims=5, seed=1)
    with_x = mlm.fit_mixed(data.assign(x=np.arange(len(data)) % 3), "y ~ x + (1 | a)")
    with pytest.raises(ValueError, match=r"fixed effects that truth lacks \(x\)"):
        mlm.sampling_study(crossed, {"x": with_x}, n_sims=5, seed=1)
    with pytest.raises(ValueError, match="n_sims must be an integer >= 2"):
        mlm.sampling_study(crossed, {"a": a_only}, n_sims=1, seed=1)
    with pytest.raises(TypeError, match="seed must be a non-negative integer"):
        mlm.sampling_study(crossed, {"a": a_only}, n_sims=5, seed=None)
    with pytest.raises(ValueError, match="conf_level"):
        mlm.sampling_study(crossed, {"a": a_only}, n_sims=5, seed=1, conf_level=1.5)


def test_input_fits_are_not_changed(balanced):
    _, crossed, a_only = balanced
    before = (crossed.loglik, a_only.loglik, crossed.params.copy())
    mlm.sampling_study(crossed, {"a": a_only}, n_sims=3, seed=2)
    assert (crossed.loglik, a_only.loglik) == before[:2]
    pd.testing.assert_series_equal(crossed.params, before[2])
