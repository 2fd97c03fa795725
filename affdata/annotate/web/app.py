"""The Starlette application: routes, the session cookie, CSRF, security headers.

Rules applied here, on every request, before any library call:

* every ``/api`` route but ``login`` and ``ping`` needs a valid session cookie (HttpOnly,
  SameSite=Strict); admin routes need the admin role;
* every write (POST, PUT, DELETE) needs the session's CSRF token in ``X-CSRF-Token``, and a
  JSON body (``Content-Type: application/json``: a cross-site form cannot send one);
* a log-in is also limited per client address (``IP_FAILURES`` failures per ``IP_WINDOW_S``),
  on top of the per-account lock in :mod:`affdata.annotate.users`;
* ids in paths are integers (a path in place of an id is a 404 by routing); what an id names is
  checked by the library against the user (:func:`affdata.annotate.assignments.assignment_for`).

Library errors map to status codes: AuthError 401, AccessError 403, NotFoundError 404,
AnnotationError / ConfigError / VocabularyError 422.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from affdata.annotate import assignments, campaigns, drafts, proxy, review, submit, users
from affdata.db import Store
from affdata.errors import (
    AccessError,
    AffdataError,
    AnnotationError,
    AuthError,
    ConfigError,
    InputError,
    NotFoundError,
    VocabularyError,
)

log = logging.getLogger(__name__)

COOKIE = "affdata_session"
CSRF_HEADER = "x-csrf-token"
IP_FAILURES, IP_WINDOW_S = 20, 300
MAX_BODY = 16 * 1024 * 1024
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                               "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
_STATUS = [(AuthError, 401), (AccessError, 403), (NotFoundError, 404),
           (AnnotationError, 422), (ConfigError, 422), (VocabularyError, 422)]


class _Failures:
    """Failed log-ins per client address in a sliding window (memory only: a restart forgets)."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, ip: str) -> bool:
        with self._lock:
            q = self._seen.get(ip)
            now = time.monotonic()
            while q and now - q[0] > IP_WINDOW_S:
                q.popleft()
            return bool(q) and len(q) >= IP_FAILURES

    def add(self, ip: str) -> None:
        with self._lock:
            self._seen.setdefault(ip, deque()).append(time.monotonic())


def _error(exc: AffdataError) -> JSONResponse:
    if isinstance(exc, InputError):  # a video that cannot be read: its message names the file
        log.error("%s", exc)
        return JSONResponse({"error": "this video cannot be played (the server log says why)"}, status_code=500)
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
    return JSONResponse({"error": str(exc)}, status_code=status)


Handler = Callable[..., Awaitable[Response]]


def create_app(store: Store, *, proxy_dir: Path | None = None, secure_cookie: bool = False) -> Starlette:
    """The studio over ``store``; proxies are cached in ``proxy_dir`` (default beside the store)."""
    proxies = Path(proxy_dir) if proxy_dir else proxy.default_proxy_dir(store)
    failures = _Failures()

    def call(fn: Callable[..., Any], *args: Any, **kw: Any) -> Awaitable[Any]:
        return run_in_threadpool(fn, *args, **kw)

    async def body(request: Request) -> Any:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise AnnotationError("send JSON (Content-Type: application/json)")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise AnnotationError(f"request body over {MAX_BODY} bytes")
        import json

        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise AnnotationError("the body is not valid JSON") from None

    def endpoint(*, auth: bool = True, admin: bool = False) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
        def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def handler(request: Request) -> Response:
                try:
                    session = None
                    if auth:
                        session = await call(users.session_for, store, request.cookies.get(COOKIE))
                        if request.method in ("POST", "PUT", "DELETE", "PATCH"):
                            sent = request.headers.get(CSRF_HEADER, "")
                            if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
                                return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
                        if admin and not session.user.is_admin:
                            raise AccessError("this needs the admin role")
                    return await fn(request, session)
                except AffdataError as exc:
                    return _error(exc)
            return handler
        return wrap

    def user_of(session: users.Session | None) -> users.User:
        assert session is not None
        return session.user

    # --- public -----------------------------------------------------------------------------

    @endpoint(auth=False)
    async def ping(request: Request, _s: Any) -> Response:
        return JSONResponse({"ok": True})

    @endpoint(auth=False)
    async def login(request: Request, _s: Any) -> Response:
        ip = request.client.host if request.client else "?"
        if failures.blocked(ip):
            return JSONResponse({"error": "too many failed log-ins from this address; wait a few minutes"},
                                status_code=429)
        data = await body(request)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("password"), str):
            raise AnnotationError("send {name, password}")
        try:
            token, session = await call(users.log_in, store, data["name"], data["password"])
        except AuthError:
            failures.add(ip)
            raise
        resp = JSONResponse({"name": session.user.name, "role": session.user.role, "csrf": session.csrf_token})
        resp.set_cookie(COOKIE, token, max_age=users.SESSION_HOURS * 3600, httponly=True, samesite="strict",
                        secure=secure_cookie, path="/")
        return resp

    # --- any user ---------------------------------------------------------------------------

    @endpoint()
    async def logout(request: Request, session: Any) -> Response:
        await call(users.log_out, store, request.cookies.get(COOKIE, ""))
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @endpoint()
    async def me(request: Request, session: Any) -> Response:
        return JSONResponse({"name": session.user.name, "role": session.user.role, "csrf": session.csrf_token})

    @endpoint()
    async def my_assignments(request: Request, session: Any) -> Response:
        found = await call(assignments.assignments_of, store, user_of(session))
        return JSONResponse([_public(a) for a in found])

    def _id(request: Request) -> int:
        return int(request.path_params["id"])

    @endpoint()
    async def one_assignment(request: Request, session: Any) -> Response:
        a = await call(assignments.assignment_for, store, user_of(session), _id(request))
        media = await call(assignments.item_media, store, a)
        draft = await call(drafts.load_draft, store, a)
        out = _public(a) | {"media": media, "video_url": f"/api/videos/{a.video_id}/media",
                            "draft": None if draft is None else {"seq": draft["seq"], "data": draft["data"]},
                            "readonly": a.user_id != user_of(session).id}
        return JSONResponse(out)

    @endpoint()
    async def save_draft(request: Request, session: Any) -> Response:
        a = await call(assignments.own_assignment, store, user_of(session), _id(request))
        data = await body(request)
        if not isinstance(data, dict):
            raise AnnotationError("send {seq, data}")
        return JSONResponse(await call(drafts.save_draft, store, a, data.get("seq"), data.get("data")))

    @endpoint()
    async def do_submit(request: Request, session: Any) -> Response:
        a = await call(assignments.own_assignment, store, user_of(session), _id(request))
        data = await body(request)
        if not isinstance(data, dict):
            raise AnnotationError("send {data, partial}")
        result = await call(submit.submit, store, a, data.get("data"), partial=bool(data.get("partial", False)))
        return JSONResponse(result.to_dict())

    @endpoint()
    async def video_media(request: Request, session: Any) -> Response:
        video_id = _id(request)
        if not await call(assignments.may_view_video, store, user_of(session), video_id):
            raise NotFoundError(f"no video {video_id}")
        path = await call(proxy.media_path, store, video_id, proxies)
        return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600"})

    # --- admin ------------------------------------------------------------------------------

    @endpoint(admin=True)
    async def list_users(request: Request, session: Any) -> Response:
        found = await call(users.list_users, store)
        return JSONResponse([{"name": u.name, "role": u.role, "disabled": u.disabled} for u in found])

    @endpoint(admin=True)
    async def list_campaigns(request: Request, session: Any) -> Response:
        return JSONResponse([c.to_dict() for c in await call(campaigns.list_campaigns, store)])

    @endpoint(admin=True)
    async def new_campaign(request: Request, session: Any) -> Response:
        d = await body(request)
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            raise AnnotationError("send {name, task, videos | split+part, classes, per_item, mode}")
        c = await call(campaigns.create_campaign, store, d["name"], d.get("task", ""), videos=d.get("videos"),
                       split=d.get("split"), part=d.get("part"), tracks=d.get("tracks"), classes=d.get("classes"),
                       per_item=int(d.get("per_item", 1)), mode=d.get("mode", "2d"), created_by=user_of(session).id)
        return JSONResponse(c.to_dict(), status_code=201)

    @endpoint(admin=True)
    async def assign(request: Request, session: Any) -> Response:
        d = await body(request)
        c = await call(campaigns.get_campaign, store, _id(request))
        if not isinstance(d, dict):
            raise AnnotationError("send {users} (round robin) or {user, video, track}")
        if "users" in d:
            return JSONResponse({"added": await call(assignments.assign_round_robin, store, c.id, list(d["users"]))})
        aid = await call(assignments.assign, store, c.id, str(d.get("user")), str(d.get("video")), str(d.get("track", "main")))
        return JSONResponse({"assignment": aid})

    @endpoint(admin=True)
    async def campaign_progress(request: Request, session: Any) -> Response:
        return JSONResponse(await call(campaigns.progress, store, _id(request)))

    @endpoint(admin=True)
    async def campaign_review(request: Request, session: Any) -> Response:
        item = request.query_params.get("item", "")
        if not item.isdigit():
            raise AnnotationError("give ?item=ID (see the campaign's progress)")
        return JSONResponse(await call(review.review_item, store, _id(request), int(item)))

    @endpoint(admin=True)
    async def run_consensus(request: Request, session: Any) -> Response:
        await body(request)
        return JSONResponse(await call(review.campaign_consensus, store, _id(request)))

    async def index(request: Request) -> Response:
        return RedirectResponse("/static/index.html")

    routes = [
        Route("/", index),
        Route("/api/ping", ping),
        Route("/api/login", login, methods=["POST"]),
        Route("/api/logout", logout, methods=["POST"]),
        Route("/api/me", me),
        Route("/api/assignments", my_assignments),
        Route("/api/assignments/{id:int}", one_assignment),
        Route("/api/assignments/{id:int}/draft", save_draft, methods=["PUT"]),
        Route("/api/assignments/{id:int}/submit", do_submit, methods=["POST"]),
        Route("/api/videos/{id:int}/media", video_media),
        Route("/api/admin/users", list_users),
        Route("/api/admin/campaigns", list_campaigns),
        Route("/api/admin/campaigns", new_campaign, methods=["POST"]),
        Route("/api/admin/campaigns/{id:int}/assign", assign, methods=["POST"]),
        Route("/api/admin/campaigns/{id:int}/progress", campaign_progress),
        Route("/api/admin/campaigns/{id:int}/review", campaign_review),
        Route("/api/admin/campaigns/{id:int}/consensus", run_consensus, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Headers)])


class _Headers:
    """Security headers on every response; ``no-store`` on API answers (pure ASGI: streams pass through)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    headers.setdefault(k, v)
                if api:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _public(a: assignments.Assignment) -> dict[str, Any]:
    """An assignment as the page sees it: no user ids, no paths."""
    return {"id": a.id, "user": a.user, "status": a.status, "campaign": a.campaign.to_dict(),
            "video_id": a.video_id, "video": a.video, "track": a.track}
