"""Readable text and HTML displays for the result objects of :mod:`mlm_lessons`.

Every public result is a frozen dataclass. Its generated ``repr`` (``WaldResult(statistic=
48.23344482540527, df=1, ...)``) is exact but hard to read: one long line, every digit,
whole data frames inline. :class:`ResultDisplay`, a base class of each result, adds two
displays and leaves the fields, the values and the ``repr`` as they are:

- ``str(result)`` and a notebook's plain-text display (IPython's ``_repr_pretty_``): the
  class name, then one line per field, numbers to 4 significant digits, data frames as
  text tables;
- ``_repr_html_``: the same as an HTML table (data frames nested as tables), which
  JupyterLab and the book show.

Fields declared with ``repr=False`` (internals) are left out. A field may choose its
format with ``field(metadata={"format": ".2%"})`` (any :func:`format` spec). Long data
frames show their first and last rows (``MAX_ROWS``).
"""

from __future__ import annotations

import dataclasses
import html
import math
import numbers

import numpy as np
import pandas as pd

__all__ = ["ResultDisplay", "format_value"]

MAX_ROWS = 12
MAX_COLS = 12
INDENT = "  "


def _format_float(x: float) -> str:
    """At least 4 significant digits and one decimal, fixed point from 1e-3 to 1e7.

    Scientific notation outside that range; trailing zeros only when the value has more
    digits (0.95 stays 0.95, 552.04 becomes 552.0).
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if not -3 <= magnitude < 7:
        return f"{x:.3e}"
    text = f"{x:.{max(1, 3 - magnitude)}f}"
    if float(text) == x:
        text = text.rstrip("0").rstrip(".")
    return text


def format_value(value: object, spec: str | None = None) -> str:
    """One line of text for a scalar, a sequence of scalars or an array.

    Parameters
    ----------
    value : object
        The field's value.
    spec : str, optional
        A :func:`format` specification that overrides the default for numbers.

    Returns
    -------
    str
    """
    if spec is not None and isinstance(value, numbers.Number) and not isinstance(value, bool):
        return format(value, spec)
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return _format_float(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        return _format_array(value)
    if isinstance(value, (tuple, list)):
        return ", ".join(format_value(v, spec) for v in value) if value else "(none)"
    if value is None:
        return "None"
    return repr(value)


def _format_array(a: np.ndarray) -> str:
    if a.size == 0:
        return "empty array"
    shape = "x".join(map(str, a.shape))
    if not np.issubdtype(a.dtype, np.number):
        return f"array of {shape} values"
    finite = a[np.isfinite(a)]
    n_nan = int(np.isnan(a).sum()) if np.issubdtype(a.dtype, np.floating) else 0
    parts = [f"{shape} values"]
    if finite.size:
        lo, mid, hi = np.min(finite), np.median(finite), np.max(finite)
        parts.append(
            f"min {_format_float(lo)}, median {_format_float(mid)}, max {_format_float(hi)}"
        )
    if n_nan:
        parts.append(f"{n_nan} NaN")
    return "; ".join(parts)


def _frame(value: pd.DataFrame | pd.Series) -> pd.DataFrame:
    return value.to_frame() if isinstance(value, pd.Series) else value


def _float_format(v: float) -> str:
    return _format_float(float(v))


class ResultDisplay:
    """Mixin: readable ``str``, plain-text and HTML displays of a frozen result dataclass."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # IPython's printer walks the MRO and takes the first class that defines
        # _repr_pretty_ or __repr__; @dataclass gives each subclass its own __repr__, so the
        # subclass must carry _repr_pretty_ itself to be shown by it.
        cls._repr_pretty_ = ResultDisplay._repr_pretty_

    def _display_fields(self) -> list[tuple[str, object, str | None]]:
        return [
            (f.name, getattr(self, f.name), f.metadata.get("format"))
            for f in dataclasses.fields(self)
            if f.repr
        ]

    def __str__(self) -> str:
        fields = self._display_fields()
        width = max((len(name) for name, _, _ in fields), default=0)
        lines = [type(self).__name__]
        for name, value, spec in fields:
            if isinstance(value, (pd.DataFrame, pd.Series)):
                table = _frame(value).to_string(
                    max_rows=MAX_ROWS, max_cols=MAX_COLS, float_format=_float_format
                )
                lines.append(f"{INDENT}{name}")
                lines.extend(f"{INDENT * 2}{row}" for row in table.splitlines())
            else:
                lines.append(f"{INDENT}{name:<{width}}  {format_value(value, spec)}")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(f"{type(self).__name__}(...)" if cycle else str(self))

    def _repr_html_(self) -> str:
        rows = []
        for name, value, spec in self._display_fields():
            if isinstance(value, (pd.DataFrame, pd.Series)):
                cell = _frame(value).to_html(
                    max_rows=MAX_ROWS,
                    max_cols=MAX_COLS,
                    float_format=_float_format,
                    border=0,
                )
            else:
                cell = html.escape(format_value(value, spec))
            rows.append(f'<tr><th scope="row">{html.escape(name)}</th><td>{cell}</td></tr>')
        return (
            '<table class="mlm-result">'
            f"<caption>{html.escape(type(self).__name__)}</caption>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
