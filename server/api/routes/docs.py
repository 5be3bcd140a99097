"""The API's own documentation: the OpenAPI schema, Swagger UI and ReDoc.

Behind the same door as the rest of the API: with auth on, ``/openapi.json`` needs a
token (any scope: a worker's may read what it may call) or the dashboard's session
cookie, and ``/docs`` and ``/redoc`` send a browser that has not signed in to the login
page first. Nothing is open but ``/healthz`` and the login page.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from server.auth import require, scopes_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
OPENAPI = "/openapi.json"


def _signed_in_or_to_login(request: Request) -> None:
    try:
        scopes_of(request)
    except HTTPException:
        raise HTTPException(303, headers={"Location": f"/login?next={request.url.path}"}) from None


@router.get(OPENAPI, dependencies=[Depends(require("worker"))])
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", dependencies=[Depends(_signed_in_or_to_login)])
async def swagger(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=OPENAPI, title=f"{request.app.title} - docs")


@router.get("/redoc", dependencies=[Depends(_signed_in_or_to_login)])
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=OPENAPI, title=f"{request.app.title} - ReDoc")
