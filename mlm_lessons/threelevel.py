"""Three-level nested linear mixed models (e.g. years within children within schools)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy

from mlm_lessons import _lmm, _lmm3
from mlm_lessons._checks import (
    BoundaryWarning,
    ConvergenceWarning,
    check_conf_level,
    check_groups,
    check_method,
)
from mlm_lessons._design import _check_formula_data, build_design
from mlm_lessons._display import ResultDisplay
from mlm_lessons._threads import single_blas_thread
from mlm_lessons.models import _aic_bic, _fixed_table

__all__ = ["ThreeLevelFit", "fit_three_level"]


@dataclass(frozen=True)
class ThreeLevelFit(ResultDisplay):
    """A fitted three-level linear mixed model (immutable).

    Attributes
    ----------
    formula, level2, level3, re_formula2, re_formula3, method : str
    fixed : pandas.DataFrame
        ``term, estimate, std_error, statistic, p_value, ci_low, ci_high`` as in
        :class:`mlm_lessons.MixedFit`.
    tau2, tau3 : pandas.DataFrame
        Covariance matrices of the level-2 and level-3 random effects.
    sigma2, loglik, aic, bic : float
    n_obs, n_level2, n_level3 : int
    converged : bool
    """

    formula: str
    level2: str
    level3: str
    re_formula2: str
    re_formula3: str
    method: str
    fixed: pd.DataFrame
    tau2: pd.DataFrame
    tau3: pd.DataFrame
    sigma2: float
    loglik: float
    aic: float
    bic: float
    n_obs: int
    n_level2: int
    n_level3: int
    converged: bool
    optimizer: str
    _solution: _lmm3.Solution3 = field(repr=False, compare=False)
    _labels2: pd.Index = field(repr=False, compare=False)
    _labels3: pd.Index = field(repr=False, compare=False)
    _parent: np.ndarray = field(repr=False, compare=False)

    @property
    def params(self) -> pd.Series:
        """Fixed-effect estimates indexed by term."""
        return self.fixed.set_index("term")["estimate"]

    def variance_components(self) -> pd.DataFrame:
        """Every variance and covariance, by level.

        Returns
        -------
        pandas.DataFrame
            Columns ``level, description, estimate``.
        """
        rows = []
        for level, tau in ((self.level3, self.tau3), (self.level2, self.tau2)):
            names = list(tau.index)
            for i, a in enumerate(names):
                rows.append((level, f"Var({a})", tau.iloc[i, i]))
            for i in range(len(names)):
                for j in range(i + 1, len(names)):
                    rows.append((level, f"Cov({names[i]}, {names[j]})", tau.iloc[i, j]))
        rows.append(("residual", "Var(residual)", self.sigma2))
        return pd.DataFrame(rows, columns=["level", "description", "estimate"])

    def variance_partition(self) -> pd.DataFrame:
        """Share of the outcome variance at each level (random intercepts only).

        For a model whose random parts are intercepts, the variance of ``y`` given the
        fixed part is ``tau3 + tau2 + sigma2``; each share is that level's part of it. The
        level-3 share is the correlation of two observations in the same level-3 unit and
        different level-2 units; level 3 plus level 2 is the correlation within a level-2
        unit.

        Raises
        ------
        ValueError
            If either level has random slopes (the shares then depend on the predictors).
        """
        if self.tau2.shape[0] != 1 or self.tau3.shape[0] != 1:
            raise ValueError(
                "the variance partition is defined for random intercepts only; with random "
                "slopes it depends on the predictor values"
            )
        v = {
            self.level3: float(self.tau3.iloc[0, 0]),
            self.level2: float(self.tau2.iloc[0, 0]),
            "residual": self.sigma2,
        }
        total = sum(v.values())
        return pd.DataFrame(
            {"level": list(v), "variance": list(v.values()),
             "share": [x / total for x in v.values()]}
        )

    def random_effects(self, level: str) -> pd.DataFrame:
        """BLUPs of one level's random effects: ``group, term, estimate`` (long format)."""
        if level not in (self.level2, self.level3):
            raise ValueError(f"level must be {self.level2!r} or {self.level3!r}, not {level!r}")
        u2, u3 = _lmm3.random_effects3(self._solution, self._parent)
        u, labels, tau = (
            (u2, self._labels2, self.tau2)
            if level == self.level2
            else (u3, self._labels3, self.tau3)
        )
        q = u.shape[1]
        return pd.DataFrame(
            {
                "group": np.repeat(np.asarray(labels), q),
                "term": np.tile(list(tau.index), len(labels)),
                "estimate": u.ravel(),
            }
        )


@single_blas_thread
def fit_three_level(
    data: pd.DataFrame,
    formula: str,
    level2: str,
    level3: str,
    *,
    re_formula2: str | None = None,
    re_formula3: str | None = None,
    method: str = "REML",
    conf_level: float = 0.95,
) -> ThreeLevelFit:
    r"""Fit a three-level nested linear mixed model by REML or ML.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per level-1 unit.
    formula : str
        Fixed part, ``"y ~ x + z"``.
    level2, level3 : str
        Identifiers of the level-2 units (e.g. children) and of the level-3 units they are
        nested in (e.g. schools). Level-2 labels only need to be unique within a level-3
        unit.
    re_formula2, re_formula3 : str, optional
        Random part at each level (``None`` or ``"1"``: random intercept; ``"year"``: random
        intercept and slope of ``year``, correlated). The levels are independent.
    method : {"REML", "ML"}

    Returns
    -------
    ThreeLevelFit

    Raises
    ------
    KeyError, TypeError, ValueError
        As :func:`mlm_lessons.fit_mixed` for bad columns and values; ``ValueError`` if a
        level-2 unit appears in more than one level-3 unit.

    Notes
    -----
    The model is :math:`y_{ijk} = x_{ijk}'\gamma + z_{ijk}'u_{jk} + w_{ijk}'v_k +
    \varepsilon_{ijk}` with :math:`u_{jk} \sim N(0, T_2)`, :math:`v_k \sim N(0, T_3)`,
    :math:`\varepsilon \sim N(0, \sigma^2)`, all independent. The profiled (RE)ML deviance is
    computed as in lme4 (Bates et al. 2015) by eliminating each level-2 block, then each
    level-3 Schur complement, from per-unit cross-products. Validated against lme4's
    ``lmer(y ~ ... + (re2 | level3:level2) + (re3 | level3))`` on ``egsingle``
    (``tests/test_threelevel.py``).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> eg = mlm.load_dataset("egsingle")
    >>> fit = mlm.fit_three_level(eg, "math ~ year", "childid", "schoolid")
    >>> fit.variance_partition().round(3)
          level  variance  share
    0  schoolid     0.187  0.155
    1   childid     0.670  0.556
    2  residual     0.347  0.288
    """
    check_method(method)
    check_conf_level(conf_level)
    check_groups(data, level3)
    check_groups(data, level2)
    design = build_design(data, formula, level3, re_formula3)
    re2 = "1" if re_formula2 is None else re_formula2.lstrip("~").strip() or "1"
    _check_formula_data(data, "~ " + re2, [level2])
    z2 = patsy.dmatrix(re2, data, return_type="dataframe", NA_action="raise")
    key2 = pd.MultiIndex.from_arrays([data[level3].to_numpy(), data[level2].to_numpy()])
    codes2, labels2 = pd.factorize(key2, sort=False)
    codes3 = design.codes
    parents = pd.DataFrame({"k": codes2, "j": codes3}).drop_duplicates()
    if parents["k"].duplicated().any():  # cannot happen with the compound key; kept as a guard
        raise ValueError(f"some {level2!r} units appear in more than one {level3!r} unit")
    st = _lmm3.sufficient_stats3(design.y, design.X, z2.to_numpy(dtype=float), design.Z,
                                 codes2, codes3)
    q2, q3 = st.q2, st.q3
    reml = method == "REML"
    identity = np.concatenate(
        [_lmm.theta_from_lambda(np.eye(q2), False), _lmm.theta_from_lambda(np.eye(q3), False)]
    )
    Z2 = z2.to_numpy(dtype=float)
    start = np.concatenate(
        [
            _lmm.moment_start(design.y, design.X, Z2, codes2,
                              _lmm.sufficient_stats(design.y, design.X, Z2, codes2), False),
            _lmm.moment_start(design.y, design.X, design.Z, codes3,
                              _lmm.sufficient_stats(design.y, design.X, design.Z, codes3),
                              False),
        ]
    )
    opt = _lmm.minimize_deviance(
        lambda t: _lmm3.deviance3(t, st, reml, False),
        start,
        _lmm3.bounds3(q2, q3, False),
        identity,
    )
    sol = _lmm3.solve3(opt.theta, st, reml, False)
    tau2 = pd.DataFrame(sol.sigma2 * sol.lam2 @ sol.lam2.T, index=z2.columns, columns=z2.columns)
    names3 = design.random_names
    tau3 = pd.DataFrame(sol.sigma2 * sol.lam3 @ sol.lam3.T, index=names3, columns=names3)
    cov = sol.sigma2 * np.linalg.inv(sol.XtX_adj)
    loglik = -sol.deviance / 2
    k = st.p + q2 * (q2 + 1) // 2 + q3 * (q3 + 1) // 2 + 1
    aic, bic = _aic_bic(loglik, k, st.n)
    fit = ThreeLevelFit(
        formula=formula,
        level2=level2,
        level3=level3,
        re_formula2=re2,
        re_formula3="1" if re_formula3 is None else re_formula3,
        method=method,
        fixed=_fixed_table(design.fixed_names, sol.beta, cov, conf_level),
        tau2=tau2,
        tau3=tau3,
        sigma2=float(sol.sigma2),
        loglik=float(loglik),
        aic=aic,
        bic=bic,
        n_obs=st.n,
        n_level2=len(labels2),
        n_level3=len(design.groups),
        converged=bool(opt.scaled_gradient < _lmm.GRADIENT_TOL),
        optimizer=opt.optimizer,
        _solution=sol,
        _labels2=pd.Index(labels2.get_level_values(1)),
        _labels3=design.groups,
        _parent=st.parent,
    )
    small = [
        f"{lvl}: {t}"
        for lvl, tau in ((level2, tau2), (level3, tau3))
        for t, v in zip(tau.index, np.diag(tau.to_numpy()))
        if v < 1e-8 * fit.sigma2
    ]
    if small:
        warnings.warn(
            f"boundary fit: the variance of {', '.join(small)} is estimated at zero; drop "
            f"that random effect",
            BoundaryWarning,
            stacklevel=2,
        )
    if not fit.converged:
        warnings.warn(
            f"the optimizer did not converge (scaled gradient {opt.scaled_gradient:.2g}); "
            f"rescale predictors or simplify the random part",
            ConvergenceWarning,
            stacklevel=2,
        )
    return fit
