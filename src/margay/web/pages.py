"""Serves the UI: one HTML shell, its scripts and styles, and the vendored libraries from node_modules.

None of these carries data: every number on the pages comes from the JSON API with the viewer's token,
so the UI paths are the only ones the auth middleware lets through without a token.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).parent
STATIC = HERE / "static"
NODE_MODULES = HERE / "node_modules"
# The only files served from node_modules (installed by `make venv` with npm ci; never committed).
# echarts' "common" build: the line, bar and pie charts and the components (grid, axes incl. time and log, legend
# incl. scroll, title, tooltip) every page draws with, 664 KB against the full build's 1 MB: ~70 ms less of the
# renderer's CPU to parse and run it on each first load (bench/results/before-after/README.md, s12-ui).
VENDOR = {"echarts.js": "echarts/dist/echarts.common.min.js", "cytoscape.js": "cytoscape/dist/cytoscape.min.js"}
UI_PREFIX = "/ui"
NO_CACHE = {"cache-control": "no-cache"}


async def shell(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=NO_CACHE)


async def vendor(request: Request) -> Response:
    rel = VENDOR.get(request.path_params["name"])
    if rel is None:
        return PlainTextResponse("not found", status_code=404)
    path = NODE_MODULES / rel
    if not path.exists():
        msg = f"{rel} is missing: run `make venv` (npm ci in src/margay/web) to install the UI's libraries"
        return PlainTextResponse(f"console.error({msg!r});", status_code=503, media_type="text/javascript")
    return FileResponse(path, media_type="text/javascript", headers={"cache-control": "max-age=86400"})


async def root(request: Request) -> Response:
    return RedirectResponse(UI_PREFIX + "/", status_code=307)


def routes() -> list[Route | Mount]:
    return [Route("/", root, methods=["GET"]),
            Route(UI_PREFIX + "/", shell, methods=["GET"]),
            Route(UI_PREFIX + "/vendor/{name}", vendor, methods=["GET"]),
            Mount(UI_PREFIX + "/static", app=StaticFiles(directory=STATIC), name="ui-static")]
