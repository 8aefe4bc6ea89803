"""The new fits of chapter 18 against glmer (tests/reference/glmer_chapter18.json).

The reference is ``tests/reference/glmer_chapter18.R`` (R 4.2.2, lme4 1.1-31): glmer with a
tightly converged bobyqa (its default fits are recorded beside them and agree to 2e-4
log-likelihood units). The models are those of the chapter, fitted here with the chapter's
formulas on the data the package ships (``load_dataset("mmmec")``, ``"contraception"``):

- melanoma deaths, Poisson with ``offset(log(expected))``: region random intercept; region and
  county (observation-level) intercepts; the negative binomial with a region intercept;
- contraception, Laplace: random intercept; correlated random intercept and ``urban`` slope;
  uncorrelated ones (``||``); the likelihood-ratio tests between them.

Tolerances (both programs maximise the same Laplace likelihood, glmer tightly):
- log-likelihood, AIC, LR statistics: 1e-4 units (glmer's tight fits are converged to about
  1e-6; its default fits differ from them by up to 2.3e-4, so a looser tolerance could not
  tell a stopped-short optimum from the maximum);
- fixed effects: 5e-3 of their standard error (the deviance changes by less than 1e-4 units
  within such a distance);
- standard errors: 5e-3 relative (glmer's come from its own finite-difference Hessian of the
  same deviance; the two Hessians differ by their step sizes);
- variances, SDs and correlations of the random effects: 5e-3 relative (the likelihood is
  flattest in these, worst in the random-slope covariance);
- negative-binomial k: 1e-3 relative (the deviance is very flat in k: 0.02 units between
  k = 60 and 70);
- Pearson chi-square and its ratio: 1e-3 relative (it is evaluated at the conditional modes,
  which move with the estimates);
- conditional modes of every group: 5e-3 absolute (log scale).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "glmer_chapter18.json").read_text())

FIXED = "use ~ age10 + I(age10**2) + urban + C(livch)"
MODELS = {
    "mmmec_ri": ("mmmec", "deaths ~ uvb + offset(log(expected)) + (1 | region)", "poisson"),
    "mmmec_olre": (
        "mmmec",
        "deaths ~ uvb + offset(log(expected)) + (1 | region/county)",
        "poisson",
    ),
    "mmmec_nb": (
        "mmmec",
        "deaths ~ uvb + offset(log(expected)) + (1 | region)",
        "negative_binomial",
    ),
    "contra_ri": ("contraception", FIXED + " + (1 | district)", "binomial"),
    "contra_slope": ("contraception", FIXED + " + (1 + urban | district)", "binomial"),
    "contra_diag": ("contraception", FIXED + " + (1 + urban || district)", "binomial"),
    # ten-point adaptive quadrature, as fit_logistic_mixed fits the chapter's models
    "contra_null_agq": ("contraception", "use ~ 1 + (1 | district)", "binomial", 10),
    "contra_ri_agq": ("contraception", FIXED + " + (1 | district)", "binomial", 10),
    "contra_share_agq": ("contraception", FIXED + " + urban_share + (1 | district)",
                         "binomial", 10),
}
# glmer's names of the terms of each grouping factor (VarCorr), ours are the same factor
R_FACTOR = {"region:county": "county:region", "district": "district"}

_FITS = {}


def data(name):
    d = mlm.load_dataset(name)
    if name != "contraception":
        return d
    return d.assign(age10=d["age"] / 10,
                    urban_share=d.groupby("district")["urban"].transform("mean"))


def fitted(key):
    if key not in _FITS:
        name, formula, family, *agq = MODELS[key]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the chapter's fits must not warn
            _FITS[key] = mlm.fit_glmm(data(name), formula, family=family,
                                      n_agq=agq[0] if agq else 1)
    return _FITS[key]


def r_name(term: str) -> str:
    """Our fixed-effect name as R writes it: C(livch)[T.1] -> livch1, I(age10 ** 2) -> ..."""
    return (
        term.replace("Intercept", "(Intercept)")
        .replace("C(livch)[T.", "livch")
        .replace("]", "")
        .replace(" ** ", "^")
    )


@pytest.mark.parametrize("key", list(MODELS))
def test_likelihood_and_fixed_effects(key):
    fit, ref = fitted(key), REF[key]
    # lme4: logLik(m), AIC(m)
    assert_allclose(fit.loglik, ref["logLik"], atol=1e-4)
    assert_allclose(fit.aic, ref["AIC"], atol=2e-4)
    assert fit.n_params == ref["df"]
    assert fit.converged and not fit.singular
    # lme4: fixef(m), sqrt(diag(vcov(m)))
    f = fit.fixed.set_index("term")
    names = [r_name(t) for t in f.index]
    assert sorted(names) == sorted(ref["fixef"])
    est = np.array([ref["fixef"][n] for n in names])
    se = np.array([ref["fixef_se"][n] for n in names])
    assert np.all(np.abs(f["estimate"].to_numpy() - est) < 5e-3 * se)
    assert_allclose(f["std_error"].to_numpy(), se, rtol=5e-3)


@pytest.mark.parametrize("key", list(MODELS))
def test_variance_components(key):
    fit, ref = fitted(key), REF[key]
    vc = fit.variance_components()
    for level, tau in fit.taus.items():
        r = ref["varcorr"][R_FACTOR.get(level, level)]
        terms = [n.replace("Intercept", "(Intercept)") for n in tau.index]
        if key == "contra_diag":  # glmer splits (1 + urban || district) into two terms
            r = {
                "names": ["(Intercept)", "urban"],
                "variance": ref["varcorr"]["district"]["variance"]
                + ref["varcorr"]["district.1"]["variance"],
            }
        assert terms == r["names"]
        # lme4: diag(VarCorr(m)[[level]])
        assert_allclose(np.diag(tau.to_numpy()), r["variance"], rtol=5e-3)
    if key == "contra_slope":
        # lme4: attr(VarCorr(m)$district, "correlation")[1, 2]
        assert_allclose(
            vc.loc["tau01", "correlation"],
            ref["varcorr"]["district"]["correlation"][0][1],
            rtol=5e-3,
        )
        assert_allclose(
            vc.loc["tau01", "estimate"], ref["varcorr"]["district"]["covariance"][0][1], rtol=5e-3
        )


@pytest.mark.parametrize("key", ["mmmec_ri", "contra_slope"])
def test_conditional_modes_of_every_group(key):
    fit, ref = fitted(key), REF[key]
    level = fit.group
    r = ref["ranef"][level]
    ours = fit.random_effects().pivot(index="group", columns="term", values="estimate")
    ours = ours.loc[r["levels"]]
    for term, values in r["values"].items():
        # lme4: ranef(m)[[level]][[term]]
        assert_allclose(ours[term.strip("()")].to_numpy(), values, atol=5e-3)


@pytest.mark.parametrize("key", ["mmmec_ri", "mmmec_olre", "mmmec_nb"])
def test_overdispersion_check(key):
    od, ref = fitted(key).overdispersion(), REF[key]["overdispersion"]
    # lme4: sum(residuals(m, "pearson")^2), df.residual(m)
    assert_allclose(od["pearson_chisq"], ref["pearson_chisq"], rtol=1e-3)
    assert od["df_residual"] == ref["df_residual"]
    assert_allclose(od["ratio"], ref["ratio"], rtol=1e-3)
    assert_allclose(od["p_value"], ref["p_value"], rtol=1e-2, atol=1e-6)


def test_negative_binomial_k():
    # k maximising the likelihood over glmer(family = negative.binomial(k)) fits
    assert_allclose(fitted("mmmec_nb").nb_size, REF["mmmec_nb"]["nb_size"], rtol=1e-3)


def test_rate_ratio_and_median_rate_ratio():
    fit, ref = fitted("mmmec_ri"), REF["mmmec_ri"]
    rr = fit.rate_ratios().set_index("term").loc["uvb"]
    # exp(fixef(m)["uvb"]) and its Wald interval
    assert_allclose(rr["ratio"], ref["rate_ratio_uvb"], rtol=1e-4)
    assert_allclose([rr["ci_low"], rr["ci_high"]], ref["rate_ratio_uvb_ci"], rtol=5e-4)
    tau = float(np.sqrt(fit.taus["region"].iloc[0, 0]))
    # exp(sqrt(2) * tau * qnorm(0.75)) and exp(+-1.96 tau)
    assert_allclose(
        np.exp(np.sqrt(2) * tau * stats.norm.ppf(0.75)), ref["median_rate_ratio"], rtol=5e-3
    )
    assert_allclose(
        np.exp(np.array([-1, 1]) * stats.norm.ppf(0.975) * tau),
        ref["region_rate_ratio_95"],
        rtol=5e-3,
    )


@pytest.mark.parametrize(
    "reduced, full, ref_key",
    [
        ("mmmec_ri", "mmmec_olre", "lrt_mmmec_county"),
        ("contra_ri", "contra_slope", "lrt_contra_slope"),
        ("contra_ri", "contra_diag", "lrt_contra_diag"),
        ("contra_diag", "contra_slope", "lrt_contra_corr"),
    ],
)
def test_likelihood_ratio_tests(reduced, full, ref_key):
    a, b, ref = fitted(reduced), fitted(full), REF[ref_key]
    lr = 2 * (b.loglik - a.loglik)
    df = b.n_params - a.n_params
    # lme4: anova(reduced, full)
    assert_allclose(lr, ref["statistic"], atol=2e-4)
    assert df == ref["df"]
    assert_allclose(stats.chi2.sf(lr, df), ref["p_value"], rtol=1e-3)


def test_districts_without_urban_women():
    cc = mlm.load_dataset("contraception")
    assert int((cc.groupby("district")["urban"].sum() == 0).sum()) == REF["districts_without_urban"]
