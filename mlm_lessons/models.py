"""Two-level linear mixed models: the general fit and the workshop's model stages.

:func:`fit_mixed` fits any two-level linear mixed model with a random intercept and,
optionally, random slopes. The stage functions build the formula for the workshop's
ladder of models and call it:

- :func:`fit_null`: one-way ANOVA with random effects (the null model);
- :func:`fit_random_intercept`: level-1 (and level-2) predictors, random intercept;
- :func:`fit_random_coefficient`: random intercept and random slopes;
- :func:`fit_full_model`: level-2 predictors of intercepts and slopes (cross-level
  interactions).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from mlm_lessons import _lmm
from mlm_lessons._checks import (
    BoundaryWarning,
    ConvergenceWarning,
    check_conf_level,
    check_frame,
    check_method,
)
from mlm_lessons._design import Design, build_design, new_design
from mlm_lessons._display import ResultDisplay
from mlm_lessons._threads import single_blas_thread

__all__ = [
    "MixedFit",
    "fit_mixed",
    "fit_null",
    "fit_random_intercept",
    "fit_random_coefficient",
    "fit_full_model",
]

@dataclass(frozen=True)
class MixedFit(ResultDisplay):
    """A fitted two-level linear mixed model (immutable).

    Attributes
    ----------
    formula, re_formula, group : str
        The fixed-effects formula, the random-effects formula (``"1"`` for a random
        intercept only) and the level-2 identifier.
    method : {"REML", "ML"}
        The criterion that was maximised.
    fixed : pandas.DataFrame
        One row per fixed effect (gamma): ``term, estimate, std_error, statistic, p_value,
        ci_low, ci_high``. Standard errors are the square roots of the diagonal of
        ``sigma2 (X' V^-1 X)^-1`` at the estimates, as lme4, HLM and Stata report them;
        ``statistic`` is the z statistic and ``p_value`` its two-sided normal p.
    tau : pandas.DataFrame
        The level-2 covariance matrix T, rows and columns labelled by random-effect term.
    sigma2 : float
        The level-1 (residual) variance.
    loglik : float
        The maximised log-likelihood (the REML criterion for REML fits).
    aic, bic : float
        ``-2 loglik + 2 k`` and ``-2 loglik + k log(n_obs)``, with ``k`` the number of
        fixed effects plus covariance parameters plus one, as lme4 computes them. Under
        REML they compare only models with the same fixed part.
    n_obs, n_groups : int
    converged : bool
        True when the scaled gradient at the optimum is below 2e-3 (lme4's check).
    conf_level : float
        Level of the intervals in ``fixed``.
    optimizer : str
        The optimizer whose result was kept.
    """

    formula: str
    re_formula: str
    group: str
    method: str
    fixed: pd.DataFrame
    tau: pd.DataFrame
    sigma2: float
    loglik: float
    aic: float
    bic: float
    n_obs: int
    n_groups: int
    converged: bool
    conf_level: float
    optimizer: str
    diagonal: bool
    _design: Design = field(repr=False, compare=False)
    _solution: _lmm.Solution = field(repr=False, compare=False)
    _data: pd.DataFrame = field(repr=False, compare=False)
    _scaled_gradient: float = field(repr=False, compare=False)

    # --- derived quantities ----------------------------------------------------------------

    @property
    def n_params(self) -> int:
        """Number of estimated parameters: fixed effects, covariance parameters, sigma2."""
        q = self.tau.shape[0]
        return len(self.fixed) + (q if self.diagonal else q * (q + 1) // 2) + 1

    @property
    def params(self) -> pd.Series:
        """Fixed-effect estimates as a Series indexed by term."""
        return self.fixed.set_index("term")["estimate"]

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effect estimates, ``sigma2 (X' V^-1 X)^-1``."""
        names = list(self.fixed["term"])
        cov = self.sigma2 * np.linalg.inv(self._solution.XtX_adj)
        return pd.DataFrame(cov, index=names, columns=names)

    def variance_components(self) -> pd.DataFrame:
        """Variance components in the workshop's notation.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``tau00, tau11, ..., tau01, ..., sigma2`` with columns
            ``description``, ``estimate`` (variance or covariance) and ``std_dev`` (square
            root for variances, the correlation for covariances).
        """
        names = list(self.tau.index)
        T = self.tau.to_numpy()
        rows = []
        for i, name in enumerate(names):
            rows.append((f"tau{i}{i}", f"Var({name})", T[i, i], np.sqrt(T[i, i])))
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                if self.diagonal:
                    continue
                denom = np.sqrt(T[i, i] * T[j, j])
                corr = T[i, j] / denom if denom > 0 else np.nan
                rows.append((f"tau{i}{j}", f"Cov({names[i]}, {names[j]})", T[i, j], corr))
        rows.append(("sigma2", "Var(residual)", self.sigma2, np.sqrt(self.sigma2)))
        out = pd.DataFrame(rows, columns=["component", "description", "estimate", "std_dev"])
        return out.set_index("component")

    def icc(self) -> float:
        """Intra-class correlation ``tau00 / (tau00 + sigma2)`` of a random-intercept fit.

        Raises
        ------
        ValueError
            If the fit has random slopes: the share of variance between groups then
            depends on the predictor's value.
        """
        if self.tau.shape[0] != 1:
            raise ValueError(
                "the ICC of a random-slope model depends on the predictor value; use a "
                "random-intercept fit (e.g. fit_null) or compute tau00/(tau00+sigma2) at x=0"
            )
        tau00 = float(self.tau.iloc[0, 0])
        return tau00 / (tau00 + self.sigma2)

    def random_effects(self) -> pd.DataFrame:
        """Empirical Bayes (BLUP) estimates of each group's random effects.

        Returns
        -------
        pandas.DataFrame
            Long format, one row per group and random-effect term: ``group, term,
            estimate, std_error``. ``std_error`` is the conditional standard deviation
            given the estimated fixed effects (lme4's ``condVar``).
        """
        u, cov = _lmm.conditional_modes(self._solution)
        q = u.shape[1]
        sd = np.sqrt(np.maximum(cov[:, np.arange(q), np.arange(q)], 0.0))
        terms = list(self.tau.index)
        groups = self._design.groups
        return pd.DataFrame(
            {
                "group": np.repeat(groups.to_numpy(), q),
                "term": np.tile(terms, len(groups)),
                "estimate": u.ravel(),
                "std_error": sd.ravel(),
            }
        )

    def group_coefficients(self) -> pd.DataFrame:
        """Each group's own intercept and slopes: fixed effect plus BLUP.

        Returns
        -------
        pandas.DataFrame
            One row per group, one column per random-effect term. Only terms that are also
            fixed effects get the fixed part added; a level-2 predictor's contribution is
            not included (use :meth:`predict` for fitted values).
        """
        re = self.random_effects().pivot(index="group", columns="term", values="estimate")
        re = re.loc[self._design.groups, list(self.tau.index)]
        params = self.params
        for term in re.columns:
            if term in params.index:
                re[term] = re[term] + params[term]
        re.columns.name = None
        return re

    def predict(self, data: pd.DataFrame | None = None, *, conditional: bool = True) -> pd.Series:
        """Predicted outcome.

        Parameters
        ----------
        data : pandas.DataFrame, optional
            New rows; the fitted data when omitted.
        conditional : bool, default True
            Add each group's BLUPs (``X beta + Z u_j``, lme4's default ``re.form=NULL``).
            With False, or for rows whose group was not in the fitted data, the prediction
            is the population-average ``X beta`` (``re.form=NA``).
        """
        data = self._data if data is None else check_frame(data)
        X, Z = new_design(self._design, data)
        pred = X @ self._solution.beta
        if conditional:
            u, _ = _lmm.conditional_modes(self._solution)
            pos = self._design.groups.get_indexer(data[self.group])
            known = pos >= 0
            pred[known] += np.einsum("ij,ij->i", Z[known], u[pos[known]])
        return pd.Series(pred, index=data.index, name="predicted")

    def residuals(self, *, conditional: bool = True) -> pd.Series:
        """Level-1 residuals ``y - prediction`` on the fitted data."""
        y = pd.Series(self._design.y, index=self._data.index)
        return (y - self.predict(conditional=conditional)).rename("residual")

    def refit(self, *, method: str) -> MixedFit:
        """The same model fitted by another criterion (e.g. ``method="ML"`` for an LR test)."""
        if method == self.method:
            return self
        return fit_mixed(
            self._data,
            self.formula,
            self.group,
            re_formula=self.re_formula,
            method=method,
            diagonal=self.diagonal,
            conf_level=self.conf_level,
        )

    def summary(self) -> pd.DataFrame:
        """A table in the workshop's notation: the gammas, then the taus and sigma2.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``(part, parameter)`` with columns ``estimate, std_error,
            statistic, p_value``; variance components have no standard error (NaN): test
            them with a likelihood-ratio test (:func:`mlm_lessons.lrt`).
        """
        fx = self.fixed.set_index("term")[["estimate", "std_error", "statistic", "p_value"]]
        fx.index = pd.MultiIndex.from_product([["Fixed effects"], fx.index])
        vc = self.variance_components()
        rnd = pd.DataFrame(
            {"estimate": vc["estimate"], "std_error": np.nan, "statistic": np.nan,
             "p_value": np.nan}
        )
        rnd.index = pd.MultiIndex.from_tuples(
            [("Random effects", f"{c}: {d}") for c, d in zip(vc.index, vc["description"])]
        )
        out = pd.concat([fx, rnd])
        out.index.names = ["part", "parameter"]
        return out

    def statsmodels_result(self):
        """The same model as a statsmodels ``MixedLMResults``, for experts.

        statsmodels is started at this fit's estimates, so it stays at the optimum found
        here (see the random-coefficient chapter for why its defaults are not used).
        """
        import statsmodels.formula.api as smf
        from statsmodels.regression.mixed_linear_model import MixedLMParams

        model = smf.mixedlm(
            self.formula, self._data, groups=self._data[self.group],
            re_formula="~" + self.re_formula.lstrip("~"),
        )
        T = self.tau.to_numpy() / self.sigma2
        start = MixedLMParams.from_components(
            fe_params=self._solution.beta, cov_re=T
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(start_params=start, reml=self.method == "REML", method="bfgs")


def _check_mixed_fit(fit: object, hint: str, name: str = "fit") -> MixedFit:
    """Raise ``TypeError`` unless ``fit`` is a MixedFit; ``hint`` says where one comes from."""
    if not isinstance(fit, MixedFit):
        raise TypeError(f"{name} must be a MixedFit {hint}, not {type(fit).__name__}")
    return fit


def _aic_bic(loglik: float, k: int, n_obs: int) -> tuple[float, float]:
    """``-2 loglik + 2 k`` and ``-2 loglik + k log(n_obs)``, as lme4 computes them."""
    return float(-2 * loglik + 2 * k), float(-2 * loglik + k * np.log(n_obs))


def _fixed_table(names, beta, cov, conf_level) -> pd.DataFrame:
    return _wald_table(names, beta, np.sqrt(np.diag(cov)), conf_level)


def _wald_table(names, beta, se, conf_level) -> pd.DataFrame:
    """``term, estimate, std_error, statistic, p_value, ci_low, ci_high`` (Wald z)."""
    z = beta / se
    crit = stats.norm.ppf(0.5 + conf_level / 2)
    return pd.DataFrame(
        {
            "term": names,
            "estimate": beta,
            "std_error": se,
            "statistic": z,
            "p_value": 2 * stats.norm.sf(np.abs(z)),
            "ci_low": beta - crit * se,
            "ci_high": beta + crit * se,
        }
    )


@single_blas_thread
def fit_mixed(
    data: pd.DataFrame,
    formula: str,
    group: str,
    *,
    re_formula: str | None = None,
    method: str = "REML",
    diagonal: bool = False,
    conf_level: float = 0.95,
) -> MixedFit:
    r"""Fit a two-level linear mixed model by REML or ML.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per level-1 unit. Not modified.
    formula : str
        Fixed part as a patsy formula, ``"y ~ x + z + x:z"``.
    group : str
        Column that identifies the level-2 units.
    re_formula : str, optional
        Random part: ``None`` or ``"1"`` for a random intercept, ``"x"`` for a random
        intercept and a random slope of ``x`` (correlated), ``"0 + x"`` for a slope alone.
    method : {"REML", "ML"}, default "REML"
        REML for reporting variance components; ML to compare models whose fixed parts
        differ.
    diagonal : bool, default False
        Constrain the random effects to be uncorrelated (T diagonal).
    conf_level : float, default 0.95
        Level of the Wald intervals of the fixed effects.

    Returns
    -------
    MixedFit

    Raises
    ------
    KeyError
        If a column named in a formula or ``group`` is not in ``data``.
    TypeError
        If the outcome is not numeric.
    ValueError
        If a used column has missing values, there are fewer than two groups, the outcome is
        constant, the fixed design is rank deficient, or ``method`` is unknown.

    Warns
    -----
    BoundaryWarning
        When a variance is estimated at zero or a correlation at +-1 (the model is
        probably too rich for the data).
    ConvergenceWarning
        When no optimizer reaches a point with a vanishing gradient.

    Notes
    -----
    The model for group :math:`j` is :math:`y_j = X_j\gamma + Z_j u_j + \varepsilon_j` with
    :math:`u_j \sim N(0, T)` and :math:`\varepsilon_j \sim N(0, \sigma^2 I)`. The
    likelihood is profiled over :math:`\gamma` and :math:`\sigma^2` and maximised over the
    relative Cholesky factor of :math:`T/\sigma^2` as in lme4 (Bates et al. 2015), from per-group
    cross-products, starting from moment estimates. A bounded quasi-Newton optimizer runs
    first; if lme4's scaled-gradient check fails, Nelder-Mead and a second start are tried
    and the best likelihood is kept.

    Validated against lme4 1.1 on the High School and Beyond models of Raudenbush and
    Bryk (2002, ch. 4) and on ``sleepstudy`` (REML and ML): log-likelihoods to 1e-3,
    estimates to 2e-3 relative (``tests/test_models.py``), and against statsmodels'
    ``MixedLM`` log-likelihood at the same parameters.

    References
    ----------
    Bates, D., Maechler, M., Bolker, B. and Walker, S. (2015). Fitting linear mixed-effects
    models using lme4. *Journal of Statistical Software* 67(1).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> fit = mlm.fit_mixed(hsb, "mathach ~ ses", "school")
    >>> fit.fixed[["term", "estimate"]].round(2)
            term  estimate
    0  Intercept     12.66
    1        ses      2.39
    >>> round(fit.sigma2, 2)
    37.03
    """
    check_method(method)
    check_conf_level(conf_level)
    design = build_design(data, formula, group, re_formula)
    reml = method == "REML"
    st = _lmm.sufficient_stats(design.y, design.X, design.Z, design.codes)
    if st.n - st.p <= 0:
        raise ValueError(
            f"{st.n} observations cannot estimate {st.p} fixed effects and a residual variance"
        )
    if int(st.n_j.max()) < 2:
        raise ValueError(
            f"every group in {group!r} has a single row; level-1 and level-2 variance cannot "
            f"be separated: check that {group!r} identifies groups, not rows"
        )
    start = _lmm.moment_start(design.y, design.X, design.Z, design.codes, st, diagonal)
    opt = _lmm.optimize_theta(st, start, reml, diagonal)
    sol = _lmm.solve(opt.theta, st, reml, diagonal)

    T = sol.sigma2 * sol.lam @ sol.lam.T
    rterms = design.random_names
    tau = pd.DataFrame(T, index=rterms, columns=rterms)
    cov = sol.sigma2 * np.linalg.inv(sol.XtX_adj) if st.p else np.zeros((0, 0))
    fixed = _fixed_table(design.fixed_names, sol.beta, cov, conf_level)
    loglik = -sol.deviance / 2
    k = st.p + _lmm.theta_size(st.q, diagonal) + 1
    converged = opt.scaled_gradient < _lmm.GRADIENT_TOL
    aic, bic = _aic_bic(loglik, k, st.n)

    fit = MixedFit(
        formula=formula,
        re_formula=design.z_info.describe() if re_formula is not None else "1",
        group=group,
        method=method,
        fixed=fixed,
        tau=tau,
        sigma2=float(sol.sigma2),
        loglik=float(loglik),
        aic=aic,
        bic=bic,
        n_obs=st.n,
        n_groups=st.J,
        converged=bool(converged),
        conf_level=conf_level,
        optimizer=opt.optimizer,
        diagonal=diagonal,
        _design=design,
        _solution=sol,
        _data=data,
        _scaled_gradient=opt.scaled_gradient,
    )
    _warn_if_needed(fit, opt)
    return fit


def _warn_if_needed(fit: MixedFit, opt: _lmm.Optimum) -> None:
    at_zero, corr_at_one = _lmm.boundary_flags(fit.tau.to_numpy(), fit.sigma2)
    small = [t for t, z in zip(fit.tau.index, at_zero) if z]
    if small or corr_at_one:
        what = (
            f"the variance of {', '.join(map(repr, small))} is estimated at zero"
            if small
            else "a correlation of random effects is estimated at +-1"
        )
        warnings.warn(
            f"boundary fit: {what}. The data do not support this random part: drop that "
            f"random effect (or use diagonal=True), and test it with lrt(), whose p-value "
            f"accounts for the boundary",
            BoundaryWarning,
            stacklevel=3,
        )
    if not fit.converged:
        warnings.warn(
            f"the optimizer did not converge (scaled gradient {opt.scaled_gradient:.2g} > "
            f"2e-3 after trying several optimizers). Rescale predictors to unit-sized "
            f"values, center them, or simplify the random part; compare method='ML'",
            ConvergenceWarning,
            stacklevel=3,
        )


# --- the workshop's model stages ---------------------------------------------------------


def _terms(names: Sequence[str] | str, what: str) -> list[str]:
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"{what} must be column names (strings), got {names!r}")
    return names


def _rhs(terms: list[str]) -> str:
    return " + ".join(terms) if terms else "1"


def fit_null(
    data: pd.DataFrame, outcome: str, group: str, *, method: str = "REML"
) -> MixedFit:
    """One-way ANOVA with random effects: ``y_ij = gamma00 + u0j + e_ij``.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> fit = mlm.fit_null(mlm.load_dataset("hsb"), "mathach", "school")
    >>> round(fit.icc(), 3)
    0.18
    """
    return fit_mixed(data, f"{outcome} ~ 1", group, method=method)


def fit_random_intercept(
    data: pd.DataFrame,
    outcome: str,
    group: str,
    *,
    predictors: Sequence[str],
    method: str = "REML",
) -> MixedFit:
    """Random-intercept model: ``y_ij = gamma00 + sum_p gamma_p0 x_pij + u0j + e_ij``.

    ``predictors`` may mix level-1 and level-2 variables (means as outcomes:
    ``predictors=["meanses"]``).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> fit = mlm.fit_random_intercept(mlm.load_dataset("hsb"), "mathach", "school",
    ...                                predictors=["meanses"])
    >>> fit.params.round(2).to_dict()
    {'Intercept': 12.65, 'meanses': 5.86}
    """
    preds = _terms(predictors, "predictors")
    return fit_mixed(data, f"{outcome} ~ {_rhs(preds)}", group, method=method)


def fit_random_coefficient(
    data: pd.DataFrame,
    outcome: str,
    group: str,
    *,
    predictors: Sequence[str],
    random: Sequence[str] | None = None,
    method: str = "REML",
) -> MixedFit:
    """Random-coefficient model: the slopes of ``random`` (default: all predictors) vary.

    ``y_ij = gamma00 + gamma10 x_ij + u0j + u1j x_ij + e_ij``.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.center(mlm.load_dataset("hsb"), "ses", group="school", name="cses")
    >>> fit = mlm.fit_random_coefficient(hsb, "mathach", "school", predictors=["cses"])
    >>> fit.tau.round(3)
               Intercept   cses
    Intercept      8.681  0.047
    cses           0.047  0.694
    """
    preds = _terms(predictors, "predictors")
    rnd = preds if random is None else _terms(random, "random")
    unknown = [r for r in rnd if r not in preds]
    if unknown:
        raise ValueError(f"random slopes {unknown} must also be in predictors {preds}")
    return fit_mixed(
        data, f"{outcome} ~ {_rhs(preds)}", group, re_formula=_rhs(rnd), method=method
    )


def fit_full_model(
    data: pd.DataFrame,
    outcome: str,
    group: str,
    *,
    level1: Sequence[str],
    level2: Sequence[str],
    random: Sequence[str] | None = None,
    method: str = "REML",
) -> MixedFit:
    """Intercepts and slopes as outcomes: level-2 predictors of every level-1 coefficient.

    Every ``level2`` variable predicts the intercept and every ``level1`` slope, which
    gives the cross-level interactions ``z_j x_ij`` of equation (3) of the workshop. The
    slopes of ``random`` (default: all of ``level1``) vary across groups.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.center(mlm.load_dataset("hsb"), "ses", group="school", name="cses")
    >>> fit = mlm.fit_full_model(hsb, "mathach", "school", level1=["cses"],
    ...                          level2=["meanses", "catholic"])
    >>> fit.params.round(2).to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'Intercept': 12.1, 'meanses': 5.33, 'catholic': 1.23, 'cses': 2.94,
     'meanses:cses': 1.04, 'catholic:cses': -1.64}
    """
    l1 = _terms(level1, "level1")
    l2 = _terms(level2, "level2")
    rnd = l1 if random is None else _terms(random, "random")
    rhs = f"({_rhs(l2)}) * ({_rhs(l1)})" if l2 else _rhs(l1)
    return fit_mixed(
        data, f"{outcome} ~ {rhs}", group, re_formula=_rhs(rnd), method=method
    )

