"""Within, between and contextual effects against lme4 and the re-parameterisation identity."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_reference.json").read_text())


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_within_and_between_match_lme4_contextual_model(hsb, method):
    # lme4: lmer(mathach ~ cses + meanses + (1 | school)), cses centred at the sample mean,
    # meanses from the school file.
    ref = REF["hsb_contextual"][method]
    wb = mlm.within_between(
        hsb, "mathach", "ses", "school", group_mean="meanses", method=method
    ).set_index("effect")
    # fixed effects and SEs: rtol 1e-5 (README: fixed effects agree to ~1e-5)
    assert_allclose(wb.loc["within", "estimate"], ref["fixef"]["cses"], rtol=1e-5)
    assert_allclose(wb.loc["between", "estimate"], ref["fixef"]["meanses"], rtol=1e-5)
    assert_allclose(wb.loc["within", "std_error"], ref["fixef_se"]["cses"], rtol=1e-4)
    assert_allclose(wb.loc["between", "std_error"], ref["fixef_se"]["meanses"], rtol=1e-4)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_contextual_effect_matches_lme4_raw_ses_model(hsb, method):
    # lme4: lmer(mathach ~ ses + meanses + (1 | school)). With the school file's MEANSES the
    # two parameterisations are not exactly the same model (MEANSES differs from the sample
    # mean by up to 0.0065), so between - within differs from lme4's meanses coefficient in
    # the 5th digit: atol 1e-3 on estimates, rtol 1e-3 on the SE.
    ref = REF["hsb_contextual_ses"][method]
    wb = mlm.within_between(
        hsb, "mathach", "ses", "school", group_mean="meanses", method=method
    ).set_index("effect")
    assert_allclose(wb.loc["contextual", "estimate"], ref["fixef"]["meanses"], atol=1e-3)
    assert_allclose(wb.loc["contextual", "std_error"], ref["fixef_se"]["meanses"], rtol=1e-3)
    assert_allclose(wb.loc["within", "estimate"], ref["fixef"]["ses"], atol=1e-3)


def test_sample_mean_gives_an_exact_reparameterisation(hsb):
    # Closed form: with the sample group mean, x = (x - xbar) + xbar, so the raw-x model is
    # the same model: identical likelihood, within = coefficient of x, contextual =
    # coefficient of xbar, with the same SE (the delta formula is exact for a linear map).
    wb = mlm.within_between(hsb, "mathach", "ses", "school").set_index("effect")
    data = mlm.add_group_mean(hsb, "ses", "school", name="ses_mean")
    raw = mlm.fit_mixed(data, "mathach ~ ses + ses_mean", "school")
    cen = mlm.fit_mixed(data, "mathach ~ cses + ses_mean", "school")
    assert_allclose(raw.loglik, cen.loglik, atol=1e-6)  # optimizer tolerance only
    fx = raw.fixed.set_index("term")
    assert_allclose(wb.loc["within", "estimate"], fx.loc["ses", "estimate"], rtol=1e-6)
    assert_allclose(wb.loc["contextual", "estimate"], fx.loc["ses_mean", "estimate"], rtol=1e-6)
    assert_allclose(wb.loc["contextual", "std_error"], fx.loc["ses_mean", "std_error"], rtol=1e-5)
    assert_allclose(
        wb.loc["between", "estimate"],
        wb.loc["within", "estimate"] + wb.loc["contextual", "estimate"],
        rtol=1e-12,
    )


def test_known_truth_by_simulation():
    # Simulated: within slope 1, between slope 3 (contextual 2); estimates within 4 SE.
    rng = np.random.default_rng(42)
    J, n = 80, 25
    g = np.repeat(np.arange(J), n)
    m = rng.normal(size=J)
    x = m[g] + rng.normal(size=J * n)
    xbar = np.bincount(g, x) / n
    y = (
        1.0 * (x - xbar[g])
        + 3.0 * xbar[g]
        + rng.normal(scale=0.5, size=J)[g]
        + rng.normal(size=J * n)
    )
    df = pd.DataFrame({"g": g, "x": x, "y": y})
    wb = mlm.within_between(df, "y", "x", "g").set_index("effect")
    truth = {"within": 1.0, "between": 3.0, "contextual": 2.0}
    for effect, value in truth.items():
        z = (wb.loc[effect, "estimate"] - value) / wb.loc[effect, "std_error"]
        assert abs(z) < 4, (effect, z)
        assert wb.loc[effect, "ci_low"] < wb.loc[effect, "estimate"] < wb.loc[effect, "ci_high"]


def test_covariates_and_input_not_modified(hsb):
    before = hsb.copy()
    wb = mlm.within_between(hsb, "mathach", "ses", "school", covariates=["catholic"])
    assert list(wb["effect"]) == ["within", "between", "contextual"]
    assert hsb.equals(before)
    fit = mlm.fit_mixed(
        mlm.add_group_mean(hsb, "ses", "school", name="m"),
        "mathach ~ cses + m + catholic",
        "school",
    )
    assert_allclose(wb["estimate"].iloc[1], fit.params["m"], rtol=1e-6)


def test_bad_input_messages(hsb):
    with pytest.raises(TypeError, match="pandas DataFrame"):
        mlm.within_between([1, 2], "mathach", "ses", "school")
    with pytest.raises(KeyError, match="'sesx' not in data"):
        mlm.within_between(hsb, "mathach", "sesx", "school")
    with pytest.raises(TypeError, match="predictor 'sector' must be numeric"):
        mlm.within_between(hsb, "mathach", "sector", "school")
    with pytest.raises(KeyError, match="group_mean column 'mses' not in data"):
        mlm.within_between(hsb, "mathach", "ses", "school", group_mean="mses")
    bad = hsb.assign(ses=hsb["ses"].where(hsb.index > 2))
    with pytest.raises(ValueError, match="'ses' has 3 missing"):
        mlm.within_between(bad, "mathach", "ses", "school")


def test_plot_within_between_draws_the_model(hsb):
    import matplotlib.pyplot as plt

    wb = mlm.within_between(hsb, "mathach", "ses", "school").set_index("effect")
    ax = mlm.plot_within_between(hsb, "mathach", "ses", "school", n_groups=15, seed=1)
    *within, between = ax.lines
    assert len(within) == 15
    for line in within:
        x, y = line.get_xdata(), line.get_ydata()
        assert_allclose((y[1] - y[0]) / (x[1] - x[0]), wb.loc["within", "estimate"], rtol=1e-8)
    x, y = between.get_xdata(), between.get_ydata()
    assert_allclose((y[1] - y[0]) / (x[1] - x[0]), wb.loc["between", "estimate"], rtol=1e-8)
    # the points are the school means (closed form: pandas groupby)
    means = hsb.groupby("school", sort=False)[["ses", "mathach"]].mean()
    assert_allclose(ax.collections[0].get_offsets(), means.to_numpy())
    with pytest.raises(ValueError, match="n_groups must be an integer >= 1"):
        mlm.plot_within_between(hsb, "mathach", "ses", "school", n_groups=0)
    plt.close("all")
