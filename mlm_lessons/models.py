"""Linear mixed models: the general fit and the workshop's model stages.

:func:`fit_mixed` fits any linear mixed model: one or several grouping factors, nested
(pupils in classes in schools) or crossed (subjects and items), with random intercepts and
slopes whose covariance is full, diagonal or block diagonal. It takes lme4's formula,
``fit_mixed(data, "y ~ x + (1 + x | school)")``, or the keyword form
``fit_mixed(data, "y ~ x", "school", re_formula="x")``. The stage functions build the
formula of the workshop's ladder of models and call it:

- :func:`fit_null`: one-way ANOVA with random effects (the null model);
- :func:`fit_random_intercept`: level-1 (and level-2) predictors, random intercept;
- :func:`fit_random_coefficient`: random intercept and random slopes;
- :func:`fit_full_model`: level-2 predictors of intercepts and slopes (cross-level
  interactions).

Every fit is a :class:`MixedFit`, whatever the number of levels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from mlm_lessons import _engine
from mlm_lessons._checks import (
    BoundaryWarning,
    ConvergenceWarning,
    check_bool,
    check_conf_level,
    check_frame,
    check_method,
    check_real,
    check_real_array,
    warn,
)
from mlm_lessons._design import Design, build_design, design_from_arguments
from mlm_lessons._display import ResultDisplay
from mlm_lessons._threads import single_blas_thread

__all__ = [
    "embed_theta",
    "DataFingerprint",
    "ModelMatrices",
    "MixedFit",
    "fit_mixed",
    "fit_null",
    "fit_random_intercept",
    "fit_random_coefficient",
    "fit_full_model",
]


@dataclass(frozen=True)
class DataFingerprint(ResultDisplay):
    """What identifies the data a fit used: rows, outcome values and grouping.

    Two fits can be compared (likelihood-ratio tests, model tables) only when their
    fingerprints are equal.
    """

    n_obs: int
    rows: str  # hash of the row labels
    outcome: str  # hash of the outcome values
    groups: dict  # grouping factor -> hash of its partition of the rows

    def differences(self, other: DataFingerprint) -> list[str]:
        out = []
        if self.n_obs != other.n_obs:
            out.append(f"{self.n_obs} rows against {other.n_obs}")
        elif self.rows != other.rows:
            out.append("different rows (row labels differ)")
        if self.n_obs == other.n_obs and self.outcome != other.outcome:
            out.append("different outcome values")
        for g in set(self.groups) & set(other.groups):
            if self.groups[g] != other.groups[g]:
                out.append(f"a different grouping of the rows by {g!r}")
        return out


def _hash(*arrays) -> str:
    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _partition_hash(codes: np.ndarray) -> str:
    """Hash of a partition of the rows that ignores the labels (relabelling changes nothing)."""
    _, first = np.unique(codes, return_index=True)
    rank = np.empty(len(first), dtype=np.intp)
    rank[np.argsort(first)] = np.arange(len(first))
    return _hash(rank[np.searchsorted(np.unique(codes), codes)])


def _fingerprint(design: Design) -> DataFingerprint:
    idx = design.data.index
    try:
        rows = _hash(np.asarray(idx, dtype=np.int64))
    except (TypeError, ValueError):
        rows = _hash(np.asarray(pd.util.hash_pandas_object(idx.to_series(), index=False)))
    return DataFingerprint(
        n_obs=design.n,
        rows=rows,
        outcome=_hash(design.y),
        groups={t.group: _partition_hash(t.codes) for t in design.terms},
    )


@dataclass(frozen=True)
class ModelMatrices(ResultDisplay):
    """Response ``y``, fixed design ``X`` and, per grouping factor, ``Z`` and group labels."""

    y: pd.Series
    X: pd.DataFrame
    Z: dict
    groups: dict

    def _display_fields(self):
        fields = [("y", self.y.describe(), None), ("X", self.X, None)]
        fields += [(f"Z ({g})", Z, None) for g, Z in self.Z.items()]
        return fields


@dataclass(frozen=True, eq=False)
class MixedFit(ResultDisplay):
    """A fitted linear mixed model (immutable); the same contract at every depth.

    Attributes
    ----------
    formula : str
        The model in lme4's notation, ``"y ~ x + (1 + x | school)"``.
    method : {"REML", "ML"}
        The criterion that was maximised.
    fixed : pandas.DataFrame
        One row per fixed effect (gamma): ``term, estimate, std_error, statistic, p_value,
        ci_low, ci_high``. Standard errors are the square roots of the diagonal of
        ``sigma2 (X' V^-1 X)^-1`` at the estimates, with ``V = Var(y) / sigma2`` the
        relative covariance of the outcomes (equivalently ``(X' Var(y)^-1 X)^-1``), as lme4,
        HLM and Stata report them;
        ``statistic`` is the z statistic and ``p_value`` its two-sided normal p.
    sigma2 : float
        The level-1 (residual) variance.
    loglik : float
        The maximised log-likelihood (the REML criterion for REML fits).
    aic, bic : float
        ``-2 loglik + 2 k`` and ``-2 loglik + k log(n_obs)``, with ``k`` the number of
        fixed effects plus covariance parameters plus one, as lme4 computes them. Under
        REML they compare only models with the same fixed part.
    n_obs : int
    converged : bool
        True when lme4's convergence check passes (scaled gradient below 2e-3, no negative
        or zero eigenvalue of the Hessian) and no move off a boundary lowers the deviance.
    singular : bool
        A variance is estimated at zero or a correlation at +-1 (lme4's ``isSingular``).
    conf_level : float
        Level of the intervals in ``fixed``.
    optimizer : str
        The optimizer whose result was kept.
    messages : tuple of str
        What the convergence check reported (empty when all is well).
    """

    formula: str
    method: str
    fixed: pd.DataFrame
    sigma2: float
    loglik: float
    aic: float
    bic: float
    n_obs: int
    converged: bool
    singular: bool
    conf_level: float
    optimizer: str
    messages: tuple = ()
    _design: Design = field(repr=False, compare=False, default=None)
    _engine: _engine.LMMFit = field(repr=False, compare=False, default=None)

    # --- structure -------------------------------------------------------------------------

    @property
    def levels(self) -> tuple[str, ...]:
        """The grouping factors, in the order of the formula (``"a:b"`` for a pair)."""
        return tuple(t.group for t in self._design.terms)

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of groups of each grouping factor (lme4's ``ngrps``)."""
        return {t.group: t.n_levels for t in self._design.terms}

    def _single(self, what: str):
        terms = self._design.terms
        if len(terms) != 1:
            raise ValueError(
                f"this model has several grouping factors ({', '.join(self.levels)}), so "
                f"{what} is ambiguous: use the per-level form (e.g. fit.ngroups[...], "
                f"fit.taus[...], level=...)"
            )
        return terms[0]

    @property
    def group(self) -> str:
        """The grouping factor of a model with one (raises for several)."""
        return self._single("fit.group").group

    @property
    def n_groups(self) -> int:
        """Number of groups of a model with one grouping factor (raises for several)."""
        return self._single("fit.n_groups").n_levels

    @property
    def re_formula(self) -> str:
        """The random part of a model with one grouping factor, e.g. ``"1"`` or ``"1 + x"``."""
        spec = [s for s in self._design.formula.random]
        self._single("fit.re_formula")
        return " + ".join(s.expr for s in spec)

    @property
    def diagonal(self) -> bool:
        """True when every covariance block of every term is a single variance."""
        return all(t.diagonal for t in self._design.terms)

    @property
    def taus(self) -> dict[str, pd.DataFrame]:
        """The covariance matrix T of each grouping factor's random effects."""
        return {
            t.group: pd.DataFrame(T, index=list(t.columns), columns=list(t.columns))
            for t, T in zip(self._design.terms, self._engine.T)
        }

    @property
    def tau(self) -> pd.DataFrame:
        """T of a model with one grouping factor (see :attr:`taus` for several)."""
        t = self._single("fit.tau")
        return self.taus[t.group]

    @property
    def theta(self) -> pd.Series:
        """The relative Cholesky factors, named as lme4's ``getME(fit, "theta")``."""
        names, values = [], []
        for t, th in zip(self._design.terms, self._engine.theta_terms):
            lay = _engine.Layout.of(t.q, t.blocks)
            for r, c, v in zip(lay.rows, lay.cols, th):
                names.append(f"{t.group}.{t.columns[r]}" if r == c
                             else f"{t.group}.{t.columns[r]}.{t.columns[c]}")
                values.append(v)
        return pd.Series(values, index=names, name="theta", dtype=float)

    @property
    def n_params(self) -> int:
        """Number of estimated parameters: fixed effects, covariance parameters, sigma2."""
        k = sum(_engine.Layout.of(t.q, t.blocks).size for t in self._design.terms)
        return len(self.fixed) + k + 1

    @property
    def params(self) -> pd.Series:
        """Fixed-effect estimates as a Series indexed by term."""
        return self.fixed.set_index("term")["estimate"]

    @property
    def data(self) -> pd.DataFrame:
        """A copy of the columns of the data this fit used (later edits of yours change nothing)."""
        return self._design.data.copy()

    @property
    def outcome(self) -> str:
        return self._design.outcome

    @property
    def fingerprint(self) -> DataFingerprint:
        """Rows, outcome and grouping of the fitted data, for comparing fits."""
        return _fingerprint(self._design)

    def matrices(self) -> ModelMatrices:
        """The response and design matrices of the fit, labelled (copies)."""
        d = self._design
        idx = d.data.index
        return ModelMatrices(
            y=pd.Series(d.y.copy(), index=idx, name=d.outcome),
            X=pd.DataFrame(d.X.copy(), index=idx, columns=list(d.fixed_names)),
            Z={t.group: pd.DataFrame(t.Z.copy(), index=idx, columns=list(t.columns))
               for t in d.terms},
            groups={t.group: pd.Series(t.level_labels()[t.codes], index=idx, name=t.group)
                    for t in d.terms},
        )

    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed-effect estimates, ``sigma2 (X' V^-1 X)^-1``, ``V = Var(y)/sigma2``."""
        names = list(self.fixed["term"])
        return pd.DataFrame(self._engine.vcov, index=names, columns=names)

    # --- variance components -------------------------------------------------------------

    def variance_components(self) -> pd.DataFrame:
        """Variance components in the workshop's notation, one row per parameter.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``tau00, tau11, ..., tau01, ..., sigma2`` (prefixed by the grouping
            factor, ``"school: tau00"``, when the model has several), with columns
            ``level`` (the grouping factor; ``"residual"`` for sigma2), ``description``,
            ``estimate`` (variance or covariance), ``std_dev`` (square root of a variance;
            NaN on covariance rows) and ``correlation`` (of a covariance; NaN on variance
            rows).
        """
        rows = _covariance_rows(self._design.terms, self._engine.T)
        rows.append(("sigma2", "residual", "Var(residual)", self.sigma2,
                     np.sqrt(self.sigma2), np.nan))
        return _components_frame(rows)

    def _intercept_variances(self, what: str) -> dict[str, float]:
        out = {}
        for t, T in zip(self._design.terms, self._engine.T):
            if t.q != 1 or t.columns[0] != "Intercept":
                raise ValueError(
                    f"{what} of a random-slope model depends on the predictor value: "
                    f"{t.group!r} has random effects {list(t.columns)}. Use a "
                    f"random-intercept fit (e.g. fit_null) or compute it at chosen values of "
                    f"the predictors from fit.taus"
                )
            out[t.group] = float(T[0, 0])
        return out

    def variance_partition(self) -> pd.DataFrame:
        """Share of the outcome variance at each level (random intercepts only).

        The variance of ``y`` given the fixed part is the sum of the random-intercept
        variances and sigma2; each share is that level's part of it.

        Returns
        -------
        pandas.DataFrame
            ``level, variance, share``, the grouping factors in formula order, then
            ``residual``.
        """
        v = self._intercept_variances("the variance partition")
        v["residual"] = self.sigma2
        total = sum(v.values())
        return pd.DataFrame({"level": list(v), "variance": list(v.values()),
                             "share": [x / total for x in v.values()]})

    def icc(self, level: str | None = None) -> float:
        """Intra-class correlation of two observations that share a group of ``level``.

        With one grouping factor: ``tau00 / (tau00 + sigma2)``. With several (random
        intercepts only), the correlation of two rows in the same group of ``level`` and,
        where factors are nested, necessarily in the same groups of the factors ``level``
        is nested in; factors crossed with ``level`` are not shared.

        Raises
        ------
        ValueError
            If a factor has random slopes (the share then depends on the predictor's
            value), or ``level`` is missing or unknown in a model with several factors.
        """
        v = self._intercept_variances("the ICC")
        terms = self._design.terms
        if level is None:
            level = self._single("fit.icc() without level=").group
        term = self._design.term(level)
        total = sum(v.values()) + self.sigma2
        shared = sum(v[t.group] for t in terms if _engine._is_nested(_as_re(term), _as_re(t)))
        return shared / total

    # --- random effects --------------------------------------------------------------------

    def _terms_of(self, level):
        if level is None:
            return list(self._design.terms)
        return [self._design.term(level)]  # (which checks the type of level)

    @single_blas_thread
    def random_effects(self, level: str | None = None) -> pd.DataFrame:
        """Empirical Bayes (BLUP) estimates of the random effects, with conditional SEs.

        Parameters
        ----------
        level : str, optional
            A grouping factor; all of them when omitted.

        Returns
        -------
        pandas.DataFrame
            Long format, one row per group and random-effect term: ``level, group, term,
            estimate, std_error``. ``std_error`` is the conditional standard deviation
            given the estimated fixed effects (lme4's ``condVar``).
        """
        modes, cov = self._engine.modes(), self._engine.condcov()
        frames = []
        for t in self._terms_of(level):
            i = self._design.terms.index(t)
            u, C = modes[i], cov[i]
            sd = np.sqrt(np.maximum(C[:, np.arange(t.q), np.arange(t.q)], 0.0))
            frames.append(pd.DataFrame({
                "level": t.group,
                "group": np.repeat(t.level_labels(), t.q),
                "term": np.tile(list(t.columns), t.n_levels),
                "estimate": u.ravel(),
                "std_error": sd.ravel(),
            }))
        return pd.concat(frames, ignore_index=True)

    def group_coefficients(self, level: str | None = None) -> pd.DataFrame:
        """Each group's own intercept and slopes: fixed effect plus that level's BLUP.

        Returns
        -------
        pandas.DataFrame
            One row per group of ``level`` (required when the model has several factors),
            one column per random-effect term. Only terms that are also fixed effects get
            the fixed part added; other levels' effects and level-2 predictors are not
            included (use :meth:`predict` for fitted values). lme4's ``coef()``.
        """
        if level is None:
            level = self._single("group_coefficients() without level=").group
        t = self._terms_of(level)[0]
        i = self._design.terms.index(t)
        out = pd.DataFrame(self._engine.modes()[i], columns=list(t.columns),
                           index=pd.Index(t.level_labels(), name=t.group))
        params = self.params
        for term in out.columns:
            if term in params.index:
                out[term] = out[term] + params[term]
        return out

    def predict(self, data: pd.DataFrame | None = None, *, conditional: bool = True,
                allow_new_levels: bool = False) -> pd.Series:
        """Predicted outcome.

        Parameters
        ----------
        data : pandas.DataFrame, optional
            New rows; the fitted data when omitted.
        conditional : bool, default True
            Add each group's BLUPs (``X beta + sum_t Z_t b_t``, lme4's ``re.form=NULL``);
            False gives the population average ``X beta`` (``re.form=NA``).
        allow_new_levels : bool, default False
            As lme4's ``allow.new.levels``: groups not in the fitted data get random
            effects of zero (their prediction is the population average at that level).
            When False, such groups raise ``ValueError``.
        """
        check_bool(conditional, "conditional")
        check_bool(allow_new_levels, "allow_new_levels")
        d = self._design
        if data is None:
            new = d.data
        else:
            from mlm_lessons._checks import check_new_data

            new = check_new_data(data, d, self.levels if conditional else ())
        X = d.x_builder.build(new)
        pred = X @ self._engine.beta if X.shape[1] else np.zeros(len(new))
        if d.offset is not None:
            pred = pred + (d.offset if data is None else d.offset_for(new))
        if conditional:
            modes = self._engine.modes()
            for i, t in enumerate(d.terms):
                codes = t.codes if data is None else t.codes_for(new)
                unseen = codes < 0
                if unseen.any() and not allow_new_levels:
                    from mlm_lessons._design import group_key

                    labels = pd.unique(np.asarray(
                        group_key(new.loc[unseen], t.group_columns), dtype=object))[:5]
                    raise ValueError(
                        f"{int(unseen.sum())} row(s) of data belong to groups of {t.group!r} "
                        f"that are not in the fitted data (e.g. {', '.join(map(str, labels))});"
                        f" pass allow_new_levels=True to predict them at the population "
                        f"average of that level, or conditional=False"
                    )
                Z = t.Z if data is None else t.Z_for(new)
                known = ~unseen
                pred[known] += np.einsum("ij,ij->i", Z[known], modes[i][codes[known]])
        return pd.Series(pred, index=new.index, name="predicted")

    def fitted(self) -> pd.Series:
        """Conditional fitted values on the fitted data (lme4's ``fitted``)."""
        return self.predict()

    def residuals(self, *, conditional: bool = True) -> pd.Series:
        """Level-1 residuals ``y - prediction`` on the fitted data."""
        y = pd.Series(self._design.y, index=self._design.data.index)
        return (y - self.predict(conditional=conditional)).rename("residual")

    # --- refits and simulation ---------------------------------------------------------------

    @single_blas_thread
    def refit(self, y=None, *, method: str | None = None) -> MixedFit:
        """The same model with another response and/or criterion.

        Parameters
        ----------
        y : array-like, optional
            A new outcome vector, one value per row of the fitted data (e.g. from
            :meth:`simulate`); the fitted outcome when omitted.
        method : {"REML", "ML"}, optional
            The criterion; the fit's own when omitted.

        Notes
        -----
        The design matrices are reused and the optimizer starts at this fit's estimates,
        so a refit is much faster than a new fit.
        """
        method = self.method if method is None else check_method(method)
        if y is None and method == self.method:
            return self
        design = self._design if y is None else self._design.with_response(y)
        eng = _engine.refit_lmm(self._engine, design.y, reml=method == "REML")
        return _make_fit(design, eng, method, self.conf_level, stacklevel_warn=True)

    def simulate(self, n_sims: int, *, seed) -> np.ndarray:
        """New outcome vectors drawn from the fitted model (its estimates as the truth).

        Returns an array of shape ``(n_sims, n_obs)``, rows in the order of the fitted data.
        For each factor and group, ``b ~ N(0, T)``; ``e ~ N(0, sigma2)``; a singular T is
        allowed. ``seed`` is passed to ``numpy.random.default_rng``.
        """
        from mlm_lessons._checks import check_count, check_seed

        n_sims = check_count(n_sims, "n_sims")
        rng = np.random.default_rng(check_seed(seed))
        d = self._design
        mean = d.X @ self._engine.beta if d.p else np.zeros(d.n)
        if d.offset is not None:
            mean = mean + d.offset
        out = np.empty((n_sims, d.n))
        factors = [_cov_factor(T) for T in self._engine.T]
        for s in range(n_sims):
            y = mean + rng.standard_normal(d.n) * np.sqrt(self.sigma2)
            for t, A in zip(d.terms, factors):
                b = rng.standard_normal((t.n_levels, t.q)) @ A.T
                y += np.einsum("iq,iq->i", t.Z, b[t.codes])
            out[s] = y
        return out

    @single_blas_thread
    def drop_groups(self, labels, *, level: str | None = None) -> MixedFit:
        """The same model refitted without the rows of some groups of ``level``."""
        if level is None:
            level = self._single("drop_groups() without level=").group
        t = self._design.term(level)
        labels = list(labels) if isinstance(labels, list | tuple | np.ndarray | pd.Index
                                            | pd.Series) else [labels]
        if not labels:
            raise ValueError(f"labels is empty: name the group(s) of {level!r} to drop")
        pos = t.levels.get_indexer(labels) if not isinstance(t.levels, pd.MultiIndex) else \
            t.levels.get_indexer(labels)
        if np.any(pos < 0):
            bad = [lab for lab, p in zip(labels, pos) if p < 0][:5]
            raise KeyError(f"group(s) {bad} are not groups of {level!r} in the fitted data")
        keep = ~np.isin(t.codes, pos)
        if keep.sum() == 0:
            raise ValueError("dropping these groups leaves no rows")
        design = self._design.subset(keep)
        return _fit_design(design, self.method, self.conf_level, start=None)

    @single_blas_thread
    def objective(self, theta) -> float:
        """The profiled deviance at lme4-style ``theta`` (see :attr:`theta`), for probing."""
        theta = check_real_array(theta, "theta", minimum=None)
        eng = self._engine
        terms = self._design.terms
        sizes = [_engine.Layout.of(t.q, t.blocks).size for t in terms]
        if theta.shape != (sum(sizes),):
            raise ValueError(f"theta must have {sum(sizes)} values, not {theta.shape}")
        parts = np.split(theta, np.cumsum(sizes)[:-1])
        std = []
        for i, j in enumerate(eng.order):  # i: sorted position, j: design position
            t = terms[j]
            lay = _engine.Layout.of(t.q, t.blocks)
            lam = lay.make_lambda(parts[j])
            Ninv = np.linalg.inv(eng.scaling.N[i])
            std.append(lay.theta_of_cov(Ninv @ lam @ lam.T @ Ninv.T))
        dev_s = eng.problem.deviance(np.concatenate(std))
        return eng.scaling.deviance(dev_s, eng.problem.n, eng.problem.p, eng.reml)

    def _std_theta(self, taus_rel: list[np.ndarray]) -> np.ndarray:
        """Standardised theta of the engine from T / sigma2 per term (design order)."""
        eng = self._engine
        terms = self._design.terms
        std = []
        for i, j in enumerate(eng.order):
            t = terms[j]
            Ninv = np.linalg.inv(eng.scaling.N[i])
            std.append(_engine.Layout.of(t.q, t.blocks).theta_of_cov(
                Ninv @ taus_rel[j] @ Ninv.T))
        return np.concatenate(std)

    @single_blas_thread
    def deviance_at(self, taus, sigma2: float) -> float:
        """-2 log-likelihood (the REML criterion for REML fits) at given variance components.

        Parameters
        ----------
        taus : dict of str to array-like
            The covariance matrix T of each grouping factor (as :attr:`taus`); a matrix is
            accepted for a model with one factor.
        sigma2 : float
            The residual variance.

        Notes
        -----
        The fixed effects are at their GLS estimates given these values. At the estimates,
        ``fit.deviance_at(fit.taus, fit.sigma2) == -2 * fit.loglik``.
        """
        terms = self._design.terms
        sigma2 = check_real(sigma2, "sigma2", minimum=0.0, strict_min=True,
                            what="a positive number (the residual variance)")
        if not isinstance(taus, dict):
            taus = {self._single("deviance_at(T) without a dict").group: taus}
        extra = [k for k in taus if k not in [t.group for t in terms]]
        if extra:
            raise KeyError(f"taus has a matrix for {extra[0]!r}, which is not a grouping "
                           f"factor of this model; its factors are {list(self.levels)}")
        mats = []
        for t in terms:
            if t.group not in taus:
                raise KeyError(f"taus has no covariance matrix for {t.group!r}")
            T = check_real_array(taus[t.group], f"the T of {t.group!r}")
            if T.shape != (t.q, t.q) and not (t.q == 1 and T.size == 1):
                raise ValueError(f"T of {t.group!r} must be {t.q} x {t.q}, not {T.shape}")
            T = T.reshape(t.q, t.q)
            if not np.allclose(T, T.T) or np.linalg.eigvalsh((T + T.T) / 2).min() < -1e-12 * max(
                    1.0, np.abs(T).max()):
                raise ValueError(f"T of {t.group!r} must be a covariance matrix (symmetric, "
                                 f"with no negative eigenvalue)")
            mats.append(T / sigma2)
        eng = self._engine
        s2 = eng.scaling.s**2
        dev_s = eng.problem.deviance_sigma(self._std_theta(mats), sigma2 / s2)
        p = eng.problem.p
        dof = eng.problem.n - p if eng.reml else eng.problem.n
        _, logdet_m = np.linalg.slogdet(eng.scaling.M) if p else (1.0, 0.0)
        return float(dev_s + dof * np.log(s2) - (2.0 * logdet_m if eng.reml else 0.0))

    def confint(self, *, method: str = "profile", conf_level: float = 0.95,
                n_boot: int = 500, seed: int = 1) -> pd.DataFrame:
        """Confidence intervals of the standard deviations, correlations and sigma.

        See :func:`mlm_lessons.confint_variance`.
        """
        from mlm_lessons.intervals import confint_variance

        return confint_variance(self, method=method, conf_level=conf_level, n_boot=n_boot,
                                seed=seed)

    # --- tables ------------------------------------------------------------------------------

    def summary(self) -> pd.DataFrame:
        """A table in the workshop's notation: the gammas, then the taus and sigma2.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``(part, parameter)``, columns ``estimate, std_error, statistic,
            p_value`` for the fixed effects and ``estimate, std_dev, correlation`` for the
            variance components (test those with :func:`mlm_lessons.lrt`).
        """
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

    def statsmodels_result(self):
        """The same model as a statsmodels ``MixedLMResults`` (one grouping factor only).

        statsmodels is started at this fit's estimates, so it stays at the optimum found
        here (see the random-coefficient chapter for why its defaults are not used).
        """
        import warnings

        import statsmodels.formula.api as smf
        from statsmodels.regression.mixed_linear_model import MixedLMParams

        t = self._single("statsmodels_result()")
        data = self._design.data
        model = smf.mixedlm(
            f"{self.outcome} ~ {self._design.formula.fixed}", data,
            groups=data[t.group_columns[0]], re_formula="~" + self.re_formula,
        )
        T = self.tau.to_numpy() / self.sigma2
        start = MixedLMParams.from_components(fe_params=self._engine.beta, cov_re=T)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(start_params=start, reml=self.method == "REML", method="bfgs")

    def _display_fields(self):
        groups = ", ".join(f"{g}: {n}" for g, n in self.ngroups.items())
        vc = self.variance_components()[["level", "description", "estimate", "std_dev",
                                         "correlation"]]
        return [
            ("formula", self.formula, None),
            ("method", self.method, None),
            ("n_obs", self.n_obs, None),
            ("groups", groups, None),
            ("loglik", self.loglik, ".4f"),
            ("aic", self.aic, ".2f"),
            ("converged", self.converged, None),
            ("singular", self.singular, None),
            ("fixed", self.fixed, None),
            ("variance components", vc.loc[:, vc.notna().any()], None),
        ]

    def __repr__(self) -> str:
        groups = ", ".join(f"{g}: {n}" for g, n in self.ngroups.items())
        return (f"MixedFit({self.formula!r}, method={self.method!r}, n_obs={self.n_obs}, "
                f"groups=({groups}), loglik={self.loglik:.4f})")


_VARIANCE_COLUMNS = ["component", "level", "description", "estimate", "std_dev", "correlation"]


def _covariance_rows(terms, Ts) -> list[tuple]:
    """The rows of ``variance_components()`` for the random effects of ``terms`` whose
    covariance matrices are ``Ts``: variances with their SDs, then the covariances of each
    block with their correlations; linear and generalized fits share them."""
    rows = []
    several = len(terms) > 1
    for t, T in zip(terms, Ts):
        names = list(t.columns)
        prefix = f"{t.group}: " if several else ""
        for i, name in enumerate(names):
            rows.append((prefix + f"tau{i}{i}", t.group, f"Var({name})", T[i, i],
                         np.sqrt(max(T[i, i], 0.0)), np.nan))
        for b in t.blocks:
            for ii, i in enumerate(b):
                for j in b[ii + 1 :]:
                    denom = np.sqrt(T[i, i] * T[j, j])
                    corr = T[i, j] / denom if denom > 0 else np.nan
                    rows.append((prefix + f"tau{i}{j}", t.group,
                                 f"Cov({names[i]}, {names[j]})", T[i, j], np.nan, corr))
    return rows


def _components_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=_VARIANCE_COLUMNS).set_index("component")


def embed_theta(reduced: MixedFit, full: MixedFit) -> np.ndarray:
    """theta of ``full`` (lme4's scale) at which it equals ``reduced``'s estimate.

    The random effects ``full`` has and ``reduced`` lacks get variance zero; for nested
    models the full model's deviance there equals the reduced model's.
    """
    parts = []
    red = reduced.taus
    for t in full._design.terms:
        cols = list(t.columns)
        Trel = np.zeros((t.q, t.q))
        if t.group in red:
            tr = red[t.group] / reduced.sigma2
            common = [c for c in cols if c in tr.index]
            idx = [cols.index(c) for c in common]
            Trel[np.ix_(idx, idx)] = tr.loc[common, common].to_numpy()
        parts.append(_engine.Layout.of(t.q, t.blocks).theta_of_cov(Trel))
    return np.concatenate(parts)


def _as_re(t) -> _engine.ReTerm:
    return _engine.ReTerm(t.codes, t.Z, t.n_levels, _engine.Layout.of(t.q, t.blocks))


def _cov_factor(T: np.ndarray) -> np.ndarray:
    """A matrix A with A A' = T, valid also when T is singular (a boundary estimate)."""
    w, V = np.linalg.eigh((T + T.T) / 2)
    return V * np.sqrt(np.clip(w, 0.0, None))


def _aic_bic(loglik: float, k: int, n_obs: int) -> tuple[float, float]:
    """``-2 loglik + 2 k`` and ``-2 loglik + k log(n_obs)``, as lme4 computes them."""
    return float(-2 * loglik + 2 * k), float(-2 * loglik + k * np.log(n_obs))


def _fixed_table(names, beta, cov, conf_level) -> pd.DataFrame:
    return _wald_table(names, beta, np.sqrt(np.diag(cov)), conf_level)


def _wald_table(names, beta, se, conf_level) -> pd.DataFrame:
    """``term, estimate, std_error, statistic, p_value, ci_low, ci_high`` (Wald z)."""
    beta = np.asarray(beta, dtype=float)
    se = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = beta / se
    crit = stats.norm.ppf(0.5 + conf_level / 2)
    return pd.DataFrame(
        {
            "term": list(names),
            "estimate": beta,
            "std_error": se,
            "statistic": z,
            "p_value": 2 * stats.norm.sf(np.abs(z)),
            "ci_low": beta - crit * se,
            "ci_high": beta + crit * se,
        }
    )


# --- fitting -------------------------------------------------------------------------------------


def _engine_terms(design: Design) -> list[_engine.ReTerm]:
    return [_as_re(t) for t in design.terms]


def _fit_design(design: Design, method: str, conf_level: float, *, start=None) -> MixedFit:
    from mlm_lessons._checks import check_design

    check_design(design)
    eng = _engine.fit_lmm(design.y if design.offset is None else design.y - design.offset,
                          design.X, _engine_terms(design), method == "REML", start=start)
    return _make_fit(design, eng, method, conf_level)


def _make_fit(design: Design, eng: _engine.LMMFit, method: str, conf_level: float,
              stacklevel_warn: bool = True) -> MixedFit:
    from mlm_lessons._checks import check_fitted

    check_fitted(design, eng)
    loglik = -eng.deviance / 2
    fixed = _fixed_table(design.fixed_names, eng.beta, eng.vcov, conf_level)
    k = design.p + sum(_engine.Layout.of(t.q, t.blocks).size for t in design.terms) + 1
    aic, bic = _aic_bic(loglik, k, design.n)
    conv = eng.opt.convergence
    fit = MixedFit(
        formula=str(design.formula),
        method=method,
        fixed=fixed,
        sigma2=float(eng.sigma2),
        loglik=float(loglik),
        aic=aic,
        bic=bic,
        n_obs=design.n,
        converged=bool(conv.ok),
        singular=bool(conv.singular),
        conf_level=conf_level,
        optimizer=eng.opt.optimizer,
        messages=conv.messages,
        _design=design,
        _engine=eng,
    )
    _warn_if_needed(fit)
    return fit


def boundary_description(terms, covariances, scale: float) -> str:
    """Which variances are at zero and which correlations at +-1, in words.

    ``terms`` are the design's terms, ``covariances`` their T matrices; a standard deviation
    below ``1e-4 * scale`` counts as zero (``scale``: sigma for a linear model, 1 for a GLMM
    on the link scale).
    """
    parts = []
    for t, T in zip(terms, covariances):
        sd = np.sqrt(np.clip(np.diag(T), 0, None))
        tiny = sd < 1e-4 * scale + 1e-300
        for i in np.flatnonzero(tiny):
            parts.append(f"the variance of {t.columns[i]!r} across {t.group!r} is estimated "
                         f"at zero")
        for b in t.blocks:
            for ii, i in enumerate(b):
                for j in b[ii + 1 :]:
                    if tiny[i] or tiny[j]:
                        continue
                    r = T[i, j] / (sd[i] * sd[j])
                    if abs(r) > 0.999:
                        parts.append(f"the correlation of {t.columns[i]!r} and "
                                     f"{t.columns[j]!r} across {t.group!r} is estimated at "
                                     f"{r:+.3f}")
    return "; ".join(parts) or "a covariance matrix of random effects is singular"


def _warn_if_needed(fit: MixedFit) -> None:
    if fit.singular:
        warn(
            f"boundary (singular) fit: "
            f"{boundary_description(fit._design.terms, fit._engine.T, np.sqrt(fit.sigma2))}. "
            f"This is the maximum of "
            f"the likelihood (no move into the interior improves it): the data do not "
            f"support this random part. Simplify it (drop that random effect, or use "
            f"uncorrelated effects with ||) and test it with lrt(), whose p-value accounts "
            f"for the boundary",
            BoundaryWarning,
        )
    if not fit.converged:
        warn(
            f"the optimizer did not converge: {'; '.join(fit.messages)} (after trying "
            f"several optimizers and starting points). Simplify the random part or check "
            f"the data for near-duplicate predictors",
            ConvergenceWarning,
        )


@single_blas_thread
def fit_mixed(
    data: pd.DataFrame,
    formula: str,
    group: str | None = None,
    *,
    re_formula: str | None = None,
    method: str = "REML",
    diagonal: bool = False,
    conf_level: float = 0.95,
) -> MixedFit:
    r"""Fit a linear mixed model by REML or ML.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per level-1 unit. Not modified.
    formula : str
        The model in lme4's notation, ``"y ~ x + (1 + x | school)"``: fixed part as a patsy
        formula, plus one or more random terms ``(expr | g)`` (correlated),
        ``(expr || g)`` (uncorrelated), ``(1 | a/b)`` (b nested in a), ``(1 | a:b)``;
        several terms on one factor give a block-diagonal covariance. Or the fixed part
        alone with ``group`` (and ``re_formula``).
    group : str, optional
        Keyword form: the column of the level-2 units; the random part is then
        ``(re_formula | group)``.
    re_formula : str, optional
        Keyword form: ``None`` or ``"1"`` for a random intercept, ``"x"`` for a random
        intercept and slope of ``x`` (correlated), ``"0 + x"`` for a slope alone.
    method : {"REML", "ML"}, default "REML"
        REML for reporting variance components; ML to compare models whose fixed parts
        differ.
    diagonal : bool, default False
        Keyword form: uncorrelated random effects (T diagonal), lme4's ``||``.
    conf_level : float, default 0.95
        Level of the Wald intervals of the fixed effects.

    Returns
    -------
    MixedFit

    Raises
    ------
    KeyError
        If a column named in the formula is not in ``data``.
    TypeError
        If the outcome is not numeric or an argument has the wrong type.
    ValueError
        If a used column has missing values, a grouping column cannot identify groups,
        there are too few groups, the outcome is constant, the fixed design is rank
        deficient, a random effect is not identified, or ``method`` is unknown.

    Warns
    -----
    BoundaryWarning
        When the maximum is at the boundary: a variance at zero or a correlation at +-1
        (lme4's "singular fit"), checked to be a maximum and not a saddle.
    ConvergenceWarning
        When lme4's convergence check fails after several optimizers.

    Notes
    -----
    The model is :math:`y = X\gamma + \sum_t Z_t u_t + \varepsilon` with, for each grouping
    factor :math:`t` and each of its groups, :math:`u_{tj} \sim N(0, T_t)`, and
    :math:`\varepsilon \sim N(0, \sigma^2 I)`. The likelihood is profiled over
    :math:`\gamma` and :math:`\sigma^2` and maximised over the relative Cholesky factors of
    the :math:`T_t/\sigma^2`, as in lme4 (Bates et al. 2015), by a blocked Cholesky
    factorisation over the grouping factors as in MixedModels.jl. The optimizer works on
    internally centred and scaled columns, so results do not depend on the units of the
    outcome or the predictors; lme4's convergence check (scaled gradient and Hessian) is
    applied, and at a boundary point every move into the interior is tried before the
    boundary is reported.

    Validated against lme4 on many data sets from R packages (nested, crossed, diagonal and
    block-diagonal structures, boundary fits, raw and rescaled predictors; ``tests/``), on
    the High School and Beyond models of Raudenbush and Bryk (2002, ch. 4), and against a
    dense computation of the likelihood from :math:`V = Z T Z' + \sigma^2 I`.

    References
    ----------
    Bates, D., Maechler, M., Bolker, B. and Walker, S. (2015). Fitting linear mixed-effects
    models using lme4. *Journal of Statistical Software* 67(1).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> fit = mlm.fit_mixed(hsb, "mathach ~ ses + (1 | school)")
    >>> fit.fixed[["term", "estimate"]].round(2)
            term  estimate
    0  Intercept     12.66
    1        ses      2.39
    >>> round(fit.sigma2, 2)
    37.03
    >>> mlm.fit_mixed(hsb, "mathach ~ ses", "school").loglik == fit.loglik
    True
    """
    check_method(method)
    check_conf_level(conf_level)
    check_frame(data)
    check_bool(diagonal, "diagonal")
    if group is None and (re_formula is not None or diagonal):
        raise ValueError(
            "re_formula= and diagonal= go with group=; with lme4's notation write the random "
            "part in the formula instead, e.g. 'y ~ x + (x || school)'"
        )
    design = build_design(data, design_from_arguments(formula, group, re_formula,
                                                      bool(diagonal)))
    return _fit_design(design, method, conf_level)


# --- the workshop's model stages ---------------------------------------------------------


def _terms(names: Sequence[str] | str, what: str) -> list[str]:
    from mlm_lessons._checks import check_name_list

    return check_name_list(names, what)


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
    from mlm_lessons._checks import check_names

    check_names(outcome=outcome, group=group)
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
    from mlm_lessons._checks import check_names

    check_names(outcome=outcome, group=group)
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
    from mlm_lessons._checks import check_names

    check_names(outcome=outcome, group=group)
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

    Raises
    ------
    ValueError
        Besides the errors of :func:`fit_mixed`: if a ``level2`` variable varies within a
        group (it is then a level-1 variable), or a name is in both lists.

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
    from mlm_lessons._checks import check_level2_constant, check_names

    check_names(outcome=outcome, group=group)
    l1 = _terms(level1, "level1")
    l2 = _terms(level2, "level2")
    both = sorted(set(l1) & set(l2))
    if both:
        raise ValueError(f"{both} are in both level1 and level2; a variable belongs to one "
                         f"level")
    check_frame(data)
    check_level2_constant(data, l2, group)
    rnd = l1 if random is None else _terms(random, "random")
    unknown = [r for r in rnd if r not in l1]
    if unknown:
        raise ValueError(f"random slopes {unknown} must also be in level1 {l1}")
    rhs = f"({_rhs(l2)}) * ({_rhs(l1)})" if l2 else _rhs(l1)
    return fit_mixed(
        data, f"{outcome} ~ {rhs}", group, re_formula=_rhs(rnd), method=method
    )
