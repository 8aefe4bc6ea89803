"""The rendered edition of the notebooks (``make notebooks``): what a student sees in plain Jupyter.

- On a small book written here: the numbering rules (chapters across parts, equations,
  figures, exercises per chapter), every role, glue format specs and ``file.ipynb::key``,
  admonitions, exercises and solutions, the setup cell, and clear errors for markup the
  edition cannot show.
- On the course's book: no MyST role or fence is left in any markdown cell; every number,
  glued value, reference and citation equals what the HTML book prints (the HTML build is
  parsed, in document order); every rendered notebook runs top to bottom in a fresh kernel
  with the network blocked.

What the notebooks look like in JupyterLab is checked in ``tests/test_lab.py`` (screenshot).
"""

from __future__ import annotations

import html
import importlib
import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import yaml
from _publishing import BUILD, ROOT, newest_source_mtime, run

rn = importlib.import_module("render_notebooks")
br = importlib.import_module("book_refs")

md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell


def _glue_output(name: str, plain: str, markdown: str | None = None) -> dict:
    prefix = "application/papermill.record/"
    data = {prefix + "text/plain": plain}
    if markdown is not None:
        data[prefix + "text/markdown"] = markdown
    return nbformat.v4.new_output(
        "display_data", data=data, metadata={"scrapbook": {"name": name, "mime_prefix": prefix}}
    )


def _write_nb(path: Path, cells: list) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = cells
    nbformat.write(nb, path)


@pytest.fixture
def mini(tmp_path) -> Path:
    """A book of two numbered parts (one chapter each) and an unnumbered reference part."""
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text(
        "title: Mini\nbibtex_bibfiles: [book/refs.bib]\n"
        "repository:\n  url: https://github.com/example/mini\n  branch: main\n"
    )
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/index\nparts:\n"
        "  - caption: First\n    numbered: true\n    chapters:\n      - file: book/a\n"
        "  - caption: Second\n    numbered: true\n    chapters:\n      - file: book/b\n"
        "  - caption: Reference\n    chapters:\n      - file: book/c\n"
    )
    (tmp_path / "book" / "index.md").write_text("# Welcome\n")
    (tmp_path / "book" / "c.md").write_text("# Cross-walk\n\nText.\n")
    (tmp_path / "book" / "refs.bib").write_text(
        "@book{rb2002, author = {Raudenbush, Stephen W. and Bryk, Anthony S.},\n"
        "  title = {HLM}, year = {2002}}\n"
        "@book{three1992, author = {Searle, S. and Casella, G. and McCulloch, C.},\n"
        "  title = {VC}, year = {1992}}\n"
        "@book{one2013, author = {Claibourn, Michele}, title = {W}, year = {2013}}\n"
    )
    g = code("glue('a-n', 7185, display=False)")
    g.outputs = [_glue_output("a-n", "7185"), _glue_output("a-x", "0.18044")]
    _write_nb(
        tmp_path / "book" / "a.ipynb",
        [md("# Chapter A\n\n## One\n\n$$\nx = 1\n$$ (a-eq)\n"), g],
    )
    fig = code("plt.show()")
    fig.metadata["mystnb"] = {
        "figure": {"caption": "Means, {glue:text}`b-word`.", "name": "fig-b"},
        "image": {"alt": "A plot"},
    }
    gb = code("glue('b-word', 'every', display=False)")
    gb.outputs = [
        _glue_output("b-word", "'every'"),
        _glue_output("b-big", "1234567"),
        _glue_output("b-md", "<IPython.core.display.Markdown object>", "`minority`"),
    ]
    _write_nb(
        tmp_path / "book" / "b.ipynb",
        [
            md(
                "# Chapter B\n\n:::{admonition} What you'll learn\n:class: tip\n- the ICC,\n"
                "  over two lines $a +\n  b$;\n- code:\n```r\nvc$vcov[1]\n```\n:::\n\n"
                "## Section\n\n$$\ny = 2\n$$ (b-eq1)\n\n$$\nz\n$$\n\n$$\nw\n$$ (b-eq2)\n\n"
                "See {eq}`b-eq2`, {eq}`a-eq`, {numref}`fig-b`, {numref}`Figure %s <fig-b>`, "
                "{numref}`b-ex2`, {ref}`b-ex1`, {doc}`a`, {doc}`the appendix <c>`, "
                "{cite}`rb2002`, {cite:t}`rb2002`, {cite:p}`three1992,one2013`, "
                "{glue:text}`b-word`, {glue:text}`b-big:,`, {glue:text}`a.ipynb::a-x:.3f`, "
                "{glue:md}`b-md` and {glue:text}`a.ipynb::a-n:d`."
            ),
            gb,
            fig,
            md(
                "## Exercises\n\n```{exercise}\n:label: b-ex1\nFirst?\n```\n\n"
                "```{solution} b-ex1\n:class: dropdown\nThe answer is {glue:text}`b-word`.\n```"
            ),
            md("```{exercise}\n:label: b-ex2\nSecond?\n```"),
            md("```{solution-start} b-ex2\n:class: dropdown\n```\nCompute:"),
            code("answer = 6 * 7\nanswer"),
            md("```{solution-end}\n```\n\nAfter the solution."),
            code("print('kept')"),
        ],
    )
    for cell in nbformat.read(tmp_path / "book" / "b.ipynb", as_version=4).cells:
        assert "id" in cell
    nb = nbformat.read(tmp_path / "book" / "b.ipynb", as_version=4)
    nb.cells[6].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "42"})]
    nbformat.write(nb, tmp_path / "book" / "b.ipynb")
    return tmp_path


def _render(root: Path, doc: str, **kwargs):
    refs = br.BookRefs(root)
    page = refs.chapter(doc).page
    nb = nbformat.read(page.path, as_version=4)
    return rn.render_notebook(nb, refs, doc, **kwargs)


def _markdown(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_numbering_follows_the_web_book(mini):
    refs = br.BookRefs(mini)
    assert refs.chapter("book/a").number == 1
    assert refs.chapter("book/b").number == 2  # numbered across parts
    assert refs.chapter("book/c").number is None  # the reference part is not numbered
    assert refs.targets["a-eq"].number == "1.1"
    # unlabelled equations take no number
    assert (refs.targets["b-eq1"].number, refs.targets["b-eq2"].number) == ("2.1", "2.2")
    assert refs.targets["fig-b"].number == "2.1"
    assert (refs.targets["b-ex1"].number, refs.targets["b-ex2"].number) == ("2.1", "2.2")


def test_every_role_is_replaced_by_what_the_book_prints(mini):
    nb, log = _render(mini, "book/b")
    text = _markdown(nb)
    assert rn.leftover_markup(nb) == []
    for expected in [
        "See (2.2), (1.1), Fig. 2.1, Figure 2.1, Exercise 2.2, Exercise 2.1, Chapter A, "
        "the appendix, [Raudenbush and Bryk, 2002], Raudenbush and Bryk [2002], "
        "[Searle et al., 1992, Claibourn, 2013], every, 1,234,567, 0.180, `minority` and 7185.",
        "# 2. Chapter B",
        "## 2.1. Section",
        "y = 2 \\tag{2.1}",
        "w \\tag{2.2}",
        "### Exercise 2.1",
        "### Exercise 2.2",
        "**Fig. 2.1** Means, every.",
    ]:
        assert expected in text, expected
    assert "$$\nz\n$$" in text  # an unlabelled equation gets no number
    kinds = [k for k, _ in log]
    assert kinds.count("glue") == 6 and kinds.count("cite") == 3


def test_admonition_is_a_block_quote_with_a_bold_title(mini):
    nb, _ = _render(mini, "book/b")
    first = nb.cells[0].source
    assert "> **What you'll learn**" in first
    # a paragraph is one line, so inline math never spans a quoted line break
    assert "> - the ICC, over two lines $a + b$;" in first
    # code with $ in a quote is HTML with the $ escaped (JupyterLab would typeset it)
    assert '<pre><code class="language-r">vc&#36;vcov[1]</code></pre>' in first


def test_solutions_are_collapsible_and_marked(mini):
    nb, _ = _render(mini, "book/b")
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("mlm_course", {})]
    assert [c.metadata["mlm_course"]["solution"] for c in solutions] == ["b-ex1", "b-ex2"]
    assert solutions[0].source.startswith("<details>\n<summary><b>Solution to Exercise 2.1")
    assert "The answer is every." in solutions[0].source
    # a solution-start ... solution-end span: its code is shown, with its output, not run
    assert "```python\nanswer = 6 * 7\nanswer\n```" in solutions[1].source
    assert "42" in solutions[1].source
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    assert not any("answer" in s for s in sources)
    assert "After the solution." in _markdown(nb)


def test_student_mode_drops_the_solutions_only(mini):
    nb, _ = _render(mini, "book/b", solutions=False)
    text = _markdown(nb)
    assert "Solution" not in text and "answer" not in text and "<details>" not in text
    assert "### Exercise 2.1" in text and "### Exercise 2.2" in text
    assert "After the solution." in text
    assert nb.metadata["mlm_course"]["edition"] == "student"


def test_setup_cell_comes_first_and_installs_from_the_repository(mini):
    setup = rn.setup_cell_source(
        "https://github.com/example/mini", "main", [("../tests/t.csv", "tests/t.csv")]
    )
    nb, _ = _render(mini, "book/b", setup=setup)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == setup
    assert "import mlm_lessons" in setup and "except ImportError:" in setup
    assert (
        '%pip install --quiet "mlm-lessons @ git+https://github.com/example/mini.git@main"' in setup
    )
    assert "https://raw.githubusercontent.com/example/mini/main/" in setup
    assert "'../tests/t.csv'" in setup
    # without a repository URL it says what to do instead of installing
    bare = rn.setup_cell_source("", "main", [])
    assert "%pip" not in bare and "make env" in bare
    # both are valid IPython (the %pip magic included)
    from IPython.core.inputtransformer2 import TransformerManager

    for source in (setup, bare):
        compile(TransformerManager().transform_cell(source), "<setup>", "exec")


def test_the_input_notebook_is_not_modified(mini):
    refs = br.BookRefs(mini)
    nb = nbformat.read(mini / "book" / "b.ipynb", as_version=4)
    before = json.dumps(nb, sort_keys=True)
    rn.render_notebook(nb, refs, "book/b")
    assert json.dumps(nb, sort_keys=True) == before


def test_glue_formats_like_myst_nb():
    from myst_nb.core.variables import format_plain_text

    # the same semantics as myst-nb: the repr is literal-evaluated, then formatted
    for stored, spec, expected in [
        ("0.18044", ".3f", "0.180"),
        ("7185", ",", "7,185"),
        ("'every'", "s", "every"),
        ("12.5", ".0f", "12"),
        ("0.5", ".1%", "50.0%"),
    ]:
        assert format_plain_text(stored, spec) == expected == format(eval(stored), spec)


@pytest.mark.parametrize(
    "source, message",
    [
        ("{unknownrole}`x`", r"role \{unknownrole\} is not supported"),
        ("```{margin}\nside\n```", r"directive \{margin\} is not supported"),
        ("{glue:text}`nope`", r"glue key 'nope' is not stored in book/a"),
        ("{eq}`nope`", r"\{eq\} target 'nope' is not defined"),
        ("{cite}`nobody1900`", r"citation key\(s\) \['nobody1900'\]"),
        ("{doc}`missing`", r"\{doc\} target 'missing' is not a page"),
    ],
)
def test_markup_it_cannot_show_is_an_error_naming_the_notebook(mini, source, message):
    refs = br.BookRefs(mini)
    nb = nbformat.v4.new_notebook()
    nb.cells = [md(source)]
    with pytest.raises(rn.RenderError, match=r"a\.ipynb: .*" + message):
        rn.render_notebook(nb, refs, "book/a")


def test_glue_only_cells_are_recognised():
    assert rn.is_glue_only("glue('a', 1, display=False)\nglue('b', 2, display=False)")
    assert rn.is_glue_only("for k in ks:\n    glue(k, 1, display=False)")
    assert not rn.is_glue_only("x = fit()\nglue('x', x, display=False)")
    assert not rn.is_glue_only("")


# --- the course's book --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("notebooks")
    logs = rn.render_book(ROOT, out)
    return out, logs


NOTEBOOKS = importlib.import_module("book_toc").read_toc(ROOT).notebooks
# independent of render_notebooks.MYST_LEFTOVER: any {role}`, any directive fence, options
RAW_MYST = re.compile(r"\{[\w:.-]+\}`|^[ \t>]*(```|:::|~~~)+\s*\{|^[ \t>]*:[a-z-]+:[ \t]", re.M)


def _edition_path(out: Path, page) -> Path:
    """Where the Colab and Binder links of the book look for the chapter (``<chapter>.ipynb``
    at the top of the ``notebooks`` branch, relative to ``mlm_lab_root``)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    return out / page.path.resolve().relative_to((ROOT / config["mlm_lab_root"]).resolve())


def _rendered(edition, page) -> nbformat.NotebookNode:
    out, _ = edition
    return nbformat.read(_edition_path(out, page), as_version=4)


def test_layout_is_what_the_launch_links_open(edition):
    out, _ = edition
    notebooks = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.ipynb"))
    assert notebooks == sorted(_edition_path(out, p).relative_to(out).as_posix() for p in NOTEBOOKS)
    assert all("/" not in name for name in notebooks), "chapters at the top of the branch"
    # the path in a chapter's Colab and Binder links, as scripts/sphinx_course.py computes it
    sc = importlib.import_module("sphinx_course")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    for page in NOTEBOOKS:
        source = page.path.resolve().relative_to(ROOT.resolve()).as_posix()
        app = SimpleNamespace(
            env=SimpleNamespace(doc2path=lambda name, base, s=source: s),
            config=SimpleNamespace(mlm_lab_root=config["mlm_lab_root"]),
        )
        link_path = sc._notebook_path(app, page.docname).as_posix()
        assert (out / link_path).is_file(), link_path


def test_binder_gets_the_package_and_the_course_pins(edition):
    out, _ = edition
    lock = dict(
        line.split("==")
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    lines = [
        line
        for line in (out / "requirements.txt").read_text().splitlines()
        if not line.startswith("#")
    ]
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert lines[0] == f"mlm-lessons @ git+{url}.git@main"
    pins = dict(line.split("==") for line in lines[1:])
    for name in ("numpy", "scipy", "pandas", "statsmodels", "matplotlib"):
        assert pins[name] == lock[name], name
    assert pins.items() <= lock.items()
    assert not {"jupyterlab", "sphinx", "pytest"} & set(pins)
    assert (out / "runtime.txt").read_text().strip() == "python-3.11"


def test_files_a_chapter_reads_are_beside_it_and_its_code_points_there(edition):
    out, _ = edition
    for page in NOTEBOOKS:
        nb = _rendered(edition, page)
        target = _edition_path(out, page)
        for cell in nb.cells[1:]:
            if cell.cell_type == "code" and not cell.metadata.get("mlm_course", {}).get("setup"):
                for literal in re.findall(r"open\((['\"])([^'\"]+)\1", cell.source):
                    path = (target.parent / literal[1]).resolve()
                    assert path.is_file() and path.is_relative_to(out.resolve()), literal[1]


@pytest.mark.parametrize("page", NOTEBOOKS, ids=[p.path.stem for p in NOTEBOOKS])
def test_no_myst_markup_is_left(edition, page):
    nb = _rendered(edition, page)
    left = [m.group(0) for m in RAW_MYST.finditer(_markdown(nb))]
    assert not left, f"{page.path.name}: raw MyST left: {left[:5]}"
    # every exercise of the source is a numbered heading
    n_ex = sum(c.source.count("{exercise}") for c in nbformat.read(page.path, 4).cells)
    assert len(re.findall(r"^### Exercise \d+\.\d+", _markdown(nb), re.M)) == n_ex
    codes = [c for c in nb.cells if c.cell_type == "code"]
    assert codes and codes[0].metadata.get("mlm_course", {}).get("setup"), "setup cell first"


# --- the same numbers as the web book -------------------------------------------------------------

SITE_BUILD = BUILD / "browser"  # where tests/test_browser.py builds the HTML book too
SITE = SITE_BUILD / "_build" / "html"

# what the HTML book prints for each kind of substitution, in document order
HTML_PATTERNS = {
    "glue": r'<span class="pasted-text">(.*?)</span>',
    "numref": r'<span class="std std-(?:num)?ref">(.*?)</span>',
    "doc": r'<span class="doc">(.*?)</span>',
    "cite": r'<span class="bibtex-citation"[^>]*>(.*?)</span>',
    "eq": r'<a class="reference internal" href="[^"]*#equation-[^"]*">(.*?)</a>',
    "exercise": r'<p class="admonition-title"><span class="caption-number">(Exercise [\d.]+) ',
    "equation": r'<span class="eqno">(\([\d.]+\))<a class="headerlink"',
    "figure": r'<figcaption>\s*<p><span class="caption-number">(Fig\. [\d.]+) </span>',
    "section": r'<h[1-6]><span class="section-number">([\d.]+) </span>',
}


@pytest.fixture(scope="module")
def site() -> Path:
    stamp = SITE / ".built"
    if not stamp.exists() or stamp.stat().st_mtime < newest_source_mtime():
        jb = Path(sys.executable).with_name("jupyter-book")
        run([str(jb), "build", ".", "-W", "--keep-going", "--path-output", str(SITE_BUILD)])
        stamp.touch()
    return SITE


def _html_sequence(page_html: str, kind: str) -> list[str]:
    body = page_html[page_html.find("<main") :]
    return [
        html.unescape(re.sub(r"<[^>]+>", "", m)).strip()
        for m in re.findall(HTML_PATTERNS[kind], body, re.S)
    ]


@pytest.mark.parametrize("page", NOTEBOOKS, ids=[p.path.stem for p in NOTEBOOKS])
def test_numbers_and_values_match_the_web_book(edition, site, page):
    _, logs = edition
    log = logs[page.docname]
    page_html = (site / f"{page.docname}.html").read_text(encoding="utf-8")
    text = _markdown(_rendered(edition, page))
    for kind in HTML_PATTERNS:
        web = _html_sequence(page_html, kind)
        ours = [t for k, t in log if k == kind or (kind == "numref" and k == "ref")]
        assert ours == web, f"{page.path.name}: {kind} differs from the web book"
    # and what was substituted is in the notebook, in that order
    pos = 0
    for kind, value in log:
        if kind == "equation":  # "(6.1)" is printed by \tag{6.1}
            value = f"\\tag{{{value[1:-1]}}}"
        found = text.find(value, pos)
        assert found >= 0, f"{page.path.name}: {kind} {value!r} not found after offset {pos}"
        pos = found


# --- every rendered notebook runs -------------------------------------------------------------------

# per cell: the book's execution timeout (_config.yml, measured on an idle machine) five
# times over, for test machines whose cores are shared
CELL_TIMEOUT = 5 * yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"]


# blocks every connection that is not to this machine, in the kernel that runs the notebook
OFFLINE = """\
import socket as _socket
_connect = _socket.socket.connect
def _local_only(self, address, *args):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(address, tuple) and host not in ("127.0.0.1", "localhost", "::1"):
        raise OSError(f"this notebook tried to reach the network: {address!r}")
    return _connect(self, address, *args)
_socket.socket.connect = _local_only
"""


def _execute(path: Path) -> str | None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, code(OFFLINE))
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "PYTHONPATH")}
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
    )
    try:
        client.execute(env=env)
    except Exception as exc:  # noqa: BLE001 - name the notebook and the error
        return f"{path.name}: {type(exc).__name__}: {str(exc)[-800:]}"
    return None


def test_every_rendered_notebook_runs_offline(edition):
    out, _ = edition
    paths = [_edition_path(out, p) for p in NOTEBOOKS]
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        failures = [f for f in pool.map(_execute, paths) if f]
    assert not failures, "\n".join(failures)


def test_the_offline_guard_blocks_the_network(tmp_path):
    # the guard must make a notebook that reaches out fail (192.0.2.1 is TEST-NET-1:
    # the guard refuses before any packet is sent)
    path = tmp_path / "online.ipynb"
    _write_nb(path, [code("import socket\nsocket.create_connection(('192.0.2.1', 80), 1)")])
    failure = _execute(path)
    assert failure and "tried to reach the network" in failure


@pytest.mark.parametrize(
    "cells, message",
    [
        ([md("```{solution-start} b-ex1\n```"), code("x = 1")], "without a {solution-end}"),
        ([code("x = 1"), md("```{solution-end}\n```")], "without a {solution-start}"),
        ([md("```{solution} a-eq\nNo.\n```")], "solution of 'a-eq', which is no exercise"),
    ],
)
def test_unbalanced_solution_markup_is_an_error(mini, cells, message):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    with pytest.raises(rn.RenderError, match=re.escape(message)):
        rn.render_notebook(nb, br.BookRefs(mini), "book/a")


def test_solution_fences_of_any_length_and_kind(mini):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        md("````{solution} b-ex1\nUse\n```python\nsecret = 42\n```\n````\n\nKept."),
        md(":::{solution} b-ex2\n:class: dropdown\nhidden answer\n:::\n"),
        md("Before.\n\n```{solution-start} b-ex1\n```\nhidden\n```{solution-end}\n```\nAfter."),
    ]
    student, _ = rn.render_notebook(nb, br.BookRefs(mini), "book/a", solutions=False)
    assert [c.source for c in student.cells] == ["Kept.", "Before.", "After."]
    full, _ = rn.render_notebook(nb, br.BookRefs(mini), "book/a")
    assert "secret = 42" in full.cells[0].source and "hidden answer" in full.cells[2].source
