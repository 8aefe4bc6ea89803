"""Tests of mlm_lessons.describe against hand computations and R's numbers for HSB."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_reference.json").read_text())
ANOVA = REF["icc_anova"]  # R: table(), aov(mathach ~ factor(school)), see lme4_reference.R


@pytest.fixture
def tiny():
    """Groups of sizes 1, 2, 3, 4 with a level-1 x and a level-2 z, values chosen by hand."""
    return pd.DataFrame(
        {
            "g": ["a", "b", "b", "c", "c", "c", "d", "d", "d", "d"],
            "x": [1.0, 2.0, 4.0, 0.0, 3.0, 6.0, 1.0, 1.0, 1.0, 5.0],
            "z": [10, 20, 20, 30, 30, 30, 40, 40, 40, 40],
        }
    )


# --- cluster_sizes ---------------------------------------------------------------------------


def test_cluster_sizes_by_hand(tiny):
    out = mlm.cluster_sizes(tiny, "g")
    assert list(out.columns) == [
        "n_obs", "n_groups", "min", "q1", "median", "mean", "q3", "max", "n0",
    ]  # fmt: skip
    row = out.iloc[0]
    # sizes 1, 2, 3, 4: R quantile(type = 7) gives 1.75, 2.5, 3.25
    assert (row["n_obs"], row["n_groups"], row["min"], row["max"]) == (10, 4, 1, 4)
    assert_allclose([row["q1"], row["median"], row["mean"], row["q3"]], [1.75, 2.5, 2.5, 3.25])
    # n0 = (N - sum n_j^2 / N) / (J - 1) = (10 - 30/10) / 3
    assert_allclose(row["n0"], 7 / 3, rtol=1e-15)


def test_cluster_sizes_balanced_n0_is_n():
    # closed form: with equal sizes n, n0 = (Jn - Jn^2/(Jn)) / (J - 1) = n
    df = pd.DataFrame({"g": np.repeat(np.arange(7), 5)})
    assert_allclose(mlm.cluster_sizes(df, "g")["n0"].iloc[0], 5.0, rtol=1e-14)


def test_cluster_sizes_hsb(hsb):
    row = mlm.cluster_sizes(hsb, "school").iloc[0]
    # R: nrow(hsb), length(unique(school)), range(table(school)); exact integers
    assert row["n_obs"] == ANOVA["N"] and row["n_groups"] == ANOVA["J"]
    assert row["min"] == ANOVA["n_min"] and row["max"] == ANOVA["n_max"]
    # mean size and n0 from R, double precision: tight tolerance
    assert_allclose(row["mean"], ANOVA["n_mean"], rtol=1e-12)
    assert_allclose(row["n0"], ANOVA["n0"], rtol=1e-12)
    assert row["min"] <= row["q1"] <= row["median"] <= row["q3"] <= row["max"]


def test_cluster_sizes_errors(tiny):
    with pytest.raises(KeyError, match="'school' not in data"):
        mlm.cluster_sizes(tiny, "school")
    with pytest.raises(ValueError, match="has 1 distinct value"):
        mlm.cluster_sizes(tiny.assign(g="a"), "g")
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        mlm.cluster_sizes(tiny.to_dict(), "g")


# --- variable_levels -------------------------------------------------------------------------


def test_variable_levels_by_hand(tiny):
    out = mlm.variable_levels(tiny, "g").set_index("column")
    assert list(out.index) == ["x", "z"]
    assert out.loc["x", "level"] == "level 1" and out.loc["z", "level"] == "level 2"
    # x: group means a 1, b 3, c 3, d 2; SS within = 0 + 2 + 18 + 12 = 32 on N - J = 6
    assert_allclose(out.loc["x", "within_sd"], np.sqrt(32 / 6), rtol=1e-14)
    assert_allclose(out.loc["x", "between_sd"], np.std([1, 3, 3, 2], ddof=1), rtol=1e-14)
    # total SS around the mean 2.4 is 36.4, so eta^2 = 1 - 32 / 36.4
    assert_allclose(out.loc["x", "share_between"], 1 - 32 / 36.4, rtol=1e-12)
    assert out.loc["z", "within_sd"] == 0.0 and out.loc["z", "share_between"] == 1.0
    assert_allclose(out.loc["z", "between_sd"], np.std([10, 20, 30, 40], ddof=1))


def test_variable_levels_hsb_against_r_anova(hsb):
    out = mlm.variable_levels(hsb, "school", columns=["mathach", "meanses", "catholic"])
    out = out.set_index("column")
    # R aov(mathach ~ factor(school)): within SD = sqrt(MSW), eta^2 = SSB / (SSB + SSW),
    # and the SD of the 160 school means = sqrt(tau2_slide); all double precision.
    assert_allclose(out.loc["mathach", "within_sd"], np.sqrt(ANOVA["MSW"]), rtol=1e-10)
    assert_allclose(out.loc["mathach", "between_sd"], np.sqrt(ANOVA["tau2_slide"]), rtol=1e-10)
    eta2 = ANOVA["SSB"] / (ANOVA["SSB"] + ANOVA["SSW"])
    assert_allclose(out.loc["mathach", "share_between"], eta2, rtol=1e-10)
    # the descriptive share overstates the method-of-moments ICC (0.1736), as documented
    assert out.loc["mathach", "share_between"] > ANOVA["icc_mom"]
    assert (out.loc[["meanses", "catholic"], "level"] == "level 2").all()


def test_variable_levels_default_columns_skip_non_numeric(hsb):
    out = mlm.variable_levels(hsb, "school")
    assert "sector" not in set(out["column"]) and "school" not in set(out["column"])
    assert {"mathach", "ses", "meanses"} <= set(out["column"])


def test_variable_levels_errors(tiny):
    with pytest.raises(KeyError, match="'w' not in data"):
        mlm.variable_levels(tiny, "g", columns=["x", "w"])
    with pytest.raises(TypeError, match="'g2' must be numeric"):
        mlm.variable_levels(tiny.assign(g2=tiny["g"]), "g", columns="g2")
    with pytest.raises(ValueError, match="'x' has 1 missing"):
        mlm.variable_levels(tiny.assign(x=tiny["x"].where(tiny.index > 0)), "g")
    with pytest.raises(ValueError, match="group column 'g' cannot also be described"):
        mlm.variable_levels(tiny.assign(g=1 + tiny.index // 3), "g", columns=["g"])
    with pytest.raises(ValueError, match="no columns to describe"):
        mlm.variable_levels(tiny[["g"]], "g")


def test_inputs_not_modified(tiny):
    before = tiny.copy()
    mlm.variable_levels(tiny, "g")
    mlm.describe_levels(tiny, "g", level1="x", level2="z")
    mlm.cluster_sizes(tiny, "g")
    pd.testing.assert_frame_equal(tiny, before)


# --- describe_levels -------------------------------------------------------------------------


def test_describe_levels_by_hand(tiny):
    out = mlm.describe_levels(tiny, "g", level1=["x"], level2=["z"]).set_index("variable")
    assert list(out.columns) == ["level", "n", "mean", "sd", "min", "max"]
    # x over the 10 rows; z over the 4 groups (10, 20, 30, 40), not over rows (mean 30)
    assert out.loc["x", "n"] == 10 and out.loc["z", "n"] == 4
    assert_allclose(out.loc["x", ["mean", "sd"]].astype(float), [2.4, np.sqrt(36.4 / 9)])
    assert_allclose(
        out.loc["z", ["mean", "sd", "min", "max"]].astype(float),
        [25.0, np.std([10, 20, 30, 40], ddof=1), 10, 40],
    )


def test_describe_levels_hsb(hsb):
    out = mlm.describe_levels(
        hsb, "school", level1=["mathach", "female"], level2=["catholic", "meanses"]
    ).set_index("variable")
    assert list(out["level"]) == ["level 1", "level 1", "level 2", "level 2"]
    # R: sum(hsb$mathach) / N; 70 Catholic schools of 160 (exact counts)
    assert_allclose(out.loc["mathach", "mean"], ANOVA["sum_mathach"] / ANOVA["N"], rtol=1e-12)
    assert out.loc["catholic", "n"] == ANOVA["J"]
    assert_allclose(out.loc["catholic", "mean"], ANOVA["n_catholic_schools"] / ANOVA["J"])
    # over students the Catholic share differs: 3543 of 7185
    share_rows = ANOVA["n_catholic_students"] / ANOVA["N"]
    assert not np.isclose(out.loc["catholic", "mean"], share_rows)


def test_describe_levels_errors(tiny):
    with pytest.raises(ValueError, match="level-2 variable 'x' varies within 3 group"):
        mlm.describe_levels(tiny, "g", level2=["x"])
    with pytest.raises(ValueError, match="give at least one variable"):
        mlm.describe_levels(tiny, "g")
    with pytest.raises(ValueError, match=r"\['z'\] declared in both"):
        mlm.describe_levels(tiny, "g", level1=["x", "z"], level2="z")
    with pytest.raises(ValueError, match="lists a column more than once"):
        mlm.describe_levels(tiny, "g", level1=["x", "x"])
    with pytest.raises(KeyError, match="'w' not in data"):
        mlm.describe_levels(tiny, "g", level1="w")
