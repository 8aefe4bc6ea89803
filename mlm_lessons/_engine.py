"""The fitting engine: profiled (RE)ML deviance over random-effects terms (private).

One engine serves every linear mixed model of the package, in lme4's modular chain
(Bates et al. 2015; ``R/modular.R``): design -> deviance function -> optimizer ->
convergence check -> result.

The model is ``y = X beta + sum_t Z_t b_t + e`` with, for each grouping factor ``t`` and each
of its levels ``g``, ``b_tg ~ N(0, T_t)``, and ``e ~ N(0, sigma2 I)``. Write
``T_t = sigma2 Lam_t Lam_t'`` with ``Lam_t`` lower triangular (block diagonal over the
covariance blocks of the term) and collect the free elements of every ``Lam_t`` in ``theta``.
For fixed ``theta`` the fixed effects and ``sigma2`` have closed forms, so the optimizer
searches over ``theta`` only: the profiled deviance of lme4,

    ML:   log|A| + n (1 + log(2 pi pwrss / n))
    REML: log|A| + log|R_X|^2 + (n - p) (1 + log(2 pi pwrss / (n - p)))

with ``A = Lam' Z'Z Lam + I``. ``A`` is factored by a blocked Cholesky over the terms, as in
MixedModels.jl (``src/linearmixedmodel.jl``, ``updateL!``), with the terms sorted by their
number of levels:

- **nested** factors (each level of a term lies in one level of the next: pupils in classes in
  schools, any depth; a single factor is the simplest case) keep every block of the factor
  tree-shaped, so each level's small block is eliminated for all units at once and the Schur
  updates go to its ancestors only: one evaluation costs O(units x q^3), whatever the rows;
- **crossed** or partially crossed factors: the largest factor is eliminated block by block
  and the others form a dense Schur complement (its size is the number of their levels).

The response and the fixed-effects columns travel with the factorisation as extra columns, so
that ``pwrss`` and ``R_X`` fall out of the same elimination.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, optimize, sparse

from mlm_lessons._threads import single_blas_thread

LOG2PI = np.log(2 * np.pi)
GRADIENT_TOL = 2e-3  # lme4 check.conv.grad: max(pmin(|scaled grad|, |grad|)) below this
SINGULAR_TOL = 1e-4  # lme4 isSingular: a theta with lower bound 0 below this
HESSIAN_TOL = 1e-6  # lme4 check.conv.hess
DENSE_LIMIT = 6000  # largest dense Schur complement (levels of the non-largest crossed factors)
SMALL_DENSE = 600  # crossed designs with at most this many random effects are factored densely


class EngineError(ValueError):
    """The model cannot be fitted as specified (the message says why and what to do)."""


# --- batched small linear algebra ------------------------------------------------------------


def batched_cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of J small SPD matrices (J, q, q), vectorised over J."""
    q = A.shape[1]
    if q == 1:
        return np.sqrt(A)
    if q == 2:
        L = np.zeros_like(A)
        a = np.sqrt(A[:, 0, 0])
        b = A[:, 1, 0] / a
        L[:, 0, 0] = a
        L[:, 1, 0] = b
        L[:, 1, 1] = np.sqrt(A[:, 1, 1] - b * b)
        return L
    L = np.zeros_like(A)
    for i in range(q):
        for k in range(i + 1):
            s = A[:, i, k] - np.einsum("jm,jm->j", L[:, i, :k], L[:, k, :k])
            if i == k:
                L[:, i, i] = np.sqrt(s)
            else:
                L[:, i, k] = s / L[:, k, k]
    return L


def batched_forward(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L_j x_j = B_j`` for lower-triangular ``L_j``; B has shape (J, q, r)."""
    q = L.shape[1]
    if q == 1:
        return B / L
    if q == 2:
        x = np.empty_like(B)
        x[:, 0, :] = B[:, 0, :] / L[:, 0, 0, None]
        x[:, 1, :] = (B[:, 1, :] - L[:, 1, 0, None] * x[:, 0, :]) / L[:, 1, 1, None]
        return x
    x = np.empty_like(B)
    for i in range(q):
        s = B[:, i, :] - np.einsum("jm,jmr->jr", L[:, i, :i], x[:, :i, :])
        x[:, i, :] = s / L[:, i, i, None]
    return x


def batched_backward(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L_j' x_j = B_j`` for lower-triangular ``L_j``; B has shape (J, q, r)."""
    q = L.shape[1]
    if q == 1:
        return B / L
    if q == 2:
        x = np.empty_like(B)
        x[:, 1, :] = B[:, 1, :] / L[:, 1, 1, None]
        x[:, 0, :] = (B[:, 0, :] - L[:, 1, 0, None] * x[:, 1, :]) / L[:, 0, 0, None]
        return x
    x = np.empty_like(B)
    for i in reversed(range(q)):
        s = B[:, i, :] - np.einsum("jm,jmr->jr", L[:, i + 1 :, i], x[:, i + 1 :, :])
        x[:, i, :] = s / L[:, i, i, None]
    return x


def batched_inverse_lower(L: np.ndarray) -> np.ndarray:
    """``L_j^{-1}`` for lower-triangular blocks."""
    q = L.shape[1]
    eye = np.broadcast_to(np.eye(q), L.shape).copy()
    return batched_forward(L, eye)


def _t(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _mv(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Batched matrix-vector product (J, a, b) x (J, b) -> (J, a)."""
    return (A @ v[:, :, None])[:, :, 0]


# --- the parameters of one term ------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Which elements of a term's ``Lam`` (q x q, lower triangular) are parameters.

    For each covariance block, its lower triangle column by column (lme4's order); diagonal
    elements are bounded below by 0.
    """

    q: int
    blocks: tuple[tuple[int, ...], ...]
    rows: np.ndarray = field(repr=False)
    cols: np.ndarray = field(repr=False)

    @classmethod
    def of(cls, q: int, blocks) -> Layout:
        rows, cols = [], []
        for block in blocks:
            for jj, j in enumerate(block):
                for i in block[jj:]:
                    rows.append(i)
                    cols.append(j)
        return cls(q, tuple(tuple(b) for b in blocks), np.array(rows, np.intp),
                   np.array(cols, np.intp))

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def on_diagonal(self) -> np.ndarray:
        return self.rows == self.cols

    @property
    def lower(self) -> np.ndarray:
        return np.where(self.on_diagonal, 0.0, -np.inf)

    def make_lambda(self, theta: np.ndarray) -> np.ndarray:
        lam = np.zeros((self.q, self.q))
        lam[self.rows, self.cols] = theta
        return lam

    def theta_of(self, lam: np.ndarray) -> np.ndarray:
        return lam[self.rows, self.cols].copy()

    def identity(self) -> np.ndarray:
        return self.on_diagonal.astype(float)

    def theta_of_cov(self, T: np.ndarray) -> np.ndarray:
        """theta of a (relative) covariance matrix, block by block (PSD allowed)."""
        lam = np.zeros((self.q, self.q))
        for block in self.blocks:
            b = list(block)
            lam[np.ix_(b, b)] = psd_cholesky(T[np.ix_(b, b)])
        return self.theta_of(lam)


def psd_cholesky(T: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (zero columns where singular)."""
    T = (np.asarray(T, dtype=float) + np.asarray(T, dtype=float).T) / 2
    q = T.shape[0]
    L = np.zeros((q, q))
    scale = max(float(np.max(np.abs(np.diag(T)))), np.finfo(float).tiny)
    for j in range(q):
        d = T[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-12 * scale:
            continue
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, q):
            L[i, j] = (T[i, j] - L[i, :j] @ L[j, :j]) / L[j, j]
    return L


# --- the random-effects terms, as the engine sees them -------------------------------------------


@dataclass(frozen=True)
class ReTerm:
    """Codes, columns and parameter layout of one grouping factor (engine side)."""

    codes: np.ndarray  # (n,)
    Z: np.ndarray  # (n, q)
    n_levels: int
    layout: Layout

    @property
    def q(self) -> int:
        return self.Z.shape[1]


def _bincount_products(codes, A, B, J, w=None):
    """``out[j, a, b] = sum_{i in j} w_i A[i, a] B[i, b]`` (J, qa, qb).

    ``B`` may be a list of matrices (their columns side by side), which saves stacking
    them for millions of rows. Columns of ones are not multiplied.
    """
    if w is not None and not isinstance(B, list):
        n, qa, qb = A.shape[0], A.shape[1], B.shape[1]
        if qa * qb >= 6 and n <= 1000:  # many small sums: one bincount over all products
            P = (A * w[:, None])[:, :, None] * B[:, None, :]  # same products, same order
            idx = (codes[:, None] * (qa * qb) + np.arange(qa * qb)).ravel()
            return np.bincount(idx, P.ravel(), minlength=J * qa * qb).reshape(J, qa, qb)
    cols_b = [M[:, c] for M in (B if isinstance(B, list) else [B]) for c in range(M.shape[1])]
    out = np.empty((J, A.shape[1], len(cols_b)))
    for a in range(A.shape[1]):
        wa = A[:, a] if w is None else A[:, a] * w
        ones_a = w is None and _is_ones(wa)
        for b, col in enumerate(cols_b):
            if ones_a and _is_ones(col):
                out[:, a, b] = np.bincount(codes, minlength=J)
            elif ones_a:
                out[:, a, b] = np.bincount(codes, col, minlength=J)
            else:
                out[:, a, b] = np.bincount(codes, wa * col, minlength=J)
    return out


def _is_ones(v: np.ndarray) -> bool:
    return bool(v[0] == 1.0 and v[-1] == 1.0 and np.all(v == 1.0))


def _is_nested(inner: ReTerm, outer: ReTerm) -> bool:
    """Each level of ``inner`` lies within one level of ``outer``."""
    pairs = np.unique(inner.codes.astype(np.int64) * outer.n_levels + outer.codes)
    return len(pairs) == inner.n_levels


def _ancestor(inner: ReTerm, outer: ReTerm) -> np.ndarray:
    anc = np.zeros(inner.n_levels, dtype=np.intp)
    anc[inner.codes] = outer.codes
    return anc


def _aggregator(anc: np.ndarray, n_outer: int) -> sparse.csr_matrix:
    """Sparse (n_outer x n_inner) matrix that sums inner units into their ancestors."""
    n = len(anc)
    return sparse.csr_matrix((np.ones(n), (anc, np.arange(n))), shape=(n_outer, n))


def _block_diag_sparse(lam: np.ndarray, J: int) -> sparse.csr_matrix:
    """``I_J (x) lam`` as a sparse matrix."""
    q = lam.shape[0]
    data = np.broadcast_to(lam, (J, q, q))
    return sparse.bsr_matrix((data, np.arange(J), np.arange(J + 1)), shape=(J * q, J * q)).tocsr()


def _z_sparse(term: ReTerm) -> sparse.csr_matrix:
    n, q = term.Z.shape
    rows = np.repeat(np.arange(n), q)
    cols = (term.codes[:, None] * q + np.arange(q)[None, :]).ravel()
    return sparse.csr_matrix((term.Z.ravel(), (rows, cols)), shape=(n, term.n_levels * q))


# --- factorisation results --------------------------------------------------------------------


@dataclass
class Factor:
    """Everything that follows from one value of theta."""

    deviance: float
    logdet: float  # log|A|
    logdet_x: float  # log|R_X|^2
    pwrss: float
    lams: list
    LF: np.ndarray  # (p+1, p+1) Cholesky of the [X y] Schur complement
    parts: dict  # structure-specific pieces for back-substitution

    @property
    def p(self) -> int:
        return self.LF.shape[0] - 1

    def beta(self) -> np.ndarray:
        cached = self.__dict__.get("_beta")
        if cached is not None:  # the modes and PIRLS both ask for it
            return cached.copy()
        p = self.p
        if p == 0:
            return np.zeros(0)
        # LF comes from a Cholesky that succeeded: finite, so scipy's check is skipped
        b = linalg.solve_triangular(self.LF[:p, :p].T, self.LF[p, :p], lower=False,
                                    check_finite=False)
        self._beta = b
        return b.copy()

    def XtVinvX(self) -> np.ndarray:
        """``R_X R_X'`` = X' V^-1 X (V relative to sigma2)."""
        p = self.p
        return self.LF[:p, :p] @ self.LF[:p, :p].T


class Problem:
    """The profiled deviance of one linear mixed model: a function of theta.

    ``terms`` must be sorted by decreasing number of levels. ``weights`` are prior weights
    (the residual variance of row i is ``sigma2 / w_i``).
    """

    def __init__(self, y, X, terms, reml: bool, weights=None):
        self.y = np.asarray(y, dtype=float)
        self.X = np.asarray(X, dtype=float)
        self.terms = list(terms)
        self.reml = bool(reml)
        self.w = None if weights is None else np.asarray(weights, dtype=float)
        self.n = len(self.y)
        self.p = self.X.shape[1]
        sizes = [t.layout.size for t in self.terms]
        self.slices = []
        start = 0
        for s in sizes:
            self.slices.append(slice(start, start + s))
            start += s
        self.n_theta = start
        self.lower = np.concatenate([t.layout.lower for t in self.terms]) if self.terms else \
            np.zeros(0)
        K = len(self.terms)
        self.nested = all(_is_nested(self.terms[k], self.terms[k + 1]) for k in range(K - 1))
        Q = sum(t.q * t.n_levels for t in self.terms)
        self.structure = "nested" if self.nested else ("dense" if Q <= SMALL_DENSE
                                                       else "crossed")
        getattr(self, f"_setup_{self.structure}")()
        self.n_evals = 0

    # --- shared --------------------------------------------------------------------------

    def split(self, theta):
        theta = np.asarray(theta, dtype=float)
        return [t.layout.make_lambda(theta[s]) for t, s in zip(self.terms, self.slices)]

    def identity(self) -> np.ndarray:
        return np.concatenate([t.layout.identity() for t in self.terms])

    def _Xy(self):
        return np.column_stack([self.X, self.y])

    def _F_raw(self):
        Xy = self._Xy()
        return Xy.T @ (Xy if self.w is None else Xy * self.w[:, None])

    def _finish(self, F, logdet, lams, parts) -> Factor:
        p, n = self.p, self.n
        if p == 0:  # F is the 1 x 1 pwrss (no fixed effects: the GLMM's PIRLS step)
            if not F[0, 0] > 0:
                raise np.linalg.LinAlgError("Matrix is not positive definite")
            LF = np.sqrt(F)
        else:
            LF = np.linalg.cholesky(F)
        pwrss = max(float(LF[p, p] ** 2), np.finfo(float).tiny)
        logdet_x = 2.0 * float(np.log(np.diag(LF)[:p]).sum()) if p else 0.0
        if self.reml:
            dof = n - p
            dev = logdet + logdet_x + dof * (1.0 + LOG2PI + np.log(pwrss / dof))
        else:
            dev = logdet + n * (1.0 + LOG2PI + np.log(pwrss / n))
        return Factor(float(dev), float(logdet), logdet_x, pwrss, lams, LF, parts)

    def factor(self, theta) -> Factor:
        self.n_evals += 1
        lams = self.split(theta)
        return getattr(self, f"_factor_{self.structure}")(lams)

    def deviance(self, theta) -> float:
        try:
            with np.errstate(all="ignore"):
                dev = self.factor(theta).deviance
        except (np.linalg.LinAlgError, linalg.LinAlgError, FloatingPointError, ValueError):
            return np.inf
        return dev if np.isfinite(dev) else np.inf

    def deviance_sigma(self, theta, sigma2: float) -> float:
        """-2 log-likelihood (REML criterion for REML) at theta and a given sigma2.

        The fixed effects are at their GLS estimates; sigma2 is not profiled out, so this
        is the function that profile-likelihood intervals of sigma need.
        """
        try:
            with np.errstate(all="ignore"):
                f = self.factor(theta)
        except (np.linalg.LinAlgError, linalg.LinAlgError, FloatingPointError, ValueError):
            return np.inf
        dof = self.n - self.p if self.reml else self.n
        dev = f.logdet + (f.logdet_x if self.reml else 0.0) + dof * np.log(
            2 * np.pi * sigma2) + f.pwrss / sigma2
        return float(dev) if np.isfinite(dev) else np.inf

    def sigma2(self, f: Factor) -> float:
        return f.pwrss / (self.n - self.p if self.reml else self.n)

    def with_response(self, y) -> Problem:
        """The same problem for another response (the y-independent work is reused)."""
        new = object.__new__(Problem)
        new.__dict__.update(self.__dict__)
        new.y = np.asarray(y, dtype=float)
        new.n_evals = 0
        getattr(new, f"_setup_{self.structure}_y")()
        return new

    def reweight(self, y, weights) -> Problem:
        """The same terms and X with another response and other weights.

        The structure (nesting, ancestor maps, sparse Z) is reused, so only the weighted
        cross-products are recomputed: O(n) work per call. This is the penalised weighted
        least-squares step of PIRLS (the GLMM's working response and weights).
        """
        new = object.__new__(Problem)
        new.__dict__.update(self.__dict__)
        new.y = np.asarray(y, dtype=float)
        new.w = np.asarray(weights, dtype=float)
        new.n_evals = 0
        getattr(new, f"_reweight_{self.structure}")()
        return new

    # --- nested (tree-shaped) factors ----------------------------------------------------------

    def _nested_columns(self, k):
        terms, K = self.terms, len(self.terms)
        cols = self._raw_cols
        if cols[k] is None:
            cols[k] = np.column_stack([terms[k].Z] + [terms[m].Z for m in range(k + 1, K)]
                                      + [self.X])
        return cols[k]

    def _reweight_nested(self):
        self.raw = [
            _bincount_products(t.codes, t.Z, self._nested_columns(k), t.n_levels, self.w)
            for k, t in enumerate(self.terms)
        ]
        self._setup_nested_y()

    def _setup_nested(self):
        terms, K = self.terms, len(self.terms)
        self.anc = [[None] * K for _ in range(K)]
        self.agg = [[None] * K for _ in range(K)]
        for k in range(K):
            for m in range(k + 1, K):
                self.anc[k][m] = _ancestor(terms[k], terms[m])
                self.agg[k][m] = _aggregator(self.anc[k][m], terms[m].n_levels)
        # raw row blocks: own | ancestors | X, per level (the y column separately)
        self.raw = []
        self._raw_cols = [None] * K  # the stacked columns, shared by reweighted copies
        for k in range(K):
            t = terms[k]
            cols = [t.Z] + [terms[m].Z for m in range(k + 1, K)] + [self.X]
            self.raw.append(_bincount_products(t.codes, t.Z, cols, t.n_levels, self.w))
        self._setup_nested_y()

    def moment_products(self, k):
        """``(X'X, X'y, Z'Z, Z'X, Z'y)`` of term ``k`` (the last three per level) from the
        unweighted cross-products the nested setup made; None where they are not at hand."""
        if self.structure != "nested" or self.w is not None:
            return None
        p, q = self.p, self.terms[k].q
        raw = self.raw[k]
        F = self.F_raw
        return F[:p, :p], F[:p, p], raw[:, :, :q], raw[:, :, raw.shape[2] - p:], \
            self.raw_y[k][:, :, 0]

    def _setup_nested_y(self):
        self.raw_y = [
            _bincount_products(t.codes, t.Z, self.y[:, None], t.n_levels, self.w)
            for t in self.terms
        ]
        if self.p == 0:  # the 1 x 1 y'Wy without stacking (the GLMM's PIRLS step)
            yw = self.y if self.w is None else self.y * self.w
            self.F_raw = np.array([[float(self.y @ yw)]])
        else:
            self.F_raw = self._F_raw()

    def _factor_nested(self, lams) -> Factor:
        terms, K = self.terms, len(self.terms)
        if K == 1 and terms[0].q == 1:
            return self._factor_scalar(lams)
        # scaled row blocks B_k = Lam_k' [raw] blockdiag(Lam_k, Lam_anc..., I_p, 1) (+ I)
        # (scalar random effects: products by the 1 x 1 Lam as scalar products, the same
        # numbers without the batched-matmul overhead)
        B = []
        for k in range(K):
            raw = np.concatenate([self.raw[k], self.raw_y[k]], axis=2)
            lam_k = lams[k]
            qk = terms[k].q
            blk = raw * lam_k[0, 0] if qk == 1 else lam_k.T @ raw
            off = 0
            for m in [k] + list(range(k + 1, K)):
                qm = terms[m].q
                if qm == 1:
                    blk[:, :, off] *= lams[m][0, 0]
                else:
                    blk[:, :, off : off + qm] = blk[:, :, off : off + qm] @ lams[m]
                off += qm
            if qk == 1:
                blk[:, 0, 0] += 1.0
            else:
                blk[:, np.arange(qk), np.arange(qk)] += 1.0
            B.append(blk)
        F = self.F_raw.copy()
        logdet = 0.0
        Ls, Rs = [], []
        for k in range(K):
            qk = terms[k].q
            L = batched_cholesky(B[k][:, :, :qk])
            if not np.all(np.isfinite(L)):
                raise np.linalg.LinAlgError("not positive definite")
            logdet += 2.0 * float(np.log(np.diagonal(L, axis1=1, axis2=2)).sum())
            R = batched_forward(L, B[k][:, :, qk:])  # (J_k, q_k, W_k - q_k)
            Ls.append(L)
            Rs.append(R)
            if qk == 1:  # Schur update of ancestors, X and y
                RtR = R[:, 0, :, None] * R[:, 0, None, :]
            else:
                RtR = _t(R) @ R
            off = 0
            for m in range(k + 1, K):
                qm = terms[m].q
                upd = RtR[:, off : off + qm, off:]
                J = upd.shape[0]
                flat = upd.reshape(J, -1)
                if flat.shape[1] <= 8:  # few columns: sums by ancestor without sparse overhead
                    anc, Jm = self.anc[k][m], terms[m].n_levels
                    agg = np.empty((Jm, flat.shape[1]))
                    for c in range(flat.shape[1]):
                        agg[:, c] = np.bincount(anc, flat[:, c], minlength=Jm)
                else:
                    agg = self.agg[k][m] @ flat
                B[m] -= agg.reshape(B[m].shape)
                off += qm
            F -= RtR[:, off:, off:].sum(axis=0)
        return self._finish(F, logdet, lams, {"L": Ls, "R": Rs})

    def _factor_scalar(self, lams) -> Factor:
        """One scalar random effect: A is diagonal, ``A_j = lam^2 z_j'W z_j + 1`` (the
        general nested factorisation with K = 1, q = 1, without its batched overhead)."""
        lam = float(lams[0][0, 0])
        raw = self.raw[0][:, 0, :]  # (J, 1 + p): z'Wz, z'WX
        d = raw[:, 0] * (lam * lam) + 1.0
        L = np.sqrt(d)
        if not np.all(np.isfinite(L)):
            raise np.linalg.LinAlgError("not positive definite")
        logdet = 2.0 * float(np.log(L).sum())
        R = np.empty((len(d), raw.shape[1]))  # (J, p + 1): [z'WX, z'Wy] lam / L
        R[:, :-1] = raw[:, 1:]
        R[:, -1] = self.raw_y[0][:, 0, 0]
        R *= (lam / L)[:, None]
        F = self.F_raw - R.T @ R
        return self._finish(F, logdet, lams, {"L": [L[:, None, None]], "R": [R[:, None, :]]})

    def _modes_nested(self, f: Factor):
        """Spherical conditional modes u_k (J_k, q_k), top level first."""
        terms, K, p = self.terms, len(self.terms), self.p
        beta = f.beta()
        L, R = f.parts["L"], f.parts["R"]
        u = [None] * K
        for k in reversed(range(K)):
            Rk = R[k]
            rhs = Rk[:, :, -1] - (Rk[:, :, -1 - p : -1] @ beta if p else 0.0)
            off = 0
            for m in range(k + 1, K):
                qm = terms[m].q
                rhs = rhs - _mv(Rk[:, :, off : off + qm], u[m][self.anc[k][m]])
                off += qm
            u[k] = batched_backward(L[k], rhs[:, :, None])[:, :, 0]
        return u

    def _selinv_nested(self, f: Factor, include_x: bool):
        """Blocks of A^{-1} (or of the augmented M^{-1}, with X as the root) on the tree.

        The Takahashi recursion, top level first: ``Sig[k][m][g]`` is the block between
        unit g of level k and its ancestor at level m (``m == k``: g itself; ``m == K``:
        the fixed effects, present when ``include_x``).
        """
        terms, K, p = self.terms, len(self.terms), self.p
        L, R = f.parts["L"], f.parts["R"]
        sizes = [t.q for t in terms] + [p]
        X = K  # index of the fixed-effects node
        Sig = [dict() for _ in range(K + 1)]
        if include_x:
            RX = f.LF[:p, :p]
            RXinv = linalg.solve_triangular(RX, np.eye(p), lower=True)
            Sig[X][X] = (RXinv.T @ RXinv)[None, :, :]
        for k in reversed(range(K)):
            Linv = batched_inverse_lower(L[k])
            LinvT = _t(Linv)
            Rk = R[k]
            anc_list = list(range(k + 1, K)) + ([X] if include_x else [])
            offs, off = {}, 0
            for m in range(k + 1, K):
                offs[m] = off
                off += sizes[m]
            offs[X] = off
            idx = {m: self.anc[k][m] for m in range(k + 1, K)}
            idx[X] = np.zeros(terms[k].n_levels, dtype=np.intp)
            blocks = {m: Rk[:, :, offs[m] : offs[m] + sizes[m]] for m in anc_list}
            for m in anc_list:
                acc = np.zeros((terms[k].n_levels, sizes[k], sizes[m]))
                for m2 in anc_list:
                    if m2 < m:
                        S = Sig[m2][m][idx[m2]]
                    elif m2 == m:
                        S = Sig[m][m][idx[m]]
                    else:
                        S = _t(Sig[m][m2][idx[m]])
                    acc += blocks[m2] @ S
                Sig[k][m] = -LinvT @ acc
            inner = Linv.copy()
            for m in anc_list:
                inner -= blocks[m] @ _t(Sig[k][m])
            Sig[k][k] = LinvT @ inner
        return Sig

    def _condcov_nested(self, f: Factor):
        """Diagonal blocks of A^{-1} per level (Takahashi recursion over the factor tree)."""
        Sig = self._selinv_nested(f, include_x=False)
        return [Sig[k][k] for k in range(len(self.terms))]

    def _gradient_nested(self, f: Factor) -> np.ndarray:
        """Exact gradient of the profiled deviance at ``f`` (nested factors).

        ``d log|A|`` (ML) or ``d log|M|`` (REML, M the system augmented by X) is
        ``2 tr(S^{-1} Lam' G dLam)`` over the blocks of the selected inverse; ``d pwrss`` is
        ``-2 r' Z dLam u`` at the conditional modes (the envelope theorem).
        """
        terms, K, p, n = self.terms, len(self.terms), self.p, self.n
        lams = f.lams
        sizes = [t.q for t in terms]
        u = self._modes_nested(f)
        b = [u[k] @ lams[k].T for k in range(K)]
        beta = f.beta()
        Sig = self._selinv_nested(f, include_x=self.reml)

        def off_in(k, m):  # column offset of level m (or X when m == K) in raw[k]
            return sizes[k] + sum(sizes[k + 1 : m]) if m < K else sizes[k] + sum(sizes[k + 1:])

        grad = np.zeros(self.n_theta)
        for k in range(K):
            raw = self.raw[k]
            qk = sizes[k]
            # Z_k' r from the stored cross-products
            Ztr = self.raw_y[k][:, :, 0].copy()
            if p:
                Ztr -= raw[:, :, off_in(k, K) : off_in(k, K) + p] @ beta
            Ztr -= _mv(raw[:, :, :qk], b[k])
            B = Sig[k][k] @ (lams[k].T @ raw[:, :, :qk])
            for m in range(k + 1, K):
                o = off_in(k, m)
                G = raw[:, :, o : o + sizes[m]]  # (J_k, q_k, q_m)
                Ztr -= _mv(G, b[m][self.anc[k][m]])
                B += Sig[k][m] @ (lams[m].T @ _t(G))
            if self.reml and p:
                o = off_in(k, K)
                B += Sig[k][K] @ _t(raw[:, :, o : o + p])
            for m in range(k):  # descendants of level k at level m
                o = off_in(m, k)
                G = self.raw[m][:, :, o : o + qk]  # (J_m, q_m, q_k)
                contrib = _mv(_t(G), b[m])  # (J_m, q_k)
                Ztr -= self.agg[m][k] @ contrib
                Bd = _t(Sig[m][k]) @ (lams[m].T @ G)  # (J_m, q_k, q_k)
                B += (self.agg[m][k] @ Bd.reshape(Bd.shape[0], -1)).reshape(B.shape)
            lay = terms[k].layout
            sl = self.slices[k]
            Bsum = B.sum(axis=0)
            dlogdet = 2.0 * Bsum[lay.cols, lay.rows]
            dpwrss = -2.0 * np.einsum("ji,ji->i", Ztr[:, lay.rows], u[k][:, lay.cols])
            dof = n - p if self.reml else n
            grad[sl] = dlogdet + dof * dpwrss / f.pwrss
        return grad

    @property
    def exact_derivatives(self):
        """``(x, free) -> (gradient, Hessian)`` over the free parameters from the exact
        gradient (forward differences of it for the Hessian, symmetrised), or None."""
        if self.structure == "crossed":
            return None

        def derivs(x, free, delta=1e-5):
            g_all = self.value_and_gradient(x)[1]
            g = g_all[free]
            idx = np.flatnonzero(free)
            H = np.zeros((len(idx), len(idx)))
            for a, i in enumerate(idx):
                e = np.zeros(len(x))
                e[i] = delta
                H[:, a] = (self.value_and_gradient(x + e)[1][free] - g) / delta
            return g, (H + H.T) / 2

        return derivs

    def value_and_gradient(self, theta):
        """Deviance and its gradient (exact for nested factors, central differences else)."""
        theta = np.asarray(theta, dtype=float)
        try:
            with np.errstate(all="ignore"):
                f = self.factor(theta)
                if not np.isfinite(f.deviance):
                    return np.inf, np.zeros(self.n_theta)
                if self.structure != "crossed":
                    return f.deviance, getattr(self, f"_gradient_{self.structure}")(f)
        except (np.linalg.LinAlgError, linalg.LinAlgError, FloatingPointError, ValueError):
            return np.inf, np.zeros(self.n_theta)
        h = 1e-6 * np.maximum(1.0, np.abs(theta))
        g = np.zeros(self.n_theta)
        for i in range(self.n_theta):
            e = np.zeros(self.n_theta)
            e[i] = h[i]
            lo = theta - e
            if self.lower[i] == 0 and lo[i] < 0:
                g[i] = (self.deviance(theta + e) - f.deviance) / h[i]
            else:
                g[i] = (self.deviance(theta + e) - self.deviance(lo)) / (2 * h[i])
        return f.deviance, g

    # --- small crossed designs: one dense factorisation ----------------------------------------

    def _setup_dense(self):
        terms = self.terms
        self.Q = sum(t.n_levels * t.q for t in terms)
        self.offsets = np.cumsum([0] + [t.n_levels * t.q for t in terms])
        # level pairs of two terms in one row, for the off-diagonal blocks of Z' W Z
        self._pair_codes = {
            (i, j): terms[i].codes.astype(np.int64) * terms[j].n_levels + terms[j].codes
            for i in range(len(terms)) for j in range(i + 1, len(terms))
        }
        self._dense_products()

    def _reweight_dense(self):
        self._dense_products()

    def _dense_products(self):
        """``G_ZZ = Z' W Z`` (dense, Q x Q) and ``G_ZX = Z' W X`` by sums over rows."""
        terms, w = self.terms, self.w
        G = np.zeros((self.Q, self.Q))
        for i, (ti, oi) in enumerate(zip(terms, self.offsets)):
            Ji, qi = ti.n_levels, ti.q
            idx = oi + np.arange(Ji)[:, None] * qi + np.arange(qi)[None, :]
            G[idx[:, :, None], idx[:, None, :]] = _bincount_products(ti.codes, ti.Z, ti.Z, Ji, w)
            for j in range(i + 1, len(terms)):
                tj, oj = terms[j], self.offsets[j]
                Jj, qj = tj.n_levels, tj.q
                pair = self._pair_codes[(i, j)]
                for c in range(qi):
                    zc = ti.Z[:, c] if w is None else ti.Z[:, c] * w
                    for d in range(qj):
                        blk = np.bincount(pair, zc * tj.Z[:, d], minlength=Ji * Jj).reshape(
                            Ji, Jj)
                        G[oi + c : oi + Ji * qi : qi, oj + d : oj + Jj * qj : qj] = blk
                        G[oj + d : oj + Jj * qj : qj, oi + c : oi + Ji * qi : qi] = blk.T
        self.GZZ = G
        self.GZX = self._dense_zt(self.X)
        self._setup_dense_y()

    def _dense_zt(self, M) -> np.ndarray:
        """``Z' W M`` (Q rows) for M with n rows."""
        return np.concatenate([
            _bincount_products(t.codes, t.Z, M, t.n_levels, self.w).reshape(
                t.n_levels * t.q, M.shape[1])
            for t in self.terms
        ])

    def _setup_dense_y(self):
        self.GZy = self._dense_zt(self.y[:, None])[:, 0]
        self.F_raw = self._F_raw()

    def _lam_rows(self, lams, M, transpose: bool, first: int = 0):
        """``Lam' M`` (``transpose``) or ``Lam M``, block by block, for M whose rows are those
        of the terms from ``first`` on."""
        out = np.empty_like(M)
        base = self.offsets[first]
        for t, lam, o in zip(self.terms[first:], lams[first:], self.offsets[first:]):
            J, q = t.n_levels, t.q
            o = o - base
            seg = M[o : o + J * q]
            if q == 1:
                np.multiply(seg, float(lam[0, 0]), out=out[o : o + J])
            else:
                L = lam.T if transpose else lam
                out[o : o + J * q] = np.einsum(
                    "ab,jb...->ja...", L, seg.reshape((J, q) + seg.shape[1:])
                ).reshape(seg.shape)
        return out

    def _lam_cols(self, lams, M, first: int = 0, last: int | None = None):
        """``M Lam``, block by block, for M whose columns are those of terms first..last-1."""
        out = np.empty_like(M)
        base = self.offsets[first]
        stop = len(self.terms) if last is None else last
        for k in range(first, stop):
            t, lam = self.terms[k], lams[k]
            J, q = t.n_levels, t.q
            o = self.offsets[k] - base
            seg = M[:, o : o + J * q]
            if q == 1:
                np.multiply(seg, float(lam[0, 0]), out=out[:, o : o + J])
            else:
                out[:, o : o + J * q] = (seg.reshape(M.shape[0], J, q) @ lam).reshape(seg.shape)
        return out

    def _leading_blocked(self) -> bool:
        """Eliminate the first term's (block-diagonal) block of A first: worth it when that
        term holds most of the random effects."""
        n0 = self.terms[0].n_levels * self.terms[0].q
        return len(self.terms) > 1 and n0 >= 2 * (self.Q - n0)

    def _cholesky_blocked(self, lams) -> np.ndarray:
        """Lower Cholesky factor of ``A = Lam' G_ZZ Lam + I``, the first term eliminated first.

        The rows of the first (largest) term couple only within a level, so its block of A is
        block diagonal: its factor is batched, and only the Schur complement of the other
        terms is factored densely (the same factor as a dense Cholesky of A, at a fraction
        of the cost).
        """
        t0, lam0 = self.terms[0], lams[0]
        J0, q0 = t0.n_levels, t0.q
        n0 = J0 * q0
        Q, G = self.Q, self.GZZ
        idx = np.arange(J0)[:, None] * q0 + np.arange(q0)[None, :]
        A00 = lam0.T @ G[idx[:, :, None], idx[:, None, :]] @ lam0
        A00[:, np.arange(q0), np.arange(q0)] += 1.0
        L0 = batched_cholesky(A00)
        if not np.all(np.isfinite(L0)) or np.any(np.diagonal(L0, axis1=1, axis2=2) <= 0):
            raise np.linalg.LinAlgError("Matrix is not positive definite")
        A10 = self._lam_cols(lams, self._lam_rows(lams, G[n0:, :n0], True, first=1), 0, 1)
        L10 = np.einsum("rjb,jab->rja", A10.reshape(Q - n0, J0, q0),
                        batched_inverse_lower(L0)).reshape(Q - n0, n0)
        A11 = self._lam_cols(lams, self._lam_rows(lams, G[n0:, n0:], True, first=1), 1)
        A11 -= L10 @ L10.T
        A11[np.diag_indices(Q - n0)] += 1.0
        LA = np.zeros((Q, Q))
        LA[idx[:, :, None], idx[:, None, :]] = L0
        LA[n0:, :n0] = L10
        LA[n0:, n0:] = np.linalg.cholesky(A11)
        return LA

    def _factor_dense(self, lams) -> Factor:
        Q = self.Q
        if self._leading_blocked():
            LA = self._cholesky_blocked(lams)
        else:
            A = self._lam_cols(lams, self._lam_rows(lams, self.GZZ, transpose=True))
            A[np.diag_indices(Q)] += 1.0
            LA = np.linalg.cholesky(A)
        logdet = 2.0 * float(np.log(np.diag(LA)).sum())
        C = self._lam_rows(lams, np.column_stack([self.GZX, self.GZy]), transpose=True)
        T = linalg.solve_triangular(LA, C, lower=True, check_finite=False)
        F = self.F_raw - T.T @ T
        return self._finish(F, logdet, lams, {"LA": LA, "T": T})

    def _split_terms(self, vec_or_rows):
        out = []
        for t, o in zip(self.terms, self.offsets):
            size = t.n_levels * t.q
            out.append(vec_or_rows[o : o + size])
        return out

    def _u_dense(self, f: Factor) -> np.ndarray:
        p = self.p
        beta = f.beta()
        T = f.parts["T"]
        rhs = T[:, -1] - (T[:, :p] @ beta if p else 0.0)
        return linalg.solve_triangular(f.parts["LA"].T, rhs, lower=False)

    def _modes_dense(self, f: Factor):
        u = self._u_dense(f)
        return [v.reshape(t.n_levels, t.q) for v, t in zip(self._split_terms(u), self.terms)]

    def _inverse_dense(self, f: Factor, include_x: bool) -> np.ndarray:
        """A^{-1}, or the (Q + p) block of the inverse of the system augmented by X."""
        LA = f.parts["LA"]
        if include_x and self.p:
            p = self.p
            T = f.parts["T"][:, :p]
            RX = f.LF[:p, :p]
            L = np.block([[LA, np.zeros((self.Q, p))], [T.T, RX]])
        else:
            L = LA
        Linv = linalg.solve_triangular(L, np.eye(L.shape[0]), lower=True)
        return Linv.T @ Linv

    def _condcov_dense(self, f: Factor):
        S = self._inverse_dense(f, include_x=False)
        out = []
        for t, o in zip(self.terms, self.offsets):
            idx = o + np.arange(t.n_levels)[:, None] * t.q + np.arange(t.q)[None, :]
            out.append(S[idx[:, :, None], idx[:, None, :]])
        return out

    def _gradient_dense(self, f: Factor) -> np.ndarray:
        Q, p, n = self.Q, self.p, self.n
        lams = f.lams
        u = self._u_dense(f)
        beta = f.beta()
        b = self._lam_rows(lams, u, transpose=False)
        Ztr = self.GZy - (self.GZX @ beta if p else 0.0) - self.GZZ @ b
        S = self._inverse_dense(f, include_x=self.reml)
        LG = self._lam_rows(lams, self.GZZ, transpose=True)  # Lam' G_ZZ (Q, Q)
        if self.reml and p:
            LtG = np.vstack([LG, self.GZX.T])  # rows: u's then X (Lambda_X = I)
        else:
            LtG = LG
        P = S[:Q, :] @ LtG  # (Q, Q): rows of (S Lam~' G~) for the random effects
        grad = np.zeros(self.n_theta)
        dof = n - p if self.reml else n
        for k, (t, o) in enumerate(zip(self.terms, self.offsets)):
            lay = t.layout
            base = o + np.arange(t.n_levels)[:, None] * t.q
            rows_i = base + lay.rows[None, :]  # (J, npar)
            cols_j = base + lay.cols[None, :]
            dlogdet = 2.0 * P[cols_j, rows_i].sum(axis=0)
            dpwrss = -2.0 * (Ztr[rows_i] * u[cols_j]).sum(axis=0)
            grad[self.slices[k]] = dlogdet + dof * dpwrss / f.pwrss
        return grad

    # --- crossed factors -----------------------------------------------------------------------

    def _setup_crossed(self):
        terms = self.terms
        t0, rest = terms[0], terms[1:]
        self.q0, self.J0 = t0.q, t0.n_levels
        self.raw0 = _bincount_products(t0.codes, t0.Z, [t0.Z, self.X], t0.n_levels, self.w)
        Z0 = _z_sparse(t0)
        Zr = sparse.hstack([_z_sparse(t) for t in rest]).tocsr()
        self.Q_r = Zr.shape[1]
        if self.Q_r > DENSE_LIMIT:
            raise EngineError(
                f"the crossed grouping factors other than the largest have {self.Q_r} random "
                f"effects in all; this engine handles at most {DENSE_LIMIT} (it keeps them in a "
                f"dense matrix). Make the factor with the most levels the one with most random "
                f"effects, or simplify the random part"
            )
        W = sparse.diags(self.w) if self.w is not None else None
        Zr_w = Zr if W is None else W @ Zr
        self.G0r = (Z0.T @ Zr_w).tocsr()  # (J0 q0, Q_r)
        self.Grr = (Zr.T @ Zr_w).toarray()
        self._Zr = Zr
        self._Zr_w = Zr_w
        self.ZrX = Zr_w.T @ self.X  # (Q_r, p)
        self.rest_sizes = [t.n_levels * t.q for t in rest]
        self._setup_crossed_y()

    def _reweight_crossed(self):
        t0 = self.terms[0]
        self.raw0 = _bincount_products(t0.codes, t0.Z, np.column_stack([t0.Z, self.X]),
                                       t0.n_levels, self.w)
        Z0 = getattr(self, "_Z0", None)
        if Z0 is None:
            Z0 = self._Z0 = _z_sparse(t0)
        Zr_w = sparse.diags(self.w) @ self._Zr
        self._Zr_w = Zr_w.tocsr()
        self.G0r = (Z0.T @ self._Zr_w).tocsr()
        self.Grr = (self._Zr.T @ self._Zr_w).toarray()
        self.ZrX = self._Zr_w.T @ self.X
        self._setup_crossed_y()

    def _setup_crossed_y(self):
        t0 = self.terms[0]
        self.raw0_y = _bincount_products(t0.codes, t0.Z, self.y[:, None], t0.n_levels, self.w)
        self.Zry = self._Zr_w.T @ self.y
        self.F_raw = self._F_raw()

    def _dense_coupling(self) -> bool:
        """The coupling of the largest factor to the others is small enough to keep dense."""
        return self.J0 * self.q0 * self.Q_r <= 2_000_000 and self.Q_r <= 1000

    def _G0r_dense(self) -> np.ndarray:
        G = getattr(self, "_G0r_cache", None)
        if G is None or G[0] is not self.G0r:
            G = (self.G0r, self.G0r.toarray())
            self._G0r_cache = G
        return G[1]

    def _lam_rest_dense(self, lams) -> np.ndarray:
        out = np.zeros((self.Q_r, self.Q_r))
        off = 0
        for lam, t in zip(lams[1:], self.terms[1:]):
            for j in range(t.n_levels):
                out[off : off + t.q, off : off + t.q] = lam
                off += t.q
        return out

    def _lam_rest(self, lams):
        blocks = [_block_diag_sparse(lam, t.n_levels) for lam, t in zip(lams[1:], self.terms[1:])]
        return sparse.block_diag(blocks, format="csr")

    def _factor_crossed(self, lams) -> Factor:
        q0, J0, p = self.q0, self.J0, self.p
        lam0 = lams[0]
        raw = np.concatenate([self.raw0, self.raw0_y], axis=2)
        B0 = lam0.T @ raw
        B0[:, :, :q0] = B0[:, :, :q0] @ lam0
        B0[:, np.arange(q0), np.arange(q0)] += 1.0
        L0 = batched_cholesky(B0[:, :, :q0])
        if not np.all(np.isfinite(L0)):
            raise np.linalg.LinAlgError("not positive definite")
        logdet = 2.0 * float(np.log(np.diagonal(L0, axis1=1, axis2=2)).sum())
        R0xy = batched_forward(L0, B0[:, :, q0:])  # (J0, q0, p+1)
        # sparse coupling to the other factors: blockdiag(L0^-1 Lam0') G0r blockdiag(Lam_r)
        P0 = batched_inverse_lower(L0) @ lam0.T  # (J0, q0, q0)
        if not self._dense_coupling():
            BD0 = sparse.bsr_matrix((P0, np.arange(J0), np.arange(J0 + 1)),
                                    shape=(J0 * q0, J0 * q0)).tocsr()
        R0xy_flat = R0xy.reshape(J0 * q0, p + 1)
        if self._dense_coupling():
            # small coupling block: dense products avoid the sparse-matrix overhead
            Lr = self._lam_rest_dense(lams)
            G = self._G0r_dense().reshape(J0, q0, -1)
            R0r = np.einsum("jab,jbc->jac", P0, G).reshape(J0 * q0, -1) @ Lr
            M = Lr.T @ self.Grr @ Lr
            M -= R0r.T @ R0r
        else:
            Lr = self._lam_rest(lams)
            R0r = (BD0 @ self.G0r @ Lr).tocsr()
            M = np.asarray((Lr.T @ np.asarray(Lr.T @ self.Grr).T).T)  # Lr' Grr Lr
            M -= (R0r.T @ R0r).toarray()
        M[np.diag_indices_from(M)] += 1.0
        Mxy = np.asarray(Lr.T @ np.column_stack([self.ZrX, self.Zry])) - np.asarray(
            R0r.T @ R0xy_flat)
        Lrr = np.linalg.cholesky(M)
        logdet += 2.0 * float(np.log(np.diag(Lrr)).sum())
        T = linalg.solve_triangular(Lrr, Mxy, lower=True)
        F = self.F_raw - R0xy_flat.T @ R0xy_flat - T.T @ T
        return self._finish(F, logdet, lams, {"L0": L0, "R0xy": R0xy, "R0r": R0r, "Lrr": Lrr,
                                              "T": T})

    def _modes_crossed(self, f: Factor):
        p = self.p
        beta = f.beta()
        L0, R0xy, R0r, Lrr, T = (f.parts[k] for k in ("L0", "R0xy", "R0r", "Lrr", "T"))
        rhs_r = T[:, -1] - (T[:, :p] @ beta if p else 0.0)
        u_r = linalg.solve_triangular(Lrr.T, rhs_r, lower=False)
        rhs0 = R0xy[:, :, -1] - (R0xy[:, :, :p] @ beta if p else 0.0)
        rhs0 = rhs0 - (R0r @ u_r).reshape(self.J0, self.q0)
        u0 = batched_backward(L0, rhs0[:, :, None])[:, :, 0]
        out = [u0]
        off = 0
        for t in self.terms[1:]:
            size = t.n_levels * t.q
            out.append(u_r[off : off + size].reshape(t.n_levels, t.q))
            off += size
        return out

    def _condcov_crossed(self, f: Factor):
        L0, R0r, Lrr = f.parts["L0"], f.parts["R0r"], f.parts["Lrr"]
        J0, q0 = self.J0, self.q0
        Lrr_inv = linalg.solve_triangular(Lrr, np.eye(Lrr.shape[0]), lower=True)
        Sig_rr = Lrr_inv.T @ Lrr_inv
        out_rest = []
        off = 0
        for t in self.terms[1:]:
            size = t.n_levels * t.q
            blk = Sig_rr[off : off + size, off : off + size]
            idx = np.arange(t.n_levels)[:, None] * t.q + np.arange(t.q)[None, :]
            out_rest.append(blk[idx[:, :, None], idx[:, None, :]])
            off += size
        # Sigma_00 = U00^-1 (I + R0r Sig_rr R0r') U00^-T, block by block (in chunks)
        Linv = batched_inverse_lower(L0)
        S00 = np.empty((J0, q0, q0))
        chunk = max(1, int(2e6 // max(1, q0 * Sig_rr.shape[0])))
        for s in range(0, J0, chunk):
            e = min(J0, s + chunk)
            Rd = R0r[s * q0 : e * q0]
            Rd = (Rd if isinstance(Rd, np.ndarray) else Rd.toarray()).reshape(e - s, q0, -1)
            mid = np.einsum("jac,cd,jbd->jab", Rd, Sig_rr, Rd, optimize=True)
            mid[:, np.arange(q0), np.arange(q0)] += 1.0
            S00[s:e] = _t(Linv[s:e]) @ mid @ Linv[s:e]
        return [S00] + out_rest

    # --- public pieces ----------------------------------------------------------------------

    def modes(self, f: Factor):
        return getattr(self, f"_modes_{self.structure}")(f)

    def condcov(self, f: Factor):
        """Conditional covariance blocks of the spherical effects, relative to sigma2."""
        return getattr(self, f"_condcov_{self.structure}")(f)


# --- starting values ----------------------------------------------------------------------------


def moment_start(y, X, term: ReTerm, products=None) -> np.ndarray:
    """Starting theta of one term from per-level OLS of the pooled-OLS residuals on Z.

    ``T0 = Cov_g(b_g) - mean_g(sigma2_0 (Z_g'Z_g)^-1)``, made positive definite; theta0 is the
    Cholesky factor of ``T0 / sigma2_0`` (block by block). Falls back to the identity.
    ``products`` = ``(XtX, Xty, ZtZ, ZtX, Zty)`` (per level for the Z ones), when the caller
    has them already, saves their passes over the rows.
    """
    q, J = term.q, term.n_levels
    p = X.shape[1]
    if products is None:
        XtX, Xty = (X.T @ X, X.T @ y) if p else (None, None)
        ZtZ = _bincount_products(term.codes, term.Z, term.Z, J)
    else:
        XtX, Xty, ZtZ, ZtX, Zty = products
    if p:  # pooled OLS from the normal equations (X has full rank, unit columns)
        beta = np.linalg.solve(XtX, Xty)
    else:
        beta = np.zeros(0)
    r = y - X @ beta if p else y
    if products is None:
        Ztr = _bincount_products(term.codes, term.Z, r[:, None], J)[:, :, 0]
    else:
        Ztr = Zty - (ZtX @ beta if p else 0.0)
    rtr = np.bincount(term.codes, r * r, minlength=J)
    n_j = np.bincount(term.codes, minlength=J)
    with np.errstate(all="ignore"):
        ok = (n_j > q) & (np.linalg.cond(ZtZ) < 1e10)
    if ok.sum() < 3:
        return term.layout.identity()
    G = ZtZ[ok]
    b = np.linalg.solve(G, Ztr[ok][:, :, None])[:, :, 0]
    rss = rtr[ok] - np.einsum("ja,ja->j", b, Ztr[ok])
    sigma2 = max(rss.sum() / max(n_j[ok].sum() - q * ok.sum(), 1), 1e-12)
    T = np.atleast_2d(np.cov(b.T)) - sigma2 * np.linalg.inv(G).mean(axis=0)
    w, V = np.linalg.eigh((T + T.T) / 2)
    floor = 0.01 * max(w.max(), sigma2 * 1e-3)
    T = (V * np.maximum(w, floor)) @ V.T / sigma2
    theta = term.layout.theta_of_cov(T)
    return theta if np.all(np.isfinite(theta)) else term.layout.identity()


# --- derivatives (lme4's deriv12) ------------------------------------------------------------------


def deriv12(fun, x: np.ndarray, fx: float, delta: float = 1e-4):
    """Central-difference gradient and Hessian (lme4's ``deriv12``, step ``delta``)."""
    k = len(x)
    g = np.zeros(k)
    H = np.zeros((k, k))
    fp = np.empty(k)
    fm = np.empty(k)
    for j in range(k):
        e = np.zeros(k)
        e[j] = delta
        fp[j], fm[j] = fun(x + e), fun(x - e)
        g[j] = (fp[j] - fm[j]) / (2 * delta)
        H[j, j] = (fp[j] - 2 * fx + fm[j]) / delta**2
        for i in range(j):
            ei = np.zeros(k)
            ei[i] = delta
            fpp = fun(x + e + ei)
            fmm = fun(x - e - ei)
            H[i, j] = H[j, i] = (fpp - fp[i] - fp[j] + 2 * fx - fm[i] - fm[j] + fmm) / (
                2 * delta**2
            )
    return g, H


@dataclass(frozen=True)
class Convergence:
    """lme4's convergence check (``R/checkConv.R``) plus the boundary test lme4 lacks."""

    singular: bool
    gradient: np.ndarray
    hessian: np.ndarray
    max_grad: float  # max(pmin(|scaled gradient|, |gradient|)) over the free parameters
    messages: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.messages


def check_convergence(fun, x: np.ndarray, fx: float, lower: np.ndarray,
                      derivatives=None, *, delta: float = 1e-4) -> Convergence:
    """lme4's ``checkConv``: the Cholesky-scaled gradient and the Hessian's eigenvalues.

    At a singular point (a theta bounded by 0 is below 1e-4) lme4 stops after reporting the
    singular fit; here the parameters away from their bound are still checked (gradient and
    Hessian of the deviance restricted to them), and :func:`optimize_theta` has already made
    sure that no move into the interior lowers the deviance. ``delta`` is the step of the
    central differences (lme4's 1e-4; larger for a deviance that is smooth only to the
    tolerance of an inner iteration and whose parameters are scaled to unit curvature).
    """
    at_bound = (lower == 0) & (x < SINGULAR_TOL)
    free = ~at_bound
    msgs: list[str] = []
    if not free.any():
        return Convergence(True, np.zeros(len(x)), np.zeros((len(x), len(x))), 0.0, ())
    xf = x[free]

    def f_free(z):
        full = x.copy()
        full[free] = z
        return fun(full)

    if derivatives is None:
        g, H = deriv12(f_free, xf, fx, delta)
    else:
        g, H = derivatives(x, free)
    gfull = np.zeros(len(x))
    gfull[free] = g
    Hfull = np.zeros((len(x), len(x)))
    Hfull[np.ix_(free, free)] = H
    max_grad = np.inf
    if not np.all(np.isfinite(g)) or not np.all(np.isfinite(H)):
        msgs.append("unable to evaluate the gradient or the Hessian")
    else:
        try:
            R = linalg.cholesky(H, lower=False)
            scgrad = linalg.solve_triangular(R, g, lower=False)
            max_grad = float(np.max(np.minimum(np.abs(scgrad), np.abs(g))))
            if max_grad > GRADIENT_TOL:
                msgs.append(
                    f"failed to converge with max|grad| = {max_grad:.3g} (tol = {GRADIENT_TOL})"
                )
        except (linalg.LinAlgError, ValueError):
            msgs.append("unable to evaluate the scaled gradient")
        evd = np.linalg.eigvalsh((H + H.T) / 2)
        neg = int(np.sum(evd < -HESSIAN_TOL))
        if neg:
            msgs.append(f"degenerate Hessian with {neg} negative eigenvalue(s)")
        elif np.any(np.abs(evd) < HESSIAN_TOL):
            msgs.append("Hessian is numerically singular: parameters are not uniquely determined")
    return Convergence(bool(at_bound.any()), gfull, Hfull, max_grad, tuple(msgs))


# --- optimisation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Optimum:
    theta: np.ndarray
    deviance: float
    optimizer: str
    n_evals: int
    convergence: Convergence
    restarts: int  # moves off a boundary point that lowered the deviance


LBFGS_OPTIONS = {"ftol": 1e-12, "gtol": 1e-8, "maxiter": 1000, "maxls": 40}


def _lbfgs(fun, x0, bounds, options=None, value_and_gradient=None):
    """L-BFGS-B with an exact gradient when given, central differences otherwise.

    ``options`` may hold ``jac="2-point"`` (forward differences: half the evaluations) with
    ``finite_diff_rel_step`` set for the accuracy of ``fun``.
    """
    opts = LBFGS_OPTIONS if options is None else {**LBFGS_OPTIONS, **options}
    jac = opts.get("jac", "3-point")  # the finite differences (with "finite_diff_rel_step")
    opts = {k: v for k, v in opts.items() if k != "jac"}
    if value_and_gradient is not None:
        res = optimize.minimize(value_and_gradient, x0, method="L-BFGS-B", bounds=bounds,
                                jac=True, options=opts)
        x = np.asarray(res.x, dtype=float)
        return x, float(res.fun) if np.isfinite(res.fun) else float(fun(x))
    res = optimize.minimize(
        fun, x0, method="L-BFGS-B", bounds=bounds, jac=jac, options=opts,
    )
    return np.asarray(res.x, dtype=float), float(res.fun)


def interior_moves(fun, x: np.ndarray, fx: float, lower: np.ndarray):
    """Points just inside the boundary from ``x`` that have a lower deviance.

    At a point where a Cholesky element bounded by 0 sits at 0 (a variance at zero, or a
    correlation at +-1), the profiled deviance is symmetric in that element, so its gradient
    there vanishes whether the point is a minimum or a saddle. Each such element (and all of
    them together) is moved into the interior by several step lengths; the best point that
    lowers the deviance is returned, or None.
    """
    idx = np.flatnonzero((lower == 0) & (x < SINGULAR_TOL))
    if len(idx) == 0:
        return None
    scale = max(1.0, float(np.max(np.abs(x)))) if len(x) else 1.0
    best, best_f = None, fx - 1e-7
    sets = [[i] for i in idx] + ([list(idx)] if len(idx) > 1 else [])
    for h in (1e-3, 1e-2, 0.1, 0.3):
        for s in sets:
            z = x.copy()
            z[s] = h * scale
            fz = fun(z)
            if fz < best_f:
                best, best_f = z, fz
    return best


def lbfgs_off_boundary(fun, x0, lower, options=None, value_and_gradient=None):
    """L-BFGS-B from ``x0``, restarted from :func:`interior_moves` while that lowers ``fun``.

    Step 1 and 2 of :func:`optimize_theta`, for any deviance with these bounds (``lower``: 0
    for parameters bounded by 0, ``-inf`` for free ones). Returns ``(x, f(x), restarts)``.
    """
    lower = np.asarray(lower, dtype=float)
    bounds = [(0.0 if lo == 0 else None, None) for lo in lower]
    x, fx = _lbfgs(fun, np.asarray(x0, dtype=float), bounds, options, value_and_gradient)
    restarts = 0
    while restarts < 4:
        z = interior_moves(fun, x, fx, lower)
        if z is None:
            break
        restarts += 1
        x2, f2 = _lbfgs(fun, z, bounds, options, value_and_gradient)
        if f2 < fx - 1e-9:
            x, fx = x2, f2
        else:
            break
    return x, fx, restarts


def optimize_theta(problem: Problem, start: np.ndarray) -> Optimum:
    """Minimise the profiled deviance over theta, and check the answer.

    1. L-BFGS-B (bounded quasi-Newton) from ``start``.
    2. At a boundary point, try moving into the interior (:func:`interior_moves`); when that
       lowers the deviance, restart from there (a saddle, not an optimum).
    3. lme4's convergence check (:func:`check_convergence`). When it fails: Nelder-Mead then
       L-BFGS-B from the point found, and L-BFGS-B from lme4's start (Lam = I); the lowest
       deviance wins, and steps 2-3 are repeated on it.
    """
    vg = problem.value_and_gradient if problem.structure != "crossed" else None
    return minimize_deviance(problem.deviance, start, problem.lower,
                             fallback=problem.identity(), counter=lambda: problem.n_evals,
                             value_and_gradient=vg, derivatives=problem.exact_derivatives)


@single_blas_thread
def minimize_deviance(fun, start, lower, *, fallback=None, counter=None,
                      options=None, delta: float = 1e-4, value_and_gradient=None,
                      derivatives=None) -> Optimum:
    """The optimizer path of :func:`optimize_theta` for any deviance with these bounds.

    ``fun`` maps a parameter vector to a deviance (``inf`` where it cannot be evaluated);
    ``lower`` holds 0 for the parameters bounded below by 0 (Cholesky diagonals) and
    ``-inf`` for free ones (off-diagonal elements, fixed effects of a GLMM, ...). The same
    three steps and the same convergence rule apply; ``fallback`` is the second starting
    point of step 3 (Lam = I for the linear model), ``counter`` returns the number of
    deviance evaluations so far; ``options`` replace some of the L-BFGS-B options (a
    deviance computed by an inner iteration is smooth only to its tolerance, so the
    quasi-Newton steps should stop before they chase that noise); ``delta`` is the step of
    :func:`check_convergence`. ``value_and_gradient`` (value and exact gradient) and
    ``derivatives`` (gradient and Hessian for the check) are used when given.
    """
    lower = np.asarray(lower, dtype=float)
    bounds = [(0.0 if lo == 0 else None, None) for lo in lower]
    n_calls = [0]
    raw = fun

    def counted(x):
        n_calls[0] += 1
        return raw(x)

    if counter is None:
        fun = counted
        counter = lambda: n_calls[0]  # noqa: E731
    candidates = []

    def polish(x0, name):
        x, fx, restarts = lbfgs_off_boundary(fun, x0, lower, options, value_and_gradient)
        candidates.append((fx, x, name, restarts))
        return x, fx, restarts

    x, fx, restarts = polish(start, "L-BFGS-B")
    conv = check_convergence(fun, x, fx, lower, derivatives, delta=delta)
    name = "L-BFGS-B"
    if not conv.ok:
        nm = optimize.minimize(
            fun, x, method="Nelder-Mead", bounds=bounds,
            options={"xatol": 1e-9, "fatol": 1e-12, "maxfev": 20000, "adaptive": True},
        )
        polish(nm.x, "Nelder-Mead + L-BFGS-B")
        if fallback is not None:
            polish(np.asarray(fallback, dtype=float), "L-BFGS-B from Lam = I")
        fx, x, name, restarts = min(candidates, key=lambda c: c[0])
        conv = check_convergence(fun, x, fx, lower, derivatives, delta=delta)
    return Optimum(theta=x, deviance=fx, optimizer=name, n_evals=counter(),
                   convergence=conv, restarts=restarts)


# --- internal standardisation ------------------------------------------------------------------


def _constant_columns(A: np.ndarray) -> np.ndarray:
    if A.shape[1] == 0 or A.shape[0] == 0:
        return np.zeros(A.shape[1], dtype=bool)
    return np.array([A[0, j] != 0 and A[-1, j] == A[0, j] and bool(np.all(A[:, j] == A[0, j]))
                     for j in range(A.shape[1])])


@dataclass(frozen=True)
class Scaling:
    """How the columns were standardised: ``y = a + s y~``, ``X~ = X M``, ``Z~_t = Z_t N_t``.

    Estimates are invariant to these changes in the way the algebra says (theta up to the
    reparametrisation ``T = N T~ N'``), so the optimizer always sees unit-sized, centred
    columns and the results are mapped back exactly.
    """

    a: float
    s: float
    M: np.ndarray
    c: np.ndarray  # 1 = X c: the constant column in terms of X (zeros when none)
    N: tuple[np.ndarray, ...]

    def beta(self, beta_s: np.ndarray) -> np.ndarray:
        return self.s * (self.M @ beta_s) + self.a * self.c

    def vcov(self, vcov_s: np.ndarray) -> np.ndarray:
        return self.s**2 * (self.M @ vcov_s @ self.M.T)

    def deviance(self, dev_s: float, n: int, p: int, reml: bool) -> float:
        logs2 = np.log(self.s**2)
        if reml:
            _, logdet_m = np.linalg.slogdet(self.M) if p else (1.0, 0.0)
            return float(dev_s + (n - p) * logs2 - 2.0 * logdet_m)
        return float(dev_s + n * logs2)


def _scale_matrix(A: np.ndarray, centre_with: int | None, blocks=None):
    """``(A M, M)`` with unit-sized columns, centred when a constant column ``centre_with``
    is in the same block."""
    k = A.shape[1]
    M = np.eye(k)
    if k == 0:
        return A.copy(), M
    const = _constant_columns(A)
    for j in range(k):
        col = A[:, j]
        if const[j]:
            M[j, j] = 1.0 / col[0]
            continue
        same_block = centre_with is not None and (
            blocks is None or any(j in b and centre_with in b for b in blocks)
        )
        if same_block:
            m = col.mean()
            sd = col.std()
            sd = sd if sd > 0 else 1.0
            # (col - m) / sd = col / sd - (m / sd) * const_col / const_value
            M[j, j] = 1.0 / sd
            M[centre_with, j] = -m / sd / A[0, centre_with]
        else:
            rms = np.sqrt(np.mean(col**2))
            M[j, j] = 1.0 / rms if rms > 0 else 1.0
    return A @ M, M


def standardize_columns(X, terms: list[ReTerm]):
    """Centred and scaled copies of X and every term's Z (the response untouched).

    For a GLMM the response cannot be shifted or scaled, but the linear predictor
    ``X beta + Z b`` is unchanged by ``X~ = X M``, ``Z~_t = Z_t N_t`` with ``beta = M beta~``
    and ``T_t = N_t T~_t N_t'``: the returned :class:`Scaling` has ``a = 0``, ``s = 1``.
    """
    const = np.flatnonzero(_constant_columns(X))
    c0 = int(const[0]) if len(const) else None
    Xs, M = _scale_matrix(X, c0)
    c = np.zeros(X.shape[1])
    if c0 is not None:
        c[c0] = 1.0 / X[0, c0]
    new_terms, Ns = [], []
    for t in terms:
        zc = np.flatnonzero(_constant_columns(t.Z))
        z0 = int(zc[0]) if len(zc) else None
        Zs, N = _scale_matrix(t.Z, z0, t.layout.blocks)
        new_terms.append(ReTerm(t.codes, Zs, t.n_levels, t.layout))
        Ns.append(N)
    return Xs, new_terms, Scaling(0.0, 1.0, M, c, tuple(Ns))


def standardize(y, X, terms: list[ReTerm]):
    """Centred and scaled copies of y, X and every term's Z, and the :class:`Scaling`."""
    const = np.flatnonzero(_constant_columns(X))
    c0 = int(const[0]) if len(const) else None
    Xs, M = _scale_matrix(X, c0)
    c = np.zeros(X.shape[1])
    if c0 is not None:
        c[c0] = 1.0 / X[0, c0]
        a = float(y.mean())
    else:
        a = 0.0
    r = y - a
    s = float(np.sqrt(np.mean(r**2)))
    s = s if s > 0 else 1.0
    ys = r / s
    new_terms, Ns = [], []
    for t in terms:
        zc = np.flatnonzero(_constant_columns(t.Z))
        z0 = int(zc[0]) if len(zc) else None
        Zs, N = _scale_matrix(t.Z, z0, t.layout.blocks)
        new_terms.append(ReTerm(t.codes, Zs, t.n_levels, t.layout))
        Ns.append(N)
    return ys, Xs, new_terms, Scaling(a, s, M, c, tuple(Ns))


# --- the whole chain ----------------------------------------------------------------------------


class LMMFit:
    """The engine's answer on the original scale (the public result wraps it)."""

    def __init__(self, problem: Problem, scaling: Scaling, order: list[int], opt: Optimum,
                 reml: bool):
        self.problem = problem  # standardised, terms sorted by levels
        self.scaling = scaling
        self.order = order  # order[i] = index in the design of sorted term i
        self.opt = opt
        self.reml = reml
        f = problem.factor(opt.theta)
        self._factor = f
        n, p = problem.n, problem.p
        sigma2_s = problem.sigma2(f)
        self.sigma2 = float(scaling.s**2 * sigma2_s)
        self.beta = scaling.beta(f.beta())
        vc_s = sigma2_s * np.linalg.inv(f.XtVinvX()) if p else np.zeros((0, 0))
        self.vcov = scaling.vcov(vc_s)
        self.deviance = scaling.deviance(f.deviance, n, p, reml)
        K = len(problem.terms)
        self.T = [None] * K  # in design order
        self.theta_terms = [None] * K
        for i, lam in enumerate(f.lams):
            N = scaling.N[i]
            Trel = N @ lam @ lam.T @ N.T  # T / sigma2 on the original scale
            d = self.order[i]
            self.T[d] = self.sigma2 * Trel
            self.theta_terms[d] = problem.terms[i].layout.theta_of_cov(Trel)
        self._modes = None
        self._condcov = None

    @property
    def converged(self) -> bool:
        return self.opt.convergence.ok

    @property
    def singular(self) -> bool:
        return self.opt.convergence.singular

    def modes(self) -> list[np.ndarray]:
        """BLUPs b_t (J_t, q_t) on the original scale, in design order."""
        if self._modes is None:
            u = self.problem.modes(self._factor)
            out = [None] * len(u)
            for i, ui in enumerate(u):
                b_s = ui @ self._factor.lams[i].T  # (J, q) standardised
                out[self.order[i]] = self.scaling.s * b_s @ self.scaling.N[i].T
            self._modes = out
        return self._modes

    def condcov(self) -> list[np.ndarray]:
        """Conditional covariances of the BLUPs (J_t, q_t, q_t), lme4's ``condVar``."""
        if self._condcov is None:
            S = self.problem.condcov(self._factor)
            sigma2_s = self.problem.sigma2(self._factor)
            out = [None] * len(S)
            for i, Si in enumerate(S):
                lam = self._factor.lams[i]
                G = self.scaling.N[i] @ lam
                out[self.order[i]] = self.scaling.s**2 * sigma2_s * np.einsum(
                    "ab,jbc,dc->jad", G, Si, G)
            self._condcov = out
        return self._condcov


def sort_terms(terms: list[ReTerm]) -> list[int]:
    """Order of the terms by decreasing number of levels (stable), as lme4 and MixedModels."""
    return sorted(range(len(terms)), key=lambda i: -terms[i].n_levels)


@single_blas_thread
def fit_lmm(y, X, terms: list[ReTerm], reml: bool, *, start=None, weights=None) -> LMMFit:
    """Standardise, build the deviance function, optimise, check, and map back."""
    order = sort_terms(terms)
    sorted_terms = [terms[i] for i in order]
    ys, Xs, sterms, scaling = standardize(np.asarray(y, float), np.asarray(X, float),
                                          sorted_terms)
    problem = Problem(ys, Xs, sterms, reml, weights)
    if start is None:
        start = np.concatenate([moment_start(ys, Xs, t, problem.moment_products(k))
                                for k, t in enumerate(sterms)])
    opt = optimize_theta(problem, start)
    return LMMFit(problem, scaling, order, opt, reml)


@single_blas_thread
def refit_lmm(fit: LMMFit, y, *, reml: bool | None = None) -> LMMFit:
    """The same design with another response (and/or criterion), warm-started at ``fit``."""
    y = np.asarray(y, dtype=float)
    sc = fit.scaling
    a = float(y.mean()) if np.any(sc.c) else 0.0
    s = float(np.sqrt(np.mean((y - a) ** 2)))
    s = s if s > 0 else 1.0
    problem = fit.problem.with_response((y - a) / s)
    if reml is not None and reml != fit.reml:
        problem.reml = reml
    scaling = Scaling(a, s, sc.M, sc.c, sc.N)
    opt = optimize_theta(problem, fit.opt.theta)
    return LMMFit(problem, scaling, fit.order, opt, problem.reml)
