"""The fitting engine (mlm_lessons._engine) against an independent dense computation.

For random theta, the profiled (RE)ML deviance of every structure the engine has (nested
factors of any depth, small crossed designs factored densely, large crossed designs with a
dense Schur complement) must equal the deviance computed from V = Z Lam Lam' Z' + I by dense
linear algebra; the conditional modes and covariances must equal A^{-1} Lam' Z'(y - X beta)
and the blocks of A^{-1}; the exact gradient must equal central differences. Tolerances:
deviance 1e-7 relative (both are exact up to rounding), gradient 1e-5 (the step of the
differences), modes and covariances 1e-8.
"""

import sys
import zlib

import numpy as np
import pandas as pd
import pytest

from mlm_lessons import _design, _engine


def _data(seed=1, n=300):
    rng = np.random.default_rng(seed)
    school = rng.integers(0, 20, n)
    cls = school * 10 + rng.integers(0, 4, n)
    pupil = cls * 10 + rng.integers(0, 3, n)
    x, z = rng.normal(size=n), rng.normal(size=n)
    y = (1 + x + rng.normal(size=20)[school] + rng.normal(size=200)[cls]
         + 0.5 * x * rng.normal(size=20)[school] + rng.normal(size=n))
    rater, item = rng.integers(0, 6, n), rng.integers(0, 15, n)
    y = y + rng.normal(size=6)[rater] + rng.normal(size=15)[item] + 0.6 * x * rng.normal(
        size=15)[item]
    return pd.DataFrame(dict(y=y, x=x, z=z, school=school, cls=cls, pupil=pupil,
                             rater=rater, item=item))


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
        "y ~ x + (x|cls) + (1|rater)",  # the leading block eliminated first (q = 2)
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


# --- saddles at the boundary ---------------------------------------------------------------


def _sleep_problem(formula, reml=False):
    import mlm_lessons as mlm

    d = _design.build_design(mlm.load_dataset("sleepstudy"), formula)
    terms = [_engine.ReTerm(t.codes, t.Z, t.n_levels, _engine.Layout.of(t.q, t.blocks))
             for t in d.terms]
    ys, Xs, sterms, _ = _engine.standardize(d.y, d.X, terms)
    return _engine.Problem(ys, Xs, sterms, reml)


def _constrained_minimum(pr, fixed_index):
    """The minimum of the deviance with theta[fixed_index] held at 0: a stationary point of
    the full problem, because the profiled deviance is symmetric in that element."""
    from scipy import optimize

    free = np.arange(pr.n_theta) != fixed_index

    def f(z):
        th = np.zeros(pr.n_theta)
        th[free] = z
        return pr.deviance(th)

    bounds = [(0.0 if lo == 0 else None, None) for lo in pr.lower[free]]
    res = optimize.minimize(f, pr.identity()[free], method="L-BFGS-B", bounds=bounds,
                            options={"ftol": 1e-15, "gtol": 1e-10})
    th = np.zeros(pr.n_theta)
    th[free] = res.x
    return th


@pytest.mark.parametrize("formula, index, what", [
    ("reaction ~ days + (days | subject)", 2, "a correlation at +-1"),
    ("reaction ~ days + (days || subject)", 1, "a variance at zero"),
])
def test_the_optimizer_leaves_a_saddle_on_the_boundary(formula, index, what):
    pr = _sleep_problem(formula)
    saddle = _constrained_minimum(pr, index)
    value, grad = pr.value_and_gradient(saddle)
    # a stationary point: the gradient vanishes (the element at 0 by symmetry) ...
    assert np.max(np.abs(grad)) < 1e-3
    # ... but not a minimum: just inside, the deviance is lower
    inside = saddle.copy()
    inside[index] = 0.05
    assert pr.deviance(inside) < value
    # a gradient method started there stays; the engine's boundary test moves it off
    opt = _engine.optimize_theta(pr, saddle)
    assert opt.theta[index] > 0.05
    assert opt.deviance < value - 1.0
    assert opt.convergence.ok and not opt.convergence.singular
    assert opt.restarts >= 1


def test_a_true_boundary_optimum_stays_on_the_boundary():
    # no between-subject variance of the slope at all: the boundary is the maximum
    import mlm_lessons as mlm

    sleep = mlm.load_dataset("sleepstudy")
    rng = np.random.default_rng(1)
    subj = sleep["subject"].astype(str)
    y = 250 + 10 * sleep["days"] + pd.Series(rng.normal(0, 30, 18), index=subj.unique())[
        subj].to_numpy() + rng.normal(0, 25, len(sleep))
    with pytest.warns(mlm.BoundaryWarning, match="variance of 'days' across 'subject'"):
        fit = mlm.fit_mixed(sleep.assign(reaction=y), "reaction ~ days + (days || subject)")
    assert fit.singular and fit.converged
    assert fit.taus["subject"].loc["days", "days"] < 1e-8 * fit.sigma2


def test_warnings_point_at_the_callers_line():
    import warnings

    import mlm_lessons as mlm

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": np.repeat(np.arange(20), 10), "y": rng.normal(size=200)})
    df["y"] -= df.groupby("g")["y"].transform("mean")  # no variance between groups
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        mlm.fit_null(df, "y", "g")
    (w,) = [c for c in caught if issubclass(c.category, mlm.BoundaryWarning)]
    assert w.filename == __file__ and w.lineno == line
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        mlm.fit_mixed(df, "y ~ 1 + (1 | g)")
    (w,) = [c for c in caught if issubclass(c.category, mlm.BoundaryWarning)]
    assert w.filename == __file__ and w.lineno == line


# --- invariances as the algebra says, at every depth --------------------------------------

INVARIANCE_MODELS = [
    "y ~ x + (x | school) + (1 | cls)",  # nested, random slope at level 3
    "y ~ x + (1 | rater) + (x | item)",  # crossed
]


@pytest.mark.parametrize("formula", INVARIANCE_MODELS)
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_shift_and_scale_of_outcome_and_predictor(formula, method):
    import mlm_lessons as mlm

    base = mlm.fit_mixed(DATA, formula, method=method)
    a, s = 1e6, 250.0  # y -> a + s y: beta -> s beta (+ a on the intercept), T -> s^2 T
    moved = mlm.fit_mixed(DATA.assign(y=a + s * DATA["y"]), formula, method=method)
    np.testing.assert_allclose(moved.params["x"], s * base.params["x"], rtol=1e-6)
    np.testing.assert_allclose(moved.params["Intercept"], a + s * base.params["Intercept"],
                               rtol=1e-9)
    for level in base.levels:
        np.testing.assert_allclose(moved.taus[level], s**2 * base.taus[level], rtol=1e-5,
                                   atol=1e-8 * s**2)
    dof = len(DATA) - (2 if method == "REML" else 0)
    assert moved.loglik == pytest.approx(base.loglik - dof * np.log(s), abs=1e-6)
    c = 1e-3  # x -> c x: gamma_x -> gamma_x / c, Var(slope) -> / c^2, Cov -> / c
    scaled = mlm.fit_mixed(DATA.assign(x=c * DATA["x"]), formula, method=method)
    np.testing.assert_allclose(scaled.params["x"], base.params["x"] / c, rtol=1e-6)
    D = np.diag([1.0, 1.0 / c])
    for level, T in base.taus.items():
        T = T.to_numpy()
        expected = D @ T @ D if T.shape == (2, 2) else T
        np.testing.assert_allclose(scaled.taus[level], expected, rtol=1e-5,
                                   atol=1e-8 * np.abs(expected).max())
    shift = 50.0  # x -> x + shift with a random slope: T transforms by the intercept shift
    shifted = mlm.fit_mixed(DATA.assign(x=DATA["x"] + shift), formula, method=method)
    assert shifted.loglik == pytest.approx(base.loglik, abs=1e-6)
    K = np.array([[1.0, -shift], [0.0, 1.0]])  # b_new = K b for (Intercept, x)
    for level, T in base.taus.items():
        T = T.to_numpy()
        if T.shape == (2, 2):
            np.testing.assert_allclose(shifted.taus[level], K @ T @ K.T, rtol=1e-5,
                                       atol=1e-8 * np.abs(K @ T @ K.T).max())


@pytest.mark.parametrize("formula", INVARIANCE_MODELS)
def test_row_order_and_labels_change_nothing(formula):
    import mlm_lessons as mlm

    base = mlm.fit_mixed(DATA, formula)
    rng = np.random.default_rng(5)
    shuffled = DATA.sample(frac=1.0, random_state=7)
    for col in ("school", "cls", "rater", "item"):
        labels = {v: f"L{rng.integers(10**9)}-{v}" for v in DATA[col].unique()}
        shuffled[col] = shuffled[col].map(labels)
    other = mlm.fit_mixed(shuffled, formula)
    assert other.loglik == pytest.approx(base.loglik, abs=1e-8)
    np.testing.assert_allclose(other.params, base.params, rtol=1e-8)
    for level in base.levels:
        np.testing.assert_allclose(other.taus[level], base.taus[level], rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("rhs", [
    "x", "0 + x", "x + z", "x * z", "x:z + x", "z + x:z + x", "(x + z) * (y + pupil)",
    "x * z * y", "1", "0 + x:z", "x + I(z ** 2)", "C(rater) + x", "np.log(y - y.min() + 1)",
])
def test_the_fast_design_builder_equals_patsy(rhs):
    import patsy

    mat = patsy.dmatrix(rhs, DATA, return_type="dataframe", eval_env=_design._EVAL_ENV)
    builder, X = _design.make_builder(rhs, DATA)
    assert list(builder.names) == list(mat.columns)
    np.testing.assert_allclose(X, mat.to_numpy(), rtol=1e-15)
    np.testing.assert_allclose(builder.build(DATA.iloc[::-1]), mat.to_numpy()[::-1],
                               rtol=1e-15)


@pytest.mark.parametrize("rhs", ["kind", "x + kind", "kind * x", "C(kind) + tag", "0 + kind:tag"])
def test_text_columns_give_patsy_s_columns_and_the_data_is_untouched(rhs):
    """Text columns go to patsy as categoricals (their levels are read, not sniffed value by
    value): the same columns, names and order as patsy on the text, and the same matrix from
    the stored builder on new text data; the caller's frame keeps its dtypes."""
    import patsy

    rng = np.random.default_rng(3)
    data = pd.DataFrame({
        "x": rng.normal(size=60),
        "kind": rng.choice(["b", "a", "B", "ä", "a b", "10", "9"], size=60),
        "tag": rng.choice(["on", "off"], size=60),
    })
    before = data.copy()
    mat = patsy.dmatrix(rhs, data, return_type="dataframe", eval_env=_design._EVAL_ENV)
    builder, X = _design.make_builder(rhs, data)
    assert list(builder.names) == list(mat.columns)
    np.testing.assert_array_equal(X, mat.to_numpy())
    np.testing.assert_array_equal(builder.build(data.iloc[::-1]), mat.to_numpy()[::-1])
    pd.testing.assert_frame_equal(data, before)
