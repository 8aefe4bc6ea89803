"""The built book in a real browser, offline: math typeset, figures load, nothing external.

Playwright drives Debian's Chromium (``/usr/bin/chromium``; no browser is downloaded). The
book is built into ``_build/browser/`` and served from 127.0.0.1. For every page of
``_toc.yml`` the test waits for MathJax and checks that

- every formula is typeset (MathJax containers, no MathJax errors, no raw ``$$`` or ``\\(``);
- every image has loaded;
- no request goes anywhere but the local server;
- the console shows no error;

and saves a screenshot per page in ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest
from _publishing import BUILD, ROOT, newest_source_mtime, require, run

pytestmark = pytest.mark.browser

SITE_BUILD = BUILD / "browser"
SITE = SITE_BUILD / "_build" / "html"
SCREENSHOTS = BUILD / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
]
LOCAL_SCHEMES = ("data:", "blob:", "about:")
# paths of the machine that built the site must never show up in a link
MACHINE_PATH = re.compile(r"""(href|src)=["'](file:|/(work|tmp|home|root|Users)/)""")


def _chromium() -> str | None:
    return (
        os.environ.get("MLM_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


def _toc_pages():
    from book_toc import read_toc

    toc = read_toc(ROOT)
    return [toc.root, *toc.pages]


@pytest.fixture(scope="module")
def site() -> Path:
    """The HTML book, (re)built into _build/browser/ when a source is newer."""
    stamp = SITE / ".built"
    if not stamp.exists() or stamp.stat().st_mtime < newest_source_mtime():
        jb = Path(sys.executable).with_name("jupyter-book")
        run([str(jb), "build", ".", "-W", "--keep-going", "--path-output", str(SITE_BUILD)])
        stamp.touch()
    return SITE


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def browser():
    chromium = _chromium()
    require(chromium is not None, "Chromium not found (Debian: apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def test_no_link_points_at_a_machine_path(site):
    bad = {}
    for html in site.rglob("*.html"):
        hits = MACHINE_PATH.findall(html.read_text(encoding="utf-8"))
        if hits:
            bad[str(html.relative_to(site))] = hits[:3]
    assert not bad, f"links to paths of the build machine: {bad}"


def test_notebook_pages_offer_download_and_launch(site):
    from book_toc import read_toc

    notebooks = read_toc(ROOT).notebooks
    if not notebooks:
        pytest.skip("no chapter notebook in _toc.yml yet")
    for page in notebooks:
        html = (site / f"{page.docname}.html").read_text(encoding="utf-8")
        name = page.path.name
        assert f'_sources/{page.docname}.ipynb"' in html, f"{name}: no .ipynb download"
        assert (site / "_sources" / f"{page.docname}.ipynb").is_file()
        assert f"localhost:8888/lab/tree/{name}" in html, f"{name}: no JupyterLab link"
        # no repository configured: no Binder / Colab / repository links
        if "mybinder.org" in html or "colab.research" in html:
            assert "github.com" in html, f"{name}: hosted launch link without a repository"


def _check_page(browser, base: str, path: str, shot: Path) -> dict:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    external, errors = [], []
    url = f"{base}/{path}"

    def route(r):
        if r.request.url.startswith(base + "/") or r.request.url.startswith(LOCAL_SCHEMES):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="load")
    has_math = page.evaluate("() => document.querySelectorAll('.math').length")
    result = {"math": has_math, "typeset": 0}
    if has_math:
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000
        )
        page.evaluate("() => MathJax.startup.promise")
        result["typeset"] = page.evaluate("() => document.querySelectorAll('mjx-container').length")
        result["merror"] = page.evaluate("() => document.querySelectorAll('mjx-merror').length")
        result["raw"] = page.evaluate(
            """() => {
                const main = document.querySelector('main') || document.body;
                const copy = main.cloneNode(true);
                copy.querySelectorAll('pre, code, .highlight, .cell_output, script')
                    .forEach(e => e.remove());
                const text = copy.innerText;
                return ['$$', '\\\\(', '\\\\[', '\\\\begin{'].filter(s => text.includes(s));
            }"""
        )
    result["broken_images"] = page.evaluate(
        """() => Array.from(document.images)
              .filter(i => !(i.complete && i.naturalWidth > 0))
              .map(i => i.getAttribute('src'))"""
    )
    result["images"] = page.evaluate("() => document.images.length")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    result["external"], result["errors"] = external, errors
    return result


@pytest.mark.parametrize("docname", [p.docname for p in _toc_pages()])
def test_page_renders_offline(browser, server, docname):
    shot = SCREENSHOTS / f"{Path(docname).name}.png"
    r = _check_page(browser, server, f"{docname}.html", shot)
    assert not r["external"], f"requests left localhost: {r['external']}"
    assert not r["errors"], f"console errors: {r['errors']}"
    assert not r["broken_images"], f"images that did not load: {r['broken_images']}"
    if r["math"]:
        assert r["typeset"] >= r["math"], f"only {r['typeset']} of {r['math']} formulas typeset"
        assert r["merror"] == 0, "MathJax reported errors"
        assert not r["raw"], f"raw TeX delimiters in the text: {r['raw']}"
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_search_finds_a_chapter(browser, server):
    toc_pages = _toc_pages()
    page_ = toc_pages[-1] if len(toc_pages) > 1 else toc_pages[0]
    word = max(re.findall(r"[A-Za-z]{5,}", page_.title), key=len)
    page = browser.new_page()
    page.goto(f"{server}/search.html?q={word}", wait_until="load")
    page.wait_for_selector("ul.search li", timeout=20000)
    hrefs = page.eval_on_selector_all("ul.search li a", "els => els.map(e => e.href)")
    page.close()
    assert any(Path(page_.docname).name in h for h in hrefs), f"search for {word!r}: {hrefs}"
