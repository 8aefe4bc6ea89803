"""Diagnostics: residuals against lme4, closed forms for leave-one-group-out, planted outliers."""

import json
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_reference.json").read_text())


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fit_rc(hsb):
    return mlm.fit_mixed(hsb, "mathach ~ cses", "school", re_formula="cses")


def _balanced(seed, J=12, n=8, tau=4.0, sigma=1.0):
    """Balanced groups, a group-mean-centred level-1 x and a level-2 z."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    x = x - pd.Series(x).groupby(g).transform("mean").to_numpy()
    z = np.repeat(rng.normal(size=J), n)
    u = np.repeat(rng.normal(scale=np.sqrt(tau), size=J), n)
    y = 1.0 + 0.5 * x + 2.0 * z + u + rng.normal(scale=sigma, size=J * n)
    return pd.DataFrame({"g": [f"g{k:02d}" for k in g], "x": x, "z": z, "y": y})


def _closed_form(df):
    """GLS estimates of y ~ z + x with a random intercept on balanced, group-centred data.

    X'V^-1X is block diagonal: the x slope is the pooled within-group OLS slope and the
    intercept and z slope are OLS of the group means on z, whatever the variances are.
    """
    slope = float(df["x"] @ df["y"] / (df["x"] @ df["x"]))
    means = df.groupby("g")[["y", "z"]].mean()
    design = np.column_stack([np.ones(len(means)), means["z"]])
    coef = np.linalg.lstsq(design, means["y"].to_numpy(), rcond=None)[0]
    return pd.Series({"Intercept": coef[0], "z": coef[1], "x": slope})


# --- residual_table ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_fitted_values_match_lme4(hsb, method):
    fit = mlm.fit_mixed(hsb, "mathach ~ cses", "school", re_formula="cses", method=method)
    res = mlm.residual_table(fit)
    ref = REF["hsb_random_coefficient_cses"][method]
    # lme4: fitted(m)[1:5]; the BLUPs depend on T, which agrees to ~2e-3 relative, and
    # enter the fitted values with weight < 1, so 1e-4 relative is safe.
    assert_allclose(res["fitted"].iloc[:5], ref["fitted_first5"], rtol=1e-4)
    # residuals(m, scaled = TRUE) = (y - fitted) / sigma
    expected = (np.array(REF["data"]["first5_rows"]["mathach"]) - ref["fitted_first5"]) / ref[
        "sigma"
    ]
    assert_allclose(res["std_residual"].iloc[:5], expected, rtol=1e-4)


def test_residual_table_adds_up(fit_rc, hsb):
    res = mlm.residual_table(fit_rc)
    # exact identity up to floating point
    assert_allclose(res["fitted"] + res["residual"], hsb["mathach"], atol=1e-10)
    assert (res["group"].to_numpy() == hsb["school"].to_numpy()).all()
    assert res.index.equals(hsb.index)


# --- group_residual_sd -------------------------------------------------------------------


def test_group_residual_sd_of_null_model_is_within_group_sd(hsb):
    # In the null model the fitted value is constant within a group, so the residual SD of
    # a group is the SD of its outcomes: a closed form that does not depend on the fit.
    fit = mlm.fit_null(hsb, "mathach", "school")
    sd = mlm.group_residual_sd(fit).set_index("group")
    direct = hsb.groupby("school")["mathach"].agg(["size", "std"])
    assert_allclose(sd.loc[direct.index, "residual_sd"], direct["std"], rtol=1e-10)
    assert (sd.loc[direct.index, "n"] == direct["size"]).all()
    assert sd["n"].sum() == len(hsb)


def test_group_residual_mean_is_the_shrinkage_remainder(hsb):
    # Null model: mean residual of group j = (1 - lambda_j) (ybar_j - gamma00), with the
    # reliability lambda_j = tau00 / (tau00 + sigma2 / n_j).
    fit = mlm.fit_null(hsb, "mathach", "school")
    sd = mlm.group_residual_sd(fit).set_index("group")
    tau00 = float(fit.tau.iloc[0, 0])
    agg = hsb.groupby("school")["mathach"].agg(["size", "mean"])
    lam = tau00 / (tau00 + fit.sigma2 / agg["size"])
    expected = (1 - lam) * (agg["mean"] - fit.params["Intercept"])
    assert_allclose(sd.loc[agg.index, "residual_mean"], expected, atol=1e-8)


# --- influence_groups: closed form and known truth -----------------------------------------


def test_influence_equals_closed_form_on_balanced_data():
    df = _balanced(seed=1)
    fit = mlm.fit_mixed(df, "y ~ z + x", "g")
    full = _closed_form(df)
    assert_allclose(fit.params[full.index], full, rtol=1e-7)  # GLS = closed form
    infl = mlm.influence_groups(fit)
    cov = fit.vcov().to_numpy()
    for g in df["g"].unique():
        without = _closed_form(df[df["g"] != g])
        ch = infl.changes[infl.changes["group"] == g].set_index("term")
        # the closed form holds at any variance components: only optimizer noise remains
        assert_allclose(ch.loc[without.index, "estimate_without"], without, rtol=1e-7, atol=1e-9)
        diff = (full - without)[list(fit.params.index)].to_numpy()
        d = diff @ np.linalg.solve(cov, diff) / 3
        row = infl.table.set_index("group").loc[g]
        assert_allclose(row["cooks_d"], d, rtol=1e-6)
        se = fit.fixed.set_index("term")["std_error"]
        assert_allclose(ch["std_change"], ch["change"] / se[ch.index], rtol=1e-12)


def test_influence_of_one_group_in_the_null_model_is_its_share_of_the_mean():
    # Balanced null model: gamma00 is the mean of the group means, so leaving out group j
    # moves it by (mean_j - gamma00) / (J - 1).
    df = _balanced(seed=2, J=10, n=6)
    fit = mlm.fit_null(df, "y", "g")
    infl = mlm.influence_groups(fit, groups=["g03", "g07"])
    means = df.groupby("g")["y"].mean()
    for g in ["g03", "g07"]:
        change = infl.changes.set_index("group").loc[g, "change"]
        assert_allclose(change, (means[g] - means.mean()) / 9, rtol=1e-7)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_planted_outlier_group_is_most_influential(seed):
    # Known truth: one group's intercept is shifted by 10 SD of the random intercept.
    rng = np.random.default_rng(seed)
    J, n = 30, 15
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    u = rng.normal(size=J)
    u[7] += 10.0
    y = 2 + x + u[g] + rng.normal(size=J * n)
    df = pd.DataFrame({"g": g, "x": x, "y": y})
    fit = mlm.fit_mixed(df, "y ~ x", "g")
    table = mlm.influence_groups(fit).table
    top = table.sort_values("cooks_d", ascending=False)
    assert top["group"].iloc[0] == 7
    assert top["term_max"].iloc[0] == "Intercept"
    assert top["cooks_d"].iloc[0] > 4 / J  # the rule of thumb flags it
    assert top["cooks_d"].iloc[0] > 3 * top["cooks_d"].iloc[1]


def test_planted_slope_outlier_is_flagged_on_the_slope():
    # Known truth: group 4 has a slope of 6 instead of 1, everything else is regular.
    rng = np.random.default_rng(11)
    J, n = 25, 20
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    slope = np.where(g == 4, 6.0, 1.0)
    y = 2 + slope * x + rng.normal(size=J)[g] + rng.normal(size=J * n)
    df = pd.DataFrame({"g": g, "x": x, "y": y})
    infl = mlm.influence_groups(mlm.fit_mixed(df, "y ~ x", "g"), terms=["x"])
    top = infl.table.sort_values("cooks_d", ascending=False).iloc[0]
    assert top["group"] == 4 and top["term_max"] == "x"
    assert infl.terms == ("x",)
    assert set(infl.changes["term"]) == {"x"}


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_fast_refits_equal_fit_mixed_on_the_reduced_data(hsb, method):
    # Independent route: a fresh fit_mixed without the group (new design, default start).
    # Both stop at the optimum within the optimizer's tolerance; the random-slope
    # covariance is flat (README: ~1e-3 relative), the fixed effects much less so: rtol 1e-5.
    fit = mlm.fit_mixed(
        hsb, "mathach ~ cses * catholic", "school", re_formula="cses", method=method
    )
    groups = ["1224", "2277", "9586"]
    infl = mlm.influence_groups(fit, groups=groups)
    for g in groups:
        refit = mlm.fit_mixed(
            hsb[hsb["school"] != g],
            "mathach ~ cses * catholic",
            "school",
            re_formula="cses",
            method=method,
        )
        ch = infl.changes[infl.changes["group"] == g].set_index("term")
        assert_allclose(ch["estimate_without"], refit.params[ch.index], rtol=1e-5, atol=1e-7)


def test_influence_subset_and_method(fit_rc):
    infl = mlm.influence_groups(fit_rc, groups=["1224", "1288"], terms="cses")
    assert list(infl.table["group"]) == ["1224", "1288"]
    assert infl.method == "REML"
    assert infl.table["converged"].all()
    assert (infl.table["n"] == [47, 25]).all()


def test_influence_warns_once_about_degenerate_refits():
    # Equal group means: the between-group variance is exactly zero, so every refit is on
    # the boundary.
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(5), 6)
    e = rng.normal(size=30)
    y = e - pd.Series(e).groupby(g).transform("mean").to_numpy() + 3.0
    df = pd.DataFrame({"g": g, "y": y})
    with pytest.warns(mlm.BoundaryWarning):
        fit = mlm.fit_null(df, "y", "g")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mlm.influence_groups(fit)
    ours = [w for w in caught if issubclass(w.category, mlm.MLMWarning)]
    assert len(ours) == 1 and "refitting without group(s)" in str(ours[0].message)


# --- plots -----------------------------------------------------------------------------


def test_plot_qq_points_are_scipy_probplot():
    values = np.random.default_rng(5).standard_t(df=4, size=80)
    ax = mlm.plot_qq(values, label="Residual (points)")
    (osm, osr), (slope, intercept, _) = stats.probplot(values, dist="norm")
    points, line = ax.lines[0], ax.lines[1]
    assert_allclose(points.get_xdata(), osm)
    assert_allclose(points.get_ydata(), osr)
    assert_allclose(line.get_ydata(), intercept + slope * line.get_xdata())
    assert ax.get_ylabel() == "Residual (points)"
    assert ax.get_xlabel() == "Standard normal quantile"


def test_plot_residuals_binned_means(fit_rc, hsb):
    ax = mlm.plot_residuals(fit_rc, against="ses", bins=4)
    res = mlm.residual_table(fit_rc)["residual"]
    # independent binning: pandas quartiles of ses
    q = pd.qcut(hsb["ses"], 4)
    expected = res.groupby(q, observed=True).mean().to_numpy()
    assert_allclose(ax.lines[0].get_ydata(), expected)
    assert ax.get_xlabel() == "ses" and ax.get_ylabel() == "Level-1 residual"
    offsets = ax.collections[0].get_offsets()
    assert_allclose(offsets[:, 1], res.to_numpy())


def test_plot_residuals_against_fitted(fit_rc):
    ax = mlm.plot_residuals(fit_rc)
    res = mlm.residual_table(fit_rc)
    assert_allclose(ax.collections[0].get_offsets()[:, 0], res["fitted"].to_numpy())


# --- bad input ---------------------------------------------------------------------------


def test_bad_input_messages(fit_rc):
    with pytest.raises(TypeError, match="fit must be a MixedFit"):
        mlm.residual_table("model")
    with pytest.raises(TypeError, match="fit must be a MixedFit"):
        mlm.group_residual_sd(None)
    with pytest.raises(KeyError, match="not fixed effects of the fit"):
        mlm.influence_groups(fit_rc, terms=["ses"])
    with pytest.raises(ValueError, match="terms is empty"):
        mlm.influence_groups(fit_rc, terms=[])
    with pytest.raises(KeyError, match="not in the fitted data's 'school' column"):
        mlm.influence_groups(fit_rc, groups=["9999"])
    with pytest.raises(ValueError, match="groups is empty"):
        mlm.influence_groups(fit_rc, groups=[])
    with pytest.raises(ValueError, match="more than once"):
        mlm.influence_groups(fit_rc, groups=["1224", "1224"])
    with pytest.raises(ValueError, match="at least 3 values"):
        mlm.plot_qq([1.0, np.nan, 2.0])
    with pytest.raises(TypeError, match="values must be numeric"):
        mlm.plot_qq(["a", "b", "c"])
    with pytest.raises(KeyError, match="'nope' not in data"):
        mlm.plot_residuals(fit_rc, against="nope")
    with pytest.raises(TypeError, match="'sector' must be numeric"):
        mlm.plot_residuals(fit_rc, against="sector")
    with pytest.raises(ValueError, match="bins must be an integer"):
        mlm.plot_residuals(fit_rc, bins=1)
