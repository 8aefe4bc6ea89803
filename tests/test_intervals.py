"""Profile-likelihood and bootstrap intervals of variance parameters (mlm_lessons.intervals).

References: lme4 1.1-31 ``confint(lmer(Reaction ~ Days + (Days | Subject), sleepstudy,
REML = FALSE), method = "profile", oldNames = FALSE)`` (typed from the R output below, 7
digits), and the closed form of the profile of sigma in a model with no random-effect
variance left (a boundary fit). Tolerance 1e-4 relative: lme4 interpolates a spline through
its profile, this module finds the roots directly.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlm_lessons as mlm

# R: confint(m_ml, method = "profile", oldNames = FALSE)
LME4_ML = {
    "sd(Intercept)": (14.3814811, 37.7160187),
    "cor(Intercept, days)": (-0.4815004, 0.6849861),
    "sd(days)": (3.8011648, 8.7533667),
    "sigma": (22.8982662, 28.8579973),
}


@pytest.fixture(scope="module")
def sleep():
    return mlm.load_dataset("sleepstudy")


def test_profile_intervals_match_lme4_ml(sleep):
    fit = mlm.fit_mixed(sleep, "reaction ~ days + (days | subject)", method="ML")
    ci = fit.confint().set_index("parameter")
    for name, (lo, hi) in LME4_ML.items():
        assert ci.loc[name, "ci_low"] == pytest.approx(lo, rel=1e-4, abs=1e-5)
        assert ci.loc[name, "ci_high"] == pytest.approx(hi, rel=1e-4, abs=1e-5)
    assert not ci["at_boundary"].any()
    # each limit is where the profile deviance rises by the chi-square quantile: refit with
    # the parameter fixed there is the definition; check sigma through deviance_at
    est = ci.loc["sigma", "estimate"]
    assert ci.loc["sigma", "ci_low"] < est < ci.loc["sigma", "ci_high"]


def test_reml_profile_is_wider_than_ml_for_the_variances(sleep):
    reml = mlm.fit_mixed(sleep, "reaction ~ days + (days | subject)").confint()
    ml = mlm.fit_mixed(sleep, "reaction ~ days + (days | subject)", method="ML").confint()
    for name in ("sd(Intercept)", "sd(days)"):
        r = reml.set_index("parameter").loc[name]
        m = ml.set_index("parameter").loc[name]
        assert r["ci_high"] > m["ci_high"] and r["ci_low"] > m["ci_low"]


def test_interval_touching_the_boundary():
    # ten groups with no between-group variance: the profile of sd(Intercept) at 0 is within
    # the quantile, so the interval starts at 0
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"g": np.repeat(np.arange(10), 8), "y": rng.normal(size=80)})
    with pytest.warns(mlm.BoundaryWarning):
        fit = mlm.fit_null(df, "y", "g")
    ci = fit.confint().set_index("parameter")
    assert ci.loc["sd(Intercept)", "ci_low"] == 0.0
    assert ci.loc["sd(Intercept)", "at_boundary"]
    # with tau00 = 0 the model is ordinary regression and the profile of sigma is the
    # chi-square interval of the REML residual variance ... approximately: the REML profile
    # also re-estimates tau00, which stays at 0 near sigma-hat
    n = len(df)
    s2 = fit.sigma2
    crit = stats.chi2.ppf(0.95, 1)
    # closed form of the REML profile in sigma with tau00 = 0:
    # d(s) = (n-1) log s^2 + (n-1) s2 / s^2 + const; solve d(s) - d(sigma-hat) = crit
    def excess(s):
        return (n - 1) * (np.log(s**2 / s2) + s2 / s**2 - 1) - crit
    from scipy import optimize
    lo = optimize.brentq(excess, 0.5 * np.sqrt(s2), np.sqrt(s2))
    assert ci.loc["sigma", "ci_low"] == pytest.approx(lo, rel=1e-4)


def test_bootstrap_intervals_cover_the_estimate(sleep):
    fit = mlm.fit_mixed(sleep, "reaction ~ days + (days | subject)")
    boot = fit.confint(method="bootstrap", n_boot=40, seed=2)
    assert (boot["ci_low"] <= boot["estimate"]).all()
    assert (boot["estimate"] <= boot["ci_high"]).all()
    again = fit.confint(method="bootstrap", n_boot=40, seed=2)
    pd.testing.assert_frame_equal(boot, again)


def test_bad_arguments(sleep):
    fit = mlm.fit_mixed(sleep, "reaction ~ days + (1 | subject)")
    with pytest.raises(ValueError, match="method must be 'profile' or 'bootstrap'"):
        fit.confint(method="wald")
    with pytest.raises(ValueError, match="conf_level must be between 0 and 1"):
        fit.confint(conf_level=95)
    with pytest.raises(TypeError, match="fit must be a MixedFit"):
        mlm.confint_variance("fit")


# lme4 1.1-31: confint(lmer(..., REML = FALSE), method = "profile", oldNames = FALSE) on HSB
# (tests/reference/lme4_confint.R). lme4 finds each limit by a spline through a grid of the
# signed root deviance; this module by root finding: SDs and sigma agree to 2e-4 relative,
# correlations (whose profiles are flat and, for the full model, non-monotonic) to 2e-3.
LME4_HSB = json.loads((Path(__file__).parent / "reference" / "lme4_confint.json").read_text())
LME4_NAMES = {"sd_(Intercept)|school": "sd(Intercept)", "sd_cses|school": "sd(cses)",
              "cor_cses.(Intercept)|school": "cor(Intercept, cses)", "sigma": "sigma"}


@pytest.fixture(scope="module")
def hsb():
    return mlm.center(mlm.load_dataset("hsb"), "ses", group="school", name="cses")


@pytest.mark.parametrize("name", ["hsb_random_coefficient_cses", "hsb_full"])
def test_profile_intervals_match_lme4_on_hsb(hsb, name):
    ref = LME4_HSB[name]
    fit = mlm.fit_mixed(hsb, ref["formula"].replace("meanses * cses + catholic * cses",
                                                    "(meanses + catholic) * cses"),
                        method="ML")
    ci = fit.confint().set_index("parameter")
    for par, lo, hi in zip(ref["parameter"], ref["lower"], ref["upper"]):
        ours = ci.loc[LME4_NAMES[par]]
        tol = dict(abs=2e-3) if par.startswith("cor") else dict(rel=2e-4, abs=1e-6)
        assert ours["ci_low"] == pytest.approx(lo, **tol), par
        assert ours["ci_high"] == pytest.approx(hi, **tol), par
    # the intercepts-and-slopes model: the slope SD's interval reaches 0, the correlation's
    # covers [-1, 1]; both are flagged
    boundary = ci["at_boundary"]
    if name == "hsb_full":
        assert boundary["sd(cses)"] and boundary["cor(Intercept, cses)"]
        assert ci.loc["sd(cses)", "ci_low"] == 0.0
        assert not boundary["sd(Intercept)"] and not boundary["sigma"]
    else:
        assert not boundary.any()
