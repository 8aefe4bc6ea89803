"""The fitting engine (mlm_lessons._engine) against an independent dense computation.

For random theta, the profiled (RE)ML deviance of every structure the engine has (nested
factors of any depth, small crossed designs factored densely, large crossed designs with a
dense Schur complement) must equal the deviance computed from V = Z Lam Lam' Z' + I by dense
linear algebra; the conditional modes and covariances must equal A^{-1} Lam' Z'(y - X beta)
and the blocks of A^{-1}; the exact gradient must equal central differences. Tolerances:
deviance 1e-7 relative (both are exact up to rounding), gradient 1e-5 (the step of the
differences), modes and covariances 1e-8.
"""

import zlib

import numpy as np
import pandas as pd
import pytest

from mlm_lessons import _design, _engine


def _data(seed=1, n=300):
    rng = np.random.default_rng(seed)
    school = rng.integers(0, 8, n)
    cls = school * 10 + rng.integers(0, 4, n)
    pupil = cls * 10 + rng.integers(0, 3, n)
    x, z = rng.normal(size=n), rng.normal(size=n)
    y = (1 + x + rng.normal(size=8)[school] + rng.normal(size=80)[cls % 80]
         + 0.5 * x * rng.normal(size=8)[school] + rng.normal(size=n))
    return pd.DataFrame(dict(y=y, x=x, z=z, school=school, cls=cls, pupil=pupil,
                             rater=rng.integers(0, 6, n), item=rng.integers(0, 15, n)))


DATA = _data()


def _problem(formula, reml, data=DATA):
    d = _design.build_design(data, formula)
    terms = [_engine.ReTerm(t.codes, t.Z, t.n_levels, _engine.Layout.of(t.q, t.blocks))
             for t in d.terms]
    order = _engine.sort_terms(terms)
    return _engine.Problem(d.y, d.X, [terms[i] for i in order], reml)


def _dense_parts(pr, theta):
    n = pr.n
    blocks = []
    for t, lam in zip(pr.terms, pr.split(theta)):
        Zfull = np.zeros((n, t.n_levels * t.q))
        for a in range(t.q):
            Zfull[np.arange(n), t.codes * t.q + a] = t.Z[:, a]
        blocks.append(Zfull @ np.kron(np.eye(t.n_levels), lam))
    return np.hstack(blocks)


def dense_deviance(pr, theta):
    ZL = _dense_parts(pr, theta)
    V = ZL @ ZL.T + np.eye(pr.n)
    Vi = np.linalg.inv(V)
    X, y, n, p = pr.X, pr.y, pr.n, pr.X.shape[1]
    XVX = X.T @ Vi @ X
    beta = np.linalg.solve(XVX, X.T @ Vi @ y)
    r = y - X @ beta
    pw = r @ Vi @ r
    ld = np.linalg.slogdet(V)[1]
    if pr.reml:
        return ld + np.linalg.slogdet(XVX)[1] + (n - p) * (1 + np.log(2 * np.pi * pw / (n - p)))
    return ld + n * (1 + np.log(2 * np.pi * pw / n))


def _random_theta(pr, rng):
    th = np.abs(rng.normal(size=pr.n_theta)) + 0.1
    off = pr.lower == -np.inf
    th[off] = rng.normal(size=off.sum())
    return th


FORMULAS = {
    "nested": [
        "y ~ x + (1|school)",
        "y ~ x + (x|school)",
        "y ~ x + (1|school) + (1|cls)",
        "y ~ x + (1 + x|school) + (1 + x|cls)",
        "y ~ x + z + (x || school) + (1|cls)",
        "y ~ x + (1|school/cls/pupil)",
        "y ~ x + (1 + x | school) + (0 + z | school) + (x|cls)",
        "y ~ 0 + x + (x|school)",
    ],
    "dense": [
        "y ~ x + (1|rater) + (1|item)",
        "y ~ x + (1 + x|item) + (1|rater) + (1|school)",
        "y ~ x + (1|cls) + (x|rater)",
        "y ~ 0 + x + (x||item) + (1|rater)",
    ],
}
FORMULAS["crossed"] = FORMULAS["dense"]


@pytest.fixture
def structure(request, monkeypatch):
    if request.param == "crossed":  # force the blocked path on these small designs
        monkeypatch.setattr(_engine, "SMALL_DENSE", 0)
    return request.param


CASES = [(s, f) for s in FORMULAS for f in FORMULAS[s]]


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("structure, formula", CASES, indirect=["structure"])
def test_deviance_modes_and_gradient_against_dense_algebra(structure, formula, reml):
    pr = _problem(formula, reml)
    assert pr.structure == structure
    rng = np.random.default_rng(zlib.crc32(f"{formula}{reml}".encode()))
    for _ in range(3):
        th = _random_theta(pr, rng)
        assert pr.deviance(th) == pytest.approx(dense_deviance(pr, th), rel=1e-7)
        value, grad = pr.value_and_gradient(th)
        assert value == pytest.approx(pr.deviance(th), rel=1e-12)
        h = 1e-6
        eye = np.eye(len(th))
        num = [(pr.deviance(th + h * eye[i]) - pr.deviance(th - h * eye[i])) / (2 * h)
               for i in range(len(th))]
        np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-5)
    # conditional modes and covariances
    f = pr.factor(th)
    ZL = _dense_parts(pr, th)
    A = ZL.T @ ZL + np.eye(ZL.shape[1])
    Ai = np.linalg.inv(A)
    u_dense = Ai @ ZL.T @ (pr.y - pr.X @ f.beta())
    off = 0
    for t, u, S in zip(pr.terms, pr.modes(f), pr.condcov(f)):
        size = t.n_levels * t.q
        np.testing.assert_allclose(u.ravel(), u_dense[off : off + size], atol=1e-8)
        blk = Ai[off : off + size, off : off + size]
        for g in range(t.n_levels):
            np.testing.assert_allclose(S[g], blk[g * t.q : (g + 1) * t.q,
                                                  g * t.q : (g + 1) * t.q], atol=1e-9)
        off += size


def test_with_response_reuses_the_design():
    pr = _problem("y ~ x + (x|school) + (1|cls)", True)
    y2 = DATA["y"].to_numpy()[::-1].copy()
    new = pr.with_response(y2)
    ref = _problem("y ~ x + (x|school) + (1|cls)", True, DATA.assign(y=y2))
    th = _random_theta(pr, np.random.default_rng(3))
    assert new.deviance(th) == pytest.approx(ref.deviance(th), rel=1e-12)


def test_psd_cholesky_of_singular_matrices():
    T = np.array([[4.0, 2.0], [2.0, 1.0]])  # correlation +1
    L = _engine.psd_cholesky(T)
    np.testing.assert_allclose(L @ L.T, T, atol=1e-12)
    assert L[1, 1] == 0
    T0 = np.diag([0.0, 2.0])
    np.testing.assert_allclose(_engine.psd_cholesky(T0) @ _engine.psd_cholesky(T0).T, T0)
