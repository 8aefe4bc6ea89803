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
