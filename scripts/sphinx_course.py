"""Sphinx extension for the course book: launch links, source links, theme fixes.

Loaded through ``sphinx.local_extensions`` in ``_config.yml``.

The repository URL is set in one place, ``repository.url`` in ``_config.yml``; everything
else derives from it here:

- **Launch links** of every notebook page (the rocket menu). With a repository URL, "Colab"
  and "Binder" open the page's notebook from the ``notebooks`` branch of that repository
  (``mlm_notebooks_branch``), where the deployment workflow publishes the rendered edition of
  the chapters that ``make notebooks`` writes to ``_build/notebooks/<chapter>.ipynb``
  (numbers and references written in, so they read well outside the book):

  - ``https://colab.research.google.com/github/<org>/<repo>/blob/notebooks/<chapter>.ipynb``
  - ``https://mybinder.org/v2/gh/<org>/<repo>/notebooks?urlpath=lab/tree/<chapter>.ipynb``

  The hosts come from ``launch_buttons`` in ``_config.yml``; the theme's own Colab/Binder
  buttons (which point at ``book/`` of the main branch, the raw MyST sources) are switched
  off. Without a repository URL there is no hosted launcher.
- **"JupyterLab"** opens the notebook in the JupyterLab of ``make lab`` on the reader's own
  computer (``mlm_lab_url``, a localhost address). It is offered only by local builds: a
  build for publication (environment variable ``MLM_PUBLISH=1``, set by the deployment
  workflow; ``make book MLM_PUBLISH=1`` locally) leaves it out, since on the published site it
  would point at the reader's machine, where nothing listens.
- **Repository and "show source" buttons** appear only with a repository URL; without one
  the only source link is the page's own file in the built site (``_sources/``), never a path
  of the machine that built it.
- **The welcome page's pointer to the repository**: the MyST substitutions ``repository``
  and ``get_a_copy`` (see :func:`repository_substitutions`).

It also fixes two things of the theme pair pinned in ``requirements.lock``
(pydata-sphinx-theme 0.17.1, sphinx-book-theme 1.3.0):

- pydata-sphinx-theme fills an unset ``navbar_persistent`` with a search button, so a
  second header with a hidden sidebar toggle and a second search box is rendered; the themes'
  scripts bind to that hidden first toggle, and the visible one does nothing. An explicit
  empty ``navbar_persistent`` removes that header (sphinx-book-theme issues #986, #999).
- Templates in ``scripts/templates/`` override theme components whose markup fails axe-core
  (accessible names of the search and colour-mode buttons).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from sphinx.application import Sphinx
from sphinx.config import Config

HOSTED_LAUNCHERS = (
    "binderhub_url",
    "colab_url",
    "jupyterhub_url",
    "deepnote_url",
    "jupyterlite_url",
)
REPO_BUTTONS = ("use_repository_button", "use_source_button", "use_issues_button")
TEMPLATES = Path(__file__).resolve().parent / "templates"
GITHUB = re.compile(r"^https://github\.com/(?P<org>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+?)/?$")


def published() -> bool:
    """True for a build of the published site (``MLM_PUBLISH`` set and not ``0``)."""
    return os.environ.get("MLM_PUBLISH", "") not in ("", "0")


def _theme_options(config: Config) -> dict[str, Any]:
    if config.html_theme_options is None:
        config.html_theme_options = {}
    return config.html_theme_options


def github_parts(url: str) -> tuple[str, str]:
    """``(org, repo)`` of a ``https://github.com/<org>/<repo>`` URL.

    Raises
    ------
    ValueError
        If the URL is not of that form (Colab opens notebooks from GitHub only).
    """
    m = GITHUB.match(url.strip())
    if not m:
        raise ValueError(
            f"repository.url in _config.yml is {url!r}; set it to "
            "https://github.com/<org>/<repo> (or leave it empty for a book without "
            "Colab/Binder links)"
        )
    return m["org"], m["repo"].removesuffix(".git")


def repository_substitutions(url: str) -> dict[str, str]:
    """MyST substitutions that point readers at the repository (``book/00-welcome.md``).

    ``repository`` names it (a link), ``launch_hint`` says how to open one chapter and
    ``get_a_copy`` how to get all of them; without a URL they speak of the folder the book
    was built from.
    """
    url = url.strip().rstrip("/")
    if not url:
        return {
            "repository": "the folder this book was built from",
            "launch_hint": "Download one with the download button at the top of its page",
            "get_a_copy": "In the folder this book was built from, run:",
        }
    shown = url.removeprefix("https://")
    return {
        "repository": f"[{shown}]({url})",
        "launch_hint": (
            "Open one in Colab or Binder from the rocket button at the top of its page (it "
            "runs in your browser, with nothing to install), download it with the download "
            "button"
        ),
        "get_a_copy": f"Clone it with `git clone {url}.git` and run, in its folder:",
    }


def configure_repository_links(app: Sphinx | None, config: Config) -> None:
    """Derive launch hosts, repository buttons and substitutions from ``repository_url``."""
    opts = _theme_options(config)
    launch = dict(opts.get("launch_buttons") or {})
    url = (opts.get("repository_url") or "").strip()
    # the hosts of our own Colab/Binder links; the theme's own buttons are switched off
    config.mlm_launch_hosts = {k: (launch.get(k) or "").strip() for k in HOSTED_LAUNCHERS}
    for key in HOSTED_LAUNCHERS:
        launch[key] = ""
    if url:
        github_parts(url)  # fails early on a URL that Colab cannot open
        opts["use_repository_button"] = True
        opts["use_source_button"] = True
        opts.setdefault("repository_branch", "main")
    else:
        opts["repository_url"] = ""
        for key in REPO_BUTTONS + ("use_edit_page_button",):
            opts[key] = False
    opts["launch_buttons"] = launch
    # pydata-sphinx-theme 0.17 renders a header with a second (hidden) sidebar toggle and a
    # second search box unless navbar_persistent is set explicitly (module docstring)
    opts.setdefault("navbar_persistent", [])
    # the theme's layout reads `default_mode` from html_context; left empty, its script
    # logs a console error on every page
    if config.html_context is None:
        config.html_context = {}
    config.html_context.setdefault("default_mode", "light")
    subs = dict(getattr(config, "myst_substitutions", None) or {})
    for key, value in repository_substitutions(url).items():
        subs.setdefault(key, value)
    config.myst_substitutions = subs
    templates = list(config.templates_path or [])
    if str(TEMPLATES) not in templates:
        templates.insert(0, str(TEMPLATES))
    config.templates_path = templates


def drop_thebe_assets(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Without Thebe, do not load its scripts (sphinx-thebe declares them twice under JB1).

    The duplicated inline declaration is a JavaScript error on every page, and the script
    names a CDN; neither is needed when ``launch_buttons.thebe`` is false.
    """
    opts = _theme_options(app.config)
    if (opts.get("launch_buttons") or {}).get("thebe"):
        return

    def is_thebe(asset) -> bool:
        name = getattr(asset, "filename", None) or ""
        body = (getattr(asset, "attributes", None) or {}).get("body", "")
        return "thebe" in str(name) or "THEBE_JS_URL" in str(body)

    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [asset for asset in context[key] if not is_thebe(asset)]


def fix_citation_roles(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Bibliography entries as ARIA list items.

    docutils marks each entry of a citation list ``role="doc-biblioentry"``, a role that
    DPUB-ARIA 1.1 deprecated; axe-core then finds a ``role="list"`` without list items
    (``aria-required-children``, critical). ``listitem`` is the role that replaces it.
    """
    body = context.get("body")
    if body and 'role="doc-biblioentry"' in body:
        context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


def _notebook_path(app: Sphinx, pagename: str) -> PurePosixPath | None:
    """The page's notebook relative to ``mlm_lab_root`` (``book/``), or None for other pages."""
    source = PurePosixPath(app.env.doc2path(pagename, False))
    if source.suffix != ".ipynb":
        return None
    root = PurePosixPath(app.config.mlm_lab_root.strip("/")) if app.config.mlm_lab_root else None
    if root is not None and root.parts and source.parts[: len(root.parts)] == root.parts:
        source = source.relative_to(root)
    return source


def _lab_link(app: Sphinx, pagename: str) -> str | None:
    source = _notebook_path(app, pagename)
    if source is None:
        return None
    return app.config.mlm_lab_url.rstrip("/") + "/" + source.as_posix()


def launch_links(app: Sphinx, pagename: str) -> list[dict[str, str]]:
    """The launch menu of a page: JupyterLab (local builds), Colab and Binder (with a URL)."""
    source = _notebook_path(app, pagename)
    if source is None:
        return []
    links = []
    if not published() and app.config.mlm_lab_url:
        links.append(
            {
                "type": "link",
                "text": "JupyterLab",
                "tooltip": "Open this notebook in JupyterLab on your computer (start it with "
                "make lab)",
                "icon": "fas fa-laptop-code",
                "url": _lab_link(app, pagename),
                "label": "launch-jupyterlab-button",
            }
        )
    url = (_theme_options(app.config).get("repository_url") or "").strip()
    if not url:
        return links
    org, repo = github_parts(url)
    branch = quote(app.config.mlm_notebooks_branch, safe="")
    name = quote(source.as_posix())
    hosts = getattr(app.config, "mlm_launch_hosts", {}) or {}
    interface = (_theme_options(app.config).get("launch_buttons") or {}).get(
        "notebook_interface", "jupyterlab"
    )
    ui = "lab/tree" if interface == "jupyterlab" else "tree"
    colab = hosts.get("colab_url", "").rstrip("/")
    binder = hosts.get("binderhub_url", "").rstrip("/")
    if colab:
        links.append(
            {
                "type": "link",
                "text": "Colab",
                "tooltip": "Run this notebook in Google Colab",
                "icon": "_static/images/logo_colab.png",
                "url": f"{colab}/github/{org}/{repo}/blob/{branch}/{name}",
                "label": "launch-colab-button",
            }
        )
    if binder:
        links.append(
            {
                "type": "link",
                "text": "Binder",
                "tooltip": "Run this notebook on Binder",
                "icon": "_static/images/logo_binder.svg",
                "url": f"{binder}/v2/gh/{org}/{repo}/{branch}?urlpath={ui}/{name}",
                "label": "launch-binder-button",
            }
        )
    return links


def add_launch_links(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Put :func:`launch_links` into the theme's launch menu (created if absent)."""
    if app.builder.format != "html" or "header_buttons" not in context:
        return
    links = launch_links(app, pagename)
    if not links:
        return
    buttons = context["header_buttons"]
    for group in buttons:
        if group.get("label") == "launch-buttons":
            group["buttons"][:0] = links
            return
    # The launch menu goes before the full-screen button, like the theme's own.
    position = next(
        (i for i, b in enumerate(buttons) if b.get("label") == "fullscreen-button"), len(buttons)
    )
    buttons.insert(
        position,
        {
            "type": "group",
            "tooltip": "Launch interactive content",
            "icon": "fas fa-rocket",
            "buttons": links,
            "label": "launch-buttons",
        },
    )


def _assets_stamp(app: Sphinx) -> float:
    paths = [TEMPLATES] + [Path(app.confdir, p) for p in app.config.html_static_path or []]
    files = [f for path in paths if path.is_dir() for f in path.rglob("*") if f.is_file()]
    return max((f.stat().st_mtime for f in files), default=0.0)


def rewrite_when_assets_change(app: Sphinx, env, added, changed, removed) -> list[str]:
    """Rewrite every page when a static file or template changed.

    Sphinx copies static files only when some page is out of date, and a changed template or
    stylesheet makes no page out of date: without this, an edit of ``assets/course.css``
    alone never reaches ``_build/html``.
    """
    stamp = _assets_stamp(app)
    if getattr(env, "mlm_assets_stamp", None) == stamp:
        return []
    env.mlm_assets_stamp = stamp
    return sorted(env.found_docs)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("mlm_lab_url", "http://localhost:8888/lab/tree", "html")
    app.add_config_value("mlm_lab_root", "book", "html")
    app.add_config_value("mlm_notebooks_branch", "notebooks", "html")
    # after jupyter-book has filled html_theme_options, before the theme reads them
    app.connect("config-inited", configure_repository_links, priority=900)
    app.connect("env-get-outdated", rewrite_when_assets_change)
    # after the theme's own buttons (priority 501)
    app.connect("html-page-context", add_launch_links, priority=600)
    app.connect("html-page-context", drop_thebe_assets, priority=600)
    app.connect("html-page-context", fix_citation_roles, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
