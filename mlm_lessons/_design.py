"""Design matrices of a mixed model from data and a formula (private).

:func:`build_design` turns a data frame and a parsed formula (:mod:`mlm_lessons._formula`) into
the response, the fixed-effects matrix and one :class:`Term` per grouping factor: its
integer codes, its ``n x q`` columns and the blocks of its covariance matrix. Every input
check that names a column lives here or in :mod:`mlm_lessons._checks`, so every model of the
package reports the same mistake with the same message.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy

from mlm_lessons._checks import (
    check_columns,
    check_finite,
    check_formula,
    check_frame,
    check_group_ids,
    check_name,
    check_no_missing,
    check_not_dates_as_text,
    check_not_in,
    check_numeric,
    check_real_array,
)
from mlm_lessons._formula import ParsedFormula, RandomSpec, parse_formula

__all__ = [
    "Design",
    "MatrixBuilder",
    "Term",
    "build_design",
    "design_from_arguments",
    "formula_variables",
]

# Names a formula may use that are not columns of the data (patsy and numpy helpers).
_KNOWN_FUNCTIONS = {"C", "I", "Q", "np", "center", "standardize", "scale", "log", "exp", "sqrt",
                    "Treatment", "Sum", "Poly", "Diff", "Helmert"}
_EVAL_ENV = patsy.EvalEnvironment([{"np": np}])
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def formula_variables(formula: str) -> list[str]:
    """Return the variable names a patsy formula refers to, in order of appearance.

    Function names (``np.log``, ``C``, ``I``) are not variables. ``Q("odd name")`` returns
    the quoted name.

    Examples
    --------
    >>> formula_variables("y ~ x + C(g) + np.log(z) + x:w")
    ['y', 'x', 'g', 'z', 'w']
    """
    desc = patsy.ModelDesc.from_formula(formula)
    names: list[str] = []
    for side in (desc.lhs_termlist, desc.rhs_termlist):
        for term in side:
            for factor in term.factors:
                names.extend(_names_in_code(factor.code))
    return list(dict.fromkeys(names))


def _names_in_code(code: str) -> list[str]:
    tree = ast.parse(code, mode="eval")
    out: list[str] = []
    called: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if (
                isinstance(node.func, ast.Name)
                and node.func.id == "Q"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                out.append(str(node.args[0].value))
            called.add(id(node.func))
        if isinstance(node, ast.Attribute):
            called.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in called:
            if node.id not in _KNOWN_FUNCTIONS and not hasattr(builtins, node.id):
                out.append(node.id)
    return out


def protect_names(expr: str, columns) -> str:
    """Wrap column names that patsy cannot read as Python (keywords such as ``yield``,
    names with dots) in ``Q("...")``.

    Examples
    --------
    >>> protect_names("yield + x + np.log(dose)", ["yield", "x", "dose"])
    'Q("yield") + x + np.log(dose)'
    """
    import keyword

    cols = set(map(str, columns))
    out, i = [], 0
    for m in re.finditer(r'"[^"]*"|\'[^\']*\'|[A-Za-z_][A-Za-z0-9_.]*', expr):
        tok = m.group(0)
        out.append(expr[i : m.start()])
        i = m.end()
        quoted = tok[0] in "\"'"
        if not quoted and tok in cols and (keyword.iskeyword(tok) or "." in tok):
            out.append(f'Q("{tok}")')
        else:
            out.append(tok)
    out.append(expr[i:])
    return "".join(out)


def _protected(parsed: ParsedFormula, columns) -> ParsedFormula:
    from dataclasses import replace

    pn = lambda e: protect_names(e, columns)  # noqa: E731
    return replace(
        parsed,
        response=pn(parsed.response) if parsed.binomial_response is None else parsed.response,
        fixed=pn(parsed.fixed),
        offsets=tuple(pn(o) for o in parsed.offsets),
        random=tuple(replace(r, expr=pn(r.expr)) for r in parsed.random),
        binomial_response=None if parsed.binomial_response is None else tuple(
            pn(e) for e in parsed.binomial_response),
    )


def _rhs_variables(rhs: str) -> list[str]:
    try:
        return formula_variables("~ " + rhs)
    except (patsy.PatsyError, SyntaxError) as err:
        raise ValueError(f"cannot parse formula {rhs!r}: {err}") from None


# --- evaluating a right-hand side on data ----------------------------------------------------


@dataclass(frozen=True)
class MatrixBuilder:
    """Evaluates one formula right-hand side on data, the same way on fitted and new data.

    Plain sums of numeric columns (``1 + x + z``, ``0 + x``) are built directly, which is much
    faster than patsy on small and on very large frames; anything else (categoricals,
    interactions, transformations) goes through patsy's stored ``DesignInfo``.
    """

    names: tuple[str, ...]
    intercept: bool = False
    # the terms as tuples of numeric columns (a product for an interaction), when no patsy
    # is needed
    simple: tuple[tuple[str, ...], ...] | None = None
    info: object = field(default=None, repr=False, compare=False)  # patsy DesignInfo

    def build(self, data: pd.DataFrame) -> np.ndarray:
        if self.simple is not None:
            out = np.empty((len(data), len(self.names)))
            j = 0
            if self.intercept:
                out[:, 0] = 1.0
                j = 1
            for term in self.simple:
                col = data[term[0]].to_numpy(dtype=float)
                for name in term[1:]:
                    col = col * data[name].to_numpy(dtype=float)
                out[:, j] = col
                j += 1
            return out
        (mat,) = patsy.build_design_matrices([self.info], data, NA_action="raise")
        return np.asarray(mat, dtype=float)


@functools.lru_cache(maxsize=512)
def _term_factors(rhs: str):
    """patsy's expansion of ``rhs``: (intercept, terms as tuples of factor codes), in the
    order patsy gives the columns when every factor is numeric; None if unparsable."""
    try:
        desc = patsy.ModelDesc.from_formula("~ " + rhs)
    except patsy.PatsyError:
        return None
    intercept, terms = False, []
    for term in desc.rhs_termlist:
        if not term.factors:
            intercept = True
            continue
        terms.append(tuple(f.code for f in term.factors))
    return intercept, tuple(terms)


def _simple_terms(rhs: str, data: pd.DataFrame):
    """``(intercept, terms)`` when every factor of ``rhs`` is a plain numeric column."""
    parsed = _term_factors(rhs)
    if parsed is None:
        return None
    intercept, terms = parsed
    for term in terms:
        for name in term:
            if not _NAME.fullmatch(name) or name not in data.columns:
                return None
            dtype = data[name].dtype
            if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
                return None
    return intercept, terms


def _with_categories(rhs: str, data: pd.DataFrame) -> pd.DataFrame:
    """``data`` with the text columns that ``rhs`` names as pandas categoricals.

    patsy finds the levels of a text column by looking at every value in Python (a few
    hundred milliseconds for ten thousand rows); of a categorical it reads the categories.
    The levels, their (sorted) order, the columns and their names are the same.
    """
    text = [c for c in data.columns
            if isinstance(c, str) and (pd.api.types.is_object_dtype(data[c].dtype)
                                       or pd.api.types.is_string_dtype(data[c].dtype))
            and re.search(rf"(?<![\w.]){re.escape(c)}(?![\w])", rhs)]
    if not text:
        return data
    converted = {}
    for c in text:
        values = data[c]
        if pd.api.types.infer_dtype(values, skipna=False) != "string":
            continue  # missing values and mixed types: patsy and the checks say what is wrong
        converted[c] = pd.Categorical(values)
    return data.assign(**converted) if converted else data


def make_builder(rhs: str, data: pd.DataFrame) -> tuple[MatrixBuilder, np.ndarray]:
    """A :class:`MatrixBuilder` for ``rhs`` and its matrix on ``data``.

    A right-hand side whose factors are all numeric columns (sums and products, ``a*b``) is
    built directly, in patsy's column order and with patsy's names; anything else (a
    categorical, a transformation) goes through patsy.
    """
    simple = _simple_terms(rhs, data)
    if simple is not None:
        intercept, terms = simple
        names = (("Intercept",) if intercept else ()) + tuple(":".join(t) for t in terms)
        builder = MatrixBuilder(names=names, intercept=intercept, simple=terms)
        return builder, builder.build(data)
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # check_design names the inf
            mat = patsy.dmatrix(rhs, _with_categories(rhs, data), return_type="dataframe",
                                NA_action="raise", eval_env=_EVAL_ENV)
    except patsy.PatsyError as err:
        raise ValueError(f"cannot evaluate {rhs!r} on the data: {err}") from None
    builder = MatrixBuilder(names=tuple(mat.columns), intercept="Intercept" in mat.columns,
                            info=mat.design_info)
    return builder, mat.to_numpy(dtype=float)


# --- grouping factors --------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """The random effects of one grouping factor: ``b_g ~ N(0, T)`` for each level ``g``.

    ``Z`` holds the ``q`` columns each row contributes to its level's effects, ``codes`` the
    level of each row. The covariance ``T`` is block diagonal over ``blocks`` (tuples of column
    indices, contiguous); a block of one column is a single variance, a longer block a full
    covariance matrix. Several bar terms on the same factor are amalgamated into one Term.
    """

    group: str  # "school" or "school:class"
    columns: tuple[str, ...]
    blocks: tuple[tuple[int, ...], ...]
    codes: np.ndarray = field(repr=False)  # (n,) level of each row
    levels: pd.Index = field(repr=False)  # labels of the levels, in code order
    Z: np.ndarray = field(repr=False)  # (n, q)
    builders: tuple[MatrixBuilder, ...] = field(repr=False, default=())
    group_columns: tuple[str, ...] = ()

    @property
    def q(self) -> int:
        return len(self.columns)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def diagonal(self) -> bool:
        return all(len(b) == 1 for b in self.blocks)

    def level_labels(self) -> np.ndarray:
        """Labels as strings for display: ``"a:b"`` for the levels of a pair."""
        if isinstance(self.levels, pd.MultiIndex):
            return np.array([":".join(map(str, t)) for t in self.levels], dtype=object)
        return np.asarray(self.levels)

    def codes_for(self, data: pd.DataFrame) -> np.ndarray:
        """Codes of the rows of new data; -1 for levels not seen in the fitted data."""
        key = group_key(data, self.group_columns)
        return np.asarray(self.levels.get_indexer(key), dtype=np.intp)

    def Z_for(self, data: pd.DataFrame) -> np.ndarray:
        return np.column_stack([b.build(data) for b in self.builders])


def group_key(data: pd.DataFrame, columns: tuple[str, ...]):
    """Labels of the grouping factor: a column, or a MultiIndex for the levels of a pair."""
    if len(columns) == 1:
        return pd.Index(data[columns[0]])
    return pd.MultiIndex.from_arrays([data[c] for c in columns], names=list(columns))


def _factor(data: pd.DataFrame, columns: tuple[str, ...]) -> tuple[np.ndarray, pd.Index]:
    key = group_key(data, columns)
    codes, levels = pd.factorize(key, sort=False)
    if not isinstance(levels, pd.Index):
        levels = pd.Index(levels)
    if len(columns) == 1:
        levels = pd.Index(levels, name=columns[0])
    return codes.astype(np.intp), levels


def _make_term(data: pd.DataFrame, specs: list[RandomSpec]) -> Term:
    group = specs[0].group
    columns: list[str] = []
    blocks: list[tuple[int, ...]] = []
    mats: list[np.ndarray] = []
    builders: list[MatrixBuilder] = []
    for spec in specs:
        builder, mat = make_builder(spec.expr, data)
        if mat.shape[1] == 0:
            raise ValueError(f"random term {spec} has no columns: write (1 | {group}) for an "
                             f"intercept")
        start = len(columns)
        for name in builder.names:
            if name in columns:
                raise ValueError(
                    f"{name!r} appears in more than one random term on {group!r} "
                    f"({', '.join(str(s) for s in specs)}); each column may vary once per "
                    f"grouping factor"
                )
            columns.append(name)
        idx = tuple(range(start, len(columns)))
        blocks.extend([idx] if spec.correlated else [(i,) for i in idx])
        mats.append(mat)
        builders.append(builder)
    codes, levels = _factor(data, specs[0].group_columns)
    return Term(
        group=group,
        columns=tuple(columns),
        blocks=tuple(blocks),
        codes=codes,
        levels=levels,
        Z=np.column_stack(mats),
        builders=tuple(builders),
        group_columns=specs[0].group_columns,
    )


# --- the design ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """Response, fixed-effects matrix and random-effects terms of one model on one data set."""

    formula: ParsedFormula
    y: np.ndarray  # (n,)
    X: np.ndarray  # (n, p)
    fixed_names: tuple[str, ...]
    terms: tuple[Term, ...]
    outcome: str
    x_builder: MatrixBuilder = field(repr=False)
    data: pd.DataFrame = field(repr=False)  # a private copy of the columns used
    offset: np.ndarray | None = field(default=None, repr=False)
    trials: np.ndarray | None = field(default=None, repr=False)  # binomial: successes+failures

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def p(self) -> int:
        return self.X.shape[1]

    def term(self, group: str) -> Term:
        if not isinstance(group, str):
            raise TypeError(f"level must be a grouping factor name (str), such as "
                            f"{self.terms[0].group!r}, not {type(group).__name__} {group!r}")
        for t in self.terms:
            if t.group == group:
                return t
        raise KeyError(
            f"{group!r} is not a grouping factor of this model; its factors are "
            f"{[t.group for t in self.terms]}"
        )

    def offset_for(self, data: pd.DataFrame) -> np.ndarray:
        """The offset evaluated on new data."""
        out = np.zeros(len(data))
        for off in self.formula.offsets:
            out += make_builder("0 + " + off, data)[1][:, 0]
        return out

    def with_response(self, y: np.ndarray) -> Design:
        """The same design with another response (for simulation and the bootstrap)."""
        y = check_real_array(y, "y", what="outcome values (finite numbers)")
        if y.shape != self.y.shape:
            raise ValueError(f"y must have {self.n} values (one per row of the fit), not "
                             f"{y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("y has missing or infinite values")
        return Design(self.formula, y, self.X, self.fixed_names, self.terms, self.outcome,
                      self.x_builder, self.data, self.offset, self.trials)

    def subset(self, rows: np.ndarray) -> Design:
        """The design of a subset of rows (boolean mask), with levels renumbered."""
        rows = np.asarray(rows, dtype=bool)
        terms = []
        for t in self.terms:
            used = np.unique(t.codes[rows])
            remap = np.full(t.n_levels, -1, dtype=np.intp)
            remap[used] = np.arange(len(used))
            terms.append(Term(t.group, t.columns, t.blocks, remap[t.codes[rows]],
                              t.levels[used], t.Z[rows], t.builders, t.group_columns))
        return Design(
            self.formula, self.y[rows], self.X[rows], self.fixed_names, tuple(terms),
            self.outcome, self.x_builder, self.data.loc[rows],
            None if self.offset is None else self.offset[rows],
            None if self.trials is None else self.trials[rows],
        )


def _variables_of(parsed: ParsedFormula) -> tuple[list[str], list[str], list[str]]:
    """Columns of the response, of the fixed part and offsets, and of the random parts."""
    if parsed.binomial_response is not None:
        response = [v for side in parsed.binomial_response for v in _rhs_variables(side)]
    else:
        response = _rhs_variables(parsed.response)
    fixed = _rhs_variables(parsed.fixed)
    for off in parsed.offsets:
        fixed += _rhs_variables(off)
    random: list[str] = []
    for spec in parsed.random:
        random += _rhs_variables(spec.expr) + list(spec.group_columns)
    return response, fixed, random


def build_design(data: pd.DataFrame, formula: str | ParsedFormula, *,
                 require_random: bool = True) -> Design:
    """Validate ``data`` for ``formula`` and build the design (the data are not modified)."""
    check_frame(data)
    parsed = parse_formula(formula) if isinstance(formula, str) else formula
    written = parsed
    parsed = _protected(parsed, data.columns)
    if require_random and not parsed.random:
        raise ValueError(
            f"formula {str(parsed)!r} has no random-effects term: add one such as (1 | group), "
            f"or pass group= to name the grouping column"
        )
    response_vars, fixed_vars, random_vars = _variables_of(parsed)
    group_cols = list(dict.fromkeys(c for s in parsed.random for c in s.group_columns))
    # a column that is by itself a grouping factor may not also be a fixed predictor; one
    # that only enters an interaction factor may ((1 | worker/machine) with machine fixed)
    whole = {s.group_columns[0] for s in parsed.random if len(s.group_columns) == 1}
    for g in group_cols:
        check_group_ids(data, g)
        if g in response_vars:
            raise ValueError(f"{g!r} is both the outcome and a group column")
        if g in whole:
            check_not_in(g, "group column", fixed_vars, "predictors of the fixed part")
    used = list(dict.fromkeys(response_vars + fixed_vars + random_vars))
    check_columns(data, [c for c in used if c not in group_cols], role="variable in formula")
    check_no_missing(data, used)
    check_finite(data, used)
    for v in response_vars:
        if v in fixed_vars + random_vars:
            raise ValueError(
                f"the outcome {v!r} is also among the predictors of {str(parsed)!r}; remove it "
                f"from the right-hand side"
            )
    for c in fixed_vars:
        _check_predictor_column(data, c)
        check_not_dates_as_text(data, c)
    work = data.copy()  # the fit's own copy: later edits of `data` change nothing

    # response
    trials = None
    if parsed.binomial_response is not None:
        succ = _response_column(work, parsed.binomial_response[0])
        fail = _response_column(work, parsed.binomial_response[1])
        y, trials = succ, succ + fail
        outcome = parsed.binomial_response[0]
    else:
        y = _response_column(work, parsed.response)
        outcome = written.response

    # fixed part
    fixed_rhs = parsed.fixed
    x_builder, X = make_builder(fixed_rhs, work)
    offset = None
    if parsed.offsets:
        offset = np.zeros(len(work))
        for off in parsed.offsets:
            o_builder, o_mat = make_builder("0 + " + off, work)
            if o_mat.shape[1] != 1:
                raise ValueError(f"offset({off}) must be one numeric column")
            offset += o_mat[:, 0]
        if not np.all(np.isfinite(offset)):
            raise ValueError("the offset has infinite values (log of 0?); remove those rows")

    # random part: one Term per grouping factor, in order of first appearance
    by_group: dict[str, list[RandomSpec]] = {}
    for spec in parsed.random:
        by_group.setdefault(spec.group, []).append(spec)
    terms = tuple(_make_term(work, specs) for specs in by_group.values())
    design = Design(
        formula=parsed,
        y=y,
        X=X,
        fixed_names=x_builder.names,
        terms=terms,
        outcome=outcome,
        x_builder=x_builder,
        data=work,
        offset=offset,
        trials=trials,
    )
    return design


def _check_predictor_column(data: pd.DataFrame, c: str) -> None:
    """Predictor columns that patsy would silently turn into many dummies."""
    dtype = data[c].dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise TypeError(
            f"predictor {c!r} holds dates or times ({dtype}); as a predictor it would become "
            f"one dummy per value: convert it to a number, e.g. days since the first date"
        )
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        values = pd.unique(data[c].dropna())
        numeric = pd.to_numeric(pd.Series(values), errors="coerce")
        if len(values) > 2 and numeric.notna().all():
            raise TypeError(
                f"predictor {c!r} holds numbers stored as text (e.g. {values[0]!r}); convert "
                f"it with pd.to_numeric, or wrap it in C({c}) if it is a categorical code"
            )


def _response_column(work: pd.DataFrame, expr: str) -> np.ndarray:
    if expr in work.columns:
        check_numeric(work, expr, role="outcome")
        y = work[expr].to_numpy(dtype=float)
    else:
        try:
            mat = patsy.dmatrix("0 + " + expr, work, return_type="dataframe",
                                NA_action="raise", eval_env=_EVAL_ENV)
        except patsy.PatsyError as err:
            raise ValueError(f"cannot evaluate the outcome {expr!r}: {err}") from None
        if mat.shape[1] != 1:
            raise TypeError(
                f"outcome {expr!r} must be a single numeric column, but gives {mat.shape[1]} "
                f"columns ({', '.join(mat.columns)}); code it as numeric first"
            )
        y = mat.to_numpy(dtype=float)[:, 0]
    if not np.all(np.isfinite(y)):
        raise ValueError(f"outcome {expr!r} has infinite values; remove those rows")
    return y


def design_from_arguments(formula: str, group: str | None, re_formula: str | None,
                          diagonal: bool) -> str:
    """The lme4-style formula of the keyword interface ``(formula, group, re_formula)``.

    ``fit_mixed(data, "y ~ x", "g", re_formula="x")`` is ``"y ~ x + (1 + x | g)"``;
    ``diagonal=True`` writes ``||``.

    Examples
    --------
    >>> design_from_arguments("y ~ x", "g", "x", False)
    'y ~ x + (x | g)'
    >>> design_from_arguments("y ~ x", "g", None, False)
    'y ~ x + (1 | g)'
    """
    check_formula(formula)
    if group is None:
        return formula
    check_name(group, "group")
    if "|" in formula:
        raise ValueError(
            f"formula {formula!r} already has random-effects terms; leave out group= (and "
            f"re_formula=) or write the formula without bars"
        )
    if re_formula is not None:
        check_formula(re_formula, "'x'", "re_formula")
    rhs = "1" if re_formula is None else (re_formula.strip().lstrip("~").strip() or "1")
    bar = "||" if diagonal else "|"
    return f"{formula} + ({rhs} {bar} {group})"
