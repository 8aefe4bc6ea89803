"""Crossed random effects against lme4 (tests/reference/lme4_crossed.json) and closed forms.

ScotsSec (pupils in primary schools crossed with secondary schools) with the crossed model,
the two wrong nestings and the fits that leave one factor out, three fixed parts, REML and
ML; Penicillin (plates crossed with samples, balanced), where REML equals the two-way ANOVA
estimates. Tolerances as in test_threelevel.py: log-likelihood 1e-3 absolute, fixed effects
2e-4 relative, SEs 1e-3, variance components 2e-3 relative plus 1e-4 absolute.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_crossed.json").read_text())
MODELS = [k for k in REF if k.startswith(("scots_", "penicillin"))]
# lme4 names the nested factor b within a as "b:a"; the package as "a:b"
LME4_NAMES = {"primary:secondary": "secondary:primary", "secondary:primary": "primary:secondary"}


@pytest.fixture(scope="module")
def data():
    scots = mlm.load_dataset("scotssec")
    scots["social_s"] = scots.groupby("secondary")["social"].transform("mean")
    return {"sc": scots, "pen": mlm.load_dataset("penicillin")}


def _fit(data, name, method):
    formula = REF[name]["REML"]["formula"]
    frame = data["pen" if name == "penicillin" else "sc"]
    with warnings.catch_warnings():
        # lme4 too reports the one singular fit (scots_intake_nested_secondary_primary, ML)
        warnings.simplefilter("ignore", mlm.BoundaryWarning)
        return mlm.fit_mixed(frame, formula, method=method)


def _our_level(lme4_name: str, formula: str) -> str:
    if "/" in formula:  # (1 | a/b): lme4's "b:a" is the package's "a:b"
        return LME4_NAMES.get(lme4_name, lme4_name)
    return lme4_name


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("name", MODELS)
def test_against_lme4(data, name, method):
    ref = REF[name][method]
    fit = _fit(data, name, method)
    assert ref["converged"] and fit.converged
    assert fit.singular == ref["singular"]
    # lme4: logLik(m), AIC(m), BIC(m)
    assert_allclose(fit.loglik, ref["logLik"], atol=1e-3)
    assert_allclose([fit.aic, fit.bic], [ref["AIC"], ref["BIC"]], atol=2e-3)
    # lme4: fixef(m), sqrt(diag(vcov(m))); sex is coded as the 0/1 column female
    assert_allclose(fit.params.to_numpy(), list(ref["fixef"].values()), rtol=2e-4)
    assert_allclose(fit.fixed["std_error"], list(ref["fixef_se"].values()), rtol=1e-3)
    # lme4: as.data.frame(VarCorr(m))$vcov by group, sigma(m)^2
    vc = {_our_level(k, ref["formula"]): v for k, v in ref["vc"].items() if k != "Residual"}
    ours = {g: float(T.iloc[0, 0]) for g, T in fit.taus.items()}
    assert set(ours) == set(vc)
    for g in vc:
        assert_allclose(ours[g], vc[g], rtol=2e-3, atol=1e-4 * ref["vc"]["Residual"])
    assert_allclose(fit.sigma2, ref["vc"]["Residual"], rtol=1e-3)
    # lme4: ngrps(m), nobs(m)
    assert fit.ngroups == {_our_level(k, ref["formula"]): v for k, v in ref["ngroups"].items()}
    assert fit.n_obs == ref["n_obs"]


@pytest.mark.parametrize("name", ["scots_null_crossed", "scots_null_interaction", "penicillin"])
def test_icc_of_crossed_factors_is_that_factors_share(data, name):
    # two rows that share a group of one crossed factor share only that factor's effect:
    # icc(level) = tau_level / (sum of taus + sigma2), from lme4's VarCorr
    ref = REF[name]["REML"]["vc"]
    fit = _fit(data, name, "REML")
    total = sum(ref.values())
    for level in fit.levels:
        if ":" in level:  # the interaction is nested in both factors: it adds their shares
            a, b = level.split(":")
            assert_allclose(fit.icc(level), (ref[a] + ref[b] + ref[level]) / total, rtol=2e-3)
        else:
            assert_allclose(fit.icc(level), ref[level] / total, rtol=2e-3)
    part = fit.variance_partition()
    assert_allclose(part["share"].sum(), 1.0)
    assert_allclose(part.set_index("level").loc["residual", "variance"], ref["Residual"], rtol=1e-3)


def test_penicillin_reml_is_the_two_way_anova(data):
    # balanced two-way layout, one observation per cell, no interaction:
    # E(MS_plate) = s2 + J t_plate, E(MS_sample) = s2 + I t_sample, E(MS_error) = s2;
    # with positive moment estimates REML equals them (Searle, Casella & McCulloch 1992)
    pen = data["pen"]
    y = pen.pivot(index="plate", columns="sample", values="diameter").to_numpy()
    n_plate, n_sample = y.shape
    grand = y.mean()
    ms_plate = n_sample * ((y.mean(axis=1) - grand) ** 2).sum() / (n_plate - 1)
    ms_sample = n_plate * ((y.mean(axis=0) - grand) ** 2).sum() / (n_sample - 1)
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + grand
    ms_error = (resid**2).sum() / ((n_plate - 1) * (n_sample - 1))
    fit = mlm.fit_mixed(pen, "diameter ~ 1 + (1 | plate) + (1 | sample)")
    assert_allclose(fit.sigma2, ms_error, rtol=1e-5)
    assert_allclose(fit.taus["plate"].iloc[0, 0], (ms_plate - ms_error) / n_sample, rtol=1e-5)
    assert_allclose(fit.taus["sample"].iloc[0, 0], (ms_sample - ms_error) / n_plate, rtol=1e-5)
    # the intercept is the grand mean: variance t_plate / I + t_sample / J + s2 / (I J)
    assert_allclose(fit.params["Intercept"], grand, rtol=1e-10)
    se = np.sqrt(
        ((ms_plate - ms_error) / n_sample) / n_plate
        + ((ms_sample - ms_error) / n_plate) / n_sample
        + ms_error / (n_plate * n_sample)
    )
    assert_allclose(fit.fixed["std_error"].iloc[0], se, rtol=1e-5)


def test_fit_three_level_refuses_crossed_factors(data):
    scots = data["sc"]
    with pytest.raises(
        ValueError,
        match=r"91 'primary' unit\(s\) appear in more than one "
        r"'secondary' unit.*the factors are crossed",
    ):
        mlm.fit_three_level(scots, "attain ~ 1", "primary", "secondary")
    design = REF["design"]
    assert scots["primary"].nunique() == design["primary"]
    assert len(scots.groupby(["secondary", "primary"])) == design["primary_secondary_pairs"]
    # the fix for labels that restart within schools gives the wrong, nested model
    wrong = scots.assign(primary=scots["secondary"] + ":" + scots["primary"])
    nested = mlm.fit_three_level(wrong, "attain ~ 1", "primary", "secondary")
    ref = REF["scots_null_nested_secondary_primary"]["REML"]
    assert_allclose(nested.loglik, ref["logLik"], atol=1e-3)
    assert nested.ngroups == {"secondary": 19, "primary": 303}
