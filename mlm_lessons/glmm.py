"""Generalized linear mixed models: binary, binomial and count outcomes; GEE beside them.

:func:`fit_glmm` fits a GLMM with any random-effects structure of :func:`~mlm_lessons.fit_mixed`
(random slopes, several terms, nested and crossed factors), written in lme4's notation:
``fit_glmm(data, "y ~ x + (1 + x | school)", family="binomial")``. Families: ``"binomial"``
(0/1 outcomes, ``cbind(successes, failures)``, or proportions with ``weights=`` the trials;
logit link), ``"poisson"`` and ``"negative_binomial"`` (log link; an exposure enters as
``offset(log(exposure))`` or ``offset=``). The likelihood is the Laplace approximation, or
adaptive Gauss-Hermite quadrature with ``n_agq`` nodes when there is one scalar random effect,
as lme4's ``glmer``; both are computed on the package's one linear engine (PIRLS).

:func:`fit_logistic_mixed` is the random-intercept logistic front end of the course (chapter
18); :func:`fit_gee` the population-averaged model by GEE; :func:`attenuation_factor` the
approximate ratio of the two kinds of coefficients.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from mlm_lessons import _engine, _glmm
from mlm_lessons._checks import (
    BoundaryWarning,
    ConvergenceWarning,
    MLMWarning,
    check_choice,
    check_columns,
    check_conf_level,
    check_count,
    check_family,
    check_formula,
    check_frame,
    check_glmm_design,
    check_glmm_outcome,
    check_n_agq,
    check_name,
    check_no_missing,
    check_numeric,
    check_real,
    check_real_array,
    check_seed,
    check_separation,
    warn,
)
from mlm_lessons._design import Design, build_design, design_from_arguments
from mlm_lessons._display import ResultDisplay
from mlm_lessons._threads import single_blas_thread
from mlm_lessons.models import (
    MixedFit,
    _aic_bic,
    _as_re,
    _components_frame,
    _cov_factor,
    _covariance_rows,
    _fixed_table,
    boundary_description,
)

__all__ = [
    "GLMMFit",
    "LogisticMixedFit",
    "OverdispersionWarning",
    "SeparationWarning",
    "fit_glmm",
    "fit_logistic_mixed",
    "fit_gee",
    "attenuation_factor",
]

_LATENT_VAR = np.pi**2 / 3  # variance of the standard logistic distribution
OVERDISPERSION_RATIO = 1.5  # Pearson chi-square / residual df above which a count fit warns
NEAR_SEPARATION = 8.0  # |coefficient| per standard deviation of its column (log scale)


class OverdispersionWarning(MLMWarning):
    """A count model's Pearson chi-square is well above its residual degrees of freedom."""


class SeparationWarning(MLMWarning):
    """A fixed effect is huge and poorly determined: near separation."""


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
    tau2 = check_real(tau2, "tau2", minimum=0.0, what="a non-negative variance (a number >= 0)")
    c = 16 * np.sqrt(3) / (15 * np.pi)
    return float(1 / np.sqrt(1 + c**2 * tau2))


# --- the result -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GLMMFit(ResultDisplay):
    """A fitted generalized linear mixed model (immutable).

    Attributes
    ----------
    formula : str
        The model in lme4's notation.
    family : {"binomial", "poisson", "negative_binomial"}
    link : {"logit", "log"}
    n_agq : int
        Quadrature nodes per group (1 = the Laplace approximation).
    fixed : pandas.DataFrame
        Fixed effects on the link scale (log-odds or log-rate): ``term, estimate, std_error,
        statistic, p_value, ci_low, ci_high``. Standard errors come from the Hessian of the
        (Laplace or quadrature) deviance in the covariance parameters and the fixed effects
        jointly, as glmer's default ``use.hessian = TRUE``; Wald z tests and intervals.
        :meth:`ratios` gives them as odds or rate ratios.
    loglik : float
        The maximised log-likelihood (approximation), normalising constants included (for
        ``nAGQ > 1`` glmer reports it relative to the saturated model instead).
    aic, bic : float
        ``-2 loglik + 2 k`` and ``-2 loglik + k log(n_obs)``, ``k`` the fixed effects plus the
        covariance parameters (plus the negative-binomial ``k``), as lme4.
    n_obs : int
    converged : bool
        lme4's convergence check passed (scaled gradient, Hessian) and no move off a
        boundary lowers the deviance.
    singular : bool
        A variance is estimated at zero or a correlation at +-1.
    conf_level : float
    optimizer : str
    messages : tuple of str
        What the convergence check reported.
    nb_size : float or None
        The negative-binomial ``k`` (glmer.nb's ``theta``): ``Var(y | b) = mu + mu^2 / k``.
    """

    formula: str
    family: str
    link: str
    n_agq: int
    fixed: pd.DataFrame
    loglik: float
    aic: float
    bic: float
    n_obs: int
    converged: bool
    singular: bool
    conf_level: float
    optimizer: str
    messages: tuple = ()
    nb_size: float | None = None
    _design: Design = field(repr=False, compare=False, default=None)
    _engine: _glmm.GLMMFitEngine = field(repr=False, compare=False, default=None)

    # the structure, shared with the linear models' result
    levels = MixedFit.levels
    ngroups = MixedFit.ngroups
    _single = MixedFit._single
    group = MixedFit.group
    n_groups = MixedFit.n_groups
    diagonal = MixedFit.diagonal
    taus = MixedFit.taus
    tau = MixedFit.tau
    theta = MixedFit.theta
    params = MixedFit.params
    data = MixedFit.data
    outcome = MixedFit.outcome
    fingerprint = MixedFit.fingerprint
    matrices = MixedFit.matrices
    vcov = MixedFit.vcov
    _terms_of = MixedFit._terms_of
    random_effects = MixedFit.random_effects
    group_coefficients = MixedFit.group_coefficients
    _predict_link = MixedFit.predict

    @property
    def n_params(self) -> int:
        """Fixed effects, covariance parameters and (negative binomial) ``k``."""
        k = sum(_engine.Layout.of(t.q, t.blocks).size for t in self._design.terms)
        return len(self.fixed) + k + (self.nb_size is not None)

    # --- variance components -------------------------------------------------------------

    def variance_components(self) -> pd.DataFrame:
        """Variances and covariances of the random effects on the link scale.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``tau00, tau11, ..., tau01`` (prefixed by the grouping factor when
            there are several), columns ``level, description, estimate, std_dev,
            correlation``, as :meth:`mlm_lessons.MixedFit.variance_components` without the
            residual row (a GLMM has no residual variance on the link scale).
        """
        return _components_frame(_covariance_rows(self._design.terms, self._engine.T))

    def _random_variance(self) -> np.ndarray:
        """Per row, the variance of ``sum_t z_t' b_t`` (Johnson 2014 for random slopes)."""
        d = self._design
        v = np.zeros(d.n)
        for t, T in zip(d.terms, self._engine.T):
            v += np.einsum("ia,ab,ib->i", t.Z, T, t.Z)
        return v

    def distribution_variance(self, method: str = "lognormal") -> float:
        r"""The observation-level variance on the latent (link) scale.

        Binomial with the logit link: :math:`\pi^2/3` (the latent-variable threshold model).
        Poisson, log link (Nakagawa, Johnson and Schielzeth 2017): ``"lognormal"``
        :math:`\log(1 + 1/\lambda)`, ``"trigamma"`` :math:`\psi_1(\lambda)` or ``"delta"``
        :math:`1/\lambda`; negative binomial the same with :math:`1/\lambda + 1/k` in place
        of :math:`1/\lambda`. :math:`\lambda = \exp(\bar\eta + \sigma^2_b / 2)` is the mean
        count, with :math:`\bar\eta` the mean of the fixed part of the linear predictor
        (offset included) over the fitted rows and :math:`\sigma^2_b` the mean random-effect
        variance of the rows.
        """
        if self.family == "binomial":
            return float(_LATENT_VAR)
        method = check_choice(method, "method", ("lognormal", "trigamma", "delta"))
        d = self._design
        eta = d.X @ self._engine.beta if d.p else np.zeros(d.n)
        if d.offset is not None:
            eta = eta + d.offset
        lam = float(np.exp(np.mean(eta) + np.mean(self._random_variance()) / 2))
        inv = 1.0 / lam + (0.0 if self.nb_size is None else 1.0 / self.nb_size)
        if method == "lognormal":
            return float(np.log1p(inv))
        if method == "trigamma":
            return float(special.polygamma(1, 1.0 / inv))
        return float(inv)

    def variance_partition(self, method: str = "lognormal") -> pd.DataFrame:
        """Share of the latent-scale variance at each level (random intercepts only).

        The random-intercept variances and the observation-level variance of
        :meth:`distribution_variance` (``pi^2/3`` for the logit link).

        Returns
        -------
        pandas.DataFrame
            ``level, variance, share``: the grouping factors in formula order, then
            ``observation``.
        """
        v = MixedFit._intercept_variances(self, "the variance partition")
        v["observation"] = self.distribution_variance(method)
        total = sum(v.values())
        return pd.DataFrame({"level": list(v), "variance": list(v.values()),
                             "share": [x / total for x in v.values()]})

    def icc(self, level: str | None = None, *, method: str = "lognormal") -> float:
        """Latent-scale intra-class correlation of two rows that share a group of ``level``.

        ``tau00 / (tau00 + pi^2/3)`` for a logistic random-intercept model; with several
        factors, the variances of ``level`` and of the factors it is nested in, over the total
        (:meth:`variance_partition`); for counts the observation-level variance is that of
        :meth:`distribution_variance`.
        """
        v = MixedFit._intercept_variances(self, "the ICC")
        terms = self._design.terms
        if level is None:
            level = self._single("fit.icc() without level=").group
        term = self._design.term(level)
        total = sum(v.values()) + self.distribution_variance(method)
        shared = sum(v[t.group] for t in terms if _engine._is_nested(_as_re(term), _as_re(t)))
        return float(shared / total)

    def r2(self, method: str = "lognormal") -> pd.Series:
        r"""Nakagawa and Schielzeth's marginal and conditional R squared for GLMMs.

        :math:`R^2_m = \sigma^2_f / (\sigma^2_f + \sigma^2_b + \sigma^2_d)` and
        :math:`R^2_c = (\sigma^2_f + \sigma^2_b) / (\sigma^2_f + \sigma^2_b + \sigma^2_d)`:
        :math:`\sigma^2_f` the variance of the fixed part :math:`X\hat\beta` over the rows,
        :math:`\sigma^2_b` the mean over the rows of :math:`\sum_t z_t' T_t z_t` (Johnson's
        2014 extension to random slopes), :math:`\sigma^2_d` of
        :meth:`distribution_variance` (``method`` selects the Poisson / negative-binomial
        variant of Nakagawa, Johnson and Schielzeth 2017; the logit link uses
        :math:`\pi^2/3`).

        Returns
        -------
        pandas.Series
            ``marginal`` and ``conditional``.

        References
        ----------
        Nakagawa, S. and Schielzeth, H. (2013). A general and simple method for obtaining R2
        from generalized linear mixed-effects models. *Methods Ecol. Evol.* 4, 133-142.
        Nakagawa, S., Johnson, P. C. D. and Schielzeth, H. (2017). The coefficient of
        determination R2 and intra-class correlation coefficient from generalized linear
        mixed-effects models revisited and expanded. *J. R. Soc. Interface* 14, 20170213.
        """
        d = self._design
        fixed = d.X @ self._engine.beta if d.p else np.zeros(d.n)
        var_f = float(np.var(fixed, ddof=1)) if d.n > 1 else 0.0
        var_b = float(np.mean(self._random_variance()))
        var_d = self.distribution_variance(method)
        total = var_f + var_b + var_d
        return pd.Series({"marginal": var_f / total, "conditional": (var_f + var_b) / total},
                         name="r2")

    # --- fixed effects as ratios ---------------------------------------------------------

    def ratios(self) -> pd.DataFrame:
        """Fixed effects as odds ratios (binomial) or rate ratios (counts), with intervals.

        Returns
        -------
        pandas.DataFrame
            ``term, ratio, ci_low, ci_high, p_value``: ``exp`` of the estimates and of their
            Wald limits (at ``conf_level``). The intercept row is the odds (rate) at all
            predictors 0.
        """
        f = self.fixed
        return pd.DataFrame({"term": f["term"], "ratio": np.exp(f["estimate"]),
                             "ci_low": np.exp(f["ci_low"]), "ci_high": np.exp(f["ci_high"]),
                             "p_value": f["p_value"]})

    def odds_ratios(self) -> pd.DataFrame:
        """:meth:`ratios` of a binomial model (odds ratios)."""
        if self.family != "binomial":
            raise ValueError(f"odds ratios belong to binomial models; this is a {self.family} "
                             f"model: use rate_ratios()")
        return self.ratios()

    def rate_ratios(self) -> pd.DataFrame:
        """:meth:`ratios` of a count model (rate ratios)."""
        if self.family == "binomial":
            raise ValueError("rate ratios belong to count models; this is a binomial model: "
                             "use odds_ratios()")
        return self.ratios()

    # --- predictions -----------------------------------------------------------------------

    def _inverse_link(self, eta):
        return special.expit(eta) if self.link == "logit" else np.exp(eta)

    def predict(self, data: pd.DataFrame | None = None, *, conditional: bool = True,
                scale: str = "response", allow_new_levels: bool = False) -> pd.Series:
        """Predictions with the random effects at their conditional modes, or at zero.

        Parameters
        ----------
        data : pandas.DataFrame, optional
            New rows; the fitted data when omitted.
        conditional : bool, default True
            Add each group's conditional modes (lme4's ``re.form=NULL``); False sets every
            random effect to 0: the prediction for a typical group (``re.form=NA``), not the
            population average (see :meth:`marginal_mean`).
        scale : {"response", "link"}
            Probabilities (binomial; per trial) or expected counts, or the linear predictor.
        allow_new_levels : bool, default False
            Groups not in the fitted data get random effects of zero.
        """
        check_choice(scale, "scale", ("response", "link"))
        eta = self._predict_link(data, conditional=conditional,
                                 allow_new_levels=allow_new_levels)
        if scale == "link":
            return eta.rename("link")
        name = "probability" if self.family == "binomial" else "expected_count"
        return pd.Series(self._inverse_link(eta.to_numpy()), index=eta.index, name=name)

    def marginal_mean(self, data: pd.DataFrame | None = None, *, n_nodes: int = 40) -> pd.Series:
        r"""Population-averaged mean: the response averaged over the random effects.

        :math:`E[g^{-1}(x'\beta + z'b)]` with :math:`b \sim N(0, T)` of every factor, by
        Gauss-Hermite quadrature over the normal variable :math:`z'b` (variance
        :math:`\sum_t z_t' T_t z_t`; ``n_nodes`` nodes). For the log link this is the closed
        form :math:`\exp(x'\beta + v/2)`. These are the probabilities a population-averaged
        model (:func:`fit_gee`) describes.
        """
        n_nodes = check_count(n_nodes, "n_nodes")
        eta = self._predict_link(data, conditional=False)
        d = self._design
        if data is None:
            Zs = [t.Z for t in d.terms]
        else:
            Zs = [t.Z_for(data) for t in d.terms]
        v = np.zeros(len(eta))
        for Z, T in zip(Zs, self._engine.T):
            v += np.einsum("ia,ab,ib->i", Z, T, Z)
        e = eta.to_numpy()
        if self.link == "log":
            out = np.exp(e + v / 2)
        else:
            x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
            out = special.expit(e[:, None] + np.sqrt(v)[:, None] * x[None, :]) @ (w / w.sum())
        name = "probability" if self.family == "binomial" else "expected_count"
        return pd.Series(out, index=eta.index, name=name)

    def fitted(self) -> pd.Series:
        """Conditional fitted means on the fitted data (lme4's ``fitted``)."""
        return self.predict()

    def residuals(self, *, kind: str = "pearson") -> pd.Series:
        """Conditional residuals on the fitted data: ``"pearson"`` or ``"response"``.

        Pearson: ``(y - mu) / sqrt(Var(y | b))`` with ``y`` and ``mu`` on the count scale
        (successes for binomial outcomes with trials).
        """
        check_choice(kind, "kind", ("pearson", "response"))
        d = self._design
        trials = self._trials()
        mu = self._inverse_link(self._engine.eta)
        r = d.y - trials * mu if self.family == "binomial" else d.y - mu
        if kind == "pearson":
            r = r / np.sqrt(self._engine.family.variance(mu, trials))
        return pd.Series(r, index=d.data.index, name="residual")

    def _trials(self) -> np.ndarray:
        d = self._design
        return np.ones(d.n) if d.trials is None else d.trials

    def overdispersion(self) -> pd.Series:
        """Pearson chi-square over the residual degrees of freedom (counts and trials).

        ``pearson_chisq`` = sum of squared Pearson residuals (conditional on the modes),
        ``df_residual`` = rows minus :attr:`n_params`, ``ratio`` their quotient (about 1 when
        the family's variance fits), ``p_value`` of the chi-square test of ``ratio > 1``.
        Computed as glmer's ``sum(residuals(m, "pearson")^2) / df.residual(m)``.
        """
        if self.family == "binomial" and self._design.trials is None:
            raise ValueError("overdispersion is not defined for 0/1 outcomes (their variance "
                             "is fixed by the mean); it is for counts and successes of trials")
        chi2 = float(np.sum(self.residuals(kind="pearson").to_numpy() ** 2))
        df = self.n_obs - self.n_params
        return pd.Series({"pearson_chisq": chi2, "df_residual": float(df),
                          "ratio": chi2 / df if df > 0 else np.nan,
                          "p_value": float(stats.chi2.sf(chi2, df)) if df > 0 else np.nan},
                         name="overdispersion")

    # --- refits and simulation ---------------------------------------------------------------

    def refit(self, y=None) -> GLMMFit:
        """The same model with another response (successes for binomial with trials).

        The design is reused and the optimizer starts at this fit's estimates.
        """
        if y is None:
            return self
        design = self._design.with_response(y)
        check_glmm_outcome(design, self.family)
        return _fit(design, self.family, self.n_agq, self.conf_level,
                    start=self._engine.opt.theta)

    def simulate(self, n_sims: int, *, seed) -> np.ndarray:
        """New outcome vectors drawn from the fitted model (its estimates as the truth).

        Returns an array of shape ``(n_sims, n_obs)``: 0/1 outcomes, successes out of the
        fitted trials, or counts. ``b ~ N(0, T)`` per factor and group, then ``y`` given
        ``b`` from the family.
        """
        n_sims = check_count(n_sims, "n_sims")
        rng = np.random.default_rng(check_seed(seed))
        d = self._design
        mean = d.X @ self._engine.beta if d.p else np.zeros(d.n)
        if d.offset is not None:
            mean = mean + d.offset
        factors = [_cov_factor(T) for T in self._engine.T]
        trials = self._trials().astype(np.int64)
        out = np.empty((n_sims, d.n))
        for s in range(n_sims):
            eta = mean.copy()
            for t, A in zip(d.terms, factors):
                b = rng.standard_normal((t.n_levels, t.q)) @ A.T
                eta += np.einsum("iq,iq->i", t.Z, b[t.codes])
            mu = self._inverse_link(eta)
            if self.family == "binomial":
                out[s] = rng.binomial(trials, mu)
            elif self.family == "poisson":
                out[s] = rng.poisson(mu)
            else:
                k = self.nb_size
                out[s] = rng.poisson(rng.gamma(k, mu / k))
        return out

    def deviance_function(self, params) -> float:
        """-2 log L at ``params = (theta, beta[, log k])`` on the engine's internal scale.

        For probing the optimum (the engine's own standardised parametrisation: centred and
        scaled columns); ``fit.deviance_function(fit.internal_params)`` is ``-2 loglik``.
        """
        params = check_real_array(params, "params")
        size = len(self._engine.opt.theta)
        if params.shape != (size,):
            raise ValueError(f"params must have {size} values (theta, beta[, log k]), not "
                             f"{params.shape}")
        return float(self._engine.gp.deviance(params))

    @property
    def internal_params(self) -> np.ndarray:
        """The optimum in the engine's parametrisation (see :meth:`deviance_function`)."""
        return self._engine.opt.theta.copy()

    # --- tables ------------------------------------------------------------------------------

    def summary(self) -> pd.DataFrame:
        """Fixed effects (link scale) and variance components in one table."""
        fx = self.fixed.set_index("term")[["estimate", "std_error", "statistic", "p_value"]]
        fx.index = pd.MultiIndex.from_product([["Fixed effects"], fx.index])
        vc = self.variance_components()
        rnd = vc[["estimate", "std_dev", "correlation"]].copy()
        rnd.index = pd.MultiIndex.from_tuples(
            [("Random effects", f"{c}: {d}") for c, d in zip(vc.index, vc["description"])]
        )
        out = pd.concat([fx, rnd])
        out = out.loc[:, out.notna().any()]
        out.index.names = ["part", "parameter"]
        return out

    def _display_fields(self):
        groups = ", ".join(f"{g}: {n}" for g, n in self.ngroups.items())
        vc = self.variance_components()[["level", "description", "estimate", "std_dev",
                                         "correlation"]]
        fields = [
            ("formula", self.formula, None),
            ("family", self.family, None),
            ("link", self.link, None),
            ("n_agq", self.n_agq, None),
            ("n_obs", self.n_obs, None),
            ("groups", groups, None),
            ("loglik", self.loglik, ".4f"),
            ("aic", self.aic, ".2f"),
            ("converged", self.converged, None),
            ("singular", self.singular, None),
            ("fixed", self.fixed, None),
            ("variance components", vc.loc[:, vc.notna().any()], None),
        ]
        if self.nb_size is not None:
            fields.insert(4, ("nb_size", self.nb_size, None))
        return fields

    def __repr__(self) -> str:
        groups = ", ".join(f"{g}: {n}" for g, n in self.ngroups.items())
        return (f"{type(self).__name__}({self.formula!r}, family={self.family!r}, "
                f"n_agq={self.n_agq}, n_obs={self.n_obs}, groups=({groups}), "
                f"loglik={self.loglik:.4f})")


@dataclass(frozen=True, eq=False)
class LogisticMixedFit(GLMMFit):
    """A random-intercept logistic regression (:func:`fit_logistic_mixed`): a
    :class:`GLMMFit` with the course's names ``tau2`` and ``icc_latent()``."""

    @property
    def tau2(self) -> float:
        """Variance of the random intercepts (log-odds scale)."""
        return float(self._engine.T[0][0, 0])

    def icc_latent(self) -> float:
        """ICC on the latent scale: ``tau2 / (tau2 + pi^2 / 3)``."""
        return self.tau2 / (self.tau2 + _LATENT_VAR)


# --- fitting -------------------------------------------------------------------------------------


def _fit(design: Design, family: str, n_agq: int, conf_level: float, *, start=None,
         cls=GLMMFit) -> GLMMFit:
    check_glmm_design(design, family)
    check_separation(design, family)
    trials = np.ones(design.n) if design.trials is None else design.trials
    eng = _glmm.fit_glmm_engine(_glmm.Family(family), design.y, trials, design.X,
                                [_as_re(t) for t in design.terms], design.offset,
                                n_agq=n_agq, start=start)
    loglik = -eng.deviance / 2
    fixed = _fixed_table(design.fixed_names, eng.beta, eng.vcov, conf_level)
    nb = family == "negative_binomial"
    k = design.p + sum(_engine.Layout.of(t.q, t.blocks).size for t in design.terms) + nb
    aic, bic = _aic_bic(loglik, k, design.n)
    conv = eng.opt.convergence
    fit = cls(
        formula=str(design.formula),
        family=family,
        link="logit" if family == "binomial" else "log",
        n_agq=n_agq,
        fixed=fixed,
        loglik=float(loglik),
        aic=aic,
        bic=bic,
        n_obs=design.n,
        converged=bool(conv.ok),
        singular=bool(conv.singular),
        conf_level=conf_level,
        optimizer=eng.opt.optimizer,
        messages=conv.messages,
        nb_size=float(eng.size) if nb else None,
        _design=design,
        _engine=eng,
    )
    _warn_if_needed(fit)
    return fit


def _warn_if_needed(fit: GLMMFit) -> None:
    eng = fit._engine
    se_s = np.sqrt(np.clip(np.diag(eng.vcov_s), 0, None)) if len(eng.beta_s) else np.zeros(0)
    names = list(fit._design.fixed_names)
    big = [names[j] for j in range(len(names)) if names[j] != "Intercept"
           and (abs(eng.beta_s[j]) > NEAR_SEPARATION or se_s[j] > NEAR_SEPARATION)]
    if big:
        warn(
            f"near separation: the estimate(s) of {', '.join(map(repr, big))} are huge and "
            f"poorly determined (more than {NEAR_SEPARATION:g} on the log scale per standard "
            f"deviation of the predictor, or such a standard error); a category or range of "
            f"the predictor has (almost) only one outcome. Combine sparse categories, or use "
            f"penalised (Firth) or Bayesian estimation",
            SeparationWarning,
        )
    if fit.singular:
        warn(
            f"boundary (singular) fit: "
            f"{boundary_description(fit._design.terms, fit._engine.T, 1.0)}. "
            f"This is the maximum of "
            f"the likelihood (no move into the interior improves it): the data do not "
            f"support this random part. Simplify it (drop that random effect, or use "
            f"uncorrelated effects with ||)",
            BoundaryWarning,
        )
    if not fit.converged:
        warn(
            f"the optimizer did not converge: {'; '.join(fit.messages)} (after trying "
            f"several optimizers and starting points). Rescale predictors (e.g. age in "
            f"decades) or simplify the random part",
            ConvergenceWarning,
        )
    if fit.family != "binomial" or fit._design.trials is not None:
        od = fit.overdispersion()
        if od["ratio"] > OVERDISPERSION_RATIO and od["p_value"] < 0.01:
            what = ("family='negative_binomial', or an observation-level random effect "
                    "(1 | row id)") if fit.family == "poisson" else \
                "an observation-level random effect (1 | row id)"
            warn(
                f"overdispersion: the Pearson chi-square is {od['ratio']:.2f} times its "
                f"{od['df_residual']:.0f} residual degrees of freedom (p = "
                f"{od['p_value']:.2g}), so the standard errors are too small; use {what}",
                OverdispersionWarning,
            )


def _glmm_formula(formula: str, offset: str | None) -> str:
    if offset is None:
        return formula
    check_name(offset, "offset")
    lhs, sep, rhs = formula.partition("~")
    if not sep:
        return formula
    return f"{lhs}~{rhs} + offset({offset})"


def _apply_weights(design: Design, data: pd.DataFrame, weights: str | None,
                   family: str) -> Design:
    if weights is None:
        return design
    check_name(weights, "weights")
    if family != "binomial":
        raise ValueError(
            f"weights= gives the trials of a binomial outcome given as proportions; "
            f"family={family!r} takes no weights (for exposures use an offset)"
        )
    if design.trials is not None:
        raise ValueError("weights= goes with a proportion outcome; the formula already gives "
                         "the trials with cbind(successes, failures)")
    check_columns(data, [weights], role="weights column")
    check_numeric(data, weights, role="weights column")
    check_no_missing(data, [weights])
    w = data.loc[design.data.index, weights].to_numpy(dtype=float)
    if np.any(w < 0):
        raise ValueError(f"weights column {weights!r} has negative trials "
                         f"({_fmt(w[w < 0])}); trials are counts >= 0")
    y = design.y
    if np.any((y < 0) | (y > 1)):
        raise ValueError(
            f"with weights= the outcome {design.outcome!r} must be a proportion between 0 and "
            f"1; found {_fmt(y[(y < 0) | (y > 1)])}"
        )
    succ = y * w
    rounded = np.round(succ)
    if np.any(np.abs(succ - rounded) > 1e-6 * np.maximum(1, w)):
        raise ValueError(
            f"proportion x trials ({design.outcome!r} x {weights!r}) is not a whole number "
            f"in some rows (e.g. {_fmt(succ[np.abs(succ - rounded) > 1e-6])}); the weights "
            f"must be the numbers of trials"
        )
    return dataclasses.replace(design, y=rounded, trials=w)


def _fmt(v) -> str:
    return ", ".join(f"{x:g}" for x in np.asarray(v)[:3])


@single_blas_thread
def fit_glmm(
    data: pd.DataFrame,
    formula: str,
    *,
    family: str = "binomial",
    n_agq: int = 1,
    weights: str | None = None,
    offset: str | None = None,
    conf_level: float = 0.95,
) -> GLMMFit:
    r"""Fit a generalized linear mixed model by maximum likelihood (Laplace or quadrature).

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per observation. Not modified.
    formula : str
        lme4's notation: ``"y ~ x + (1 + x | school)"``, ``(1 | a/b)``, ``(1 | a) + (1 | b)``,
        ``(x || g)``; a binomial outcome as successes out of trials is
        ``"cbind(successes, failures) ~ ..."``; an exposure ``+ offset(log(exposure))``.
    family : {"binomial", "poisson", "negative_binomial"}, default "binomial"
        Logit link for binomial outcomes, log link for counts. The negative binomial
        (lme4's ``glmer.nb``) estimates its ``k`` jointly with the other parameters.
    n_agq : int, default 1
        1 for the Laplace approximation; more for adaptive Gauss-Hermite quadrature with that
        many nodes per group (one scalar random effect only, as glmer).
    weights : str, optional
        Binomial outcomes given as proportions: the column of the numbers of trials.
    offset : str, optional
        A column added to the linear predictor with coefficient 1 (e.g. a log exposure); the
        same as ``+ offset(column)`` in the formula.
    conf_level : float, default 0.95
        Level of the Wald intervals of the fixed effects.

    Returns
    -------
    GLMMFit

    Raises
    ------
    KeyError, TypeError
        A column is missing, or an argument has the wrong type.
    ValueError
        An unknown family; an outcome the family cannot have (not 0/1, negative or
        non-integer counts, negative trials, successes above trials); a grouping factor with
        one row per group for a 0/1 outcome; ``n_agq`` not a positive integer or above 1 with
        more than one random effect; ``conf_level`` outside (0, 1).
    SeparationError
        (a ``ValueError``) The outcome is separated by the fixed effects, so the
        maximum-likelihood estimate of an effect is infinite; the message names the
        predictor(s).

    Warns
    -----
    SeparationWarning
        Near separation: a finite but huge, poorly determined fixed effect.
    OverdispersionWarning
        Counts (or successes out of trials) vary much more than the family allows.
    BoundaryWarning, ConvergenceWarning
        As :func:`mlm_lessons.fit_mixed`.

    Notes
    -----
    The model is :math:`g(E[y_i \mid b]) = o_i + x_i'\beta + \sum_t z_{ti}' b_{t,g(i)}` with
    :math:`b_{tj} \sim N(0, T_t)`. For each value of the covariance parameters and
    :math:`\beta`, penalised iteratively reweighted least squares (PIRLS) finds the
    conditional modes of the random effects; each of its steps is a penalised weighted
    least-squares problem solved by the package's linear engine (the blocked Cholesky of
    :func:`mlm_lessons.fit_mixed`, so nested and crossed factors are handled alike). The
    Laplace approximation of the marginal likelihood follows, or adaptive Gauss-Hermite
    quadrature around each group's mode (Pinheiro and Bates 1995). As in glmer, the
    criterion is first optimised with :math:`\beta` inside PIRLS, then over the covariance
    parameters and :math:`\beta` jointly, with lme4's convergence check and the
    boundary test of the linear engine. Standard errors come from the Hessian of this
    deviance in all the parameters (glmer's default); PIRLS is converged far enough
    (:math:`|\Delta u| < 10^{-11}`) for the finite-difference Hessian to be accurate.

    Validated against glmer (lme4 1.1-31) on 41 fits of 10 data sets (binary, binomial with
    trials, Poisson with offsets, negative binomial, random slopes, crossed and three-level
    factors, Laplace and quadrature with 5 to 25 nodes), against an independent R
    implementation of the Laplace and quadrature deviance with its numerical Hessian, and
    against brute-force quadrature (``tests/test_glmm_reference.py``); coverage of the
    intervals by simulation (``tests/test_glmm_coverage.py``).

    References
    ----------
    Bates, D., Maechler, M., Bolker, B. and Walker, S. (2015). Fitting linear mixed-effects
    models using lme4. *Journal of Statistical Software* 67(1).
    Pinheiro, J. C. and Bates, D. M. (1995). Approximations to the log-likelihood function
    in the nonlinear mixed-effects model. *J. Comput. Graph. Stat.* 4, 12-35.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> cc = mlm.load_dataset("contraception")
    >>> fit = mlm.fit_glmm(cc, "use ~ urban + (1 + urban | district)")
    >>> fit.fixed[["term", "estimate"]].round(2)
            term  estimate
    0  Intercept     -0.72
    1      urban      0.74
    >>> fit.odds_ratios()["ratio"].round(2).tolist()
    [0.49, 2.1]
    """
    check_frame(data)
    family = check_family(family)
    conf_level = check_conf_level(conf_level)
    check_formula(formula, "'y ~ x + (1 | g)'")
    design = build_design(data, _glmm_formula(formula, offset))
    design = _apply_weights(design, data, weights, family)
    check_glmm_outcome(design, family)
    n_agq = check_n_agq(n_agq, design)
    return _fit(design, family, n_agq, conf_level)


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

    The course's front end of :func:`fit_glmm`: ``fit_logistic_mixed(data, "y ~ x", "g")``
    is ``fit_glmm(data, "y ~ x + (1 | g)", family="binomial", n_agq=10)``.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format. The outcome must be coded 0/1.
    formula : str
        Fixed part, ``"y ~ x1 + x2"``.
    group : str
        Level-2 identifier; each group gets a random intercept.
    n_agq : int, default 10
        Quadrature nodes per group; 1 is the Laplace approximation.
    conf_level : float, default 0.95

    Returns
    -------
    LogisticMixedFit
        A :class:`GLMMFit` with ``tau2`` and ``icc_latent()``.

    Notes
    -----
    The model is :math:`\operatorname{logit} P(y_{ij} = 1 \mid u_j) = x_{ij}'\gamma + u_j`,
    :math:`u_j \sim N(0, \tau^2)`. Validated against lme4's ``glmer`` with ``nAGQ = 1`` and
    ``nAGQ = 10`` on the Contraception data (``tests/test_glmm.py``).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> cc = mlm.load_dataset("contraception")
    >>> fit = mlm.fit_logistic_mixed(cc, "use ~ urban", "district")
    >>> round(fit.tau2, 2), round(float(fit.params["urban"]), 2)
    (0.19, 0.65)
    """
    check_frame(data)
    check_formula(formula)
    check_name(group, "group")
    conf_level = check_conf_level(conf_level)
    design = build_design(data, design_from_arguments(formula, group, None, False))
    check_glmm_outcome(design, "binomial")
    n_agq = check_n_agq(n_agq, design)
    return _fit(design, "binomial", n_agq, conf_level, cls=LogisticMixedFit)


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
    check_frame(data)
    check_formula(formula)
    check_name(group, "group")
    check_choice(correlation, "correlation", tuple(structures))
    conf_level = check_conf_level(conf_level)
    design = build_design(data, design_from_arguments(formula, group, None, False))
    check_glmm_outcome(design, "binomial", what="a logistic GEE")
    if design.trials is not None:
        raise ValueError("fit_gee models a 0/1 outcome; for successes out of trials use "
                         "fit_glmm(..., family='binomial')")
    check_glmm_design(design, "binomial")
    check_separation(design, "binomial")
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

