"""Adversarial inputs, part 2: models, comparisons of fits, predictions and fit arguments.

Degenerate designs, fits compared across different data, three-level and crossed input,
binary outcomes, new data for predictions, fit objects of the wrong kind and the warnings
that remain (only where the answer is still right, pointing at the caller's line). Each case
asserts the exception class and a message naming the culprit, and that no frame changed
(``_awkward.run``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _awkward import CROSSED, THREE, TWO, Case, fits, params, run
from numpy.testing import assert_allclose

import mlm_lessons as mlm


def _fit(*args, **kwargs):
    return mlm.fit_mixed(*args, **kwargs)


# --- degenerate designs ------------------------------------------------------------------------

_TWO_ROWS = TWO.groupby("g").head(2)  # groups of two rows: a random slope per group is too much
DESIGNS = [
    # the outcome among the predictors
    ("outcome-in-predictors/fit_mixed", lambda: _fit(TWO, "y ~ x + y", "g"), ValueError,
     r"the outcome 'y' is also among the predictors of 'y ~ x \+ y \+ \(1 \| g\)'"),
    ("outcome-in-predictors/transformed", lambda: _fit(TWO, "y ~ x + I(2 * y)", "g"),
     ValueError, "the outcome 'y' is also among the predictors"),
    ("outcome-in-predictors/log", lambda: _fit(TWO, "y ~ np.log(y)", "g"), ValueError,
     "the outcome 'y' is also among the predictors"),
    ("outcome-in-predictors/random-part", lambda: _fit(TWO, "y ~ x + (y | g)"), ValueError,
     "the outcome 'y' is also among the predictors"),
    ("outcome-in-predictors/fit_random_intercept",
     lambda: mlm.fit_random_intercept(TWO, "y", "g", predictors=["x", "y"]), ValueError,
     "the outcome 'y' is also among the predictors"),
    ("outcome-in-predictors/fit_three_level",
     lambda: mlm.fit_three_level(THREE, "y ~ t + y", "c", "s"), ValueError,
     "the outcome 'y' is also among the predictors"),
    ("outcome-in-predictors/crossed", lambda: _fit(CROSSED, "y ~ y + (1 | a) + (1 | b)"),
     ValueError, "the outcome 'y' is also among the predictors"),
    ("outcome-is-group", lambda: _fit(TWO, "g ~ x", "g"), ValueError,
     "'g' is both the outcome and a group column"),
    # no residual variance
    ("zero-residual/linear-function", lambda: _fit(TWO.assign(y2=2 * TWO["x"] + 1), "y2 ~ x",
                                                  "g"),
     ValueError, r"the model reproduces outcome 'y2' exactly \(residual variance zero\)"),
    ("zero-residual/predictor-plus-group-value",
     lambda: _fit(TWO.assign(y2=TWO["x"] + TWO["z"]), "y2 ~ x", "g"), ValueError,
     "the model reproduces outcome 'y2' exactly"),
    ("zero-residual/crossed-sum-of-group-values",
     lambda: _fit(CROSSED.assign(y2=CROSSED["b"] + CROSSED["a"].str.len()),
                  "y2 ~ 1 + (1 | a) + (1 | b)"),
     ValueError, "the model reproduces outcome 'y2' exactly.*sum of group values"),
    ("zero-residual/constant-within-groups/fit_null",
     lambda: mlm.fit_null(TWO.assign(y2=TWO["z"]), "y2", "g"), ValueError,
     "outcome 'y2' is constant within every group of 'g': there is no within-group variation"),
    ("zero-residual/constant-within-groups/fit_three_level",
     lambda: mlm.fit_three_level(THREE.assign(y2=THREE["c"] * 1.5), "y2 ~ 1", "c", "s"),
     ValueError, "outcome 'y2' is constant within every group of 'c'"),
    ("zero-residual/constant-within-groups/icc_anova",
     lambda: mlm.icc_anova(TWO.assign(y2=TWO["z"]), "y2", "g"), ValueError,
     "outcome 'y2' is constant within every group of 'g'"),
    ("zero-residual/constant-within-groups/icc_slide",
     lambda: mlm.icc_slide(TWO.assign(y2=TWO["z"]), "y2", "g"), ValueError,
     "outcome 'y2' is constant within every group of 'g'"),
    # random slope of a variable that is constant within every group
    ("level2-random-slope/fit_random_coefficient",
     lambda: mlm.fit_random_coefficient(TWO, "y", "g", predictors=["x", "z"], random=["z"]),
     ValueError, "'z' is constant within every group of 'g', so its random slope cannot be "
                 "told apart from the random intercept"),
    ("level2-random-slope/fit_mixed", lambda: _fit(TWO, "y ~ x + z + (1 + z | g)"),
     ValueError, "'z' is constant within every group of 'g'"),
    ("level2-random-slope/fit_three_level",
     lambda: mlm.fit_three_level(TWO, "y ~ x + z", "g", "r", re_formula2="z"), ValueError,
     "'z' is constant within every group of 'g'"),
    ("level2-random-slope/uncorrelated", lambda: _fit(TWO, "y ~ z + (z || g)"), ValueError,
     "'z' is constant within every group of 'g'|random effects .* linearly dependent"),
    # a "level-2" predictor that varies within groups: the same message as describe_levels
    ("level2-varies/fit_full_model",
     lambda: mlm.fit_full_model(TWO, "y", "g", level1=["z"], level2=["x"]), ValueError,
     r"level-2 variable 'x' varies within 24 group\(s\) of 'g' \(e.g. 1\): a level-2 "
     r"variable has one value per group"),
    ("level2-varies/describe_levels", lambda: mlm.describe_levels(TWO, "g", level2=["x"]),
     ValueError, r"level-2 variable 'x' varies within 24 group\(s\) of 'g' \(e.g. 1\): a "
                 r"level-2 variable has one value per group"),
    # rank deficiency, and what is not rank deficiency
    ("rank/duplicate-predictor", lambda: _fit(TWO.assign(x2=2 * TWO["x"]), "y ~ x + x2", "g"),
     ValueError, "the fixed-effects design is rank deficient.*'x', 'x2'"),
    ("rank/constant-predictor", lambda: _fit(TWO.assign(k=3.0), "y ~ x + k", "g"), ValueError,
     r"rank deficient \('k' is constant\)"),
    ("not-rank/infinite-predictor",
     lambda: _fit(TWO.assign(v=TWO["w"].where(TWO.index != 0, np.inf)), "y ~ v", "g"),
     ValueError, r"^column 'v' has 1 infinite value\(s\)"),
    ("not-rank/log-of-zero",
     lambda: _fit(TWO.assign(v=TWO["w"].abs().where(TWO.index != 0, 0.0)), "y ~ np.log(v)",
                  "g"),
     ValueError, r"^fixed-effect column\(s\) \['np.log\(v\)'\] have infinite values \(a log "
                 r"of 0"),
    ("not-rank/date-column",
     lambda: _fit(TWO.assign(d=pd.date_range("2020-01-01", periods=len(TWO))), "y ~ d", "g"),
     TypeError, "predictor 'd' holds dates or times.*days since the first date"),
    ("not-rank/date-strings",
     lambda: _fit(TWO.assign(d=pd.date_range("2020-01-01", periods=len(TWO)).astype(str)),
                  "y ~ d", "g"),
     TypeError, "predictor 'd' holds dates stored as text \\(e.g. '2020-01-01'\\)"),
    ("not-rank/numbers-as-text-predictor",
     lambda: _fit(TWO.assign(v=TWO["w"].round(2).astype(str)), "y ~ v", "g"), TypeError,
     "predictor 'v' holds numbers stored as text"),
    # grouping factors that cannot be identified
    ("groups/one-group", lambda: _fit(TWO.assign(g=1), "y ~ x", "g"), ValueError,
     r"group column 'g' has 1 distinct value\(s\); a multilevel model needs at least 2"),
    ("groups/same-partition-twice", lambda: _fit(TWO, "y ~ x + (1 | g) + (1 | gs)"),
     ValueError, "grouping factors 'g' and 'gs' group the rows in the same way"),
    ("groups/random-slope-per-pair-of-rows",
     lambda: _fit(_TWO_ROWS, "y ~ x + (x | g)"), ValueError,
     r"24 groups x 2 random effects of 'g' are at least the 48 observations"),
    ("groups/dependent-random-effects",
     lambda: _fit(TWO.assign(x2=2 * TWO["x"]), "y ~ 1 + (0 + x + x2 | g)"), ValueError,
     r"the random effects \['x', 'x2'\] of 'g' are linearly dependent"),
    ("groups/group-as-predictor/fit_mixed", lambda: _fit(TWO, "y ~ x + C(gs)", "gs"),
     ValueError, "the group column 'gs' is also among the predictors of the fixed part"),
    ("groups/group-as-predictor/fit_full_model",
     lambda: mlm.fit_full_model(TWO, "y", "g", level1=["x"], level2=["g"]), ValueError,
     "the group column 'g' is also among the predictors"),
    ("groups/empty-random-term", lambda: _fit(TWO, "y ~ x + (0 | g)"), ValueError,
     r"random term \(0 \| g\) has no columns"),
    ("groups/too-few-rows", lambda: _fit(TWO.iloc[:3].assign(g=[1, 1, 2]), "y ~ x + w + z",
                                         "g"),
     ValueError, "3 observations cannot estimate 4 fixed effects"),
    ("formula/unbalanced", lambda: _fit(TWO, "y ~ (x + (1 | g)"), ValueError,
     "unbalanced parentheses"),
    ("formula/bar-outside-parentheses", lambda: _fit(TWO, "y ~ x + 1 | g"), ValueError,
     "must be in parentheses"),
    ("formula/no-outcome", lambda: _fit(TWO, "~ x", "g"), ValueError, "has no outcome"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"design/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in DESIGNS]))
def test_degenerate_designs(case):
    run(case)


def test_level2_messages_are_identical():
    # the same mistake, the same words, in the model and in the description of the data
    msgs = []
    for call in (lambda: mlm.fit_full_model(TWO, "y", "g", level1=["z"], level2=["x"]),
                 lambda: mlm.describe_levels(TWO, "g", level2=["x"])):
        with pytest.raises(ValueError) as info:
            call()
        msgs.append(str(info.value))
    assert msgs[0] == msgs[1]


def test_constant_within_groups_is_not_advised_to_rescale():
    for call in (lambda: mlm.fit_null(TWO.assign(y2=TWO["z"]), "y2", "g"),
                 lambda: mlm.icc_reml(TWO.assign(y2=TWO["z"]), "y2", "g")):
        with pytest.raises(ValueError, match="constant within every group") as info:
            call()
        assert "rescale" not in str(info.value) and "rank" not in str(info.value)


# --- comparisons of fits -----------------------------------------------------------------------

def _regrouped():
    return TWO.assign(g=np.roll(TWO["g"].to_numpy(), 3))


def _other_x():
    return TWO.assign(x=TWO["x"] + np.random.default_rng(1).normal(size=len(TWO)))


def _other_y():
    return TWO.assign(y=TWO["y"] * 1.01)


@pytest.fixture(scope="module")
def variants():
    """Full models fitted to data that differ from TWO in one respect each."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlm.MLMWarning)
        return {
            "regrouped": _fit(_regrouped(), "y ~ x", "g", re_formula="x", diagonal=True),
            "other-x": _fit(_other_x(), "y ~ x", "g", re_formula="x", diagonal=True),
            "other-y": _fit(_other_y(), "y ~ x", "g", re_formula="x", diagonal=True),
            "subset": _fit(TWO.iloc[8:], "y ~ x", "g", re_formula="x", diagonal=True),
            "shuffled": _fit(TWO.sample(frac=1.0, random_state=1), "y ~ x", "g",
                             re_formula="x", diagonal=True),
            "other-outcome": _fit(TWO.assign(y3=TWO["y"]), "y3 ~ x", "g", re_formula="x",
                                  diagonal=True),
        }


DIFFERENT = {
    "regrouped": r"not fitted to the same data \(a different grouping of the rows by 'g'\)",
    "other-x": r"not fitted to the same data \(different values of the fixed-effect column "
               r"'x'\)",
    "other-y": r"not fitted to the same data \(different outcome values\)",
    "subset": r"not fitted to the same data \(192 rows against 184\); likelihoods",
    "shuffled": r"not fitted to the same data \(the same rows in another order",
    "other-outcome": r"not fitted to the same data \(outcomes 'y' and 'y3'",
}
COMPARERS = {
    "lrt": lambda a, b: mlm.lrt(a, b),
    "bootstrap_lrt": lambda a, b: mlm.bootstrap_lrt(a, b, n_boot=2, seed=1),
    "compare_models": lambda a, b: mlm.compare_models({"a": a, "b": b}),
    "pre": lambda a, b: mlm.pre(a, b),
    "nesting": lambda a, b: mlm.nesting(a, b),
}


@pytest.mark.parametrize("variant", list(DIFFERENT))
@pytest.mark.parametrize("comparer", list(COMPARERS))
def test_fits_of_different_data_are_not_compared(variants, variant, comparer):
    other = variants[variant]
    run(Case(f"{comparer}/{variant}", lambda _: COMPARERS[comparer](fits()["ri"], other),
             ValueError, DIFFERENT[variant]))


def test_a_frame_edited_after_fitting_changes_nothing():
    data = TWO.copy()
    fit = _fit(data, "y ~ x", "g")
    before = (fit.loglik, fit.params.copy(), fit.data.copy())
    data["y"] = data["y"] * 2  # the caller edits the frame in place after fitting
    data.loc[0, "g"] = 99
    assert fit.loglik == before[0]
    pd.testing.assert_series_equal(fit.params, before[1])
    pd.testing.assert_frame_equal(fit.data, before[2])
    # later refits use the fit's own copy: ML refit equals a fresh ML fit of the original data
    assert_allclose(fit.refit(method="ML").loglik, fits()["ri_ml"].loglik, rtol=1e-10)
    pd.testing.assert_series_equal(fit.predict(), fits()["ri"].predict())
    # and a fit of the edited frame is recognised as other data
    edited = _fit(data, "y ~ x", "g", re_formula="x", diagonal=True)
    with pytest.raises(ValueError, match="not fitted to the same data"):
        mlm.lrt(fit, edited)


COMPARISONS = [
    ("compare_models/REML-different-fixed-parts",
     lambda: mlm.compare_models({"a": fits()["ri"], "b": fits()["ri_z"]}), ValueError,
     "have different fixed parts, and REML likelihoods .* cannot be compared; refit them by "
     "ML"),
    ("compare_models/REML-and-ML",
     lambda: mlm.compare_models({"a": fits()["ri"], "b": fits()["ri_ml"]}), ValueError,
     "the fits mix REML and ML"),
    ("compare_models/list", lambda: mlm.compare_models([fits()["ri"]]), TypeError,
     "fits must be a dict of name -> MixedFit, not list"),
    ("compare_models/empty", lambda: mlm.compare_models({}), ValueError, "fits is empty"),
    ("compare_models/key-not-a-string",
     lambda: mlm.compare_models({1: fits()["ri"], 2: fits()["rs"]}), TypeError,
     "the keys of fits are the names to show"),
    ("pre/REML-and-ML", lambda: mlm.pre(fits()["ri"], fits()["ri_ml"]), ValueError,
     "reference was fitted by REML and fit by ML"),
    ("lrt/not-nested", lambda: mlm.lrt(fits()["ri_z"], fits()["rs"]), ValueError,
     r"the models are not nested: the fixed part of reduced \(Intercept, x, z\)"),
    ("lrt/reversed", lambda: mlm.lrt(fits()["rs"], fits()["ri"]), ValueError,
     "not nested.*pass the smaller model first"),
    ("lrt/same-model", lambda: mlm.lrt(fits()["ri"], fits()["ri"]), ValueError,
     "the full model must have more"),
    ("lrt/three-level-reversed", lambda: mlm.lrt(fits()["three"],
                                                 mlm.fit_mixed(THREE, "y ~ t", "c")),
     ValueError, "not nested|the full model must have more"),
    ("bootstrap_lrt/reversed",
     lambda: mlm.bootstrap_lrt(fits()["rs"], fits()["ri"], n_boot=2, seed=1), ValueError,
     "pass the smaller model first"),
    ("nesting/names", lambda: mlm.nesting(fits()["ri"], fits()["rs"], names="ab"), TypeError,
     "names must be a pair of strings"),
    ("lrt/logistic-fit", lambda: mlm.lrt(fits()["logit"], fits()["ri"]), TypeError,
     "reduced must be a MixedFit .*not LogisticMixedFit; this function works on linear mixed "
     "models"),
    ("pre/frame", lambda: mlm.pre(TWO, fits()["ri"]), TypeError,
     "reference must be a MixedFit .*not DataFrame; fit a model first"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"compare/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in COMPARISONS]))
def test_comparisons(case):
    run(case)


def test_nested_fits_of_the_same_data_still_compare():
    res = mlm.lrt(fits()["ri"], fits()["rs"])
    assert res.statistic >= 0 and res.df == 2
    # the same rows, with the groups under another column name, are the same data
    renamed = _fit(TWO.assign(school=TWO["g"]), "y ~ x", "school", re_formula="x")
    assert_allclose(mlm.lrt(fits()["ri"], renamed).statistic, res.statistic, atol=1e-6)
    # a two-level model is nested in the three-level model of the same rows
    two = _fit(THREE, "y ~ t", "c")
    assert mlm.lrt(two, fits()["three"]).df == 1


# --- three-level and crossed input --------------------------------------------------------------

def _moved_child():
    out = THREE.copy()
    out.loc[out.index[:2], "s"] = "school9"  # two rows of child 0 now in another school
    return out


THREE_LEVEL = [
    ("unit-in-two-level3-units", lambda: mlm.fit_three_level(_moved_child(), "y ~ t", "c", "s"),
     ValueError, r"1 'c' unit\(s\) appear in more than one 's' unit \(e.g. 0 in "
                 r"'school9', 'school0'\), so the levels are not nested"),
    ("labels-restart", lambda: mlm.fit_three_level(THREE.assign(k=THREE["c"] % 5), "y ~ t",
                                                   "k", "s"),
     ValueError, "appear in more than one 's' unit.*If the labels of 'k' restart within each "
                 "'s' unit, make them unique"),
    ("swapped", lambda: mlm.fit_three_level(THREE, "y ~ t", "s", "c"), ValueError,
     "the levels look swapped"),
    ("same-column", lambda: mlm.fit_three_level(THREE, "y ~ t", "c", "c"), ValueError,
     r"level2 and level3 are the same column \('c'\)"),
    ("same-units-two-names",
     lambda: mlm.fit_three_level(THREE.assign(c2=THREE["c"].astype(str)), "y ~ t", "c", "c2"),
     ValueError, "grouping factors 'c2' and 'c' group the rows in the same way"),
    ("row-id-as-level2",
     lambda: mlm.fit_three_level(THREE.assign(row=np.arange(len(THREE))), "y ~ t", "row", "s"),
     ValueError, "every group in 'row' has a single row"),
    ("level1-variable-as-level3", lambda: mlm.fit_three_level(THREE, "y ~ 1", "c", "t"),
     ValueError, "appear in more than one 't' unit"),
    ("bars-in-formula", lambda: mlm.fit_three_level(THREE, "y ~ t + (1 | s)", "c", "s"),
     ValueError, r"formula is the fixed part only"),
    ("level3-missing", lambda: mlm.fit_three_level(THREE, "y ~ t", "c", "school"), KeyError,
     "level column 'school' not in data"),
    ("level3-nan",
     lambda: mlm.fit_three_level(THREE.assign(s=THREE["s"].where(THREE.index != 0)), "y ~ t",
                                 "c", "s"),
     ValueError, r"group column 's' has 1 missing value\(s\)"),
    ("level2-mixed-types",
     lambda: mlm.fit_three_level(THREE.assign(c=[v if v % 2 else str(v) for v in THREE["c"]]),
                                 "y ~ t", "c", "s"),
     ValueError, "group column 'c' mixes value types"),
    ("level3-as-list", lambda: mlm.fit_three_level(THREE, "y ~ t", "c", ["s"]), TypeError,
     r"level3 must be a column name \(str\), not list"),
    ("level3-float-ids",
     lambda: mlm.fit_three_level(THREE.assign(s=THREE["c"] // 5 + 0.5), "y ~ t", "c", "s"),
     ValueError, "group column 's' holds non-integer numbers"),
    ("crossed/same-partition",
     lambda: _fit(CROSSED.assign(a2=CROSSED["a"] + "x"), "y ~ x + (1 | a) + (1 | a2)"),
     ValueError, "grouping factors 'a' and 'a2' group the rows in the same way"),
    ("crossed/factor-is-a-row-id",
     lambda: _fit(CROSSED.assign(r=np.arange(len(CROSSED))), "y ~ x + (1 | a) + (1 | r)"),
     ValueError, "every group in 'r' has a single row"),
    ("crossed/boolean-factor",
     lambda: _fit(CROSSED.assign(flag=CROSSED["b"] > 4), "y ~ x + (1 | a) + (1 | flag)"),
     TypeError, "group column 'flag' is boolean"),
    ("nested-formula/same-partition",
     lambda: _fit(THREE.assign(s2=THREE["c"]), "y ~ t + (1 | s2/c)"), ValueError,
     "group the rows in the same way"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"levels/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in THREE_LEVEL]))
def test_three_level_and_crossed_input(case):
    run(case)


# --- binary outcomes: logistic mixed model and GEE ----------------------------------------------

def _separated():
    return TWO.assign(b=(TWO["x"] > 0).astype(int))


def _quasi():
    # every row of category "a" is a 1; the others vary: quasi-complete separation
    b = TWO["b"].where(TWO["cat"] != "a", 1)
    return TWO.assign(b=b)


BINARY_FNS = {"fit_logistic_mixed": mlm.fit_logistic_mixed, "fit_gee": mlm.fit_gee}
BINARY = [
    ("one-row-per-group", lambda fn: fn(TWO.groupby("g").head(1), "b ~ x", "g"), ValueError,
     r"every group in 'g' has a single row \(24 rows, 24 groups\)"),
    ("row-id-as-group", lambda fn: fn(TWO.assign(r2=np.arange(len(TWO))), "b ~ x", "r2"),
     ValueError, "every group in 'r2' has a single row"),
    ("complete-separation", lambda fn: fn(_separated(), "b ~ x", "g"), mlm.SeparationError,
     "^complete separation: 'x' predicts .*infinite"),
    ("quasi-complete-separation", lambda fn: fn(_quasi(), "b ~ x + C(cat)", "g"),
     mlm.SeparationError,
     r"^quasi-complete separation: a combination of .*'C\(cat\)\[T\.b\]'.* predicts .*"
     r"infinite"),
    ("outcome-not-binary", lambda fn: fn(TWO, "y ~ x", "g"), ValueError,
     "outcome 'y' must be coded 0/1"),
    ("outcome-two-other-codes", lambda fn: fn(TWO.assign(b=TWO["b"] + 1), "b ~ x", "g"),
     ValueError, r"outcome 'b' must be coded 0/1.*\b2\b"),
    ("outcome-boolean-text", lambda fn: fn(TWO.assign(b=TWO["b"].map({0: "no", 1: "yes"})),
                                           "b ~ x", "g"),
     TypeError, "outcome 'b' must be numeric"),
    ("conf-level-percent", lambda fn: fn(TWO, "b ~ x", "g", conf_level=95), ValueError,
     "conf_level must be between 0 and 1"),
    ("group-float-ids", lambda fn: fn(TWO.assign(g=TWO["z"]), "b ~ x", "g"), ValueError,
     "group column 'g' holds non-integer numbers"),
    ("rank-deficient", lambda fn: fn(TWO.assign(x2=TWO["x"] * 3), "b ~ x + x2", "g"),
     ValueError, "rank deficient"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"binary/{key}/{name}", lambda _, f=f, fn=fn: f(fn), err, pat)
     for key, f, err, pat in BINARY for name, fn in BINARY_FNS.items()]))
def test_binary_outcomes(case):
    run(case)


def test_a_group_with_all_ones_is_not_separation():
    # with a random intercept, a group whose outcomes are all 1 is ordinary (its effect is
    # shrunk): not an error
    data = TWO.assign(b=TWO["b"].where(TWO["g"] != 1, 1))
    fit = mlm.fit_logistic_mixed(data, "b ~ x", "g")
    assert np.isfinite(fit.loglik) and fit.n_groups == 24


# --- predictions on new data --------------------------------------------------------------------

PREDICT = [
    ("not-a-frame", lambda: fits()["ri"].predict(TWO.to_dict()), TypeError,
     "data must be a pandas DataFrame"),
    ("missing-predictor", lambda: fits()["ri"].predict(TWO.drop(columns="x")), KeyError,
     "column needed for the prediction 'x' not in data"),
    ("missing-group", lambda: fits()["ri"].predict(TWO.drop(columns="g")), KeyError,
     "column needed for the prediction 'g' not in data"),
    ("nan-predictor", lambda: fits()["ri"].predict(TWO.assign(x=TWO["x"].where(TWO.index > 0))),
     ValueError, r"column 'x' has 1 missing value\(s\)"),
    ("inf-predictor",
     lambda: fits()["ri"].predict(TWO.assign(x=TWO["x"].where(TWO.index > 0, np.inf))),
     ValueError, r"column 'x' has 1 infinite value\(s\)"),
    ("numbers-as-text", lambda: fits()["ri"].predict(TWO.assign(x=TWO["x"].astype(str))),
     TypeError, "column 'x' is numeric in the fitted data but has dtype .* numbers stored as "
                "text.*pd.to_numeric"),
    ("id-dtype-text", lambda: fits()["ri"].predict(TWO.assign(g=TWO["g"].astype(str))),
     TypeError, "group column 'g' holds text identifiers .* but number identifiers .* so no "
                "group would match"),
    ("id-dtype-category-text",
     lambda: fits()["ri"].predict(TWO.assign(g=TWO["g"].astype(str).astype("category"))),
     TypeError, "group column 'g' holds text identifiers"),
    ("id-dtype-text-new-levels-allowed",
     lambda: fits()["ri"].predict(TWO.assign(g=TWO["g"].astype(str)), allow_new_levels=True),
     TypeError, "group column 'g' holds text identifiers"),
    ("id-mixed-types", lambda: fits()["ri"].predict(
        TWO.assign(g=[v if i % 2 else str(v) for i, v in enumerate(TWO["g"])])),
     ValueError, "group column 'g' mixes value types"),
    ("unseen-groups", lambda: fits()["ri"].predict(TWO.assign(g=TWO["g"] + 100)), ValueError,
     r"192 row\(s\) of data belong to groups of 'g' that are not in the fitted data.*"
     r"allow_new_levels=True"),
    ("id-float-not-integer", lambda: fits()["ri"].predict(TWO.assign(g=TWO["g"] + 0.5)),
     ValueError, "group column 'g' holds non-integer numbers"),
    ("three-level/missing-level3",
     lambda: fits()["three"].predict(THREE.drop(columns="s")), KeyError,
     "column needed for the prediction 's' not in data"),
    ("three-level/id-dtype",
     lambda: fits()["three"].predict(THREE.assign(c=THREE["c"].astype(str))), TypeError,
     "group column 'c' holds text identifiers"),
    ("crossed/id-dtype",
     lambda: fits()["crossed"].predict(CROSSED.assign(b=CROSSED["b"].astype(str))), TypeError,
     "group column 'b' holds text identifiers"),
    ("crossed/unseen", lambda: fits()["crossed"].predict(CROSSED.assign(b=CROSSED["b"] + 50)),
     ValueError, "belong to groups of 'b' that are not in the fitted data"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"predict/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in PREDICT]))
def test_predict(case):
    run(case)


@pytest.mark.parametrize("dtype", ["int32", "Int64", "float64", "uint16", "category"])
def test_predict_matches_across_numeric_id_dtypes(dtype):
    # identifiers of the same kind match whatever their dtype: no silent population mean
    fit = fits()["ri"]
    new = TWO.assign(g=TWO["g"].astype(dtype))
    pd.testing.assert_series_equal(fit.predict(new), fit.predict())


# --- fit arguments ------------------------------------------------------------------------------

FIT_TAKERS = {
    "lrt/reduced": lambda f: mlm.lrt(f, fits()["rs"]),
    "lrt/full": lambda f: mlm.lrt(fits()["ri"], f),
    "bootstrap_lrt/reduced": lambda f: mlm.bootstrap_lrt(f, fits()["rs"], n_boot=2, seed=1),
    "compare_models/value": lambda f: mlm.compare_models({"a": fits()["ri"], "b": f}),
    "pre/fit": lambda f: mlm.pre(fits()["ri"], f),
    "nesting/full": lambda f: mlm.nesting(fits()["ri"], f),
    "wald_test": lambda f: mlm.wald_test(f, "x"),
    "reliability": lambda f: mlm.reliability(f),
    "residual_table": lambda f: mlm.residual_table(f),
    "group_residual_sd": lambda f: mlm.group_residual_sd(f),
    "influence_groups": lambda f: mlm.influence_groups(f),
    "plot_residuals": lambda f: mlm.plot_residuals(f),
    "model_matrices": lambda f: mlm.model_matrices(f, 1),
    "loglik_at": lambda f: mlm.loglik_at(f, 1.0, 1.0),
    "marginal_loglik": lambda f: mlm.marginal_loglik(f),
    "gls_fixed_effects": lambda f: mlm.gls_fixed_effects(f),
    "simulate_from_fit": lambda f: mlm.simulate_from_fit(f, n_sims=1, seed=1),
    "parametric_bootstrap": lambda f: mlm.parametric_bootstrap(f, n_boot=1, seed=1),
    "compare_with_published": lambda f: mlm.compare_with_published(
        pd.DataFrame({"quantity": ["sigma2"], "published": [1.0]}), f),
    "plot_caterpillar": lambda f: mlm.plot_caterpillar(f),
    "plot_shrinkage": lambda f: mlm.plot_shrinkage(f),
    "plot_fitted_lines": lambda f: mlm.plot_fitted_lines(f, "x"),
}
NOT_FITS = {
    "frame": (lambda: TWO, "not DataFrame; fit a model first"),
    "logistic": (lambda: fits()["logit"], "not LogisticMixedFit; this function works on linear "
                                          "mixed models"),
    "none": (lambda: None, "not NoneType"),
}


def _fit_argument_cases():
    out = []
    for key, call in FIT_TAKERS.items():
        arg = key.split("/")[1] if "/" in key else "fit"
        arg = {"value": r"fits\['b'\]"}.get(arg, arg)
        for kind, (make, tail) in NOT_FITS.items():
            if kind == "none" and key not in ("lrt/reduced", "reliability", "plot_caterpillar"):
                continue
            out.append(Case(f"fit-arg/{kind}/{key}", lambda _, c=call, m=make: c(m()),
                            TypeError, f"{arg} must be a MixedFit .*{tail}"))
    return out


MULTI = {
    "reliability": lambda f: mlm.reliability(f),
    "residual_table": lambda f: mlm.residual_table(f),
    "group_residual_sd": lambda f: mlm.group_residual_sd(f),
    "influence_groups": lambda f: mlm.influence_groups(f),
    "plot_residuals": lambda f: mlm.plot_residuals(f),
    "model_matrices": lambda f: mlm.model_matrices(f, 1),
    "loglik_at": lambda f: mlm.loglik_at(f, 1.0, 1.0),
    "marginal_loglik": lambda f: mlm.marginal_loglik(f),
    "gls_fixed_effects": lambda f: mlm.gls_fixed_effects(f),
    "plot_caterpillar": lambda f: mlm.plot_caterpillar(f),
    "plot_fitted_lines": lambda f: mlm.plot_fitted_lines(f, "t"),
}


def _multi_cases():
    return [Case(f"one-factor-tool/{kind}/{key}", lambda _, c=call, k=kind: c(fits()[k]),
                 ValueError, r"works on a model with one grouping factor; this fit has 2")
            for key, call in MULTI.items() for kind in ("three", "crossed")
            if not (kind == "crossed" and key == "plot_fitted_lines")]


@pytest.mark.parametrize("case", params(_fit_argument_cases() + _multi_cases()))
def test_fit_arguments(case):
    run(case)


# --- methods of a fit ---------------------------------------------------------------------------

METHODS = [
    ("icc/unknown-level", lambda: fits()["three"].icc("school"), KeyError,
     "'school' is not a grouping factor of this model; its factors are"),
    ("icc/random-slope", lambda: fits()["rs"].icc(), ValueError,
     "the ICC of a random-slope model depends on the predictor value"),
    ("icc/several-factors-no-level", lambda: fits()["three"].icc(), ValueError,
     "several grouping factors"),
    ("random_effects/level-number", lambda: fits()["three"].random_effects(level=2), TypeError,
     r"level must be a grouping factor name \(str\)"),
    ("group_coefficients/unknown-level",
     lambda: fits()["three"].group_coefficients(level="g"), KeyError,
     "'g' is not a grouping factor"),
    ("refit/wrong-length", lambda: fits()["ri"].refit(np.zeros(3)), ValueError,
     r"y must have 192 values \(one per row of the fit\)"),
    ("refit/nan", lambda: fits()["ri"].refit(np.full(len(TWO), np.nan)), ValueError,
     r"y must be outcome values \(finite numbers\), not nan"),
    ("refit/strings", lambda: fits()["ri"].refit(TWO["y"].astype(str)), TypeError,
     "y must be a number or an array of numbers"),
    ("simulate/zero", lambda: fits()["ri"].simulate(0, seed=1), ValueError,
     "n_sims must be an integer >= 1, not 0"),
    ("drop_groups/unknown", lambda: fits()["ri"].drop_groups([999]), KeyError,
     r"group\(s\) \[999\] are not groups of 'g'"),
    ("objective/wrong-length", lambda: fits()["rs"].objective([1.0]), ValueError,
     "theta must have 3 values"),
    ("group/several-factors", lambda: fits()["crossed"].group, ValueError,
     "several grouping factors"),
    ("statsmodels_result/several-factors", lambda: fits()["three"].statsmodels_result(),
     ValueError, "several grouping factors"),
    ("compare_with_published/T-ambiguous", lambda: mlm.compare_with_published(
        pd.DataFrame({"quantity": ["T[Intercept,Intercept]"], "published": [0.1]}),
        fits()["three"]), ValueError, r"is ambiguous: the fit has several grouping factors"),
    ("compare_with_published/T-unknown-level", lambda: mlm.compare_with_published(
        pd.DataFrame({"quantity": ["T[school][Intercept,Intercept]"], "published": [0.1]}),
        fits()["three"]), KeyError, "'school' is not a grouping factor of the fit"),
    ("compare_with_published/icc-several", lambda: mlm.compare_with_published(
        pd.DataFrame({"quantity": ["icc"], "published": [0.1]}), fits()["three"]),
     ValueError, "several grouping factors"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"method/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in METHODS]))
def test_fit_methods(case):
    run(case)


# --- warnings: only where the answer is still right, at the caller's line ------------------------

def _no_between_variance(frame, group):
    return frame.assign(y=frame["y"] - frame.groupby(group)["y"].transform("mean"))


WARNINGS = [
    ("fit_null", lambda: mlm.fit_null(_no_between_variance(TWO, "g"), "y", "g")),
    ("fit_mixed", lambda: mlm.fit_mixed(_no_between_variance(TWO, "g"), "y ~ x", "g")),
    ("icc_reml", lambda: mlm.icc_reml(_no_between_variance(TWO, "g"), "y", "g")),
    ("within_between", lambda: mlm.within_between(_no_between_variance(TWO, "g"), "y", "x",
                                                  "g")),
    ("fit_three_level", lambda: mlm.fit_three_level(_no_between_variance(THREE, "s"), "y ~ 1",
                                                    "c", "s")),
    ("crossed", lambda: mlm.fit_mixed(_no_between_variance(CROSSED, "b"),
                                      "y ~ 1 + (1 | a) + (1 | b)")),
]


@pytest.mark.parametrize("case", params(
    [Case(f"warning/boundary/{key}", lambda _, f=f: f(), mlm.BoundaryWarning,
          "boundary \\(singular\\) fit: the variance of 'Intercept' across '\\w+' is "
          "estimated at zero", warns=True) for key, f in WARNINGS]))
def test_boundary_warnings(case):
    run(case)


def test_compare_with_statsmodels_reports_a_failing_optimizer_as_data():
    # statsmodels' lbfgs inverts a singular matrix on many simulated data sets; that is a row
    # of the table, not a crash of the call
    data = mlm.simulate_two_level(20, 10, gamma00=0, gamma10=1, tau00=0.5, sigma2=1, seed=0)
    tab = mlm.compare_with_statsmodels(data, "y ~ x", "group")
    row = tab.loc["statsmodels lbfgs"]
    assert (row["messages"].startswith("failed: ") and not row["converged"]) or np.isfinite(
        row["loglik"])
    assert np.isfinite(tab.loc["mlm_lessons.fit_mixed", "loglik"])


# --- generalized linear mixed models (fit_glmm) ------------------------------------------------

def _glmm(data, formula="b ~ x + (1 | g)", **kwargs):
    return mlm.fit_glmm(data, formula, **kwargs)


def _zero_category():
    # every count of category "a" is 0: its rate ratio is infinite
    return TWO.assign(k=TWO["k"].where(TWO["cat"] != "a", 0))


def _trials_below_successes():
    return TWO.assign(succ=TWO["k"], fail=TWO["n"] - TWO["k"] - 3)


GLMM = [
    ("family-number", lambda: _glmm(TWO, family=1), TypeError,
     "family must be a string, one of"),
    ("family-unknown", lambda: _glmm(TWO, family="gaussian"), ValueError,
     r"unknown family 'gaussian'.*use fit_mixed"),
    ("family-none", lambda: _glmm(TWO, family=None), TypeError, "family must be a string"),
    ("formula-list", lambda: _glmm(TWO, ["b ~ x + (1 | g)"]), TypeError,
     "formula must be a string such as 'y ~ x \\+ \\(1 \\| g\\)', not list"),
    ("formula-no-random-part", lambda: _glmm(TWO, "b ~ x"), ValueError,
     "has no random-effects term"),
    ("formula-no-outcome", lambda: _glmm(TWO, "x + (1 | g)"), ValueError,
     "needs an outcome"),
    ("formula-unknown-group", lambda: _glmm(TWO, "b ~ x + (1 | school)"), KeyError,
     "'school' not in data"),
    ("formula-unknown-predictor", lambda: _glmm(TWO, "b ~ ses + (1 | g)"), KeyError,
     "'ses' not in data"),
    ("binomial/not-0-1", lambda: _glmm(TWO, "y ~ x + (1 | g)"), ValueError,
     r"outcome 'y' must be coded 0/1 for family='binomial'.*cbind"),
    ("binomial/all-ones", lambda: _glmm(TWO.assign(b=1)), ValueError,
     r"outcome 'b' is constant \(a success in every row\)"),
    ("binomial/all-zeros", lambda: _glmm(TWO.assign(b=0)), ValueError,
     r"outcome 'b' is constant \(0 \(a failure\) in every row\)"),
    ("binomial/one-row-per-group", lambda: _glmm(TWO.assign(r2=np.arange(len(TWO))),
                                                 "b ~ x + (1 | r2)"), ValueError,
     r"every group in 'r2' has a single row .*0/1 outcome"),
    ("binomial/complete-separation", lambda: _glmm(TWO.assign(b=(TWO["x"] > 0).astype(int))),
     mlm.SeparationError, r"^complete separation: 'x' predicts the outcome perfectly"),
    ("binomial/quasi-separation",
     lambda: _glmm(TWO.assign(b=TWO["b"].where(TWO["cat"] != "a", 1)), "b ~ x + cat + (1 | g)"),
     mlm.SeparationError, r"^quasi-complete separation: 'cat\[T\.b\]'|^quasi-complete "
                          r"separation: .*'cat"),
    ("binomial/outcome-boolean-text",
     lambda: _glmm(TWO.assign(b=TWO["b"].map({0: "no", 1: "yes"}))), TypeError,
     "outcome 'b' must be numeric"),
    ("cbind/successes-above-trials",
     lambda: _glmm(_trials_below_successes(), "cbind(succ, fail) ~ x + (1 | g)"), ValueError,
     r"negative number of failures \(successes above trials\)"),
    ("cbind/non-integer",
     lambda: _glmm(TWO.assign(succ=TWO["k"] + 0.5, fail=2), "cbind(succ, fail) ~ x + (1 | g)"),
     ValueError, "non-integer number of successes"),
    ("cbind/missing-column", lambda: _glmm(TWO, "cbind(succ, fail) ~ x + (1 | g)"), KeyError,
     "variable in formula 'succ', 'fail' not in data"),
    ("poisson/negative", lambda: _glmm(TWO.assign(k=TWO["k"] - 3), "k ~ x + (1 | g)",
                                       family="poisson"), ValueError,
     r"outcome 'k' must be a count .* row\(s\) are negative"),
    ("poisson/fractions", lambda: _glmm(TWO, "y ~ x + (1 | g)", family="poisson"), ValueError,
     r"outcome 'y' must be a count .*not whole numbers.*offset\(log\(exposure\)\)"),
    ("poisson/all-zero", lambda: _glmm(TWO.assign(k=0), "k ~ x + (1 | g)", family="poisson"),
     ValueError, "outcome 'k' is 0 in every row"),
    ("poisson/zero-category", lambda: _glmm(_zero_category(), "k ~ x + cat + (1 | g)",
                                            family="poisson"),
     mlm.SeparationError, r"the counts are 0 wherever .*'cat\[T\.b\]'|counts are 0 wherever"),
    ("negative_binomial/fractions",
     lambda: _glmm(TWO, "y ~ x + (1 | g)", family="negative_binomial"), ValueError,
     "family='negative_binomial'; .*not whole numbers"),
    ("n_agq/string", lambda: _glmm(TWO, n_agq="5"), TypeError,
     r"n_agq must be an integer >= 1, not '5' \(a string: write 5 without quotes\)"),
    ("n_agq/slope", lambda: _glmm(TWO, "b ~ x + (x | g)", n_agq=5), ValueError,
     r"n_agq=5 \(adaptive quadrature\) needs a single scalar random effect.*2 on 'g'"),
    ("n_agq/crossed", lambda: _glmm(TWO, "b ~ x + (1 | g) + (1 | cat)", n_agq=3), ValueError,
     "needs a single scalar random effect"),
    ("n_agq/too-many", lambda: _glmm(TWO, n_agq=500), ValueError,
     "n_agq=500 is far more nodes than needed"),
    ("weights/list", lambda: _glmm(TWO, weights=["n"]), TypeError,
     r"weights must be a column name \(str\), not list"),
    ("weights/missing", lambda: _glmm(TWO, weights="trials"), KeyError,
     "'trials' not in data"),
    ("weights/text", lambda: _glmm(TWO.assign(n=TWO["n"].astype(str)), weights="n"),
     TypeError, "'n' .*numbers stored as text"),
    ("weights/negative", lambda: _glmm(TWO.assign(n=-1), weights="n"), ValueError,
     "weights column 'n' has negative trials"),
    ("weights/poisson", lambda: _glmm(TWO, "k ~ x + (1 | g)", family="poisson", weights="n"),
     ValueError, "family='poisson' takes no weights"),
    ("weights/with-cbind",
     lambda: _glmm(TWO.assign(f=TWO["n"] - TWO["k"]), "cbind(k, f) ~ x + (1 | g)",
                   weights="n"), ValueError, "the formula already gives the trials"),
    ("weights/not-a-proportion", lambda: _glmm(TWO.assign(p=TWO["k"]), "p ~ x + (1 | g)",
                                               weights="n"), ValueError,
     "with weights= the outcome 'p' must be a proportion between 0 and 1"),
    ("weights/missing-value", lambda: _glmm(TWO.assign(n=TWO["n"].where(TWO.index > 0)),
                                            weights="n"), ValueError,
     r"column 'n' has 1 missing value\(s\)"),
    ("offset/number", lambda: _glmm(TWO, "k ~ x + (1 | g)", family="poisson", offset=1.0),
     TypeError, r"offset must be a column name \(str\), not float"),
    ("offset/missing", lambda: _glmm(TWO, "k ~ x + (1 | g)", family="poisson",
                                     offset="log_exposure"), KeyError,
     "'log_exposure' not in data"),
    ("offset/log-of-zero", lambda: _glmm(TWO.assign(e=0.0), "k ~ x + offset(np.log(e)) + (1 | g)",
                                         family="poisson"), ValueError,
     "infinite"),
    ("design/outcome-among-predictors", lambda: _glmm(TWO, "b ~ b + x + (1 | g)"), ValueError,
     "the outcome 'b' is also among the predictors"),
    ("design/rank-deficient", lambda: _glmm(TWO.assign(x2=2 * TWO["x"]), "b ~ x + x2 + (1 | g)"),
     ValueError, r"rank deficient.*'x', 'x2'"),
    ("design/log-of-zero", lambda: _glmm(TWO.assign(z0=0.0), "b ~ np.log(z0) + (1 | g)"),
     ValueError, r"infinite values \(a log of 0"),
    ("design/date-predictor",
     lambda: _glmm(TWO.assign(d=pd.date_range("2020-01-01", periods=len(TWO))),
                   "b ~ d + (1 | g)"), TypeError, "'d' .*dates or times"),
    ("design/slope-of-level2-variable", lambda: _glmm(TWO, "k ~ x + (1 + z | g)",
                                                      family="poisson"), ValueError,
     "'z' is constant within every group of 'g'"),
    ("design/one-group", lambda: _glmm(TWO.assign(one=1), "b ~ x + (1 | one)"), ValueError,
     "group column 'one' has 1 distinct value"),
    ("design/same-partition", lambda: _glmm(TWO, "b ~ x + (1 | g) + (1 | gs)"), ValueError,
     "grouping factors 'g' and 'gs' group the rows in the same way"),
    ("design/group-is-predictor", lambda: _glmm(TWO, "b ~ x + g + (1 | g)"), ValueError,
     "the group column 'g' is also among the predictors"),
    ("design/float-ids", lambda: _glmm(TWO.assign(g=TWO["z"])), ValueError,
     "group column 'g' holds non-integer numbers"),
    ("design/too-many-effects",
     lambda: _glmm(TWO.groupby("g").head(2), "k ~ x + (1 + x | g)", family="poisson"),
     ValueError, r"24 groups x 2 random effects of 'g' are more than the 48 observations"),
    ("data/dict", lambda: _glmm(TWO.to_dict()), TypeError, "data must be a pandas DataFrame"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"glmm/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in GLMM]))
def test_fit_glmm_input(case):
    run(case)


# --- methods of a GLMM fit ----------------------------------------------------------------------

_NEW = TWO.assign(g=TWO["g"] + 100)  # groups the fit has not seen
GLMM_METHODS = [
    ("predict/scale", lambda: fits()["glmm_b"].predict(scale="probability"), ValueError,
     "scale must be 'response' or 'link', not 'probability'"),
    ("predict/scale-number", lambda: fits()["glmm_b"].predict(scale=1), TypeError,
     "scale must be 'response' or 'link', not 1"),
    ("predict/new-groups", lambda: fits()["glmm_b"].predict(_NEW), ValueError,
     r"192 row\(s\) of data belong to groups of 'g' that are not in the fitted data.*"
     r"allow_new_levels=True"),
    ("predict/ids-as-text", lambda: fits()["glmm_p"].predict(TWO.assign(g=TWO["g"].astype(str))),
     TypeError, "group column 'g' holds text identifiers .* but number identifiers"),
    ("predict/numbers-as-text",
     lambda: fits()["glmm_b"].predict(TWO.assign(x=TWO["x"].astype(str))), TypeError,
     "column 'x' is numeric in the fitted data"),
    ("predict/missing-column", lambda: fits()["glmm_b"].predict(TWO.drop(columns="x")),
     KeyError, "column needed for the prediction 'x' not in data"),
    ("predict/not-a-frame", lambda: fits()["glmm_b"].predict(TWO.to_numpy()), TypeError,
     "data must be a pandas DataFrame"),
    ("residuals/kind", lambda: fits()["glmm_p"].residuals(kind="deviance"), ValueError,
     "kind must be 'pearson' or 'response', not 'deviance'"),
    ("distribution_variance/method", lambda: fits()["glmm_p"].distribution_variance("log"),
     ValueError, "method must be one of 'lognormal', 'trigamma', 'delta', not 'log'"),
    ("r2/method", lambda: fits()["glmm_p"].r2("Delta"), ValueError,
     "method must be one of .*not 'Delta'; did you mean 'delta'"),
    ("icc/unknown-level", lambda: fits()["glmm_b"].icc("school"), KeyError,
     "'school' is not a grouping factor of this model"),
    ("icc/level-number", lambda: fits()["glmm_b"].icc(2), TypeError,
     r"level must be a grouping factor name \(str\)"),
    ("icc/random-slope", lambda: fits()["glmm_ps"].icc(), ValueError,
     "random-slope model depends on the predictor value|random slope"),
    ("variance_partition/random-slope", lambda: fits()["glmm_ps"].variance_partition(),
     ValueError, "random-slope model depends on the predictor value|random slope"),
    ("odds_ratios/poisson", lambda: fits()["glmm_p"].odds_ratios(), ValueError,
     "odds ratios belong to binomial models.*use rate_ratios"),
    ("rate_ratios/binomial", lambda: fits()["glmm_b"].rate_ratios(), ValueError,
     "rate ratios belong to count models.*use odds_ratios"),
    ("overdispersion/binary", lambda: fits()["glmm_b"].overdispersion(), ValueError,
     "overdispersion is not defined for 0/1 outcomes"),
    ("refit/wrong-length", lambda: fits()["glmm_b"].refit(np.zeros(3)), ValueError,
     r"y must have 192 values \(one per row of the fit\)"),
    ("refit/not-binary", lambda: fits()["glmm_b"].refit(TWO["k"].to_numpy()), ValueError,
     "outcome 'b' must be coded 0/1"),
    ("refit/negative-counts", lambda: fits()["glmm_p"].refit(-TWO["k"].to_numpy()), ValueError,
     "outcome 'k' must be a count"),
    ("refit/strings", lambda: fits()["glmm_b"].refit(TWO["b"].astype(str)), TypeError,
     "y must be a number or an array of numbers"),
    ("refit/separated", lambda: fits()["glmm_b"].refit((TWO["x"] > 0).astype(int).to_numpy()),
     mlm.SeparationError, "complete separation: 'x'"),
    ("deviance_function/wrong-length", lambda: fits()["glmm_b"].deviance_function([1.0]),
     ValueError, "params must have 3 values"),
    ("deviance_function/strings", lambda: fits()["glmm_b"].deviance_function(["1", "2", "3"]),
     TypeError, "params must be a number or an array of numbers"),
    ("as-mixed-fit/lrt", lambda: mlm.lrt(fits()["glmm_b"], fits()["ri"]), TypeError,
     "reduced must be a MixedFit .*not GLMMFit; this function works on linear mixed models"),
    ("as-mixed-fit/confint_variance", lambda: mlm.confint_variance(fits()["glmm_p"]),
     TypeError, "fit must be a MixedFit .*not GLMMFit"),
    ("as-mixed-fit/reliability", lambda: mlm.reliability(fits()["glmm_b"]), TypeError,
     "fit must be a MixedFit .*not GLMMFit"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"glmm-method/{key}", lambda _, f=f: f(), err, pat)
     for key, f, err, pat in GLMM_METHODS]))
def test_glmm_methods(case):
    run(case)


# --- intervals of the variance components and the methods that probe a fit ----------------------

INTERVALS = [
    ("confint_variance/method", lambda: mlm.confint_variance(fits()["ri"], method="wald"),
     ValueError, "method must be 'profile' or 'bootstrap', not 'wald'"),
    ("confint_variance/method-case", lambda: mlm.confint_variance(fits()["ri"],
                                                                  method="Profile"),
     ValueError, "not 'Profile'; did you mean 'profile'"),
    ("confint_variance/method-none", lambda: mlm.confint_variance(fits()["ri"], method=None),
     TypeError, "method must be 'profile' or 'bootstrap', not None"),
    ("confint_variance/n_boot-too-few",
     lambda: mlm.confint_variance(fits()["ri"], method="bootstrap", n_boot=5), ValueError,
     "n_boot must be an integer >= 10, not 5"),
    ("confint_variance/frame", lambda: mlm.confint_variance(TWO), TypeError,
     "fit must be a MixedFit .*not DataFrame"),
    ("MixedFit.confint/method", lambda: fits()["ri"].confint(method="boot"), ValueError,
     "method must be 'profile' or 'bootstrap', not 'boot'"),
    ("deviance_at/sigma2-string", lambda: fits()["ri"].deviance_at(fits()["ri"].taus, "1"),
     TypeError, "sigma2 must be a number, not the string '1'"),
    ("deviance_at/sigma2-zero", lambda: fits()["ri"].deviance_at(fits()["ri"].taus, 0.0),
     ValueError, r"sigma2 must be a positive number \(the residual variance\), not 0"),
    ("deviance_at/sigma2-nan", lambda: fits()["ri"].deviance_at(fits()["ri"].taus, np.nan),
     ValueError, "sigma2 must be a positive number .*not nan"),
    ("deviance_at/T-shape", lambda: fits()["rs"].deviance_at({"g": np.eye(3)}, 1.0), ValueError,
     r"T of 'g' must be 2 x 2, not \(3, 3\)"),
    ("deviance_at/T-not-covariance",
     lambda: fits()["rs"].deviance_at({"g": [[1.0, 2.0], [2.0, 1.0]]}, 1.0), ValueError,
     "T of 'g' must be a covariance matrix"),
    ("deviance_at/T-strings", lambda: fits()["ri"].deviance_at({"g": "1"}, 1.0), TypeError,
     "the T of 'g' must be a number or an array of numbers, not the string '1'"),
    ("deviance_at/unknown-factor",
     lambda: fits()["ri"].deviance_at({"g": 1.0, "school": 1.0}, 1.0), KeyError,
     "taus has a matrix for 'school', which is not a grouping factor"),
    ("deviance_at/missing-factor", lambda: fits()["three"].deviance_at({"c": 1.0}, 1.0),
     KeyError, "taus has no covariance matrix for 's'"),
    ("deviance_at/matrix-for-several", lambda: fits()["three"].deviance_at(1.0, 1.0),
     ValueError, "several grouping factors"),
    ("objective/strings", lambda: fits()["ri"].objective(["1"]), TypeError,
     "theta must be a number or an array of numbers"),
    ("objective/nan", lambda: fits()["ri"].objective([np.nan]), ValueError,
     "theta must be a finite number, not nan|theta must be .*nan"),
    ("drop_groups/empty", lambda: fits()["ri"].drop_groups([]), ValueError,
     "labels is empty: name the group"),
    ("drop_groups/level-number", lambda: fits()["three"].drop_groups([1], level=2), TypeError,
     r"level must be a grouping factor name \(str\)"),
    ("drop_groups/unknown-level", lambda: fits()["ri"].drop_groups([1], level="school"),
     KeyError, "'school' is not a grouping factor of this model"),
    ("drop_groups/several-factors", lambda: fits()["three"].drop_groups([1]), ValueError,
     "several grouping factors"),
    ("drop_groups/wrong-id-type", lambda: fits()["ri"].drop_groups(["1"]), KeyError,
     r"group\(s\) \['1'\] are not groups of 'g'"),
    ("drop_groups/all-but-one", lambda: fits()["ri"].drop_groups(list(range(2, 25))),
     ValueError, "group column 'g' has 1 distinct value"),
    ("drop_groups/all", lambda: fits()["ri"].drop_groups(list(range(1, 25))), ValueError,
     "dropping these groups leaves no rows"),
    ("predict/new-child-three-level",
     lambda: fits()["three"].predict(THREE.assign(c=THREE["c"] + 1000)), ValueError,
     r"belong to groups of 'c' .*not in the fitted data.*allow_new_levels=True"),
    ("predict/new-levels-wrong-dtype",
     lambda: fits()["crossed"].predict(CROSSED.assign(b=CROSSED["b"].astype(float) + 0.5),
                                       allow_new_levels=True), ValueError,
     "group column 'b' holds non-integer numbers"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"interval/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in INTERVALS]))
def test_intervals_and_probes(case):
    run(case)


def test_allow_new_levels_predicts_the_population_average_for_new_groups():
    fit = fits()["ri"]
    new = TWO.assign(g=TWO["g"] + 100)
    got = fit.predict(new, allow_new_levels=True)
    assert_allclose(got.to_numpy(), fit.predict(new, conditional=False).to_numpy())
    g = fits()["glmm_p"]
    assert_allclose(g.predict(new, allow_new_levels=True).to_numpy(),
                    g.predict(new, conditional=False).to_numpy())


# --- publication tables, sampling and efficiency studies ----------------------------------------

_EFF = dict(n_groups=5, group_size=5, gamma10=1.0, tau00=1.0, tau11=0.5, sigma2=1.0, seed=1)
REPORTS = [
    ("model_table/list", lambda: mlm.model_table([fits()["ri"]]), TypeError,
     r"fits must be a dict of name -> MixedFit, not list; e.g. model_table\("),
    ("model_table/empty", lambda: mlm.model_table({}), ValueError, "fits is empty"),
    ("model_table/key-number", lambda: mlm.model_table({1: fits()["ri"]}), TypeError,
     "the keys of fits are the names to show"),
    ("model_table/glmm", lambda: mlm.model_table({"a": fits()["glmm_b"]}), TypeError,
     r"fits\['a'\] must be a MixedFit .*not GLMMFit"),
    ("model_table/se-string", lambda: mlm.model_table({"a": fits()["ri"]}, se="False"),
     TypeError, "se must be True or False, not 'False'"),
    ("model_table/stars-int", lambda: mlm.model_table({"a": fits()["ri"]}, stars=1),
     TypeError, "stars must be True or False, not 1"),
    ("model_table/random", lambda: mlm.model_table({"a": fits()["ri"]}, random="SD"),
     ValueError, "random must be 'variance' or 'sd', not 'SD'; did you mean 'sd'"),
    ("model_table/digits-float", lambda: mlm.model_table({"a": fits()["ri"]}, digits=2.0),
     TypeError, r"digits must be an integer >= 0, not 2.0 \(a float: write 2\)"),
    ("model_table/fit_statistics-string",
     lambda: mlm.model_table({"a": fits()["ri"]}, fit_statistics="aic"), TypeError,
     "fit_statistics must be a list of names"),
    ("model_table/fit_statistics-unknown",
     lambda: mlm.model_table({"a": fits()["ri"]}, fit_statistics=["r2"]), ValueError,
     "fit_statistics must be distinct names from"),
    ("model_table/title-number", lambda: mlm.model_table({"a": fits()["ri"]}, title=3),
     TypeError, "title must be a string or None, not int"),
    ("model_table/labels-list", lambda: mlm.model_table({"a": fits()["ri"]}, labels=["x"]),
     TypeError, "labels must be a dict of term -> printed name"),
    ("sampling_study/truth-frame",
     lambda: mlm.sampling_study(TWO, {"a": fits()["ri"]}, n_sims=2, seed=1), TypeError,
     "truth must be a MixedFit .*not DataFrame"),
    ("sampling_study/fits-list",
     lambda: mlm.sampling_study(fits()["ri"], [fits()["ri"]], n_sims=2, seed=1), TypeError,
     "fits must be a dict of name -> MixedFit, not list; e.g. sampling_study"),
    ("sampling_study/other-data",
     lambda: mlm.sampling_study(fits()["ri"], {"three": fits()["three"]}, n_sims=2, seed=1),
     ValueError, r"fits\['three'\] was not fitted to the data of truth"),
    ("sampling_study/extra-fixed-effect",
     lambda: mlm.sampling_study(fits()["ri"], {"z": fits()["ri_z"]}, n_sims=2, seed=1),
     ValueError, r"fits\['z'\] has fixed effects that truth lacks \(z\)"),
    ("sampling_study/n_sims-one",
     lambda: mlm.sampling_study(fits()["ri"], {"a": fits()["ri"]}, n_sims=1, seed=1),
     ValueError, "n_sims must be an integer >= 2, not 1"),
    ("sampling_study/seed-none",
     lambda: mlm.sampling_study(fits()["ri"], {"a": fits()["ri"]}, n_sims=2, seed=None),
     TypeError, "seed must be a non-negative integer"),
    ("sampling_study/conf_level-percent",
     lambda: mlm.sampling_study(fits()["ri"], {"a": fits()["ri"]}, n_sims=2, seed=1,
                                conf_level=95), ValueError,
     "conf_level must be between 0 and 1 .*write conf_level=0.95"),
    ("efficiency_study/tau00-string",
     lambda: mlm.efficiency_study(2, **{**_EFF, "tau00": "0.2"}), TypeError,
     "tau00 must be a number, not the string '0.2'"),
    ("efficiency_study/seed-negative", lambda: mlm.efficiency_study(2, **{**_EFF, "seed": -1}),
     ValueError, "seed must be a non-negative integer.*not -1"),
    ("efficiency_study/n_sims-float", lambda: mlm.efficiency_study(2.0, **_EFF), TypeError,
     r"n_sims must be an integer >= 2, not 2.0 \(a float: write 2\)"),
    ("efficiency_study/conf_level-string",
     lambda: mlm.efficiency_study(2, **_EFF, conf_level="0.95"), TypeError,
     "conf_level must be a number, not the string '0.95'"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"report/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in REPORTS]))
def test_reports_and_studies(case):
    run(case)
