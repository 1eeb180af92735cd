"""The ASGI app: Bolt at ``/slack/events``, health, readiness and metrics; later doors add routers.

``create_app(settings)`` builds everything; the lifespan upgrades the database, starts the worker
pool and warms the models in the background, so ``/healthz`` answers at once and ``/readyz`` says
when the heavy parts are loaded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from sqlalchemy.exc import InterfaceError, OperationalError

from bot import metrics, webhooks
from bot.logs import REQUEST_ID
from bot.services import Services, build_services
from bot.settings import Settings
from bot.slack_app import build_bolt_app
from knowledge.db import DatabaseUnavailable
from skills.base import small_int

__all__ = ["create_app"]

log = logging.getLogger("warroom.app")

SLACK_MAX_BODY = 1024 * 1024


def _malformed_slack_body(body: bytes, content_type: str) -> str | None:
    """Why Bolt could not parse this body (it would raise), or None when it can."""
    import json
    import urllib.parse

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    from bot.slack_shapes import problem_in

    try:
        if text.lstrip().startswith("{") or "application/json" in content_type:
            if not isinstance(body_obj := json.loads(text or "null"), dict):
                return "JSON body is not an object"
            return problem_in(body_obj, interactive=False)
        fields = urllib.parse.parse_qs(text, keep_blank_values=True)
        if "payload" in fields:
            if not isinstance(payload := json.loads(fields["payload"][0] or "null"), dict):
                return "'payload' is not a JSON object"
            return problem_in(payload, interactive=True)
    except (json.JSONDecodeError, ValueError):
        return "invalid JSON"
    except RecursionError:  # a signed body of 5,000 nested brackets was a 500
        return "JSON nested too deeply"
    return None


_REQUEST_ID_PREFIX = uuid.uuid4().hex[:8]  # per process; a counter after it (uuid4 per request showed in profiles)
_REQUEST_IDS = itertools.count(1)
_REQUEST_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class _Observe:
    """Request id, metrics and the last line of defence (503 while the database is down, never a trace).

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs a task group and a memory stream per
    request, which shows in the acknowledgement latency of a burst.
    """

    def __init__(self, app: Any, services: Services) -> None:
        self.app, self.services = app, services

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")[:64]
        ok = given and set(given) <= _REQUEST_ID_OK
        request_id = given if ok else f"{_REQUEST_ID_PREFIX}{next(_REQUEST_IDS):08x}"
        token = REQUEST_ID.set(request_id)
        path = scope.get("path", "")
        route = path if path.count("/") <= 3 else "other"
        state = {"status": 500, "started": False}

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if scope["method"] in ("POST", "PUT") and path.startswith(webhooks.DOOR_PREFIX) and path.count("/") == 2:
                await webhooks.asgi_door(self.services, scope, receive, send_with_id)  # the storm's fast path
            else:
                await self.app(scope, receive, send_with_id)
        except (OperationalError, InterfaceError, DatabaseUnavailable) as exc:  # the database is down or unreachable
            if state["started"]:
                raise
            log.warning("database unavailable on %s: %s", path, type(exc).__name__)
            why = "database unavailable; retry shortly"
            await JSONResponse({"error": why, "detail": why}, status_code=503,
                               headers={"Retry-After": "5"})(scope, receive, send_with_id)
        except Exception:  # noqa: BLE001 - last line of defence: never a stack trace to the caller
            if state["started"]:
                raise
            log.exception("unhandled error on %s", path)
            await JSONResponse({"error": "internal error"}, status_code=500)(scope, receive, send_with_id)
        finally:
            metrics.REQUESTS.labels(route=route, status=str(state["status"])).inc()
            metrics.REQUEST_LATENCY.labels(route=route).observe(time.perf_counter() - start)
            REQUEST_ID.reset(token)


def create_app(settings: Settings, services: Services | None = None, *, background_in_child: bool = False) -> FastAPI:
    """Build the ASGI app (and its services unless given). ``background_in_child``: the inbox processor and
    the job pool run in a `warroom background` child (``warroom serve`` with WARROOM_BACKGROUND=process), not
    in this process."""
    services = services or build_services(settings)
    if background_in_child:
        # The child commits often and checkpoints the WAL; the door's commits then rarely pay for a checkpoint
        # (measured: webhook p99 in a storm). 10,000 pages (~40 MB) still bounds the WAL if the child is gone.
        services.db.wal_autocheckpoint = 10_000
    bolt = build_bolt_app(services)
    handler = AsyncSlackRequestHandler(bolt)
    socket = None
    if settings.slack_socket_mode:
        from bot.socket_mode import SocketModeLink

        if settings.slack_app_token is None:
            raise ValueError("Socket Mode needs WARROOM_SLACK_APP_TOKEN (an app-level token, xapp-...)")
        socket = SocketModeLink(bolt, settings.slack_app_token.get_secret_value(),
                                stale_after_s=settings.slack_socket_stale_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        import asyncio

        if settings.upgrade_on_start:
            await asyncio.to_thread(services.db.upgrade)
        services.migrated = await asyncio.to_thread(services.db.at_head)
        services.start_background(local_work=not background_in_child)
        # Everything imported and built so far lives for the whole process: move it out of the collector's
        # sight, so that a full collection during a burst does not pause every acknowledgement (measured:
        # rounds of 50 commands stalled ~250 ms without this).
        import gc

        gc.collect()
        gc.freeze()
        if socket is not None:  # Slack's door over a WebSocket; opened in the background (bot/socket_mode.py)
            socket.start()
        try:
            yield
        finally:
            if socket is not None:
                await socket.stop()
            await asyncio.to_thread(services.stop)

    app = FastAPI(title="warroom", version="0.1.0", lifespan=lifespan,
                  description="Incident-response ChatOps bot: Slack, webhooks and a small REST API.")
    app.state.services = services
    app.state.bolt = bolt
    app.state.socket = socket

    app.add_middleware(_Observe, services=services)

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (n := small_int(length, 20)) is not None and n > SLACK_MAX_BODY:
            return PlainTextResponse("payload too large", status_code=413)
        body = await request.body()
        if len(body) > SLACK_MAX_BODY:
            return PlainTextResponse("payload too large", status_code=413)
        problem = _malformed_slack_body(body, request.headers.get("content-type", ""))
        if problem:
            return PlainTextResponse(f"malformed Slack payload: {problem}", status_code=400)
        return await handler.handle(request)

    # Routers of later doors (webhooks, REST API, knowledge-base pages) are included here.
    # routers:
    app.include_router(__import__("bot.api", fromlist=["router"]).router)  # /api/v1/risk (issue 5)
    app.include_router(webhooks.router)
    app.include_router(__import__("bot.kb", fromlist=["router"]).router)  # /kb pages (issue 9)
    app.include_router(__import__("bot.similar_api", fromlist=["router"]).router)  # /api/v1/similar (issue 6)
    app.include_router(__import__("bot.changes_api", fromlist=["router"]).router)  # /api/v1/changes (deploys)
    app.include_router(__import__("bot.github_changes", fromlist=["router"]).router)  # GitHub deployment_status

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "Starting: migrations or models not ready"}})
    async def readyz() -> JSONResponse:
        """Readiness: migrations applied and models loaded. In Socket Mode ``slack_socket`` says whether the
        WebSocket to Slack is up; ``slack_auth`` appears while Slack refuses the bot's token. Neither makes the
        bot unready (alerts still arrive over HTTP and wait)."""
        body: dict[str, Any] = {"migrated": services.migrated, "models_loaded": services.warm,
                                "error": services.warm_error}
        if socket is not None:
            body["slack_socket"] = await socket.state()
        if (problem := getattr(services.poster, "auth_problem", None)) is not None:
            # Slack refuses the token: work is kept and waits; alerts still arrive, so not "unready".
            body["slack_auth"] = {**problem, "since": dt.datetime.fromtimestamp(problem["since"], dt.UTC).isoformat()}
        if (limited := getattr(services.poster, "events_limited", None)) and time.time() - limited["at"] < 3600:
            # Slack held back events in the last hour: what people said in Slack may not have reached the bot
            body["slack_events_limited"] = {
                "minute": dt.datetime.fromtimestamp(limited["minute"], dt.UTC).isoformat(), "team": limited["team"]}
        if services.llm_status is not None:  # the configured LLM endpoint: reachable, serving the model?
            body["llm"] = services.llm_status
        if missing := getattr(services.poster, "missing_scopes", None):
            from bot.slack_client import REQUIRED_SCOPES

            body["slack_scopes_missing"] = {m: REQUIRED_SCOPES[m] for m in missing}
        ready = services.migrated and services.warm
        return JSONResponse({"status": "ready" if ready else "starting", **body}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prom_metrics() -> Response:
        import asyncio

        from knowledge import jobs

        def depth() -> int:
            with services.db.session() as s:
                return jobs.counts(s).get("queued", 0)

        with contextlib.suppress(Exception):
            metrics.QUEUE_DEPTH.set(await asyncio.to_thread(depth))
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
