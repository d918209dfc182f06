"""Swagger UI at /docs and ReDoc at /redoc, served with their assets from the app itself.

FastAPI's own pages load Swagger UI, ReDoc and Google Fonts from public CDNs, so they are
blank offline or under a strict Content-Security-Policy. Here the scripts, the stylesheet and
the favicon come from the pinned `fastapi-offline` package (its `static/` folder: builds of
swagger-ui-dist and ReDoc), mounted under /docs/assets; ReDoc uses the system fonts. Create
the app with `docs_url=None, redoc_url=None`, then call `install_docs(app)`; pass the
OpenAPI document through `state_servers_and_public_operations`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets"
ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
# No "validatorUrl": Swagger UI would otherwise send the document to validator.swagger.io.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
# ReDoc's side menu shows Redocly's logo from cdn.redoc.ly, which no option turns off: the
# page forbids images from elsewhere, so the browser never asks (ReDoc hides a failed logo).
IMAGES_FROM_THIS_ORIGIN = {"Content-Security-Policy": "img-src 'self' data:"}


def install_docs(app: FastAPI) -> None:
    """Add /docs (with its OAuth2 redirect page), /redoc and their assets to `app`.

    Swagger UI keeps the app's `swagger_ui_init_oauth` (the Authorize button's authorization
    code flow with PKCE) and redirects back to `app.swagger_ui_oauth2_redirect_url`.
    """
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    redirect_path = app.swagger_ui_oauth2_redirect_url or f"{DOCS_PATH}/oauth2-redirect"

    def assets(request: Request) -> tuple[str, str]:
        # Behind a proxy that strips a path prefix, every URL keeps it (ASGI root_path).
        root = str(request.scope.get("root_path", ""))
        return f"{root}{app.openapi_url}", f"{root}{ASSETS_PATH}"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        document, folder = assets(request)
        return get_swagger_ui_html(
            openapi_url=document,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{folder}/swagger-ui-bundle.js",
            swagger_css_url=f"{folder}/swagger-ui.css",
            swagger_favicon_url=f"{folder}/favicon.png",
            oauth2_redirect_url=f"{request.scope.get('root_path', '')}{redirect_path}",
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters={**SWAGGER_UI_PARAMETERS, **(app.swagger_ui_parameters or {})},
        )

    @app.get(redirect_path, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        document, folder = assets(request)
        page = get_redoc_html(
            openapi_url=document,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{folder}/redoc.standalone.js",
            redoc_favicon_url=f"{folder}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(IMAGES_FROM_THIS_ORIGIN)
        return page


def state_servers_and_public_operations(document: dict[str, Any]) -> dict[str, Any]:
    """Say outright what the document leaves implicit: where the API is and what is public.

    The server is the origin that serves the document (`/`, the OpenAPI default, made
    explicit); an operation with no security requirement gets `security: []`, so a reader
    (and the linter) sees it is public on purpose rather than forgotten.
    """
    document.setdefault("servers", [{"url": "/", "description": "This server."}])
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            operation.setdefault("security", [])
    return document
