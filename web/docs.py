"""GET /docs: the OpenAPI document as a page, with every asset served by this app (no CDN).

Swagger UI is used when the `swagger-ui-py` package is installed (it ships Swagger UI 5, which
renders OpenAPI 3.1); otherwise a small built-in viewer renders the same document.
"""

from __future__ import annotations

import functools
import os
import re
from importlib import resources
from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory, url_for
from markupsafe import escape
from werkzeug.security import safe_join

from web.openapi import doc
from web.policy import Access, policy

bp = Blueprint("docs", __name__)

OWN_ASSETS = Path(__file__).parent / "docs_assets"
SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
# Swagger UI sets inline styles and data: icons; everything else comes from this origin.
# Every asset is a plain file name in one flat folder: nothing else can name one.
ASSET_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mlsys API</title>
{styles}
</head>
<body>
<div id="{root}" data-spec-url="{spec_url}"></div>
{scripts}
</body>
</html>
"""


@functools.cache
def swagger_ui_dir() -> Path | None:
    """Swagger UI's static files from swagger-ui-py, if installed."""
    try:
        folder = Path(str(resources.files("swagger_ui") / "static"))
    except ModuleNotFoundError:
        return None
    return folder if all((folder / name).is_file() for name in SWAGGER_ASSETS) else None


def _asset(name: str) -> str:
    return str(escape(url_for("docs.asset", filename=name)))


@bp.get("/docs")
@policy(Access.SIGNED_IN, dashboard_session=True)  # readable in a signed-in browser
@doc(
    "API documentation page",
    tag="documentation",
    responses={200: ("text/html", "An HTML page rendering GET /openapi.json.")},
    example="<!doctype html>...",
)
def docs_page() -> Response:
    """Renders /openapi.json in the browser; its scripts and styles come from /docs/assets."""
    spec_url = escape(url_for("openapi.openapi_json"))
    if swagger_ui_dir() is not None:
        styles = f'<link rel="stylesheet" href="{_asset("swagger-ui.css")}">'
        scripts = "\n".join(
            f'<script src="{_asset(name)}"></script>'
            for name in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger.js")
        )
        root = "swagger-ui"
    else:
        styles = f'<link rel="stylesheet" href="{_asset("viewer.css")}">'
        scripts = f'<script src="{_asset("viewer.js")}"></script>'
        root = "viewer"
    html = _PAGE.format(styles=styles, scripts=scripts, root=root, spec_url=spec_url)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    return response


@bp.get("/docs/assets/<path:filename>")
@policy(Access.PUBLIC)  # the page's own scripts and styles: no data
@doc(
    "A static asset of the documentation page",
    tag="documentation",
    responses={200: ("*/*", "The file (JavaScript, CSS or image).")},
    errors=(404,),
    example="/* css */",
    path_params={"filename": {"schema": {"pattern": ASSET_NAME}, "example": "viewer.css"}},
)
def asset(filename: str) -> Response:
    """Scripts and styles of /docs, served locally (no third-party origin)."""
    if not re.fullmatch(ASSET_NAME, filename):
        abort(404, description=f"No documentation asset {filename!r}.")
    for folder in (OWN_ASSETS, swagger_ui_dir()):
        # safe_join refuses paths that leave the folder ('..', absolute paths).
        path = safe_join(str(folder), filename) if folder is not None else None
        if path is not None and os.path.isfile(path):
            return send_from_directory(folder, filename, max_age=3600)
    abort(404, description=f"No documentation asset {filename!r}.")
