"""compare_with_statsmodels reports a failing statsmodels fit as a row instead of crashing.

statsmodels 0.15's ``MixedLM.fit(method="lbfgs")`` raises ``LinAlgError: Singular matrix``
(from ``np.linalg.inv`` in ``score_full``) on many random-intercept fits to ordinary simulated
data, whatever the OpenBLAS kernel (the three data sets below fail under the default,
Haswell, SkylakeX and Sandybridge kernels). The comparison must still return its table.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.regression.mixed_linear_model import MixedLM

import mlm_lessons as mlm

DEFAULT = "statsmodels default fit()"
LBFGS = "statsmodels lbfgs"
OURS = "mlm_lessons.fit_mixed"

# (seed, groups, rows per group): a random intercept (tau00 = 0.5), no random slope
CASES = [(1, 10, 5), (2, 10, 5), (1, 20, 3)]


def _simulated(seed, n_groups, size):
    return mlm.simulate_two_level(
        n_groups, size, gamma00=1.0, gamma10=0.5, tau00=0.5, sigma2=1.0, seed=seed
    )


def _statsmodels_lbfgs_error(data):
    """The exception statsmodels' own lbfgs fit raises on ``data``, or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            smf.mixedlm("y ~ x", data, groups=data["group"]).fit(reml=True, method="lbfgs")
        except Exception as exc:  # what the package must catch
            return exc
    return None


@pytest.mark.parametrize("case", CASES, ids=[f"seed{s}-J{j}-n{n}" for s, j, n in CASES])
def test_singular_matrix_in_lbfgs_becomes_a_row(case):
    data = _simulated(*case)
    before = data.copy()
    error = _statsmodels_lbfgs_error(data)
    # the crash this guards against is real on the pinned statsmodels (0.15.0)
    assert isinstance(error, np.linalg.LinAlgError), (
        f"statsmodels' lbfgs no longer fails on {case} ({error!r}); pick data that make it fail"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing escapes: failures and warnings are data
        tab = mlm.compare_with_statsmodels(data, "y ~ x", "group")
    assert list(tab.index) == [DEFAULT, LBFGS, OURS]
    row = tab.loc[LBFGS]
    assert row["messages"].startswith("failed: LinAlgError: Singular matrix")
    assert not bool(row["converged"])
    assert np.isnan(row[["loglik", "tau00", "sigma2"]].astype(float)).all()
    # the other engines still report; the package's fit is the independent dense likelihood's
    ours = tab.loc[OURS]
    fit = mlm.fit_mixed(data, "y ~ x", "group")
    np.testing.assert_allclose(ours["loglik"], mlm.marginal_loglik(fit), atol=1e-6)
    assert np.isfinite(tab.loc[DEFAULT, "loglik"])
    assert data.equals(before)


def test_failure_keeps_the_warnings_raised_before_it(sleepstudy, monkeypatch):
    original = MixedLM.fit

    def fit(self, *args, **kwargs):
        if kwargs.get("method") == "lbfgs":
            warnings.warn("step size shrank", RuntimeWarning)
            raise FloatingPointError("overflow in the score")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MixedLM, "fit", fit)
    tab = mlm.compare_with_statsmodels(sleepstudy, "reaction ~ days", "subject", re_formula="days")
    row = tab.loc[LBFGS]
    assert row["messages"] == (
        "failed: FloatingPointError: overflow in the score | RuntimeWarning: step size shrank"
    )
    assert row["n_messages"] == 1 and not bool(row["converged"])
    # every variance component of the failed engine is missing, none is invented
    assert np.isnan(row[["loglik", "tau00", "tau11", "tau01", "sigma2"]].astype(float)).all()
    assert isinstance(row["seconds"], float) and row["seconds"] >= 0
    assert list(tab.columns) == [
        "loglik",
        "tau00",
        "tau11",
        "tau01",
        "sigma2",
        "converged",
        "n_messages",
        "messages",
        "seconds",
    ]
    assert tab.loc[DEFAULT, "messages"] == "" and bool(tab.loc[OURS, "converged"])


def test_both_statsmodels_fits_may_fail(sleepstudy, monkeypatch):
    def fit(self, *args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(MixedLM, "fit", fit)
    tab = mlm.compare_with_statsmodels(sleepstudy, "reaction ~ days", "subject")
    assert (tab.loc[[DEFAULT, LBFGS], "messages"] == "failed: LinAlgError: Singular matrix").all()
    assert pd.api.types.is_float_dtype(tab["loglik"])
    assert np.isfinite(tab.loc[OURS, "loglik"])


def test_errors_of_the_package_itself_are_raised(sleepstudy):
    # bad input is the caller's to fix: it is not turned into a "failed" row
    with pytest.raises(KeyError, match="not in data"):
        mlm.compare_with_statsmodels(sleepstudy, "reaction ~ hours", "subject")
