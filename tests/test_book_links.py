"""Launch and source links of the online book (scripts/sphinx_course.py), without a build.

With no repository URL, no page may link to Binder, Colab or a repository (they would point
at nothing); with one, the hosted launchers and the "show source" button come back. Every
notebook page links to the local JupyterLab of ``make lab``.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

from _publishing import ROOT  # noqa: F401  (puts scripts/ on sys.path)

ext = importlib.import_module("sphinx_course")

LAUNCH = {
    "notebook_interface": "jupyterlab",
    "binderhub_url": "https://mybinder.org",
    "colab_url": "https://colab.research.google.com",
    "thebe": False,
}


def _config(url: str) -> SimpleNamespace:
    opts = {"repository_url": url, "launch_buttons": dict(LAUNCH), "use_repository_button": True}
    return SimpleNamespace(html_theme_options=opts, html_context={})


def test_no_repository_no_hosted_launchers_or_repository_buttons():
    config = _config("")
    ext.configure_repository_links(None, config)
    opts = config.html_theme_options
    assert opts["launch_buttons"]["binderhub_url"] == ""
    assert opts["launch_buttons"]["colab_url"] == ""
    assert not opts["use_repository_button"] and not opts["use_source_button"]
    assert config.html_context["default_mode"] in ("light", "dark", "auto")


def test_repository_brings_back_launchers_and_source_button():
    config = _config("https://github.com/example/course")
    ext.configure_repository_links(None, config)
    opts = config.html_theme_options
    assert opts["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert opts["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert opts["use_repository_button"] and opts["use_source_button"]


def _app(source: str):
    env = SimpleNamespace(doc2path=lambda name, base=True: source)
    config = SimpleNamespace(mlm_lab_url="http://localhost:8888/lab/tree/", mlm_lab_root="book")
    return SimpleNamespace(env=env, config=config, builder=SimpleNamespace(format="html"))


def test_lab_link_added_to_notebook_pages_only():
    context = {"header_buttons": [{"label": "fullscreen-button"}]}
    ext.add_lab_launch_link(
        _app("book/06-null-model.ipynb"), "book/06-null-model", "", context, None
    )
    group = context["header_buttons"][0]
    assert group["label"] == "launch-buttons"
    assert group["buttons"][0]["url"] == "http://localhost:8888/lab/tree/06-null-model.ipynb"
    assert context["header_buttons"][1]["label"] == "fullscreen-button"

    context = {"header_buttons": []}
    ext.add_lab_launch_link(_app("book/api.md"), "book/api", "", context, None)
    assert context["header_buttons"] == []


def test_lab_link_joins_an_existing_launch_menu():
    binder = {"type": "link", "text": "Binder", "url": "https://mybinder.org/v2/gh/x/y/main"}
    context = {"header_buttons": [{"label": "launch-buttons", "buttons": [binder]}]}
    ext.add_lab_launch_link(_app("book/x.ipynb"), "book/x", "", context, None)
    texts = [b["text"] for b in context["header_buttons"][0]["buttons"]]
    assert texts == ["JupyterLab", "Binder"]
