"""Check a fit against other engines and against published results.

A linear mixed model is only as good as the optimizer that fits it.
:func:`compare_with_statsmodels` fits the same model three ways and returns what each one
reached: the (RE)ML log-likelihood, the variance components, the engine's own convergence
flag and the text of every warning it raised. The warnings are *captured* and returned as
data, so the comparison can be shown in a notebook without a warning stream.
:func:`compare_with_published` puts a fit's estimates beside the values of a published
table.
"""

from __future__ import annotations

import re
import time
import warnings

import numpy as np
import pandas as pd

from mlm_lessons._checks import (
    check_columns,
    check_count,
    check_fit,
    check_formula,
    check_frame,
    check_groups,
    check_method,
    check_name,
    check_numeric,
)
from mlm_lessons._design import build_design, design_from_arguments
from mlm_lessons.models import MixedFit, fit_mixed

__all__ = ["compare_with_published", "compare_with_statsmodels"]

_ENGINES = ("statsmodels default fit()", "statsmodels lbfgs", "mlm_lessons.fit_mixed")


def _tau_entries(T: np.ndarray) -> dict[str, float]:
    """Variances ``tau00, tau11, ...`` then covariances ``tau01, ...`` (workshop notation)."""
    q = T.shape[0]
    out = {f"tau{i}{i}": float(T[i, i]) for i in range(q)}
    for i in range(q):
        for j in range(i + 1, q):
            out[f"tau{i}{j}"] = float(T[i, j])
    return out


def _messages(caught: list[warnings.WarningMessage]) -> tuple[int, str]:
    seen: dict[str, None] = {}
    for w in caught:
        seen.setdefault(f"{w.category.__name__}: {w.message}", None)
    return len(caught), " | ".join(seen)


def compare_with_statsmodels(
    data: pd.DataFrame,
    formula: str,
    group: str,
    *,
    re_formula: str | None = None,
    method: str = "REML",
) -> pd.DataFrame:
    r"""Fit one model with statsmodels' ``MixedLM`` (two ways) and with :func:`fit_mixed`.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per level-1 unit. Not modified.
    formula : str
        Fixed part as a patsy formula, ``"y ~ x"``.
    group : str
        Column that identifies the level-2 units.
    re_formula : str, optional
        Random part as in :func:`fit_mixed`: ``None`` or ``"1"`` for a random intercept,
        ``"x"`` for a random intercept and a correlated random slope of ``x``.
    method : {"REML", "ML"}, default "REML"

    Returns
    -------
    pandas.DataFrame
        Indexed by ``engine``, one row each for ``"statsmodels default fit()"``
        (``MixedLM.fit()`` with no options), ``"statsmodels lbfgs"``
        (``fit(method="lbfgs")``) and ``"mlm_lessons.fit_mixed"``. Columns: ``loglik``
        (the maximised REML or ML log-likelihood the engine reports), ``tau00, tau11, ...,
        tau01, ...`` (the entries of T on the data scale, variances first), ``sigma2``,
        ``converged`` (the engine's own flag), ``n_messages`` (how many warnings it raised),
        ``messages`` (their distinct texts, ``"Category: message"`` joined by ``" | "``;
        empty when there were none) and ``seconds`` (wall time of the fit). When a statsmodels
        fit raises an error, its row reports it rather than the call failing: ``messages``
        starts with ``"failed: <exception type>: <message>"`` (followed by the warnings
        raised before the failure), ``converged`` is False and the numbers are NaN.

    Raises
    ------
    KeyError
        If a column named in a formula or ``group`` is not in ``data``.
    TypeError
        If ``data`` is not a DataFrame or the outcome is not numeric.
    ValueError
        If ``method`` is unknown, or a used column has missing values.

    Notes
    -----
    All three engines maximise the same criterion; statsmodels' REML log-likelihood equals
    the package's (and lme4's) at the same parameter values, so the ``loglik`` column is
    directly comparable: the larger, the better the fit of the *same* model. A converged
    flag is the engine's own verdict and can be wrong in both directions.

    statsmodels' default ``fit()`` runs BFGS on its own parametrisation and falls back to
    L-BFGS and conjugate gradients when BFGS fails. On the High School and Beyond
    random-coefficient model (``mathach ~ cses``, ``re_formula="cses"``, REML) statsmodels
    0.15 stops at a log-likelihood about 100 units below lme4's optimum, with
    :math:`\hat\tau_{11} \approx 15.6` instead of 0.694, and raises ``ConvergenceWarning``;
    ``method="lbfgs"`` reports convergence about 2 units short of the optimum.
    :func:`fit_mixed` reaches lme4's optimum (``tests/test_engines.py`` checks both facts
    against lme4 1.1-31).

    Where statsmodels stops depends on the path of its optimizer, which can differ between
    machines, and even between the BLAS kernels of one machine (on the model above,
    ``method="lbfgs"`` stops 1.6 units short with OpenBLAS's SkylakeX kernel and 2.3 units
    short with its Haswell kernel). Compare its rows with :func:`fit_mixed`'s on a coarse
    scale, not digit by digit. statsmodels can also fail outright: ``method="lbfgs"`` raises
    ``LinAlgError: Singular matrix`` on many random-intercept fits to simulated data; such a
    failure becomes a ``"failed: ..."`` row.

    Warnings raised by any engine are captured (``warnings.catch_warnings``) and returned in
    ``messages``; nothing is re-emitted. Errors of :func:`fit_mixed` itself are raised.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> sleep = mlm.load_dataset("sleepstudy")
    >>> tab = mlm.compare_with_statsmodels(sleep, "reaction ~ days", "subject",
    ...                                    re_formula="days")
    >>> list(tab.index)
    ['statsmodels default fit()', 'statsmodels lbfgs', 'mlm_lessons.fit_mixed']
    >>> tab.loc["mlm_lessons.fit_mixed", ["loglik", "tau00", "tau11"]].round(1).to_dict()
    {'loglik': -871.8, 'tau00': 612.1, 'tau11': 35.1}
    """
    import statsmodels.formula.api as smf

    check_frame(data)
    check_method(method)
    check_name(group, "group")
    if re_formula is not None:
        check_formula(re_formula, "'x'", "re_formula")
    check_groups(data, group, min_size=2)
    rf = None if re_formula is None else re_formula.strip().lstrip("~").strip()
    # Validates every column (names, numeric outcome, missing values) with clear messages.
    design = build_design(data, design_from_arguments(formula, group, rf, False))
    reml = method == "REML"

    rows: dict[str, dict[str, object]] = {}
    sm_kwargs = {"groups": data[group]}
    if rf not in (None, "1"):
        sm_kwargs["re_formula"] = "~" + rf
    q = design.terms[0].q
    for engine, fit_kw in zip(_ENGINES[:2], ({}, {"method": "lbfgs"})):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            try:
                model = smf.mixedlm(formula, data, **sm_kwargs)
                res = model.fit(reml=reml, **fit_kw)
            except Exception as exc:  # a third-party optimizer's failure is data, not a crash
                res, failure = None, exc
            seconds = time.perf_counter() - start
        n_warn, text = _messages(caught)
        if res is None:
            # statsmodels does not guard its optimizers (lbfgs inverts a singular matrix on
            # ordinary data): report the failure as this engine's result, not as a crash.
            reason = f"failed: {type(failure).__name__}: {failure}"
            rows[engine] = {
                "loglik": np.nan,
                **_tau_entries(np.full((q, q), np.nan)),
                "sigma2": np.nan,
                "converged": False,
                "n_messages": n_warn,
                "messages": " | ".join(filter(None, (reason, text))),
                "seconds": seconds,
            }
            continue
        rows[engine] = {
            "loglik": float(res.llf),
            **_tau_entries(np.asarray(res.cov_re, dtype=float)),
            "sigma2": float(res.scale),
            "converged": bool(res.converged),
            "n_messages": n_warn,
            "messages": text,
            "seconds": seconds,
        }

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        fit = fit_mixed(data, formula, group, re_formula=rf, method=method)
        seconds = time.perf_counter() - start
    n_warn, text = _messages(caught)
    rows[_ENGINES[2]] = {
        "loglik": fit.loglik,
        **_tau_entries(fit.tau.to_numpy()),
        "sigma2": fit.sigma2,
        "converged": fit.converged,
        "n_messages": n_warn,
        "messages": text,
        "seconds": seconds,
    }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "engine"
    taus = list(_tau_entries(np.eye(q)))
    cols = ["loglik", *taus, "sigma2", "converged", "n_messages", "messages", "seconds"]
    return out[cols]


_QUANTITY = re.compile(r"^(fixef|se|T)(?:\[([^\]]+)\])?\[([^\]]+)\]$")


def _term(name: str) -> str:
    """lme4 and R&B spell the intercept ``(Intercept)``; patsy spells it ``Intercept``."""
    name = name.strip()
    return "Intercept" if name == "(Intercept)" else name


def _match(names, wanted: str) -> str | None:
    """The name in ``names`` that is ``wanted`` up to the order of an interaction's parts
    (lme4 writes ``cses:catholic`` where patsy writes ``catholic:cses``)."""
    key = ":".join(sorted(wanted.split(":")))
    for name in names:
        if ":".join(sorted(name.split(":"))) == key:
            return name
    return None


def _value_of(fit: MixedFit, quantity: str) -> float:
    if quantity == "sigma2":
        return fit.sigma2
    if quantity == "icc":
        return fit.icc()
    if quantity == "loglik":
        return fit.loglik
    m = _QUANTITY.match(quantity)
    if m is None:
        raise ValueError(
            f"unknown quantity {quantity!r}: use 'fixef[term]', 'se[term]', 'T[row,col]' "
            f"(or 'T[level][row,col]' with several grouping factors), 'sigma2', 'icc' or "
            f"'loglik'"
        )
    kind, level, inside = m.groups()
    if kind in ("fixef", "se"):
        if level is not None:
            raise ValueError(f"{quantity!r}: fixed effects have no level; write {kind}[term]")
        table = fit.fixed.set_index("term")
        term = _match(table.index, _term(inside))
        if term is None:
            raise KeyError(
                f"term {_term(inside)!r} of {quantity!r} is not a fixed effect of the fit; fixed "
                f"effects: {', '.join(table.index)}"
            )
        return float(table.loc[term, "estimate" if kind == "fixef" else "std_error"])
    if level is None:
        if len(fit.levels) > 1:
            raise ValueError(
                f"{quantity!r} is ambiguous: the fit has several grouping factors "
                f"({', '.join(fit.levels)}); write T[level][row,col]"
            )
        T = fit.tau
    else:
        level = level.strip()
        if level not in fit.taus:
            raise KeyError(f"{quantity!r}: {level!r} is not a grouping factor of the fit; "
                           f"grouping factors: {', '.join(fit.levels)}")
        T = fit.taus[level]
    parts = [_term(p) for p in inside.split(",")]
    if len(parts) != 2 or any(p not in T.index for p in parts):
        raise KeyError(
            f"{quantity!r} does not name an entry of T; random-effect terms: "
            f"{', '.join(T.index)}"
        )
    return float(T.loc[parts[0], parts[1]])


def compare_with_published(
    published: pd.DataFrame, fit: MixedFit, *, decimals: int = 2
) -> pd.DataFrame:
    r"""Put a fit's estimates beside the values of a published table.

    Parameters
    ----------
    published : pandas.DataFrame
        One row per published number, with columns ``quantity`` and ``published``.
        ``quantity`` names what the number estimates: ``"fixef[term]"`` (a fixed effect),
        ``"se[term]"`` (its standard error), ``"T[row,col]"`` (an entry of the level-2
        covariance matrix; ``"T[level][row,col]"`` for the covariance matrix of one grouping
        factor of a fit with several), ``"sigma2"``, ``"icc"`` or ``"loglik"`` (the maximised
        log-likelihood or REML criterion, as lme4's ``logLik``). The intercept may be written
        ``(Intercept)``, as lme4 and the tables in ``tests/reference`` do.
    fit : MixedFit
        The same model, fitted here.
    decimals : int, default 2
        Number of decimals the table prints.

    Returns
    -------
    pandas.DataFrame
        ``quantity, published, fit, difference, agrees``: ``difference`` is
        ``fit - published`` and ``agrees`` is True when the fit, rounded to ``decimals``,
        prints the published value.

    Raises
    ------
    TypeError
        If ``fit`` is not a :class:`~mlm_lessons.MixedFit` or ``published`` is not a data
        frame with a numeric ``published`` column.
    KeyError
        If a column is missing, or a quantity names a term the fit does not have.
    ValueError
        If a quantity is not of a known form, or ``decimals`` is negative.

    Notes
    -----
    A published table rounds its numbers, so a difference up to
    :math:`0.5 \times 10^{-d}` is rounding. A larger one means the published
    software stopped at another point of the likelihood, used other data, or the number was
    transcribed wrongly; ``agrees`` flags those rows. Validated on Raudenbush and Bryk
    (2002), Tables 4.2-4.4, with the lme4 fits of ``tests/reference``.

    Examples
    --------
    >>> import pandas as pd
    >>> import mlm_lessons as mlm
    >>> fit = mlm.fit_null(mlm.load_dataset("hsb"), "mathach", "school")
    >>> table_4_2 = pd.DataFrame({"quantity": ["fixef[(Intercept)]", "sigma2", "icc"],
    ...                           "published": [12.64, 39.15, 0.18]})
    >>> mlm.compare_with_published(table_4_2, fit).round(3)
                 quantity  published     fit  difference  agrees
    0  fixef[(Intercept)]      12.64  12.637      -0.003    True
    1              sigma2      39.15  39.148      -0.002    True
    2                 icc       0.18   0.180       0.000    True
    """
    check_fit(fit, hint="(from mlm.fit_mixed)")
    check_frame(published, "published")
    check_columns(published, ["quantity", "published"])
    check_numeric(published, "published")
    decimals = check_count(decimals, "decimals", minimum=0)
    quantities = [str(q) for q in published["quantity"]]
    values = np.array([_value_of(fit, q) for q in quantities])
    pub = published["published"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "quantity": quantities,
            "published": pub,
            "fit": values,
            "difference": values - pub,
            "agrees": np.isclose(np.round(values, decimals), pub, rtol=0, atol=1e-9),
        }
    )
