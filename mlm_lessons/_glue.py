"""``glue``: store a value in a notebook's output for the book's ``{glue:text}`` roles.

The same output format as ``myst_nb.glue`` (myst-nb 1.x), without importing myst-nb: its
import pulls in nbformat and jsonschema, which cost about a second of every notebook's run
for nothing a reader sees. ``tests/test_glue.py`` checks the two produce identical output.

IPython is imported only when :func:`glue` runs (in a Jupyter kernel, where it is always
present), so ``import mlm_lessons`` works without it: it is no dependency of the package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["glue"]

GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, variable: Any, display: bool = True) -> None:
    """Store ``variable`` under ``name`` for ``{glue:text}`name``` in the book's prose.

    Parameters
    ----------
    name : str
        A key unique within the notebook.
    variable : object
        The value; what is stored is its display (text, HTML, image).
    display : bool, default True
        Also show the value in the notebook.

    Raises
    ------
    ImportError
        If IPython is not installed: ``glue`` stores a value in a Jupyter notebook's output
        and needs the kernel's IPython.

    Notes
    -----
    Round floats before gluing (``round(x, 4)``) so that the stored output is the same on
    every machine; format them in the prose (``{glue:text}`name:.2f```).
    """
    from mlm_lessons._checks import check_bool

    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string (the key the book's prose cites), "
                        f"not {name!r}")
    check_bool(display, "display")
    try:
        from IPython.core.formatters import format_display_data
        from IPython.display import display as ipy_display
    except ImportError as exc:
        raise ImportError(
            "mlm_lessons.glue stores a value in a Jupyter notebook's output and needs IPython; "
            "run it in a Jupyter kernel (pip install ipykernel)"
        ) from exc
    mimebundle, metadata = format_display_data(variable)
    mime_prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=mime_prefix)
    ipy_display({mime_prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)
