"""Engine for three-level nested linear mixed models (private).

Level-1 rows i sit in level-2 units k (e.g. children), which sit in level-3 units j (e.g.
schools). The model is ``y = X beta + Z2 u2_k + Z3 u3_j + e`` with independent
``u2_k ~ N(0, T2)``, ``u3_j ~ N(0, T3)``, ``e ~ N(0, sigma2 I)``; ``T2 = sigma2 Lam2 Lam2'``
and ``T3 = sigma2 Lam3 Lam3'``.

The penalised least-squares system of lme4 (Bates et al. 2015) is eliminated block by block
in the order of the nesting: first every level-2 unit's small block (they are independent
given level 3), then every level-3 unit's Schur complement, then the fixed effects. All
blocks are batched over units, so one deviance evaluation costs about what a two-level one
does, whatever the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from mlm_lessons._lmm import (
    LOG2PI,
    _batched_backward,
    _batched_cholesky,
    _batched_forward,
    finite_deviance,
    make_lambda,
)


@dataclass(frozen=True)
class Stats3:
    """Cross-products per level-2 unit (k) and per level-3 unit (j)."""

    Z2tZ2: np.ndarray  # (K, q2, q2)
    Z2tZ3: np.ndarray  # (K, q2, q3)
    Z2tX: np.ndarray  # (K, q2, p)
    Z2ty: np.ndarray  # (K, q2)
    Z3tZ3: np.ndarray  # (J, q3, q3)
    Z3tX: np.ndarray  # (J, q3, p)
    Z3ty: np.ndarray  # (J, q3)
    XtX: np.ndarray
    Xty: np.ndarray
    yty: float
    n: int
    parent: np.ndarray  # (K,) level-3 index of each level-2 unit

    @property
    def q2(self) -> int:
        return self.Z2tZ2.shape[1]

    @property
    def q3(self) -> int:
        return self.Z3tZ3.shape[1]

    @property
    def p(self) -> int:
        return self.XtX.shape[0]


def _cross(codes, A, B, n_units):
    out = np.empty((n_units, A.shape[1], B.shape[1]))
    for a in range(A.shape[1]):
        for b in range(B.shape[1]):
            out[:, a, b] = np.bincount(codes, A[:, a] * B[:, b], minlength=n_units)
    return out


def sufficient_stats3(y, X, Z2, Z3, codes2, codes3) -> Stats3:
    K = int(codes2.max()) + 1
    J = int(codes3.max()) + 1
    parent = np.zeros(K, dtype=np.intp)
    parent[codes2] = codes3
    y1 = y[:, None]
    return Stats3(
        Z2tZ2=_cross(codes2, Z2, Z2, K),
        Z2tZ3=_cross(codes2, Z2, Z3, K),
        Z2tX=_cross(codes2, Z2, X, K),
        Z2ty=_cross(codes2, Z2, y1, K)[:, :, 0],
        Z3tZ3=_cross(codes3, Z3, Z3, J),
        Z3tX=_cross(codes3, Z3, X, J),
        Z3ty=_cross(codes3, Z3, y1, J)[:, :, 0],
        XtX=X.T @ X,
        Xty=X.T @ y,
        yty=float(y @ y),
        n=len(y),
        parent=parent,
    )


def split_theta(theta, q2, q3, diagonal):
    k2 = q2 if diagonal else q2 * (q2 + 1) // 2
    return theta[:k2], theta[k2:]


def bounds3(q2, q3, diagonal):
    from mlm_lessons._lmm import lower_bounds

    return lower_bounds(q2, diagonal) + lower_bounds(q3, diagonal)


@dataclass(frozen=True)
class Solution3:
    deviance: float
    beta: np.ndarray
    sigma2: float
    lam2: np.ndarray
    lam3: np.ndarray
    XtX_adj: np.ndarray
    # pieces for the random effects
    L2: np.ndarray
    R2_3: np.ndarray
    R2_X: np.ndarray
    c2: np.ndarray
    L3: np.ndarray
    R3_X: np.ndarray
    c3: np.ndarray


def solve3(theta, st: Stats3, reml: bool, diagonal: bool) -> Solution3:
    q2, q3, p, n = st.q2, st.q3, st.p, st.n
    t2, t3 = split_theta(np.asarray(theta, dtype=float), q2, q3, diagonal)
    lam2 = make_lambda(t2, q2, diagonal)
    lam3 = make_lambda(t3, q3, diagonal)
    # level 2 blocks
    A2 = np.einsum("ba,kbc,cd->kad", lam2, st.Z2tZ2, lam2)
    A2[:, np.arange(q2), np.arange(q2)] += 1.0
    L2 = _batched_cholesky(A2)
    rhs2 = np.concatenate(
        [
            np.einsum("ba,kbc,cd->kad", lam2, st.Z2tZ3, lam3),
            np.einsum("ba,kbc->kac", lam2, st.Z2tX),
            np.einsum("ba,kb->ka", lam2, st.Z2ty)[:, :, None],
        ],
        axis=2,
    )
    s2 = _batched_forward(L2, rhs2)
    R2_3, R2_X, c2 = s2[:, :, :q3], s2[:, :, q3 : q3 + p], s2[:, :, q3 + p]
    # level 3 Schur complements: sums over the level-2 units of each level-3 unit
    J = st.Z3tZ3.shape[0]

    def by_parent(arr):
        out = np.zeros((J,) + arr.shape[1:])
        np.add.at(out, st.parent, arr)
        return out

    A3 = np.einsum("ba,jbc,cd->jad", lam3, st.Z3tZ3, lam3) - by_parent(
        np.einsum("kam,kan->kmn", R2_3, R2_3)
    )
    A3[:, np.arange(q3), np.arange(q3)] += 1.0
    L3 = _batched_cholesky(A3)
    rhs3 = np.concatenate(
        [
            np.einsum("ba,jbc->jac", lam3, st.Z3tX)
            - by_parent(np.einsum("kam,kap->kmp", R2_3, R2_X)),
            (
                np.einsum("ba,jb->ja", lam3, st.Z3ty)
                - by_parent(np.einsum("kam,ka->km", R2_3, c2))
            )[:, :, None],
        ],
        axis=2,
    )
    s3 = _batched_forward(L3, rhs3)
    R3_X, c3 = s3[:, :, :p], s3[:, :, p]
    XtX_adj = (
        st.XtX
        - np.einsum("kap,kar->pr", R2_X, R2_X)
        - np.einsum("jap,jar->pr", R3_X, R3_X)
    )
    Xty_adj = st.Xty - np.einsum("kap,ka->p", R2_X, c2) - np.einsum("jap,ja->p", R3_X, c3)
    RX = linalg.cholesky(XtX_adj, lower=True)
    cb = linalg.solve_triangular(RX, Xty_adj, lower=True)
    beta = linalg.solve_triangular(RX.T, cb, lower=False)
    pwrss = st.yty - float(np.sum(c2**2)) - float(np.sum(c3**2)) - float(cb @ cb)
    pwrss = max(pwrss, np.finfo(float).tiny)
    logdet = 2.0 * (
        np.log(np.diagonal(L2, axis1=1, axis2=2)).sum()
        + np.log(np.diagonal(L3, axis1=1, axis2=2)).sum()
    )
    if reml:
        dof = n - p
        dev = logdet + 2.0 * np.log(np.diag(RX)).sum() + dof * (1 + LOG2PI + np.log(pwrss / dof))
    else:
        dof = n
        dev = logdet + n * (1 + LOG2PI + np.log(pwrss / n))
    return Solution3(
        deviance=float(dev), beta=beta, sigma2=pwrss / dof, lam2=lam2, lam3=lam3,
        XtX_adj=XtX_adj, L2=L2, R2_3=R2_3, R2_X=R2_X, c2=c2, L3=L3, R3_X=R3_X, c3=c3,
    )


def deviance3(theta, st, reml, diagonal) -> float:
    return finite_deviance(solve3, theta, st, reml, diagonal)


def random_effects3(s: Solution3, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conditional modes (BLUPs) of the level-2 and level-3 random effects."""
    r3 = s.c3 - np.einsum("jap,p->ja", s.R3_X, s.beta)
    b3 = _batched_backward(s.L3, r3[:, :, None])[:, :, 0]
    r2 = s.c2 - np.einsum("kap,p->ka", s.R2_X, s.beta) - np.einsum(
        "kam,km->ka", s.R2_3, b3[parent]
    )
    b2 = _batched_backward(s.L2, r2[:, :, None])[:, :, 0]
    return b2 @ s.lam2.T, b3 @ s.lam3.T
