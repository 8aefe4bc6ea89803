"""The slide decks in Chromium, offline, as an instructor presents them.

Playwright drives Debian's Chromium (as ``test_browser.py`` does; no browser is
downloaded). The decks are built from the notebooks into a temporary folder and served from
127.0.0.1; every request that would leave the machine is blocked and fails the test. For
every deck:

- reveal.js starts, MathJax typesets every formula of the slides without an error and
  leaves no raw TeX on a slide, and deck.js reports the layout final;
- every image loads; no slide's content is taller or wider than the slide after deck.js
  has fitted it; no console error;
- the speaker notes' TeX became MathML (what the speaker view shows);
- axe-core finds no critical or serious violation on the title slide, a content slide and a
  figure slide;
- screenshots of the first slides of each kind go to ``_build/screenshots/slides/``.

Once for the course: pressing S opens the speaker view with the current slide's notes, and
every number the decks glue is a number the book's own page shows (the HTML of the book
that ``test_browser.py`` builds).
"""

from __future__ import annotations

import functools
import html
import http.server
import re
import sys
import threading
from pathlib import Path

import pytest
from _publishing import BUILD, ROOT
from test_browser import AXE, CHROMIUM_FLAGS, LOCAL_SCHEMES, _chromium, require, site  # noqa: F401

sys.path.insert(0, str(ROOT / "scripts"))
import build_slides as bs  # noqa: E402

pytestmark = pytest.mark.browser

SCREENSHOTS = BUILD / "screenshots" / "slides"
WIDTH, HEIGHT = 1280, 720
MIN_SLIDES = 10


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("slides")
    bs.build(ROOT, out)
    return out


@pytest.fixture(scope="module")
def server(decks):
    handler = functools.partial(_Quiet, directory=str(decks))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    chromium = _chromium()
    require(chromium is not None, "Chromium not found (Debian: apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def _open(context, base: str, path: str):
    page = context.new_page()
    external, errors = [], []

    def route(r):
        url = r.request.url
        if url.startswith(base + "/") or url.startswith(LOCAL_SCHEMES):
            r.continue_()
        else:
            external.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/{path}", wait_until="load")
    return page, external, errors


SLIDE_STATE = """() => [...document.querySelectorAll('.reveal .slides > section')].map((s, i) => {
  const display = s.style.display;
  s.style.display = 'block';
  const body = s.querySelector('.body');
  let wide = 0;
  if (body) for (const item of body.children) wide = Math.max(wide, item.scrollWidth - body.clientWidth);
  const text = [...s.childNodes].filter(n => n.nodeName !== 'ASIDE').map(n => n.textContent).join(' ');
  const state = {index: i, kind: s.dataset.slideKind, height: window.mlmDeckContentHeight(s),
                 wide: wide, rawTex: /\\\\\\(|\\\\\\[/.test(text),
                 math: s.querySelectorAll('mjx-container').length};
  s.style.display = display;
  return state;
})"""


def _deck_names() -> list[str]:
    return [chapter.stem for chapter in bs.build_index(ROOT).decks]


@pytest.mark.parametrize("stem", _deck_names())
def test_deck_presents_offline(browser, server, stem):
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page, external, errors = _open(context, server, f"{stem}.html")
    page.wait_for_selector("body[data-deck=ready]", timeout=60000)
    total = page.evaluate("() => Reveal.getTotalSlides()")
    assert total >= MIN_SLIDES, f"{stem}: {total} slides"
    assert page.evaluate("() => document.querySelectorAll('mjx-merror').length") == 0
    states = page.evaluate(SLIDE_STATE)
    assert sum(s["math"] for s in states) > 0, f"{stem}: no typeset formula"
    assert not [s["index"] for s in states if s["rawTex"]], f"{stem}: raw TeX on a slide"
    too_tall = [(s["index"], s["height"]) for s in states if s["height"] > HEIGHT]
    too_wide = [(s["index"], s["wide"]) for s in states if s["wide"] > 1]
    assert not too_tall, f"{stem}: slides taller than {HEIGHT}px: {too_tall}"
    assert not too_wide, f"{stem}: content wider than the slide: {too_wide}"
    images = page.evaluate(
        "() => [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth])"
    )
    assert not [src for src, ok in images if not ok], f"{stem}: images that did not load"
    notes = page.evaluate(
        "() => [...document.querySelectorAll('aside.notes')].map(a => a.innerHTML).join(' ')"
    )
    assert "\\(" not in notes, f"{stem}: speaker notes keep raw TeX"
    if "\\(" in (ROOT / "book" / f"{stem}.ipynb").read_text():
        assert "<math" in notes, f"{stem}: no MathML in the speaker notes"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    axe = AXE.read_text(encoding="utf-8")
    first_of_kind = {}
    for s in states:
        first_of_kind.setdefault(s["kind"], s["index"])
    audited = []
    for kind in ("title", "content", "figure", "exercises"):
        if kind not in first_of_kind:
            continue
        page.evaluate(f"() => Reveal.slide({first_of_kind[kind]})")
        page.wait_for_timeout(100)
        page.screenshot(path=str(SCREENSHOTS / f"{stem}-{kind}.png"))
        if kind == "exercises":
            continue
        if not audited:
            page.add_script_tag(content=axe)
        audited.append(kind)
        violations = page.evaluate(
            "() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations"
            ".filter(v => ['critical', 'serious'].includes(v.impact))"
            ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3)))"
        )
        assert not violations, f"{stem}, {kind} slide: {violations}"
    assert "title" in audited and "content" in audited
    assert not external, f"{stem}: requests leaving the machine: {external[:5]}"
    assert not errors, f"{stem}: console errors: {errors[:5]}"
    context.close()


def test_index_lists_every_deck_and_passes_axe(browser, server, decks):
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page, external, errors = _open(context, server, "index.html")
    links = page.evaluate("() => [...document.querySelectorAll('main a')].map(a => a.href)")
    assert {f"{server}/{stem}.html" for stem in _deck_names()} <= set(links)
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    violations = page.evaluate(
        "() => axe.run(document).then(r => r.violations"
        ".filter(v => ['critical', 'serious'].includes(v.impact)).map(v => v.id))"
    )
    assert not violations
    assert not external and not errors
    context.close()


def test_speaker_view_shows_the_notes(browser, server):
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page, external, errors = _open(context, server, "06-null-model.html#/3")
    page.wait_for_selector("body[data-deck=ready]", timeout=60000)
    expected = page.evaluate(
        "() => Reveal.getCurrentSlide().querySelector('aside.notes').textContent.trim()"
    )
    assert len(expected) > 100
    with context.expect_page() as opened:
        page.keyboard.press("s")
    speaker = opened.value
    speaker.wait_for_load_state()
    speaker.wait_for_function(
        "() => document.querySelector('.speaker-controls-notes .value')"
        " && document.querySelector('.speaker-controls-notes .value').textContent.length > 50",
        timeout=20000,
    )
    shown = speaker.inner_text(".speaker-controls-notes .value")
    assert expected.split()[:8] == shown.split()[:8]
    speaker.set_viewport_size({"width": 1400, "height": 900})
    speaker.screenshot(path=str(SCREENSHOTS / "speaker-view.png"))
    assert not external and not errors
    context.close()


def test_every_glued_number_on_the_slides_is_on_the_book_page(decks, site):  # noqa: F811
    """An independent check of the glue: the decks resolve the roles themselves, the book
    through myst-nb; each value a deck shows must be one the book's page shows."""
    checked = 0
    for stem in _deck_names():
        deck = (decks / f"{stem}.html").read_text(encoding="utf-8")
        page = (site / "book" / f"{stem}.html").read_text(encoding="utf-8")
        on_slides = {html.unescape(v) for v in re.findall(r'<span class="glue">([^<]*)<', deck)}
        in_book = {
            html.unescape(v) for v in re.findall(r'<span class="pasted-text">([^<]*)<', page)
        }
        assert on_slides, f"{stem}: no glued number on the slides"
        missing = on_slides - in_book
        assert not missing, f"{stem}: numbers the book page does not show: {sorted(missing)[:5]}"
        checked += len(on_slides)
    assert checked > 200


def test_equation_and_figure_numbers_match_the_book(site):  # noqa: F811
    index = bs.build_index(ROOT)
    checked = 0
    for chapter in index.decks:
        page = (site / "book" / f"{chapter.stem}.html").read_text(encoding="utf-8")
        labels = {k.lower(): v for k, v in index.equations.items()}
        for label, number in re.findall(
            r'id="equation-([^"]+)">\s*<span class="eqno">\(([\d.]+)\)', page
        ):
            assert labels.get(label) == number, (chapter.stem, label, number)
            checked += 1
        for name, number in re.findall(
            r'id="(fig-[^"]+)">.*?<span class="caption-number">Fig\. ([\d.]+)', page, re.S
        ):
            assert index.figures.get(name) == number, (chapter.stem, name, number)
            checked += 1
    assert checked >= len(index.equations) + len(index.figures)
