"""Input validation and the package's warning classes (private).

Every public function of :mod:`mlm_lessons` checks its arguments with the validators here, so
that the same mistake gets the same exception and the same message everywhere. The policy
(``CONTRIBUTING.md``, "Checking input"):

- a wrong *type* raises ``TypeError``, a wrong *value* ``ValueError`` and a missing column
  ``KeyError``; the message names the argument or column, says what was found and what to do;
- nothing is coerced: ``"0.95"``, ``"False"``, ``True`` where a number is expected, ``5.0``
  where a count is expected, a list where one column name is expected are all ``TypeError``;
- seeds are non-negative integers (``None`` is refused: every result must repeat);
- a warning only where the answer is still right; otherwise an error;
- the input frame is never modified.
"""

from __future__ import annotations

import difflib
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "MLMWarning",
    "ConvergenceWarning",
    "BoundaryWarning",
    "warn",
    # data frames and columns
    "check_frame",
    "check_name",
    "check_names",
    "check_name_list",
    "check_columns",
    "check_numeric",
    "check_finite",
    "check_not_dates_as_text",
    "check_no_missing",
    "check_numeric_columns",
    "check_numeric_data",
    "check_distinct",
    "check_not_in",
    "check_new_column",
    "check_formula",
    # groups
    "check_group_ids",
    "check_groups",
    "check_level2_constant",
    "check_varies_within",
    # scalars and arrays
    "check_bool",
    "check_real",
    "check_real_array",
    "check_count",
    "check_int_grid",
    "check_seed",
    "check_conf_level",
    "check_probability",
    "check_choice",
    "check_method",
    "check_label",
    "check_axes",
    # fits and designs
    "check_fit",
    "check_fit_dict",
    "check_same_data",
    "check_single_factor",
    "check_design",
    "check_fitted",
    "check_outcome_varies_within",
    "check_new_data",
    # generalized linear mixed models
    "SeparationError",
    "check_family",
    "check_n_agq",
    "check_glmm_outcome",
    "check_glmm_design",
    "check_separation",
]


class MLMWarning(UserWarning):
    """Base class of every warning raised by :mod:`mlm_lessons`."""


class ConvergenceWarning(MLMWarning):
    """The optimizer did not reach a point where the gradient vanishes."""


class BoundaryWarning(MLMWarning):
    """A variance component is estimated at (or next to) zero, or a correlation at +-1."""


def _plain(value: object) -> object:
    """A numpy scalar as the Python value, so messages read 3, not np.int64(3)."""
    return value.item() if isinstance(value, np.generic) else value


def _show(value: object) -> str:
    """``repr`` of a value for a message, short, numpy scalars shown as Python values."""
    text = repr(_plain(value))
    return text if len(text) <= 60 else text[:57] + "..."


# --- warnings that point at the caller's line ---------------------------------------------------


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` with the stack level of the first frame outside mlm_lessons."""
    import sys
    import warnings

    frame = sys._getframe(1)
    level = 2  # stacklevel 1 is this line, 2 the caller of warn()
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in (
        "mlm_lessons", "threadpoolctl", "contextlib"
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


# --- data frames and column names ---------------------------------------------------------------


def check_frame(data: object, name: str = "data") -> pd.DataFrame:
    """``TypeError`` unless ``data`` is a pandas DataFrame; ``ValueError`` if it has no rows."""
    if not isinstance(data, pd.DataFrame):
        hint = ""
        if isinstance(data, pd.Series):
            hint = f"; a Series holds one column: pass the whole frame ({name}=df)"
        elif isinstance(data, np.ndarray | list | dict):
            hint = "; build one with pd.DataFrame(...) and name its columns"
        raise TypeError(
            f"{name} must be a pandas DataFrame in long format (one row per level-1 unit), "
            f"not {type(data).__name__}{hint}"
        )
    if len(data) == 0:
        raise ValueError(f"{name} has no rows")
    return data


_GROUP_ROLES = ("group", "group column", "level2", "level3")


def check_name(value: object, role: str) -> str:
    """A column name: a non-empty string (``TypeError`` otherwise; ``ValueError`` if empty)."""
    if not isinstance(value, str):
        hint = ""
        if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            hint = f"; pass one column name, e.g. {role.split()[0]}={value[0]!r}"
            if role in _GROUP_ROLES:
                hint += (" (for groups within groups write the formula '(1 | a/b)' with "
                         "fit_mixed, or use fit_three_level)")
        raise TypeError(
            f"{role} must be a column name (str), not {type(value).__name__} {_show(value)}{hint}"
        )
    if not value.strip():
        raise ValueError(f"{role} must be a column name, not the empty string {value!r}")
    return value


def check_names(**names: object) -> None:
    """:func:`check_name` for every ``role=name`` pair."""
    for role, name in names.items():
        check_name(name, role)


def check_formula(value: object, example: str = "'y ~ x'", name: str = "formula") -> str:
    """A model formula: a string (``TypeError`` otherwise, with an example)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string such as {example}, not "
                        f"{type(value).__name__} {_show(value)}")
    return value


def check_name_list(
    value: object, role: str, *, allow_empty: bool = True, allow_none: bool = False
) -> list[str]:
    """One column name or a sequence of them, as a list without repeats."""
    if value is None and allow_none:
        return []
    if isinstance(value, str):
        names = [value]
    elif isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise TypeError(
            f"{role} must be a column name or a list of column names, not "
            f"{type(value).__name__} {_show(value)}"
        )
    else:
        names = list(value)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(
            f"{role} must be column names (non-empty strings), but holds "
            f"{type(bad[0]).__name__} {_show(bad[0])}"
        )
    if any(not n.strip() for n in names):
        raise ValueError(f"{role} must be column names, not the empty string")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{role} lists a column more than once ({', '.join(map(repr, dup))}); "
                         f"name each column once")
    if not names and not allow_empty:
        raise ValueError(f"{role} is empty: name at least one column")
    return names


def check_columns(data: pd.DataFrame, columns: Iterable[str], *, role: str = "column") -> None:
    """``KeyError`` naming every requested column that is not in ``data``.

    A column that appears twice in ``data`` (duplicate names) is a ``ValueError``: it cannot be
    told apart from its namesake.
    """
    columns = list(columns)
    missing = [c for c in columns if c not in data.columns]
    if missing:
        shown = list(map(str, data.columns))
        available = ", ".join(shown[:30]) + (f", ... ({len(shown)} in all)" if len(shown) > 30
                                             else "")
        names = ", ".join(repr(c) for c in missing)
        close = difflib.get_close_matches(str(missing[0]), shown, n=1, cutoff=0.75)
        lower = [c for c in shown if c.lower() == str(missing[0]).lower()]
        hint = f"; did you mean {(lower or close)[0]!r}?" if (lower or close) else ""
        raise KeyError(f"{role} {names} not in data; available columns: {available}{hint}")
    dup = [c for c in dict.fromkeys(columns) if int(np.sum(data.columns == c)) > 1]
    if dup:
        raise ValueError(
            f"data has more than one column named {dup[0]!r}; rename them so that each name "
            f"is unique (e.g. data.columns = [...])"
        )


def _numeric_hint(series: pd.Series, column: str) -> str:
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return "it holds dates or times: convert them to a number, e.g. days since the first date"
    if isinstance(dtype, pd.CategoricalDtype):
        return (f"it is categorical: make a 0/1 indicator of one category, or use "
                f"data[{column!r}].cat.codes if the order of the categories means something")
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        values = pd.unique(series.dropna())[:50]
        if len(values) and pd.to_numeric(pd.Series(values), errors="coerce").notna().all():
            return (f"its values are numbers stored as text (e.g. {_show(values[0])}): convert "
                    f"it with pd.to_numeric(data[{column!r}])")
    return "convert it (e.g. pd.to_numeric) or code it as 0/1"


def check_numeric(data: pd.DataFrame, column: str, *, role: str = "column") -> None:
    """``TypeError`` unless ``data[column]`` is numeric (bool counts as numeric)."""
    s = data[column]
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        raise TypeError(
            f"{role} {column!r} must be numeric, but has dtype {s.dtype}; "
            f"{_numeric_hint(s, column)}"
        )


_DATE_TEXT = re.compile(r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/]\d{1,2}[-/]\d{2,4}"
                        r"|\d{1,2}\.\d{1,2}\.\d{4})([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?$")


def check_not_dates_as_text(data: pd.DataFrame, column: str, *, role: str = "predictor") -> None:
    """``TypeError`` for a text column whose values are all dates (``"2020-01-31"``): as a
    predictor it would become one dummy per date."""
    s = data[column]
    if not (pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)):
        return
    values = pd.unique(s.dropna())[:50]
    if len(values) < 3 or not all(isinstance(v, str) for v in values):
        return
    # year-month-day or day-month-year with three numeric parts (not "10-19", not "May")
    if all(_DATE_TEXT.match(v.strip()) for v in values):
        raise TypeError(
            f"{role} {column!r} holds dates stored as text (e.g. {values[0]!r}); as a "
            f"predictor it would become one dummy per date: convert it with pd.to_datetime, "
            f"then to a number, e.g. days since the first date"
        )


def check_finite(data: pd.DataFrame, columns: Iterable[str], *, role: str = "column") -> None:
    """``ValueError`` naming a numeric column with infinite values."""
    for c in columns:
        s = data[c]
        if not pd.api.types.is_float_dtype(s.dtype):
            continue
        n = int(np.isinf(s.to_numpy(dtype=float, na_value=np.nan)).sum())
        if n:
            raise ValueError(
                f"{role} {c!r} has {n} infinite value(s) (a log of 0, or a division by 0?); "
                f"remove or recode those rows"
            )


def check_no_missing(data: pd.DataFrame, columns: Iterable[str]) -> None:
    """``ValueError`` naming each column with missing values and how many."""
    for c in columns:
        n = int(data[c].isna().sum())
        if n:
            raise ValueError(
                f"column {c!r} has {n} missing value(s); drop those rows first, "
                f"e.g. data.dropna(subset=[{c!r}])"
            )


def check_numeric_columns(data: pd.DataFrame, columns: Sequence[str],
                          role: str = "column") -> None:
    """Every column is in ``data``, numeric, finite and without missing values."""
    check_columns(data, columns, role=role)
    for c in columns:
        check_numeric(data, c, role=role)
    check_no_missing(data, columns)
    check_finite(data, columns, role=role)


def check_numeric_data(
    data: pd.DataFrame, columns: Sequence[str], group: str | None = None, *,
    role: str = "column"
) -> pd.Series | None:
    """:func:`check_frame`, :func:`check_numeric_columns`, then the group (if any).

    Returns the group sizes (None without a group).
    """
    check_frame(data)
    for c in columns:
        check_name(c, role)
    if group is not None:
        check_name(group, "group")
        if group in columns:
            raise ValueError(
                f"{group!r} is both the group column and a column to use; an identifier is a "
                f"label, not a measurement: pass another column"
            )
    check_numeric_columns(data, columns, role=role)
    if group is None:
        return None
    return check_groups(data, group, min_groups=1)


def check_distinct(**roles: str | None) -> None:
    """``ValueError`` when two roles (``outcome=``, ``predictor=``, ``group=``...) name the
    same column."""
    seen: dict[str, str] = {}
    for role, name in roles.items():
        if name is None:
            continue
        check_name(name, role)
        if name in seen:
            first = seen[name]
            if "group" in (first, role) and "group_mean" not in (first, role):
                other = role if first == "group" else first
                raise ValueError(
                    f"the group column {name!r} is also the {other}; remove it: an identifier "
                    f"is a label, not a measurement (as a number it means nothing, as dummies "
                    f"it duplicates the random effects); use a level-2 variable of the groups "
                    f"instead"
                )
            if first == "outcome":
                raise ValueError(
                    f"the outcome {name!r} is also the {role}; remove it: a variable cannot "
                    f"explain itself"
                )
            raise ValueError(
                f"the {first} {name!r} is also the {role}; each role needs its own column"
            )
        seen[name] = role


def check_not_in(name: str, role: str, columns: Iterable[str], where: str) -> None:
    """``ValueError`` when the column ``name`` (playing ``role``) is among ``columns``."""
    if name in list(columns):
        if role in _GROUP_ROLES or role.startswith("group"):
            why = ("an identifier is a label, not a measurement (as a number it means nothing, "
                   "as dummies it duplicates the random effects); use a level-2 variable of "
                   "the groups instead")
        else:
            why = "a variable cannot explain itself"
        raise ValueError(f"the {role} {name!r} is also among the {where}; remove it: {why}")


def check_new_column(name: object, default: str, protected: Mapping[str, str]) -> str:
    """The name of a column a helper adds: ``default`` when None; never an input column
    that the result still needs (``protected``: role -> column)."""
    if name is None:
        name = default
    check_name(name, "name")
    for role, column in protected.items():
        if column is not None and name == column:
            raise ValueError(
                f"name={name!r} would overwrite the {role} column {column!r}; choose a new "
                f"name, e.g. name={default!r}"
            )
    return name


# --- group identifiers ----------------------------------------------------------------------------


def _kind(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, float | np.floating):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def _check_float_ids(values: np.ndarray, group: str) -> None:
    values = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"group column {group!r} has infinite values; an identifier is a label")
    frac = values != np.round(values)
    if frac.any():
        raise ValueError(
            f"group column {group!r} holds non-integer numbers (e.g. "
            f"{float(values[frac][0])!r}): it looks like a measurement, not an identifier, "
            f"and equal values would be merged into one group (and ids that differ in the "
            f"last bit split). Pass the column that identifies the groups; if this one does, "
            f"convert it with data[{group!r}].astype(str)"
        )


def check_group_ids(data: pd.DataFrame, group: str, *, role: str = "group column") -> None:
    """Raise when ``data[group]`` cannot serve as identifiers of groups.

    Identifiers are labels: integers, strings, categories, dates. Missing ids
    (``ValueError``), a boolean column (``TypeError``: an indicator, not an identifier), a
    column that mixes types (``1`` and ``"1"`` would silently be two groups) and floating-point
    values that are not whole numbers (a measurement such as a school mean, whose equal
    values would merge groups, or ids that differ in the last bit) are rejected with what to
    do.
    """
    check_name(group, "group" if role == "group column" else role)
    check_columns(data, [group], role=role)
    col = data[group]
    n_na = int(col.isna().sum())
    if n_na:
        raise ValueError(
            f"group column {group!r} has {n_na} missing value(s); every row needs a group: "
            f"drop those rows or give them an identifier"
        )
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        used = col.cat.categories[np.unique(col.cat.codes.to_numpy())]
        values, dtype = np.asarray(used), used.dtype
    else:
        values = None
    if pd.api.types.is_bool_dtype(dtype):
        raise TypeError(
            f"group column {group!r} is boolean (True/False): that is an indicator (a level-2 "
            f"variable with two values), not an identifier of groups; pass the column that "
            f"identifies the groups"
        )
    if pd.api.types.is_float_dtype(dtype):
        _check_float_ids(col.to_numpy(dtype=float) if values is None else values, group)
    elif pd.api.types.is_object_dtype(dtype):
        uniq = pd.unique(col.to_numpy()) if values is None else values
        kinds = {_kind(v) for v in uniq}
        if len(kinds) > 1:
            raise ValueError(
                f"group column {group!r} mixes value types ({', '.join(sorted(kinds))}): "
                f"1 and '1' would be different groups. Convert it to one type, e.g. "
                f"data[{group!r}].astype(str)"
            )
        if kinds == {"float"}:
            _check_float_ids(uniq.astype(float), group)
        if kinds == {"bool"}:
            raise TypeError(
                f"group column {group!r} holds True/False values: that is an indicator, not "
                f"an identifier of groups; pass the column that identifies the groups"
            )


def _single_row_message(group: str, n: int, n_groups: int) -> str:
    return (
        f"every group in {group!r} has a single row ({n} rows, {n_groups} groups): "
        f"level-1 and level-2 variance cannot be separated; check that {group!r} identifies "
        f"groups, not rows"
    )


def check_groups(
    data: pd.DataFrame, group: str, *, min_groups: int = 2, min_size: int = 1
) -> pd.Series:
    """Validate the level-2 identifier (:func:`check_group_ids`) and return the group sizes.

    Raises ``ValueError`` when there are fewer than ``min_groups`` groups, or when every group
    has fewer than ``min_size`` rows.
    """
    check_group_ids(data, group)
    sizes = data.groupby(group, sort=False, observed=True).size()
    if len(sizes) < min_groups:
        raise ValueError(
            f"group column {group!r} has {len(sizes)} distinct value(s); a multilevel model "
            f"needs at least {min_groups} groups"
        )
    if min_size > 1 and int(np.max(sizes.to_numpy())) < min_size:
        if min_size == 2:
            raise ValueError(_single_row_message(group, len(data), len(sizes)))
        raise ValueError(
            f"every group in {group!r} has fewer than {min_size} rows; level-1 and level-2 "
            f"variation cannot be separated"
        )
    return sizes


def _within_range(data: pd.DataFrame, column: str, group: str) -> pd.Series:
    """Per group: whether ``column`` takes more than one value (floats up to rounding)."""
    s = data[column]
    grouped = data.groupby(group, sort=False, observed=True)[column]
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        x = s.to_numpy(dtype=float, na_value=np.nan)
        scale = max(1.0, float(np.nanmax(np.abs(x)))) if np.isfinite(x).any() else 1.0
        spread = grouped.max() - grouped.min()
        return spread.astype(float) > 1e-12 * scale
    return grouped.nunique(dropna=False) > 1


def check_level2_constant(data: pd.DataFrame, columns, group: str, *,
                          role: str = "level-2 variable", advice: str | None = None) -> None:
    """``ValueError`` for a level-2 variable that varies within a group of ``group``."""
    columns = list(columns)
    check_group_ids(data, group)
    check_columns(data, columns)
    advice = advice or ("pass it as a level-1 variable (level1=), or use its group mean "
                        "(mlm.add_group_mean)")
    for c in columns:
        varies = _within_range(data, c, group)
        bad = varies[varies.to_numpy()]
        if len(bad):
            raise ValueError(
                f"{role} {c!r} varies within {len(bad)} group(s) of {group!r} "
                f"(e.g. {_show(bad.index[0])}): a level-2 variable has one value per group; "
                f"{advice}"
            )


def check_varies_within(data: pd.DataFrame, column: str, group: str, *, role: str) -> None:
    """``ValueError`` when ``column`` is constant within every group (a level-2 variable)."""
    if not _within_range(data, column, group).any():
        raise ValueError(
            f"{role} {column!r} is constant within every group of {group!r} (a level-2 "
            f"variable): it has no within-group variation, so a within-group effect is not "
            f"defined; use it as a level-2 predictor instead"
        )


# --- scalars and arrays ---------------------------------------------------------------------------


def _text_hint(value: str, name: str) -> str:
    try:
        float(value)
    except ValueError:
        return ""
    return f"; write the number without quotes, e.g. {name}={value.strip()}"


def check_bool(value: object, name: str) -> bool:
    """True or False (numpy booleans too); ``TypeError`` for anything else, 0/1 and 'False'
    included."""
    if not isinstance(value, bool | np.bool_):
        hint = ""
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            hint = (f"; the string {value!r} is not a boolean (any non-empty string is true): "
                    f"write {name}={value.strip().capitalize()} without quotes")
        raise TypeError(f"{name} must be True or False, not {_show(value)}{hint}")
    return bool(value)


def _bound_text(minimum, maximum, strict_min, strict_max) -> str:
    if minimum is not None and maximum is not None:
        text = f"between {minimum:g} and {maximum:g}"
        if strict_min != strict_max:
            text += " (" + ("excluding" if strict_min else "including") + f" {minimum:g})"
        return text
    if minimum is not None:
        return f"a number {'>' if strict_min else '>='} {minimum:g}"
    if maximum is not None:
        return f"a number {'<' if strict_max else '<='} {maximum:g}"
    return "a finite number"


def _outside(v: np.ndarray, minimum, maximum, strict_min, strict_max) -> np.ndarray:
    bad = np.zeros(v.shape, dtype=bool)
    if minimum is not None:
        bad |= (v <= minimum) if strict_min else (v < minimum)
    if maximum is not None:
        bad |= (v >= maximum) if strict_max else (v > maximum)
    return bad


def check_real(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_min: bool = False,
    strict_max: bool = False,
    finite: bool = True,
    what: str | None = None,
) -> float:
    """A real number (numpy scalars too) within bounds, as a float.

    ``TypeError`` ("must be a number") for strings (even ``"0.2"``), booleans, None and other
    types; ``ValueError`` ("must be <what>") for NaN, an infinite value (unless
    ``finite=False``) and a value out of bounds.
    """
    what = what or _bound_text(minimum, maximum, strict_min, strict_max)
    if isinstance(value, str | bytes):
        hint = _text_hint(value, name) if isinstance(value, str) else ""
        raise TypeError(f"{name} must be a number, not the string {value!r}{hint}")
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, not {type(value).__name__} {_show(value)}")
    v = float(value)
    if np.isnan(v) or (finite and not np.isfinite(v)):
        raise ValueError(f"{name} must be {what}, not {v}")
    if _outside(np.asarray(v), minimum, maximum, strict_min, strict_max):
        raise ValueError(f"{name} must be {what}, not {_show(value)}")
    return v


def check_real_array(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_min: bool = False,
    strict_max: bool = False,
    what: str | None = None,
    allow_empty: bool = False,
) -> np.ndarray:
    """A number or an array-like of numbers within bounds, as a float array.

    The same rules as :func:`check_real`, element by element: strings (even ``"0.1"``),
    booleans and None are ``TypeError``; NaN, infinite and out-of-bounds values
    ``ValueError``.
    """
    what = what or _bound_text(minimum, maximum, strict_min, strict_max)
    kind_error = f"{name} must be a number or an array of numbers"
    if isinstance(value, str | bytes):
        hint = _text_hint(value, name) if isinstance(value, str) else ""
        raise TypeError(f"{kind_error}, not the string {value!r}{hint}")
    if isinstance(value, Mapping | set) or value is None:
        raise TypeError(f"{kind_error}, not {type(value).__name__}")
    if isinstance(value, pd.Series | pd.Index):
        value = value.to_numpy(dtype=object)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{kind_error}, not {_show(value)}") from None
    if arr.dtype.kind == "O":
        flat = arr.ravel()
        for v in flat:
            if isinstance(v, str | bytes | bool | np.bool_) or not (
                isinstance(v, numbers.Real) or v is None or v is pd.NA
            ):
                raise TypeError(f"{kind_error}, but holds {type(v).__name__} {_show(v)}")
        if any(v is None or v is pd.NA for v in flat):
            raise ValueError(f"{name} has missing values; give numbers")
        arr = arr.astype(float)
    if arr.dtype.kind not in "iuf":
        kind = {"b": "booleans", "U": "strings", "S": "bytes", "c": "complex numbers",
                "M": "dates", "m": "time spans"}.get(arr.dtype.kind, str(arr.dtype))
        raise TypeError(f"{kind_error}, not {kind}")
    arr = arr.astype(float)
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} must hold at least one value")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be {what}, not {arr[~np.isfinite(arr)].ravel()[0]}")
    bad = _outside(arr, minimum, maximum, strict_min, strict_max)
    if bad.any():
        raise ValueError(f"{name} must be {what}, not {arr[bad].ravel()[0]:g}")
    return arr


def _integral_hint(value: object) -> str:
    if isinstance(value, float | np.floating) and np.isfinite(value) and value == int(value):
        return f" (a float: write {int(value)})"
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return f" (a string: write {value.strip()} without quotes)"
    return ""


def check_count(value: object, name: str, *, minimum: int = 1, allow_none: bool = False) -> int:
    """An integer of at least ``minimum``: ``TypeError`` for other types (bool, 5.0 and '5'
    included), ``ValueError`` below ``minimum``. ``None`` passes when ``allow_none``."""
    if value is None and allow_none:
        return None
    text = f"an integer >= {minimum}" + (" or None" if allow_none else "")
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {text}, not {_show(value)}{_integral_hint(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be {text}, not {_show(value)}")
    return int(value)


def check_int_grid(value: object, name: str, minimum: int) -> list[int]:
    """One integer or a sequence of integers, each at least ``minimum``."""
    values = list(value) if isinstance(value, list | tuple | range | np.ndarray | pd.Series) \
        else [value]
    if not values:
        raise ValueError(f"{name} must hold at least one value")
    out = []
    for v in values:
        if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be integers >= {minimum} (one or a list), not "
                            f"{_show(v)}{_integral_hint(v)}")
        if v < minimum:
            raise ValueError(f"{name} must be integers >= {minimum} (one or a list), not "
                             f"{_show(v)}")
        out.append(int(v))
    return out


def check_seed(seed: object, name: str = "seed", *, generator: bool = False):
    """A reproducible seed: a non-negative integer (or, with ``generator``, a numpy Generator).

    ``None`` is refused (``TypeError``): a result drawn from fresh entropy cannot be repeated.
    A negative integer is a ``ValueError`` (numpy's generators take seeds >= 0).
    """
    if generator and isinstance(seed, np.random.Generator):
        return seed
    allowed = "a non-negative integer" + (" or a numpy Generator" if generator else "")
    if seed is None:
        raise TypeError(
            f"{name} must be {allowed} so that the result can be reproduced (None would give "
            f"a different result on every run); pass e.g. {name}=1"
        )
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be {allowed}, not {_show(seed)}{_integral_hint(seed)}")
    if seed < 0:
        raise ValueError(f"{name} must be {allowed}, not {_show(seed)}; use e.g. {name}="
                         f"{abs(int(seed))}")
    return int(seed)


def check_conf_level(conf_level: object, name: str = "conf_level") -> float:
    """A level strictly between 0 and 1, as a float (``95`` is refused with a hint)."""
    what = "between 0 and 1 (e.g. 0.95)"
    v = check_real(conf_level, name, what=what)
    if not 0 < v < 1:
        hint = f"; for a {v:g}% interval write {name}={v / 100:g}" if 1 < v < 100 else ""
        raise ValueError(f"{name} must be {what}, not {_show(conf_level)}{hint}")
    return v


def check_probability(value: object, name: str) -> float:
    """A probability strictly between 0 and 1 (a significance level), as a float."""
    what = "between 0 and 1 (e.g. 0.05)"
    v = check_real(value, name, what=what)
    if not 0 < v < 1:
        hint = f"; for {v:g}% write {name}={v / 100:g}" if 1 < v < 100 else ""
        raise ValueError(f"{name} must be {what}, not {_show(value)}{hint}")
    return v


def _choices_text(choices: Sequence[str]) -> str:
    quoted = [repr(c) for c in choices]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return "one of " + ", ".join(quoted)


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (strings): ``TypeError`` for a non-string, ``ValueError`` otherwise."""
    text = _choices_text(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {text}, not {_show(value)}")
    if value not in choices:
        close = [c for c in choices if c.lower() == value.strip().lower()]
        close = close or difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{name} must be {text}, not {value!r}{hint}")
    return value


def check_method(method: object) -> str:
    """``"REML"`` or ``"ML"``; return it."""
    return check_choice(method, "method", ("REML", "ML"))


def check_label(value: object, name: str) -> str | None:
    """An axis label or other text: a string or None."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None, not {type(value).__name__} "
                        f"{_show(value)}")
    return value


def check_axes(ax: object):
    """None (a new figure) or a matplotlib Axes."""
    if ax is None:
        return None
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(
            f"ax must be a matplotlib Axes (e.g. fig, ax = plt.subplots()) or None, not "
            f"{type(ax).__name__}"
        )
    return ax


# --- fits ---------------------------------------------------------------------------------------


def check_fit(fit: object, name: str = "fit", hint: str = "(from fit_mixed, fit_null, ...)"):
    """``TypeError`` unless ``fit`` is a :class:`mlm_lessons.MixedFit`; return it."""
    from mlm_lessons.models import MixedFit

    if not isinstance(fit, MixedFit):
        extra = ""
        if any(c.__name__ == "GLMMFit" for c in type(fit).__mro__):
            extra = ("; this function works on linear mixed models, not on generalized "
                     "(logistic or count) fits")
        elif isinstance(fit, pd.DataFrame):
            extra = "; fit a model first, e.g. mlm.fit_mixed(data, 'y ~ x + (1 | g)')"
        raise TypeError(f"{name} must be a MixedFit {hint}, not {type(fit).__name__}{extra}")
    return fit


def check_fit_dict(fits: object, example: str,
                   hint: str = "(from fit_mixed, fit_null, ...)") -> list:
    """A non-empty dict of name (str) -> MixedFit; return its items.

    ``example`` shows the call (e.g. ``"compare_models({'null': fit0, 'ses': fit1})"``).
    """
    if not isinstance(fits, Mapping):
        raise TypeError(
            f"fits must be a dict of name -> MixedFit, not {type(fits).__name__}; e.g. "
            f"{example}"
        )
    if not fits:
        raise ValueError("fits is empty: pass a dict of name -> MixedFit")
    items = list(fits.items())
    for name, fit in items:
        if not isinstance(name, str):
            raise TypeError(f"the keys of fits are the names to show (strings), not "
                            f"{type(name).__name__} {name!r}")
        check_fit(fit, f"fits[{name!r}]", hint)
    return items


def check_single_factor(fit, what: str) -> None:
    """``ValueError`` unless ``fit`` has one grouping factor (for two-level tools)."""
    levels = fit.levels
    if len(levels) != 1:
        raise ValueError(
            f"{what} works on a model with one grouping factor; this fit has {len(levels)} "
            f"({', '.join(levels)}): fit the two-level model of the level you need (e.g. "
            f"fit_mixed(data, 'y ~ x', {levels[-1]!r}))"
        )


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    scale = max(1.0, float(np.max(np.abs(a))) if a.size else 1.0)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-12, atol=1e-12 * scale))


def check_same_data(a, b, names: tuple[str, str]) -> None:
    """``ValueError`` unless two fits used the same rows, outcome, groupings and predictor
    values.

    Rows, outcome values and the partition of the rows by each grouping factor come from the
    fits' fingerprints; fixed-effect and random-effect columns of the same name must hold the
    same values (a frame edited between the two fits, or another data set of the same shape).
    """
    fa, fb = a.fingerprint, b.fingerprint
    diffs = fa.differences(fb)
    if fa.n_obs != fb.n_obs:  # other rows: their grouping cannot be the same either
        diffs = diffs[:1]
    if a.outcome != b.outcome:
        diffs.insert(0, f"outcomes {a.outcome!r} and {b.outcome!r}")
    ma, mb = a.matrices(), b.matrices()
    if fa.n_obs == fb.n_obs and fa.rows != fb.rows and ma.y.index.sort_values().equals(
        mb.y.index.sort_values()
    ):
        diffs = [("the same rows in another order (sort both frames the same way)"
                  if d.startswith("different rows") else d) for d in diffs]
    if not diffs:
        for col in [c for c in ma.X.columns if c in mb.X.columns]:
            if not _same_values(ma.X[col].to_numpy(), mb.X[col].to_numpy()):
                diffs.append(f"different values of the fixed-effect column {col!r}")
        by_partition = {fb.groups[g]: g for g in b.levels}
        for g in a.levels:
            other = by_partition.get(fa.groups[g])
            if other is None:
                continue
            za, zb = ma.Z[g], mb.Z[other]
            for col in [c for c in za.columns if c in zb.columns]:
                if not _same_values(za[col].to_numpy(), zb[col].to_numpy()) and not any(
                    col in d for d in diffs
                ):
                    diffs.append(f"different values of the random-effect column {col!r} "
                                 f"of {g!r}")
    if diffs:
        raise ValueError(
            f"{names[0]} and {names[1]} were not fitted to the same data ({'; '.join(diffs)}); "
            f"likelihoods of different data cannot be compared: fit both models to the same "
            f"data frame"
        )


# --- designs -----------------------------------------------------------------------------------


def check_design(design) -> None:
    """Identifiability checks of a built linear mixed-model design.

    The fixed part and every random-effects term are checked by the helpers that
    :func:`check_glmm_design` shares; a linear model also needs a residual variance, so its
    outcome must vary within groups and each factor needs fewer units than rows.
    """
    n, y = design.n, design.y
    if np.ptp(y) == 0 and design.trials is None:
        raise ValueError(
            f"outcome {design.outcome!r} is constant ({y[0]:g}); there is no variance to model"
        )
    _check_fixed_part(design, residual=True)
    for t in design.terms:
        if 2 <= t.n_levels < n and design.trials is None:  # (else: the messages below)
            check_outcome_varies_within(y, t.codes, design.outcome, t.group)
    for t in design.terms:
        _check_term(t, n, residual=design.trials is None,
                    single_row=_single_row_message(t.group, n, t.n_levels))
    _check_distinct_factors(design.terms)


def _check_fixed_part(design, *, residual: bool) -> None:
    """Enough rows, finite values and full column rank of the fixed-effects design."""
    n, p = design.n, design.p
    if n - p <= 0:
        extra = " and a residual variance" if residual else ""
        raise ValueError(f"{n} observations cannot estimate {p} fixed effects{extra}")
    if not np.all(np.isfinite(design.X)):
        bad = [name for name, col in zip(design.fixed_names, design.X.T)
               if not np.all(np.isfinite(col))]
        raise ValueError(
            f"fixed-effect column(s) {bad} have infinite values (a log of 0, or a division by "
            f"0?); remove or recode those rows"
        )
    if p and _rank(design.X) < p:
        raise ValueError(_rank_message(design))


def _check_term(t, n: int, *, residual: bool, single_row: str | None) -> None:
    """One random-effects term: enough groups, not one row each (``single_row`` is the
    message, None when that is allowed), identified effects, finite columns, no slope of a
    level-2 variable, linearly independent columns."""
    if t.n_levels < 2:
        what = "group column" if len(t.group_columns) == 1 else "grouping factor"
        raise ValueError(
            f"{what} {t.group!r} has {t.n_levels} distinct value(s); a multilevel model "
            f"needs at least 2 groups (and, to estimate their variance well, many more)"
        )
    if single_row is not None and t.n_levels >= n:
        raise ValueError(single_row)
    if residual and t.n_levels * t.q >= n:
        raise ValueError(
            f"{t.n_levels} groups x {t.q} random effects of {t.group!r} are at least the "
            f"{n} observations: the random effects and the residual variance are not "
            f"identified; simplify the random part"
        )
    if not residual and (t.n_levels * t.q > n or (t.q > 1 and t.n_levels * t.q >= n)):
        raise ValueError(
            f"{t.n_levels} groups x {t.q} random effects of {t.group!r} are more than the "
            f"{n} observations can identify; simplify the random part"
        )
    if not np.all(np.isfinite(t.Z)):
        raise ValueError(
            f"random-effect column(s) of {t.group!r} have infinite values (a log of 0?); "
            f"remove or recode those rows"
        )
    Zc = t.Z
    const_cols = (np.ptp(Zc, axis=0) == 0) if len(Zc) else np.zeros(t.q, bool)
    if t.q > 1 and const_cols.any():
        for j in np.flatnonzero(~const_cols):
            col = Zc[:, j]
            mean = np.bincount(t.codes, col, minlength=t.n_levels) / np.maximum(
                np.bincount(t.codes, minlength=t.n_levels), 1)
            if np.allclose(col, mean[t.codes], rtol=0, atol=1e-12 * max(1, np.abs(col).max())):
                raise ValueError(
                    f"{t.columns[j]!r} is constant within every group of {t.group!r}, so "
                    f"its random slope cannot be told apart from the random intercept "
                    f"(it is a level-2 variable there); drop it from the random part"
                )
    if _rank(Zc) < t.q:
        raise ValueError(
            f"the random effects {list(t.columns)} of {t.group!r} are linearly dependent "
            f"(a column is constant or a combination of others); drop one"
        )


def _check_distinct_factors(terms) -> None:
    """Two grouping factors may not group the rows in the same way."""
    terms = list(terms)
    for i, a in enumerate(terms):
        for b in terms[i + 1:]:
            if a.n_levels == b.n_levels and len(
                np.unique(a.codes.astype(np.int64) * b.n_levels + b.codes)
            ) == a.n_levels:
                raise ValueError(
                    f"grouping factors {a.group!r} and {b.group!r} group the rows in the same "
                    f"way (each {a.group!r} unit is exactly one {b.group!r} unit), so their "
                    f"variances cannot be told apart; drop one of the two terms (or check "
                    f"that the two columns identify different units)"
                )


def _rank(A: np.ndarray) -> int:
    """Numerical rank of a tall matrix from the SVD of its scaled cross-product (cheap for
    millions of rows; the same answer as the SVD of A at the usual tolerance)."""
    if A.shape[1] == 0:
        return 0
    norms = np.sqrt(np.einsum("ij,ij->j", A, A))
    if np.any(norms == 0):
        return int(np.linalg.matrix_rank(A[:, norms > 0] / norms[norms > 0])) if np.any(
            norms > 0) else 0
    C = (A.T @ A) / np.outer(norms, norms)
    s = np.linalg.svd(C, compute_uv=False)  # squared singular values of A scaled
    return int(np.sum(s > s[0] * max(A.shape) * np.finfo(float).eps ** 0.75))


def _rank_message(design) -> str:
    X = design.X
    names = list(design.fixed_names)
    dependent = []
    for j in range(X.shape[1]):
        others = np.delete(X, j, axis=1)
        if others.shape[1] and np.linalg.matrix_rank(others) == np.linalg.matrix_rank(X):
            dependent.append(names[j])
    const = [nm for nm, col in zip(names, X.T) if np.ptp(col) == 0 and nm != "Intercept"]
    hint = f" ({', '.join(map(repr, const))} is constant)" if const else ""
    return (
        f"the fixed-effects design is rank deficient{hint}: the columns "
        f"{', '.join(map(repr, dependent or names))} are linearly dependent (a predictor is "
        f"constant, duplicated or a combination of others, e.g. the outcome among the "
        f"predictors or a group mean next to its group's dummies); drop one of them"
    )


def check_fitted(design, eng) -> None:
    """Errors that only the fit reveals: a residual variance of zero."""
    y = design.y
    if eng.sigma2 <= 1e-10 * max(np.var(y), np.finfo(float).tiny):
        for t in design.terms:
            means = np.bincount(t.codes, y, minlength=t.n_levels) / np.bincount(
                t.codes, minlength=t.n_levels)
            if np.allclose(y, means[t.codes]):
                raise ValueError(_constant_within_message(design.outcome, t.group))
        raise ValueError(
            f"the model reproduces outcome {design.outcome!r} exactly (residual variance "
            f"zero): the fixed and random effects leave no level-1 variation; check that no "
            f"predictor is a copy or a function of the outcome, and that the outcome is not a "
            f"sum of group values"
        )


def _constant_within_message(outcome: str, group: str) -> str:
    return (
        f"outcome {outcome!r} is constant within every group of {group!r}: there is no "
        f"within-group variation, so a multilevel model of the rows is not identified; "
        f"analyse the group values instead"
    )


def check_outcome_varies_within(y: np.ndarray, codes: np.ndarray, outcome: str,
                                group: str) -> None:
    """``ValueError`` when ``y`` is constant within every group (no level-1 variance)."""
    J = int(codes.max()) + 1
    means = np.bincount(codes, y, minlength=J) / np.bincount(codes, minlength=J)
    scale = max(1.0, float(np.max(np.abs(y))))
    if np.allclose(y, means[codes], rtol=0, atol=1e-12 * scale):
        raise ValueError(_constant_within_message(outcome, group))


def _id_kind(series: pd.Series) -> str:
    """``"number"``, ``"text"`` or the dtype name of identifiers, looking through categories."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "text"
    return str(dtype)


def check_new_data(data: object, design, group_levels) -> pd.DataFrame:
    """New data for predictions: the columns the model needs, with the fit's types."""
    check_frame(data)
    from mlm_lessons._design import _rhs_variables

    need = _rhs_variables(design.formula.fixed)
    for off in design.formula.offsets:
        need += _rhs_variables(off)
    groups = [c for t in design.terms if t.group in group_levels for c in t.group_columns]
    for t in design.terms:
        if t.group in group_levels:
            for spec in design.formula.random:
                if spec.group == t.group:
                    need += _rhs_variables(spec.expr)
    need = list(dict.fromkeys(need + groups))
    check_columns(data, need, role="column needed for the prediction")
    check_no_missing(data, need)
    for c in need:
        if c in design.data.columns and c not in groups:
            fitted_numeric = pd.api.types.is_numeric_dtype(design.data[c].dtype)
            new_numeric = pd.api.types.is_numeric_dtype(data[c].dtype)
            if fitted_numeric and not new_numeric:
                raise TypeError(
                    f"column {c!r} is numeric in the fitted data but has dtype "
                    f"{data[c].dtype} here; {_numeric_hint(data[c], c)}"
                )
    check_finite(data, [c for c in need if c not in groups])
    for c in dict.fromkeys(groups):
        check_group_ids(data, c)
        a, b = design.data[c], data[c]
        ka, kb = _id_kind(a), _id_kind(b)
        if ka != kb:
            raise TypeError(
                f"group column {c!r} holds {kb} identifiers (dtype {b.dtype}) here but {ka} "
                f"identifiers (dtype {a.dtype}) in the fitted "
                f"data, so no group would match; convert it (e.g. .astype({a.dtype.name!r}))"
            )
    return data


# --- generalized linear mixed models ------------------------------------------------------------

GLMM_FAMILIES = ("binomial", "poisson", "negative_binomial")


class SeparationError(ValueError):
    """The maximum-likelihood estimate of a fixed effect is infinite (separation)."""


def check_family(family: object) -> str:
    """One of :data:`GLMM_FAMILIES`; ``ValueError`` naming the choices otherwise."""
    if not isinstance(family, str):
        raise TypeError(f"family must be a string, one of {list(GLMM_FAMILIES)}, not "
                        f"{type(family).__name__}")
    name = family.lower().replace("-", "_").replace(" ", "_")
    if name in ("nb", "negbin", "negative.binomial"):
        name = "negative_binomial"
    if name not in GLMM_FAMILIES:
        raise ValueError(
            f"unknown family {family!r}; choose one of {list(GLMM_FAMILIES)} (binary or "
            f"successes out of trials: 'binomial'; counts: 'poisson', or 'negative_binomial' "
            f"when they are overdispersed; a continuous outcome: use fit_mixed)"
        )
    return name


def check_n_agq(n_agq: object, design) -> int:
    """Quadrature nodes: a count (:func:`check_count`); more than 1 only for one scalar
    random effect."""
    n_agq = check_count(n_agq, "n_agq")
    if n_agq > 1 and (len(design.terms) != 1 or design.terms[0].q != 1):
        parts = ", ".join(f"{len(t.columns)} on {t.group!r}" for t in design.terms)
        raise ValueError(
            f"n_agq={n_agq} (adaptive quadrature) needs a single scalar random effect, such as "
            f"(1 | g); this model has random effects {parts}. Use n_agq=1 (the Laplace "
            f"approximation), as lme4's glmer does"
        )
    if n_agq > 100:
        raise ValueError(f"n_agq={n_agq} is far more nodes than needed; 10 to 25 are accurate")
    return int(n_agq)


def _examples(values) -> str:
    return ", ".join(f"{v:g}" for v in pd.unique(np.asarray(values, dtype=float))[:3])


def check_glmm_outcome(design, family: str, *, what: str | None = None) -> None:
    """The outcome a family needs: 0/1, successes out of trials, or counts (``what`` names
    the model in the message, ``family='binomial'`` by default)."""
    y, name = design.y, design.outcome
    what = what or f"family={family!r}"
    if family == "binomial":
        if design.trials is None:
            bad = ~np.isin(y, (0.0, 1.0))
            if bad.any():
                raise ValueError(
                    f"outcome {name!r} must be coded 0/1 for {what}; found "
                    f"{int(bad.sum())} row(s) with other values ({_examples(y[bad])}). For "
                    f"successes out of trials write 'cbind(successes, failures) ~ ...', or give "
                    f"proportions with weights= the column of trials"
                )
            return
        trials = design.trials
        fail = trials - y
        for what, v in (("successes", y), ("failures", fail), ("trials", trials)):
            if np.any(v < 0):
                extra = " (successes above trials)" if what == "failures" else ""
                raise ValueError(
                    f"{int(np.sum(v < 0))} row(s) have a negative number of {what}{extra}, "
                    f"e.g. {_examples(v[v < 0])}; successes and failures must be counts >= 0"
                )
            frac = v != np.round(v)
            if np.any(frac):
                raise ValueError(
                    f"{int(frac.sum())} row(s) have a non-integer number of {what} "
                    f"({_examples(v[frac])}); a binomial outcome counts successes out of a "
                    f"whole number of trials (with weights=, proportion x trials must be whole)"
                )
        if np.all(trials == 0):
            raise ValueError("every row has 0 trials; there is nothing to model")
        return
    bad = y < 0
    if bad.any():
        raise ValueError(
            f"outcome {name!r} must be a count (0, 1, 2, ...) for family={family!r}; "
            f"{int(bad.sum())} row(s) are negative ({_examples(y[bad])})"
        )
    frac = y != np.round(y)
    if frac.any():
        raise ValueError(
            f"outcome {name!r} must be a count (0, 1, 2, ...) for family={family!r}; "
            f"{int(frac.sum())} row(s) are not whole numbers ({_examples(y[frac])}). For "
            f"rates, model the counts with offset(log(exposure)); for a continuous outcome "
            f"use fit_mixed"
        )
    if np.all(y == 0):
        raise ValueError(f"outcome {name!r} is 0 in every row; there is nothing to model")


def check_glmm_design(design, family: str) -> None:
    """Identifiability checks of a GLMM design (the helpers of :func:`check_design`, without
    a residual variance; one row per group is refused only for a 0/1 outcome)."""
    n = design.n
    if family == "binomial":
        trials = np.ones(n) if design.trials is None else design.trials
        if np.all(design.y == 0) or np.all(design.y == trials):
            value = "0 (a failure)" if np.all(design.y == 0) else "a success"
            raise ValueError(
                f"outcome {design.outcome!r} is constant ({value} in every row); there is no "
                f"variation to model"
            )
    _check_fixed_part(design, residual=False)
    binary = family == "binomial" and (design.trials is None or np.all(design.trials <= 1))
    for t in design.terms:
        single = None
        if binary:
            single = (
                f"every group in {t.group!r} has a single row ({n} rows, {t.n_levels} groups): "
                f"with a 0/1 outcome a random effect per row is not identified; check that "
                f"{t.group!r} identifies groups, not rows, or drop that term"
            )
        _check_term(t, n, residual=False, single_row=single)
    _check_distinct_factors(design.terms)


def check_separation(design, family: str) -> None:
    """:class:`SeparationError` when the fixed effects separate the outcome (infinite
    estimates): complete or quasi-complete separation of a binomial outcome, or counts that
    are 0 wherever a predictor points one way (:func:`separation_direction`); the message
    names the predictor(s)."""
    trials = np.ones(design.n) if design.trials is None else design.trials
    b = separation_direction(design.X, design.y, trials if family == "binomial" else None,
                             family)
    if b is not None:
        raise SeparationError(separation_message(list(design.fixed_names), design.X,
                                                 design.y, trials, family, b))


def separation_direction(X: np.ndarray, y: np.ndarray, trials: np.ndarray | None,
                         family: str) -> np.ndarray | None:
    """A direction ``b`` along which the log-likelihood of the fixed effects keeps rising.

    Binomial (Konis 2007): ``x_i'b >= 0`` where every trial succeeded, ``<= 0`` where none
    did, ``= 0`` for rows with both, and ``sum |x_i'b| > 0``. Poisson / negative binomial:
    ``x_i'b <= 0`` where ``y_i = 0`` and ``= 0`` where ``y_i > 0``. Found by a linear
    programme over ``-1 <= b <= 1`` (columns scaled to unit size); None when there is none
    (the estimates are finite).
    """
    from scipy import optimize

    n, p = X.shape
    if p == 0:
        return None
    scale = np.sqrt(np.mean(X**2, axis=0))
    scale[scale == 0] = 1.0
    Xs = X / scale
    if family == "binomial":
        t = np.ones(n) if trials is None else trials
        sign = np.where(y >= t, 1.0, np.where(y <= 0, -1.0, 0.0))
        sign[t == 0] = np.nan
    else:
        sign = np.where(y <= 0, -1.0, 0.0)
    keep = np.isfinite(sign)
    Xs, sign = Xs[keep], sign[keep]
    strict = sign != 0
    c = -(sign[strict, None] * Xs[strict]).sum(axis=0)
    A_ub = -(sign[strict, None] * Xs[strict])
    A_eq = Xs[~strict] if (~strict).any() else None
    res = optimize.linprog(c, A_ub=A_ub, b_ub=np.zeros(strict.sum()), A_eq=A_eq,
                           b_eq=None if A_eq is None else np.zeros(A_eq.shape[0]),
                           bounds=[(-1, 1)] * p, method="highs")
    if res.status != 0 or -res.fun <= 1e-6 * max(1.0, strict.sum()) ** 0.5:
        return None
    b = np.asarray(res.x) / scale
    return b


def _complete_separation(X, y, trials) -> bool:
    """A direction with ``x_i'b > 0`` for every success and ``< 0`` for every failure."""
    from scipy import optimize

    t = np.ones(len(y)) if trials is None else trials
    if not np.all((y >= t) | (y <= 0)):
        return False
    sign = np.where(y >= t, 1.0, -1.0)
    scale = np.sqrt(np.mean(X**2, axis=0))
    scale[scale == 0] = 1.0
    A = sign[:, None] * (X / scale)
    p = X.shape[1]
    # maximise s subject to A b >= s, -1 <= b <= 1, s <= 1
    c = np.zeros(p + 1)
    c[-1] = -1.0
    res = optimize.linprog(c, A_ub=np.column_stack([-A, np.ones(len(y))]),
                           b_ub=np.zeros(len(y)), bounds=[(-1, 1)] * p + [(None, 1)],
                           method="highs")
    return res.status == 0 and -res.fun > 1e-7


def separation_message(names, X, y, trials, family, b) -> str:
    """Which predictors separate the outcome, and what to do."""
    n = X.shape[1]
    names = list(names)
    const = [j for j in range(n) if np.ptp(X[:, j]) == 0]
    alone = []  # predictors that separate the outcome by themselves (with the intercept)
    for j in range(n):
        if j in const:
            continue
        if separation_direction(X[:, const + [j]], y, trials, family) is not None:
            alone.append(names[j])
    if not alone:
        contrib = np.array([np.max(np.abs(X[:, j] * b[j])) for j in range(n)])
        alone = [names[j] for j in range(n) if contrib[j] > 1e-6 * contrib.max()
                 and j not in const] or names
    involved = alone
    if family == "binomial":
        complete = _complete_separation(X, y, trials)
        kind = "complete" if complete else "quasi-complete"
        who = (repr(involved[0]) if len(involved) == 1 else
               f"a combination of {', '.join(map(repr, involved))}")
        what = (f"{kind} separation: {who} "
                f"predicts the outcome {'perfectly' if complete else 'perfectly for some rows'}"
                f" (e.g. every row with a higher value has the same outcome)")
        advice = ("combine sparse categories or drop the predictor, or use penalised "
                  "(Firth) or Bayesian estimation with a weakly informative prior")
    else:
        what = (f"the counts are 0 wherever {', '.join(map(repr, involved))} point(s) one way "
                f"(e.g. a category whose counts are all 0)")
        advice = ("merge or drop that category, or use a Bayesian fit with a weakly "
                  "informative prior")
    return (f"{what}, so the maximum-likelihood estimate of its effect is infinite and any "
            f"finite number reported would be meaningless; {advice}")
