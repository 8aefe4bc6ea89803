r"""Inference for multilevel models: likelihood-ratio and Wald tests, PRE, model tables.

- :func:`lrt`: likelihood-ratio test of two nested fits, with the boundary-corrected
  (mixture) p-value for tests of variance components;
- :func:`wald_test`: joint Wald test that several fixed effects are zero;
- :func:`pre`: proportional reduction in each variance component (the workshop's level-2
  PRE);
- :func:`compare_models`: log-likelihood, deviance, AIC and BIC of several fits side by
  side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mlm_lessons._checks import check_fit, check_fit_dict, check_same_data
from mlm_lessons._display import ResultDisplay
from mlm_lessons.models import MixedFit

__all__ = ["LRTResult", "WaldResult", "lrt", "wald_test", "pre", "compare_models", "nesting"]


@dataclass(frozen=True)
class LRTResult(ResultDisplay):
    """A likelihood-ratio test of two nested models (immutable).

    Attributes
    ----------
    statistic : float
        :math:`LR = 2(\\ell_\\text{full} - \\ell_\\text{reduced})`.
    df : int
        Difference in the number of parameters.
    p_value : float
        :math:`P(\\chi^2_{df} \\ge LR)`, the usual (naive) p-value.
    p_mixture : float
        For a test of variance components, the p-value from the 50:50 mixture of
        :math:`\\chi^2_{df-1}` and :math:`\\chi^2_{df}` (Self and Liang 1987); NaN otherwise.
    method : str
        ``"REML"`` or ``"ML"``: the criterion both log-likelihoods are on.
    loglik_reduced, loglik_full : float
        The two maximised log-likelihoods.
    refitted : bool
        True when one or both fits were refitted by ML for the test.
    """

    statistic: float
    df: int
    p_value: float
    p_mixture: float
    method: str
    loglik_reduced: float
    loglik_full: float
    refitted: bool


@dataclass(frozen=True)
class WaldResult(ResultDisplay):
    """A joint Wald chi-square test that several fixed effects are zero (immutable).

    Attributes
    ----------
    statistic : float
        :math:`W = \\hat\\gamma' \\hat V^{-1} \\hat\\gamma` over the tested terms.
    df : int
        Number of tested terms.
    p_value : float
        :math:`P(\\chi^2_{df} \\ge W)`.
    terms : tuple of str
        The tested fixed-effect terms.
    """

    statistic: float
    df: int
    p_value: float
    terms: tuple


def _check_fit(fit: object, name: str) -> MixedFit:
    return check_fit(fit, name, "(from fit_mixed, fit_null, ...)")


def _check_same_data(a: MixedFit, b: MixedFit, names: tuple[str, str]) -> None:
    """``ValueError`` unless both fits used the same rows, outcome, groupings and predictor
    values (:func:`mlm_lessons._checks.check_same_data`)."""
    check_same_data(a, b, names)


def _column_space_contains(A: np.ndarray, B: np.ndarray) -> bool:
    """Whether every column of B lies in the column space of A."""
    if B.shape[1] == 0:
        return True
    if A.shape[1] == 0:
        return False
    scale = max(1.0, float(np.abs(np.column_stack([A, B])).max()))
    tol = 1e-8 * scale * max(A.shape)
    rank_a = np.linalg.matrix_rank(A, tol=tol)
    return np.linalg.matrix_rank(np.column_stack([A, B]), tol=tol) == rank_a


def nesting(reduced: MixedFit, full: MixedFit, names=("reduced", "full")) -> tuple[bool, bool]:
    """The one nesting rule of every test that compares two fits.

    ``reduced`` is nested in ``full`` when both were fitted to the same data, the columns of
    its fixed part lie in the column space of ``full``'s (term names and order do not
    matter), and every random effect of ``reduced`` is a random effect of ``full`` on the
    same grouping factor, within one covariance block of ``full`` (so that correlated
    effects are not nested in uncorrelated ones); ``full`` must have more parameters.

    Returns ``(same_fixed, same_random)``; raises ``ValueError`` saying what breaks nesting.
    """
    _check_fit(reduced, "reduced")
    _check_fit(full, "full")
    if not (isinstance(names, tuple | list) and len(names) == 2
            and all(isinstance(n, str) for n in names)):
        raise TypeError(f"names must be a pair of strings such as ('reduced', 'full'), not "
                        f"{names!r}")
    names = tuple(names)
    _check_same_data(reduced, full, names)
    mr, mf = reduced.matrices(), full.matrices()
    Xr, Xf = mr.X.to_numpy(), mf.X.to_numpy()
    if not _column_space_contains(Xf, Xr):
        raise ValueError(
            f"the models are not nested: the fixed part of {names[0]} "
            f"({', '.join(mr.X.columns)}) is not contained in that of {names[1]} "
            f"({', '.join(mf.X.columns)}); pass the smaller model first"
        )
    same_fixed = _column_space_contains(Xr, Xf)
    # grouping factors are matched by the partition of the rows they make, not by name
    fr, ff = reduced.fingerprint.groups, full.fingerprint.groups
    by_partition = {ff[level]: level for level in full.levels}
    same_random = len(reduced.levels) == len(full.levels)
    for level in reduced.levels:
        if fr[level] not in by_partition:
            raise ValueError(
                f"the models are not nested: they have different groups ({names[0]} has random "
                f"effects on {level!r}, which groups the rows unlike any factor of "
                f"{names[1]}: {', '.join(map(repr, full.levels))}); pass the smaller model "
                f"first, grouped the same way"
            )
        fb = _blocks_of(full, by_partition[fr[level]])
        for block in _blocks_of(reduced, level):
            homes = {i for col in block for i, b in enumerate(fb) if col in b}
            missing = [c for c in block if not any(c in b for b in fb)]
            if missing:
                raise ValueError(
                    f"the models are not nested: {names[0]} has random effect(s) {missing} on "
                    f"{level!r} that {names[1]} lacks; pass the smaller model first"
                )
            if len(homes) > 1:
                raise ValueError(
                    f"the models are not nested: {names[0]} estimates the covariance of "
                    f"{block} on {level!r}, which {names[1]} fixes at zero (uncorrelated "
                    f"effects)"
                )
        if _blocks_of(reduced, level) != fb:
            same_random = False
    if full.n_params <= reduced.n_params:
        raise ValueError(
            f"{names[0]} has {reduced.n_params} parameters and {names[1]} {full.n_params}; "
            f"the full model must have more: pass the smaller model first"
        )
    return bool(same_fixed), bool(same_random)


def _n_variances(fit: MixedFit) -> int:
    """Number of random-effect variances (parameters bounded at zero)."""
    return sum(tau.shape[0] for tau in fit.taus.values())


def _blocks_of(fit: MixedFit, level: str) -> list[tuple[str, ...]]:
    """The covariance blocks of one grouping factor, as tuples of column names."""
    vc = fit.variance_components()
    tau = fit.taus[level]
    names = list(tau.index)
    vc = vc[vc["level"] == level]
    linked = {n: {n} for n in names}
    for desc in vc["description"]:
        if desc.startswith("Cov("):
            a, b = desc[4:-1].split(", ", 1)
            group = linked[a] | linked[b]
            for n in group:
                linked[n] = group
    seen, out = set(), []
    for n in names:
        if n not in seen:
            block = tuple(m for m in names if m in linked[n])
            seen |= set(block)
            out.append(block)
    return out


def _chi2_sf(x: float, df: int) -> float:
    """Upper tail of chi2(df), with chi2(0) the point mass at 0."""
    if df == 0:
        return 1.0 if x <= 0 else 0.0
    return float(stats.chi2.sf(x, df))


def lrt(reduced: MixedFit, full: MixedFit) -> LRTResult:
    r"""Likelihood-ratio test of a reduced model against a fuller, nested one.

    Parameters
    ----------
    reduced, full : MixedFit
        Fits of the same outcome, rows and groups; every fixed and random term of
        ``reduced`` is also in ``full``, and ``full`` has more parameters.

    Returns
    -------
    LRTResult

    Raises
    ------
    TypeError
        If an argument is not a :class:`mlm_lessons.MixedFit`.
    ValueError
        If the fits use different rows, outcome values, groups or predictor values (a
        frame edited between the fits, another data set), or the models are not nested.

    Notes
    -----
    :math:`LR = 2(\ell_\text{full} - \ell_\text{reduced})` is compared with
    :math:`\chi^2_{df}`, ``df`` the difference in the number of parameters.

    *Which likelihood.* REML likelihoods of models with different fixed parts are not
    comparable (each is the likelihood of different error contrasts), so when the fixed
    parts differ both models are refitted by ML (``fit.refit(method="ML")``) and
    ``refitted`` is True. When only the random parts differ, the fits' own criterion is
    used, REML included (lme4's ``anova(..., refit = FALSE)``). Fits by different methods
    are put on ML.

    *Variance components.* Under :math:`H_0: \tau_{pp} = 0` the parameter is on the
    boundary of its space, and the LR statistic is not :math:`\chi^2_{df}`. When the
    models differ only by adding random terms (with their covariances), ``p_mixture``
    uses the 50:50 mixture of :math:`\chi^2_{df-1}` and :math:`\chi^2_{df}` (Self and
    Liang 1987; Stram and Lee 1994), with :math:`\chi^2_0` the point mass at 0; this
    halves the naive p-value for a single variance. The naive p-value is conservative.

    Validated against lme4 1.1-31 on High School and Beyond: random slope of ``cses``,
    REML, LR 9.762, p 0.0076, mixture p 0.0047; of ``ses``, 4.771, 0.092, 0.060;
    random-coefficient versus intercepts-and-slopes model by ML, LR 214.55 on 4 df
    (``tests/test_inference.py``).

    References
    ----------
    Self, S. G. and Liang, K.-Y. (1987). Asymptotic properties of maximum likelihood
    estimators and likelihood ratio tests under nonstandard conditions. *Journal of the
    American Statistical Association* 82(398), 605-610.

    Stram, D. O. and Lee, J. W. (1994). Variance components testing in the longitudinal
    mixed effects model. *Biometrics* 50(4), 1171-1177.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.center(mlm.load_dataset("hsb"), "ses", group="school", name="cses")
    >>> ri = mlm.fit_random_intercept(hsb, "mathach", "school", predictors=["cses"])
    >>> rc = mlm.fit_random_coefficient(hsb, "mathach", "school", predictors=["cses"])
    >>> res = mlm.lrt(ri, rc)
    >>> round(res.statistic, 2), res.df, round(res.p_value, 4), round(res.p_mixture, 4)
    (9.76, 2, 0.0076, 0.0047)
    >>> res.method, res.refitted
    ('REML', False)
    """
    _check_fit(reduced, "reduced")
    _check_fit(full, "full")
    fixed_same, _ = nesting(reduced, full)
    df = full.n_params - reduced.n_params
    if fixed_same and reduced.method == full.method:
        r_fit, f_fit, refitted = reduced, full, False
    else:
        r_fit, f_fit = reduced.refit(method="ML"), full.refit(method="ML")
        refitted = r_fit is not reduced or f_fit is not full
    statistic = 2.0 * (f_fit.loglik - r_fit.loglik)
    stat = max(statistic, 0.0)
    p_value = _chi2_sf(stat, df)
    variance_test = fixed_same and _n_variances(f_fit) > _n_variances(r_fit)
    p_mixture = 0.5 * _chi2_sf(stat, df - 1) + 0.5 * p_value if variance_test else np.nan
    return LRTResult(
        statistic=float(statistic),
        df=int(df),
        p_value=p_value,
        p_mixture=float(p_mixture),
        method=f_fit.method,
        loglik_reduced=float(r_fit.loglik),
        loglik_full=float(f_fit.loglik),
        refitted=bool(refitted),
    )


def wald_test(fit: MixedFit, terms: Sequence[str] | str) -> WaldResult:
    r"""Joint Wald test that the fixed effects ``terms`` are all zero.

    Parameters
    ----------
    fit : MixedFit
    terms : str or sequence of str
        Fixed-effect terms as named in ``fit.fixed["term"]`` (e.g. ``"meanses:cses"``).

    Returns
    -------
    WaldResult

    Raises
    ------
    TypeError
        If ``fit`` is not a :class:`mlm_lessons.MixedFit` or a term is not a string.
    ValueError
        If ``terms`` is empty, repeats a term, or names a term that is not in the fit.

    Notes
    -----
    :math:`W = \hat\gamma_S' \,[\widehat{\mathrm{Var}}(\hat\gamma)]_{SS}^{-1}\,
    \hat\gamma_S \sim \chi^2_{|S|}` under :math:`H_0: \gamma_S = 0`, with the covariance
    matrix of :meth:`MixedFit.vcov` (:math:`\sigma^2 (X'V^{-1}X)^{-1}`). For one term
    :math:`W = z^2`. It is asymptotically equivalent to the likelihood-ratio test by ML
    and needs only the full model. Checked against :math:`z^2` from ``fit.fixed``, a
    direct matrix computation and the ML likelihood-ratio test on High School and Beyond
    (``tests/test_inference.py``).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.center(mlm.load_dataset("hsb"), "ses", group="school", name="cses")
    >>> full = mlm.fit_full_model(hsb, "mathach", "school", level1=["cses"],
    ...                           level2=["meanses", "catholic"])
    >>> res = mlm.wald_test(full, ["meanses:cses", "catholic:cses"])
    >>> round(res.statistic, 1), res.df, res.p_value < 1e-10
    (48.2, 2, True)
    """
    _check_fit(fit, "fit")
    names = [terms] if isinstance(terms, str) else list(terms)
    if not names:
        raise ValueError("terms is empty: name at least one fixed effect to test")
    if not all(isinstance(t, str) for t in names):
        raise TypeError(f"terms must be fixed-effect names (strings), not {terms!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"terms repeats a term: {names}")
    available = list(fit.fixed["term"])
    missing = [t for t in names if t not in available]
    if missing:
        raise ValueError(
            f"term(s) {', '.join(map(repr, missing))} not among the fixed effects; "
            f"available: {', '.join(available)}"
        )
    b = fit.params.loc[names].to_numpy()
    V = fit.vcov().loc[names, names].to_numpy()
    statistic = float(b @ np.linalg.solve(V, b))
    return WaldResult(
        statistic=statistic,
        df=len(names),
        p_value=float(stats.chi2.sf(statistic, len(names))),
        terms=tuple(names),
    )


def pre(reference: MixedFit, fit: MixedFit) -> pd.DataFrame:
    r"""Proportional reduction in each variance component from ``reference`` to ``fit``.

    Parameters
    ----------
    reference : MixedFit
        The model without the added predictors (e.g. the random-coefficient model).
    fit : MixedFit
        The model with them (e.g. the intercepts-and-slopes-as-outcomes model).

    Returns
    -------
    pandas.DataFrame
        One row per random-effect variance that both fits estimate (matched by grouping
        factor and term name), then ``sigma2``: ``level, component, term, reference,
        fit, pre``. ``component``
        is the workshop's name in ``reference`` (``tau00``, ``tau11``, ...); ``term`` the
        random-effect term (``"residual"`` for ``sigma2``).

    Raises
    ------
    TypeError
        If an argument is not a :class:`mlm_lessons.MixedFit`.
    ValueError
        If the fits use different groups, data or methods.

    Notes
    -----
    The workshop's level-2 PRE for coefficient :math:`p`:

    .. math::

        R^2_p = 1 - \frac{\hat\tau_{pp}(\text{fit})}{\hat\tau_{pp}(\text{reference})},

    the share of the between-group variance of :math:`\beta_{pj}` that the level-2
    predictors account for; the ``sigma2`` row is the level-1 analogue. It can be
    negative, since variance components are not guaranteed to shrink when predictors
    are added (Raudenbush and Bryk 2002, ch. 4). Compare fits by the same method (REML
    for reporting). Validated against lme4 1.1-31 on High School and Beyond: 0.726
    (:math:`\tau_{00}`) and 0.854 (:math:`\tau_{11}`) from the random-coefficient model
    to the intercepts-and-slopes model; 0.694 from the null model to means as outcomes.

    References
    ----------
    Raudenbush, S. W. and Bryk, A. S. (2002). *Hierarchical Linear Models*, 2nd ed. Sage.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.center(mlm.load_dataset("hsb"), "ses", group="school", name="cses")
    >>> rc = mlm.fit_random_coefficient(hsb, "mathach", "school", predictors=["cses"])
    >>> full = mlm.fit_full_model(hsb, "mathach", "school", level1=["cses"],
    ...                           level2=["meanses", "catholic"])
    >>> mlm.pre(rc, full).round(3)
          level component       term  reference     fit    pre
    0    school     tau00  Intercept      8.681   2.379  0.726
    1    school     tau11       cses      0.694   0.101  0.854
    2  residual    sigma2   residual     36.700  36.721 -0.001
    """
    _check_fit(reference, "reference")
    _check_fit(fit, "fit")
    _check_same_data(reference, fit, ("reference", "fit"))
    if reference.method != fit.method:
        raise ValueError(
            f"reference was fitted by {reference.method} and fit by {fit.method}; compare "
            f"variance components from the same method (refit one with .refit(method=...))"
        )
    rows = []
    several = len(reference.levels) > 1
    fit_taus = fit.taus
    for level, tau in reference.taus.items():
        if level not in fit_taus:
            continue
        prefix = f"{level}: " if several else ""
        for i, term in enumerate(tau.index):
            if term in fit_taus[level].index:
                r = float(tau.loc[term, term])
                f = float(fit_taus[level].loc[term, term])
                rows.append((level, f"{prefix}tau{i}{i}", term, r, f))
    rows.append(("residual", "sigma2", "residual", reference.sigma2, fit.sigma2))
    out = pd.DataFrame(rows, columns=["level", "component", "term", "reference", "fit"])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["pre"] = 1.0 - out["fit"] / out["reference"]
    return out


def compare_models(fits: Mapping[str, MixedFit]) -> pd.DataFrame:
    r"""Fit statistics of several models side by side.

    Parameters
    ----------
    fits : dict of str to MixedFit
        Models fitted to the same rows, keyed by the name to show.

    Returns
    -------
    pandas.DataFrame
        One row per model, in the order given: ``model, method, n_params, loglik,
        deviance, aic, bic``, with ``deviance = -2 loglik``.

    Raises
    ------
    TypeError
        If ``fits`` is not a dict or a value is not a :class:`mlm_lessons.MixedFit`.
    ValueError
        If ``fits`` is empty or the models were fitted to different data.

    Notes
    -----
    :math:`AIC = -2\ell + 2k` and :math:`BIC = -2\ell + k\log N`, with :math:`k`
    ``n_params`` (fixed effects, covariance parameters and :math:`\sigma^2`, as lme4
    counts them) and :math:`N` the number of rows. Differences in deviance, AIC or BIC
    are meaningful only between fits of the same data by the same method, and REML
    values only between models with the same fixed part: refit by ML (``.refit(method=
    "ML")``) to compare fixed parts. Matches lme4's ``logLik``, ``AIC`` and ``BIC``
    (``tests/test_inference.py``).

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> fits = {"null": mlm.fit_null(hsb, "mathach", "school", method="ML"),
    ...         "ses": mlm.fit_random_intercept(hsb, "mathach", "school",
    ...                                         predictors=["ses"], method="ML")}
    >>> mlm.compare_models(fits).round(1)
      model method  n_params   loglik  deviance      aic      bic
    0  null     ML         3 -23557.9   47115.8  47121.8  47142.4
    1   ses     ML         4 -23320.5   46641.0  46649.0  46676.5
    """
    items = check_fit_dict(fits, "compare_models({'null': fit0, 'ses': fit1})")
    first_name, first = items[0]
    for name, fit in items[1:]:
        _check_same_data(first, fit, (f"fits[{first_name!r}]", f"fits[{name!r}]"))
    methods = {f.method for _, f in items}
    if len(methods) > 1:
        raise ValueError(
            "the fits mix REML and ML; their likelihoods are on different scales. Refit them "
            "by one method, e.g. {name: f.refit(method='ML') for name, f in fits.items()}"
        )
    if methods == {"REML"}:
        X0 = first.matrices().X.to_numpy()
        for name, fit in items[1:]:
            X1 = fit.matrices().X.to_numpy()
            if not (_column_space_contains(X0, X1) and _column_space_contains(X1, X0)):
                raise ValueError(
                    f"fits[{first_name!r}] and fits[{name!r}] have different fixed parts, and "
                    f"REML likelihoods (and their AIC, BIC) of different fixed parts cannot "
                    f"be compared; refit them by ML: "
                    f"{{name: f.refit(method='ML') for name, f in fits.items()}}"
                )
    rows = [
        (str(name), f.method, f.n_params, f.loglik, -2.0 * f.loglik, f.aic, f.bic)
        for name, f in items
    ]
    return pd.DataFrame(
        rows, columns=["model", "method", "n_params", "loglik", "deviance", "aic", "bic"]
    )
