"""The growth models of chapter 19 against lme4 (tests/reference/lme4_longitudinal.json).

In the sleep study days 0 and 1 were adaptation and training and day 2 the baseline; the
``baseline_*`` fits use days 2-9 with time counted from the baseline (``t = days - 2``), the
``all_days_*`` fits all ten days with time the day of the study, and the ``orthodont_*``
fits the jaw-growth model with sex as a level-2 predictor. Tolerances as in test_models.py:
log-likelihood 1e-3 absolute, fixed effects 2e-4 relative, SEs 1e-3, variance components
2e-3 relative plus 1e-4 absolute (lme4 stops its optimiser at about that precision).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_longitudinal.json").read_text())

# name: (data, formula, re_formula, diagonal)
SPECS = {
    "baseline_random_intercept": ("baseline", "reaction ~ t", None, False),
    "baseline_random_slope": ("baseline", "reaction ~ t", "t", False),
    "baseline_uncorrelated": ("baseline", "reaction ~ t", "t", True),
    "all_days_random_intercept": ("sleep", "reaction ~ days", None, False),
    "all_days_random_slope": ("sleep", "reaction ~ days", "days", False),
    "orthodont_random_intercept": ("ortho", "distance ~ age8 * female", None, False),
    "orthodont_growth": ("ortho", "distance ~ age8 * female", "age8", False),
}


@pytest.fixture(scope="module")
def data():
    sleep = mlm.load_dataset("sleepstudy")
    # as lme4_longitudinal.R: days 2-9, time counted from the baseline day 2
    baseline = sleep[sleep["days"] >= 2].assign(t=lambda d: d["days"] - 2)
    ortho = mlm.load_dataset("orthodont").assign(age8=lambda d: d["age"] - 8)
    return {"sleep": sleep, "baseline": baseline, "ortho": ortho}


@pytest.fixture(scope="module")
def fits(data):
    cache = {}

    def get(name, method="REML"):
        if (name, method) not in cache:
            frame, formula, re, diagonal = SPECS[name]
            cache[name, method] = mlm.fit_mixed(
                data[frame], formula, "subject", re_formula=re, diagonal=diagonal, method=method
            )
        return cache[name, method]

    return get


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("name", list(SPECS))
def test_against_lme4(fits, name, method):
    fit, ref = fits(name, method), REF[name][method]
    assert fit.converged and ref["converged"]
    assert fit.n_obs == ref["n_obs"] and fit.n_groups == ref["n_groups"]
    # lme4: logLik(m), fixef(m), sqrt(diag(vcov(m)))
    assert_allclose(fit.loglik, ref["logLik"], atol=1e-3)
    assert_allclose(fit.params.to_numpy(), list(ref["fixef"].values()), rtol=2e-4)
    assert_allclose(fit.fixed["std_error"], list(ref["fixef_se"].values()), rtol=1e-3)
    # lme4: VarCorr(m) as one matrix (the uncorrelated model's terms on the diagonal)
    assert_allclose(fit.tau.to_numpy(), np.array(ref["T"], ndmin=2), rtol=2e-3, atol=1e-4)
    assert_allclose(fit.sigma2, ref["sigma2"], rtol=1e-3)


@pytest.mark.parametrize(
    "name, null, alternative",
    [
        ("baseline_slope", "baseline_random_intercept", "baseline_random_slope"),
        ("baseline_correlation", "baseline_uncorrelated", "baseline_random_slope"),
        ("orthodont_slope", "orthodont_random_intercept", "orthodont_growth"),
    ],
)
def test_likelihood_ratio_tests_against_lme4(fits, name, null, alternative):
    # lme4: anova(m0, m1, refit = FALSE) on the REML fits; the mixture
    # 0.5 * pchisq(LR, df - 1) + 0.5 * pchisq(LR, df) for a variance on the boundary
    test, ref = mlm.lrt(fits(null), fits(alternative)), REF["lrt"][name]
    assert test.df == ref["df"]
    assert_allclose(test.statistic, ref["LR"], atol=2e-3)
    assert_allclose(test.p_value, ref["p"], rtol=1e-3)
    if "p_mixture" in ref:
        assert_allclose(test.p_mixture, ref["p_mixture"], rtol=1e-3)


def test_baseline_time_is_not_a_shift_of_the_all_days_model(fits):
    """Counting from day 2 on days 2-9 is a different model, not a re-centring of time:
    a shift of time alone would leave the slope and the log-likelihood unchanged."""
    all_days, baseline = fits("all_days_random_slope"), fits("baseline_random_slope")
    assert baseline.n_obs == all_days.n_obs - 2 * all_days.n_groups
    assert baseline.params["t"] > all_days.params["days"]
