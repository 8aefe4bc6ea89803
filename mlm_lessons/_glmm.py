"""The GLMM engine: PIRLS on the linear engine, Laplace and adaptive quadrature (private).

The model is ``g(E[y | b]) = offset + X beta + sum_t Z_t b_t`` with ``b_tg ~ N(0, T_t)``,
``T_t = Lam_t Lam_t'`` (no residual scale: binomial, Poisson and negative-binomial outcomes),
and ``b_t = Lam_t u_t`` in lme4's spherical parametrisation.

For given ``(theta, beta)``, penalised iteratively reweighted least squares (PIRLS, as lme4's
``pwrssUpdate``) finds the conditional modes ``u`` that maximise
``sum_i log f(y_i | u) - |u|^2 / 2``. Each iteration is the penalised weighted least-squares
step of the linear engine: :meth:`mlm_lessons._engine.Problem.reweight` with the working
response and the Fisher weights ``W``, then ``factor(theta)`` and ``modes``. Converged,

    Laplace deviance = -2 sum_i log f(y_i | u) + |u|^2 + log|Lam' Z' W Z Lam + I|

on the full log-likelihood scale (normalising constants included). With one scalar random
effect the integral over each group's effect is computed instead by adaptive Gauss-Hermite
quadrature centred at the mode and scaled by the curvature there (glmer's ``nAGQ > 1``).

The outer optimisation follows glmer: first over theta with beta inside PIRLS (glmer's
``nAGQ = 0``), then over ``(theta, beta)`` jointly (and ``log k`` of the negative binomial),
with the linear engine's optimizer path and convergence rule
(:func:`mlm_lessons._engine.minimize_deviance`). PIRLS is converged to ``|du| < 1e-11`` so
that the deviance is smooth enough for the finite-difference Hessian of the convergence check,
which also gives the standard errors (glmer's ``use.hessian = TRUE``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import special

from mlm_lessons import _engine

PIRLS_TOL = 1e-11  # max |change of u| (and of beta) at which PIRLS stops
PIRLS_MAXIT = 100
# L-BFGS-B stops when the deviance changes by less than 1e-13 relative (about 1e-10 units, the
# accuracy of PIRLS) or the projected gradient is below 5e-4 (the parameters are
# preconditioned to a curvature of about 2, so that is within ~3e-4 of the minimum and a
# deviance within ~1e-7 of it; a quarter of the convergence check's gradient tolerance). The
# Newton step of _newton_polish, with the check's central-difference gradient and Hessian,
# then removes the rest (the deviance ends within ~1e-12 of the minimum). The gradient of
# the search is by forward differences (_forward_gradient: half the evaluations of central
# ones) with a relative step of 3e-5: a truncation error of ~3e-5 at unit curvature and a
# rounding error of ~1e-9 / 3e-5 for the largest deviances of the suite, both far below the
# tolerance (a step of 1e-5 let the line search wander on the salamander fits). Over the
# glmer suite: deviances equal to 2e-12, SEs to 2e-5 relative, 25-40% fewer evaluations.
OUTER_OPTIONS = {"ftol": 1e-13, "gtol": 5e-4}
OUTER_FORWARD_STEP = 3e-5
# Step of the finite-difference gradient and Hessian of the convergence check (and of the
# standard errors): the fixed effects are preconditioned to unit curvature, so 1e-3 is a
# thousandth of a standard error, where the deviance moves by ~1e-6 against a PIRLS noise of
# ~1e-10; truncation error is of order delta^2.
HESSIAN_DELTA = 1e-3
# the first stage only finds a start: glmer's nAGQ = 0 criterion to a loose tolerance, with
# forward differences (step 1e-6: an error of ~1e-5 in the gradient from a deviance accurate
# to ~1e-11)
STAGE_ONE_OPTIONS = {"ftol": 1e-10, "gtol": 1e-5, "maxiter": 200, "jac": "2-point",
                     "finite_diff_rel_step": 1e-5}
LOG2PI = np.log(2 * np.pi)


class PirlsError(ArithmeticError):
    """PIRLS could not find the conditional modes (overflow, or no decrease)."""


# --- families -------------------------------------------------------------------------------


def _log1pexp(x):
    """``log(1 + exp(x))`` without overflow (three times faster than ``np.logaddexp``)."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


@dataclass(frozen=True)
class Family:
    """Response distribution with its canonical-style link (logit or log).

    ``y`` holds successes (binomial) or counts; ``trials`` the binomial totals (ones for 0/1
    outcomes). ``size`` is the negative-binomial ``k`` (variance ``mu + mu^2 / k``).
    """

    name: str  # "binomial" | "poisson" | "negative_binomial"
    size: float = np.inf

    @property
    def link(self) -> str:
        return "logit" if self.name == "binomial" else "log"

    def with_size(self, size: float) -> Family:
        return Family(self.name, float(size))

    def mean(self, eta):
        if self.name == "binomial":
            return special.expit(eta)
        return np.exp(eta)

    def constant(self, y, trials):
        """The part of log f that does not depend on the mean."""
        if self.name == "binomial":
            return special.gammaln(trials + 1) - special.gammaln(y + 1) - special.gammaln(
                trials - y + 1)
        if self.name == "poisson":
            return -special.gammaln(y + 1)
        k = self.size
        return special.gammaln(y + k) - special.gammaln(k) - special.gammaln(y + 1)

    def loglik(self, y, trials, eta, const):
        """Per-row log f(y | eta), normalising constants (``const``) included."""
        if self.name == "binomial":
            return const + y * eta - trials * _log1pexp(eta)
        if self.name == "poisson":
            return const + y * eta - np.exp(eta)
        k = self.size
        lk = np.log(k)
        log_k_mu = lk + _log1pexp(eta - lk)  # log(k + mu)
        return const + k * (np.log(k) - log_k_mu) + y * (eta - log_k_mu)

    def working(self, y, trials, eta):
        """Fisher weights ``W`` and working residuals ``(y - mu) / (d mu / d eta)``."""
        if self.name == "binomial":
            p = special.expit(eta)
            v = np.maximum(p * (1 - p), 1e-300)
            return trials * v, (y / trials - p) / v
        mu = np.exp(eta)
        mu_s = np.maximum(mu, 1e-300)
        if self.name == "poisson":
            return mu_s, (y - mu) / mu_s
        k = self.size
        return mu_s * k / (k + mu_s), (y - mu) / mu_s

    def variance(self, mu, trials):
        """Conditional variance of y given the random effects (for Pearson residuals)."""
        if self.name == "binomial":
            return trials * mu * (1 - mu)
        if self.name == "poisson":
            return mu
        return mu + mu**2 / self.size


# --- the deviance function ------------------------------------------------------------------


@dataclass
class PirlsState:
    u: list  # spherical modes per (sorted) term, (J, q)
    beta: np.ndarray  # standardised fixed effects used
    eta: np.ndarray
    pdev: float  # -2 sum log f + |u|^2
    factor: _engine.Factor
    problem: _engine.Problem
    W: np.ndarray
    iterations: int


class GlmmProblem:
    """The Laplace / quadrature deviance of one GLMM as a function of ``(theta, beta)``.

    ``X`` and the terms are the standardised ones (terms sorted by decreasing levels).
    """

    def __init__(self, family: Family, y, trials, X, terms, offset, n_agq: int = 1):
        self.family = family
        self.y = np.asarray(y, dtype=float)
        self.trials = np.asarray(trials, dtype=float)
        self.X = np.asarray(X, dtype=float)
        self.terms = list(terms)
        self.offset = np.zeros(len(self.y)) if offset is None else np.asarray(offset, float)
        self.n_agq = int(n_agq)
        n = len(self.y)
        ones = np.ones(n)
        self.u_problem = _engine.Problem(np.zeros(n), np.empty((n, 0)), self.terms, False,
                                         weights=ones)
        self.joint_problem = _engine.Problem(np.zeros(n), self.X, self.terms, False,
                                             weights=ones)
        self.n_theta = self.u_problem.n_theta
        self.p = self.X.shape[1]
        self.lower_theta = self.u_problem.lower
        self.const = family.constant(self.y, self.trials)
        self._u = [np.zeros((t.n_levels, t.q)) for t in self.terms]
        self._z_ones = [t.q == 1 and bool(np.all(t.Z[:, 0] == 1.0)) for t in self.terms]
        self.n_evals = 0
        if self.n_agq > 1:
            if len(self.terms) != 1 or self.terms[0].q != 1:
                raise ValueError("adaptive quadrature needs a single scalar random effect")
            self.nodes, self.weights = np.polynomial.hermite.hermgauss(self.n_agq)
            self._node_const = self.nodes**2 + np.log(self.weights)

    def with_family(self, family: Family) -> GlmmProblem:
        new = object.__new__(GlmmProblem)
        new.__dict__.update(self.__dict__)
        new.family = family
        new.const = family.constant(self.y, self.trials)
        new._u = [u.copy() for u in self._u]
        return new

    # --- pieces ------------------------------------------------------------------------------

    def split(self, theta):
        return self.u_problem.split(theta)

    def zb(self, lams, u):
        """``sum_t Z_t Lam_t u_t`` per row."""
        out = np.zeros(len(self.y))
        for t, lam, ut, ones in zip(self.terms, lams, u, self._z_ones):
            if t.q == 1:
                b = ut[:, 0] * lam[0, 0]
                out += b[t.codes] if ones else t.Z[:, 0] * b[t.codes]
            else:
                out += np.einsum("iq,iq->i", t.Z, (ut @ lam.T)[t.codes])
        return out

    def _pdev(self, eta, u):
        ll = self.family.loglik(self.y, self.trials, eta, self.const)
        return float(-2.0 * ll.sum() + sum(float(np.sum(x * x)) for x in u))

    # --- PIRLS -------------------------------------------------------------------------------

    def pirls(self, theta, beta=None) -> PirlsState:
        """Conditional modes at ``theta`` and ``beta``; ``beta=None`` puts beta in PIRLS too
        (the joint penalised mode of (beta, u): glmer's ``nAGQ = 0``)."""
        theta = np.asarray(theta, dtype=float)
        lams = self.split(theta)
        joint = beta is None
        base = self.joint_problem if joint else self.u_problem
        if joint:
            beta = getattr(self, "_beta_joint", None)
            if beta is None:
                beta = np.zeros(self.p)
        beta = np.asarray(beta, dtype=float)
        fixed = self.offset + (self.X @ beta if self.p else 0.0)
        u = [x.copy() for x in self._u]
        eta = fixed + self.zb(lams, u)
        with np.errstate(over="ignore", invalid="ignore"):
            pdev = self._pdev(eta, u)
        if not np.isfinite(pdev):
            u = [np.zeros_like(x) for x in u]
            eta = fixed + self.zb(lams, u)
            pdev = self._pdev(eta, u)
            if not np.isfinite(pdev):
                raise PirlsError("the deviance is not finite at the starting modes")
        f = prob = W = None
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for it in range(1, PIRLS_MAXIT + 1):
                W, resid = self.family.working(self.y, self.trials, eta)
                if joint:
                    z = eta - self.offset + resid
                else:
                    z = eta - fixed + resid
                if not np.isfinite(z.sum() + W.sum()):  # finite sums: all entries finite
                    raise PirlsError("non-finite working response")
                prob = base.reweight(z, W)
                f = prob.factor(theta)
                u_new = prob.modes(f)
                beta_new = f.beta() if joint else beta
                step = 1.0
                while True:
                    if step == 1.0:
                        u_try, beta_try = u_new, beta_new
                    else:
                        u_try = [a + step * (b - a) for a, b in zip(u, u_new)]
                        beta_try = beta + step * (beta_new - beta) if joint else beta
                    fixed_try = self.offset + (self.X @ beta_try if self.p else 0.0) if joint \
                        else fixed
                    eta_try = fixed_try + self.zb(lams, u_try)
                    pdev_try = self._pdev(eta_try, u_try)
                    if np.isfinite(pdev_try) and pdev_try <= pdev + 1e-10 * (1.0 + abs(pdev)):
                        break
                    step /= 2.0
                    if step < 1e-10:
                        raise PirlsError("PIRLS step halving failed")
                change = max((float(np.max(np.abs(a - b))) if a.size else 0.0)
                             for a, b in zip(u, u_try)) if u else 0.0
                if joint and self.p:
                    change = max(change, float(np.max(np.abs(beta_try - beta))))
                u, beta, eta, pdev = u_try, beta_try, eta_try, pdev_try
                if joint:
                    fixed = fixed_try
                if change < PIRLS_TOL:
                    break
            else:
                raise PirlsError("PIRLS did not converge")
        self._u = [x.copy() for x in u]
        if joint:
            self._beta_joint = beta.copy()
        return PirlsState(u, beta, eta, pdev, f, prob, W, it)

    # --- deviances ---------------------------------------------------------------------------

    def deviance_joint(self, theta) -> float:
        """glmer's ``nAGQ = 0`` criterion at theta (beta at the joint mode): the start."""
        try:
            s = self.pirls(theta, None)
        except (PirlsError, np.linalg.LinAlgError, ValueError, FloatingPointError):
            return np.inf
        return s.pdev + s.factor.logdet

    def deviance(self, params) -> float:
        """-2 log L (Laplace, or adaptive quadrature) at ``params = (theta, beta[, log k])``."""
        self.n_evals += 1
        params = np.asarray(params, dtype=float)
        prob = self
        if self.family.name == "negative_binomial":
            size = float(np.exp(params[-1]))
            if not np.isfinite(size) or size <= 0:
                return np.inf
            prob = self.with_family(self.family.with_size(size))
            params = params[:-1]
        theta, beta = params[: self.n_theta], params[self.n_theta :]
        try:
            s = prob.pirls(theta, beta)
            if prob is not self:
                self._u = prob._u
            if self.n_agq > 1:
                dev = prob._agq(theta, beta, s)
            else:
                dev = s.pdev + s.factor.logdet
        except (PirlsError, np.linalg.LinAlgError, ValueError, FloatingPointError):
            return np.inf
        return float(dev) if np.isfinite(dev) else np.inf

    def _agq(self, theta, beta, s: PirlsState) -> float:
        """-2 sum_j log int prod_i f(y_ij | b_j) phi(b_j) db_j by adaptive Gauss-Hermite."""
        t = self.terms[0]
        z = t.Z[:, 0]
        th = float(theta[0])
        J = t.n_levels
        u = s.u[0][:, 0]
        fixed = self.offset + (self.X @ beta if self.p else 0.0)
        curv = th * th * np.bincount(t.codes, s.W * z * z, minlength=J) + 1.0
        sd = 1.0 / np.sqrt(curv)
        K = self.n_agq
        nodes = u[None, :] + np.sqrt(2.0) * sd[None, :] * self.nodes[:, None]  # (K, J)
        eta = fixed[None, :] + th * z[None, :] * nodes[:, t.codes]  # (K, n)
        with np.errstate(over="ignore", invalid="ignore"):
            ll = self.family.loglik(self.y[None, :], self.trials[None, :], eta,
                                    self.const[None, :])
        idx = (np.arange(K)[:, None] * J + t.codes[None, :]).ravel()
        g = np.bincount(idx, ll.ravel(), minlength=K * J).reshape(K, J)
        terms = g - 0.5 * nodes**2 + self._node_const[:, None]
        top = terms.max(axis=0)  # logsumexp over the nodes (scipy's costs more than the sum)
        logint = (top + np.log(np.exp(terms - top).sum(axis=0)) + np.log(np.sqrt(2.0) * sd)
                  - 0.5 * LOG2PI)
        return float(-2.0 * logint.sum())

    def lower(self) -> np.ndarray:
        extra = 1 if self.family.name == "negative_binomial" else 0
        return np.concatenate([self.lower_theta, np.full(self.p + extra, -np.inf)])


# --- the whole chain ------------------------------------------------------------------------


def _start_size(y, mu) -> float:
    """Moment estimate of the negative-binomial k from Poisson fitted means."""
    alpha = np.sum((y - mu) ** 2 - mu) / max(np.sum(mu**2), 1e-12)
    return float(1.0 / np.clip(alpha, 1e-2, 1e2))


class GLMMFitEngine:
    """The engine's answer on the original scale (the public result wraps it)."""

    def __init__(self, gp: GlmmProblem, scaling: _engine.Scaling, order, opt: _engine.Optimum,
                 transform=None):
        self.gp = gp
        self.scaling = scaling
        self.order = order
        self.opt = opt
        x = opt.theta
        k = gp.n_theta
        p = gp.p
        family = gp.family
        if family.name == "negative_binomial":
            family = family.with_size(float(np.exp(x[-1])))
            gp = gp.with_family(family)
            self.gp = gp
        self.family = family
        self.size = family.size
        theta_s, beta_s = x[:k], x[k : k + p]
        self.theta_s, self.beta_s = theta_s, beta_s
        s = gp.pirls(theta_s, beta_s)
        self.state = s
        self.deviance = float(opt.deviance)
        self.beta = scaling.beta(beta_s) if p else np.zeros(0)
        self.eta = s.eta
        # covariance of beta: the (theta, beta) block of 2 H^-1 (glmer's use.hessian = TRUE),
        # with theta at a bound (held fixed there) and log k (conditional on k, as glmer.nb)
        # left out of the Hessian.
        conv = opt.convergence
        H = conv.hessian  # in the optimizer's coordinates: x = x0 + transform (w - w0)
        Jt = np.eye(len(x)) if transform is None else transform
        free = np.ones(len(x), dtype=bool)
        free[:k] = ~((gp.lower_theta == 0) & (theta_s < _engine.SINGULAR_TOL))
        if family.name == "negative_binomial":
            free[-1] = False
        self.vcov_s = np.full((p, p), np.nan)
        self.hessian_ok = False
        if p:
            Hf = H[np.ix_(free, free)]
            try:
                Jf = Jt[np.ix_(free, free)]
                inv = Jf @ (2.0 * np.linalg.inv(Hf)) @ Jf.T
                blk = inv[-p:, -p:]
                if np.all(np.isfinite(blk)) and np.all(np.diag(blk) > 0):
                    self.vcov_s = (blk + blk.T) / 2
                    self.hessian_ok = True
            except np.linalg.LinAlgError:
                pass
            if not self.hessian_ok:  # lme4's fallback: the R_X-based covariance
                sj = gp.joint_problem.reweight(np.zeros(len(gp.y)), s.W)
                fj = sj.factor(theta_s)
                self.vcov_s = np.linalg.inv(fj.XtVinvX())
        self.vcov = scaling.vcov(self.vcov_s) if p else np.zeros((0, 0))
        lams = gp.split(theta_s)
        self.lams = lams
        K = len(gp.terms)
        self.T = [None] * K
        self.theta_terms = [None] * K
        for i, lam in enumerate(lams):
            N = scaling.N[i]
            T = N @ lam @ lam.T @ N.T
            d = order[i]
            self.T[d] = T
            self.theta_terms[d] = gp.terms[i].layout.theta_of_cov(T)
        self._modes = None
        self._condcov = None

    @property
    def converged(self) -> bool:
        return self.opt.convergence.ok

    @property
    def singular(self) -> bool:
        return self.opt.convergence.singular

    def modes(self):
        """Conditional modes b_t (J_t, q_t) on the original scale, in design order."""
        if self._modes is None:
            out = [None] * len(self.lams)
            for i, ui in enumerate(self.state.u):
                out[self.order[i]] = ui @ self.lams[i].T @ self.scaling.N[i].T
            self._modes = out
        return self._modes

    def condcov(self):
        """Conditional covariances of the modes (J_t, q_t, q_t), lme4's ``condVar``."""
        if self._condcov is None:
            S = self.state.problem.condcov(self.state.factor)
            out = [None] * len(S)
            for i, Si in enumerate(S):
                G = self.scaling.N[i] @ self.lams[i]
                out[self.order[i]] = np.einsum("ab,jbc,dc->jad", G, Si, G)
            self._condcov = out
        return self._condcov


def fit_glmm_engine(family: Family, y, trials, X, terms, offset, *, n_agq: int = 1,
                    start=None) -> GLMMFitEngine:
    """Standardise, build the deviance function, optimise in two stages, check, map back.

    ``start`` (standardised ``(theta, beta[, log k])``, from an earlier fit of the same
    design) skips the first stage.
    """
    order = _engine.sort_terms(terms)
    sorted_terms = [terms[i] for i in order]
    Xs, sterms, scaling = _engine.standardize_columns(np.asarray(X, float), sorted_terms)
    nb = family.name == "negative_binomial"
    fam0 = Family("poisson") if nb else family
    gp = GlmmProblem(fam0, y, trials, Xs, sterms, offset, n_agq=n_agq)
    if start is None:
        theta1 = _stage_one(gp)
        s1 = gp.pirls(theta1, None)
        x0 = np.concatenate([theta1, s1.beta])
        if nb:
            size0 = _start_size(gp.y, np.exp(s1.eta))
            gp = gp.with_family(family.with_size(size0))
            theta1 = _stage_one(gp, theta1)
            s1 = gp.pirls(theta1, None)
            x0 = np.concatenate([theta1, s1.beta, [np.log(size0)]])
    else:
        x0 = np.asarray(start, dtype=float)
        if nb:
            gp = gp.with_family(family.with_size(float(np.exp(x0[-1]))))
        s1 = gp.pirls(x0[: gp.n_theta], None)
    # Precondition: beta = beta0 + G gamma with G G' = (2 X'V^-1 X)^-1 at the start (the
    # deviance is then about |gamma|^2 near the optimum in the fixed effects), so that the
    # quasi-Newton steps and the convergence check work on a well-conditioned problem.
    k, p = gp.n_theta, gp.p
    J = np.eye(len(x0))
    if p:
        L = s1.factor.LF[:p, :p]
        try:
            G = np.linalg.solve(L.T, np.eye(p)) / np.sqrt(2.0)
            if np.all(np.isfinite(G)):
                J[k : k + p, k : k + p] = G
        except np.linalg.LinAlgError:
            pass
    lower = gp.lower()
    # theta: scaled (not shifted, so that the bounds at 0 stay there) by the curvature of the
    # deviance along each element at the start, from a second difference
    f0 = gp.deviance(x0)
    scale = np.ones(k)
    for i in range(k):
        h = 1e-2 * max(abs(x0[i]), 0.1)
        e = np.zeros(len(x0))
        e[i] = h
        lo = x0 - e
        if lower[i] == 0 and lo[i] < 0:
            lo = x0
            hi2 = x0 + 2 * e
            d2 = (gp.deviance(hi2) - 2 * gp.deviance(x0 + e) + f0) / h**2
        else:
            d2 = (gp.deviance(x0 + e) - 2 * f0 + gp.deviance(lo)) / h**2
        # the size of the curvature sets the scale, whatever its sign (at a bound, where the
        # deviance is even in the element, it is often negative: the optimum is inside)
        if np.isfinite(d2) and abs(d2) > 1e-8:
            scale[i] = 1.0 / np.sqrt(abs(d2) / 2.0)
    J[:k, :k] = np.diag(scale)
    _w0 = np.zeros(len(x0))
    _w0[:k] = x0[:k] / scale

    seen = {_w0.tobytes(): f0}  # the search starts where the scaling was measured

    def fun(w):
        key = np.asarray(w, dtype=float).tobytes()
        if key in seen:
            return seen[key]
        seen.clear()
        seen[key] = value = gp.deviance(x0 + J @ (w - _w0))
        return value

    opt_w = _engine.minimize_deviance(fun, _w0, lower, counter=lambda: gp.n_evals,
                                      options=OUTER_OPTIONS, delta=HESSIAN_DELTA,
                                      value_and_gradient=_forward_gradient(fun))
    opt_w = _newton_polish(fun, opt_w, lower)
    x = x0 + J @ (opt_w.theta - _w0)
    opt = dataclasses.replace(opt_w, theta=x)
    return GLMMFitEngine(gp, scaling, order, opt, transform=J)


def _forward_gradient(fun):
    """``w -> (fun(w), gradient)`` by forward differences for the outer L-BFGS-B search.

    Half the evaluations of central differences. The step, ``OUTER_FORWARD_STEP`` times
    ``max(1, |w_i|)``, always moves away from the lower bounds (no upper ones), so it needs
    no adjustment there.
    """

    def vg(w):
        w = np.asarray(w, dtype=float)
        f0 = fun(w)
        g = np.empty(len(w))
        for i in range(len(w)):
            z = w.copy()
            z[i] += OUTER_FORWARD_STEP * max(1.0, abs(w[i]))
            g[i] = (fun(z) - f0) / (z[i] - w[i])
        return f0, g

    return vg


def _stage_one(gp: GlmmProblem, start=None) -> np.ndarray:
    """theta minimising glmer's ``nAGQ = 0`` criterion (beta inside PIRLS)."""
    x0 = gp.u_problem.identity() if start is None else np.asarray(start, float)
    # with the linear engine's boundary test: at a theta bounded by 0 at 0 the criterion is
    # even in it, so a quasi-Newton search that reaches the bound can stop at a saddle there
    x, fx, _ = _engine.lbfgs_off_boundary(gp.deviance_joint, x0, gp.lower_theta,
                                          STAGE_ONE_OPTIONS)
    if not np.isfinite(fx):
        x = x0
    return x


def _newton_polish(fun, opt: _engine.Optimum, lower) -> _engine.Optimum:
    """One Newton step from the optimum with the convergence check's gradient and Hessian.

    The quasi-Newton search stops at a projected gradient of 1e-4; the check has just
    computed the gradient and Hessian there, so a Newton step (over the parameters away from
    their bounds) removes the rest of the error at the cost of one evaluation. Kept only if
    it lowers the deviance and stays within the bounds.
    """
    conv = opt.convergence
    if conv.messages or not np.all(np.isfinite(conv.hessian)):
        return opt
    x = opt.theta
    free = ~((np.asarray(lower) == 0) & (x < _engine.SINGULAR_TOL))
    H = conv.hessian[np.ix_(free, free)]
    g = conv.gradient[free]
    try:
        step = np.linalg.solve(H, g)
    except np.linalg.LinAlgError:
        return opt
    z = x.copy()
    z[free] -= step
    if np.any(z[np.asarray(lower) == 0] < 0):
        return opt
    fz = fun(z)
    if not fz < opt.deviance:
        return opt
    return dataclasses.replace(opt, theta=z, deviance=float(fz))
