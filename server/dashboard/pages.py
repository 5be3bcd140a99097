"""Dashboard routes: pages, their live fragments, login/logout and static files."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from hpo.schemas import StudyPublic
from server import access, audit, projects, studies, trials, workers
from server.api.deps import MAX_ID, SessionDep, TrialNumber
from server.auth import SESSION_COOKIE, auth_enabled, identity_of, scopes_of, token_scopes
from server.convert import trial_detail
from server.dashboard.views import study_view, trial_view, worker_rows
from server.errors import Invalid

__all__ = ["error_page", "install", "wants_page"]

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _login_required(request: Request) -> None:
    """Pages need a valid user token (auth on): otherwise go to the login page first,
    before any query runs (an unknown study must not answer before the login does)."""
    if not _signed_in(request):
        raise HTTPException(303, headers={"Location": f"/login?next={request.url.path}"})


router = APIRouter(include_in_schema=False, dependencies=[Depends(_login_required)])
public = APIRouter(include_in_schema=False)  # the login page and assets


def _plotly_js() -> Path:
    """The plotly.js bundled in the ``plotly`` Python package (served, never fetched)."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def _signed_in(request: Request) -> bool:
    """True when auth is off or the request carries a valid user token."""
    try:
        scopes = scopes_of(request)
    except HTTPException:
        return False
    return scopes is None or "user" in scopes


def _page(name: str) -> Callable[..., Any]:
    def render(request: Request, **context: Any) -> Response:
        context |= {"auth": auth_enabled(request)}
        return templates.TemplateResponse(request, name, context)

    return render


def _visible_studies(
    request: Request, session: SessionDep, project: str | None
) -> list[StudyPublic]:
    """The studies the signed-in user may read, of one project when ``project`` names
    one of theirs (an unknown name or someone else's project shows none)."""
    identity = identity_of(request)
    visible = access.visible_projects(session, identity)
    if project:
        chosen = {p.id for p in projects.list_projects(session, visible) if p.name == project}
        visible = chosen
    return [studies.study_public(session, s) for s in studies.list_studies(session, visible)]


@router.get("/", response_class=HTMLResponse)
def studies_page(request: Request, session: SessionDep, project: str | None = None) -> Response:
    identity = identity_of(request)
    choices = projects.list_projects(session, access.visible_projects(session, identity))
    rows = _visible_studies(request, session, project)
    return _page("studies.html")(
        request,
        studies=rows,
        projects=[p.name for p in choices],
        project=project or "",
        title="Studies",
    )


@router.get("/ui/studies", response_class=HTMLResponse)
def studies_rows(request: Request, session: SessionDep, project: str | None = None) -> Response:
    rows = _visible_studies(request, session, project)
    return _page("_studies_rows.html")(request, studies=rows)


@router.get("/studies/{name}", response_class=HTMLResponse)
def study_page(name: str, request: Request, session: SessionDep) -> Response:
    view = study_view(
        session, access.get_study(session, identity_of(request), name), _beat(request)
    )
    return _page("study.html")(request, s=view, title=f"Study {name}")


@router.get("/ui/studies/{name}/header", response_class=HTMLResponse)
def study_header(name: str, request: Request, session: SessionDep) -> Response:
    view = study_view(
        session, access.get_study(session, identity_of(request), name), _beat(request)
    )
    return _page("_study_header.html")(request, s=view)


@router.get("/studies/{name}/compare", response_class=HTMLResponse)
def compare_page(name: str, request: Request, session: SessionDep, trials: str = "") -> Response:
    """2 to 5 trials side by side: parameters (differences marked) and curves overlaid;
    ``trials`` is their numbers, comma-separated."""
    study = access.get_study(session, identity_of(request), name)
    numbers = _trial_numbers(trials)
    return _page("compare.html")(
        request,
        study=study.name,
        metric=study.metric,
        numbers=numbers,
        title=f"{name}: compare {', '.join(f'#{n}' for n in numbers)}",
    )


def _trial_numbers(text: str) -> list[int]:
    """``"3,1,7"`` -> [1, 3, 7]; 422 naming ``trials`` unless 2 to 5 trial numbers."""
    try:
        numbers = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        numbers = []
    if not 2 <= len(numbers) <= 5 or any(not 0 <= n <= MAX_ID for n in numbers):
        raise Invalid("trials: pick 2 to 5 trial numbers, e.g. ?trials=1,4", field="trials")
    return numbers


@router.get("/events", response_class=HTMLResponse)
def events_page(
    request: Request, session: SessionDep, project: str | None = None, study: str | None = None
) -> Response:
    """The audit trail of the user's projects (one project's, or one study's)."""
    identity = identity_of(request)
    visible = access.visible_projects(session, identity)
    project_id = None
    if project:
        project_id = access.get_project(session, identity, project)[0].id
    rows = audit.list_events(
        session, projects=visible, project_id=project_id, study=study or None, limit=500
    )
    return _page("events.html")(
        request, events=rows, project=project or "", study=study or "", title="Audit trail"
    )


@router.get("/studies/{name}/trials/{number}", response_class=HTMLResponse)
def trial_page(name: str, number: TrialNumber, request: Request, session: SessionDep) -> Response:
    study = access.get_study(session, identity_of(request), name)
    trial = trials.get_trial_by_number(session, study, number)
    detail = trial_detail(trial, study.name, trials.trial_reports(session, trial))
    view = trial_view(detail, trial.checkpoint, study.metric)
    return _page("trial.html")(request, t=view, study=study.name, title=f"{name} #{number}")


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request, session: SessionDep) -> Response:
    rows = worker_rows(session, _workers(request, session))
    return _page("workers.html")(request, workers=rows, title="Workers")


@router.get("/ui/workers", response_class=HTMLResponse)
def workers_rows(request: Request, session: SessionDep) -> Response:
    rows = worker_rows(session, _workers(request, session))
    return _page("_workers_rows.html")(request, workers=rows)


@public.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    context = {"next": _safe_next(next), "error": None, "title": "Sign in", "auth": False}
    return templates.TemplateResponse(request, "login.html", context)


@public.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the token from the form; on success set the session cookie and go on."""
    form = await _form(request)
    token, target = form.get("token", ""), _safe_next(form.get("next", "/"))
    if not auth_enabled(request):
        return RedirectResponse(target, status_code=303)
    scopes = token_scopes(request.app, token) if token else None
    if scopes is not None and "user" in scopes:
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response
    error = "this token may not use the dashboard" if scopes else "unknown token"
    context = {"next": target, "error": error, "title": "Sign in", "auth": False}
    return templates.TemplateResponse(request, "login.html", context, status_code=401)


@public.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@public.get("/static/plotly.min.js")
def plotly_js(request: Request) -> Response:
    """plotly.js (4.8 MB), gzip-compressed once per app (to ~1.4 MB) and cached by the
    browser for a day: it changes only with the plotly package."""
    headers = {"cache-control": "public, max-age=86400", "vary": "accept-encoding"}
    if "gzip" not in request.headers.get("accept-encoding", ""):
        return FileResponse(_plotly_js(), media_type="text/javascript", headers=headers)
    packed = getattr(request.app.state, "plotly_gzip", None)
    if packed is None:
        packed = request.app.state.plotly_gzip = gzip.compress(_plotly_js().read_bytes(), 6)
    return Response(
        packed,
        media_type="text/javascript",
        headers=headers | {"content-encoding": "gzip"},
    )


@public.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")


def _beat(request: Request) -> float:
    """The server's heartbeat timeout: a worker silent for longer serves no pool."""
    return float(request.app.state.settings.heartbeat_timeout)


def _workers(request: Request, session: SessionDep) -> list:
    timeout = _beat(request)
    return workers.list_workers(session, heartbeat_timeout=timeout, include_stopped=True)


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form body (the login form), without python-multipart."""
    from urllib.parse import parse_qs

    body = (await request.body())[:10_000].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body).items()}


def _safe_next(target: str) -> str:
    """Only same-site paths: a login must never redirect to another host."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def wants_page(request: Request) -> bool:
    """Whether an error of this request should be an HTML page: a dashboard path (not
    the API, not a live fragment) asked for by a browser."""
    path = request.url.path
    if path.startswith(("/api/", "/ui/", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status_code: int, message: str) -> Response:
    """The dashboard's page for an error (an unknown study or trial, say)."""
    titles = {403: "Not allowed", 404: "Not found", 409: "Not now", 422: "Not valid"}
    context = {
        "auth": auth_enabled(request),
        "title": titles.get(status_code, "Error"),
        "status_code": status_code,
        "message": message,
    }
    return templates.TemplateResponse(request, "error.html", context, status_code=status_code)


def install(app: FastAPI) -> None:
    """Mount the dashboard's pages and static files on ``app``."""
    app.include_router(public)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
