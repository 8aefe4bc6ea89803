"""Model formulas in lme4's notation (private).

``y ~ x + (1 + x | school)`` is split into the fixed part, handed to patsy, and a list of
random-effects terms ``(expr | group)``. The grammar is lme4's:

- ``(expr | g)``: correlated random effects of the columns of ``expr`` (a patsy formula
  right-hand side, ``1`` for an intercept, ``0 + x`` for a slope alone) for each level of ``g``;
- ``(expr || g)``: the same columns, uncorrelated (a diagonal covariance);
- ``g`` may be a column, ``a:b`` (the levels of the pair), or ``a/b`` (nesting, shorthand for
  ``(expr | a) + (expr | a:b)``; ``a/b/c`` likewise);
- several terms on the same grouping factor, ``(1 + x | g) + (0 + z | g)``, give a
  block-diagonal covariance.

Two spellings of R are translated so that formulas copied from R work: ``I(x^2)`` becomes
``I(x**2)`` and ``log(x)`` / ``exp(x)`` / ``sqrt(x)`` are numpy's. The response may be
``cbind(successes, failures)`` (binomial models) and the fixed part may hold ``offset(...)``.

A dedicated parser is used rather than the ``formulae`` package (bambi's): ``formulae`` also
replaces patsy for the fixed part (other column names and contrasts than the book's) and builds
the random-effects design as a dense ``n x (levels x columns)`` matrix, which does not fit in
memory for a million rows and ten thousand groups; here only the bar terms are parsed and each
term keeps its ``n x q`` columns and integer codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["RandomSpec", "ParsedFormula", "parse_formula", "split_top_level"]


@dataclass(frozen=True)
class RandomSpec:
    """One bar term after expansion: the columns ``expr`` vary over the levels of ``group``."""

    expr: str  # patsy right-hand side, e.g. "1 + x" or "0 + x"
    group: str  # a column, or "a:b" for the levels of a pair
    correlated: bool = True

    @property
    def group_columns(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.group.split(":"))

    def __str__(self) -> str:
        bar = "|" if self.correlated else "||"
        return f"({self.expr} {bar} {self.group})"


@dataclass(frozen=True)
class ParsedFormula:
    """A model formula split into response, fixed part, offsets and random-effects terms."""

    response: str
    fixed: str  # patsy right-hand side ("1" when only an intercept)
    random: tuple[RandomSpec, ...] = ()
    offsets: tuple[str, ...] = ()
    binomial_response: tuple[str, str] | None = field(default=None)  # cbind(successes, failures)

    @property
    def fixed_formula(self) -> str:
        return f"{self.response} ~ {self.fixed}"

    def __str__(self) -> str:
        parts = [self.fixed] + [f"offset({o})" for o in self.offsets]
        parts += [str(r) for r in self.random]
        return f"{self.response} ~ " + " + ".join(parts)


def split_top_level(text: str, sep: str = "+") -> list[str]:
    """Split ``text`` at ``sep`` where it is not inside parentheses or quotes.

    A leading ``-`` (``- 1``) stays attached to its term.

    Examples
    --------
    >>> split_top_level("x + (1 + x | g) + I(a + b)")
    ['x', '(1 + x | g)', 'I(a + b)']
    """
    parts, depth, start, quote = [], 0, 0, None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"cannot parse formula: unbalanced parentheses in {text!r}")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0 or quote:
        raise ValueError(f"cannot parse formula: unbalanced parentheses or quotes in {text!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts]


_R_FUNCTIONS = re.compile(r"(?<![\w.])(log|exp|sqrt|log10|log2|abs)\(")


def translate_r(expr: str) -> str:
    """R spellings that patsy does not know: ``^`` inside ``I()``, bare ``log(`` etc.

    Examples
    --------
    >>> translate_r("I(age^2) + log(dose)")
    'I(age**2) + np.log(dose)'
    """
    out = []
    i = 0
    while i < len(expr):
        m = re.compile(r"(?<![\w.])I\(").search(expr, i)
        if not m:
            out.append(expr[i:])
            break
        out.append(expr[i : m.end()])
        depth, j = 1, m.end()
        while j < len(expr) and depth:
            depth += {"(": 1, ")": -1}.get(expr[j], 0)
            j += 1
        out.append(expr[m.end() : j].replace("^", "**"))
        i = j
    return _R_FUNCTIONS.sub(lambda mm: f"np.{mm.group(1)}(", "".join(out))


def _strip_outer(term: str) -> str | None:
    """The inside of ``( ... )`` when the parentheses enclose the whole term, else None."""
    if not (term.startswith("(") and term.endswith(")")):
        return None
    depth = 0
    for i, ch in enumerate(term):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i < len(term) - 1:
            return None
    return term[1:-1]


def _parse_bar(inner: str, original: str) -> list[RandomSpec]:
    if "||" in inner:
        left, _, right = inner.partition("||")
        correlated = False
    else:
        left, _, right = inner.partition("|")
        correlated = True
    expr, group = left.strip(), right.strip()
    if not expr:
        raise ValueError(
            f"random term {original!r} has nothing before the bar: write (1 | g) for a random "
            f"intercept"
        )
    if not group:
        raise ValueError(
            f"random term {original!r} names no grouping factor after the bar: write "
            f"(1 | g) with g a column of the data"
        )
    if "|" in group:
        raise ValueError(f"random term {original!r} has more than one bar")
    if re.search(r"[^\w.:/ ]", group):
        raise ValueError(
            f"grouping factor {group!r} in {original!r} must be a column name, a:b or a/b; "
            f"make a column for anything else (e.g. data['g'] = ...)"
        )
    expr = translate_r(expr)
    parts = [p.strip() for p in group.split("/")]
    if any(not p for p in parts):
        raise ValueError(f"grouping factor {group!r} in {original!r} has an empty part")
    groups = [":".join(parts[: k + 1]) for k in range(len(parts))]
    return [RandomSpec(expr=expr, group=g, correlated=correlated) for g in groups]


def parse_formula(formula: str) -> ParsedFormula:
    """Parse ``"y ~ fixed + (expr | group) + ..."``.

    Raises ``ValueError`` with the reason when the formula cannot be read.

    Examples
    --------
    >>> f = parse_formula("Reaction ~ Days + (Days | Subject)")
    >>> f.response, f.fixed, [str(r) for r in f.random]
    ('Reaction', 'Days', ['(Days | Subject)'])
    >>> [str(r) for r in parse_formula("y ~ 1 + (1 | school/class)").random]
    ['(1 | school)', '(1 | school:class)']
    """
    from mlm_lessons._checks import check_formula

    check_formula(formula, "'y ~ x + (1 | g)'")
    if formula.count("~") == 0:
        raise ValueError(
            f"formula {formula!r} needs an outcome: write it as 'y ~ x + (1 | g)'"
        )
    if formula.count("~") > 1:
        raise ValueError(f"cannot parse formula {formula!r}: it has more than one '~'")
    lhs, rhs = (s.strip() for s in formula.split("~"))
    if not lhs:
        raise ValueError(f"formula {formula!r} has no outcome left of '~'")
    if not rhs:
        raise ValueError(f"formula {formula!r} has nothing right of '~'; write 'y ~ 1' for "
                         f"an intercept only")
    binomial = None
    m = re.fullmatch(r"cbind\((.*)\)", lhs)
    if m:
        args = split_top_level(m.group(1), ",")
        if len(args) != 2 or not all(args):
            raise ValueError(f"cbind() in {formula!r} takes two arguments: successes, failures")
        binomial = (translate_r(args[0]), translate_r(args[1]))
    fixed_terms: list[str] = []
    offsets: list[str] = []
    random: list[RandomSpec] = []
    for term in split_top_level(rhs, "+"):
        if not term:
            raise ValueError(
                f"cannot parse formula {formula!r}: it has an empty term (two '+' in a row?)"
            )
        inner = _strip_outer(term)
        if inner is not None and "|" in inner:
            random.extend(_parse_bar(inner, term))
            continue
        if "|" in term:
            raise ValueError(
                f"random term {term!r} in {formula!r} must be in parentheses: (1 | g)"
            )
        mo = re.fullmatch(r"offset\((.*)\)", term)
        if mo:
            offsets.append(translate_r(mo.group(1).strip()))
            continue
        fixed_terms.append(translate_r(term))
    fixed = " + ".join(fixed_terms) if fixed_terms else "1"
    return ParsedFormula(
        response=translate_r(lhs) if binomial is None else lhs,
        fixed=fixed,
        random=tuple(random),
        offsets=tuple(offsets),
        binomial_response=binomial,
    )
