"""Random-intercept logistic regression against lme4's glmer, GEE, and bad input.

Reference: tests/reference/lme4_glmm.json from lme4_glmm.R (glmer with nAGQ = 1 and 10,
bobyqa). Tolerances: log-likelihood 1e-3 absolute; coefficients 2e-3 relative plus 1e-4
absolute (the optimisers stop within that of each other); SEs 1e-2 relative (both come
from finite-difference Hessians); tau2 5e-3 relative.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_glmm.json").read_text())
FORMULA = "use ~ age10 + I(age10**2) + urban + livch"
TERMS = {"(Intercept)": "Intercept", "age10": "age10", "I(age10^2)": "I(age10 ** 2)",
         "urban01": "urban", "livch1": "livch[T.1]", "livch2": "livch[T.2]",
         "livch3+": "livch[T.3+]"}


@pytest.fixture(scope="module")
def contraception():
    cc = mlm.load_dataset("contraception")
    return cc.assign(age10=cc["age"] / 10)


@pytest.mark.parametrize("n_agq", [1, 10])
def test_against_glmer(contraception, n_agq):
    fit = mlm.fit_logistic_mixed(contraception, FORMULA, "district", n_agq=n_agq)
    ref = REF[f"nAGQ{n_agq}"]
    assert fit.converged
    # lme4: logLik(m)
    assert_allclose(fit.loglik, ref["logLik"], atol=1e-3)
    # lme4: fixef(m), sqrt(diag(vcov(m))), VarCorr(m)$district
    ours = fit.fixed.set_index("term")
    for lme4_name, value in ref["fixef"].items():
        assert_allclose(ours.loc[TERMS[lme4_name], "estimate"], value, rtol=2e-3, atol=1e-4)
        assert_allclose(ours.loc[TERMS[lme4_name], "std_error"], ref["fixef_se"][lme4_name],
                        rtol=1e-2)
    assert_allclose(fit.tau2, ref["tau2"], rtol=5e-3)
    # lme4: ranef(m)$district[1:5, 1]
    re = fit.random_effects().set_index("group").loc[ref["ranef_ids"], "estimate"]
    assert_allclose(re, ref["ranef_first5"], rtol=5e-3, atol=1e-3)


def test_more_nodes_approach_the_integral(contraception):
    # Known behaviour of adaptive quadrature: the Laplace approximation (1 node) differs
    # from 10 nodes by about 0.13 log-likelihood units here (lme4: -1186.364 vs -1186.229);
    # 10 and 20 nodes agree to 1e-4.
    ll = {q: mlm.fit_logistic_mixed(contraception, "use ~ urban", "district", n_agq=q).loglik
          for q in (1, 10, 20)}
    assert abs(ll[10] - ll[20]) < 1e-4
    assert abs(ll[1] - ll[10]) > 1e-3


def test_simulated_truth():
    # gamma = (-0.5, 1.0), tau2 = 1, 150 groups x 30: estimates within 4 SE, tau2 within 30%
    rng = np.random.default_rng(7)
    J, n = 150, 30
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    eta = -0.5 + 1.0 * x + rng.normal(0, 1, J)[g]
    df = pd.DataFrame({"g": g, "x": x, "y": (rng.random(J * n) < 1 / (1 + np.exp(-eta)))})
    df["y"] = df["y"].astype(int)
    fit = mlm.fit_logistic_mixed(df, "y ~ x", "g", n_agq=5)
    z = (fit.params.to_numpy() - [-0.5, 1.0]) / fit.fixed["std_error"].to_numpy()
    assert np.all(np.abs(z) < 4)
    assert_allclose(fit.tau2, 1.0, rtol=0.3)
    assert 0 < fit.icc_latent() < 1
    p = fit.predict()
    assert p.between(0, 1).all() and len(p) == len(df)


def test_gee_is_attenuated_towards_zero(contraception):
    # Population-averaged coefficients are smaller in absolute value than subject-specific
    # ones by about the attenuation factor (Zeger, Liang & Albert 1988).
    fit = mlm.fit_logistic_mixed(contraception, "use ~ urban", "district")
    gee = mlm.fit_gee(contraception, "use ~ urban", "district").set_index("term")
    ratio = gee.loc["urban", "estimate"] / fit.params["urban"]
    assert_allclose(ratio, mlm.attenuation_factor(fit.tau2), atol=0.05)
    assert gee.attrs["working_correlation"] > 0


def test_attenuation_factor_closed_form():
    c2 = (16 * np.sqrt(3) / (15 * np.pi)) ** 2
    assert_allclose(mlm.attenuation_factor(2.0), 1 / np.sqrt(1 + 2 * c2))
    with pytest.raises(ValueError, match="non-negative variance"):
        mlm.attenuation_factor(-1.0)


def test_bad_input(contraception):
    with pytest.raises(ValueError, match="must be coded 0/1"):
        mlm.fit_logistic_mixed(contraception, "age ~ urban", "district")
    with pytest.raises(ValueError, match="n_agq must be an integer >= 1"):
        mlm.fit_logistic_mixed(contraception, "use ~ urban", "district", n_agq=0)
    with pytest.raises(KeyError, match="'town' not in data"):
        mlm.fit_logistic_mixed(contraception, "use ~ town", "district")
    with pytest.raises(ValueError, match="correlation must be 'exchangeable' or 'independence'"):
        mlm.fit_gee(contraception, "use ~ urban", "district", correlation="ar1")
    with pytest.raises(ValueError, match="must be coded 0/1"):
        mlm.fit_gee(contraception, "age ~ urban", "district")


# --- fit_glmm: the API, bad input, and checks with known answers ---------------------------

import warnings  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

from scipy import integrate, special, stats  # noqa: E402

BAD = pd.read_csv(_Path(__file__).parent / "reference" / "data" / "bad_inputs.csv")


def _fit_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlm.OverdispersionWarning)
        return mlm.fit_glmm(*args, **kwargs)


def _cbpp():
    d = pd.read_csv(_Path(__file__).parent / "reference" / "data" / "cbpp.csv")
    d["period"] = pd.Categorical(d["period"].astype(str))
    d["herd"] = d["herd"].astype(str)
    return d


def test_fit_logistic_mixed_is_fit_glmm(contraception):
    a = mlm.fit_logistic_mixed(contraception, "use ~ urban", "district", n_agq=5)
    b = mlm.fit_glmm(contraception, "use ~ urban + (1 | district)", n_agq=5)
    assert isinstance(a, mlm.LogisticMixedFit) and isinstance(a, mlm.GLMMFit)
    assert_allclose(a.loglik, b.loglik, rtol=0, atol=1e-9)
    assert_allclose(a.tau2, b.tau.iloc[0, 0])
    # latent ICC: tau2 / (tau2 + pi^2/3), the same from icc() and the variance partition
    assert_allclose(a.icc_latent(), a.tau2 / (a.tau2 + np.pi**2 / 3))
    assert_allclose(b.icc(), a.icc_latent())
    vp = b.variance_partition().set_index("level")
    assert_allclose(vp.loc["observation", "variance"], np.pi**2 / 3)
    assert_allclose(vp["share"].sum(), 1.0)


def test_cbind_weights_and_offset_forms_agree():
    d = _cbpp()
    a = mlm.fit_glmm(d, "cbind(incidence, healthy) ~ period + (1 | herd)")
    b = mlm.fit_glmm(d.assign(prop=d["incidence"] / d["size"]), "prop ~ period + (1 | herd)",
                     weights="size")
    assert_allclose(a.loglik, b.loglik, atol=1e-8)
    assert_allclose(a.params, b.params, atol=1e-6)
    assert a.overdispersion()["df_residual"] == 56 - 5
    # offset= is offset(...) in the formula
    m = pd.read_csv(_Path(__file__).parent / "reference" / "data" / "mmmec.csv")
    m["lexp"] = np.log(m["expected"])
    f1 = mlm.fit_glmm(m, "deaths ~ uvb + offset(log(expected)) + (1 | region)",
                      family="poisson")
    f2 = mlm.fit_glmm(m, "deaths ~ uvb + (1 | region)", family="poisson", offset="lexp")
    assert_allclose(f1.loglik, f2.loglik, atol=1e-8)
    # rate ratios are exp of the link-scale estimates and limits
    rr = f1.rate_ratios().set_index("term")
    fx = f1.fixed.set_index("term")
    assert_allclose(rr["ratio"], np.exp(fx["estimate"]))
    assert_allclose(rr["ci_low"], np.exp(fx["ci_low"]))
    with pytest.raises(ValueError, match="use rate_ratios"):
        f1.odds_ratios()


def test_agq_equals_brute_force_quadrature():
    # Independent check of the quadrature: at the fitted estimates, each herd's integral
    # int prod_i Binom(y_i | n_i, expit(eta_i + b)) N(b; 0, tau2) db by scipy's adaptive quad;
    # 25-node AGQ agrees to 1e-7, the Laplace value differs by more than 1e-3.
    d = _cbpp()
    fit = mlm.fit_glmm(d, "cbind(incidence, healthy) ~ period + (1 | herd)", n_agq=25)
    tau = np.sqrt(fit.tau.iloc[0, 0])
    eta = fit.predict(scale="link", conditional=False).to_numpy()
    total = 0.0
    for h in d["herd"].unique():
        rows = (d["herd"] == h).to_numpy()
        y, n, e = d.loc[rows, "incidence"].to_numpy(), d.loc[rows, "size"].to_numpy(), eta[rows]

        def integrand(b):
            return np.exp(stats.binom.logpmf(y, n, special.expit(e + b)).sum()) * \
                stats.norm.pdf(b, 0, tau)

        total += np.log(integrate.quad(integrand, -12 * tau, 12 * tau, epsabs=0,
                                       epsrel=1e-12, limit=200)[0])
    assert abs(fit.loglik - total) < 1e-7
    lap = mlm.fit_glmm(d, "cbind(incidence, healthy) ~ period + (1 | herd)")
    assert abs(lap.loglik - total) > 1e-3


def test_laplace_equals_a_dense_computation():
    # Crossed factors: at the estimates, Newton's method for the modes and log|A| on dense
    # matrices (no engine code) give the same Laplace deviance to 1e-8.
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 15, 600), rng.integers(0, 9, 600)
    x = rng.normal(size=600)
    eta = 0.3 + 0.5 * x + rng.normal(0, 0.6, 15)[a] + rng.normal(0, 0.4, 9)[b]
    df = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "a": a, "b": b})
    fit = mlm.fit_glmm(df, "y ~ x + (1 | a) + (1 | b)", family="poisson")
    mats = fit.matrices()
    Z = np.column_stack([pd.get_dummies(mats.groups[g]).to_numpy(float) for g in ("a", "b")])
    lam = np.concatenate([np.full(15, np.sqrt(fit.taus["a"].iloc[0, 0])),
                          np.full(9, np.sqrt(fit.taus["b"].iloc[0, 0]))])
    ZL = Z * lam
    fixed = mats.X.to_numpy() @ fit.params.to_numpy()
    y = df["y"].to_numpy()
    u = np.zeros(ZL.shape[1])
    for _ in range(50):
        mu = np.exp(fixed + ZL @ u)
        H = ZL.T @ (mu[:, None] * ZL) + np.eye(len(u))
        step = np.linalg.solve(H, ZL.T @ (y - mu) - u)
        u += step
        if np.max(np.abs(step)) < 1e-13:
            break
    e = fixed + ZL @ u
    mu = np.exp(e)
    ll = np.sum(y * e - mu - special.gammaln(y + 1))
    H = ZL.T @ (mu[:, None] * ZL) + np.eye(len(u))
    dev = -2 * ll + u @ u + np.linalg.slogdet(H)[1]
    assert abs(-2 * fit.loglik - dev) < 1e-8


def test_predictions_and_population_average(contraception):
    fit = mlm.fit_glmm(contraception, "use ~ urban + (1 + urban | district)")
    p = fit.predict()
    link = fit.predict(scale="link")
    assert_allclose(p, special.expit(link))
    typical = fit.predict(conditional=False)
    marginal = fit.marginal_mean()
    # averaging over N(0, z'Tz) pulls the probabilities towards 0.5
    assert np.all(np.abs(marginal - 0.5) < np.abs(typical - 0.5))
    # check the quadrature against a Monte Carlo average for the urban = 1 rows
    row = contraception.index[contraception["urban"] == 1][0]
    T = fit.tau.to_numpy()
    z = np.array([1.0, 1.0])
    draws = np.random.default_rng(0).normal(size=400_000) * np.sqrt(z @ T @ z)
    mc = special.expit(link.loc[row] - (link.loc[row] - fit.predict(
        contraception.loc[[row]], conditional=False, scale="link").iloc[0]) + draws).mean()
    assert abs(marginal.loc[row] - mc) < 3e-3
    with pytest.raises(ValueError, match="scale must be"):
        fit.predict(scale="odds")
    new = contraception.iloc[:3].assign(district="new")
    with pytest.raises(ValueError, match="allow_new_levels"):
        fit.predict(new)
    assert_allclose(fit.predict(new, allow_new_levels=True), fit.predict(new, conditional=False))


def test_r2_closed_form_and_poisson_variants():
    d = _cbpp()
    fit = mlm.fit_glmm(d, "cbind(incidence, healthy) ~ period + (1 | herd)")
    X = fit.matrices().X.to_numpy()
    vf = np.var(X @ fit.params.to_numpy(), ddof=1)
    tau2 = fit.tau.iloc[0, 0]
    r2 = fit.r2()
    assert_allclose(r2["marginal"], vf / (vf + tau2 + np.pi**2 / 3))
    assert_allclose(r2["conditional"], (vf + tau2) / (vf + tau2 + np.pi**2 / 3))
    m = pd.read_csv(_Path(__file__).parent / "reference" / "data" / "epil.csv")
    pois = _fit_quiet(m, "y ~ trt + lbase + lage + V4 + (1 | subject)", family="poisson")
    eta = pois.predict(conditional=False, scale="link").to_numpy()
    lam = np.exp(eta.mean() + pois.tau.iloc[0, 0] / 2)
    assert_allclose(pois.distribution_variance("lognormal"), np.log1p(1 / lam))
    assert_allclose(pois.distribution_variance("trigamma"), special.polygamma(1, lam))
    assert_allclose(pois.distribution_variance("delta"), 1 / lam)
    with pytest.raises(ValueError, match="method must be one of"):
        pois.r2("exact")


def test_refit_and_simulate_recover_the_truth(contraception):
    fit = mlm.fit_glmm(contraception, "use ~ urban + (1 | district)")
    assert fit.refit() is fit
    sims = fit.simulate(2, seed=1)
    assert sims.shape == (2, len(contraception)) and set(np.unique(sims)) <= {0.0, 1.0}
    again = fit.refit(fit._design.y)
    assert_allclose(again.loglik, fit.loglik, atol=1e-8)
    other = fit.refit(sims[0])
    assert other.converged and other.loglik != fit.loglik
    assert_allclose(fit.simulate(1, seed=1), sims[:1])
    with pytest.raises(ValueError, match="coded 0/1"):
        fit.refit(np.full(len(contraception), 2.0))


def test_input_is_not_modified(contraception):
    before = contraception.copy()
    mlm.fit_glmm(contraception, "use ~ urban + (1 | district)", conf_level=0.9)
    pd.testing.assert_frame_equal(contraception, before)


def test_warnings_point_at_the_callers_line():
    d = pd.read_csv(_Path(__file__).parent / "reference" / "data" / "owls.csv")
    with pytest.warns(mlm.OverdispersionWarning, match="family='negative_binomial'") as rec:
        mlm.fit_glmm(d, "SiblingNegotiation ~ FoodTreatment + offset(logBroodSize) + (1 | Nest)",
                     family="poisson")
    assert rec[0].filename == __file__


# --- bad input: every message (the data of glmer_suite's bad_inputs) ------------------------


@pytest.mark.parametrize("formula, family, match", [
    ("y_nonbinary ~ x + (1 | g)", "binomial", r"must be coded 0/1 .* 1 row\(s\) with other "
                                              r"values \(2\).*cbind"),
    ("cbind(succ, fail) ~ x + (1 | g)", "binomial", r"negative number of failures \(successes "
                                                    r"above trials\)"),
    ("count_neg ~ x + (1 | g)", "poisson", r"must be a count .* 1 row\(s\) are negative"),
    ("count_frac ~ x + (1 | g)", "poisson", r"3 row\(s\) are not whole numbers .*offset"),
    ("count_frac ~ x + (1 | g)", "negative_binomial", r"not whole numbers"),
    ("y_quasi ~ x + (1 | g_onerow)", "binomial", r"single row .* 0/1 outcome .* not identified"),
])
def test_bad_outcomes_and_designs(formula, family, match):
    with pytest.raises(ValueError, match=match):
        mlm.fit_glmm(BAD, formula, family=family)


def test_separation_is_an_error_naming_the_predictor():
    # glmer answers these with x = 42.9 (SE 2.4e6) and x = 79.3 (SE 9.5e6) and two warnings
    with pytest.raises(mlm.SeparationError, match=r"quasi-complete separation: 'x' .*Firth"):
        mlm.fit_glmm(BAD, "y_quasi ~ x + z + (1 | g)")
    with pytest.raises(mlm.SeparationError, match=r"^complete separation: 'x' "):
        mlm.fit_glmm(BAD, "y_complete ~ x + z + (1 | g)")
    # a count category that is always 0
    d = BAD.assign(c=np.where(BAD["x"] == 1, 0, BAD["count_frac"].round() + 1))
    with pytest.raises(mlm.SeparationError, match=r"counts are 0 wherever 'x'"):
        mlm.fit_glmm(d, "c ~ x + (1 | g)", family="poisson")
    # the one-row-per-group case of glmer (it fits without a word) with a count outcome is an
    # observation-level random effect, allowed
    # (here the counts are not overdispersed, so its variance is estimated at 0)
    with pytest.warns(mlm.BoundaryWarning, match="'Intercept' across 'g_onerow'"):
        ok = mlm.fit_glmm(BAD.assign(c=BAD["count_frac"].round()), "c ~ x + (1 | g_onerow)",
                          family="poisson")
    assert ok.ngroups["g_onerow"] == len(BAD) and ok.converged


def test_near_separation_warns():
    rng = np.random.default_rng(5)
    n = 400
    x = rng.normal(size=n)
    g = np.repeat(np.arange(20), 20)
    y = (x > 0).astype(int)
    flip = rng.choice(np.flatnonzero(np.abs(x) < 0.02), 2, replace=False)
    y[flip] = 1 - y[flip]
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    with pytest.warns(mlm.SeparationWarning, match="near separation.*'x'"):
        mlm.fit_glmm(df, "y ~ x + (1 | g)")


def test_bad_arguments(contraception):
    f = "use ~ urban + (1 | district)"
    with pytest.raises(ValueError, match="unknown family 'gaussian'.*fit_mixed"):
        mlm.fit_glmm(contraception, f, family="gaussian")
    with pytest.raises(ValueError, match=r"conf_level must be between 0 and 1 \(e\.g\. 0\.95\), not 95; for a 95% interval write conf_level=0\.95"):
        mlm.fit_glmm(contraception, f, conf_level=95)
    with pytest.raises(ValueError, match="conf_level must be between 0 and 1"):
        mlm.fit_logistic_mixed(contraception, "use ~ urban", "district", conf_level=95)
    with pytest.raises(ValueError, match="n_agq must be an integer >= 1, not 0"):
        mlm.fit_glmm(contraception, f, n_agq=0)
    with pytest.raises(TypeError, match="n_agq must be an integer >= 1, not 2.5"):
        mlm.fit_glmm(contraception, f, n_agq=2.5)
    with pytest.raises(ValueError, match="single scalar random effect.*2 on 'district'"):
        mlm.fit_glmm(contraception, "use ~ urban + (urban | district)", n_agq=5)
    with pytest.raises(ValueError, match="single scalar random effect"):
        mlm.fit_glmm(contraception, "use ~ urban + (1 | district) + (1 | livch)", n_agq=5)
    with pytest.raises(ValueError, match="no random-effects term"):
        mlm.fit_glmm(contraception, "use ~ urban")
    with pytest.raises(ValueError, match="family='poisson' takes no weights"):
        mlm.fit_glmm(contraception.assign(w=1), f, family="poisson", weights="w")
    with pytest.raises(ValueError, match="negative trials"):
        mlm.fit_glmm(contraception.assign(w=-1), f, weights="w")
    with pytest.raises(ValueError, match="proportion between 0 and 1"):
        mlm.fit_glmm(contraception.assign(w=2, use=2.0), f, weights="w")
    with pytest.raises(ValueError, match="not a whole number"):
        mlm.fit_glmm(contraception.assign(w=3, use=0.5), f, weights="w")
    with pytest.raises(KeyError, match="not in data"):
        mlm.fit_glmm(contraception, f, weights="trials")
    fit = mlm.fit_glmm(contraception, f)
    with pytest.raises(ValueError, match="not defined for 0/1 outcomes"):
        fit.overdispersion()
    with pytest.raises(ValueError, match="use odds_ratios"):
        fit.rate_ratios()
