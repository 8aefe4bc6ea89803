"""Sphinx extension for the course book: launch links and source links.

Loaded through ``sphinx.local_extensions`` in ``_config.yml``.

- Every notebook page gets a "JupyterLab" launch link that opens the same notebook in the
  JupyterLab started by ``make lab`` on the reader's own computer (``mlm_lab_url``). It needs
  no network: the link points at localhost.
- Binder, Colab and JupyterHub links (``launch_buttons`` in ``_config.yml``) and the
  repository / "show source" buttons are shown only when ``repository.url`` is set. Without
  it they are removed, so no page links to a repository that does not exist, and the only
  "source" link is the page's own file in the built site (``_sources/``), never a path of the
  machine that built it.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config

HOSTED_LAUNCHERS = ("binderhub_url", "colab_url", "jupyterhub_url", "deepnote_url")
REPO_BUTTONS = ("use_repository_button", "use_source_button", "use_issues_button")


def _theme_options(config: Config) -> dict[str, Any]:
    if config.html_theme_options is None:
        config.html_theme_options = {}
    return config.html_theme_options


def configure_repository_links(app: Sphinx, config: Config) -> None:
    """Keep hosted launch links and repository buttons only when a repository URL is set."""
    opts = _theme_options(config)
    launch = dict(opts.get("launch_buttons") or {})
    if (opts.get("repository_url") or "").strip():
        opts["use_repository_button"] = True
        opts["use_source_button"] = True
        opts.setdefault("repository_branch", "main")
    else:
        opts["repository_url"] = ""
        for key in HOSTED_LAUNCHERS:
            launch[key] = ""
        for key in REPO_BUTTONS + ("use_edit_page_button",):
            opts[key] = False
    opts["launch_buttons"] = launch
    # the theme's layout reads `default_mode` from html_context; left empty, its script
    # logs a console error on every page
    if config.html_context is None:
        config.html_context = {}
    config.html_context.setdefault("default_mode", "light")


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


def _lab_link(app: Sphinx, pagename: str) -> str | None:
    source = PurePosixPath(app.env.doc2path(pagename, False))
    if source.suffix != ".ipynb":
        return None
    root = PurePosixPath(app.config.mlm_lab_root.strip("/")) if app.config.mlm_lab_root else None
    if root is not None and root.parts and source.parts[: len(root.parts)] == root.parts:
        source = source.relative_to(root)
    return app.config.mlm_lab_url.rstrip("/") + "/" + source.as_posix()


def add_lab_launch_link(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Add the local JupyterLab link to the theme's launch menu (created if absent)."""
    if app.builder.format != "html" or "header_buttons" not in context:
        return
    url = _lab_link(app, pagename)
    if url is None:
        return
    link = {
        "type": "link",
        "text": "JupyterLab",
        "tooltip": "Open this notebook in JupyterLab on your computer (start it with make lab)",
        "icon": "fas fa-laptop-code",
        "url": url,
        "label": "launch-jupyterlab-button",
    }
    buttons = context["header_buttons"]
    for group in buttons:
        if group.get("label") == "launch-buttons":
            group["buttons"].insert(0, link)
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
            "buttons": [link],
            "label": "launch-buttons",
        },
    )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("mlm_lab_url", "http://localhost:8888/lab/tree", "html")
    app.add_config_value("mlm_lab_root", "book", "html")
    # after jupyter-book has filled html_theme_options, before the theme reads them
    app.connect("config-inited", configure_repository_links, priority=900)
    # after the theme's own buttons (priority 501)
    app.connect("html-page-context", add_lab_launch_link, priority=600)
    app.connect("html-page-context", drop_thebe_assets, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
