"""`make lab`: JupyterLab on the book with the course kernel, and what a student sees in it.

The tests run the real ``make lab`` (private Jupyter directories, a free port on 127.0.0.1, a
token, no browser; ``tests/_jupyterlab.py``):

- on ``book/``: the server answers at the launch links' URL with the course kernel and
  serves every notebook;
- on the rendered edition (``make notebooks``, started as ``make lab LAB_DIR=...``): Chromium
  (Playwright, Debian's ``/usr/bin/chromium``) opens a chapter and the test checks what a
  student sees: numbers, not roles; typeset equations with their numbers; numbered exercises
  with collapsible solutions; no news question; no request leaving the machine. Screenshots
  go to ``_build/screenshots/jupyterlab-*.png``.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from _jupyterlab import get, running_lab
from _publishing import BUILD, ROOT, require  # puts scripts/ on sys.path

read_toc = importlib.import_module("book_toc").read_toc

SCREENSHOTS = BUILD / "screenshots"
CHAPTER = "06-null-model.ipynb"
DOC = "book/06-null-model"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require(shutil.which("make") is not None, "make not found")
    tmp = tmp_path_factory.mktemp("lab")
    with running_lab(["make", "-s", "lab", f"PYTHON={sys.executable}"], ROOT, tmp) as (
        base,
        token,
        _,
    ):
        yield base, token


def test_course_kernel_is_the_default(lab):
    base, token = lab
    _, body = get(f"{base}/api/kernelspecs", token)
    specs = json.loads(body)
    assert specs["default"] == "python3"
    spec = specs["kernelspecs"]["python3"]["spec"]
    assert spec["display_name"] == "Python 3 (mlm-course)"
    # the kernel is the course environment's interpreter
    assert Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve()


def test_every_notebook_is_served_where_the_launch_links_point(lab):
    base, token = lab
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    lab_root = ROOT / config["mlm_lab_root"]
    assert config["mlm_lab_url"].startswith("http://localhost:8888/lab/tree")
    notebooks = read_toc(ROOT).notebooks
    if not notebooks:
        pytest.skip("no chapter notebook in _toc.yml yet")
    for page in notebooks:
        rel = page.path.resolve().relative_to(lab_root.resolve()).as_posix()
        status, body = _get_json(f"{base}/api/contents/{rel}?content=0", token)
        assert status == 200 and body["type"] == "notebook", rel
        status, _ = get(f"{base}/lab/tree/{rel}", token)
        assert status == 200, rel


def test_lab_is_offline_and_allows_root():
    makefile = (ROOT / "Makefile").read_text()
    for flag in (
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=None",
        '"fetchNews": "false"',
        "$(if $(filter 0,$(shell id -u)),--allow-root)",
    ):
        assert flag in makefile, flag


def _get_json(url, token):
    status, body = get(url, token)
    return status, json.loads(body)


# --- the rendered edition in a browser ---------------------------------------------------------


def _chromium() -> str | None:
    return (
        os.environ.get("MLM_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


@pytest.fixture(scope="module")
def rendered_lab(tmp_path_factory):
    require(shutil.which("make") is not None, "make not found")
    require(_chromium() is not None, "Chromium not found (apt-get install chromium)")
    rn = importlib.import_module("render_notebooks")
    out = BUILD / "notebooks"
    if out.exists():
        shutil.rmtree(out)
    rn.render_book(ROOT, out)
    tmp = tmp_path_factory.mktemp("rendered-lab")
    cmd = ["make", "-s", "lab", f"PYTHON={sys.executable}", f"LAB_DIR={out}"]
    # render every cell at once (JupyterLab draws only the visible ones by default), so
    # that the test can scroll to any of them; a setting of this test, not of the course
    settings = {"@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"}}
    with running_lab(cmd, ROOT, tmp, settings=settings) as (base, token, log):
        yield base, token, log


@pytest.mark.browser
def test_a_rendered_chapter_in_jupyterlab_shows_numbers_not_roles(rendered_lab):
    from playwright.sync_api import sync_playwright

    base, token, log = rendered_lab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def note(request):
                url = request.url
                if not url.startswith((base, "data:", "blob:", "attachment:", "about:")):
                    outside.append(url)

            page.on("request", note)
            page.goto(f"{base}/lab/tree/{CHAPTER}?token={token}")
            page.wait_for_selector(".jp-MarkdownOutput h1", timeout=90_000)
            # MathJax has typeset the formulas (and their \tag numbers)
            page.wait_for_function(
                "document.querySelectorAll('.jp-MarkdownOutput mjx-container').length > 20",
                timeout=60_000,
            )
            page.wait_for_timeout(1500)
            page.screenshot(path=str(SCREENSHOTS / "jupyterlab-06-top.png"))
            markdown = "\n".join(page.locator(".jp-MarkdownOutput").all_inner_texts())

            page.locator(
                ".jp-MarkdownOutput mjx-container[display='true']"
            ).first.scroll_into_view_if_needed()
            page.wait_for_timeout(800)
            page.screenshot(path=str(SCREENSHOTS / "jupyterlab-06-equations.png"))

            summary = page.locator("summary:has-text('Solution to Exercise 6.1')").first
            summary.click()
            page.locator("h3:has-text('Exercise 6.1')").first.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)
            page.screenshot(path=str(SCREENSHOTS / "jupyterlab-06-exercises.png"))
            opened = page.locator("details[open]").first.inner_text()
            toasts = page.locator(".jp-toast-message, .Toastify__toast").all_inner_texts()
            # the text MathJax gives screen readers starts with the \tag number
            formulas = page.evaluate(
                "Array.from(document.querySelectorAll('.jp-MarkdownOutput "
                "mjx-container[display=true] mjx-assistive-mml')).map(e => e.textContent)"
            )
        finally:
            browser.close()

    # numbers, not roles
    for raw in ("{glue", "{eq}", "{numref}", "{cite", "{doc}", ":::", "```{", ":label:"):
        assert raw not in markdown, f"raw MyST {raw!r} visible in JupyterLab"
    for shown in (
        "6. One-way ANOVA with random effects",
        "7185 students in 160 schools",  # glued values
        "Substituting (6.2) into (6.1)",  # {eq}
        "Fig. 6.1",  # {numref} and the caption
        "[Raudenbush and Bryk, 2002]",  # {cite}
        "What you’ll learn" if "What you’ll learn" in markdown else "What you'll learn",
        "Exercise 6.1",
        "Solution to Exercise 6.1",
    ):
        assert shown in markdown, shown
    assert re.search(r"\b0\.180\b", markdown), "the ICC, glued with :.3f"
    refs = importlib.import_module("book_refs").BookRefs(ROOT)
    labelled = [t for t in refs.targets.values() if t.kind == "equation" and t.docname == DOC]
    numbers = [m.group(0) for f in formulas if (m := re.match(r"\(\d+\.\d+\)", f))]
    assert numbers == [f"({t.number})" for t in labelled], "equation numbers as in the book"
    assert "(array([" in opened, "an opened solution shows its code's output"
    assert not [t for t in toasts if "news" in t.lower()], f"JupyterLab asked: {toasts}"
    assert not outside, f"requests left the machine: {outside[:5]}"
    assert "Traceback" not in log.read_text()
