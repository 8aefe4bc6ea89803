"""fit_mixed and the model stages against lme4, closed forms, simulations and bad input.

Reference numbers: tests/reference/lme4_reference.json, written by lme4_reference.R
(R 4.2.2, lme4 1.1-31; see tests/reference/README.md).

Tolerances, per quantity:
- log-likelihood: 1e-3 absolute (both optimisers stop within 1e-6 of the optimum; 1e-3 is
  the issue's bound and far below any difference that changes a test);
- fixed effects: 2e-4 relative (they hardly move along the flat directions of the
  likelihood);
- fixed-effect SEs and sigma2: 1e-3 relative;
- T (variance components): 2e-3 relative plus 1e-4 absolute; the README shows lme4's own
  fits move tau01 and tau11 by up to 1e-3 relative between default and tight convergence,
  because the likelihood is flat there;
- BLUPs and their conditional SDs: 2e-3 relative plus 1e-3 absolute (they inherit T's
  imprecision).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_reference.json").read_text())

# lme4 model name -> (dataset fixture, fixed formula, group, re_formula, diagonal)
MODELS = {
    "hsb_null": ("hsb", "mathach ~ 1", "school", None, False),
    "hsb_means_as_outcomes": ("hsb", "mathach ~ meanses", "school", None, False),
    "hsb_random_intercept_ses": ("hsb", "mathach ~ ses", "school", None, False),
    "hsb_random_intercept_cses": ("hsb", "mathach ~ cses", "school", None, False),
    "hsb_random_coefficient_ses": ("hsb", "mathach ~ ses", "school", "ses", False),
    "hsb_random_coefficient_cses": ("hsb", "mathach ~ cses", "school", "cses", False),
    "hsb_full": ("hsb", "mathach ~ meanses*cses + catholic*cses", "school", "cses", False),
    "hsb_contextual": ("hsb", "mathach ~ cses + meanses", "school", None, False),
    "hsb_contextual_ses": ("hsb", "mathach ~ ses + meanses", "school", None, False),
    "sleep_random_intercept": ("sleepstudy", "reaction ~ days", "subject", None, False),
    "sleep_random_slope": ("sleepstudy", "reaction ~ days", "subject", "days", False),
    "sleep_uncorrelated": ("sleepstudy", "reaction ~ days", "subject", "days", True),
}


def _name(lme4_term: str) -> str:
    """lme4 term name -> patsy term name, order-free for interactions."""
    term = "Intercept" if lme4_term == "(Intercept)" else lme4_term.lower()
    return ":".join(sorted(term.split(":")))


def _ours(names) -> list[str]:
    return [":".join(sorted(n.split(":"))) for n in names]


_FITS: dict = {}


@pytest.fixture
def fitted(request, hsb, sleepstudy):
    """Fit (and cache) a reference model: returns (our fit, lme4 reference)."""

    def get(name, method):
        key = (name, method)
        if key not in _FITS:
            data_name, formula, group, re_formula, diagonal = MODELS[name]
            data = hsb if data_name == "hsb" else sleepstudy
            _FITS[key] = mlm.fit_mixed(
                data, formula, group, re_formula=re_formula, method=method, diagonal=diagonal
            )
        return _FITS[key], REF[name][method]

    return get


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("name", list(MODELS))
def test_against_lme4(fitted, name, method):
    fit, ref = fitted(name, method)
    # lme4: logLik(m) (the REML criterion / -2 for REML fits)
    assert_allclose(fit.loglik, ref["logLik"], atol=1e-3)
    assert fit.converged
    # lme4: fixef(m) and sqrt(diag(vcov(m)))
    ref_fixef = pd.Series({_name(k): v for k, v in ref["fixef"].items()})
    ref_se = pd.Series({_name(k): v for k, v in ref["fixef_se"].items()})
    ours = fit.fixed.assign(key=_ours(fit.fixed["term"])).set_index("key")
    assert sorted(ours.index) == sorted(ref_fixef.index)
    assert_allclose(ours["estimate"], ref_fixef[ours.index], rtol=2e-4, atol=1e-8)
    assert_allclose(ours["std_error"], ref_se[ours.index], rtol=1e-3)
    # lme4: vcov(m)
    names = [_name(k) for k in ref["vcov_fixef"]["rownames"]]
    ref_vcov = pd.DataFrame(ref["vcov_fixef"]["matrix"], index=names, columns=names)
    ours_vcov = fit.vcov()
    ours_vcov.index = ours_vcov.columns = _ours(ours_vcov.index)
    assert_allclose(ours_vcov.loc[names, names], ref_vcov, rtol=2e-3, atol=1e-6)
    # lme4: sigma(m)^2 and VarCorr(m)
    assert_allclose(fit.sigma2, ref["sigma2"], rtol=1e-3)
    T_names = [_name(k) for k in ref["T"]["rownames"]]
    ref_T = np.array(ref["T"]["matrix"])
    ours_T = fit.tau.copy()
    ours_T.index = ours_T.columns = _ours(ours_T.index)
    assert_allclose(ours_T.loc[T_names, T_names], ref_T, rtol=2e-3, atol=1e-4)
    # lme4: AIC(m), BIC(m) (REML criterion based for REML fits)
    assert_allclose(fit.aic, ref["AIC"], atol=2e-3)
    assert_allclose(fit.bic, ref["BIC"], atol=2e-3)
    assert fit.n_obs == ref["n_obs"]
    assert fit.n_groups == next(iter(ref["n_groups"].values()))


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("name", ["hsb_null", "hsb_random_coefficient_cses", "hsb_full",
                                  "sleep_random_slope", "sleep_uncorrelated"])
def test_blups_and_predictions_against_lme4(fitted, name, method):
    fit, ref = fitted(name, method)
    re = fit.random_effects()
    blup = ref["ranef_first5"]
    for lme4_term, values in blup["values"].items():
        term = [t for t in fit.tau.index if _ours([t])[0] == _name(lme4_term)][0]
        rows = re[re["term"] == term].set_index("group").loc[blup["group_ids"]]
        # lme4: ranef(m, condVar = TRUE)[[group]][, term] and sqrt(postVar)
        assert_allclose(rows["estimate"], values, rtol=2e-3, atol=1e-3)
        assert_allclose(rows["std_error"], blup["condsd"][lme4_term], rtol=2e-3, atol=1e-3)
    # lme4: fitted(m)[1:5] and predict(m, re.form = NA)[1:5]
    assert_allclose(fit.predict().iloc[:5], ref["fitted_first5"], rtol=1e-4)
    assert_allclose(fit.predict(conditional=False).iloc[:5], ref["predict_fixed_first5"],
                    rtol=1e-5)


@pytest.mark.parametrize("name", ["hsb_null", "hsb_random_coefficient_cses", "hsb_full"])
def test_loglik_agrees_with_statsmodels_at_our_estimates(fitted, name):
    # statsmodels evaluates its own REML likelihood, started at our optimum
    fit, _ = fitted(name, "REML")
    sm = fit.statsmodels_result()
    assert_allclose(sm.llf, fit.loglik, atol=1e-3)
    assert_allclose(sm.fe_params.to_numpy(), fit.params.to_numpy(), rtol=1e-4)


def test_stage_functions_build_the_ladder(hsb):
    null = mlm.fit_null(hsb, "mathach", "school")
    assert null.formula == "mathach ~ 1 + (1 | school)" and null.tau.shape == (1, 1)
    ri = mlm.fit_random_intercept(hsb, "mathach", "school", predictors=["ses"])
    assert list(ri.params.index) == ["Intercept", "ses"]
    rc = mlm.fit_random_coefficient(hsb, "mathach", "school", predictors=["cses"])
    assert list(rc.tau.index) == ["Intercept", "cses"]
    full = mlm.fit_full_model(
        hsb, "mathach", "school", level1=["cses"], level2=["meanses", "catholic"]
    )
    assert list(full.params.index) == [
        "Intercept", "meanses", "catholic", "cses", "meanses:cses", "catholic:cses",
    ]
    # the same model as the lme4 reference, by another route
    assert_allclose(full.loglik, REF["hsb_full"]["REML"]["logLik"], atol=1e-3)
    with pytest.raises(ValueError, match="must also be in predictors"):
        mlm.fit_random_coefficient(hsb, "mathach", "school", predictors=["cses"],
                                   random=["ses"])
    with pytest.raises(TypeError, match="must be column names"):
        mlm.fit_random_intercept(hsb, "mathach", "school", predictors=[1])


def test_icc_and_summary(fitted):
    fit, ref = fitted("hsb_null", "REML")
    T = ref["T"]["matrix"][0][0]
    assert_allclose(fit.icc(), T / (T + ref["sigma2"]), rtol=1e-3)
    table = fit.summary()
    assert list(table.index.get_level_values("part").unique()) == [
        "Fixed effects", "Random effects",
    ]
    vc = fit.variance_components()
    assert list(vc.index) == ["tau00", "sigma2"]
    rc, _ = fitted("hsb_random_coefficient_cses", "REML")
    assert list(rc.variance_components().index) == ["tau00", "tau11", "tau01", "sigma2"]
    with pytest.raises(ValueError, match="ICC of a random-slope model"):
        rc.icc()


def test_group_coefficients_and_new_groups(fitted, hsb):
    fit, _ = fitted("hsb_random_coefficient_cses", "REML")
    coefs = fit.group_coefficients()
    re = fit.random_effects()
    first = coefs.index[0]
    u0 = re[(re.group == first) & (re.term == "Intercept")]["estimate"].item()
    assert_allclose(coefs.loc[first, "Intercept"], fit.params["Intercept"] + u0)
    # a school that was not in the fitted data: an error by default (lme4's
    # allow.new.levels = FALSE), the population-average prediction when allowed
    new = hsb.iloc[:3].assign(school="new school")
    with pytest.raises(ValueError, match="not in the fitted data.*allow_new_levels=True"):
        fit.predict(new)
    assert_allclose(fit.predict(new, allow_new_levels=True), fit.predict(new, conditional=False))
    mixed = pd.concat([hsb.iloc[:2], new])
    got = fit.predict(mixed, allow_new_levels=True).to_numpy()
    assert_allclose(got[:2], fit.predict(hsb.iloc[:2]).to_numpy())
    assert_allclose(got[2:], fit.predict(new, conditional=False).to_numpy())


def test_refit_and_immutability(fitted, hsb):
    fit, ref_ml = fitted("hsb_random_intercept_ses", "ML")
    reml, _ = fitted("hsb_random_intercept_ses", "REML")
    assert_allclose(reml.refit(method="ML").loglik, ref_ml["logLik"], atol=1e-3)
    assert reml.refit(method="REML") is reml
    with pytest.raises(Exception):
        fit.sigma2 = 1.0
    before = hsb.copy()
    mlm.fit_mixed(hsb, "mathach ~ ses", "school")
    pd.testing.assert_frame_equal(hsb, before)


# --- closed forms and known truth ---------------------------------------------------------


def test_balanced_null_model_equals_anova_estimator():
    # On balanced data with MSB > MSW, REML for the one-way random-effects model has the
    # closed form tau00 = (MSB - MSW) / n, sigma2 = MSW (Searle, Casella & McCulloch 1992).
    rng = np.random.default_rng(11)
    J, n = 30, 8
    g = np.repeat(np.arange(J), n)
    y = 5 + rng.normal(0, 1.5, J)[g] + rng.normal(0, 2.0, J * n)
    df = pd.DataFrame({"g": g, "y": y})
    means = df.groupby("g")["y"].mean()
    msb = n * ((means - y.mean()) ** 2).sum() / (J - 1)
    msw = ((y - means[g].to_numpy()) ** 2).sum() / (J * n - J)
    fit = mlm.fit_null(df, "y", "g")
    assert msb > msw
    assert_allclose(fit.sigma2, msw, rtol=1e-6)
    assert_allclose(fit.tau.iloc[0, 0], (msb - msw) / n, rtol=1e-5)
    # and the GLS intercept of balanced data is the grand mean
    assert_allclose(fit.params["Intercept"], y.mean(), rtol=1e-10)


def _simulate(seed, J=300, n=15, gamma=(10.0, 2.0), tau=((4.0, 0.5), (0.5, 1.0)), s2=9.0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    u = rng.multivariate_normal([0, 0], tau, size=J)
    y = gamma[0] + gamma[1] * x + u[g, 0] + u[g, 1] * x + rng.normal(0, np.sqrt(s2), J * n)
    return pd.DataFrame({"g": g, "x": x, "y": y})


def test_recovers_known_truth():
    # Known truth: gamma = (10, 2), T = [[4, .5], [.5, 1]], sigma2 = 9, J = 300 x n = 15.
    # Fixed effects within 4 SE; variance components within 25% (their sampling SD at
    # this J is about 10% for tau00 and tau11, 1% for sigma2).
    fit = mlm.fit_mixed(_simulate(3), "y ~ x", "g", re_formula="x")
    z = (fit.fixed["estimate"] - np.array([10.0, 2.0])) / fit.fixed["std_error"]
    assert np.all(np.abs(z) < 4)
    assert_allclose(fit.tau.to_numpy(), [[4.0, 0.5], [0.5, 1.0]], rtol=0.25, atol=0.3)
    assert_allclose(fit.sigma2, 9.0, rtol=0.05)


@pytest.mark.slow
def test_wald_interval_coverage_over_seeds():
    # 95% intervals for the slope cover the truth in about 95% of 200 simulated data sets;
    # binomial SD of the coverage is 1.5%, so [0.90, 0.99] is about +-3 SD.
    hits = []
    for seed in range(200):
        with warnings.catch_warnings():
            # small samples sometimes put the intercept-slope correlation at +-1
            warnings.simplefilter("ignore", mlm.BoundaryWarning)
            fit = mlm.fit_mixed(_simulate(seed, J=40, n=10), "y ~ x", "g", re_formula="x")
        row = fit.fixed.set_index("term").loc["x"]
        hits.append(row["ci_low"] <= 2.0 <= row["ci_high"])
    assert 0.90 <= np.mean(hits) <= 0.99


# --- invariances (property-based) ---------------------------------------------------------

SMALL = _simulate(5, J=25, n=8)
SMALL_FIT = mlm.fit_mixed(SMALL, "y ~ x", "g", re_formula="x")
PROPS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(st.integers(0, 2**32 - 1))
def test_row_order_and_group_labels_do_not_matter(seed):
    rng = np.random.default_rng(seed)
    perm = SMALL.sample(frac=1.0, random_state=rng.integers(2**31)).copy()
    labels = {g: f"school-{rng.integers(10**9)}-{g}" for g in SMALL["g"].unique()}
    perm["g"] = perm["g"].map(labels)
    fit = mlm.fit_mixed(perm, "y ~ x", "g", re_formula="x")
    assert_allclose(fit.loglik, SMALL_FIT.loglik, atol=1e-6)
    assert_allclose(fit.params, SMALL_FIT.params, rtol=1e-5)
    assert_allclose(fit.tau.to_numpy(), SMALL_FIT.tau.to_numpy(), rtol=1e-3, atol=1e-5)


@PROPS
@given(st.floats(-1e3, 1e3, allow_nan=False))
def test_shifting_the_outcome_moves_only_the_intercept(shift):
    fit = mlm.fit_mixed(SMALL.assign(y=SMALL["y"] + shift), "y ~ x", "g", re_formula="x")
    assert_allclose(fit.params["Intercept"], SMALL_FIT.params["Intercept"] + shift,
                    rtol=1e-6, atol=1e-5)
    assert_allclose(fit.params["x"], SMALL_FIT.params["x"], rtol=1e-5)
    assert_allclose(fit.tau.to_numpy(), SMALL_FIT.tau.to_numpy(), rtol=1e-3, atol=1e-5)
    # the likelihood is flat near the optimum: the loglik agrees to 1e-8 while the point
    # where the optimizer stops moves sigma2 by up to ~1e-6 relative
    assert_allclose(fit.loglik, SMALL_FIT.loglik, atol=1e-6)
    assert_allclose(fit.sigma2, SMALL_FIT.sigma2, rtol=1e-4)


@PROPS
@given(st.floats(0.05, 20.0))
def test_rescaling_a_predictor(c):
    # x -> c x: gamma1 -> gamma1 / c, tau11 -> tau11 / c^2, tau01 -> tau01 / c; the
    # likelihood is unchanged up to the Jacobian-free REML constant, which does not move.
    fit = mlm.fit_mixed(SMALL.assign(x=SMALL["x"] * c), "y ~ x", "g", re_formula="x")
    T0, T = SMALL_FIT.tau.to_numpy(), fit.tau.to_numpy()
    assert_allclose(fit.params["x"], SMALL_FIT.params["x"] / c, rtol=1e-4)
    assert_allclose(T[1, 1], T0[1, 1] / c**2, rtol=2e-3)
    assert_allclose(T[0, 1], T0[0, 1] / c, rtol=5e-3, atol=1e-4)
    assert_allclose(T[0, 0], T0[0, 0], rtol=2e-3)
    assert_allclose(fit.loglik + np.log(c), SMALL_FIT.loglik, atol=1e-4)


# --- warnings ------------------------------------------------------------------------------


def test_boundary_warning_when_a_variance_is_zero():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": np.repeat(np.arange(20), 10), "y": rng.normal(size=200)})
    df.loc[:, "y"] = df["y"] - df.groupby("g")["y"].transform("mean")  # no between variance
    with pytest.warns(mlm.BoundaryWarning, match="variance of 'Intercept' across 'g' is estimated at zero"):
        fit = mlm.fit_null(df, "y", "g")
    assert fit.tau.iloc[0, 0] < 1e-6


def test_convergence_warning_names_remedies(monkeypatch, hsb):
    from mlm_lessons import _engine

    real = _engine.check_convergence

    def stuck(*args, **kwargs):
        conv = real(*args, **kwargs)
        return type(conv)(**{**conv.__dict__, "max_grad": 0.5,
                             "messages": ("failed to converge with max|grad| = 0.5",)})

    monkeypatch.setattr(_engine, "check_convergence", stuck)
    with pytest.warns(mlm.ConvergenceWarning, match="did not converge.*Simplify the random"):
        fit = mlm.fit_null(hsb, "mathach", "school")
    assert not fit.converged


def test_hsb_ladder_fits_without_warnings(hsb):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in MODELS:
            data_name, formula, group, re_formula, diagonal = MODELS[name]
            if data_name == "hsb":
                mlm.fit_mixed(hsb, formula, group, re_formula=re_formula)


# --- bad input ------------------------------------------------------------------------------


@pytest.fixture
def tiny():
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"g": np.repeat(["a", "b", "c", "d"], 5), "x": rng.normal(size=20),
         "y": rng.normal(size=20), "label": ["u"] * 20}
    )


def test_missing_column(tiny):
    with pytest.raises(KeyError, match=r"'z' not in data; available columns: g, x, y"):
        mlm.fit_mixed(tiny, "y ~ z", "g")
    with pytest.raises(KeyError, match="group column 'school' not in data"):
        mlm.fit_mixed(tiny, "y ~ x", "school")
    with pytest.raises(KeyError, match="'w' not in data"):
        mlm.fit_mixed(tiny, "y ~ x", "g", re_formula="w")


def test_missing_values(tiny):
    bad = tiny.copy()
    bad.loc[3, "y"] = np.nan
    with pytest.raises(ValueError, match=r"column 'y' has 1 missing value\(s\); drop"):
        mlm.fit_mixed(bad, "y ~ x", "g")
    bad = tiny.copy()
    bad.loc[[1, 2], "x"] = np.nan
    with pytest.raises(ValueError, match=r"column 'x' has 2 missing value\(s\)"):
        mlm.fit_mixed(bad, "y ~ x", "g")
    bad = tiny.copy()
    bad.loc[0, "g"] = None
    with pytest.raises(ValueError, match=r"group column 'g' has 1 missing value\(s\)"):
        mlm.fit_mixed(bad, "y ~ x", "g")


def test_too_few_groups_or_rows(tiny):
    with pytest.raises(ValueError, match="has 1 distinct value.*at least 2 groups"):
        mlm.fit_mixed(tiny.assign(g="a"), "y ~ x", "g")
    singletons = tiny.assign(g=[f"r{i}" for i in range(20)])
    with pytest.raises(ValueError, match="every group in 'g' has a single row"):
        mlm.fit_mixed(singletons, "y ~ x", "g")


def test_outcome_problems(tiny):
    with pytest.raises(TypeError, match="outcome 'label' must be numeric"):
        mlm.fit_mixed(tiny, "label ~ x", "g")
    with pytest.raises(ValueError, match="outcome 'y' is constant"):
        mlm.fit_mixed(tiny.assign(y=3.0), "y ~ x", "g")
    with pytest.raises(ValueError, match="needs an outcome"):
        mlm.fit_mixed(tiny, "x", "g")


def test_bad_arguments(tiny):
    with pytest.raises(ValueError, match="method must be 'REML' or 'ML'"):
        mlm.fit_mixed(tiny, "y ~ x", "g", method="reml")
    with pytest.raises(ValueError, match="conf_level must be between 0 and 1"):
        mlm.fit_mixed(tiny, "y ~ x", "g", conf_level=95)
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        mlm.fit_mixed(tiny.to_numpy(), "y ~ x", "g")
    with pytest.raises(ValueError, match="rank deficient"):
        mlm.fit_mixed(tiny.assign(x2=tiny["x"] * 2), "y ~ x + x2", "g")
    with pytest.raises(ValueError, match="cannot parse formula"):
        mlm.fit_mixed(tiny, "y ~ x +", "g")
