"""The HTTP application: candidate endpoints, admin endpoints, the browser exam page.

Build it with :func:`create_app` (``adaptive serve`` does, and runs it with uvicorn). The OpenAPI
document is at ``/openapi.json`` and the interactive documentation at ``/docs``.

Candidate endpoints take the session's token as ``Authorization: Bearer <token>``; they return
stems and options only, never a key, a parameter, θ̂ or anything of another session. Admin
endpoints take ``X-API-Key``. Errors are JSON ``{"detail": "..."}`` with a 4xx status that says
what was wrong and what to do; request bodies over the limit get 413.
"""


import csv
import hmac
import importlib.util
import io
import logging
import re
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..bank import ItemBank
from ..cat.design import ExamDesign
from ..exceptions import (
    AdaptiveError,
    BankValidationError,
    ResponseValidationError,
    SessionStateError,
)
from ..fielderrors import _models_in, error_message
from .bodies import (
    ID_MAX,
    AnswerRequest,
    BankUpload,
    EligibilityRequest,
    ExtendRequest,
    LaunchRequest,
    ProctorRequest,
    StartRequest,
    VoidRequest,
)
from .delivery import Delivery, Invalid, NotFound, ServiceError
from .eligibility import normalize_code
from .ratelimit import RateLimiter, RateLimits
from .store import Store, open_store
from .versions import TooManyRequests

__all__ = ["create_app"]

log = logging.getLogger("adaptive.service")

API = "/api/v1"
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


_UNION_TAGS = {"int", "str", "float", "bool", "dict", "list", "none", "constrained-int", "constrained-str"}


def _body_model(request: Request):
    """The pydantic model of the route's request body, if it has one (for "did you mean" suggestions)."""
    field = getattr(request.scope.get("route"), "body_field", None)
    annotation = getattr(getattr(field, "field_info", None), "annotation", None)
    models = _models_in(annotation) if annotation is not None else []
    return models[0] if models else None


def _body_error_text(err: RequestValidationError, model=None) -> str:
    """One line per wrong field: where, which field, what is wrong (a union's alternatives merged); an unknown
    body field suggests the closest known one."""
    merged: dict[tuple, list[str]] = {}
    for e in err.errors():
        if e.get("type") == "json_invalid":
            return f"the request body is not valid JSON: {e.get('ctx', {}).get('error', e.get('msg'))}"
        if e.get("type") == "extra_forbidden" and model is not None and tuple(e.get("loc", ()))[:1] == ("body",):
            e = {**e, "msg": error_message({**e, "loc": tuple(e["loc"])[1:]}, model)}
        loc = [str(p) for p in e.get("loc", ())]
        alternative = None
        if len(loc) > 2 and loc[-1] in _UNION_TAGS:
            alternative = loc.pop()
        msgs = merged.setdefault(tuple(loc), [])
        msg = str(e.get("msg"))
        if alternative:
            msg = msg.removeprefix("Input should be ")
        if msg not in msgs:
            msgs.append(msg)
    lines = []
    for place, msgs in merged.items():
        where = place[0] if place else "request"
        field = ".".join(place[1:])
        text = msgs[0] if len(msgs) == 1 else "Input should be " + " or ".join(msgs)
        lines.append(f"{where} field '{field}': {text}" if field else f"{where}: {text}")
    return "; ".join(lines) or "the request is not valid"


class _BodyLimit:
    """Refuse request bodies over ``limit`` bytes (``admin_limit`` under /api/v1/admin) with 413,
    by Content-Length when it is given and by counting when it is not."""

    def __init__(self, app, limit: int, admin_limit: int):
        self.app, self.limit, self.admin_limit = app, limit, admin_limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.admin_limit if scope["path"].startswith(API + "/admin") else self.limit
        too_big = HTTPException(413, f"the request body is larger than {limit} bytes")
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                return await _problem(400, "the Content-Length header is not a number")(scope, receive, send)
            if n > limit:
                return await _problem(413, too_big.detail)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_big
            return message

        return await self.app(scope, counted, send)


def create_app(database: str | Store = "sqlite:///sessions.db", *, bank: str | ItemBank | None = None,
               design: str | ExamDesign | None = None, admin_key: str | None = None,
               max_body: int = 16_384, max_admin_body: int = 50_000_000, practice: bool = False,
               rate_limits: RateLimits | None = None, clock=None, state_key: str | None = None) -> FastAPI:
    """The delivery application over ``database`` (a URL or an open store).

    ``bank`` (a bank file, or a pool directory whose ``design.json`` is the design) is stored as a
    version and activated if the database does not hold it yet. ``admin_key`` enables the admin
    endpoints; without one they refuse every request. ``practice`` allows open starts without a
    launch code. ``rate_limits`` (default :class:`RateLimits`; ``RateLimits.off()``) bound starts
    and answers per client address and per code/session. While the app runs (its lifespan) a
    heartbeat is written every few seconds, and at start an outage since the last one is credited
    to the running sessions (see :mod:`adaptive.service.clock`). ``state_key`` signs the stored
    sessions and answers (see :mod:`adaptive.service.integrity`).
    """
    store = open_store(database) if isinstance(database, str) else database
    delivery = Delivery(store, practice=practice, state_key=state_key, **({} if clock is None else {"clock": clock}))
    limits = RateLimits() if rate_limits is None else rate_limits
    limiter = {name: RateLimiter(getattr(limits, name), what) for name, what in (
        ("start_per_client", "starts from this address"), ("start_per_code", "starts with this code"),
        ("answer_per_client", "answers from this address"), ("answer_per_session", "answers in this session"))}
    if bank is not None:
        b, d, source = _bank_and_design(bank, design)
        known = {(v["bank_fingerprint"], v["design_fingerprint"]) for v in delivery.versions()}
        if (b.fingerprint(), d.fingerprint()) not in known:
            delivery.add_version(b, d, source=source, activate=True)

    @asynccontextmanager
    async def lifespan(_app):
        delivery.recover_outage()
        delivery.start_heartbeat()
        try:
            yield
        finally:
            delivery.stop_heartbeat()

    app = FastAPI(
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        title="adaptive exam delivery",
        version="1",
        description="Computerized adaptive exams over HTTP: candidates start a session, answer one item at a time "
                    "and get their result; administrators load bank versions, list sessions, export responses "
                    "and read audit trails.",
    )
    app.state.delivery = delivery
    app.add_middleware(_BodyLimit, limit=max_body, admin_limit=max_admin_body)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError):
        return _problem(422, _body_error_text(err, _body_model(request)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException):
        detail = err.detail
        if err.status_code == 400 and detail == "There was an error parsing the body":  # e.g. nested too deeply
            detail = ("the request body could not be read as JSON (malformed, or nested too deeply); send one "
                      "JSON object with the fields this endpoint documents at /docs")
        elif err.status_code in (404, 405) and detail in ("Not Found", "Method Not Allowed"):
            what = "no such endpoint" if err.status_code == 404 else "this endpoint does not take that method"
            detail = f"{request.method} {request.url.path[:200]}: {what}; the API is listed at /docs"
        return JSONResponse({"detail": detail}, status_code=err.status_code, headers=getattr(err, "headers", None))

    @app.exception_handler(AdaptiveError)
    async def _adaptive(_request: Request, err: AdaptiveError):
        if isinstance(err, TooManyRequests):
            return JSONResponse({"detail": str(err)}, status_code=429, headers={"Retry-After": str(err.retry_after)})
        if isinstance(err, ServiceError):
            return _problem(err.status, str(err))
        if isinstance(err, SessionStateError):
            return _problem(409, str(err))
        if isinstance(err, (ResponseValidationError, BankValidationError, ValueError)):
            return _problem(422, str(err))
        log.exception("unexpected engine error")
        return _problem(500, "internal error; it has been logged")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, err: Exception):
        log.error("unhandled error", exc_info=err)
        return _problem(500, "internal error; it has been logged")

    def token_of(authorization: Annotated[str | None, Header()] = None) -> str | None:
        if authorization is None:
            return None
        scheme, _, value = authorization.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None

    def session_id(session_id: str) -> str:
        if not SESSION_ID.match(session_id):
            raise NotFound(f"session {session_id[:64]!r} was not found, or the token does not belong to it")
        return session_id

    def admin(x_api_key: Annotated[str | None, Header()] = None) -> None:
        if admin_key is None:
            raise HTTPException(403, "admin endpoints are disabled: start the server with --admin-key "
                                     "(or ADAPTIVE_ADMIN_KEY)")
        if not x_api_key:
            raise HTTPException(401, "admin endpoints need the API key in the X-API-Key header")
        if not hmac.compare_digest(x_api_key.encode(), admin_key.encode()):
            raise HTTPException(403, "the API key is not valid")

    Token = Annotated[str | None, Depends(token_of)]
    Sid = Annotated[str, Depends(session_id)]

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    # ---------------------------------------------------------------- candidates
    @app.get(API + "/exam", tags=["candidate"], summary="The exam on offer: name, length range, time limit, rules")
    def exam_facts():
        ver = delivery.active_version()
        d = ver.design
        return {**delivery._exam_info(ver), "attempts_allowed": d.retakes.max_attempts,
                "retake_wait_days": d.retakes.wait_days,
                "rules": ["Answer each question before the next one appears; you cannot go back.",
                          "The exam ends when the result is clear, after at most the maximum number of questions, "
                          "or when the time runs out.",
                          "The clock is kept by the server and keeps running if you close the page; a proctor may "
                          "pause it.",
                          "Reopen the page and enter your launch code to continue where you were."]}

    @app.post(API + "/launch", status_code=200, tags=["candidate"],
              summary="Start the attempt a launch code is for, or resume it (a new token; the old one stops working)")
    def launch(body: LaunchRequest, request: Request):
        limiter["start_per_client"].hit(client_of(request))
        limiter["start_per_code"].hit(normalize_code(body.code))
        return delivery.launch(body.code)

    @app.post(API + "/sessions", status_code=201, tags=["candidate"],
              summary="Practice mode only: start a session without a launch code")
    def start_session(request: Request, body: StartRequest | None = None):
        limiter["start_per_client"].hit(client_of(request))
        return delivery.start(candidate=body.candidate if body else None)

    @app.get(API + "/sessions/{session_id}/item", tags=["candidate"],
             summary="The item to answer now (stem and options), or that the exam has finished")
    def current_item(sid: Sid, token: Token):
        return delivery.current(sid, token)

    @app.post(API + "/sessions/{session_id}/answers", tags=["candidate"],
              summary="Answer the presented item; a repeat of a stored answer is acknowledged, not scored twice")
    def answer(sid: Sid, token: Token, body: AnswerRequest, request: Request):
        limiter["answer_per_client"].hit(client_of(request))
        limiter["answer_per_session"].hit(sid)
        return delivery.answer(sid, token, item_id=body.item_id, seq=body.seq, choice=body.choice)

    @app.get(API + "/sessions/{session_id}/result", tags=["candidate"],
             summary="The score report of a finished exam: decision, scaled score, performance by content domain")
    def result(sid: Sid, token: Token):
        return delivery.result(sid, token)

    @app.get(API + "/health", tags=["service"], summary="Liveness and the database in use")
    def health():
        delivery.versions()
        return {"status": "ok", "database": store.kind}

    # ---------------------------------------------------------------- administrators
    Admin = [Depends(admin)]

    @app.get(API + "/admin/banks", tags=["admin"], dependencies=Admin, summary="Stored bank versions")
    def list_banks():
        return delivery.versions()

    @app.post(API + "/admin/banks", status_code=201, tags=["admin"], dependencies=Admin,
              summary="Load a bank version (and optionally its design); running sessions keep theirs")
    def load_bank(body: BankUpload):
        b = ItemBank.from_dict(body.bank, source="request body field 'bank'")
        if body.design is not None:
            d = ExamDesign.from_dict(body.design, source="request body field 'design'")
        else:
            try:
                d = delivery.active_version().design
            except ServiceError:
                raise Invalid("request body field 'design': no version is active to take the design from; "
                              "send the design with the bank") from None
        return delivery.add_version(b, d, source="admin upload", activate=body.activate)

    @app.post(API + "/admin/banks/{version_id}/activate", tags=["admin"], dependencies=Admin,
              summary="Make a stored version the one new sessions take")
    def activate_bank(version_id: Annotated[int, PathParam(ge=1, le=ID_MAX)]):
        return delivery.activate(version_id)

    @app.get(API + "/admin/sessions", tags=["admin"], dependencies=Admin, summary="Sessions, oldest first")
    def list_sessions(status: Literal["active", "finished"] | None = None,
                      bank_version: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
                      limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
                      offset: Annotated[int, Query(ge=0, le=ID_MAX)] = 0):
        return delivery.sessions(status, bank_version, limit, offset)

    @app.post(API + "/admin/eligibilities", status_code=201, tags=["admin"], dependencies=Admin,
              summary="Register an eligibility; returns it with the launch code of the first attempt (shown once)")
    def register(body: EligibilityRequest):
        return delivery.register(body.candidate_id, bank_version=body.bank_version,
                                 window_start=body.window_start.timestamp() if body.window_start else None,
                                 window_end=body.window_end.timestamp() if body.window_end else None,
                                 window_days=body.window_days, attempts=body.attempts,
                                 time_multiplier=body.time_multiplier, note=body.note, site=body.site)

    @app.get(API + "/admin/eligibilities", tags=["admin"], dependencies=Admin, summary="Eligibilities and attempts")
    def list_eligibilities(candidate_id: Annotated[str | None, Query(max_length=200)] = None,
                           limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
                           offset: Annotated[int, Query(ge=0, le=ID_MAX)] = 0):
        return delivery.eligibilities(candidate_id, limit, offset)

    @app.post(API + "/admin/eligibilities/{eligibility_id}/codes", status_code=201, tags=["admin"],
              dependencies=Admin, summary="A new launch code: replaces a lost one, or opens the next attempt")
    def new_code(eligibility_id: Annotated[int, PathParam(ge=1, le=ID_MAX)]):
        return delivery.issue_code(eligibility_id)

    @app.post(API + "/admin/sessions/{session_id}/pause", tags=["proctor"], dependencies=Admin,
              summary="Pause a session: the clock stops and the candidate's page says a proctor paused it")
    def pause(sid: Sid, body: ProctorRequest | None = None):
        return delivery.pause(sid, body.reason if body else None)

    @app.post(API + "/admin/sessions/{session_id}/resume", tags=["proctor"], dependencies=Admin,
              summary="Resume a paused session; the paused time is not charged")
    def resume(sid: Sid, body: ProctorRequest | None = None):
        return delivery.resume(sid, body.reason if body else None)

    @app.post(API + "/admin/sessions/{session_id}/extend", tags=["proctor"], dependencies=Admin,
              summary="Give a running session more time")
    def extend(sid: Sid, body: ExtendRequest):
        return delivery.extend(sid, body.seconds, body.reason)

    @app.post(API + "/admin/sessions/{session_id}/void", tags=["proctor"], dependencies=Admin,
              summary="Void a session with a reason (it ends without a result)")
    def void(sid: Sid, body: VoidRequest):
        return delivery.void(sid, body.reason)

    @app.get(API + "/admin/sessions/{session_id}/audit", tags=["admin"], dependencies=Admin,
             summary="A session's audit trail: every answer with θ̂ and SE before and after, and events")
    def audit(sid: Sid):
        return delivery.audit(sid)

    @app.get(API + "/admin/responses", tags=["admin"], dependencies=Admin,
             summary="Responses in long format (person, item, response) for `adaptive calibrate`")
    def export(format: Literal["csv", "json"] = "csv", status: Literal["active", "finished"] | None = None,
               bank_version: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None):
        rows = delivery.export_responses(status, bank_version)
        if format == "json":
            return rows
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["person", "item", "response"])
        w.writerows((r["person"], r["item"], r["response"]) for r in rows)
        return Response(buf.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="responses.csv"'})

    # ---------------------------------------------------------------- browser page
    page = resources.files("adaptive.service").joinpath("static/exam.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def exam_page():
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                           "Content-Security-Policy": "default-src 'self'; style-src 'self' "
                                           "'unsafe-inline'; script-src 'self' 'unsafe-inline'"})

    # ---------------------------------------------------------------- API documentation, offline
    docs_assets = _docs_assets()
    if docs_assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=docs_assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs():
        if docs_assets is None:
            return HTMLResponse("<!doctype html><title>API documentation</title><p>The interactive documentation "
                                "needs the service extra (fastapi-offline); the OpenAPI document is at "
                                "<a href='/openapi.json'>/openapi.json</a>.</p>")
        page = get_swagger_ui_html(openapi_url="/openapi.json", title="adaptive exam delivery - API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon.png")
        page.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self' "
                                                   "'unsafe-inline'; script-src 'self' 'unsafe-inline'")
        return page

    return app


def _docs_assets():
    """The folder of Swagger UI's files bundled by the fastapi-offline package (no CDN), or None."""
    try:
        spec = importlib.util.find_spec("fastapi_offline")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    from pathlib import Path

    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return str(folder) if (folder / "swagger-ui-bundle.js").exists() else None


def _bank_and_design(bank, design):
    """A bank and its design from objects, a bank file, or a pool directory (bank.json + design.json)."""
    from pathlib import Path

    if isinstance(bank, ItemBank):
        b, source = bank, f"{bank.name} v{bank.version}"
    else:
        b, source = ItemBank.load(bank), str(bank)
    if isinstance(design, ExamDesign):
        d = design
    elif design is not None:
        d = ExamDesign.load(design)
    elif not isinstance(bank, ItemBank) and Path(bank).is_dir() and (Path(bank) / "design.json").exists():
        d = ExamDesign.load(Path(bank) / "design.json")
    else:
        raise AdaptiveError("give the exam design (--design), or a pool directory holding design.json")
    return b, d, source
