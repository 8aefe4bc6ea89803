"""The reference suites (tests/reference/lme4_suite.json, glmer_suite.json) and their loader.

These tests check the files, not the package: every data file matches its recorded sha256, the
suites were computed from those very bytes, every record has the documented keys, the numbers
inside a record agree with each other (SEs with vcov, AIC with logLik, nobs and group counts
with the data), and the suites cover what they claim. Tolerances: numbers that R derived from
each other are compared at 1e-9 relative (JSON keeps 15 significant digits).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from reference import suite

LMM = suite.load_lmm_suite()
GLMM = suite.load_glmm_suite()
REGISTRY = suite.load_registry()
RTOL = 1e-9


def close(a, b, rtol=RTOL, atol=0.0):
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


# ---- data files and the loader ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_data_file_matches_registry(name):
    info = REGISTRY[name]
    path = suite.DATA_DIR / info["file"]
    assert suite.sha256_of(path) == info["sha256"]
    frame = suite.load_suite_data(name)
    assert len(frame) == info["rows"]
    assert list(frame.columns) == list(info["columns"])
    assert not frame.isna().any().any()
    for col, kind in info["columns"].items():
        if kind == "string":
            assert pd.api.types.is_string_dtype(frame[col].dtype)
            assert all(isinstance(v, str) for v in frame[col])
        else:
            assert frame[col].dtype == ("int64" if kind == "integer" else "float64")


def test_numeric_looking_ids_stay_strings():
    d = suite.load_suite_data("chem97")
    assert d["school"].iloc[0] == "1"
    assert sorted(d["lea"].unique())[:3] == ["1", "10", "100"]  # C-locale order, as R sorted


def test_loader_returns_a_new_frame_each_call():
    a = suite.load_suite_data("dyestuff")
    a.loc[0, "Yield"] = -1
    assert suite.load_suite_data("dyestuff").loc[0, "Yield"] != -1


def test_loader_rejects_unknown_names_and_changed_files(tmp_path):
    with pytest.raises(KeyError, match="no reference data set 'nope'.*dyestuff"):
        suite.load_suite_data("nope")
    shutil.copy(suite.DATA_DIR / "datasets.json", tmp_path / "datasets.json")
    text = (suite.DATA_DIR / "dyestuff.csv").read_text()
    (tmp_path / "dyestuff.csv").write_text(text.replace("1545", "1546", 1))
    with pytest.raises(ValueError, match="dyestuff.csv: sha256 .* does not match"):
        suite.load_suite_data("dyestuff", data_dir=tmp_path)
    frame = suite.load_suite_data("dyestuff", data_dir=tmp_path, check=False)
    assert frame["Yield"].iloc[0] == 1546


def test_scaled_copies_are_exact():
    d = suite.load_suite_data("scotssec")
    np.testing.assert_array_equal(d["verbal_x1000"], d["verbal"] * 1000)
    np.testing.assert_allclose(d["verbal_x0001"], d["verbal"] / 1000, rtol=1e-15)
    np.testing.assert_array_equal(d["attain_shift"], d["attain"] + 1e6)


def test_lookup_by_id():
    assert suite.lmm_fit("exam_block_ml")["REML"] is False
    assert suite.glmm_fit("epil_ri_agq25")["nAGQ"] == 25
    with pytest.raises(KeyError, match="no fit 'nope'"):
        suite.lmm_fit("nope")
    with pytest.raises(ValueError, match="suite must be"):
        suite.load_suite_document("lme4")


# ---- both suites: provenance --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lmm", "glmm"])
def test_suite_was_computed_from_the_committed_bytes(kind):
    doc = suite.load_suite_document(kind)
    for name, info in doc["datasets"].items():
        assert info["sha256"] == REGISTRY[name]["sha256"], name
    used = {f["dataset"] for f in doc["fits"]}
    assert used <= set(doc["datasets"])
    assert doc["versions"]["lme4"] and doc["versions"]["R"].startswith("R version")


@pytest.mark.parametrize("fits", [LMM, GLMM], ids=["lmm", "glmm"])
def test_ids_unique(fits):
    ids = [f["id"] for f in fits]
    assert len(ids) == len(set(ids))


def _group_count(frame: pd.DataFrame, factor: str) -> int:
    """Levels of an lme4 grouping factor: a column, or 'b:a' / 'c:(b:a)' as the observed
    combinations of those columns."""
    cols = factor.replace("(", "").replace(")", "").split(":")
    return len(frame[cols].drop_duplicates()) if len(cols) > 1 else frame[factor].nunique()


@pytest.mark.parametrize("fit", LMM + GLMM, ids=lambda f: f["id"])
def test_nobs_and_group_counts_match_the_data(fit):
    frame = suite.load_suite_data(fit["dataset"])
    assert fit["nobs"] == len(frame)
    for factor, n in fit["ngrps"].items():
        assert _group_count(frame, factor) == n, factor


def _check_common(fit):
    fe = fit["fixef"]
    p = len(fe["names"])
    assert len(fe["estimate"]) == len(fe["se"]) == p
    v = np.array(fe["vcov"]["values"], dtype=float)
    assert fe["vcov"]["rows"] == fe["vcov"]["cols"] == fe["names"]
    np.testing.assert_allclose(v, v.T, rtol=1e-12, atol=0)
    np.testing.assert_allclose(np.sqrt(np.diag(v)), fe["se"], rtol=RTOL)
    th = fit["theta"]
    assert len(th["names"]) == len(th["values"]) == len(th["lower"])
    for value, low in zip(th["values"], th["lower"]):
        assert low is None or value >= low
    for vc in fit["varcorr"]:
        cov = np.array(vc["cov"]["values"], dtype=float)
        assert vc["cov"]["rows"] == vc["terms"]
        np.testing.assert_allclose(cov, cov.T, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(np.sqrt(np.diag(cov)), vc["sd"], rtol=RTOL)
        assert vc["factor"] in fit["ngrps"]
    for re in fit["ranef"]:
        assert re["factor"] in fit["ngrps"]
        assert len(re["levels"]) == min(5, re["n_levels"]) == len(re["condval"])
        for row, sds in zip(re["condval"], re["condsd"]):
            assert len(row) == len(sds) == len(re["terms"])
            assert all(s is None or s >= 0 for s in sds)
    assert len(fit["fitted_first5"]) == 5
    ll = fit["logLik"]
    assert close(fit["AIC"], -2 * ll + 2 * fit["df"])
    assert close(fit["BIC"], -2 * ll + math.log(fit["nobs"]) * fit["df"])
    conv = fit["convergence"]
    assert set(conv) >= {"optimizer", "lme4_messages", "warnings", "messages"}
    oc = fit["optimizer_check"]
    assert oc["default_minus_best"] >= 0
    assert oc["default_is_best"] == (oc["default_minus_best"] <= suite.load_suite_document(
        "lmm" if "REML" in fit else "glmm")["flag_tol"])
    assert oc["best"] == "default" or oc["best"] in oc["refits"]


# ---- the LMM suite -------------------------------------------------------------------------


@pytest.mark.parametrize("fit", LMM, ids=lambda f: f["id"])
def test_lmm_record(fit):
    assert set(fit) >= suite.LMM_FIT_KEYS
    assert fit["dataset"] in REGISTRY
    _check_common(fit)
    crit = "REMLcrit" if fit["REML"] else "deviance"
    assert fit["objective_name"] == crit and fit[crit] == fit["objective"]
    assert close(fit["objective"], -2 * fit["logLik"])
    assert fit["df"] == len(fit["fixef"]["names"]) + len(fit["theta"]["values"]) + 1
    assert fit["id"] == fit["model"] + ("_reml" if fit["REML"] else "_ml")
    dc = fit["dense_check"]
    if dc["method"] != "skipped":
        # an independent dense likelihood reproduces lme4's criterion at lme4's theta
        assert abs(dc["default_dense_minus_lme4"]) < 1e-6
        if "at_best" in dc:
            assert abs(dc["best_dense_minus_lme4"]) < 1e-6
    else:
        assert fit["optimizer_check"]["default_is_best"]


def test_lmm_reml_ml_pairs():
    by_id = {f["id"]: f for f in LMM}
    for fit in LMM:
        other = by_id[fit["pair"]]
        assert other["pair"] == fit["id"] and other["REML"] is not fit["REML"]
        assert (other["formula"], other["dataset"], other["model"]) == (
            fit["formula"], fit["dataset"], fit["model"])


def test_lmm_flagged_fits_are_verified_densely():
    for fit in LMM:
        if not fit["optimizer_check"]["default_is_best"]:
            dc = fit["dense_check"]
            assert dc["method"] in ("dense_V", "woodbury"), fit["id"]
            # the point the optimizers found is better than lme4's default, by the dense count
            assert dc["best_minus_default"] < 0, fit["id"]


def _features(fits):
    return {feat for f in fits for feat in f["features"]}


def test_lmm_coverage():
    assert len(LMM) >= 70
    assert len({REGISTRY[f["dataset"]]["object"] for f in LMM}) >= 12
    need = {
        "crossed", "partially_crossed", "nested", "three_level", "four_level", "diagonal",
        "block_diagonal", "several_slopes", "random_slope", "boundary", "singular_variance",
        "singular_correlation", "raw_scale", "rescaled", "shifted_outcome", "tiny_groups",
        "few_groups", "large", "interaction_term",
    }
    assert need <= _features(LMM)
    assert any(f["nobs"] >= 30000 and "random_slope" in f["features"] for f in LMM)
    assert any(f["nobs"] >= 70000 and "crossed" in f["features"] for f in LMM)
    for fit in LMM:
        if "singular_correlation" in fit["features"] or "singular_variance" in fit["features"]:
            assert any(f["isSingular"] for f in LMM if f["model"] == fit["model"]), fit["id"]
        if "few_groups" in fit["features"]:
            assert min(fit["ngrps"].values()) <= 6, fit["id"]
        if "four_level" in fit["features"]:
            assert len(fit["ngrps"]) >= 3, fit["id"]


def test_lmm_tiny_groups_are_tiny():
    for fit in LMM:
        if "tiny_groups" in fit["features"]:
            frame = suite.load_suite_data(fit["dataset"])
            sizes = [frame.groupby(g.replace("(", "").replace(")", "").split(":")).size()
                     for g in fit["ngrps"]]
            assert any((s <= 2).mean() >= 0.1 for s in sizes), fit["id"]


def test_lmm_rescaled_models_agree():
    """x1000 / x0.001 / outcome + 1e6: the same optimum, with the algebra's rescaling."""
    for meth in ("reml", "ml"):
        base = suite.lmm_fit(f"scots_slope_{meth}")["optimizer_check"]["best_fit"]
        for model, factor in (("scots_slope_x1000", 1000.0), ("scots_slope_x0001", 0.001)):
            other = suite.lmm_fit(f"{model}_{meth}")["optimizer_check"]["best_fit"]
            assert close(other["objective"] - (2 * math.log(factor) if meth == "reml" else 0),
                         base["objective"], rtol=1e-7)
            assert close(other["fixef"]["estimate"][1] * factor, base["fixef"]["estimate"][1],
                         rtol=1e-4)
        shift = suite.lmm_fit(f"scots_slope_shift_{meth}")["optimizer_check"]["best_fit"]
        assert close(shift["objective"], base["objective"], rtol=1e-9)
        assert close(shift["fixef"]["estimate"][0] - 1e6, base["fixef"]["estimate"][0], rtol=1e-6)


# ---- the GLMM suite ------------------------------------------------------------------------


@pytest.mark.parametrize("fit", GLMM, ids=lambda f: f["id"])
def test_glmm_record(fit):
    assert set(fit) >= suite.GLMM_FIT_KEYS
    _check_common(fit)
    assert close(fit["minus2logLik"], -2 * fit["logLik"])
    if fit["nAGQ"] > 1:
        assert fit["logLik_scale"] == "relative_to_saturated"
        assert close(fit["logLik_full"], fit["logLik"] + fit["saturated_loglik"])
    else:
        assert fit["logLik_scale"] == "full" and fit["logLik_full"] == fit["logLik"]
    assert fit["id"].startswith(fit["model"] + "_")
    hc = fit["hessian_check"]
    assert len(hc["se"]) == len(fit["fixef"]["names"])
    assert all(s > 0 for s in hc["se"])
    assert hc["glmer_se_differs"] == (hc["glmer_se_max_abs_rel_diff"] > 0.005)
    # the independent deviance reproduces glmer's -2 logLik at glmer's best point: to 1e-6
    # with 10 or more quadrature nodes, to 3e-3 with Laplace (glmer's log-determinant is not
    # taken at the conditional modes, see the README), always from below or equal
    if fit["nAGQ"] >= 10:
        assert abs(hc["devfun_at_best_minus_glmer"]) < 1e-6
    else:
        assert -3e-3 < hc["devfun_at_best_minus_glmer"] < 1e-6
    polished = hc["polished"]["minus2logLik_minus_best_glmer"]
    assert polished <= hc["devfun_at_best_minus_glmer"] + 1e-9
    assert hc["max_abs_gradient"] < 2e-3  # the Hessian is taken at a stationary point
    if fit["family"] in ("poisson", "negative_binomial"):
        od = fit["overdispersion"]
        assert close(od["ratio"], od["pearson_chisq"] / od["df_residual"])
    if fit["nAGQ"] == 25:
        # 25-node adaptive quadrature equals an independent adaptive integration
        assert abs(fit["quadrature_check"]["logLik_full_minus_integrate"]) < 1e-4


def test_glmm_quadrature_ladders():
    models = {f["model"] for f in GLMM if f["nAGQ"] > 1}
    for model in models:
        assert {f["nAGQ"] for f in GLMM if f["model"] == model} == {1, 5, 10, 25}
        fits = [f for f in GLMM if f["model"] == model]
        assert all(len(f["theta"]["values"]) == 1 and len(f["ngrps"]) == 1 for f in fits)


def test_glmm_coverage():
    assert len(GLMM) >= 30
    assert len({REGISTRY[f["dataset"]]["object"] for f in GLMM}) >= 7
    need = {"binary", "binomial_trials", "count", "offset", "random_slope", "crossed",
            "three_level", "negative_binomial"}
    assert need <= _features(GLMM)
    assert {"binomial", "poisson", "negative_binomial"} <= {f["family"] for f in GLMM}
    assert any(f["formula"].startswith("cbind(") for f in GLMM)
    assert any("offset(" in f["formula"] for f in GLMM)


def test_bad_inputs():
    bad = suite.load_bad_inputs()
    assert {"quasi_separation", "complete_separation", "nonbinary_outcome", "negative_failures",
            "negative_count", "noninteger_count", "one_row_per_group"} <= set(bad)
    for case in bad.values():
        assert case["dataset"] == "bad_inputs"
        # glmer either stops, warns, or reports a convergence / singular-fit message
        assert case["error"] or case["warnings"] or case["messages"], case["id"]
    frame = suite.load_suite_data("bad_inputs")
    x1 = frame[frame["x"] == 1]
    assert (x1["y_quasi"] == 1).all()  # x = 1 predicts y = 1 everywhere
    assert (frame["y_complete"] == frame["x"]).all()
