"""Design matrices from formulas, with input checks that name the offending column (private)."""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy

from mlm_lessons._checks import (
    check_columns,
    check_frame,
    check_groups,
    check_no_missing,
    check_numeric,
)

__all__ = ["Design", "build_design", "formula_variables", "new_design"]

# Names a formula may use that are not columns of the data (patsy and numpy helpers).
_KNOWN_FUNCTIONS = {"C", "I", "Q", "np", "center", "standardize", "scale", "log", "exp", "sqrt"}


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
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n, None)
    return list(seen)


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


@dataclass(frozen=True)
class Design:
    """Everything the fitting engine needs, in group-sorted order."""

    y: np.ndarray  # (n,)
    X: np.ndarray  # (n, p)
    Z: np.ndarray  # (n, q)
    codes: np.ndarray  # (n,) group index 0..J-1 for each row
    groups: pd.Index  # (J,) group labels, in order of first appearance
    fixed_names: list[str]
    random_names: list[str]
    outcome: str
    x_info: object  # patsy DesignInfo of X, for predictions on new data
    z_info: object  # patsy DesignInfo of Z


def _check_formula_data(data: pd.DataFrame, formula: str, extra: list[str]) -> list[str]:
    try:
        variables = formula_variables(formula)
    except (patsy.PatsyError, SyntaxError) as err:
        raise ValueError(f"cannot parse formula {formula!r}: {err}") from None
    check_columns(data, variables, role=f"variable in formula {formula!r}:")
    check_no_missing(data, variables + extra)
    return variables


def build_design(
    data: pd.DataFrame, formula: str, group: str, re_formula: str | None
) -> Design:
    """Validate ``data`` and build y, X, Z and group codes for a two-level model."""
    check_frame(data)
    if "~" not in formula:
        raise ValueError(f"formula {formula!r} needs an outcome: write it as 'y ~ x1 + x2'")
    check_groups(data, group)
    outcome_side = formula.split("~", 1)[0].strip()
    _check_formula_data(data, formula, [group])
    re_formula = "1" if re_formula is None else re_formula.strip()
    re_rhs = re_formula.lstrip("~").strip() or "1"
    _check_formula_data(data, "~ " + re_rhs, [])

    if outcome_side in data.columns:
        check_numeric(data, outcome_side, role="outcome")
    y_df, x_df = patsy.dmatrices(formula, data, return_type="dataframe", NA_action="raise")
    if y_df.shape[1] != 1:
        raise TypeError(
            f"outcome {outcome_side!r} must be a single numeric column, but the formula gives "
            f"{y_df.shape[1]} columns ({', '.join(y_df.columns)}); code it as numeric first"
        )
    z_df = patsy.dmatrix(re_rhs, data, return_type="dataframe", NA_action="raise")
    y = y_df.to_numpy(dtype=float).ravel()
    if not np.all(np.isfinite(y)):
        raise ValueError(f"outcome {outcome_side!r} has infinite values; remove those rows")
    if np.ptp(y) == 0:
        raise ValueError(
            f"outcome {outcome_side!r} is constant ({y[0]:g}); there is no variance to model"
        )
    X = x_df.to_numpy(dtype=float)
    Z = z_df.to_numpy(dtype=float)
    if X.shape[1] and np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(
            f"the fixed-effects design of {formula!r} is rank deficient (columns "
            f"{', '.join(x_df.columns)}): a predictor is constant or a linear combination of "
            f"others; drop it"
        )
    codes, groups = pd.factorize(data[group], sort=False)
    return Design(
        y=y,
        X=X,
        Z=Z,
        codes=codes.astype(np.intp),
        groups=pd.Index(groups, name=group),
        fixed_names=list(x_df.columns),
        random_names=list(z_df.columns),
        outcome=outcome_side,
        x_info=x_df.design_info,
        z_info=z_df.design_info,
    )


def new_design(design: Design, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Fixed and random design matrices of ``design`` evaluated on new data."""
    (X,) = patsy.build_design_matrices([design.x_info], data, NA_action="raise")
    (Z,) = patsy.build_design_matrices([design.z_info], data, NA_action="raise")
    return np.asarray(X, dtype=float), np.asarray(Z, dtype=float)
