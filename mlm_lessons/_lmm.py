"""The fitting engine: profiled (RE)ML deviance of a two-level linear mixed model (private).

The model for group j is ``y_j = X_j beta + Z_j u_j + e_j`` with ``u_j ~ N(0, T)`` and
``e_j ~ N(0, sigma2 I)``. Following Bates et al. (2015, lme4), write ``T = sigma2 Lam Lam'``
with ``Lam`` lower triangular, parametrised by ``theta`` (its lower triangle, column by
column). For fixed ``theta`` the fixed effects and ``sigma2`` have closed forms, so the
optimizer searches only over ``theta`` (one to six numbers in practice).

Everything is computed from per-group cross-products (``Z_j'Z_j``, ``Z_j'X_j``, ``Z_j'y_j``),
so one deviance evaluation costs O(J q^3 + J q p + p^3), independent of the number of rows.
The small per-group Cholesky factors are computed entry by entry over all groups at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

from mlm_lessons._threads import single_blas_thread

LOG2PI = np.log(2 * np.pi)
GRADIENT_TOL = 2e-3  # lme4's convergence check: max |scaled gradient| below this


@dataclass(frozen=True)
class Stats:
    """Sufficient statistics of a two-level design."""

    ZtZ: np.ndarray  # (J, q, q)
    ZtX: np.ndarray  # (J, q, p)
    Zty: np.ndarray  # (J, q)
    XtX: np.ndarray  # (p, p)
    Xty: np.ndarray  # (p,)
    yty: float
    n: int
    n_j: np.ndarray  # (J,)

    @property
    def q(self) -> int:
        return self.ZtZ.shape[1]

    @property
    def p(self) -> int:
        return self.XtX.shape[0]

    @property
    def J(self) -> int:
        return self.ZtZ.shape[0]


def sufficient_stats(y: np.ndarray, X: np.ndarray, Z: np.ndarray, codes: np.ndarray) -> Stats:
    """Per-group cross-products by weighted bincounts (one pass per pair of columns)."""
    J = int(codes.max()) + 1
    q, p = Z.shape[1], X.shape[1]
    ZtZ = np.empty((J, q, q))
    ZtX = np.empty((J, q, p))
    Zty = np.empty((J, q))
    for a in range(q):
        za = Z[:, a]
        for b in range(a, q):
            ZtZ[:, a, b] = ZtZ[:, b, a] = np.bincount(codes, za * Z[:, b], minlength=J)
        for c in range(p):
            ZtX[:, a, c] = np.bincount(codes, za * X[:, c], minlength=J)
        Zty[:, a] = np.bincount(codes, za * y, minlength=J)
    return Stats(
        ZtZ=ZtZ,
        ZtX=ZtX,
        Zty=Zty,
        XtX=X.T @ X,
        Xty=X.T @ y,
        yty=float(y @ y),
        n=len(y),
        n_j=np.bincount(codes, minlength=J),
    )


# --- theta <-> Lambda ----------------------------------------------------------------------


def theta_size(q: int, diagonal: bool) -> int:
    return q if diagonal else q * (q + 1) // 2


def lower_bounds(q: int, diagonal: bool) -> list[tuple[float | None, float | None]]:
    """Diagonal elements of Lambda are >= 0; off-diagonal elements are free."""
    if diagonal:
        return [(0.0, None)] * q
    return [(0.0, None) if i == j else (None, None) for j in range(q) for i in range(j, q)]


def make_lambda(theta: np.ndarray, q: int, diagonal: bool) -> np.ndarray:
    if diagonal:
        return np.diag(theta)
    lam = np.zeros((q, q))
    k = 0
    for j in range(q):
        for i in range(j, q):
            lam[i, j] = theta[k]
            k += 1
    return lam


def theta_from_lambda(lam: np.ndarray, diagonal: bool) -> np.ndarray:
    q = lam.shape[0]
    if diagonal:
        return np.diag(lam).copy()
    return np.array([lam[i, j] for j in range(q) for i in range(j, q)])


# --- batched small linear algebra ----------------------------------------------------------


def _batched_cholesky(A: np.ndarray) -> np.ndarray:
    """Cholesky factors of J small SPD matrices, entry by entry (vectorised over J)."""
    J, q, _ = A.shape
    L = np.zeros_like(A)
    for i in range(q):
        for k in range(i + 1):
            s = A[:, i, k] - np.einsum("jm,jm->j", L[:, i, :k], L[:, k, :k])
            if i == k:
                L[:, i, i] = np.sqrt(s)
            else:
                L[:, i, k] = s / L[:, k, k]
    return L


def _batched_forward(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve L_j x_j = B_j for lower-triangular L_j; B has shape (J, q, r)."""
    q = L.shape[1]
    x = np.empty_like(B)
    for i in range(q):
        s = B[:, i, :] - np.einsum("jm,jmr->jr", L[:, i, :i], x[:, :i, :])
        x[:, i, :] = s / L[:, i, i, None]
    return x


def _batched_backward(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve L_j' x_j = B_j for lower-triangular L_j; B has shape (J, q, r)."""
    q = L.shape[1]
    x = np.empty_like(B)
    for i in reversed(range(q)):
        s = B[:, i, :] - np.einsum("jm,jmr->jr", L[:, i + 1 :, i], x[:, i + 1 :, :])
        x[:, i, :] = s / L[:, i, i, None]
    return x


# --- the profiled deviance -----------------------------------------------------------------


@dataclass(frozen=True)
class Solution:
    """Everything that follows from one value of theta."""

    deviance: float
    beta: np.ndarray
    sigma2: float
    lam: np.ndarray
    L: np.ndarray  # (J, q, q) Cholesky of Lam' Z_j'Z_j Lam + I
    RZX: np.ndarray  # (J, q, p)
    cu: np.ndarray  # (J, q)
    XtX_adj: np.ndarray  # (p, p) = R_X R_X' = X' V^-1 X * sigma2
    pwrss: float


def solve(theta: np.ndarray, st: Stats, reml: bool, diagonal: bool) -> Solution:
    """Profiled deviance (-2 log-likelihood) at ``theta`` with beta and sigma2 profiled out."""
    q, p, n = st.q, st.p, st.n
    lam = make_lambda(np.asarray(theta, dtype=float), q, diagonal)
    A = np.einsum("ba,jbc,cd->jad", lam, st.ZtZ, lam)
    A[:, np.arange(q), np.arange(q)] += 1.0
    L = _batched_cholesky(A)
    logdet_L = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
    rhs = np.concatenate(
        [np.einsum("ba,jbc->jac", lam, st.ZtX), np.einsum("ba,jb->ja", lam, st.Zty)[:, :, None]],
        axis=2,
    )
    sol = _batched_forward(L, rhs)
    RZX, cu = sol[:, :, :p], sol[:, :, p]
    XtX_adj = st.XtX - np.einsum("jap,jar->pr", RZX, RZX)
    Xty_adj = st.Xty - np.einsum("jap,ja->p", RZX, cu)
    if p:
        RX = linalg.cholesky(XtX_adj, lower=True)
        cb = linalg.solve_triangular(RX, Xty_adj, lower=True)
        beta = linalg.solve_triangular(RX.T, cb, lower=False)
        logdet_X = 2.0 * np.log(np.diag(RX)).sum()
    else:
        cb = beta = np.zeros(0)
        logdet_X = 0.0
    pwrss = st.yty - float(np.sum(cu**2)) - float(cb @ cb)
    pwrss = max(pwrss, np.finfo(float).tiny)
    if reml:
        dof = n - p
        dev = logdet_L + logdet_X + dof * (1.0 + LOG2PI + np.log(pwrss / dof))
    else:
        dof = n
        dev = logdet_L + n * (1.0 + LOG2PI + np.log(pwrss / n))
    return Solution(
        deviance=float(dev),
        beta=beta,
        sigma2=pwrss / dof,
        lam=lam,
        L=L,
        RZX=RZX,
        cu=cu,
        XtX_adj=XtX_adj,
        pwrss=pwrss,
    )


def finite_deviance(solver, *args) -> float:
    """``solver(*args).deviance``; inf where the solve fails or the deviance is not finite."""
    try:
        dev = solver(*args).deviance
    except (np.linalg.LinAlgError, linalg.LinAlgError, FloatingPointError):
        return np.inf
    return dev if np.isfinite(dev) else np.inf


def deviance(theta: np.ndarray, st: Stats, reml: bool, diagonal: bool) -> float:
    return finite_deviance(solve, theta, st, reml, diagonal)


def boundary_flags(T: np.ndarray, sigma2: float) -> tuple[np.ndarray, bool]:
    """Boundary estimates of a random-effects covariance T.

    Returns which variances are at zero (SD below ``1e-4 * sqrt(sigma2)``) and whether a
    correlation is at +-1 (``|r| > 0.999``).
    """
    sd = np.sqrt(np.clip(np.diag(T), 0, None))
    corr = T / np.outer(sd, sd) if np.all(sd > 0) else np.zeros_like(T)
    np.fill_diagonal(corr, 0)
    return sd < 1e-4 * np.sqrt(sigma2), bool(np.any(np.abs(corr) > 0.999))


def conditional_modes(s: Solution) -> tuple[np.ndarray, np.ndarray]:
    """BLUPs u_j (J, q) and their conditional covariances (J, q, q) given beta-hat."""
    p = s.beta.shape[0]
    r = s.cu - (np.einsum("jap,p->ja", s.RZX, s.beta) if p else 0.0)
    b = _batched_backward(s.L, r[:, :, None])[:, :, 0]
    u = b @ s.lam.T
    q = s.lam.shape[0]
    eye = np.broadcast_to(np.eye(q), s.L.shape)
    Linv = _batched_forward(s.L, eye.copy())  # L^-1
    Ainv = np.einsum("jba,jbc->jac", Linv, Linv)  # (L L')^-1
    cov = s.sigma2 * np.einsum("ab,jbc,dc->jad", s.lam, Ainv, s.lam)
    return u, cov


# --- starting values -----------------------------------------------------------------------


def moment_start(
    y: np.ndarray, X: np.ndarray, Z: np.ndarray, codes: np.ndarray, st: Stats, diagonal: bool
) -> np.ndarray:
    """Starting theta from per-group OLS of the pooled-OLS residuals on Z (moment estimator).

    T0 = Cov_j(b_j) - mean_j(sigma2_0 (Z_j'Z_j)^-1), made positive definite; theta0 is the
    Cholesky factor of T0 / sigma2_0.
    """
    q, J = st.q, st.J
    beta_ols = np.linalg.lstsq(X, y, rcond=None)[0] if X.shape[1] else np.zeros(0)
    r = y - X @ beta_ols if X.shape[1] else y
    Ztr = np.stack([np.bincount(codes, Z[:, a] * r, minlength=J) for a in range(q)], axis=1)
    rtr = np.bincount(codes, r * r, minlength=J)
    ok = st.n_j > q
    ok &= np.linalg.cond(st.ZtZ) < 1e10 if q > 0 else ok
    fallback = np.ones(q) if diagonal else theta_from_lambda(np.eye(q), False)
    if ok.sum() < 3:
        return fallback
    ZtZ = st.ZtZ[ok]
    b = np.linalg.solve(ZtZ, Ztr[ok][:, :, None])[:, :, 0]
    rss = rtr[ok] - np.einsum("ja,ja->j", b, Ztr[ok])
    sigma2 = max(rss.sum() / max(st.n_j[ok].sum() - q * ok.sum(), 1), 1e-12)
    T = np.atleast_2d(np.cov(b.T)) - sigma2 * np.linalg.inv(ZtZ).mean(axis=0)
    w, V = np.linalg.eigh((T + T.T) / 2)
    floor = 0.01 * max(w.max(), sigma2 * 1e-3)
    T = (V * np.maximum(w, floor)) @ V.T / sigma2
    if diagonal:
        return np.sqrt(np.diag(T))
    return theta_from_lambda(np.linalg.cholesky(T), False)


# --- optimisation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Optimum:
    theta: np.ndarray
    deviance: float
    optimizer: str
    n_evals: int
    gradient: np.ndarray
    scaled_gradient: float
    at_boundary: bool


def cross_difference(f, x: np.ndarray, steps: np.ndarray, i: int, j: int) -> float:
    """Four-point central difference of d2f / dx_i dx_j (steps ``steps[i]``, ``steps[j]``)."""
    ei = np.zeros(len(x))
    ej = np.zeros(len(x))
    ei[i], ej[j] = steps[i], steps[j]
    return (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
        4 * steps[i] * steps[j]
    )


def _gradient_hessian(f, x: np.ndarray, bounds, h: float = 1e-4):
    """Central-difference gradient and Hessian, one-sided where a bound is active."""
    k = len(x)
    f0 = f(x)
    g = np.zeros(k)
    H = np.zeros((k, k))
    steps = np.full(k, h) * np.maximum(1.0, np.abs(x))
    lo = np.array([b[0] if b[0] is not None else -np.inf for b in bounds])
    for i in range(k):
        e = np.zeros(k)
        e[i] = steps[i]
        if x[i] - steps[i] < lo[i]:
            f1, f2 = f(x + e), f(x + 2 * e)
            g[i] = (-3 * f0 + 4 * f1 - f2) / (2 * steps[i])
            H[i, i] = (f0 - 2 * f1 + f2) / steps[i] ** 2
        else:
            fp, fm = f(x + e), f(x - e)
            g[i] = (fp - fm) / (2 * steps[i])
            H[i, i] = (fp - 2 * f0 + fm) / steps[i] ** 2
    for i in range(k):
        for j in range(i + 1, k):
            H[i, j] = H[j, i] = cross_difference(f, x, steps, i, j)
    return g, H


def optimize_theta(st: Stats, start: np.ndarray, reml: bool, diagonal: bool) -> Optimum:
    """Minimise the two-level profiled deviance over theta (see :func:`minimize_deviance`)."""
    q = st.q
    return minimize_deviance(
        lambda t: deviance(t, st, reml, diagonal),
        start,
        lower_bounds(q, diagonal),
        np.ones(q) if diagonal else theta_from_lambda(np.eye(q), False),
    )


@single_blas_thread
def minimize_deviance(fun, start: np.ndarray, bounds, identity: np.ndarray) -> Optimum:
    """Minimise a profiled deviance over theta; try other optimizers when the first fails.

    1. L-BFGS-B (bounded quasi-Newton, central-difference gradient) from ``start``.
    2. If the scaled gradient check fails, Nelder-Mead then L-BFGS-B from the best point, and
       L-BFGS-B from lme4's default start (``identity``: Lambda = I). The best deviance wins.
    The check is lme4's: the gradient scaled by the inverse Hessian, max abs < 2e-3, over
    the parameters that are not at a bound.
    """
    n_evals = 0

    def f(t):
        nonlocal n_evals
        n_evals += 1
        return fun(t)

    def run_lbfgs(x0):
        res = optimize.minimize(
            f,
            x0,
            method="L-BFGS-B",
            bounds=bounds,
            jac="3-point",
            options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 500},
        )
        return res.x, res.fun

    def check(x):
        g, H = _gradient_hessian(f, x, bounds)
        lo = np.array([b[0] if b[0] is not None else -np.inf for b in bounds])
        free = ~(np.isclose(x, lo, atol=1e-6) & (g > 0))
        if free.any():
            Hf = H[np.ix_(free, free)]
            try:
                sg = np.linalg.solve(Hf, g[free])
            except np.linalg.LinAlgError:
                sg = g[free]
            scaled = float(np.max(np.abs(sg)))
        else:
            scaled = 0.0
        return g, scaled, bool((~free).any())

    candidates = [("L-BFGS-B", *run_lbfgs(np.asarray(start, dtype=float)))]
    name, x, fx = candidates[0]
    g, scaled, boundary = check(x)
    if not (scaled < GRADIENT_TOL):
        nm = optimize.minimize(
            f,
            x,
            method="Nelder-Mead",
            bounds=bounds,
            options={"xatol": 1e-8, "fatol": 1e-10, "maxfev": 4000, "adaptive": True},
        )
        candidates.append(("Nelder-Mead + L-BFGS-B", *run_lbfgs(nm.x)))
        candidates.append(("L-BFGS-B from identity", *run_lbfgs(np.asarray(identity, float))))
        name, x, fx = min(candidates, key=lambda c: c[2])
        g, scaled, boundary = check(x)
    return Optimum(
        theta=x,
        deviance=float(fx),
        optimizer=name,
        n_evals=n_evals,
        gradient=g,
        scaled_gradient=scaled,
        at_boundary=boundary,
    )
