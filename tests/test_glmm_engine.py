"""The pieces the GLMM adds to the linear engine, against independent computations.

- ``Problem.reweight`` equals a new ``Problem`` built with the same response and weights
  (nested and crossed terms), to rounding;
- the dense coupling block of crossed factors equals the sparse one;
- ``minimize_deviance`` finds the known minimum of a bounded function and leaves a saddle at
  the bound, with lme4's convergence rule;
- ``standardize_columns`` leaves the linear predictor unchanged.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mlm_lessons import _engine


def _terms(rng, n, crossed):
    a = rng.integers(0, 30, n)
    if crossed:
        b = rng.integers(0, 7, n)
    else:
        b = a // 5  # nested: 6 outer groups
    x = rng.normal(size=n)
    t1 = _engine.ReTerm(a, np.column_stack([np.ones(n), x]), 30,
                        _engine.Layout.of(2, [(0, 1)]))
    t2 = _engine.ReTerm(b, np.ones((n, 1)), int(b.max()) + 1, _engine.Layout.of(1, [(0,)]))
    return [t1, t2], x


@pytest.mark.parametrize("crossed", [False, True])
def test_reweight_equals_a_new_problem(crossed):
    rng = np.random.default_rng(11)
    n = 400
    terms, x = _terms(rng, n, crossed)
    X = np.column_stack([np.ones(n), x])
    base = _engine.Problem(rng.normal(size=n), X, terms, False, weights=np.ones(n))
    y, w = rng.normal(size=n), rng.uniform(0.1, 3, n)
    fresh = _engine.Problem(y, X, terms, False, weights=w)
    again = base.reweight(y, w)
    assert again.nested == (not crossed)
    theta = np.array([0.8, 0.3, 0.5, 0.7])
    f1, f2 = fresh.factor(theta), again.factor(theta)
    assert_allclose(f2.deviance, f1.deviance, rtol=1e-12)
    assert_allclose(f2.logdet, f1.logdet, rtol=1e-12)
    for u1, u2 in zip(fresh.modes(f1), again.modes(f2)):
        assert_allclose(u2, u1, rtol=1e-9, atol=1e-12)
    for c1, c2 in zip(fresh.condcov(f1), again.condcov(f2)):
        assert_allclose(c2, c1, rtol=1e-9, atol=1e-12)
    # the original problem is unchanged
    assert base.w is not again.w and np.all(base.w == 1)


def test_dense_coupling_equals_sparse(monkeypatch):
    rng = np.random.default_rng(2)
    n = 500
    terms, x = _terms(rng, n, crossed=True)
    X = np.column_stack([np.ones(n), x])
    y, w = rng.normal(size=n), rng.uniform(0.5, 2, n)
    monkeypatch.setattr(_engine, "SMALL_DENSE", 0)  # the blocked crossed path
    prob = _engine.Problem(y, X, terms, True, weights=w)
    theta = np.array([1.1, -0.2, 0.4, 0.6])
    assert prob.structure == "crossed" and prob._dense_coupling()
    fd = prob.factor(theta)
    ud, cd = prob.modes(fd), prob.condcov(fd)
    monkeypatch.setattr(_engine.Problem, "_dense_coupling", lambda self: False)
    fs = prob.factor(theta)
    assert_allclose(fd.deviance, fs.deviance, rtol=1e-12)
    for a, b in zip(ud, prob.modes(fs)):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    for a, b in zip(cd, prob.condcov(fs)):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_minimize_deviance_known_minimum_and_saddle():
    # f = (x0 - 0.5)^2 + 3 (x1 + 1)^2 with x0 >= 0: interior minimum at (0.5, -1)
    opt = _engine.minimize_deviance(lambda x: (x[0] - 0.5) ** 2 + 3 * (x[1] + 1) ** 2,
                                    np.array([2.0, 2.0]), np.array([0.0, -np.inf]))
    assert_allclose(opt.theta, [0.5, -1.0], atol=1e-6)
    assert opt.convergence.ok and not opt.convergence.singular
    # symmetric in x0, a saddle at x0 = 0: f = -x0^2 + x0^4 + x1^2, minimum at x0 = 1/sqrt(2)
    opt = _engine.minimize_deviance(lambda x: -x[0] ** 2 + x[0] ** 4 + x[1] ** 2,
                                    np.array([0.0, 0.3]), np.array([0.0, -np.inf]))
    assert_allclose(opt.theta[0], 1 / np.sqrt(2), atol=1e-5)
    assert opt.restarts >= 1


def test_standardize_columns_keeps_the_linear_predictor():
    rng = np.random.default_rng(4)
    n = 200
    terms, x = _terms(rng, n, crossed=False)
    X = np.column_stack([np.ones(n), 100 + 50 * x, x**2])
    Xs, sterms, sc = _engine.standardize_columns(X, terms)
    beta_s = rng.normal(size=3)
    assert_allclose(X @ sc.beta(beta_s), Xs @ beta_s, atol=1e-9)
    assert sc.a == 0 and sc.s == 1
    for t, ts, N in zip(terms, sterms, sc.N):
        assert_allclose(t.Z @ N, ts.Z)
        assert_allclose(np.abs(ts.Z[:, -1]).mean() > 0, True)
