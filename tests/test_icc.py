"""Tests of mlm_lessons.icc against R/lme4, closed forms and simulations with known truth.

R reference: tests/reference/lme4_reference.json, entries "icc_anova" (aov, var of the school
means, lme4 null models) and "reliability" (lme4 1.1-31 REML null model).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import optimize, stats

import mlm_lessons as mlm
from mlm_lessons.icc import ICCResult

REF = json.loads((Path(__file__).parent / "reference" / "lme4_reference.json").read_text())


# --- HSB against R -------------------------------------------------------------------------------


def test_anova_matches_r_aov(hsb):
    ref = REF["icc_anova"]
    res = mlm.icc_anova(hsb, "mathach", "school")
    # closed-form sums of squares: agreement to rounding error, rtol 1e-9
    assert_allclose(res.n0, ref["n0"], rtol=1e-9)
    assert_allclose(res.within_var, ref["MSW"], rtol=1e-9)
    assert_allclose(res.within_var + res.n0 * res.between_var, ref["MSB"], rtol=1e-9)
    assert_allclose(res.between_var, ref["tau2_mom"], rtol=1e-9)
    assert_allclose(res.icc, ref["icc_mom"], rtol=1e-9)
    assert (res.n_groups, res.n_obs, res.method) == (ref["J"], ref["N"], "anova")
    assert res.ci_low < res.icc < res.ci_high and res.conf_level == 0.95


def test_slide_matches_r(hsb):
    ref = REF["icc_anova"]
    res = mlm.icc_slide(hsb, "mathach", "school")
    # R: var(tapply(mathach, school, mean)); MSW from aov. Closed form, rtol 1e-9
    assert_allclose(res.between_var, ref["tau2_slide"], rtol=1e-9)
    assert_allclose(res.within_var, ref["sigma2_within"], rtol=1e-9)
    assert_allclose(res.icc, ref["icc_slide"], rtol=1e-9)
    assert np.isnan(res.ci_low) and np.isnan(res.ci_high) and np.isnan(res.conf_level)


def test_reml_matches_lme4(hsb):
    res = mlm.icc_reml(hsb, "mathach", "school")
    ref = REF["hsb_null"]["REML"]
    # the engine matches lme4's REML variance components to about 1e-5 relative
    assert_allclose(res.icc, REF["icc_anova"]["icc_reml_null"], rtol=1e-5)
    assert_allclose(res.between_var, ref["T"]["matrix"][0][0], rtol=1e-5)
    assert_allclose(res.within_var, ref["sigma2"], rtol=1e-5)
    assert res.ci_low < res.icc < res.ci_high


def test_reliability_matches_lme4(hsb):
    ref = REF["reliability"]
    fit = mlm.fit_null(hsb, "mathach", "school")
    rel = mlm.reliability(fit).set_index("group")
    assert len(rel) == 160
    rel = rel.loc[ref["group_ids"]]
    assert rel["n"].tolist() == ref["n_j"]
    # lambda_j from lme4's tau00 and sigma2, which the engine matches to about 1e-5
    assert_allclose(rel["reliability"], ref["lambda_j"], rtol=1e-5)
    assert_allclose(rel["reliability"].mean(), ref["mean"], rtol=1e-5)


# --- closed forms on balanced data ------------------------------------------------------------


def _balanced(seed, J=25, n=8, tau2=2.0, sigma2=6.0):
    return mlm.simulate_two_level(J, n, gamma00=5.0, tau00=tau2, sigma2=sigma2, seed=seed)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reml_equals_anova_on_balanced_data(seed):
    # Closed form: on balanced data with MSB > MSW the REML estimates are
    # tau2 = (MSB - MSW)/n and sigma2 = MSW, so both ICCs agree (optimizer tolerance, 1e-6).
    df = _balanced(seed)
    a = mlm.icc_anova(df, "y", "group")
    r = mlm.icc_reml(df, "y", "group")
    assert a.between_var > 0
    assert_allclose(r.icc, a.icc, atol=1e-6)
    assert_allclose([r.between_var, r.within_var], [a.between_var, a.within_var], rtol=1e-5)
    assert r.n0 == a.n0 == 8


def _closed_form_profile_ci(df, conf_level):
    """Profile-likelihood ICC interval from the balanced one-way REML deviance.

    -2 l(theta) = (J-1) log(1 + n theta^2) + (N-1) log(SSB/(1 + n theta^2) + SSW) + const.
    """
    J = df["group"].nunique()
    n = len(df) // J
    N = len(df)
    means = df.groupby("group")["y"].transform("mean")
    ssw = ((df["y"] - means) ** 2).sum()
    ssb = ((means - df["y"].mean()) ** 2).sum()

    def dev(t):
        lam = 1 + n * t * t
        return (J - 1) * np.log(lam) + (N - 1) * np.log(ssb / lam + ssw)

    t_hat = np.sqrt(max((ssb / (J - 1)) / (ssw / (N - J)) - 1, 0) / n)
    crit = stats.chi2.ppf(conf_level, 1)

    def f(t):
        return dev(t) - dev(t_hat) - crit

    lo = 0.0 if f(0) <= 0 else optimize.brentq(f, 0, t_hat, xtol=1e-14)
    hi = optimize.brentq(f, t_hat, 100 * (t_hat + 1), xtol=1e-14)
    return lo**2 / (1 + lo**2), hi**2 / (1 + hi**2)


@pytest.mark.parametrize("seed, conf_level", [(1, 0.95), (4, 0.9), (5, 0.99)])
def test_reml_profile_interval_matches_closed_form(seed, conf_level):
    df = _balanced(seed)
    r = mlm.icc_reml(df, "y", "group", conf_level=conf_level)
    lo, hi = _closed_form_profile_ci(df, conf_level)
    # both are roots of the same function, solved to 1e-12: agreement to 1e-6
    assert_allclose([r.ci_low, r.ci_high], [lo, hi], atol=1e-6)


def test_reml_profile_interval_reaches_zero():
    # a small true ICC with few groups: the lower limit is 0 when d(0) - d(min) < chi2 quantile
    df = _balanced(7, J=10, n=4, tau2=0.3, sigma2=6.0)
    r = mlm.icc_reml(df, "y", "group")
    lo, hi = _closed_form_profile_ci(df, 0.95)
    assert r.ci_low == lo == 0.0
    assert_allclose(r.ci_high, hi, atol=1e-6)


def test_anova_interval_closed_form():
    # Searle's interval, computed by hand from the F quantiles
    df = _balanced(11)
    a = mlm.icc_anova(df, "y", "group", conf_level=0.9)
    J, n = 25, 8
    F = (a.within_var + n * a.between_var) / a.within_var
    fl = F / stats.f.ppf(0.95, J - 1, J * (n - 1))
    fu = F / stats.f.ppf(0.05, J - 1, J * (n - 1))
    assert_allclose([a.ci_low, a.ci_high], [(fl - 1) / (fl + n - 1), (fu - 1) / (fu + n - 1)])


def test_negative_between_variance_is_reported_and_icc_clipped():
    # Every group has the same mean, so MSB = 0 < MSW and tau2 = -MSW / n0.
    df = pd.DataFrame({"g": list("aabbcc"), "y": [0.0, 2.0, 0.0, 2.0, 2.0, 0.0]})
    a = mlm.icc_anova(df, "y", "g")
    assert_allclose(a.between_var, -a.within_var / 2)
    assert a.icc == 0.0 and a.ci_low == 0.0 and a.ci_high == 0.0


# --- simulations with known truth -------------------------------------------------------------


def test_anova_interval_coverage():
    # Known truth: the F-based interval is exact on balanced normal data, so its coverage
    # over 400 data sets is 0.95 within 3.5 Monte Carlo SEs (0.038).
    covered = []
    for seed in range(400):
        df = _balanced(1000 + seed, J=15, n=5, tau2=2.0, sigma2=6.0)
        a = mlm.icc_anova(df, "y", "group")
        covered.append(a.ci_low <= 0.25 <= a.ci_high)
    assert abs(np.mean(covered) - 0.95) < 3.5 * np.sqrt(0.95 * 0.05 / 400)


@pytest.mark.slow
def test_reml_profile_interval_coverage():
    # Known truth: the profile-likelihood interval is asymptotically exact; with 40 groups
    # its coverage over 300 unbalanced data sets is 0.95 within 3.5 MC SEs (0.044).
    rng = np.random.default_rng(3)
    sizes = rng.integers(3, 15, size=40)
    covered = []
    for seed in range(300):
        df = mlm.simulate_two_level(40, sizes, gamma00=0.0, tau00=2.0, sigma2=6.0, seed=seed)
        r = mlm.icc_reml(df, "y", "group")
        covered.append(r.ci_low <= 0.25 <= r.ci_high)
    assert abs(np.mean(covered) - 0.95) < 3.5 * np.sqrt(0.95 * 0.05 / 300)


@pytest.mark.slow
def test_estimator_study_slide_bias():
    # Known truth, unbalanced groups of 4..12 rows: E[slide tau2] = tau2 + sigma2 mean(1/n_j),
    # so the slide ICC is biased upward; the ANOVA and REML ICCs are nearly unbiased
    # (|bias| within 4 Monte Carlo SEs, sd / sqrt(n_sims)).
    n_sims, tau2, sigma2 = 400, 2.0, 8.0
    sizes = np.tile([4, 6, 8, 10, 12], 8)
    res = mlm.icc_estimator_study(
        n_sims, n_groups=40, group_size=sizes, tau2=tau2, sigma2=sigma2, seed=5
    ).set_index("estimator")
    mc_se = res["sd"] / np.sqrt(n_sims)
    assert (res["true_icc"] == 0.2).all()
    slide_tau2 = tau2 + sigma2 * np.mean(1 / sizes)
    expected_slide = slide_tau2 / (slide_tau2 + sigma2)
    assert res.loc["slide", "bias"] > 10 * mc_se["slide"]
    # first-order prediction of its mean (a ratio of estimates: allow 0.02)
    assert abs(res.loc["slide", "mean"] - expected_slide) < 0.02
    for est in ["anova", "reml"]:
        assert abs(res.loc[est, "bias"]) < 4 * mc_se[est], est
    # on unbalanced data the REML and ANOVA estimates differ
    assert res.loc["anova", "mean"] != res.loc["reml", "mean"]


def test_estimator_study_reml_matches_icc_reml():
    # the study's fast REML path gives what icc_reml gives on the same data
    res = mlm.icc_estimator_study(
        2, n_groups=12, group_size=[3, 5, 7] * 4, tau2=3.0, sigma2=4.0, seed=9
    )
    rng = np.random.default_rng(9)
    ests = []
    for _ in range(2):
        df = mlm.simulate_two_level(12, [3, 5, 7] * 4, gamma00=0.0, tau00=3.0, sigma2=4.0, seed=rng)
        ests.append(
            [
                mlm.icc_slide(df, "y", "group").icc,
                mlm.icc_anova(df, "y", "group").icc,
                mlm.icc_reml(df, "y", "group").icc,
            ]
        )
    assert_allclose(res["mean"], np.mean(ests, axis=0), rtol=1e-6)


# --- design effect, effective sample size ---------------------------------------------------


@pytest.mark.parametrize("rho, m", [(0.0, 10), (0.18, 45), (0.5, 3), (1.0, 7)])
def test_design_effect_equals_exact_variance_ratio(rho, m):
    # Closed form: Var(mean) = 1' S 1 / N^2 for a compound-symmetric S with unit variance
    # and correlation rho within each of J clusters of m; divided by 1/N it is the design
    # effect.
    J = 4
    block = np.full((m, m), rho) + (1 - rho) * np.eye(m)
    S = np.kron(np.eye(J), block)
    N = J * m
    exact = S.sum() / N**2 / (1 / N)
    assert_allclose(mlm.design_effect(rho, m), exact, rtol=1e-12)
    assert_allclose(mlm.effective_sample_size(N, rho, m), N / exact, rtol=1e-12)


def test_design_effect_vectorised_and_limits():
    assert isinstance(mlm.design_effect(0.1, 5), float)
    assert_allclose(mlm.design_effect([0, 0.5, 1], 11), [1, 6, 11])
    assert_allclose(mlm.effective_sample_size(100, 1.0, 10), 10)  # one value per cluster
    assert_allclose(mlm.effective_sample_size(100, 0.0, 10), 100)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mlm.design_effect(1.2, 10), "icc must be between 0 and 1"),
        (lambda: mlm.design_effect(-0.1, 10), "icc must be between 0 and 1"),
        (lambda: mlm.design_effect(np.nan, 10), "icc must be between 0 and 1"),
        (lambda: mlm.design_effect(0.1, 0.5), "cluster_size must be at least 1"),
        (lambda: mlm.design_effect(0.1, [2, 0]), "cluster_size must be at least 1"),
        (lambda: mlm.effective_sample_size(0, 0.1, 5), "n_obs must be positive"),
        (lambda: mlm.effective_sample_size(100, 2, 5), "icc must be between 0 and 1"),
    ],
)
def test_design_effect_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- bad input --------------------------------------------------------------------------------


def _frames():
    good = pd.DataFrame({"g": list("aabbcc"), "y": [1.0, 2.0, 4.0, 5.0, 0.0, 3.0]})
    return good, [
        ((good.to_numpy(), "y", "g"), {}, TypeError, "must be a pandas DataFrame"),
        ((good, "z", "g"), {}, KeyError, "outcome 'z' not in data"),
        ((good, "y", "h"), {}, KeyError, "'h' not in data"),
        ((good, ["y"], "g"), {}, TypeError, "outcome must be a column name"),
        ((good, "y", 3), {}, TypeError, "group must be a column name"),
        ((good.assign(y=list("abcdef")), "y", "g"), {}, TypeError, "outcome 'y' must be numeric"),
        (
            (good.assign(y=[1.0, np.nan, 3, 4, 5, 6]), "y", "g"),
            {},
            ValueError,
            "'y' has 1 missing value",
        ),
        ((good.assign(g="a"), "y", "g"), {}, ValueError, "needs at least 2 groups"),
        ((good.assign(g=list("abcdef")), "y", "g"), {}, ValueError, "has a single row"),
        ((good.assign(y=1.0), "y", "g"), {}, ValueError, "outcome 'y' is constant"),
    ]


@pytest.mark.parametrize("fn", [mlm.icc_slide, mlm.icc_anova, mlm.icc_reml])
def test_bad_input(fn):
    _, cases = _frames()
    for args, kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            fn(*args, **kwargs)


@pytest.mark.parametrize("fn", [mlm.icc_anova, mlm.icc_reml])
@pytest.mark.parametrize(
    "conf_level, error, match",
    [
        (1.0, ValueError, "between 0 and 1"),
        (0, ValueError, "between 0 and 1"),
        ("95%", TypeError, "conf_level must be a number"),
    ],
)
def test_bad_conf_level(fn, conf_level, error, match):
    good, _ = _frames()
    with pytest.raises(error, match=match):
        fn(good, "y", "g", conf_level=conf_level)


def test_reliability_bad_input(hsb):
    with pytest.raises(TypeError, match="fit must be a MixedFit"):
        mlm.reliability(hsb)
    fit = mlm.fit_random_coefficient(hsb, "mathach", "school", predictors=["cses"])
    with pytest.raises(ValueError, match="needs a random-intercept fit"):
        mlm.reliability(fit)


def test_result_is_frozen(hsb):
    res = mlm.icc_anova(hsb, "mathach", "school")
    assert isinstance(res, ICCResult)
    with pytest.raises(AttributeError):
        res.icc = 0.5


def test_reml_at_the_boundary():
    # Equal group means: the REML estimate of tau00 is 0 (fit_null warns), the ICC is 0 and
    # the profile interval starts at 0; the ANOVA upper limit is 0 while REML's is positive.
    df = pd.DataFrame({"g": list("aabbccdd"), "y": [0.0, 2.0, 0.0, 2.0, 2.0, 0.0, 1.5, 0.5]})
    with pytest.warns(mlm.BoundaryWarning, match="estimated at zero"):
        r = mlm.icc_reml(df, "y", "g")
    assert r.icc == pytest.approx(0.0, abs=1e-8)
    assert r.ci_low == 0.0 and 0.0 < r.ci_high < 1.0
