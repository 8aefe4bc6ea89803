"""The matrix form of the model (mlm_lessons.matrices) against lme4, R and closed forms.

References:
- tests/reference/lme4_reference.json (R 4.2.2, lme4 1.1-31): logLik, fixef, vcov, T and
  sigma2 of every fit, and ``checks``: an R computation of the REML log-likelihood at the
  values published by Raudenbush and Bryk (2002, Tables 4.4 and 4.5).
- closed forms of V_j and a dense multivariate normal density (scipy) of all the data.

Tolerances:
- log-likelihoods at the same parameters: 1e-6 absolute. Both sides evaluate the same
  formula at the same numbers (lme4's T and sigma2 are stored to 15 digits); the only
  difference is floating-point rounding in sums of about 7,000 terms of size 1e4, which is
  below 1e-8. 1e-6 is the tolerance the course sets for "the same computation".
- fixed effects and their covariance at the same parameters: 1e-6 relative, for the same
  reason (GLS is a smooth function of T and sigma2, evaluated at identical values).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import linalg, stats

import mlm_lessons as mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_reference.json").read_text())
PUBLISHED = mlm.load_reference("raudenbush_bryk_2002")

# lme4 model name -> (dataset fixture, fixed formula, group, re_formula, diagonal)
MODELS = {
    "hsb_null": ("hsb", "mathach ~ 1", "school", None, False),
    "hsb_means_as_outcomes": ("hsb", "mathach ~ meanses", "school", None, False),
    "hsb_random_intercept_ses": ("hsb", "mathach ~ ses", "school", None, False),
    "hsb_random_coefficient_cses": ("hsb", "mathach ~ cses", "school", "cses", False),
    "hsb_full": ("hsb", "mathach ~ meanses*cses + catholic*cses", "school", "cses", False),
    "sleep_random_intercept": ("sleepstudy", "reaction ~ days", "subject", None, False),
    "sleep_random_slope": ("sleepstudy", "reaction ~ days", "subject", "days", False),
    "sleep_uncorrelated": ("sleepstudy", "reaction ~ days", "subject", "days", True),
}
METHODS = ("REML", "ML")
_FITS: dict = {}


def _key(term: str) -> str:
    """lme4 or patsy term name -> a common key (order-free interactions, lower case)."""
    term = "Intercept" if term in ("(Intercept)", "Intercept") else term.lower()
    return ":".join(sorted(term.split(":")))


@pytest.fixture
def fitted(hsb, sleepstudy):
    def get(name, method):
        if (name, method) not in _FITS:
            data_name, formula, group, re_formula, diagonal = MODELS[name]
            data = hsb if data_name == "hsb" else sleepstudy
            _FITS[name, method] = mlm.fit_mixed(
                data, formula, group, re_formula=re_formula, method=method, diagonal=diagonal
            )
        return _FITS[name, method], REF[name][method]

    return get


def _lme4_tau(fit, ref) -> pd.DataFrame:
    """lme4's T relabelled with our term names, in our order."""
    rows = [_key(r) for r in ref["T"]["rownames"]]
    T = pd.DataFrame(ref["T"]["matrix"], index=rows, columns=rows)
    ours = list(fit.tau.index)
    T = T.loc[[_key(t) for t in ours], [_key(t) for t in ours]]
    T.index = T.columns = ours
    return T


# --- agreement with the fit itself (two independent algorithms) --------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", list(MODELS))
def test_dense_formulas_reproduce_the_fit(fitted, name, method):
    fit, _ = fitted(name, method)
    # engine: profiled deviance via per-group Cholesky factors; here: dense V_j
    assert_allclose(mlm.marginal_loglik(fit), fit.loglik, rtol=0, atol=1e-6)
    gls = mlm.gls_fixed_effects(fit)
    assert list(gls.fixed["term"]) == list(fit.fixed["term"])
    assert_allclose(gls.params, fit.params, rtol=1e-6)
    assert_allclose(gls.vcov.to_numpy(), fit.vcov().to_numpy(), rtol=1e-6, atol=1e-12)
    assert_allclose(gls.fixed["std_error"], fit.fixed["std_error"], rtol=1e-6)


# --- agreement with lme4 at lme4's own estimates ----------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", list(MODELS))
def test_loglik_and_gls_at_lme4_estimates(fitted, name, method):
    fit, ref = fitted(name, method)
    T = _lme4_tau(fit, ref)
    # lme4: logLik(m), at lme4's VarCorr(m) and sigma(m)^2
    assert_allclose(mlm.loglik_at(fit, T, ref["sigma2"]), ref["logLik"], rtol=0, atol=1e-6)
    gls = mlm.gls_fixed_effects(fit, tau=T, sigma2=ref["sigma2"])
    # lme4: fixef(m) and vcov(m)
    fixef = {_key(k): v for k, v in ref["fixef"].items()}
    assert_allclose(gls.params, [fixef[_key(t)] for t in gls.params.index], rtol=1e-6)
    order = [_key(t) for t in ref["vcov_fixef"]["rownames"]]
    V = pd.DataFrame(ref["vcov_fixef"]["matrix"], index=order, columns=order)
    ours = [_key(t) for t in gls.vcov.index]
    assert_allclose(gls.vcov.to_numpy(), V.loc[ours, ours].to_numpy(), rtol=1e-6, atol=1e-12)


def test_loglik_method_switch_matches_lme4(fitted):
    """A REML fit's data evaluated by ML at lme4's ML estimates gives lme4's ML logLik."""
    fit, _ = fitted("hsb_full", "REML")
    ref = REF["hsb_full"]["ML"]
    value = mlm.loglik_at(fit, _lme4_tau(fit, ref), ref["sigma2"], method="ML")
    assert_allclose(value, ref["logLik"], rtol=0, atol=1e-6)


# --- the published Raudenbush and Bryk values -------------------------------------------


def _published(model: str) -> tuple[np.ndarray, float]:
    """The published T (random intercept and cses slope) and sigma2 of a table."""
    tab = PUBLISHED[PUBLISHED["model"] == model].set_index("quantity")["published"]
    t00, t01, t11 = (
        tab[f"T[{k}]"] for k in ("(Intercept),(Intercept)", "(Intercept),cses", "cses,cses")
    )
    return np.array([[t00, t01], [t01, t11]]), float(tab["sigma2"])


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("hsb_full", "hsb_full_published_vs_reml"),
        ("hsb_random_coefficient_cses", "hsb_random_coefficient_cses_published_vs_reml"),
    ],
)
def test_loglik_at_published_values_matches_r(fitted, name, check):
    fit, _ = fitted(name, "REML")
    T, sigma2 = _published(name)
    ref = REF["checks"][check]
    # R: direct school-by-school REML log-likelihood at the published T and sigma2
    assert_allclose(mlm.loglik_at(fit, T, sigma2), ref["logLik_at_published"], atol=1e-6)
    drop = fit.loglik - mlm.loglik_at(fit, T, sigma2)
    # R: loglik_drop_at_published; our optimum differs from lme4's by < 1e-6 (test_models)
    assert_allclose(drop, ref["loglik_drop_at_published"], atol=1e-5)
    assert drop > 0  # the published point is not the REML optimum


def test_published_full_model_point_agrees_with_r_profile(fitted):
    """R's best point with tau11 held at 0.15 beats the published point, and both are
    within 0.03 of the optimum: evaluating R's profile point here reproduces its value."""
    fit, _ = fitted("hsb_full", "REML")
    ref = REF["checks"]["hsb_full_published_vs_reml"]
    est = ref["profile_tau11_0.15_estimates"]
    T = np.array([[est["tau00"], est["tau01"]], [est["tau01"], 0.15]])
    assert_allclose(
        mlm.loglik_at(fit, T, est["sigma2"]), ref["logLik_profile_tau11_0.15"], atol=1e-6
    )


# --- closed forms and a dense density of all the data ------------------------------------


def test_random_intercept_v_is_compound_symmetric(fitted):
    fit, _ = fitted("hsb_null", "REML")
    m = mlm.model_matrices(fit, "1224")
    n = len(m["y"])
    tau00 = float(fit.tau.iloc[0, 0])
    expected = tau00 * np.ones((n, n)) + fit.sigma2 * np.eye(n)
    assert_allclose(m["V"].to_numpy(), expected, rtol=1e-12)
    assert list(m["X"].columns) == ["Intercept"]
    assert m["T"].equals(fit.tau)


def test_random_slope_v_elementwise(fitted):
    fit, _ = fitted("sleep_random_slope", "REML")
    group = pd.unique(fit.matrices().groups[fit.group])[3]
    m = mlm.model_matrices(fit, group)
    x = m["Z"]["days"].to_numpy()
    t00, t01, t11 = fit.tau.iloc[0, 0], fit.tau.iloc[0, 1], fit.tau.iloc[1, 1]
    # Cov(y_i, y_k) = t00 + t01 (x_i + x_k) + t11 x_i x_k + sigma2 [i == k]
    expected = t00 + t01 * np.add.outer(x, x) + t11 * np.outer(x, x)
    expected += fit.sigma2 * np.eye(len(x))
    assert_allclose(m["V"].to_numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_loglik_equals_a_multivariate_normal_density(fitted, sleepstudy, method):
    """ML: log N(y; X b, blockdiag V_j) of all 180 rows at once (scipy), REML adds
    -1/2 log|X'V^-1X| + p/2 log(2 pi)."""
    fit, _ = fitted("sleep_random_slope", method)
    m = mlm.design_matrices(sleepstudy, "reaction ~ days", "subject", re_formula="days")
    X, Z, y = m["X"].to_numpy(), m["Z"].to_numpy(), m["y"].to_numpy().ravel()
    G = linalg.block_diag(*[fit.tau.to_numpy()] * fit.n_groups)
    V = Z @ G @ Z.T + fit.sigma2 * np.eye(len(y))
    Vi = np.linalg.inv(V)
    XtVX = X.T @ Vi @ X
    beta = np.linalg.solve(XtVX, X.T @ Vi @ y)
    value = stats.multivariate_normal(X @ beta, V).logpdf(y)
    if method == "REML":
        value += -0.5 * np.linalg.slogdet(XtVX)[1] + 0.5 * X.shape[1] * np.log(2 * np.pi)
    assert_allclose(mlm.marginal_loglik(fit), value, rtol=0, atol=1e-6)


def test_block_z_times_blups_gives_conditional_minus_marginal_prediction(fitted, hsb):
    fit, _ = fitted("hsb_random_coefficient_cses", "REML")
    m = mlm.design_matrices(hsb, "mathach ~ cses", "school", re_formula="cses")
    u = fit.random_effects()
    u_vec = u.set_index(u["group"].astype(str) + ":" + u["term"])["estimate"]
    Zu = m["Z"].to_numpy() @ u_vec.loc[m["Z"].columns].to_numpy()
    diff = fit.predict() - fit.predict(conditional=False)
    assert_allclose(Zu, diff.to_numpy(), rtol=1e-10, atol=1e-10)
    assert m["Z"].shape == (len(hsb), 2 * fit.n_groups)
    assert_allclose(m["X"].to_numpy(), fit._design.X)


def test_model_matrices_group_rows_and_labels(fitted, hsb):
    fit, _ = fitted("hsb_full", "REML")
    m = mlm.model_matrices(fit, "1224")
    rows = hsb.index[hsb["school"] == "1224"]
    for key in ("y", "X", "Z"):
        assert list(m[key].index) == list(rows)
    assert list(m["V"].columns) == list(rows)
    assert_allclose(m["y"].iloc[:, 0], hsb.loc[rows, "mathach"])
    assert_allclose(m["X"]["meanses:cses"], hsb.loc[rows, "meanses"] * hsb.loc[rows, "cses"])


def test_loglik_at_is_lower_away_from_the_optimum(fitted):
    fit, _ = fitted("sleep_random_slope", "ML")
    best = fit.loglik
    for scale in (0.5, 2.0):
        assert mlm.loglik_at(fit, fit.tau * scale, fit.sigma2) < best
        assert mlm.loglik_at(fit, fit.tau, fit.sigma2 * scale) < best


# --- bad input ---------------------------------------------------------------------------


def test_errors(fitted):
    fit, _ = fitted("hsb_random_coefficient_cses", "REML")
    with pytest.raises(TypeError, match="fit must be a MixedFit"):
        mlm.marginal_loglik("not a fit")
    with pytest.raises(TypeError, match="fit must be a MixedFit"):
        mlm.gls_fixed_effects(None)
    with pytest.raises(KeyError, match="not a level-2 unit"):
        mlm.model_matrices(fit, 1224)
    with pytest.raises(ValueError, match="must be 2 x 2"):
        mlm.loglik_at(fit, 1.0, 36.0)
    with pytest.raises(ValueError, match="symmetric"):
        mlm.loglik_at(fit, [[1.0, 0.5], [0.0, 1.0]], 36.0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        mlm.loglik_at(fit, [[1.0, 2.0], [2.0, 1.0]], 36.0)
    with pytest.raises(ValueError, match="sigma2 must be a positive"):
        mlm.loglik_at(fit, fit.tau, 0.0)
    with pytest.raises(TypeError, match="sigma2 must be a number"):
        mlm.loglik_at(fit, fit.tau, "36")
    with pytest.raises(TypeError, match="tau must be a number"):
        mlm.loglik_at(fit, {"a": 1}, 36.0)
    with pytest.raises(ValueError, match="tau must be a covariance matrix"):
        mlm.loglik_at(fit, [[np.nan, 0.0], [0.0, 1.0]], 36.0)
    with pytest.raises(ValueError, match="labelled by the fit's random-effect terms"):
        mlm.loglik_at(fit, pd.DataFrame(np.eye(2), index=["a", "b"], columns=["a", "b"]), 36.0)
    with pytest.raises(ValueError, match="method must be"):
        mlm.loglik_at(fit, fit.tau, fit.sigma2, method="OLS")


def test_design_matrices_errors(hsb):
    with pytest.raises(KeyError, match="not in data"):
        mlm.design_matrices(hsb, "mathach ~ nope", "school")
    with pytest.raises(KeyError, match="not in data"):
        mlm.design_matrices(hsb, "mathach ~ ses", "nope")


def test_tau_dataframe_in_any_order(fitted):
    fit, _ = fitted("hsb_random_coefficient_cses", "REML")
    swapped = fit.tau.loc[["cses", "Intercept"], ["cses", "Intercept"]]
    assert mlm.loglik_at(fit, swapped, fit.sigma2) == mlm.loglik_at(fit, fit.tau, fit.sigma2)
