"""fit_three_level against lme4 (tests/reference/lme4_threelevel.json) and bad input.

Tolerances as in test_models.py: log-likelihood 1e-3 absolute, fixed effects 2e-4 relative,
SEs 1e-3, variance components 2e-3 relative plus 1e-4 absolute.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_threelevel.json").read_text())
SPECS = {"intercepts": None, "growth": "year"}
FIXED = {"intercepts": "math ~ year", "growth": "math ~ year",
         "conditional": "math ~ year * (black + hispanic + lowinc10)"}


@pytest.fixture(scope="module")
def egsingle():
    eg = mlm.load_dataset("egsingle")
    # as lme4_threelevel.R: the percentage of low-income pupils in tens of points
    return eg.assign(lowinc10=eg["lowinc"] / 10)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("name", list(FIXED))
def test_against_lme4(egsingle, name, method):
    re = SPECS.get(name, "year")
    fit = mlm.fit_three_level(egsingle, FIXED[name], "childid", "schoolid",
                              re_formula2=re, re_formula3=re, method=method)
    ref = REF[name][method]
    assert fit.converged and ref["converged"]
    # lme4: logLik(m), fixef(m), sqrt(diag(vcov(m)))
    assert_allclose(fit.loglik, ref["logLik"], atol=1e-3)
    assert_allclose(fit.params.to_numpy(), list(ref["fixef"].values()), rtol=2e-4)
    assert_allclose(fit.fixed["std_error"], list(ref["fixef_se"].values()), rtol=1e-3)
    # lme4: VarCorr(m)[["schoolid:childid"]], VarCorr(m)[["schoolid"]], sigma(m)^2
    assert_allclose(fit.taus["childid"].to_numpy(), np.array(ref["T_child"]), rtol=2e-3,
                    atol=1e-4)
    assert_allclose(fit.taus["schoolid"].to_numpy(), np.array(ref["T_school"]), rtol=2e-3,
                    atol=1e-4)
    assert_allclose(fit.sigma2, ref["sigma2"], rtol=1e-3)
    assert fit.n_obs == 7230 and fit.ngroups == {"schoolid": 60, "childid": 1721}
    # every level has BLUPs with conditional SEs
    for level, n in fit.ngroups.items():
        re = fit.random_effects(level)
        assert len(re) == n * (2 if SPECS.get(name, "year") else 1)
        assert (re["std_error"] > 0).all()


def test_simulated_truth_and_reused_child_labels():
    # Simulated known truth: tau3 = 1, tau2 = 2.25, sigma2 = 4.
    rng = np.random.default_rng(4)
    J, K, n = 30, 4, 5
    school = np.repeat(np.arange(J), K * n)
    child = np.repeat(np.arange(J * K), n)
    y = (rng.normal(0, 1.0, J)[school] + rng.normal(0, 1.5, J * K)[child]
         + rng.normal(0, 2, J * K * n))
    df = pd.DataFrame({"s": school, "c": child % K, "y": y})
    # children are labelled 0..3 within every school: fit_three_level refuses to guess
    # whether the labels restart within schools or the factors are crossed ...
    with pytest.raises(ValueError, match=r"appear in more than one 's' unit.*\(1 \| s/c\)"):
        mlm.fit_three_level(df, "y ~ 1", "c", "s")
    # ... and lme4's (1 | s/c) says the labels restart within schools
    fit3 = mlm.fit_mixed(df, "y ~ 1 + (1 | s/c)")
    part = fit3.variance_partition()
    assert_allclose(part["share"].sum(), 1.0)
    # known truth (1, 2.25, 4) within sampling error (J = 30 schools: loose for level 3)
    assert_allclose(part["variance"], [1.0, 2.25, 4.0], rtol=0.6)
    assert fit3.ngroups == {"s": J, "s:c": J * K}
    re = fit3.random_effects("s:c")
    assert len(re) == J * K
    with pytest.raises(KeyError, match="'school' is not a grouping factor"):
        fit3.random_effects("school")
    # the same model with unique child ids
    unique = df.assign(c=df["s"].astype(str) + ":" + df["c"].astype(str))
    fit_u = mlm.fit_three_level(unique, "y ~ 1", "c", "s")
    assert_allclose(fit_u.loglik, fit3.loglik, atol=1e-8)


def test_variance_partition_needs_random_intercepts(egsingle):
    fit = mlm.fit_three_level(egsingle.iloc[:2000], "math ~ year", "childid", "schoolid",
                              re_formula2="year")
    with pytest.raises(ValueError, match="random-slope model"):
        fit.variance_partition()


def test_bad_input(egsingle):
    with pytest.raises(KeyError, match="'kid' not in data"):
        mlm.fit_three_level(egsingle, "math ~ year", "kid", "schoolid")
    with pytest.raises(ValueError, match="method must be"):
        mlm.fit_three_level(egsingle, "math ~ year", "childid", "schoolid", method="x")
    with pytest.raises(ValueError, match="conf_level must be between 0 and 1"):
        mlm.fit_three_level(egsingle, "math ~ year", "childid", "schoolid", conf_level=95)
    bad = egsingle.copy()
    bad.loc[0, "math"] = np.nan
    with pytest.raises(ValueError, match="column 'math' has 1 missing"):
        mlm.fit_three_level(bad, "math ~ year", "childid", "schoolid")


def test_compare_with_published_reads_multilevel_quantities(egsingle):
    # lme4_threelevel.csv holds the same lme4 numbers as the JSON, in the quantity names of
    # compare_with_published (T[level][row,col], loglik); the chapter on three-level models
    # puts them beside its fits. Tolerances as above.
    table = pd.read_csv(Path(__file__).parent / "reference" / "lme4_threelevel.csv")
    for (name, method), ref in table.groupby(["model", "method"]):
        re = SPECS.get(name, "year")
        fit = mlm.fit_three_level(egsingle, FIXED[name], "childid", "schoolid",
                                  re_formula2=re, re_formula3=re, method=method)
        out = mlm.compare_with_published(ref.rename(columns={"lme4": "published"}), fit,
                                         decimals=3)
        # the JSON and the CSV are the same lme4 fit
        assert_allclose(ref.set_index("quantity").loc["sigma2", "lme4"],
                        REF[name][method]["sigma2"], rtol=1e-12)
        q = out.set_index("quantity")
        loglik = q.loc["loglik"]
        assert abs(loglik["difference"]) < 1e-3
        rest = q.drop(index="loglik")
        assert_allclose(rest["fit"], rest["published"], rtol=2e-3, atol=1e-4)


def test_multilevel_quantity_errors(egsingle):
    fit = mlm.fit_three_level(egsingle, "math ~ year", "childid", "schoolid")
    one = pd.DataFrame({"quantity": ["T[Intercept,Intercept]"], "published": [1.0]})
    with pytest.raises(ValueError, match="ambiguous: the fit has several grouping factors"):
        mlm.compare_with_published(one, fit)
    with pytest.raises(KeyError, match="'classid' is not a grouping factor"):
        mlm.compare_with_published(one.assign(quantity="T[classid][Intercept,Intercept]"), fit)
    with pytest.raises(ValueError, match="fixed effects have no level"):
        mlm.compare_with_published(one.assign(quantity="fixef[childid][year]"), fit)
