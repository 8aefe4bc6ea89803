"""Adversarial inputs, part 1: frames, columns, group identifiers and arguments.

Each case is one awkward but realistic input to one public function; it asserts the exception
(type and a message that names the culprit) and that no frame was modified (``_awkward.run``).
The same mistake is tried on every function it applies to, with one expected message, so
these tests also check that every function reports it the same way. Part 2
(``test_adversarial_fits.py``) holds degenerate designs, comparisons of fits, three-level,
crossed, logistic and GEE input, predictions and fit arguments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _awkward import TWO, Case, fits, params, run

import mlm_lessons as mlm

# --- every function that takes a long-format frame, called with its roles --------------------
#
# Each adapter takes (data, y, g, x): the outcome (or the column summarised), the group and
# the predictor, so that one mistake can be put into any role of any function.


FRAME_FUNCTIONS = {
    "center": lambda d, y, g, x: mlm.center(d, y, group=g),
    "add_group_mean": lambda d, y, g, x: mlm.add_group_mean(d, y, g),
    "group_means": lambda d, y, g, x: mlm.group_means(d, [y], g),
    "cluster_sizes": lambda d, y, g, x: mlm.cluster_sizes(d, g),
    "describe_levels": lambda d, y, g, x: mlm.describe_levels(d, g, level1=[y]),
    "variable_levels": lambda d, y, g, x: mlm.variable_levels(d, g, columns=[y]),
    "icc_slide": lambda d, y, g, x: mlm.icc_slide(d, y, g),
    "icc_anova": lambda d, y, g, x: mlm.icc_anova(d, y, g),
    "icc_reml": lambda d, y, g, x: mlm.icc_reml(d, y, g),
    "per_group_slopes": lambda d, y, g, x: mlm.per_group_slopes(d, y, x, g),
    "compare_approaches": lambda d, y, g, x: mlm.compare_approaches(d, y, x, g),
    "within_between": lambda d, y, g, x: mlm.within_between(d, y, x, g),
    "plot_within_between": lambda d, y, g, x: mlm.plot_within_between(d, y, x, g),
    "plot_group_means": lambda d, y, g, x: mlm.plot_group_means(d, y, g),
    "plot_within_spread": lambda d, y, g, x: mlm.plot_within_spread(d, y, g),
    "plot_spaghetti": lambda d, y, g, x: mlm.plot_spaghetti(d, y, x, g),
    "fit_null": lambda d, y, g, x: mlm.fit_null(d, y, g),
    "fit_random_intercept": lambda d, y, g, x: mlm.fit_random_intercept(d, y, g,
                                                                        predictors=[x]),
    "fit_random_coefficient": lambda d, y, g, x: mlm.fit_random_coefficient(d, y, g,
                                                                            predictors=[x]),
    "fit_full_model": lambda d, y, g, x: mlm.fit_full_model(d, y, g, level1=[x],
                                                            level2=["z"]),
    "fit_mixed": lambda d, y, g, x: mlm.fit_mixed(d, f"{y} ~ {x}", g),
    "fit_three_level": lambda d, y, g, x: mlm.fit_three_level(d, f"{y} ~ {x}", g, "r"),
    "design_matrices": lambda d, y, g, x: mlm.design_matrices(d, f"{y} ~ {x}", g),
    "compare_with_statsmodels": lambda d, y, g, x: mlm.compare_with_statsmodels(
        d, f"{y} ~ {x}", g),
    "fit_logistic_mixed": lambda d, y, g, x: mlm.fit_logistic_mixed(d, f"{y} ~ {x}", g),
    "fit_gee": lambda d, y, g, x: mlm.fit_gee(d, f"{y} ~ {x}", g),
    "fit_glmm": lambda d, y, g, x: mlm.fit_glmm(d, f"{y} ~ {x} + (1 | {g})"),
    "fit_glmm_poisson": lambda d, y, g, x: mlm.fit_glmm(d, f"{y} ~ {x} + (1 | {g})",
                                                        family="poisson"),
}
BINARY = {"fit_logistic_mixed", "fit_gee", "fit_glmm"}
COUNT = {"fit_glmm_poisson"}
FORMULA_ONLY = {"fit_glmm", "fit_glmm_poisson"}  # the group is written into the formula
WITH_PREDICTOR = {"per_group_slopes", "compare_approaches", "within_between",
                  "plot_within_between", "plot_spaghetti", "fit_random_intercept",
                  "fit_random_coefficient", "fit_full_model", "fit_mixed", "fit_three_level",
                  "design_matrices", "compare_with_statsmodels", *BINARY, *COUNT}
WITH_OUTCOME_ARG = {"center", "add_group_mean", "icc_slide", "icc_anova", "icc_reml",
                    "per_group_slopes", "compare_approaches", "within_between",
                    "plot_within_between", "plot_group_means", "plot_within_spread",
                    "plot_spaghetti", "fit_null", "fit_random_intercept",
                    "fit_random_coefficient", "fit_full_model"}
MODELS = {"icc_slide", "icc_anova", "icc_reml", "within_between", "compare_approaches",
          "fit_null", "fit_random_intercept", "fit_random_coefficient", "fit_full_model",
          "fit_mixed", "fit_three_level", *BINARY}
NEEDS_REPEATS = MODELS | {"per_group_slopes", "variable_levels", "plot_within_between",
                          "compare_with_statsmodels"}


def _outcome(name: str) -> str:
    return "b" if name in BINARY else "k" if name in COUNT else "y"


def _frame_case(name, mistake, frame, error, match, *, y=None, g="g", x="x", data_arg=None):
    fn = FRAME_FUNCTIONS[name]
    y = _outcome(name) if y is None else y
    if data_arg is not None:
        def call(_):
            return fn(data_arg(), y, g, x)
        return Case(f"{mistake}/{name}", call, error, match, None)
    return Case(f"{mistake}/{name}", lambda d: fn(d, y, g, x), error, match, frame)


def _with(**columns):
    return lambda: TWO.assign(**columns)


_MIXED = [v if i % 3 else str(v) for i, v in enumerate(TWO["g"])]
_FLOATS = TWO["g"] / 10 + np.where(np.arange(len(TWO)) % 2, 0, 1e-16)
_NAN = TWO["g"].astype(float).where(TWO.index != 5)


def _frame_cases() -> list[Case]:
    cases = []
    for name in FRAME_FUNCTIONS:
        y = _outcome(name)
        add = cases.append
        # the frame itself
        add(_frame_case(name, "frame-numpy", None, TypeError, "data must be a pandas DataFrame",
                        data_arg=lambda: TWO.to_numpy()))
        add(_frame_case(name, "frame-series", None, TypeError,
                        "data must be a pandas DataFrame.*a Series holds one column",
                        data_arg=lambda: TWO["y"]))
        add(_frame_case(name, "frame-empty", lambda: TWO.iloc[:0], ValueError,
                        "data has no rows"))
        add(_frame_case(name, "frame-duplicate-group-column",
                        lambda: pd.concat([TWO, TWO[["g"]]], axis=1), ValueError,
                        "more than one column named 'g'"))
        # the group identifier
        add(_frame_case(name, "group-missing-column", lambda: TWO, KeyError,
                        r"'school' not in data; available columns: g, gs", g="school"))
        if name not in FORMULA_ONLY:
            add(_frame_case(name, "group-as-list", lambda: TWO, TypeError,
                            r"(group|level2) must be a column name \(str\), not list",
                            g=["g"]))
            add(_frame_case(name, "group-as-number", lambda: TWO, TypeError,
                            r"(group|level2) must be a column name \(str\), not int", g=3))
        add(_frame_case(name, "group-mixed-types", _with(g=_MIXED), ValueError,
                        r"group column 'g' mixes value types \(int, str\)"))
        add(_frame_case(name, "group-floats-last-bit", _with(g=_FLOATS), ValueError,
                        "group column 'g' holds non-integer numbers"))
        add(_frame_case(name, "group-nan", _with(g=_NAN), ValueError,
                        r"group column 'g' has 1 missing value\(s\)"))
        add(_frame_case(name, "group-boolean", _with(g=TWO["g"] % 2 == 0), TypeError,
                        "group column 'g' is boolean"))
        add(_frame_case(name, "group-category-mixed",
                        _with(g=pd.Categorical(_MIXED, categories=list(dict.fromkeys(_MIXED)))),
                        ValueError, "group column 'g' mixes value types"))
        # the outcome (or the column a helper summarises)
        if name != "cluster_sizes":
            add(_frame_case(name, "outcome-text", _with(**{y: TWO[y].astype(str)}), TypeError,
                            f"'{y}' .*numbers stored as text"))
            add(_frame_case(name, "outcome-nan", _with(**{y: TWO[y].where(TWO.index != 3)}),
                            ValueError, rf"column '{y}' has 1 missing value\(s\)"))
            add(_frame_case(name, "outcome-inf",
                            _with(**{y: TWO[y].where(TWO.index != 3, np.inf)}), ValueError,
                            f"'{y}' has 1 infinite value"))
            add(_frame_case(name, "outcome-category",
                            _with(**{y: pd.Categorical(TWO[y].round())}), TypeError,
                            f"'{y}' must be numeric.*categorical"))
            add(_frame_case(name, "outcome-dates",
                            _with(**{y: pd.date_range("2020-01-01", periods=len(TWO))}),
                            TypeError, f"'{y}' must be numeric.*dates or times"))
            add(_frame_case(name, "outcome-missing-column", lambda: TWO, KeyError,
                            "'score' not in data", y="score"))
        if name in WITH_OUTCOME_ARG:
            add(_frame_case(name, "outcome-as-list", lambda: TWO, TypeError,
                            r"(outcome|column) must be a column name \(str\), not list",
                            y=["y"]))
        if name in MODELS:
            add(_frame_case(name, "outcome-constant", _with(**{y: 1}), ValueError,
                            f"outcome '{y}' is constant"))
        if name in NEEDS_REPEATS:
            add(_frame_case(name, "group-is-a-row-id", _with(g=np.arange(len(TWO))),
                            ValueError, "every group in 'g' has a single row"))
        # the predictor
        if name in WITH_PREDICTOR:
            add(_frame_case(name, "predictor-is-outcome", lambda: TWO, ValueError,
                            f"the outcome '{y}' is also (the|among the) predictor", x=y))
            add(_frame_case(name, "predictor-is-group", lambda: TWO, ValueError,
                            "the group column 'g' is also (the|among the) predictor", x="g"))
            add(_frame_case(name, "predictor-text", _with(x=TWO["x"].astype(str)), TypeError,
                            "'x' .*numbers stored as text"))
            add(_frame_case(name, "predictor-dates",
                            _with(x=pd.date_range("2020-01-01", periods=len(TWO))),
                            TypeError, "'x' .*dates or times"))
            add(_frame_case(name, "predictor-missing-column", lambda: TWO, KeyError,
                            "'ses' not in data", x="ses"))
    return cases


@pytest.mark.parametrize("case", params(_frame_cases()))
def test_frame_roles(case):
    run(case)


# --- levels and probabilities -----------------------------------------------------------------

CONF_LEVEL = {
    "fit_mixed": lambda v: mlm.fit_mixed(TWO, "y ~ x", "g", conf_level=v),
    "fit_three_level": lambda v: mlm.fit_three_level(TWO, "y ~ x", "g", "r", conf_level=v),
    "icc_anova": lambda v: mlm.icc_anova(TWO, "y", "g", conf_level=v),
    "icc_reml": lambda v: mlm.icc_reml(TWO, "y", "g", conf_level=v),
    "compare_approaches": lambda v: mlm.compare_approaches(TWO, "y", "x", "g", conf_level=v),
    "within_between": lambda v: mlm.within_between(TWO, "y", "x", "g", conf_level=v),
    "plot_group_means": lambda v: mlm.plot_group_means(TWO, "y", "g", conf_level=v),
    "plot_caterpillar": lambda v: mlm.plot_caterpillar(fits()["ri"], conf_level=v),
    "coverage_study": lambda v: mlm.coverage_study(
        2, n_groups=5, group_size=5, gamma10=1, tau00=1, tau11=0.5, sigma2=1,
        x_between_sd=0, seed=1, conf_level=v),
    "fit_logistic_mixed": lambda v: mlm.fit_logistic_mixed(TWO, "b ~ x", "g", conf_level=v),
    "fit_gee": lambda v: mlm.fit_gee(TWO, "b ~ x", "g", conf_level=v),
    "fit_glmm": lambda v: mlm.fit_glmm(TWO, "b ~ x + (1 | g)", conf_level=v),
    "fit_glmm_poisson": lambda v: mlm.fit_glmm(TWO, "k ~ x + (1 | g)", family="poisson",
                                               conf_level=v),
    "confint_variance": lambda v: mlm.confint_variance(fits()["ri"], conf_level=v),
    "MixedFit.confint": lambda v: fits()["ri"].confint(conf_level=v),
}
LEVEL_MISTAKES = [
    ("percent", 95, ValueError,
     r"conf_level must be between 0 and 1 \(e.g. 0.95\), not 95; for a 95% interval write "
     r"conf_level=0.95"),
    ("string", "0.95", TypeError,
     "conf_level must be a number, not the string '0.95'; write the number without quotes"),
    ("bool", True, TypeError, "conf_level must be a number, not bool True"),
    ("nan", np.nan, ValueError, "conf_level must be between 0 and 1 .*not nan"),
    ("one", 1.0, ValueError, "conf_level must be between 0 and 1"),
]


def _level_cases():
    return [Case(f"conf_level-{m}/{name}", lambda _, f=f, v=v: f(v), err, pat)
            for name, f in CONF_LEVEL.items() for m, v, err, pat in LEVEL_MISTAKES
            if m in ("percent", "string", "bool") or name in ("fit_mixed", "icc_anova",
                                                              "fit_glmm", "confint_variance")]


_POWER = dict(n_groups=10, group_size=5, effect="level1", effect_size=0.3, tau00=0.2,
              sigma2=0.8)


def _alpha_cases():
    out = []
    for name, fn in (("power_approximation", mlm.power_approximation),
                     ("power_simulation",
                      lambda **k: mlm.power_simulation(**k, n_sims=5, seed=1))):
        for m, v, err, pat in [
            ("string", "0.05", TypeError, "alpha must be a number, not the string '0.05'"),
            ("percent", 5, ValueError, "alpha must be between 0 and 1.*write alpha=0.05"),
            ("bool", False, TypeError, "alpha must be a number, not bool"),
        ]:
            out.append(Case(f"alpha-{m}/{name}", lambda _, fn=fn, v=v: fn(**_POWER, alpha=v),
                            err, pat))
    return out


@pytest.mark.parametrize("case", params(_level_cases() + _alpha_cases()))
def test_levels_and_probabilities(case):
    run(case)


# --- method -------------------------------------------------------------------------------------

METHOD = {
    "fit_null": lambda v: mlm.fit_null(TWO, "y", "g", method=v),
    "fit_random_intercept": lambda v: mlm.fit_random_intercept(TWO, "y", "g",
                                                               predictors=["x"], method=v),
    "fit_random_coefficient": lambda v: mlm.fit_random_coefficient(
        TWO, "y", "g", predictors=["x"], method=v),
    "fit_full_model": lambda v: mlm.fit_full_model(TWO, "y", "g", level1=["x"],
                                                   level2=["z"], method=v),
    "fit_mixed": lambda v: mlm.fit_mixed(TWO, "y ~ x", "g", method=v),
    "fit_three_level": lambda v: mlm.fit_three_level(TWO, "y ~ x", "g", "r", method=v),
    "within_between": lambda v: mlm.within_between(TWO, "y", "x", "g", method=v),
    "compare_with_statsmodels": lambda v: mlm.compare_with_statsmodels(TWO, "y ~ x", "g",
                                                                       method=v),
    "parametric_bootstrap": lambda v: mlm.parametric_bootstrap(fits()["ri"], n_boot=2,
                                                               seed=1, method=v),
    "loglik_at": lambda v: mlm.loglik_at(fits()["ri"], 1.0, 1.0, method=v),
    "MixedFit.refit": lambda v: fits()["ri"].refit(method=v),
    "MixedFit.drop_groups": lambda v: fits()["ri"].drop_groups([1]).refit(method=v),
}


def _method_cases():
    return [
        Case(f"method-{m}/{name}", lambda _, f=f, v=v: f(v), err, pat)
        for name, f in METHOD.items()
        for m, v, err, pat in [
            ("lower-case", "reml", ValueError,
             "method must be 'REML' or 'ML', not 'reml'; did you mean 'REML'"),
            ("other", "OLS", ValueError, "method must be 'REML' or 'ML', not 'OLS'"),
            ("number", 1, TypeError, "method must be 'REML' or 'ML', not 1"),
        ]
        if m != "other" or name in ("fit_mixed", "parametric_bootstrap")
    ]


@pytest.mark.parametrize("case", params(_method_cases()))
def test_method(case):
    run(case)


# --- seeds: one policy everywhere ---------------------------------------------------------------

SEEDED = {
    "simulate_from_fit": lambda s: mlm.simulate_from_fit(fits()["ri"], n_sims=2, seed=s),
    "MixedFit.simulate": lambda s: fits()["ri"].simulate(2, seed=s),
    "parametric_bootstrap": lambda s: mlm.parametric_bootstrap(fits()["ri"], n_boot=2, seed=s),
    "bootstrap_lrt": lambda s: mlm.bootstrap_lrt(fits()["ri"], fits()["rs"], n_boot=2, seed=s),
    "simulate_two_level": lambda s: mlm.simulate_two_level(3, 2, gamma00=1, tau00=1,
                                                           sigma2=1, seed=s),
    "coverage_study": lambda s: mlm.coverage_study(
        2, n_groups=5, group_size=5, gamma10=1, tau00=1, tau11=0.5, sigma2=1,
        x_between_sd=0, seed=s),
    "icc_estimator_study": lambda s: mlm.icc_estimator_study(2, n_groups=5, group_size=4,
                                                             tau2=1, sigma2=1, seed=s),
    "power_simulation": lambda s: mlm.power_simulation(**_POWER, n_sims=5, seed=s),
    "plot_within_spread": lambda s: mlm.plot_within_spread(TWO, "y", "g", n_groups=3, seed=s),
    "plot_spaghetti": lambda s: mlm.plot_spaghetti(TWO, "y", "x", "g", n_groups=3, seed=s),
    "plot_fitted_lines": lambda s: mlm.plot_fitted_lines(fits()["rs"], "x", n_groups=3,
                                                         seed=s),
    "plot_within_between": lambda s: mlm.plot_within_between(TWO, "y", "x", "g", n_groups=3,
                                                             seed=s),
    "GLMMFit.simulate": lambda s: fits()["glmm_b"].simulate(2, seed=s),
    "GLMMFit.simulate/poisson": lambda s: fits()["glmm_p"].simulate(2, seed=s),
    "confint_variance": lambda s: mlm.confint_variance(fits()["ri"], method="bootstrap",
                                                       n_boot=10, seed=s),
    "MixedFit.confint": lambda s: fits()["ri"].confint(method="bootstrap", n_boot=10, seed=s),
}
SEED_MISTAKES = [
    ("none", None, TypeError,
     "seed must be a non-negative integer.* so that the result can be reproduced"),
    ("negative", -1, ValueError, "seed must be a non-negative integer.*not -1"),
    ("float", 1.5, TypeError, "seed must be a non-negative integer.*not 1.5"),
    ("string", "1", TypeError, "seed must be a non-negative integer.*not '1'"),
    ("bool", True, TypeError, "seed must be a non-negative integer.*not True"),
]


def _seed_cases():
    return [Case(f"seed-{m}/{name}", lambda _, f=f, v=v: f(v), err, pat)
            for name, f in SEEDED.items() for m, v, err, pat in SEED_MISTAKES
            if m in ("none", "negative", "float") or name in ("simulate_two_level",
                                                              "power_simulation",
                                                              "confint_variance")]


@pytest.mark.parametrize("case", params(_seed_cases()))
def test_seeds(case):
    run(case)


def test_seed_policy_gives_repeatable_results():
    # the same seed gives the same draws in every seeded function; a numpy Generator is
    # accepted where documented
    a = mlm.simulate_from_fit(fits()["ri"], n_sims=2, seed=3)
    b = mlm.simulate_from_fit(fits()["ri"], n_sims=2, seed=np.int64(3))
    np.testing.assert_array_equal(a, b)
    df1 = mlm.simulate_two_level(3, 2, gamma00=1, tau00=1, sigma2=1,
                                 seed=np.random.default_rng(5))
    df2 = mlm.simulate_two_level(3, 2, gamma00=1, tau00=1, sigma2=1,
                                 seed=np.random.default_rng(5))
    pd.testing.assert_frame_equal(df1, df2)
    with pytest.raises(TypeError, match="seed must be a non-negative integer, not Generator"):
        mlm.parametric_bootstrap(fits()["ri"], n_boot=2, seed=np.random.default_rng(5))


# --- counts --------------------------------------------------------------------------------------

COUNTS = {
    "simulate_from_fit/n_sims": lambda v: mlm.simulate_from_fit(fits()["ri"], n_sims=v, seed=1),
    "parametric_bootstrap/n_boot": lambda v: mlm.parametric_bootstrap(fits()["ri"], n_boot=v,
                                                                      seed=1),
    "bootstrap_lrt/n_boot": lambda v: mlm.bootstrap_lrt(fits()["ri"], fits()["rs"], n_boot=v,
                                                        seed=1),
    "power_simulation/n_sims": lambda v: mlm.power_simulation(**_POWER, n_sims=v, seed=1),
    "coverage_study/n_sims": lambda v: mlm.coverage_study(
        v, n_groups=5, group_size=5, gamma10=1, tau00=1, tau11=0.5, sigma2=1,
        x_between_sd=0, seed=1),
    "simulate_two_level/n_groups": lambda v: mlm.simulate_two_level(v, 2, gamma00=1, tau00=1,
                                                                    sigma2=1, seed=1),
    "plot_within_spread/n_groups": lambda v: mlm.plot_within_spread(TWO, "y", "g",
                                                                    n_groups=v),
    "plot_spaghetti/n_groups": lambda v: mlm.plot_spaghetti(TWO, "y", "x", "g", n_groups=v),
    "plot_fitted_lines/n_groups": lambda v: mlm.plot_fitted_lines(fits()["rs"], "x",
                                                                  n_groups=v),
    "plot_within_between/n_groups": lambda v: mlm.plot_within_between(TWO, "y", "x", "g",
                                                                       n_groups=v),
    "plot_residuals/bins": lambda v: mlm.plot_residuals(fits()["ri"], bins=v),
    "fit_logistic_mixed/n_agq": lambda v: mlm.fit_logistic_mixed(TWO, "b ~ x", "g", n_agq=v),
    "fit_glmm/n_agq": lambda v: mlm.fit_glmm(TWO, "b ~ x + (1 | g)", n_agq=v),
    "confint_variance/n_boot": lambda v: mlm.confint_variance(fits()["ri"], method="bootstrap",
                                                              n_boot=v, seed=1),
    "MixedFit.simulate/n_sims": lambda v: fits()["ri"].simulate(v, seed=1),
    "GLMMFit.simulate/n_sims": lambda v: fits()["glmm_b"].simulate(v, seed=1),
    "GLMMFit.marginal_mean/n_nodes": lambda v: fits()["glmm_b"].marginal_mean(n_nodes=v),
    "compare_with_published/decimals": lambda v: mlm.compare_with_published(
        pd.DataFrame({"quantity": ["sigma2"], "published": [1.0]}), fits()["ri"], decimals=v),
    "power_approximation/n_groups": lambda v: mlm.power_approximation(
        **{**_POWER, "n_groups": v}),
}


def _count_cases():
    out = []
    for key, f in COUNTS.items():
        arg = key.split("/")[1]
        out.append(Case(f"count-float/{key}", lambda _, f=f: f(2.0), TypeError,
                        rf"{arg} must be (an )?integers? >= \d.*not 2.0 \(a float: write 2\)"))
        out.append(Case(f"count-bool/{key}", lambda _, f=f: f(True), TypeError,
                        rf"{arg} must be (an )?integers? >= \d.*not True"))
        out.append(Case(f"count-below/{key}", lambda _, f=f: f(-1), ValueError,
                        rf"{arg} must be (an )?integers? >= \d.*not -1"))
    return out


@pytest.mark.parametrize("case", params(_count_cases()))
def test_counts(case):
    run(case)


# --- booleans -----------------------------------------------------------------------------------

BOOLEANS = {
    "fit_mixed/diagonal": lambda v: mlm.fit_mixed(TWO, "y ~ x", "g", re_formula="x",
                                                  diagonal=v),
    "predict/conditional": lambda v: fits()["ri"].predict(TWO, conditional=v),
    "predict/allow_new_levels": lambda v: fits()["ri"].predict(TWO, allow_new_levels=v),
    "glue/display": lambda v: mlm.glue("key", 1, display=v),
    "GLMMFit.predict/conditional": lambda v: fits()["glmm_b"].predict(TWO, conditional=v),
    "GLMMFit.predict/allow_new_levels": lambda v: fits()["glmm_p"].predict(
        TWO, allow_new_levels=v),
    "fit_mixed-formula/diagonal": lambda v: mlm.fit_mixed(TWO, "y ~ x + (x | g)", diagonal=v),
}


def _bool_cases():
    out = []
    for key, f in BOOLEANS.items():
        arg = key.split("/")[1]
        out += [
            Case(f"bool-string/{key}", lambda _, f=f: f("False"), TypeError,
                 rf"{arg} must be True or False, not 'False'; the string 'False' is not a "
                 rf"boolean"),
            Case(f"bool-int/{key}", lambda _, f=f: f(0), TypeError,
                 f"{arg} must be True or False, not 0"),
            Case(f"bool-none/{key}", lambda _, f=f: f(None), TypeError,
                 f"{arg} must be True or False, not None"),
        ]
    return out


@pytest.mark.parametrize("case", params(_bool_cases()))
def test_booleans(case):
    run(case)


# --- real parameters ------------------------------------------------------------------------------

_SIM = dict(n_groups=3, group_size=2, gamma00=1.0, tau00=1.0, sigma2=1.0, seed=1)
_VAR = r"must be a variance \(a number >= 0\)"
REALS = [
    ("simulate_two_level/tau00-string", lambda: mlm.simulate_two_level(**{**_SIM, "tau00": "0.2"}),
     TypeError, "tau00 must be a number, not the string '0.2'; write the number without quotes"),
    ("simulate_two_level/tau00-negative",
     lambda: mlm.simulate_two_level(**{**_SIM, "tau00": -1.0}), ValueError, "tau00 " + _VAR),
    ("simulate_two_level/sigma2-zero", lambda: mlm.simulate_two_level(**{**_SIM, "sigma2": 0}),
     ValueError, "sigma2 must be a positive variance"),
    ("simulate_two_level/gamma00-bool",
     lambda: mlm.simulate_two_level(**{**_SIM, "gamma00": True}), TypeError,
     "gamma00 must be a number, not bool"),
    ("simulate_two_level/gamma10-nan",
     lambda: mlm.simulate_two_level(**{**_SIM, "gamma10": np.nan}), ValueError,
     "gamma10 must be a finite number, not nan"),
    ("simulate_two_level/x_between_sd-list",
     lambda: mlm.simulate_two_level(**{**_SIM, "x_between_sd": [1.0]}), TypeError,
     "x_between_sd must be a number, not list"),
    ("power_approximation/tau00-string",
     lambda: mlm.power_approximation(**{**_POWER, "tau00": "0.2"}), TypeError,
     "tau00 must be a number, not the string '0.2'"),
    ("power_approximation/tau11-negative",
     lambda: mlm.power_approximation(**{**_POWER, "tau11": -0.1}), ValueError, "tau11 " + _VAR),
    ("power_simulation/tau00-string",
     lambda: mlm.power_simulation(**{**_POWER, "tau00": "0.2"}, n_sims=5, seed=1), TypeError,
     "tau00 must be a number, not the string '0.2'"),
    ("power_approximation/effect_size-string",
     lambda: mlm.power_approximation(**{**_POWER, "effect_size": "0.3"}), TypeError,
     "effect_size must be a number or an array of numbers, not the string '0.3'"),
    ("power_approximation/effect_size-strings",
     lambda: mlm.power_approximation(**{**_POWER, "effect_size": ["0.3", "0.5"]}), TypeError,
     "effect_size must be a number or an array of numbers, not strings"),
    ("power_approximation/effect_size-nan",
     lambda: mlm.power_approximation(**{**_POWER, "effect_size": [0.3, np.nan]}), ValueError,
     "effect_size must be finite numbers, not nan"),
    ("coverage_study/tau11-string", lambda: mlm.coverage_study(
        2, n_groups=5, group_size=5, gamma10=1, tau00=1, tau11="1", sigma2=1, x_between_sd=0,
        seed=1), TypeError, "tau11 must be a number, not the string '1'"),
    ("icc_estimator_study/tau2-negative", lambda: mlm.icc_estimator_study(
        2, n_groups=5, group_size=4, tau2=-1.0, sigma2=1, seed=1), ValueError, "tau2 " + _VAR),
    ("design_effect/icc-string", lambda: mlm.design_effect("0.1", 10), TypeError,
     "icc must be a number or an array of numbers, not the string '0.1'"),
    ("design_effect/icc-bool", lambda: mlm.design_effect(True, 10), TypeError,
     "icc must be a number or an array of numbers, not booleans"),
    ("design_effect/icc-above-one", lambda: mlm.design_effect(1.5, 10), ValueError,
     r"icc must be between 0 and 1 \(an intraclass correlation\), not 1.5"),
    ("design_effect/cluster_size-string", lambda: mlm.design_effect(0.1, "10"), TypeError,
     "cluster_size must be a number or an array of numbers, not the string '10'"),
    ("design_effect/cluster_size-none-inside", lambda: mlm.design_effect(0.1, [10, None]),
     ValueError, "cluster_size has missing values"),
    ("effective_sample_size/n_obs-bool", lambda: mlm.effective_sample_size(True, 0.1, 10),
     TypeError, "n_obs must be a number or an array of numbers, not booleans"),
    ("effective_sample_size/n_obs-zero", lambda: mlm.effective_sample_size(0, 0.1, 10),
     ValueError, r"n_obs must be positive \(a number of rows\)"),
    ("attenuation_factor/string", lambda: mlm.attenuation_factor("1"), TypeError,
     "tau2 must be a number, not the string '1'"),
    ("attenuation_factor/negative", lambda: mlm.attenuation_factor(-1.0), ValueError,
     "tau2 must be a non-negative variance|tau2 " + _VAR),
    ("loglik_at/sigma2-string", lambda: mlm.loglik_at(fits()["ri"], 1.0, "1"), TypeError,
     "sigma2 must be a number, not the string '1'"),
    ("loglik_at/tau-string", lambda: mlm.loglik_at(fits()["ri"], "1", 1.0), TypeError,
     "tau must be a number, an array or a DataFrame, not str"),
    ("gls_fixed_effects/tau-bool", lambda: mlm.gls_fixed_effects(fits()["ri"], tau=True),
     TypeError, "tau must be a number, an array or a DataFrame, not bool"),
    ("gls_fixed_effects/sigma2-negative",
     lambda: mlm.gls_fixed_effects(fits()["ri"], sigma2=-1.0), ValueError,
     "sigma2 must be a positive variance"),
    ("plot_icc_curves/strings", lambda: mlm.plot_icc_curves(["1", "2"], [1.0]), TypeError,
     "tau2_values must be a number or an array of numbers, not strings"),
    ("plot_icc_curves/negative", lambda: mlm.plot_icc_curves([-1.0], [1.0]), ValueError,
     "tau2_values must be finite and non-negative"),
    ("plot_qq/inf", lambda: mlm.plot_qq([1.0, 2.0, np.inf, 3.0]), ValueError,
     "values must be finite numbers, not inf"),
    ("plot_qq/booleans", lambda: mlm.plot_qq([True, False, True]), TypeError,
     "values must be numeric"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"real/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in REALS]))
def test_real_parameters(case):
    run(case)


# --- column names and lists of names --------------------------------------------------------------

NAMES = [
    ("fit_random_intercept/predictors-none",
     lambda: mlm.fit_random_intercept(TWO, "y", "g", predictors=None), TypeError,
     "predictors must be a column name or a list of column names, not NoneType"),
    ("fit_random_intercept/predictors-number",
     lambda: mlm.fit_random_intercept(TWO, "y", "g", predictors=[1]), TypeError,
     "predictors must be column names"),
    ("fit_random_intercept/predictors-repeated",
     lambda: mlm.fit_random_intercept(TWO, "y", "g", predictors=["x", "x"]), ValueError,
     r"predictors lists a column more than once \('x'\)"),
    ("fit_random_coefficient/random-not-a-predictor",
     lambda: mlm.fit_random_coefficient(TWO, "y", "g", predictors=["x"], random=["w"]),
     ValueError, r"random slopes \['w'\] must also be in predictors"),
    ("fit_full_model/level-both",
     lambda: mlm.fit_full_model(TWO, "y", "g", level1=["x"], level2=["x"]), ValueError,
     r"\['x'\] are in both level1 and level2"),
    ("describe_levels/level1-number", lambda: mlm.describe_levels(TWO, "g", level1=[1]),
     TypeError, "level1 must be column names"),
    ("describe_levels/level2-dict", lambda: mlm.describe_levels(TWO, "g", level2={"z": 1}),
     TypeError, "level2 must be a column name or a list of column names, not dict"),
    ("describe_levels/level1-repeated",
     lambda: mlm.describe_levels(TWO, "g", level1=["x", "x"]), ValueError,
     "level1 lists a column more than once"),
    ("variable_levels/columns-empty-string", lambda: mlm.variable_levels(TWO, "g", columns=""),
     ValueError, "columns must be column names, not the empty string"),
    ("group_means/columns-empty", lambda: mlm.group_means(TWO, [], "g"), ValueError,
     "columns is empty"),
    ("group_means/columns-include-group", lambda: mlm.group_means(TWO, ["x", "g"], "g"),
     ValueError, "'g' is both the group column and a column to use"),
    ("center/column-is-group", lambda: mlm.center(TWO, "g", group="g"), ValueError,
     "'g' is both the group column and a column to use"),
    ("center/empty-name", lambda: mlm.center(TWO, "x", name=""), ValueError,
     "name must be a column name, not the empty string"),
    ("center/name-number", lambda: mlm.center(TWO, "x", name=1), TypeError,
     r"name must be a column name \(str\), not int"),
    ("within_between/covariates-number",
     lambda: mlm.within_between(TWO, "y", "x", "g", covariates=[1]), TypeError,
     "covariates must be column names"),
    ("within_between/covariates-include-predictor",
     lambda: mlm.within_between(TWO, "y", "x", "g", covariates=["x"]), ValueError,
     "the predictor 'x' is also among the covariates"),
    ("within_between/covariates-include-group",
     lambda: mlm.within_between(TWO, "y", "x", "g", covariates=["g"]), ValueError,
     "the group column 'g' is also among the covariates"),
    ("wald_test/terms-number", lambda: mlm.wald_test(fits()["ri"], [1]), TypeError,
     "terms must be fixed-effect names"),
    ("wald_test/terms-unknown", lambda: mlm.wald_test(fits()["ri"], ["z"]), ValueError,
     r"term\(s\) 'z' not among the fixed effects; available: Intercept, x"),
    ("influence_groups/terms-unknown",
     lambda: mlm.influence_groups(fits()["ri"], terms=["z"]), KeyError,
     r"term\(s\) \['z'\] are not fixed effects"),
    ("influence_groups/groups-string",
     lambda: mlm.influence_groups(fits()["ri"], groups="1"), TypeError,
     "groups must be a list of group identifiers, not str"),
    ("influence_groups/groups-wrong-type",
     lambda: mlm.influence_groups(fits()["ri"], groups=["1"]), KeyError,
     r"group\(s\) \['1'\] not in the fitted data's 'g' column.*labels must match in type"),
    ("model_matrices/group-wrong-type", lambda: mlm.model_matrices(fits()["ri"], "1"),
     KeyError, "group '1' is not a level-2 unit of this fit.*labels must match in type"),
    ("plot_caterpillar/term-list", lambda: mlm.plot_caterpillar(fits()["ri"], term=["x"]),
     TypeError, r"term must be a column name \(str\), not list"),
    ("plot_caterpillar/term-unknown", lambda: mlm.plot_caterpillar(fits()["ri"], term="x"),
     ValueError, "term 'x' is not a random effect of this fit"),
    ("plot_residuals/against-number", lambda: mlm.plot_residuals(fits()["ri"], against=1),
     TypeError, r"against must be a column name \(str\), not int"),
    ("plot_residuals/against-missing", lambda: mlm.plot_residuals(fits()["ri"], against="q"),
     KeyError, "'q' not in data"),
    ("plot_residuals/against-text", lambda: mlm.plot_residuals(fits()["ri"], against="cat"),
     TypeError, "'cat' must be numeric"),
    ("compare_with_published/missing-column",
     lambda: mlm.compare_with_published(pd.DataFrame({"quantity": ["sigma2"]}), fits()["ri"]),
     KeyError, "'published' not in data"),
    ("compare_with_published/unknown-quantity",
     lambda: mlm.compare_with_published(
         pd.DataFrame({"quantity": ["tau"], "published": [1.0]}), fits()["ri"]),
     ValueError, "unknown quantity 'tau'"),
    ("load_dataset/case", lambda: mlm.load_dataset("HSB"), KeyError,
     "unknown dataset 'HSB'.*did you mean 'hsb'"),
    ("load_dataset/number", lambda: mlm.load_dataset(1), TypeError, "name must be a string"),
    ("load_reference/unknown", lambda: mlm.load_reference("rb"), KeyError,
     "unknown reference table 'rb'"),
    ("glue/name-number", lambda: mlm.glue(1, 2), TypeError, "name must be a non-empty string"),
    ("fit_mixed/column-typo", lambda: mlm.fit_mixed(TWO, "Y ~ x", "g"), KeyError,
     "'Y' not in data.*did you mean 'y'"),
    ("fit_mixed/formula-number", lambda: mlm.fit_mixed(TWO, 3, "g"), TypeError,
     "formula must be a string"),
    ("fit_mixed/re_formula-list",
     lambda: mlm.fit_mixed(TWO, "y ~ x", "g", re_formula=["x"]), TypeError,
     "re_formula must be a string"),
    ("compare_with_statsmodels/re_formula-list",
     lambda: mlm.compare_with_statsmodels(TWO, "y ~ x", "g", re_formula=["x"]), TypeError,
     "re_formula must be a string"),
    ("fit_three_level/re_formula2-number",
     lambda: mlm.fit_three_level(TWO, "y ~ x", "g", "r", re_formula2=1), TypeError,
     "re_formula2 must be a string"),
    ("fit_mixed/formula-bars-and-group",
     lambda: mlm.fit_mixed(TWO, "y ~ x + (1 | g)", "g"), ValueError,
     "already has random-effects terms"),
    ("fit_mixed/no-random-part", lambda: mlm.fit_mixed(TWO, "y ~ x"), ValueError,
     "has no random-effects term"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"name/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in NAMES]))
def test_names(case):
    run(case)


# --- choices, axes and labels ------------------------------------------------------------------

CHOICES = [
    ("plot_group_means/order", lambda: mlm.plot_group_means(TWO, "y", "g", order="median"),
     ValueError, "order must be 'mean' or 'size', not 'median'"),
    ("power_simulation/test", lambda: mlm.power_simulation(**_POWER, n_sims=5, seed=1,
                                                           test="T"),
     ValueError, "test must be 't' or 'z', not 'T'; did you mean 't'"),
    ("power_approximation/effect", lambda: mlm.power_approximation(
        **{**_POWER, "effect": "level 2"}), ValueError,
     "effect must be one of 'level1', 'level2', 'cross-level', not 'level 2'"),
    ("power_approximation/effect-number", lambda: mlm.power_approximation(
        **{**_POWER, "effect": 2}), TypeError, "effect must be one of"),
    ("fit_gee/correlation", lambda: mlm.fit_gee(TWO, "b ~ x", "g", correlation="ar1"),
     ValueError, "correlation must be 'exchangeable' or 'independence', not 'ar1'"),
    ("fit_gee/correlation-none", lambda: mlm.fit_gee(TWO, "b ~ x", "g", correlation=None),
     TypeError, "correlation must be 'exchangeable' or 'independence', not None"),
    ("plot_proposition/kind", lambda: mlm.plot_proposition("meso"), ValueError,
     "kind must be one of 'micro', 'macro', 'macro-micro', not 'meso'"),
    ("plot_proposition/labels-list", lambda: mlm.plot_proposition("micro", labels=["x"]),
     TypeError, "labels must be a dict"),
]
AXES = {
    "plot_group_means": lambda **k: mlm.plot_group_means(TWO, "y", "g", **k),
    "plot_within_spread": lambda **k: mlm.plot_within_spread(TWO, "y", "g", **k),
    "plot_spaghetti": lambda **k: mlm.plot_spaghetti(TWO, "y", "x", "g", **k),
    "plot_fitted_lines": lambda **k: mlm.plot_fitted_lines(fits()["rs"], "x", **k),
    "plot_caterpillar": lambda **k: mlm.plot_caterpillar(fits()["ri"], **k),
    "plot_shrinkage": lambda **k: mlm.plot_shrinkage(fits()["null"], **k),
    "plot_within_between": lambda **k: mlm.plot_within_between(TWO, "y", "x", "g", **k),
    "plot_icc_curves": lambda **k: mlm.plot_icc_curves([0.0, 1.0], [1.0], **k),
    "plot_qq": lambda **k: mlm.plot_qq(TWO["y"], **{"label" if a == "xlabel" else a: v
                                                    for a, v in k.items()}),
    "plot_residuals": lambda **k: mlm.plot_residuals(
        fits()["ri"], **{a: v for a, v in k.items() if a == "ax"}),
    "plot_proposition": lambda **k: mlm.plot_proposition(
        "micro", **{a: v for a, v in k.items() if a == "ax"}),
}


def _axes_cases():
    out = [Case(f"choice/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in CHOICES]
    for name, f in AXES.items():
        out.append(Case(f"axes-not-axes/{name}", lambda _, f=f: f(ax="left"), TypeError,
                        "ax must be a matplotlib Axes"))
        if name not in ("plot_residuals", "plot_proposition"):
            out.append(Case(f"label-number/{name}", lambda _, f=f: f(xlabel=3), TypeError,
                            r"(xlabel|label) must be a string or None, not int"))
    return out


@pytest.mark.parametrize("case", params(_axes_cases()))
def test_choices_axes_labels(case):
    run(case)


# --- helpers: centring, group means, within/between, fitted lines --------------------------------

HELPERS = [
    ("center/name-is-group", lambda: mlm.center(TWO, "x", group="g", name="g"), ValueError,
     "name='g' would overwrite the group column 'g'; choose a new name, e.g. name='x_cwc'"),
    ("center/name-is-column", lambda: mlm.center(TWO, "x", name="x"), ValueError,
     "name='x' would overwrite the centred column 'x'"),
    ("add_group_mean/name-is-group", lambda: mlm.add_group_mean(TWO, "x", "g", name="g"),
     ValueError, "name='g' would overwrite the group column 'g'"),
    ("add_group_mean/name-is-column", lambda: mlm.add_group_mean(TWO, "x", "g", name="x"),
     ValueError, "name='x' would overwrite the averaged column 'x'"),
    ("within_between/group_mean-varies",
     lambda: mlm.within_between(TWO, "y", "x", "g", group_mean="w"), ValueError,
     r"group_mean column 'w' varies within 24 group\(s\) of 'g'"),
    ("within_between/group_mean-is-predictor",
     lambda: mlm.within_between(TWO, "y", "x", "g", group_mean="x"), ValueError,
     "the predictor 'x' is also the group_mean"),
    ("within_between/group_mean-text",
     lambda: mlm.within_between(TWO.assign(m=TWO["z"].astype(str)), "y", "x", "g",
                                group_mean="m"), TypeError, "'m' .*numbers stored as text"),
    ("within_between/predictor-level2", lambda: mlm.within_between(TWO, "y", "z", "g"),
     ValueError, "predictor 'z' is constant within every group of 'g' \\(a level-2 variable\\)"),
    ("plot_within_between/predictor-level2",
     lambda: mlm.plot_within_between(TWO, "y", "z", "g"), ValueError,
     "predictor 'z' is constant within every group of 'g'"),
    ("plot_fitted_lines/predictor-not-in-model",
     lambda: mlm.plot_fitted_lines(fits()["ri"], "w"), ValueError,
     "predictor 'w' is not a predictor of the model .*every fitted line against it would be "
     "flat"),
    ("plot_fitted_lines/predictor-is-outcome",
     lambda: mlm.plot_fitted_lines(fits()["ri"], "y"), ValueError,
     "predictor 'y' is the outcome"),
    ("plot_fitted_lines/predictor-missing",
     lambda: mlm.plot_fitted_lines(fits()["ri"], "ses"), KeyError, "'ses' not in data"),
    ("plot_fitted_lines/predictor-text",
     lambda: mlm.plot_fitted_lines(fits()["ri"], "cat"), TypeError,
     "predictor 'cat' must be numeric"),
    ("plot_shrinkage/predictor-without-random-slope",
     lambda: mlm.plot_shrinkage(fits()["ri"], predictor="x"), ValueError,
     "predictor 'x' must be the only fixed predictor and have a random slope"),
    ("plot_shrinkage/not-a-null-model", lambda: mlm.plot_shrinkage(fits()["ri"]), ValueError,
     "pass predictor= or fit mlm.fit_null"),
    ("plot_spaghetti/hue-varies", lambda: mlm.plot_spaghetti(TWO, "y", "x", "g", hue="w"),
     ValueError, r"hue column 'w' varies within 24 group\(s\) of 'g'"),
    ("plot_spaghetti/hue-missing", lambda: mlm.plot_spaghetti(TWO, "y", "x", "g", hue="h"),
     KeyError, "hue column 'h' not in data"),
    ("describe_levels/level2-varies", lambda: mlm.describe_levels(TWO, "g", level2=["x"]),
     ValueError, r"level-2 variable 'x' varies within 24 group\(s\) of 'g' \(e.g. 1\)"),
    ("describe_levels/group-described", lambda: mlm.describe_levels(TWO, "g", level1="g"),
     ValueError, "group column 'g' cannot also be described"),
    ("variable_levels/inf", lambda: mlm.variable_levels(
        TWO.assign(x=TWO["x"].where(TWO.index != 0, -np.inf)), "g", columns="x"),
     ValueError, "'x' has 1 infinite value"),
    ("compare_approaches/predictor-centred-within",
     lambda: mlm.compare_approaches(mlm.center(TWO, "x", group="g", name="xc"), "y", "xc", "g"),
     ValueError, "the group means of 'xc' are all equal"),
    ("per_group_slopes/predictor-level2",
     lambda: mlm.compare_approaches(TWO, "y", "z", "g"), ValueError,
     r"only 0 group\(s\) have an estimable slope of 'z'"),
]


@pytest.mark.parametrize("case", params(
    [Case(f"helper/{key}", lambda _, f=f: f(), err, pat) for key, f, err, pat in HELPERS]))
def test_helpers(case):
    run(case)


def test_helpers_return_new_frames_and_keep_the_ids():
    # the fixes did not stop the ordinary use: a new column, the ids untouched
    out = mlm.center(TWO, "x", group="g", name="xc")
    assert (out["g"] == TWO["g"]).all() and "xc" in out and "xc" not in TWO
    again = mlm.center(out, "x", group="g", name="xc")  # re-running a notebook cell
    pd.testing.assert_frame_equal(again, out)
    # a group_mean column that is constant within groups is used as given
    wb = mlm.within_between(mlm.add_group_mean(TWO, "x", "g"), "y", "x", "g",
                            group_mean="x_mean")
    ref = mlm.within_between(TWO, "y", "x", "g")
    np.testing.assert_allclose(wb["estimate"], ref["estimate"], rtol=1e-6)


def test_data_folder_that_lacks_the_files(tmp_path, monkeypatch):
    # data_dir() follows MLM_DATA_DIR; a folder without the registry is named, with the fix
    monkeypatch.setenv("MLM_DATA_DIR", str(tmp_path))
    assert mlm.data_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="MLM_DATA_DIR must name a folder with "
                                                "registry.csv"):
        mlm.load_dataset("hsb")
    assert set(mlm.list_datasets()["name"]) >= {"hsb", "sleepstudy"}  # needs no files
