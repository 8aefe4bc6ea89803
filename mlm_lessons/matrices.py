r"""The linear mixed model in matrix form, computed the textbook way.

For group :math:`j` the model is :math:`y_j = X_j\gamma + Z_j u_j + \varepsilon_j` with
:math:`u_j \sim N(0, T)` and :math:`\varepsilon_j \sim N(0, \sigma^2 I)`, so that
:math:`y_j \sim N(X_j\gamma, V_j)` with the marginal covariance

.. math:: V_j = Z_j T Z_j' + \sigma^2 I_{n_j}.

The functions here build :math:`y_j`, :math:`X_j`, :math:`Z_j`, :math:`T` and :math:`V_j`
as labelled data frames and evaluate the generalised least squares (GLS) estimator and the
(restricted) log-likelihood by dense matrix algebra, group by group. This is deliberately
independent of the fitting engine of :mod:`mlm_lessons.models`, which profiles the
likelihood through small Cholesky factors (lme4's method): agreement between the two is a
check on both, and the dense form makes it easy to evaluate the likelihood at any values of
the variance components (:func:`loglik_at`).

Notation: :math:`Z` is the *random-effects* design, as in lme4, statsmodels and Stata. The
workshop's slides write the level-2 design of the coefficients as :math:`Z_j`
(:math:`\beta_j = Z_j\gamma + u_j`); in that notation the fixed design here is the product
:math:`X_j Z_j` and the random-effects design is :math:`X_j`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg

from mlm_lessons._checks import (
    _plain,
    check_fit,
    check_method,
    check_real,
    check_real_array,
    check_single_factor,
)
from mlm_lessons._design import build_design, design_from_arguments
from mlm_lessons._display import ResultDisplay
from mlm_lessons.models import MixedFit

__all__ = [
    "GLSResult",
    "design_matrices",
    "gls_fixed_effects",
    "loglik_at",
    "marginal_loglik",
    "model_matrices",
]

_LOG2PI = np.log(2 * np.pi)


# --- input checks --------------------------------------------------------------------------


def _check_fit(fit: object) -> MixedFit:
    fit = check_fit(fit, hint="(from mlm_lessons.fit_mixed or a fit_* stage function)")
    check_single_factor(fit, "the dense matrix form")
    return fit


def _comparable(labels: pd.Series, group: object) -> bool:
    """Whether ``group`` has the type of the labels (so that 1224 does not match '1224')."""
    num_labels = pd.api.types.is_numeric_dtype(labels.dtype)
    num_group = isinstance(group, int | float | np.integer | np.floating) and not isinstance(
        group, bool)
    return num_labels == num_group


def _check_method(method: str | None, fit: MixedFit) -> str:
    return check_method(fit.method if method is None else method)


def _check_tau(tau: object, fit: MixedFit) -> np.ndarray:
    """T as a q x q symmetric positive semi-definite array in the fit's term order."""
    terms = list(fit.tau.index)
    q = len(terms)
    if isinstance(tau, pd.DataFrame):
        if set(tau.index) != set(terms) or set(tau.columns) != set(terms):
            raise ValueError(
                f"tau must be labelled by the fit's random-effect terms {terms}, "
                f"got rows {list(tau.index)} and columns {list(tau.columns)}"
            )
        T = check_real_array(tau.loc[terms, terms].to_numpy(dtype=object), "tau",
                             what="a covariance matrix (finite numbers)")
    else:
        if isinstance(tau, str | bytes | bool | np.bool_) or tau is None:
            raise TypeError(
                f"tau must be a number, an array or a DataFrame, not {type(tau).__name__} "
                f"{tau!r}"
            )
        try:
            T = check_real_array(tau, "tau", what="a covariance matrix (finite numbers)")
        except TypeError:
            raise TypeError(
                f"tau must be a number, an array or a DataFrame of numbers, not "
                f"{type(tau).__name__}"
            ) from None
        T = T.reshape(1, 1) if T.ndim == 0 else T
    if T.shape != (q, q):
        raise ValueError(
            f"tau must be {q} x {q} (random-effect terms {terms}), not {'x'.join(map(str, T.shape))}"
        )
    if not np.all(np.isfinite(T)):
        raise ValueError("tau has non-finite entries")
    if not np.allclose(T, T.T, rtol=1e-10, atol=1e-12):
        raise ValueError("tau must be symmetric (tau01 == tau10)")
    if np.linalg.eigvalsh(T).min() < -1e-10 * max(1.0, np.abs(T).max()):
        raise ValueError(
            "tau is not positive semi-definite: a variance is negative or a covariance "
            "exceeds the product of the standard deviations"
        )
    return (T + T.T) / 2


def _check_sigma2(sigma2: object) -> float:
    return check_real(sigma2, "sigma2", minimum=0.0, strict_min=True,
                      what="a positive variance (a number > 0)")


# --- design matrices -----------------------------------------------------------------------


def design_matrices(
    data: pd.DataFrame, formula: str, group: str, *, re_formula: str | None = None
) -> dict[str, pd.DataFrame]:
    r"""The stacked design matrices ``y``, ``X`` and ``Z`` of a two-level model.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per level-1 unit. Not modified.
    formula : str
        Fixed part, ``"y ~ x + z + x:z"`` (as in :func:`mlm_lessons.fit_mixed`).
    group : str
        Column that identifies the level-2 units.
    re_formula : str, optional
        Random part: ``None`` or ``"1"`` for a random intercept, ``"x"`` for a random
        intercept and slope of ``x``.

    Returns
    -------
    dict of pandas.DataFrame
        ``"y"`` (one column), ``"X"`` (fixed effects, one column per gamma) and ``"Z"``,
        the block-diagonal random-effects design of all groups (one column per group and
        random-effect term, labelled ``"group:term"``), all indexed like ``data``.

    Raises
    ------
    KeyError
        If a column named in a formula or ``group`` is not in ``data``.
    TypeError
        If the outcome is not numeric.
    ValueError
        If a used column has missing values or there are fewer than two groups.

    Notes
    -----
    Stacking the groups, :math:`y = X\gamma + Zu + \varepsilon` with
    :math:`Z = \operatorname{diag}(Z_1, \dots, Z_J)` and :math:`u = (u_1', \dots, u_J')'`.
    This :math:`Z` is lme4's (Bates et al. 2015); statsmodels' ``exog_re`` holds only the
    :math:`n \times q` row-wise values, i.e. the :math:`Z_j` stacked without the zero
    blocks.

    References
    ----------
    Bates, D., Maechler, M., Bolker, B. and Walker, S. (2015). Fitting linear mixed-effects
    models using lme4. *Journal of Statistical Software* 67(1).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": ["a", "a", "b", "b"], "x": [0.0, 1.0, 0.0, 2.0],
    ...                    "y": [1.0, 2.0, 2.0, 5.0]})
    >>> m = design_matrices(df, "y ~ x", "g", re_formula="x")
    >>> m["X"]
       Intercept    x
    0        1.0  0.0
    1        1.0  1.0
    2        1.0  0.0
    3        1.0  2.0
    >>> m["Z"]
       a:Intercept  a:x  b:Intercept  b:x
    0          1.0  0.0          0.0  0.0
    1          1.0  1.0          0.0  0.0
    2          0.0  0.0          1.0  0.0
    3          0.0  0.0          1.0  2.0
    """
    design = build_design(data, design_from_arguments(formula, group, re_formula, False))
    term = design.terms[0]
    q, J = term.q, term.n_levels
    Zbig = np.zeros((len(design.y), J * q))
    rows = np.arange(len(design.y))
    for a in range(q):
        Zbig[rows, term.codes * q + a] = term.Z[:, a]
    zcols = [f"{g}:{t}" for g in term.level_labels() for t in term.columns]
    return {
        "y": pd.DataFrame({design.outcome: design.y}, index=data.index),
        "X": pd.DataFrame(design.X, index=data.index, columns=design.fixed_names),
        "Z": pd.DataFrame(Zbig, index=data.index, columns=zcols),
    }


def model_matrices(fit: MixedFit, group: object) -> dict[str, pd.DataFrame]:
    r"""The matrices of one group of a fitted model: ``y_j, X_j, Z_j, T, V_j``.

    Parameters
    ----------
    fit : MixedFit
        A fitted model.
    group : object
        The label of a level-2 unit, as it appears in the data's group column.

    Returns
    -------
    dict of pandas.DataFrame
        ``"y"`` (:math:`n_j \times 1`), ``"X"`` (:math:`n_j \times p`, fixed effects),
        ``"Z"`` (:math:`n_j \times q`, random effects), ``"T"`` (:math:`q \times q`, the
        fit's estimate) and ``"V"`` (:math:`n_j \times n_j`, the marginal covariance at the
        estimates). Rows are labelled by the data's index.

    Raises
    ------
    TypeError
        If ``fit`` is not a :class:`~mlm_lessons.MixedFit`.
    KeyError
        If ``group`` is not a level-2 unit of the fit.

    Notes
    -----
    :math:`V_j = Z_j \hat T Z_j' + \hat\sigma^2 I_{n_j}`: the variance of each outcome is
    :math:`z_{ij}'Tz_{ij} + \sigma^2`, and two outcomes of the same group covary by
    :math:`z_{ij}'Tz_{i'j}`; outcomes of different groups are independent.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> fit = mlm.fit_null(mlm.load_dataset("hsb"), "mathach", "school")
    >>> m = mlm.model_matrices(fit, "1224")
    >>> m["V"].iloc[:2, :2].round(3)
            0       1
    0  47.762   8.614
    1   8.614  47.762
    """
    fit = _check_fit(fit)
    m = fit.matrices()
    labels = m.groups[fit.group]
    rows = (labels == group).to_numpy() if _comparable(labels, group) else np.zeros(0, bool)
    if not rows.any():
        shown = ", ".join(repr(_plain(v)) for v in pd.unique(labels)[:5])
        raise KeyError(
            f"group {group!r} is not a level-2 unit of this fit (column {fit.group!r}); "
            f"the first ones are {shown}; labels must match in type too (e.g. '1224', not 1224)"
        )
    index = m.y.index[rows]
    Zj = m.Z[fit.group].to_numpy()[rows]
    T = fit.tau.to_numpy()
    V = Zj @ T @ Zj.T + fit.sigma2 * np.eye(int(rows.sum()))
    return {
        "y": pd.DataFrame({fit.outcome: m.y.to_numpy()[rows]}, index=index),
        "X": m.X.loc[index],
        "Z": pd.DataFrame(Zj, index=index, columns=list(fit.tau.index)),
        "T": fit.tau.copy(),
        "V": pd.DataFrame(V, index=index, columns=index),
    }


# --- GLS and the likelihood, dense ---------------------------------------------------------


@dataclass(frozen=True)
class _Dense:
    XtVX: np.ndarray
    XtVy: np.ndarray
    ytVy: float
    logdet_V: float
    beta: np.ndarray
    n: int
    p: int


def _dense(fit: MixedFit, T: np.ndarray, sigma2: float) -> _Dense:
    """Accumulate X'V^-1X, X'V^-1y, y'V^-1y and log|V| over groups with dense V_j."""
    m = fit.matrices()
    X, Z, y = m.X.to_numpy(), m.Z[fit.group].to_numpy(), m.y.to_numpy()
    codes = pd.factorize(m.groups[fit.group], sort=False)[0]
    p = X.shape[1]
    XtVX = np.zeros((p, p))
    XtVy = np.zeros(p)
    ytVy = 0.0
    logdet = 0.0
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes))[:-1]
    for rows in np.split(order, bounds):
        Xj, Zj, yj = X[rows], Z[rows], y[rows]
        Vj = Zj @ T @ Zj.T + sigma2 * np.eye(len(rows))
        cf = linalg.cho_factor(Vj, lower=True)
        logdet += 2.0 * np.log(np.diag(cf[0])).sum()
        ViX = linalg.cho_solve(cf, Xj)
        Viy = linalg.cho_solve(cf, yj)
        XtVX += Xj.T @ ViX
        XtVy += Xj.T @ Viy
        ytVy += float(yj @ Viy)
    beta = np.linalg.solve(XtVX, XtVy) if p else np.zeros(0)
    return _Dense(XtVX, XtVy, ytVy, logdet, beta, len(y), p)


def _loglik(dense: _Dense, method: str) -> float:
    quad = dense.ytVy - float(dense.beta @ dense.XtVy)  # (y - X b)' V^-1 (y - X b)
    if method == "ML":
        return -0.5 * (dense.n * _LOG2PI + dense.logdet_V + quad)
    _, logdet_x = np.linalg.slogdet(dense.XtVX) if dense.p else (1.0, 0.0)
    return -0.5 * ((dense.n - dense.p) * _LOG2PI + dense.logdet_V + logdet_x + quad)


def loglik_at(fit: MixedFit, tau: object, sigma2: float, *, method: str | None = None) -> float:
    r"""The (restricted) log-likelihood of a fitted model's data at given variance components.

    Nothing is optimised: the fixed effects are the GLS estimates at ``tau`` and
    ``sigma2`` (which is what both ML and REML estimate them to be once the variance
    components are fixed).

    Parameters
    ----------
    fit : MixedFit
        Supplies the data, the fixed and random parts and, by default, the method.
    tau : pandas.DataFrame, array_like or float
        The level-2 covariance matrix :math:`T` (:math:`q \times q`, in the order of
        ``fit.tau``; a DataFrame is matched by its labels; a number when :math:`q = 1`).
    sigma2 : float
        The level-1 variance.
    method : {"REML", "ML"}, optional
        Which likelihood; default ``fit.method``.

    Returns
    -------
    float
        :math:`\ell(\hat\gamma(T, \sigma^2), T, \sigma^2)`, on the same scale as
        ``fit.loglik`` (so ``loglik_at(fit, fit.tau, fit.sigma2)`` equals ``fit.loglik``).

    Raises
    ------
    TypeError
        If ``fit`` is not a MixedFit, or ``tau``/``sigma2`` are not numbers.
    ValueError
        If ``tau`` has the wrong shape or labels, is not symmetric positive semi-definite,
        ``sigma2`` is not positive, or ``method`` is unknown.

    Notes
    -----
    With :math:`r_j = y_j - X_j\hat\gamma` and
    :math:`\hat\gamma = (\sum_j X_j'V_j^{-1}X_j)^{-1}\sum_j X_j'V_j^{-1}y_j`,

    .. math::

        -2\ell_{ML} = n\log 2\pi + \sum_j \log|V_j| + \sum_j r_j'V_j^{-1}r_j,

        -2\ell_{REML} = (n-p)\log 2\pi + \sum_j \log|V_j|
        + \log\Big|\sum_j X_j'V_j^{-1}X_j\Big| + \sum_j r_j'V_j^{-1}r_j,

    the REML form being lme4's (without the constant :math:`-\log|X'X|`). Each
    :math:`V_j` is formed densely and factorised by Cholesky. At lme4's estimates it
    reproduces lme4's ``logLik`` to better than 1e-6 (``tests/test_matrices.py``), and
    at the values published by Raudenbush and Bryk (2002, Table 4.5) it agrees with an
    independent computation in R.

    References
    ----------
    Raudenbush, S. W. and Bryk, A. S. (2002). *Hierarchical Linear Models*, 2nd ed.,
    ch. 3 and 14. Sage.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> fit = mlm.fit_null(mlm.load_dataset("hsb"), "mathach", "school")
    >>> abs(mlm.loglik_at(fit, fit.tau, fit.sigma2) - fit.loglik) < 1e-6
    True
    >>> round(mlm.loglik_at(fit, 8.0, 39.0) - fit.loglik, 3)  # not the optimum: lower
    -0.205
    """
    fit = _check_fit(fit)
    method = _check_method(method, fit)
    T = _check_tau(tau, fit)
    s2 = _check_sigma2(sigma2)
    return float(_loglik(_dense(fit, T, s2), method))


def marginal_loglik(fit: MixedFit) -> float:
    r"""A fit's (RE)ML log-likelihood recomputed from the dense marginal covariances :math:`V_j`.

    Parameters
    ----------
    fit : MixedFit

    Returns
    -------
    float
        ``loglik_at(fit, fit.tau, fit.sigma2)``; equals ``fit.loglik`` up to rounding
        error, by a computation that shares nothing with the fitting engine but the
        design matrices.

    Raises
    ------
    TypeError
        If ``fit`` is not a MixedFit.

    Notes
    -----
    See :func:`loglik_at` for the formulas.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.center(mlm.load_dataset("hsb"), "ses", group="school", name="cses")
    >>> fit = mlm.fit_random_coefficient(hsb, "mathach", "school", predictors=["cses"])
    >>> round(mlm.marginal_loglik(fit), 2), round(fit.loglik, 2)
    (-23357.12, -23357.12)
    """
    fit = _check_fit(fit)
    return loglik_at(fit, fit.tau, fit.sigma2)


@dataclass(frozen=True)
class GLSResult(ResultDisplay):
    """Generalised least squares estimates of the fixed effects.

    Attributes
    ----------
    fixed : pandas.DataFrame
        ``term, estimate, std_error``.
    vcov : pandas.DataFrame
        :math:`(X'V^{-1}X)^{-1}`, labelled by term.
    """

    fixed: pd.DataFrame
    vcov: pd.DataFrame

    @property
    def params(self) -> pd.Series:
        """Estimates as a Series indexed by term."""
        return self.fixed.set_index("term")["estimate"]


def gls_fixed_effects(
    fit: MixedFit, *, tau: object | None = None, sigma2: float | None = None
) -> GLSResult:
    r"""GLS estimates of the fixed effects and their covariance, by dense matrix algebra.

    Parameters
    ----------
    fit : MixedFit
        Supplies the data and the model.
    tau, sigma2 : optional
        Variance components at which to estimate (see :func:`loglik_at`); default the
        fit's own estimates, which reproduces ``fit.params`` and ``fit.vcov()``.

    Returns
    -------
    GLSResult
        ``fixed`` (``term, estimate, std_error``) and ``vcov``.

    Raises
    ------
    TypeError, ValueError
        As :func:`loglik_at`.

    Notes
    -----
    .. math::

        \hat\gamma = \Big(\sum_j X_j'V_j^{-1}X_j\Big)^{-1} \sum_j X_j'V_j^{-1}y_j,
        \qquad \widehat{\operatorname{Var}}(\hat\gamma) =
        \Big(\sum_j X_j'V_j^{-1}X_j\Big)^{-1},

    with :math:`V_j = Z_jTZ_j' + \sigma^2 I`. The covariance treats :math:`T` and
    :math:`\sigma^2` as known; it is what lme4, HLM and Stata report. At lme4's variance
    components it reproduces lme4's ``fixef`` and ``vcov`` (``tests/test_matrices.py``).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> fit = mlm.fit_random_intercept(hsb, "mathach", "school", predictors=["ses"])
    >>> mlm.gls_fixed_effects(fit).fixed.round(4)
            term  estimate  std_error
    0  Intercept   12.6575     0.1880
    1        ses    2.3902     0.1057
    """
    fit = _check_fit(fit)
    T = _check_tau(fit.tau if tau is None else tau, fit)
    s2 = _check_sigma2(fit.sigma2 if sigma2 is None else sigma2)
    dense = _dense(fit, T, s2)
    names = list(fit.fixed["term"])
    cov = np.linalg.inv(dense.XtVX)
    fixed = pd.DataFrame(
        {"term": names, "estimate": dense.beta, "std_error": np.sqrt(np.diag(cov))}
    )
    return GLSResult(fixed=fixed, vcov=pd.DataFrame(cov, index=names, columns=names))
