"""Serves the console: the page at ``/`` and its assets under ``/console/``.

Both are open (like ``/-/healthy``): they hold no data. What the pages show comes from the
``/api`` routes, which ask for the caller's key when auth is on; the page is told whether to ask
for one. The page may load nothing from elsewhere (its Content-Security-Policy says so), so the
console works offline and a browser blocks any third-party fetch.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from console.views import console_settings

PACKAGE = Path(str(files("console")))
STATIC = PACKAGE / "static"
ASSETS_PATH = "/console"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_SETTINGS_SLOT = "<!--settings-->"


def render_page(auth_required: bool) -> str:
    """The page with the settings the scripts read (a JSON block, which the CSP does not run)."""
    settings = {**console_settings(), "auth": auth_required}
    block = json.dumps(settings, separators=(",", ":")).replace("</", "<\\/")
    page = (PACKAGE / "page.html").read_text(encoding="utf-8")
    return page.replace(_SETTINGS_SLOT, f'<script type="application/json" id="settings">{block}</script>')


def mount_console(app: FastAPI, auth_required: bool) -> None:
    """Adds ``GET /`` (the page) and ``/console/*`` (its scripts, styles, vendored uPlot) to ``app``."""
    page = render_page(auth_required)

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def console_page() -> HTMLResponse:
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    app.mount(ASSETS_PATH, StaticFiles(directory=STATIC), name="console")
