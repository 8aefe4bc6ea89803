"""The built book in a real browser, offline, as its readers get it.

Playwright drives Debian's Chromium (``/usr/bin/chromium``, or ``MLM_CHROMIUM``; no browser
is downloaded). The book is built the way the deployment workflow builds it, for
publication (``MLM_PUBLISH=1``, the repository URL of ``_config.yml``), into
``_build/browser/``, and served from 127.0.0.1. A second build, local and without a
repository URL, goes to ``_build/browser-local/``. The checks:

- every page of ``_toc.yml`` renders offline: formulas typeset, images loaded, no request
  leaves the machine, no console error (a screenshot per page in ``_build/screenshots/``);
- the links a reader gets: Colab and Binder open the rendered notebooks of the
  ``notebooks`` branch, the source buttons the repository; no page of the published site
  links to ``localhost``; the local build offers the JupyterLab link and no hosted launcher;
- navigation at 390 px (a phone) and 1400 px: the sidebar toggle opens and closes the
  sidebar, one search box is visible, no empty header strip;
- layout at both widths on every page: the page never scrolls sideways, no table is cut off
  (it fits or scrolls in its own box; prose tables fit on a desktop), no display equation
  runs out of the page and no equation number sits on its formula;
- search finds the ICC chapter under its common spellings;
- accessibility: axe-core (``tests/vendor/axe.min.js``) on every built page at both widths,
  0 critical and 0 serious violations;
- no page shows a glue call or a raw result repr.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest
import yaml
from _publishing import BUILD, ROOT, newest_source_mtime, require, run

pytestmark = pytest.mark.browser

SITE_BUILD = BUILD / "browser"
SITE = SITE_BUILD / "_build" / "html"
LOCAL_BUILD = BUILD / "browser-local"
LOCAL_SITE = LOCAL_BUILD / "_build" / "html"
SCREENSHOTS = BUILD / "screenshots"
AXE = ROOT / "tests" / "vendor" / "axe.min.js"
WIDTHS = {"phone": (390, 844), "desktop": (1400, 900)}
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
ICC_CHAPTER = "04-icc"


def _chromium() -> str | None:
    return (
        os.environ.get("MLM_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


def _toc():
    from book_toc import read_toc

    return read_toc(ROOT)


def _toc_pages():
    toc = _toc()
    return [toc.root, *toc.pages]


def _repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return (config.get("repository") or {}).get("url", "").strip().rstrip("/")


def _build(out: Path, env: dict[str, str], config: Path | None = None) -> Path:
    html = out / "_build" / "html"
    stamp = html / ".built"
    if not stamp.exists() or stamp.stat().st_mtime < newest_source_mtime():
        jb = Path(sys.executable).with_name("jupyter-book")
        cmd = [str(jb), "build", ".", "-W", "--keep-going", "--path-output", str(out)]
        if config is not None:
            cmd += ["--config", str(config)]
        run(cmd, env={**os.environ, **env})
        stamp.touch()
    return html


@pytest.fixture(scope="module")
def site() -> Path:
    """The HTML book as the deployment workflow builds it (for publication)."""
    return _build(SITE_BUILD, {"MLM_PUBLISH": "1"})


@pytest.fixture(scope="module")
def local_site() -> Path:
    """A local build (``make book``) of a copy whose ``repository.url`` is empty."""
    LOCAL_BUILD.mkdir(parents=True, exist_ok=True)
    config = LOCAL_BUILD / "_config.yml"
    text = (ROOT / "_config.yml").read_text()
    text = re.sub(r"(?m)^(repository:\n  url:) .*$", r'\1 ""', text)
    # local extensions are found relative to the configuration file
    text = text.replace("sphinx_course: scripts/", f"sphinx_course: {ROOT / 'scripts'}/")
    assert 'url: ""' in text and str(ROOT) in text
    if not config.exists() or config.read_text() != text:
        config.write_text(text)
    return _build(LOCAL_BUILD, {"MLM_PUBLISH": "0"}, config)


def _serve(root: Path):
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture(scope="module")
def server(site):
    httpd = _serve(site)
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


def _open(browser, base: str, path: str, width: str = "desktop"):
    """A page at one of WIDTHS, loaded offline, with MathJax done; (page, external, errors)."""
    w, h = WIDTHS[width]
    page = browser.new_page(viewport={"width": w, "height": h})
    external, errors = [], []

    def route(r):
        if r.request.url.startswith(base + "/") or r.request.url.startswith(LOCAL_SCHEMES):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/{path}", wait_until="load")
    if page.evaluate("() => document.querySelectorAll('.math').length"):
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000
        )
        page.evaluate("() => MathJax.startup.promise")
    return page, external, errors


# --- static checks of the built HTML -----------------------------------------------------


def _pages_html(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in root.rglob("*.html")
        if not {"_static", "_sources", "_images"} & set(p.relative_to(root).parts)
    }


def test_no_link_points_at_a_machine_path(site):
    bad = {}
    for name, html in _pages_html(site).items():
        hits = MACHINE_PATH.findall(html)
        if hits:
            bad[name] = hits[:3]
    assert not bad, f"links to paths of the build machine: {bad}"


def _hrefs(html: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', html))


def test_published_notebook_pages_launch_the_rendered_notebooks(site):
    url = _repository_url()
    assert url.startswith("https://github.com/"), "repository.url is not set in _config.yml"
    org_repo = url.removeprefix("https://github.com/")
    notebooks = _toc().notebooks
    assert notebooks
    for page in notebooks:
        html = (site / f"{page.docname}.html").read_text(encoding="utf-8")
        hrefs = _hrefs(html)
        name = page.path.name
        expected = {
            f"https://colab.research.google.com/github/{org_repo}/blob/notebooks/{name}",
            f"https://mybinder.org/v2/gh/{org_repo}/notebooks?urlpath=lab/tree/{name}",
            f"{url}/blob/main/{page.path.relative_to(ROOT).as_posix()}?plain=1",  # source
            url,  # repository button
            f"../_sources/{page.docname}.ipynb",  # download
        }
        assert expected <= hrefs, f"{name}: missing {sorted(expected - hrefs)}"
        assert (site / "_sources" / f"{page.docname}.ipynb").is_file()


def test_published_site_has_no_localhost_link(site):
    bad = {name: 1 for name, html in _pages_html(site).items() if "localhost" in html}
    assert not bad, f"pages that link to localhost: {sorted(bad)}"


def test_welcome_page_points_at_the_repository(site):
    url = _repository_url()
    html = (site / f"{_toc().root.docname}.html").read_text(encoding="utf-8")
    assert f'href="{url}"' in html
    assert f"{url}.git" in re.sub(r"<[^>]+>", "", html)  # the git clone command
    assert "repository (below)" not in html


def test_local_build_without_repository_offers_jupyterlab_only(local_site):
    for page in _toc().notebooks:
        html = (local_site / f"{page.docname}.html").read_text(encoding="utf-8")
        hrefs = _hrefs(html)
        assert f"http://localhost:8888/lab/tree/{page.path.name}" in hrefs, page.path.name
        hosted = [h for h in hrefs if re.search(r"colab\.research|mybinder\.org|github\.com", h)]
        assert not hosted, f"{page.path.name}: {hosted}"
    welcome = (local_site / f"{_toc().root.docname}.html").read_text(encoding="utf-8")
    assert "the folder this book was built from" in welcome


def test_no_page_shows_a_glue_call_or_a_raw_result(site):
    shown = collections.Counter()
    for page in _toc().notebooks:
        html = (site / f"{page.docname}.html").read_text(encoding="utf-8")
        # a call of glue in a highlighted code cell
        shown[page.path.name] = html.count('<span class="n">glue</span><span class="p">(</span>')
        raw = re.findall(r"\b(?:Wald|LRT|ICC|GLS|BootstrapLRT)Result\(\w+=", html)
        assert not raw, f"{page.path.name}: raw result repr {raw[:2]}"
    assert sum(shown.values()) == 0, f"visible calls of glue: {+shown}"
    inference = (site / "book" / "12-inference.html").read_text(encoding="utf-8")
    assert '<table class="mlm-result"><caption>WaldResult</caption>' in inference


def test_axe_is_the_vendored_version_and_not_served(site):
    readme = (ROOT / "tests" / "vendor" / "README.md").read_text()
    version = re.search(r"^AXE_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)[1]
    assert AXE.read_text(encoding="utf-8").startswith(f"/*! axe v{version}\n")
    assert f"| {version} (npm `axe-core`)" in readme
    assert hashlib.sha256(AXE.read_bytes()).hexdigest() in readme
    assert not list(site.rglob("axe*.js")), "axe-core is a test tool, not part of the site"


# --- every page in the browser -------------------------------------------------------------


@pytest.mark.parametrize("docname", [p.docname for p in _toc_pages()])
def test_page_renders_offline(browser, server, docname):
    shot = SCREENSHOTS / f"{Path(docname).name}.png"
    page, external, errors = _open(browser, server, f"{docname}.html")
    r = {"math": page.evaluate("() => document.querySelectorAll('.math').length")}
    if r["math"]:
        r["typeset"] = page.evaluate("() => document.querySelectorAll('mjx-container').length")
        r["merror"] = page.evaluate("() => document.querySelectorAll('mjx-merror').length")
        r["raw"] = page.evaluate(
            """() => {
                const main = document.querySelector('main') || document.body;
                const copy = main.cloneNode(true);
                copy.querySelectorAll('pre, code, .highlight, .cell_output, script')
                    .forEach(e => e.remove());
                const text = copy.innerText;
                return ['$$', '\\\\(', '\\\\[', '\\\\begin{'].filter(s => text.includes(s));
            }"""
        )
    broken = page.evaluate(
        """() => Array.from(document.images)
              .filter(i => !(i.complete && i.naturalWidth > 0))
              .map(i => i.getAttribute('src'))"""
    )
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    assert not external, f"requests left localhost: {external}"
    assert not errors, f"console errors: {errors}"
    assert not broken, f"images that did not load: {broken}"
    if r["math"]:
        assert r["typeset"] >= r["math"], f"only {r['typeset']} of {r['math']} formulas typeset"
        assert r["merror"] == 0, "MathJax reported errors"
        assert not r["raw"], f"raw TeX delimiters in the text: {r['raw']}"
    assert shot.is_file() and shot.stat().st_size > 10_000


VISIBLE_JS = """e => {
    if (!e.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) return false;
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.right > 0 && r.left < innerWidth;
}"""

NAV_JS = f"""() => {{
    const visible = {VISIBLE_JS};
    const sidebar = document.querySelector('#pst-primary-sidebar');
    const dialog = document.querySelector('#pst-primary-sidebar-modal');
    const current = [...document.querySelectorAll('.bd-sidebar-primary a.current, '
        + '#pst-primary-sidebar-modal a.current')].filter(visible);
    const header = document.querySelector('#pst-header');
    return {{
        toggles: [...document.querySelectorAll('.primary-toggle')].filter(visible).length,
        searches: [...document.querySelectorAll(
            '.search-button-field, .search-button, form.bd-search input')].filter(visible).length,
        sidebar_open: current.length > 0,
        in_dialog: !!(dialog && dialog.open),
        header_height: header ? header.getBoundingClientRect().height : 0,
        sidebar_class: sidebar.className,
    }};
}}"""


@pytest.mark.parametrize("width", WIDTHS)
def test_sidebar_toggle_opens_and_closes_the_sidebar(browser, server, width):
    path = "book/07-random-intercept.html"
    page, _, errors = _open(browser, server, path, width)
    name = f"ch07-{WIDTHS[width][0]}"
    before = page.evaluate(NAV_JS)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-start.png"))
    assert before["toggles"] == 1, "exactly one visible sidebar toggle"
    assert before["searches"] == 1, "exactly one visible search box"
    assert before["header_height"] == 0, "no (empty) site header above the article"
    toggle = page.locator(".primary-toggle").filter(visible=True)
    toggle.click()
    page.wait_for_timeout(500)  # the theme's transition
    after = page.evaluate(NAV_JS)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-toggled.png"))
    if width == "desktop":
        # the sidebar is open at first; the toggle collapses it, and again brings it back
        assert before["sidebar_open"] and not after["sidebar_open"], (before, after)
        assert "pst-sidebar-hidden" in after["sidebar_class"]
        toggle.click()
        page.wait_for_timeout(500)
        assert page.evaluate(NAV_JS)["sidebar_open"]
    else:
        # closed at first; the toggle opens it as a drawer, Escape closes it
        assert not before["sidebar_open"] and after["sidebar_open"] and after["in_dialog"]
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)
        closed = page.evaluate(NAV_JS)
        assert not closed["sidebar_open"] and not closed["in_dialog"]
    page.close()
    assert not errors


LAYOUT_JS = f"""() => {{
    const visible = {VISIBLE_JS};
    const vw = document.documentElement.clientWidth;
    const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
    const clips = e => ['hidden', 'clip'].includes(getComputedStyle(e).overflowX);
    const box = r => [Math.round(r.left), Math.round(r.right)];
    const tables = [];
    for (const t of document.querySelectorAll('main table')) {{
        if (!visible(t)) continue;  // e.g. in a folded solution
        const r = t.getBoundingClientRect();
        if (r.width === 0) continue;
        let bad = null, scroller = null;
        for (let a = t.parentElement; a && a !== document.body; a = a.parentElement) {{
            const ar = a.getBoundingClientRect();
            if (scrolls(a)) {{ scroller = a; break; }}
            if (clips(a) && r.right > ar.right + 1) {{ bad = 'cut by ' + a.className; break; }}
        }}
        if (!bad && scroller) {{
            const sr = scroller.getBoundingClientRect();
            if (sr.right > vw + 1) bad = 'its scroll box runs out of the page';
            else if (scroller.scrollWidth > scroller.clientWidth + 1 && scroller.tabIndex < 0)
                bad = 'scrolls but cannot be reached by keyboard';
        }} else if (!bad && r.right > vw + 1) bad = 'runs out of the page';
        const prose = t.matches('.pst-scrollable-table-container > table');
        const wide = scroller && scroller.scrollWidth > scroller.clientWidth + 1;
        tables.push({{table: (t.id || t.className || 'table') + ' ' + box(r), bad, prose, wide}});
    }}
    const equations = [];
    for (const d of document.querySelectorAll('main div.math')) {{
        const m = d.querySelector(':scope > mjx-container');
        if (!m || !visible(d)) continue;
        const mr = m.getBoundingClientRect(), dr = d.getBoundingClientRect();
        const e = d.querySelector(':scope > .eqno');
        const er = e ? e.getBoundingClientRect() : null;
        const overlap = er && er.left < mr.right - 1 && er.right > mr.left + 1
            && er.top < mr.bottom - 1 && er.bottom > mr.top + 1;
        const hidden = m.scrollWidth > m.clientWidth + 1 && !scrolls(m);
        equations.push({{id: d.id, out: dr.right > vw + 1 || mr.right > vw + 1 || mr.left < -1,
                         overlap, hidden, scrolls: m.scrollWidth > m.clientWidth + 1}});
    }}
    return {{page_width: document.documentElement.scrollWidth, vw, tables, equations}};
}}"""


@pytest.fixture(scope="module")
def audit(browser, server, site):
    """Layout and axe-core results of every built page at both widths (one browser)."""
    axe = AXE.read_text(encoding="utf-8")
    pages = sorted(_pages_html(site))
    out = {}
    for width in WIDTHS:
        w, h = WIDTHS[width]
        page = browser.new_page(viewport={"width": w, "height": h})
        for path in pages:
            html = (site / path).read_text(encoding="utf-8")
            if re.match(r'\s*<meta http-equiv="Refresh"', html):
                out[width, path] = {"redirect": True}
                continue
            page.goto(f"{server}/{path}", wait_until="load")
            if page.evaluate("() => document.querySelectorAll('.math').length"):
                page.wait_for_function("() => window.MathJax && MathJax.startup", timeout=20000)
                page.evaluate("() => MathJax.startup.promise")
                # typesetting changes the page; the theme marks the boxes that now scroll
                # focusable 300 ms later
                page.wait_for_timeout(350)
            result = page.evaluate(LAYOUT_JS)
            page.add_script_tag(content=axe)
            # colours do not depend on the width: the contrast check (half of axe's time)
            # runs at desktop width only
            options = {"resultTypes": ["violations"]}
            if width == "phone":
                options["rules"] = {"color-contrast": {"enabled": False}}
            result["axe"] = page.evaluate(
                """async options => (await axe.run(document, options)).violations
                    .map(v => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5),
                        n: v.nodes.length}))""",
                options,
            )
            out[width, path] = result
        page.close()
    summary = collections.Counter()
    for (width, _), r in out.items():
        for v in r.get("axe", []):
            summary[width, v["id"], v["impact"]] += v["n"]
    (BUILD / "axe-summary.json").write_text(
        json.dumps({" ".join(k): n for k, n in sorted(summary.items())}, indent=1)
    )
    return out


def _audited_pages(audit):
    return sorted({path for _, path in audit})


def test_every_built_page_was_audited(audit, site):
    pages = _audited_pages(audit)
    assert len(pages) >= len(_toc_pages()) + 2  # plus search and the index pages
    redirects = [p for p in pages if audit["desktop", p].get("redirect")]
    assert redirects == ["index.html"]  # jupyter-book's redirect to the welcome page


@pytest.mark.parametrize("width", WIDTHS)
def test_axe_finds_no_critical_or_serious_violation(audit, width):
    bad = {}
    for (w, path), r in audit.items():
        found = [v for v in r.get("axe", []) if v["impact"] in ("critical", "serious")]
        if w == width and found:
            bad[path] = [f"{v['id']} ({v['impact']}, {v['n']}): {v['nodes'][:2]}" for v in found]
    assert not bad, json.dumps(bad, indent=1)


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways(audit, width):
    wide = {
        p: r["page_width"]
        for (w, p), r in audit.items()
        if w == width and not r.get("redirect") and r["page_width"] > r["vw"]
    }
    assert not wide, f"pages wider than the {WIDTHS[width][0]} px screen: {wide}"


@pytest.mark.parametrize("width", WIDTHS)
def test_no_table_is_cut_off(audit, width):
    bad = {}
    for (w, path), r in audit.items():
        if w != width or r.get("redirect"):
            continue
        for t in r["tables"]:
            if t["bad"]:
                bad.setdefault(path, []).append(f"{t['table']}: {t['bad']}")
            elif width == "desktop" and t["prose"] and t["wide"]:
                bad.setdefault(path, []).append(f"{t['table']}: a prose table that scrolls")
    assert not bad, json.dumps(bad, indent=1)
    crosswalk = [t for t in audit[width, "book/appendix-crosswalk.html"]["tables"]]
    assert crosswalk, "the cross-walk's tables were not measured"


@pytest.mark.parametrize("width", WIDTHS)
def test_display_equations_stay_on_the_page(audit, width):
    bad = {}
    for (w, path), r in audit.items():
        if w != width or r.get("redirect"):
            continue
        for e in r["equations"]:
            problems = [k for k in ("out", "overlap", "hidden") if e[k]]
            if problems:
                bad.setdefault(path, []).append(f"{e['id']}: {problems}")
    assert not bad, json.dumps(bad, indent=1)
    ch07 = audit[width, "book/07-random-intercept.html"]["equations"]
    assert len(ch07) >= 10, "chapter 7's equations were not measured"
    if width == "phone":
        # the widest formulas of chapter 7 do not fit 390 px: they scroll in their own box
        assert any(e["scrolls"] for e in ch07)


def _search(browser, server, query: str) -> list[str]:
    page = browser.new_page()
    page.goto(f"{server}/search.html?q={query}", wait_until="load")
    page.wait_for_selector("ul.search li", timeout=20000)
    hrefs = page.eval_on_selector_all("ul.search li > a", "els => els.map(e => e.href)")
    page.close()
    return hrefs


def test_search_finds_a_chapter(browser, server):
    toc_pages = _toc_pages()
    page_ = toc_pages[-1] if len(toc_pages) > 1 else toc_pages[0]
    word = max(re.findall(r"[A-Za-z]{5,}", page_.title), key=len)
    hrefs = _search(browser, server, word)
    assert any(Path(page_.docname).name in h for h in hrefs), f"search for {word!r}: {hrefs}"


@pytest.mark.parametrize("query", ["intraclass", "intra-class", "ICC", "intraclass correlation"])
def test_search_finds_the_icc_chapter_under_each_spelling(browser, server, query):
    hrefs = _search(browser, server, query)
    top = [h.split("/")[-1].split("#")[0].split("?")[0] for h in hrefs[:5]]
    assert f"{ICC_CHAPTER}.html" in top, f"search for {query!r}: first results {top}"
