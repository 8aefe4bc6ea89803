"""Sphinx extension for the handouts' LaTeX build only (``build_handouts.py`` loads it).

- **One exercise numbering.** ``sphinx-jupyterbook-latex`` sets ``numfig_secnum_depth = 2``
  when the book has parts, so sphinx-exercise, which types its numbers into the LaTeX,
  printed "Exercise 6.6.1" (chapter, section, exercise) where the web book says "Exercise
  6.1". Set to 1 while the numbers are assigned, they are those of the web book; the LaTeX
  writer then gets the value 2 back, from which it resets LaTeX's own figure, table and
  equation counters per chapter ("(6.1)", "Fig. 6.1").
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def web_numbering(app: Sphinx) -> None:
    """Number exercises per chapter while the documents are read."""
    if app.builder.format == "latex":
        app.env.mlm_latex_secnum_depth = app.config.numfig_secnum_depth
        app.config.numfig_secnum_depth = 1


def latex_numbering(app: Sphinx, env) -> None:
    """Give the LaTeX writer its setting back: it resets LaTeX's counters per chapter from it."""
    depth = getattr(app.env, "mlm_latex_secnum_depth", None)
    if depth is not None:
        app.config.numfig_secnum_depth = depth


def setup(app: Sphinx) -> dict[str, Any]:
    # after sphinx-jupyterbook-latex's own builder-inited handler (default priority 500)
    app.connect("builder-inited", web_numbering, priority=900)
    # the numbers are assigned when the documents have been read (env-get-updated); the
    # consistency check comes next, then the writer (the LaTeX builder emits no
    # write-started in Sphinx 7)
    app.connect("env-check-consistency", latex_numbering, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
