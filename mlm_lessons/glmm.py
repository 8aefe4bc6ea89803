"""Binary outcomes: random-intercept logistic regression and population-averaged GEE.

:func:`fit_logistic_mixed` maximises the marginal likelihood of a random-intercept logistic
model by adaptive Gauss-Hermite quadrature (``n_agq`` nodes per group; ``n_agq=1`` is the
Laplace approximation), as lme4's ``glmer(..., nAGQ=)`` does. :func:`fit_gee` wraps
statsmodels' generalised estimating equations for the population-averaged model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special

from mlm_lessons._checks import BoundaryWarning, ConvergenceWarning
from mlm_lessons._design import Design, build_design, design_from_arguments
from mlm_lessons._display import ResultDisplay
from mlm_lessons._threads import single_blas_thread
from mlm_lessons.models import _aic_bic, _fixed_table

__all__ = ["LogisticMixedFit", "fit_logistic_mixed", "fit_gee", "attenuation_factor"]

_LATENT_VAR = np.pi**2 / 3  # variance of the standard logistic distribution


def attenuation_factor(tau2: float) -> float:
    r"""Approximate ratio of population-averaged to subject-specific logistic coefficients.

    ``1 / sqrt(1 + c^2 tau2)`` with ``c = 16 sqrt(3) / (15 pi)`` (Zeger, Liang and Albert
    1988): the marginal (GEE) coefficient is about the conditional (mixed-model) one times
    this factor.

    Examples
    --------
    >>> round(attenuation_factor(0.0), 3), round(attenuation_factor(1.0), 3)
    (1.0, 0.862)
    """
    if not np.isfinite(tau2) or tau2 < 0:
        raise ValueError(f"tau2 must be a non-negative variance, not {tau2!r}")
    c = 16 * np.sqrt(3) / (15 * np.pi)
    return float(1 / np.sqrt(1 + c**2 * tau2))


class _Marginal:
    """Marginal log-likelihood of a random-intercept logistic model by adaptive quadrature."""

    def __init__(self, design: Design, n_agq: int):
        self.y = design.y
        self.X = design.X
        self.codes = design.terms[0].codes
        self.J = design.terms[0].n_levels
        self.nodes, self.weights = np.polynomial.hermite.hermgauss(n_agq)
        self.b = np.zeros(self.J)  # warm start of the conditional modes

    def _sum(self, v):
        return np.bincount(self.codes, v, minlength=self.J)

    def modes(self, eta, tau):
        """Conditional modes of the random intercepts and the curvature there."""
        b = self.b.copy()
        for _ in range(50):
            p = special.expit(eta + b[self.codes])
            grad = self._sum(self.y - p) - b / tau**2
            hess = -self._sum(p * (1 - p)) - 1 / tau**2
            step = np.clip(-grad / hess, -5, 5)
            b = b + step
            if np.max(np.abs(step)) < 1e-10:
                break
        p = special.expit(eta + b[self.codes])
        hess = -self._sum(p * (1 - p)) - 1 / tau**2
        self.b = b
        return b, hess

    def loglik(self, params):
        tau, beta = params[0], params[1:]
        eta = self.X @ beta
        if tau < 1e-6:  # the limit tau -> 0 is the ordinary logistic regression
            return float(np.sum(self.y * eta - np.logaddexp(0, eta)))
        b, hess = self.modes(eta, tau)
        scale = np.sqrt(2.0) / np.sqrt(-hess)
        K = len(self.nodes)
        bk = b[None, :] + scale[None, :] * self.nodes[:, None]  # (K, J) node positions
        etak = eta[None, :] + bk[:, self.codes]  # (K, N)
        ll = self.y[None, :] * etak - np.logaddexp(0, etak)
        offsets = (np.arange(K)[:, None] * self.J + self.codes[None, :]).ravel()
        g = np.bincount(offsets, ll.ravel(), minlength=K * self.J).reshape(K, self.J)
        g += -0.5 * (bk / tau) ** 2 - np.log(tau) - 0.5 * np.log(2 * np.pi)
        terms = np.log(self.weights)[:, None] + (self.nodes**2)[:, None] + g
        return float(np.sum(np.log(scale) + special.logsumexp(terms, axis=0)))


@dataclass(frozen=True)
class LogisticMixedFit(ResultDisplay):
    """A fitted random-intercept logistic regression (immutable).

    Attributes
    ----------
    formula, group : str
    n_agq : int
        Quadrature nodes per group (1 = Laplace approximation).
    fixed : pandas.DataFrame
        Subject-specific (conditional) coefficients on the log-odds scale: ``term,
        estimate, std_error, statistic, p_value, ci_low, ci_high``; SEs from the Hessian of
        the marginal log-likelihood, as lme4 reports them.
    tau2 : float
        Variance of the random intercepts (log-odds scale).
    loglik, aic, bic : float
    n_obs, n_groups : int
    converged : bool
    """

    formula: str
    group: str
    n_agq: int
    fixed: pd.DataFrame
    tau2: float
    loglik: float
    aic: float
    bic: float
    n_obs: int
    n_groups: int
    converged: bool
    _design: Design = field(repr=False, compare=False)
    _modes: np.ndarray = field(repr=False, compare=False)
    _mode_sd: np.ndarray = field(repr=False, compare=False)
    _data: pd.DataFrame = field(repr=False, compare=False)

    @property
    def params(self) -> pd.Series:
        return self.fixed.set_index("term")["estimate"]

    def icc_latent(self) -> float:
        """ICC on the latent scale: ``tau2 / (tau2 + pi^2 / 3)``."""
        return self.tau2 / (self.tau2 + _LATENT_VAR)

    def random_effects(self) -> pd.DataFrame:
        """Conditional modes of the random intercepts: ``group, estimate, std_error``."""
        return pd.DataFrame(
            {"group": self._design.terms[0].level_labels(), "estimate": self._modes,
             "std_error": self._mode_sd}
        )

    def predict(self, data: pd.DataFrame | None = None, *, conditional: bool = True) -> pd.Series:
        """Predicted probabilities; ``conditional=False`` sets the random intercept to 0."""
        data = self._data if data is None else data
        X = self._design.x_builder.build(data)
        eta = X @ self.params.to_numpy()
        if conditional:
            pos = self._design.terms[0].codes_for(data)
            known = pos >= 0
            eta[known] += self._modes[pos[known]]
        return pd.Series(special.expit(eta), index=data.index, name="probability")


def cross_difference(f, x: np.ndarray, steps: np.ndarray, i: int, j: int) -> float:
    """Four-point central difference of d2f / dx_i dx_j."""
    ei = np.zeros(len(x))
    ej = np.zeros(len(x))
    ei[i], ej[j] = steps[i], steps[j]
    return (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
        4 * steps[i] * steps[j]
    )


def _hessian(f, x, h=1e-4):
    k = len(x)
    H = np.zeros((k, k))
    steps = h * np.maximum(1.0, np.abs(x))
    for i in range(k):
        for j in range(i, k):
            H[i, j] = H[j, i] = cross_difference(f, x, steps, i, j)
    return H


@single_blas_thread
def fit_logistic_mixed(
    data: pd.DataFrame,
    formula: str,
    group: str,
    *,
    n_agq: int = 10,
    conf_level: float = 0.95,
) -> LogisticMixedFit:
    r"""Random-intercept logistic regression by adaptive Gauss-Hermite quadrature.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format. The outcome must be coded 0/1.
    formula : str
        Fixed part, ``"y ~ x1 + x2"``.
    group : str
        Level-2 identifier; each group gets a random intercept.
    n_agq : int, default 10
        Quadrature nodes per group; 1 is the Laplace approximation. More nodes are more
        accurate and slower.
    conf_level : float, default 0.95

    Returns
    -------
    LogisticMixedFit

    Raises
    ------
    KeyError, TypeError, ValueError
        As :func:`mlm_lessons.fit_mixed`; ``ValueError`` also when the outcome is not 0/1.

    Notes
    -----
    The model is :math:`\operatorname{logit} P(y_{ij} = 1 \mid u_j) = x_{ij}'\gamma + u_j`,
    :math:`u_j \sim N(0, \tau^2)`. Each group's integral over :math:`u_j` is computed around
    its conditional mode with ``n_agq`` Gauss-Hermite nodes scaled by the curvature there
    (adaptive quadrature, Pinheiro and Bates 1995); the marginal log-likelihood is
    maximised over :math:`(\tau, \gamma)` with L-BFGS-B from the ordinary logistic fit.
    Validated against lme4's ``glmer`` with ``nAGQ = 1`` and ``nAGQ = 10`` on the
    Contraception data (``tests/test_glmm.py``).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> cc = mlm.load_dataset("contraception")
    >>> fit = mlm.fit_logistic_mixed(cc, "use ~ urban", "district")
    >>> round(fit.tau2, 2), round(float(fit.params["urban"]), 2)
    (0.19, 0.65)
    """
    if not isinstance(n_agq, int | np.integer) or n_agq < 1:
        raise ValueError(f"n_agq must be a positive integer, not {n_agq!r}")
    design = build_design(data, design_from_arguments(formula, group, None, False))
    if not np.all(np.isin(design.y, (0.0, 1.0))):
        raise ValueError(
            f"outcome {design.outcome!r} must be coded 0/1 for a logistic model; found "
            f"values such as {sorted(set(np.unique(design.y)) - {0.0, 1.0})[:3]}"
        )
    marginal = _Marginal(design, int(n_agq))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import statsmodels.api as sm

        beta0 = sm.GLM(design.y, design.X, family=sm.families.Binomial()).fit().params
    x0 = np.concatenate([[0.5], beta0])
    bounds = [(0.0, None)] + [(None, None)] * len(beta0)
    res = optimize.minimize(
        lambda p: -marginal.loglik(p), x0, method="L-BFGS-B", bounds=bounds, jac="3-point",
        options={"ftol": 1e-14, "gtol": 1e-8, "maxiter": 1000},
    )
    params = res.x
    loglik = -res.fun
    H = _hessian(lambda p: -marginal.loglik(p), params)
    at_boundary = params[0] < 1e-4
    free = slice(1, None) if at_boundary else slice(None)
    cov_full = np.linalg.inv(H[free, free])
    cov = cov_full[-len(beta0):, -len(beta0):]
    beta = params[1:]
    tau = params[0]
    if tau >= 1e-6:
        modes, hess = marginal.modes(design.X @ beta, tau)
        mode_sd = 1 / np.sqrt(-hess)
    else:
        modes = np.zeros(design.terms[0].n_levels)
        mode_sd = np.zeros(design.terms[0].n_levels)
    k = len(beta) + 1
    aic, bic = _aic_bic(loglik, k, len(design.y))
    grad = optimize.approx_fprime(params, lambda p: -marginal.loglik(p), 1e-6)
    active = np.r_[at_boundary, np.zeros(len(beta), dtype=bool)]
    converged = bool(res.success or np.max(np.abs(grad[~active])) < 1e-2)
    fit = LogisticMixedFit(
        formula=formula,
        group=group,
        n_agq=int(n_agq),
        fixed=_fixed_table(design.fixed_names, beta, cov, conf_level),
        tau2=float(tau**2),
        loglik=float(loglik),
        aic=aic,
        bic=bic,
        n_obs=len(design.y),
        n_groups=design.terms[0].n_levels,
        converged=converged,
        _design=design,
        _modes=modes,
        _mode_sd=mode_sd,
        _data=data,
    )
    if at_boundary:
        warnings.warn(
            "boundary fit: the random-intercept variance is estimated at zero; an ordinary "
            "logistic regression describes these data as well",
            BoundaryWarning,
            stacklevel=2,
        )
    if not converged:
        warnings.warn(
            "the optimizer did not converge; rescale predictors (e.g. age in decades) or "
            "simplify the model",
            ConvergenceWarning,
            stacklevel=2,
        )
    return fit


def fit_gee(
    data: pd.DataFrame,
    formula: str,
    group: str,
    *,
    correlation: str = "exchangeable",
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Population-averaged logistic regression by GEE (statsmodels), as a tidy table.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format; the outcome coded 0/1.
    formula, group : str
    correlation : {"exchangeable", "independence"}
        Working correlation within groups.

    Returns
    -------
    pandas.DataFrame
        ``term, estimate, std_error, statistic, p_value, ci_low, ci_high`` with robust
        (sandwich) standard errors; the estimated working correlation is in
        ``result.attrs["working_correlation"]``.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> gee = mlm.fit_gee(mlm.load_dataset("contraception"), "use ~ urban", "district")
    >>> gee["term"].tolist()
    ['Intercept', 'urban']
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    structures = {"exchangeable": sm.cov_struct.Exchangeable, "independence":
                  sm.cov_struct.Independence}
    if correlation not in structures:
        raise ValueError(f"correlation must be one of {list(structures)}, not {correlation!r}")
    design = build_design(data, design_from_arguments(formula, group, None, False))
    if not np.all(np.isin(design.y, (0.0, 1.0))):
        raise ValueError(f"outcome {design.outcome!r} must be coded 0/1 for a logistic GEE")
    model = smf.gee(formula, groups=data[group], data=data, family=sm.families.Binomial(),
                    cov_struct=structures[correlation]())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit()
    table = _fixed_table(list(res.params.index), res.params.to_numpy(),
                         res.cov_params().to_numpy(), conf_level)
    dep = res.model.cov_struct.dep_params
    table.attrs["working_correlation"] = float(dep) if np.ndim(dep) == 0 else 0.0
    return table
