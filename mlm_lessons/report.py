"""Publication tables: several fitted models side by side.

:func:`model_table` puts a ladder of models in one table, the way articles report them (the
layout of R's ``modelsummary`` and ``texreg``): one column per model; the fixed effects with
their standard errors in parentheses; the variance components; the estimation method,
deviance, AIC and BIC; the number of observations and of groups of every grouping factor.
The result, a :class:`ModelTable`, holds the numbers in a tidy frame and writes them as HTML
(:meth:`ModelTable.to_html`, also what a notebook shows) and as a LaTeX ``tabular`` with
booktabs rules (:meth:`ModelTable.to_latex`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlm_lessons._checks import (
    check_bool,
    check_choice,
    check_count,
    check_fit_dict,
    check_label,
)
from mlm_lessons.models import MixedFit

__all__ = ["ModelTable", "model_table"]

FIXED, RANDOM, FIT, SIZE = "Fixed effects", "Random effects", "Model fit", "Sample size"
SECTIONS = (FIXED, RANDOM, FIT, SIZE)
_STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_UNICODE_LATEX = {
    "\u2212": "$-$",
    "\u00d7": r"$\times$",
    "\u03c3": r"$\sigma$",
    "\u03c4": r"$\tau$",
    "\u00b2": r"$^2$",
    "\u2013": "--",
}


def _latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    for uni, tex in _UNICODE_LATEX.items():
        out = out.replace(uni, tex)
    return out.replace("$$", "")  # adjacent symbols share one math group


@dataclass(frozen=True, eq=False)
class ModelTable:
    """Several models side by side; the numbers in :attr:`tidy`, the layout in the methods.

    Attributes
    ----------
    tidy : pandas.DataFrame
        One row per model and table entry: ``section`` (``"Fixed effects"``,
        ``"Random effects"``, ``"Model fit"``, ``"Sample size"``), ``term`` (the key: a
        fixed-effect name as in ``fit.params``; ``"<level>: Var(<effect>)"``,
        ``"<level>: Cov(<a>, <b>)"`` and ``"Residual: Var"`` for variance components (with
        ``random="sd"``: ``SD`` and ``Corr``); ``"estimation"``, ``"deviance"``,
        ``"aic"``, ``"bic"``, ``"n_obs"``, ``"groups: <level>"``), ``label`` (what the
        table prints), ``model``, ``estimate``, ``std_error`` and ``p_value`` (fixed
        effects only; NaN elsewhere) and ``text`` (the estimation method; empty
        elsewhere). Unrounded: the numbers are the fits' own.
    models : tuple of str
        The column names, in order.
    digits : int
        Decimals of estimates, standard errors and variance components.
    fit_digits : int
        Decimals of the deviance, AIC and BIC.
    se : bool
        Whether standard errors are shown.
    stars : bool
        Whether fixed effects carry significance stars.
    title : str or None
        Caption.
    notes : tuple of str
        Lines printed under the table.
    """

    tidy: pd.DataFrame
    models: tuple
    digits: int
    fit_digits: int
    se: bool
    stars: bool
    title: str | None
    notes: tuple

    # --- the cells --------------------------------------------------------------------------

    def _rows(self) -> list[tuple[str, str, str]]:
        """(section, term, label) in table order."""
        seen = self.tidy.drop_duplicates(["section", "term"])
        order = {s: i for i, s in enumerate(SECTIONS)}
        seen = seen.assign(_s=seen["section"].map(order)).sort_values("_s", kind="stable")
        return list(zip(seen["section"], seen["term"], seen["label"]))

    def _number(self, x: float, digits: int, minus: str) -> str:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return ""
        text = f"{x:.{digits}f}"
        if float(text) == 0:  # no "-0.00"
            text = text.lstrip("-")
        return text.replace("-", minus)

    def _cells(self, minus: str = "\u2212") -> dict:
        """(section, term, model) -> (estimate text, se text, stars)."""
        out = {}
        for r in self.tidy.itertuples(index=False):
            key = (r.section, r.term, r.model)
            if r.section == FIT and r.term == "estimation":
                out[key] = (r.text, "", "")
            elif r.section == SIZE:
                out[key] = (f"{int(r.estimate)}", "", "")
            elif r.section == FIT:
                out[key] = (self._number(r.estimate, self.fit_digits, minus), "", "")
            else:
                est = self._number(r.estimate, self.digits, minus)
                se = ""
                if self.se and not np.isnan(r.std_error):
                    se = "(" + self._number(r.std_error, self.digits, minus) + ")"
                star = ""
                if self.stars and not np.isnan(r.p_value):
                    star = next((s for cut, s in _STARS if r.p_value < cut), "")
                out[key] = (est, se, star)
        return out

    # --- outputs ----------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """The table as text: one row per entry, one column per model.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``(section, label)``; cells such as ``"12.64 (0.24)"``, empty where
            a model lacks the entry.
        """
        cells = self._cells(minus="-")
        rows, index = [], []
        for section, term, label in self._rows():
            row = []
            for m in self.models:
                est, se, star = cells.get((section, term, m), ("", "", ""))
                row.append(" ".join(x for x in (est + star, se) if x))
            rows.append(row)
            index.append((section, label))
        return pd.DataFrame(
            rows,
            columns=list(self.models),
            index=pd.MultiIndex.from_tuples(index, names=["section", "label"]),
        )

    def __str__(self) -> str:
        text = self.to_frame().to_string()
        extra = ([self.title] if self.title else []) + [text] + list(self.notes)
        return "\n".join(extra)

    def __repr__(self) -> str:
        return f"ModelTable(models={self.models!r}, rows={len(self._rows())})"

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(repr(self) if cycle else str(self))

    def to_html(self) -> str:
        """The table as an HTML ``<table>`` (caption, header row, one body per section).

        Section names are row-group headers, term names row headers (``scope`` set for
        screen readers); a standard error sits under its estimate in the same cell;
        notes go in the ``<tfoot>``. The element has the class ``mlm-model-table``.

        Returns
        -------
        str
        """
        cells = self._cells()
        k = len(self.models) + 1
        esc = html.escape
        parts = ['<table class="mlm-model-table">']
        if self.title:
            parts.append(f"<caption>{esc(self.title)}</caption>")
        head = "".join(f'<th scope="col">{esc(m)}</th>' for m in self.models)
        parts.append(f"<thead><tr><td></td>{head}</tr></thead>")
        current = None
        for section, term, label in self._rows():
            if section != current:
                if current is not None:
                    parts.append("</tbody>")
                parts.append(
                    f'<tbody><tr class="mlm-section"><th scope="rowgroup" '
                    f'colspan="{k}">{esc(section)}</th></tr>'
                )
                current = section
            tds = []
            for m in self.models:
                est, se, star = cells.get((section, term, m), ("", "", ""))
                content = esc(est) + (f"<sup>{esc(star)}</sup>" if star else "")
                if se:
                    content += f'<br/><span class="mlm-se">{esc(se)}</span>'
                tds.append(f"<td>{content}</td>")
            parts.append(f'<tr><th scope="row">{esc(label)}</th>{"".join(tds)}</tr>')
        parts.append("</tbody>")
        if self.notes:
            notes = "<br/>".join(esc(n) for n in self.notes)
            parts.append(f'<tfoot><tr><td colspan="{k}">{notes}</td></tr></tfoot>')
        parts.append("</table>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_latex(self, *, caption: str | None = None, label: str | None = None) -> str:
        r"""The table as LaTeX: a ``tabular`` with booktabs rules.

        Parameters
        ----------
        caption, label : str, optional
            With either, the tabular is wrapped in a ``table`` float with ``\caption`` and
            ``\label`` (``caption`` defaults to the table's ``title``).

        Returns
        -------
        str
            Needs ``\usepackage{booktabs}`` in the preamble. Numbers are set in math mode
            (a true minus sign); a standard error goes on the line under its estimate;
            section names are italic rows; notes are rows under the bottom rule.
        """
        cells = self._cells(minus="-")
        ncol = len(self.models)
        lines = [r"\begin{tabular}{l" + "c" * ncol + "}", r"\toprule"]
        lines.append(" & ".join([""] + [_latex_escape(m) for m in self.models]) + r" \\")
        current = None
        for section, term, row_label in self._rows():
            if section != current:
                lines.append(r"\midrule")
                lines.append(rf"\multicolumn{{{ncol + 1}}}{{l}}{{\emph{{{section}}}}} \\")
                current = section
            ests, ses = [], []
            for m in self.models:
                est, se, star = cells.get((section, term, m), ("", "", ""))
                if section == FIT and term == "estimation":
                    ests.append(_latex_escape(est))
                elif est:
                    ests.append(f"${est}" + (f"^{{{star}}}" if star else "") + "$")
                else:
                    ests.append("")
                ses.append(f"${se}$" if se else "")
            lines.append(" & ".join([_latex_escape(row_label)] + ests) + r" \\")
            if any(ses):
                lines.append(" & ".join([""] + ses) + r" \\")
        lines.append(r"\bottomrule")
        for note in self.notes:
            lines.append(
                rf"\multicolumn{{{ncol + 1}}}{{l}}{{\footnotesize "
                rf"{_latex_escape(note)}}} \\"
            )
        lines.append(r"\end{tabular}")
        body = "\n".join(lines)
        caption = self.title if caption is None else caption
        if caption is None and label is None:
            return body + "\n"
        wrap = [r"\begin{table}[htbp]", r"\centering"]
        if caption:
            wrap.append(rf"\caption{{{_latex_escape(caption)}}}")
        if label:
            wrap.append(rf"\label{{{label}}}")
        return "\n".join([*wrap, body, r"\end{table}"]) + "\n"


def _variance_rows(fit: MixedFit, random: str) -> list[tuple[str, float]]:
    """(term, value) of each variance component, residual last."""
    vc = fit.variance_components()
    rows = []
    for comp, r in vc.iterrows():
        if comp == "sigma2":
            continue
        desc = r["description"]
        if desc.startswith("Var("):
            if random == "sd":
                rows.append((f"{r['level']}: SD{desc[3:]}", float(r["std_dev"])))
            else:
                rows.append((f"{r['level']}: {desc}", float(r["estimate"])))
        else:
            if random == "sd":
                rows.append((f"{r['level']}: Corr{desc[3:]}", float(r["correlation"])))
            else:
                rows.append((f"{r['level']}: {desc}", float(r["estimate"])))
    if random == "sd":
        rows.append(("Residual: SD", float(np.sqrt(fit.sigma2))))
    else:
        rows.append(("Residual: Var", float(fit.sigma2)))
    return rows


_FIT_LABELS = {
    "estimation": "Estimation",
    "deviance": "Deviance (\u22122 log L)",
    "aic": "AIC",
    "bic": "BIC",
}


def model_table(
    fits: Mapping[str, MixedFit],
    *,
    digits: int = 2,
    fit_digits: int = 1,
    se: bool = True,
    stars: bool = False,
    random: str = "variance",
    fit_statistics: Sequence[str] = ("estimation", "deviance", "aic", "bic"),
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> ModelTable:
    r"""A publication table of several fitted models side by side.

    Parameters
    ----------
    fits : dict of str to MixedFit
        The models, keyed by the column name to show, in the order of the columns (a model
        ladder: null, random intercept, ...).
    digits : int, default 2
        Decimals of estimates, standard errors and variance components.
    fit_digits : int, default 1
        Decimals of the deviance, AIC and BIC.
    se : bool, default True
        Show the standard errors of the fixed effects, in parentheses under the estimates.
    stars : bool, default False
        Mark fixed effects with p < 0.05, 0.01, 0.001 (Wald z) by ``*``, ``**``, ``***``;
        a note explains them. Standard errors say more.
    random : {"variance", "sd"}, default "variance"
        Report the random part as variances and covariances (the notation of the course,
        HLM and Stata) or as standard deviations and correlations (lme4's print).
    fit_statistics : sequence of str, default ("estimation", "deviance", "aic", "bic")
        The rows of the model-fit section, in this order: any of ``"estimation"`` (REML
        or ML), ``"deviance"``, ``"aic"``, ``"bic"``; ``()`` leaves the section out (e.g.
        for REML fits with different fixed parts, whose deviances do not compare).
    labels : dict of str to str, optional
        Printed names for terms: fixed effects by their name in ``fit.params``
        (``{"cses": "SES (centred in school)"}``), variance components by their key in
        :attr:`ModelTable.tidy` (``{"school: Var(Intercept)": "School intercept"}``).
    title : str, optional
        Caption of the table.
    notes : sequence of str, optional
        Lines printed under the table, after the table's own notes.

    Returns
    -------
    ModelTable
        The numbers in ``.tidy``; ``.to_html()``, ``.to_latex()``, ``.to_frame()`` for the
        layouts. A notebook shows the HTML table.

    Raises
    ------
    TypeError
        If ``fits`` is not a dict, a value is not a :class:`~mlm_lessons.MixedFit`,
        ``labels`` is not a dict of strings, ``notes`` or ``fit_statistics`` not strings,
        or ``se`` / ``stars`` not True or False.
    ValueError
        If ``fits`` is empty, ``digits`` or ``fit_digits`` is negative, ``random`` or a
        fit statistic is unknown, or a key of ``labels`` is in no model.

    Notes
    -----
    Deviance is :math:`-2\ell` at the estimates: the ML deviance for ML fits and the REML
    criterion for REML fits. AIC and BIC are computed from it with lme4's count of
    parameters (``fit.aic``, ``fit.bic``). The table adds notes when its numbers need them:
    which criterion the deviance is; that REML deviances, AIC and BIC compare only models
    with the same fixed part (refit by ML to compare fixed parts, :func:`~mlm_lessons.lrt`
    does); that models fitted to different rows cannot be compared at all. The
    ``tidy`` frame holds the fits' unrounded numbers; ``tests/test_report.py`` checks each
    against the fits and that the HTML parses and the LaTeX compiles.

    Examples
    --------
    >>> import mlm_lessons as mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> table = mlm.model_table({
    ...     "Null": mlm.fit_null(hsb, "mathach", "school", method="ML"),
    ...     "SES": mlm.fit_random_intercept(hsb, "mathach", "school", predictors=["ses"],
    ...                                     method="ML"),
    ... })
    >>> print(table.to_frame().to_string())  # doctest: +NORMALIZE_WHITESPACE
                                                Null           SES
    section        label
    Fixed effects  Intercept            12.64 (0.24)  12.66 (0.19)
                   ses                                 2.39 (0.11)
    Random effects school: Var(Intercept)       8.55          4.73
                   Residual: Var               39.15         37.03
    Model fit      Estimation                     ML            ML
                   Deviance (−2 log L)       47115.8       46641.0
                   AIC                       47121.8       46649.0
                   BIC                       47142.4       46676.5
    Sample size    Observations                 7185          7185
                   Groups: school                160           160
    >>> print(table.to_latex().splitlines()[0])
    \begin{tabular}{lcc}
    """
    check_fit_dict(fits, "model_table({'Null': fit0, 'SES': fit1})")
    digits = check_count(digits, "digits", minimum=0)
    fit_digits = check_count(fit_digits, "fit_digits", minimum=0)
    check_bool(se, "se")
    check_bool(stars, "stars")
    check_choice(random, "random", ("variance", "sd"))
    if title is not None:
        check_label(title, "title")
    labels = {} if labels is None else labels
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise TypeError("labels must be a dict of term -> printed name (strings)")
    if isinstance(notes, str) or not all(isinstance(n, str) for n in notes):
        raise TypeError("notes must be a list of strings, e.g. notes=['Data: HSB.']")
    if isinstance(fit_statistics, str) or not all(isinstance(f, str) for f in fit_statistics):
        raise TypeError("fit_statistics must be a list of names, e.g. ('deviance', 'aic')")
    fit_statistics = tuple(fit_statistics)
    known = ("estimation", "deviance", "aic", "bic")
    if any(f not in known for f in fit_statistics) or len(set(fit_statistics)) != len(
        fit_statistics
    ):
        raise ValueError(
            f"fit_statistics must be distinct names from {known}, not {list(fit_statistics)}"
        )

    records = []

    def add(
        section, term, label, model, estimate=np.nan, std_error=np.nan, p_value=np.nan, text=""
    ):
        records.append(
            (
                section,
                term,
                labels.get(term, label),
                model,
                float(estimate),
                float(std_error),
                float(p_value),
                text,
            )
        )

    for name, fit in fits.items():
        for r in fit.fixed.itertuples(index=False):
            add(FIXED, r.term, r.term, name, r.estimate, r.std_error, r.p_value)
        for term, value in _variance_rows(fit, random):
            add(RANDOM, term, term, name, value)
        values = {"deviance": -2 * fit.loglik, "aic": fit.aic, "bic": fit.bic}
        for stat in fit_statistics:
            if stat == "estimation":
                add(FIT, stat, _FIT_LABELS[stat], name, text=fit.method)
            else:
                add(FIT, stat, _FIT_LABELS[stat], name, values[stat])
        add(SIZE, "n_obs", "Observations", name, fit.n_obs)
        for level, n in fit.ngroups.items():
            add(SIZE, f"groups: {level}", f"Groups: {level}", name, n)
    tidy = pd.DataFrame(
        records,
        columns=["section", "term", "label", "model", "estimate", "std_error", "p_value", "text"],
    )
    # variance components: residual after every level's components
    is_resid = tidy["term"].str.startswith("Residual: ")
    tidy = pd.concat([tidy[~is_resid], tidy[is_resid]], ignore_index=True)
    tidy = tidy.iloc[
        np.argsort(
            tidy["section"].map({s: i for i, s in enumerate(SECTIONS)}).to_numpy(), kind="stable"
        )
    ].reset_index(drop=True)
    unknown = sorted(set(labels) - set(tidy["term"]))
    if unknown:
        raise ValueError(
            f"labels name terms that are in no model: {unknown}; the terms are "
            f"{sorted(set(tidy['term']))}"
        )

    auto = []
    if se:
        auto.append("Standard errors in parentheses.")
    if stars:
        auto.append("* p < 0.05, ** p < 0.01, *** p < 0.001 (Wald z test).")
    methods = {f.method for f in fits.values()}
    shows_deviance = bool({"deviance", "aic", "bic"} & set(fit_statistics))
    if not shows_deviance:
        pass
    elif methods == {"REML"}:
        auto.append("Deviance: \u22122 times the REML log-likelihood.")
    elif methods == {"ML"}:
        auto.append("Deviance: \u22122 times the ML log-likelihood.")
    else:
        auto.append(
            "Deviance: \u22122 log-likelihood of each model's criterion (REML or ML); "
            "REML and ML values are not comparable."
        )
    reml_fixed = {tuple(f.params.index) for f in fits.values() if f.method == "REML"}
    if shows_deviance and len(reml_fixed) > 1:
        auto.append(
            "REML deviances, AIC and BIC compare only models with the same fixed "
            "effects; refit by ML to compare fixed parts."
        )
    prints = [f.fingerprint for f in fits.values()]
    if shows_deviance and any(
        p.n_obs != prints[0].n_obs or p.rows != prints[0].rows or p.outcome != prints[0].outcome
        for p in prints[1:]
    ):
        auto.append(
            "The models were fitted to different data: their deviances, AIC and "
            "BIC are not comparable."
        )
    return ModelTable(
        tidy=tidy,
        models=tuple(fits),
        digits=digits,
        fit_digits=fit_digits,
        se=bool(se),
        stars=bool(stars),
        title=title,
        notes=tuple(auto) + tuple(notes),
    )
