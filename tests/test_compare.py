"""Tests of mlm_lessons.compare against R (lm, sandwich::vcovCL, lme4) and statsmodels.

Reference: tests/reference/lme4_reference.json, entry "what_could_go_wrong" (R 4.2.2,
sandwich 3.0.2, lme4 1.1-31).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

import mlm_lessons as mlm
from mlm_lessons.compare import APPROACHES, _cluster_vcov, _ols

REF = json.loads((Path(__file__).parent / "reference" / "lme4_reference.json").read_text())[
    "what_could_go_wrong"
]


@pytest.fixture(scope="module")
def table(hsb):
    return mlm.compare_approaches(hsb, "mathach", "ses", "school").set_index("approach")


def test_per_group_slopes_match_r(hsb):
    slopes = mlm.per_group_slopes(hsb, "mathach", "ses", "school")
    ref = REF["per_school_ols"]
    assert len(slopes) == ref["n_schools"]
    assert slopes.attrs["n_not_estimable"] == 0
    # R: coef(lm(mathach ~ ses)) school by school; OLS in double precision agrees to
    # rounding error, so rtol 1e-8
    first = slopes.set_index("group").loc[ref["group_ids_first5"], "slope"]
    assert_allclose(first, ref["slopes_first5"], rtol=1e-8)
    s = slopes["slope"]
    assert_allclose(
        [s.mean(), s.std(), s.min(), s.max()],
        [ref["mean"], ref["sd"], ref["min"], ref["max"]],
        rtol=1e-8,
    )


def test_per_group_slopes_match_statsmodels_and_flag_missing():
    # Independent reference: statsmodels OLS per group. Group "c" has a constant predictor,
    # "d" a single row (no slope), "e" two rows (slope but no SE).
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {
            "g": ["a"] * 6 + ["b"] * 5 + ["c"] * 3 + ["d"] + ["e"] * 2,
            "x": np.r_[rng.normal(size=11), [2.0, 2.0, 2.0], [1.0], [0.0, 1.0]],
        }
    )
    df["y"] = 1 + 0.5 * df["x"] + rng.normal(size=len(df))
    out = mlm.per_group_slopes(df, "y", "x", "g").set_index("group")
    assert out["n"].tolist() == [6, 5, 3, 1, 2]
    for g in ["a", "b"]:
        sub = df[df["g"] == g]
        res = sm.OLS(sub["y"], sm.add_constant(sub["x"])).fit()
        assert_allclose(
            out.loc[g, ["intercept", "slope", "slope_se"]],
            [res.params["const"], res.params["x"], res.bse["x"]],
            rtol=1e-10,
        )
    assert out.loc[["c", "d"], ["intercept", "slope", "slope_se"]].isna().all().all()
    sub = df[df["g"] == "e"]
    assert_allclose(out.loc["e", "slope"], np.diff(sub["y"])[0] / 1.0, rtol=1e-12)
    assert np.isnan(out.loc["e", "slope_se"])
    assert out.attrs["n_not_estimable"] == 2


def test_pooled_ols_matches_r(table):
    ref = REF["pooled_ols"]
    row = table.loc["pooled OLS (naive SE)"]
    # R: lm(mathach ~ ses); closed-form OLS, rtol 1e-8
    assert_allclose(row["estimate"], ref["slope"], rtol=1e-8)
    assert_allclose(row["std_error"], ref["slope_se"], rtol=1e-8)
    assert row["n_units"] == 7185


def test_cluster_robust_se_matches_r_sandwich(table, hsb):
    # R: sandwich::vcovCL(fit, cluster = ~school, type = "HC1") = 0.133485
    row = table.loc["pooled OLS (cluster-robust SE)"]
    ref = REF["pooled_ols"]["slope_se_cluster_robust_HC1"]
    assert_allclose(row["std_error"], ref, rtol=1e-8)
    assert row["n_units"] == 160
    # statsmodels reproduces it with cov_type="cluster" and its defaults
    # (use_correction=True, df_correction=True); use_t=True gives the t(J - 1) interval
    codes = pd.factorize(hsb["school"])[0]
    res = sm.OLS(hsb["mathach"], sm.add_constant(hsb["ses"])).fit(
        cov_type="cluster", cov_kwds={"groups": codes}, use_t=True
    )
    assert_allclose(res.bse["ses"], ref, rtol=1e-8)
    assert_allclose(res.conf_int().loc["ses"], row[["ci_low", "ci_high"]].astype(float), rtol=1e-10)


def test_cluster_vcov_helper_matches_statsmodels_with_unequal_clusters():
    rng = np.random.default_rng(9)
    codes = np.repeat(np.arange(7), [3, 8, 2, 5, 9, 4, 6])
    X = np.column_stack(
        [np.ones(len(codes)), rng.normal(size=len(codes)), rng.normal(size=len(codes))]
    )
    y = X @ [1.0, 2.0, -1.0] + rng.normal(size=7)[codes] + rng.normal(size=len(codes))
    _, XtX_inv, resid = _ols(X, y)
    res = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": codes})
    assert_allclose(_cluster_vcov(X, resid, codes, XtX_inv), res.cov_params(), rtol=1e-10)


def test_aggregated_and_disaggregated_match_r(table):
    row = table.loc["aggregated: regression of group means"]
    ref = REF["between_school_means"]
    assert_allclose(
        row[["estimate", "std_error"]].astype(float), [ref["slope"], ref["slope_se"]], rtol=1e-8
    )
    row = table.loc["disaggregated: mean of per-group slopes"]
    ref = REF["per_school_ols"]
    assert_allclose(row["estimate"], ref["mean"], rtol=1e-8)
    assert_allclose(row["std_error"], ref["sd"] / np.sqrt(160), rtol=1e-8)


def test_multilevel_matches_lme4(table):
    # lme4: fixef(lmer(mathach ~ ses + (1 | school)))["ses"]; the engine agrees with lme4
    # to about 1e-5 relative (tests/reference/README.md)
    row = table.loc["multilevel: random intercept"]
    assert_allclose(row["estimate"], REF["random_intercept_ses_REML_slope"], rtol=1e-5)


def test_table_layout_and_intervals(table):
    assert table.index.tolist() == list(APPROACHES)
    assert (table["ci_low"] < table["estimate"]).all()
    assert (table["estimate"] < table["ci_high"]).all()
    # t intervals: half-width = t quantile * SE with the documented degrees of freedom
    from scipy import stats

    row = table.loc["aggregated: regression of group means"]
    half = stats.t.ppf(0.975, 158) * row["std_error"]
    assert_allclose(row["ci_high"] - row["estimate"], half, rtol=1e-10)


def test_unusual_column_names_and_no_mutation():
    df = mlm.simulate_two_level(
        8, 10, gamma00=1.0, gamma10=1.0, tau00=1.0, sigma2=1.0, x_between_sd=1.0, seed=1
    )
    df = df.rename(columns={"y": "math score", "x": "ses (z)", "group": "school id"})
    before = df.copy()
    tab = mlm.compare_approaches(df, "math score", "ses (z)", "school id")
    pd.testing.assert_frame_equal(df, before)
    assert len(tab) == 5 and tab["estimate"].notna().all()


def _bad_frames():
    df = mlm.simulate_two_level(
        5, 4, gamma00=1.0, gamma10=1.0, tau00=1.0, sigma2=1.0, x_between_sd=1.0, seed=2
    )
    text = df.assign(y=df["y"].astype(str))
    missing = df.copy()
    missing.loc[3, "x"] = np.nan
    centred = df.assign(x=df["x"] - df.groupby("group")["x"].transform("mean"))
    const = df.assign(x=df.groupby("group")["x"].transform("mean"))
    two = df[df["group"].isin(["g1", "g2"])]
    return [
        ([df.to_numpy(), "y", "x", "group"], {}, TypeError, "must be a pandas DataFrame"),
        ([df, "y", "w", "group"], {}, KeyError, "'w' not in data"),
        ([df, "y", "x", "school"], {}, KeyError, "'school' not in data"),
        ([df, 1, "x", "group"], {}, TypeError, "outcome must be a column name"),
        ([text, "y", "x", "group"], {}, TypeError, "outcome 'y' must be numeric"),
        ([missing, "y", "x", "group"], {}, ValueError, "'x' has 1 missing value"),
        ([two, "y", "x", "group"], {}, ValueError, "needs at least 3 groups"),
        ([centred, "y", "x", "group"], {}, ValueError, "group means of 'x' are all equal"),
        ([const, "y", "x", "group"], {}, ValueError, "only 0 group"),
        ([df, "y", "x", "group"], {"conf_level": 1.5}, ValueError, "conf_level must be"),
    ]


@pytest.mark.parametrize("args, kwargs, error, match", _bad_frames())
def test_compare_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlm.compare_approaches(*args, **kwargs)


def test_per_group_slopes_bad_input():
    df = pd.DataFrame({"g": ["a", "a"], "x": [1.0, 2.0], "y": ["u", "v"]})
    with pytest.raises(TypeError, match="outcome 'y' must be numeric"):
        mlm.per_group_slopes(df, "y", "x", "g")
    with pytest.raises(KeyError, match="'z' not in data"):
        mlm.per_group_slopes(df, "z", "x", "g")
    with pytest.raises(TypeError, match="predictor must be a column name"):
        mlm.per_group_slopes(df, "y", ["x"], "g")
