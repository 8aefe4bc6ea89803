"""Launch and source links of the online book (scripts/sphinx_course.py), without a build.

The repository URL (``repository.url`` in ``_config.yml``) is the one place everything
derives from: with it, notebook pages get Colab and Binder links to the rendered notebooks
on its ``notebooks`` branch and the repository / "show source" buttons; without it, none.
The local JupyterLab link of ``make lab`` is offered by local builds only, never by a build
for publication (``MLM_PUBLISH=1``). ``tests/test_browser.py`` checks the same links in the
built HTML.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from _publishing import ROOT  # noqa: F401  (puts scripts/ on sys.path)

ext = importlib.import_module("sphinx_course")

REPO = "https://github.com/mlm-course/mlm-course"
LAUNCH = {
    "notebook_interface": "jupyterlab",
    "binderhub_url": "https://mybinder.org",
    "colab_url": "https://colab.research.google.com",
    "thebe": False,
}


def _config(url: str) -> SimpleNamespace:
    opts = {"repository_url": url, "launch_buttons": dict(LAUNCH), "use_repository_button": True}
    return SimpleNamespace(
        html_theme_options=opts, html_context={}, myst_substitutions={}, templates_path=[]
    )


def test_no_repository_no_hosted_launchers_or_repository_buttons():
    config = _config("")
    ext.configure_repository_links(None, config)
    opts = config.html_theme_options
    assert opts["launch_buttons"]["binderhub_url"] == ""
    assert opts["launch_buttons"]["colab_url"] == ""
    assert not opts["use_repository_button"] and not opts["use_source_button"]
    assert config.html_context["default_mode"] in ("light", "dark", "auto")
    assert "github" not in " ".join(config.myst_substitutions.values())


def test_repository_brings_back_source_buttons_and_our_launch_hosts():
    config = _config(REPO)
    ext.configure_repository_links(None, config)
    opts = config.html_theme_options
    assert opts["use_repository_button"] and opts["use_source_button"]
    # the theme's own Colab/Binder buttons (raw sources on main) are off; ours keep the hosts
    assert opts["launch_buttons"]["colab_url"] == ""
    assert config.mlm_launch_hosts["colab_url"] == LAUNCH["colab_url"]
    assert config.mlm_launch_hosts["binderhub_url"] == LAUNCH["binderhub_url"]


def test_the_theme_renders_no_second_header():
    # pydata-sphinx-theme 0.17 adds a header with a hidden sidebar toggle and a second
    # search box unless navbar_persistent is set explicitly
    config = _config(REPO)
    ext.configure_repository_links(None, config)
    assert config.html_theme_options["navbar_persistent"] == []
    assert str(ext.TEMPLATES) in config.templates_path


def test_welcome_page_substitutions_derive_from_the_url():
    subs = ext.repository_substitutions(REPO)
    assert subs["repository"] == f"[github.com/mlm-course/mlm-course]({REPO})"
    assert f"git clone {REPO}.git" in subs["get_a_copy"]
    assert "Colab" in subs["launch_hint"]
    empty = ext.repository_substitutions("")
    assert "built from" in empty["repository"] and "Colab" not in empty["launch_hint"]


@pytest.mark.parametrize(
    "url", ["https://gitlab.com/a/b", "github.com/a/b", "https://github.com/a"]
)
def test_a_url_colab_cannot_open_is_refused(url):
    with pytest.raises(ValueError, match="repository.url"):
        ext.configure_repository_links(None, _config(url))


def test_github_parts():
    assert ext.github_parts(REPO) == ("mlm-course", "mlm-course")
    assert ext.github_parts(REPO + ".git") == ("mlm-course", "mlm-course")
    assert ext.github_parts(REPO + "/") == ("mlm-course", "mlm-course")


def _app(source: str, url: str = ""):
    config = _config(url)
    ext.configure_repository_links(None, config)
    config.mlm_lab_url = "http://localhost:8888/lab/tree/"
    config.mlm_lab_root = "book"
    config.mlm_notebooks_branch = "notebooks"
    env = SimpleNamespace(doc2path=lambda name, base=True: source)
    return SimpleNamespace(env=env, config=config, builder=SimpleNamespace(format="html"))


def _urls(app, pagename):
    return {link["text"]: link["url"] for link in ext.launch_links(app, pagename)}


def test_launch_links_with_a_repository(monkeypatch):
    monkeypatch.delenv("MLM_PUBLISH", raising=False)
    urls = _urls(_app("book/07-random-intercept.ipynb", REPO), "book/07-random-intercept")
    assert urls == {
        "JupyterLab": "http://localhost:8888/lab/tree/07-random-intercept.ipynb",
        "Colab": "https://colab.research.google.com/github/mlm-course/mlm-course/blob/"
        "notebooks/07-random-intercept.ipynb",
        "Binder": "https://mybinder.org/v2/gh/mlm-course/mlm-course/notebooks"
        "?urlpath=lab/tree/07-random-intercept.ipynb",
    }


@pytest.mark.parametrize("url", [REPO, ""])
def test_published_builds_have_no_localhost_link(monkeypatch, url):
    monkeypatch.setenv("MLM_PUBLISH", "1")
    urls = _urls(_app("book/07-random-intercept.ipynb", url), "book/07-random-intercept")
    assert "JupyterLab" not in urls
    assert not any("localhost" in u for u in urls.values())
    assert set(urls) == ({"Colab", "Binder"} if url else set())


def test_local_build_without_repository_has_only_jupyterlab(monkeypatch):
    monkeypatch.setenv("MLM_PUBLISH", "0")
    assert list(_urls(_app("book/06-null-model.ipynb"), "book/06-null-model")) == ["JupyterLab"]


def test_launch_menu_on_notebook_pages_only(monkeypatch):
    monkeypatch.delenv("MLM_PUBLISH", raising=False)
    context = {"header_buttons": [{"label": "fullscreen-button"}]}
    ext.add_launch_links(_app("book/06-null-model.ipynb"), "book/06-null-model", "", context, None)
    group = context["header_buttons"][0]
    assert group["label"] == "launch-buttons"
    assert group["buttons"][0]["url"] == "http://localhost:8888/lab/tree/06-null-model.ipynb"
    assert context["header_buttons"][1]["label"] == "fullscreen-button"

    context = {"header_buttons": []}
    ext.add_launch_links(_app("book/api.md", REPO), "book/api", "", context, None)
    assert context["header_buttons"] == []


def test_launch_links_join_an_existing_launch_menu(monkeypatch):
    monkeypatch.delenv("MLM_PUBLISH", raising=False)
    other = {"type": "link", "text": "Other", "url": "https://example.org"}
    context = {"header_buttons": [{"label": "launch-buttons", "buttons": [other]}]}
    ext.add_launch_links(_app("book/x.ipynb", REPO), "book/x", "", context, None)
    texts = [b["text"] for b in context["header_buttons"][0]["buttons"]]
    assert texts == ["JupyterLab", "Colab", "Binder", "Other"]


def test_bibliography_entries_are_list_items():
    body = '<div role="list" class="citation-list"><div class="citation" role="doc-biblioentry">'
    context = {"body": body}
    ext.fix_citation_roles(None, "book/bibliography", "", context, None)
    assert 'role="listitem"' in context["body"] and "doc-biblioentry" not in context["body"]
