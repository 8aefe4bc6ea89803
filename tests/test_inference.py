"""Tests of mlm_lessons.inference against lme4 1.1-31, closed forms and simulations.

R reference: tests/reference/lme4_reference.json, entries "lrt" (anova(m0, m1, refit = FALSE)
on REML fits and anova() by ML), "pre", the per-model fixef/vcov_fixef/logLik/AIC/BIC.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_reference.json").read_text())


@pytest.fixture(scope="module")
def fits(hsb):
    def ri(pred, method="REML"):
        return mlm.fit_random_intercept(hsb, "mathach", "school", predictors=[pred], method=method)

    def rc(pred, method="REML"):
        return mlm.fit_random_coefficient(
            hsb, "mathach", "school", predictors=[pred], method=method
        )

    out = {
        "ri_cses": ri("cses"),
        "rc_cses": rc("cses"),
        "ri_ses": ri("ses"),
        "rc_ses": rc("ses"),
        "full": mlm.fit_full_model(
            hsb, "mathach", "school", level1=["cses"], level2=["meanses", "catholic"]
        ),
        "null": mlm.fit_null(hsb, "mathach", "school"),
        "means": ri("meanses"),
    }
    return out


# --- lrt ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pred, key", [("cses", "random_slope_cses"), ("ses", "random_slope_ses")])
def test_lrt_random_slope_matches_lme4(fits, pred, key):
    ref = REF["lrt"][key]
    res = mlm.lrt(fits[f"ri_{pred}"], fits[f"rc_{pred}"])
    # the engine's REML log-likelihoods match lme4's to about 1e-6 (atol 1e-5 on LR);
    # p-values then agree to 1e-5 relative
    assert_allclose(res.statistic, ref["LR"], atol=1e-5)
    assert_allclose(
        [res.loglik_reduced, res.loglik_full], [ref["logLik0"], ref["logLik1"]], atol=1e-5
    )
    assert res.df == ref["df"] == 2
    assert_allclose(res.p_value, ref["p_naive"], rtol=1e-4)
    assert_allclose(res.p_mixture, ref["p_mixture_chi2_1_2"], rtol=1e-4)
    assert res.method == "REML" and not res.refitted


def test_lrt_fixed_effects_refits_by_ml_and_matches_lme4(fits):
    ref = REF["lrt"]["fixed_cses_vs_full_ML"]
    res = mlm.lrt(fits["rc_cses"], fits["full"])
    assert res.refitted and res.method == "ML"
    assert res.df == ref["df"] == 4
    assert_allclose(res.statistic, ref["LR"], atol=1e-5)
    assert_allclose(
        [res.loglik_reduced, res.loglik_full], [ref["logLik0"], ref["logLik1"]], atol=1e-5
    )
    assert_allclose(res.p_value, ref["p"], rtol=1e-4)
    # not a variance-component test: no mixture p-value
    assert np.isnan(res.p_mixture)


def test_lrt_ml_fits_are_not_refitted(fits):
    a, b = fits["rc_cses"].refit(method="ML"), fits["full"].refit(method="ML")
    res = mlm.lrt(a, b)
    assert not res.refitted and res.method == "ML"
    assert_allclose(res.statistic, REF["lrt"]["fixed_cses_vs_full_ML"]["LR"], atol=1e-5)


def test_lrt_mixed_methods_go_to_ml(fits):
    # same fixed part, one REML and one ML: both on ML (lme4's ML logLik of each model)
    res = mlm.lrt(fits["ri_cses"].refit(method="ML"), fits["rc_cses"])
    assert res.method == "ML" and res.refitted
    assert_allclose(res.loglik_reduced, REF["hsb_random_intercept_cses"]["ML"]["logLik"], atol=1e-5)
    assert_allclose(res.loglik_full, REF["hsb_random_coefficient_cses"]["ML"]["logLik"], atol=1e-5)


def test_mixture_halves_the_p_value_for_one_variance(hsb):
    # Closed form: adding one variance (no covariance, diagonal T) gives df = 1, and the
    # 50:50 mixture of chi2(0) and chi2(1) has p = P(chi2_1 > LR) / 2.
    ri = mlm.fit_random_intercept(hsb, "mathach", "school", predictors=["cses"])
    rc = mlm.fit_mixed(hsb, "mathach ~ cses", "school", re_formula="cses", diagonal=True)
    res = mlm.lrt(ri, rc)
    assert res.df == 1
    assert_allclose(res.p_mixture, stats.chi2.sf(res.statistic, 1) / 2, rtol=1e-12)
    assert_allclose(res.p_value, stats.chi2.sf(res.statistic, 1), rtol=1e-12)


def test_lrt_bad_input(fits, hsb):
    with pytest.raises(TypeError, match="reduced must be a MixedFit"):
        mlm.lrt("model", fits["rc_cses"])
    with pytest.raises(TypeError, match="full must be a MixedFit"):
        mlm.lrt(fits["ri_cses"], None)
    with pytest.raises(ValueError, match="not nested"):
        mlm.lrt(fits["rc_cses"], fits["ri_ses"])
    with pytest.raises(ValueError, match="not nested"):
        mlm.lrt(fits["rc_cses"], fits["ri_cses"])
    with pytest.raises(ValueError, match="the full model must have more"):
        mlm.lrt(fits["ri_cses"], fits["ri_cses"])
    small = hsb[hsb["school"].isin(hsb["school"].unique()[:40])]
    other = mlm.fit_random_coefficient(small, "mathach", "school", predictors=["cses"])
    with pytest.raises(ValueError, match="not fitted to the same data"):
        mlm.lrt(fits["ri_cses"], other)
    # the same partition under another column name is the same grouping ...
    renamed = mlm.fit_mixed(
        hsb.assign(s2=hsb["school"]), "mathach ~ cses", "s2", re_formula="cses"
    )
    assert mlm.lrt(fits["ri_cses"], renamed).statistic == pytest.approx(
        mlm.lrt(fits["ri_cses"], fits["rc_cses"]).statistic, abs=1e-6)
    # ... another partition is not
    codes = pd.factorize(hsb["school"])[0]
    regrouped = mlm.fit_mixed(
        hsb.assign(s2=codes // 2), "mathach ~ cses", "s2", re_formula="cses"
    )
    with pytest.raises(ValueError, match="different groups"):
        mlm.lrt(fits["ri_cses"], regrouped)
    diag2 = mlm.fit_mixed(
        hsb, "mathach ~ cses + meanses", "school", re_formula="cses", diagonal=True
    )
    with pytest.raises(ValueError, match="fixes at zero"):
        mlm.lrt(fits["rc_cses"], diag2)


# --- wald_test -------------------------------------------------------------------------------


def test_wald_one_term_is_z_squared(fits):
    fit = fits["full"]
    row = fit.fixed.set_index("term").loc["catholic:cses"]
    res = mlm.wald_test(fit, "catholic:cses")
    assert_allclose(res.statistic, row["statistic"] ** 2, rtol=1e-10)
    assert_allclose(res.p_value, row["p_value"], rtol=1e-8)
    assert res.df == 1 and res.terms == ("catholic:cses",)


def test_wald_matches_lme4_vcov(fits):
    # Closed form from lme4's own estimates: W = b' V^-1 b with fixef() and vcov() of
    # hsb_full (REML). The engine's fixed effects and vcov match lme4 to about 1e-5.
    ref = REF["hsb_full"]["REML"]
    names = ["meanses:cses", "catholic:cses"]
    lme4 = ["meanses:cses", "cses:catholic"]  # lme4's names for the same terms
    b = np.array([ref["fixef"][n] for n in lme4])
    V = np.array([[ref["vcov_fixef"]["by_name"][r][c] for c in lme4] for r in lme4])
    expected = float(b @ np.linalg.inv(V) @ b)
    res = mlm.wald_test(fits["full"], names)
    assert_allclose(res.statistic, expected, rtol=1e-4)
    assert_allclose(res.p_value, stats.chi2.sf(expected, 2), rtol=1e-3)


def test_wald_close_to_ml_lrt_on_hsb(hsb):
    # Wald and ML likelihood-ratio tests are asymptotically equivalent, but on HSB dropping
    # the cross-level interactions raises tau11 in the reduced model, which lowers the LR
    # (41.7 against a Wald 49.3). Loose check: within 25%.
    full = mlm.fit_full_model(
        hsb, "mathach", "school", level1=["cses"], level2=["meanses", "catholic"], method="ML"
    )
    red = mlm.fit_mixed(
        hsb, "mathach ~ meanses + catholic + cses", "school", re_formula="cses", method="ML"
    )
    w = mlm.wald_test(full, ["meanses:cses", "catholic:cses"])
    lr = mlm.lrt(red, full)
    assert lr.df == w.df == 2 and not lr.refitted
    assert_allclose(w.statistic, lr.statistic, rtol=0.25)


def test_wald_close_to_lrt_under_local_alternative():
    # Known truth, small effects (a local alternative) and many groups: the two statistics
    # agree closely (within 10% + 0.5).
    df = mlm.simulate_two_level(
        300,
        10,
        gamma00=1.0,
        gamma10=1.0,
        gamma01=0.15,
        gamma11=0.1,
        tau00=2.0,
        tau11=0.5,
        sigma2=4.0,
        x_between_sd=0.5,
        seed=12,
    )
    full = mlm.fit_mixed(df, "y ~ x * z", "group", re_formula="x", method="ML")
    red = mlm.fit_mixed(df, "y ~ x", "group", re_formula="x", method="ML")
    w = mlm.wald_test(full, ["z", "x:z"])
    lr = mlm.lrt(red, full)
    assert abs(w.statistic - lr.statistic) < 0.1 * lr.statistic + 0.5


def test_wald_bad_input(fits):
    with pytest.raises(TypeError, match="fit must be a MixedFit"):
        mlm.wald_test({}, "cses")
    with pytest.raises(ValueError, match="terms is empty"):
        mlm.wald_test(fits["full"], [])
    with pytest.raises(TypeError, match="terms must be fixed-effect names"):
        mlm.wald_test(fits["full"], [1, 2])
    with pytest.raises(ValueError, match="repeats a term"):
        mlm.wald_test(fits["full"], ["cses", "cses"])
    with pytest.raises(ValueError, match="'ses' not among the fixed effects"):
        mlm.wald_test(fits["full"], ["ses"])


# --- pre -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_pre_matches_lme4(fits, method):
    ref = REF["pre"][method]
    rc, full = fits["rc_cses"].refit(method=method), fits["full"].refit(method=method)
    res = mlm.pre(rc, full).set_index("component")
    r = ref["random_coefficient_cses_to_full"]
    # tau00 agrees with lme4 to 1e-5 relative; tau11 of the full model only to about 2e-3
    # (a flat likelihood; tests/reference/README.md), which moves its PRE by up to 3e-4
    assert_allclose(res.loc["tau00", "pre"], r["pre_tau00"], atol=1e-4)
    assert_allclose(res.loc["tau11", "pre"], r["pre_tau11"], atol=1e-3)
    assert res.loc["tau11", "term"] == "cses"
    assert_allclose(
        res.loc["tau00", ["reference", "fit"]].astype(float),
        [r["tau00_base"], r["tau00_full"]],
        rtol=1e-3,
    )
    assert_allclose(res.loc["sigma2", "pre"], 1 - full.sigma2 / rc.sigma2, rtol=1e-12)
    r = ref["null_to_means_as_outcomes"]
    res = mlm.pre(fits["null"].refit(method=method), fits["means"].refit(method=method))
    assert res["component"].tolist() == ["tau00", "sigma2"]
    assert_allclose(res.loc[0, "pre"], r["pre_tau00"], atol=1e-4)


def test_pre_only_shared_components(fits):
    # the random-intercept model has no tau11: only tau00 and sigma2 are compared
    res = mlm.pre(fits["rc_cses"], fits["ri_cses"])
    assert res["component"].tolist() == ["tau00", "sigma2"]


def test_pre_bad_input(fits, hsb):
    with pytest.raises(TypeError, match="reference must be a MixedFit"):
        mlm.pre(1, fits["full"])
    with pytest.raises(ValueError, match="fitted by REML and fit by ML"):
        mlm.pre(fits["rc_cses"], fits["full"].refit(method="ML"))
    small = hsb[hsb["school"].isin(hsb["school"].unique()[:40])]
    with pytest.raises(ValueError, match="not fitted to the same data"):
        mlm.pre(fits["null"], mlm.fit_null(small, "mathach", "school"))


# --- compare_models ----------------------------------------------------------------------


def test_compare_models_matches_lme4(fits):
    models = {
        "null": "hsb_null",
        "ri_ses": "hsb_random_intercept_ses",
        "rc_cses": "hsb_random_coefficient_cses",
        "full": "hsb_full",
    }
    tab = mlm.compare_models({k: fits[k].refit(method="ML") for k in models})
    assert tab["model"].tolist() == list(models)
    for row, key in zip(tab.itertuples(), models.values()):
        ref = REF[key]["ML"]
        assert row.method == "ML"
        assert row.n_params == ref["logLik_df"]
        # ML log-likelihoods agree with lme4 to about 1e-6; atol 1e-4 on -2 loglik and ICs
        assert_allclose(row.loglik, ref["logLik"], atol=1e-5)
        assert_allclose(
            [row.deviance, row.aic, row.bic],
            [ref["minus2logLik"], ref["AIC"], ref["BIC"]],
            atol=1e-4,
        )


def test_compare_models_bad_input(fits, hsb):
    with pytest.raises(TypeError, match="fits must be a dict"):
        mlm.compare_models([fits["null"]])
    with pytest.raises(ValueError, match="fits is empty"):
        mlm.compare_models({})
    with pytest.raises(TypeError, match=r"fits\['b'\] must be a MixedFit"):
        mlm.compare_models({"a": fits["null"], "b": "x"})
    small = hsb[hsb["school"].isin(hsb["school"].unique()[:40])]
    with pytest.raises(ValueError, match="not fitted to the same data"):
        mlm.compare_models({"a": fits["null"], "b": mlm.fit_null(small, "mathach", "school")})


def test_lrt_of_a_covariance_is_not_a_boundary_test(sleepstudy):
    # Testing tau01 = 0 (diagonal T against full T) is an interior hypothesis: df = 1, the
    # plain chi2(1) p-value, no mixture. lme4: logLik of sleep_uncorrelated and
    # sleep_random_slope (REML), atol 1e-5.
    diag = mlm.fit_mixed(sleepstudy, "reaction ~ days", "subject", re_formula="days", diagonal=True)
    full = mlm.fit_mixed(sleepstudy, "reaction ~ days", "subject", re_formula="days")
    res = mlm.lrt(diag, full)
    ref0 = REF["sleep_uncorrelated"]["REML"]["logLik"]
    ref1 = REF["sleep_random_slope"]["REML"]["logLik"]
    assert res.df == 1 and res.method == "REML" and not res.refitted
    assert_allclose(res.statistic, 2 * (ref1 - ref0), atol=1e-5)
    assert np.isnan(res.p_mixture)
