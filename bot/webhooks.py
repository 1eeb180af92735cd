"""Webhook receivers at ``/webhooks/<source>``: authenticate, validate, commit to the inbox, then 202.

Order of checks: size (413), authentication (401, constant-time comparison), JSON (400), schema
(422 naming the field). Only then is the raw body committed to ``webhook_inbox``; the 2xx goes back
after that commit, so an acknowledged alert survives a crash. Processing happens off the request
path (``bot/intake_worker.py``). A delivery id the sender already used (PagerDuty's event id) is
acknowledged as a duplicate and not processed again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import OperationalError
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect

from bot import metrics
from bot.batching import MicroBatcher
from bot.inbox_spool import write_rows
from bot.webhook_schemas import SOURCES, delivery_id, parse_payload, payload_json_schema
from knowledge.models import WebhookInbox
from skills.base import small_int

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["router", "sign_body", "accept", "asgi_door", "DOOR_PREFIX", "read_bounded"]

router = APIRouter(tags=["webhooks"])

MAX_SKEW_S = 300
DOOR_PREFIX = "/webhooks/"


def sign_body(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """The HMAC-SHA256 hex digest we expect (``timestamp.body`` when a timestamp is sent)."""
    msg = (timestamp.encode() + b"." + body) if timestamp else body
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def _error(status: int, message: str, source: str, **extra: Any) -> JSONResponse:
    metrics.WEBHOOKS.labels(source=source, outcome=str(status)).inc()
    return JSONResponse({"error": message, **extra}, status_code=status)


def _authenticated(source: str, secret: str, h: Headers, body: bytes) -> str | None:
    """None when authenticated, else why not."""
    auth = h.get("authorization", "")
    if auth.lower().startswith("bearer ") and source != "pagerduty":
        return None if hmac.compare_digest(auth[7:].strip().encode(), secret.encode()) else "bad bearer token"
    if auth.lower().startswith("basic ") and source != "pagerduty":
        # Alertmanager's and Grafana's basic_auth: any user name, the source's secret as the password.
        try:
            _user, sep, password = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "malformed basic credentials"
        ok = bool(sep) and hmac.compare_digest(password.encode(), secret.encode())
        return None if ok else "bad basic credentials"
    if source == "pagerduty":
        sigs = [s.strip()[3:] for s in h.get("x-pagerduty-signature", "").split(",") if s.strip().startswith("v1=")]
        if not sigs:
            return "missing X-PagerDuty-Signature"
        want = sign_body(secret, body)
        return None if any(hmac.compare_digest(s.encode(), want.encode()) for s in sigs) else "bad signature"
    if source == "grafana" and h.get("x-grafana-alerting-signature"):
        ts = h.get("x-grafana-alerting-signature-timestamp")
        if ts is not None and _stale(ts):  # Grafana's advice: check the timestamp is recent (replays)
            return "stale or invalid X-Grafana-Alerting-Signature-Timestamp"
        msg = (ts.encode() + b":" + body) if ts else body
        want = hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()
        got = h["x-grafana-alerting-signature"].encode()
        return None if hmac.compare_digest(got, want.encode()) else "bad signature"
    sig = h.get("x-warroom-signature", "")
    if not sig:
        return "missing Authorization bearer token or X-Warroom-Signature"
    ts = h.get("x-warroom-timestamp")
    if ts is not None and _stale(ts):
        return "stale or invalid X-Warroom-Timestamp"
    want = "sha256=" + sign_body(secret, body, ts)
    return None if hmac.compare_digest(sig.encode(), want.encode()) else "bad signature"


async def read_bounded(headers: Headers, chunks: AsyncIterator[bytes], limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be over ``limit`` bytes (its Content-Length, or while reading):
    an oversized body is never held whole."""
    length = headers.get("content-length")
    if length and (n := small_int(length, 20)) is not None and n > limit:
        return None
    body = b""
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return None
    return body


def _stale(ts: str) -> bool:
    """A signature timestamp (Unix seconds) that is not a number or is more than ``MAX_SKEW_S`` away."""
    when = small_int(ts)  # not int(): "²" and 5,000 digits pass isdigit() and make int() raise (a 500)
    return when is None or abs(time.time() - when) > MAX_SKEW_S


def _field(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err.get("loc", ())) or "body"


def _write_inbox(session: Any, items: list[tuple[str, str, str | None]]) -> list[int | None]:
    """Insert (source, body, delivery id) rows into ``webhook_inbox`` in one transaction; None for a delivery id
    already accepted (in the database, or earlier in this batch)."""
    return write_rows(session, WebhookInbox.__table__, items, status="pending", attempts=0)


def _inbox(services: Services) -> MicroBatcher[tuple[str, str, str | None], int | None]:
    """The app's inbox writer: concurrent deliveries are committed together (see bot.group_commit), to the
    spool file on SQLite (bot.inbox_spool), else to ``webhook_inbox``."""
    if services.inbox_writer is None:
        from bot.group_commit import GroupCommit

        spool = services.spool if services.settings.inbox_spool else None
        if spool is not None:
            # The spool's commit (a local file the door alone writes, no fsync in WAL mode) runs on the event
            # loop: cheaper than a thread hop per batch.
            def write(items: list[tuple[str, str, str | None]]) -> list[int | None]:
                ids = spool.write(items)
                services.intake.notify()
                return ids

            services.inbox_writer = MicroBatcher(write, in_thread=lambda _items: False)
        else:  # PostgreSQL: through a thread (network round trips)
            services.inbox_writer = GroupCommit(services.db, _write_inbox,
                                                after_commit=lambda _ids: services.intake.notify())
    return services.inbox_writer


class Accepted(BaseModel):
    status: Literal["accepted"]
    inbox_id: int
    alerts: int = Field(description="alerts in the delivery")
    warnings: list[str] | None = Field(default=None, description="what was accepted but not understood: a "
                                       "severity that is no level the bot knows (taken as SEV3)")


class Duplicate(BaseModel):
    status: Literal["duplicate"]
    detail: str


class FieldProblem(BaseModel):
    field: str
    problem: str | None


class WebhookError(BaseModel):
    error: str
    fields: list[FieldProblem] | None = Field(default=None, description="with a 422: every field at fault")


def _error_doc(why: str) -> dict[str, Any]:
    return {"model": WebhookError, "description": why}


# The handler reads the raw body itself (size and signature come before parsing), so the body and the
# answers are documented here rather than derived by FastAPI.
_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": payload_json_schema()}}},
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Duplicate, "description": "This delivery id was already accepted; not processed again"},
    202: {"model": Accepted, "description": "Stored in the inbox; processed in the background"},
    400: _error_doc("Malformed JSON"),
    401: _error_doc("Unauthenticated, or no secret configured for this source"),
    404: _error_doc("Unknown source"),
    413: _error_doc("Payload larger than WARROOM_WEBHOOK_MAX_BYTES"),
    422: _error_doc("The payload does not match the source's format; names the fields"),
    503: _error_doc("Database unavailable; retry"),
}


@router.api_route("/webhooks/{source}", methods=["POST", "PUT"], status_code=202, response_model=None,
                  responses=_RESPONSES, openapi_extra=_OPENAPI)
async def receive(
    request: Request,
    source: Annotated[str, Path(description="the sending tool", json_schema_extra={"enum": sorted(SOURCES)})],
) -> JSONResponse:
    """Accept one delivery from an alerting tool.

    ``PUT`` is accepted too (Grafana's contact point can be set to it).
    Authentication: ``Authorization: Bearer <secret of the source>`` or ``Basic`` with the secret as the
    password (not for pagerduty),
    ``X-Warroom-Signature: sha256=<HMAC-SHA256 of [timestamp.]body>`` with an optional ``X-Warroom-Timestamp``,
    Grafana's ``X-Grafana-Alerting-Signature``, or PagerDuty's ``X-PagerDuty-Signature: v1=<HMAC-SHA256>``.
    """
    return await accept(request.app.state.services, source, request.headers, request.stream())


async def asgi_door(services: Services, scope: dict[str, Any], receive_msg: Any, send: Any) -> None:
    """The same door as :func:`receive`, as a plain ASGI endpoint for ``POST /webhooks/<source>``.

    The app's outer middleware calls it directly: in an alert storm FastAPI's routing, dependency solving and
    exception middlewares cost more CPU per delivery than authenticating, validating and storing it (measured,
    docs/benchmarks.md). The FastAPI route above stays as the documented (OpenAPI) form of the same door.
    """
    async def chunks() -> AsyncIterator[bytes]:
        while True:
            message = await receive_msg()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            yield message.get("body", b"")
            if not message.get("more_body", False):
                return

    source = scope["path"][len(DOOR_PREFIX):]
    response = await accept(services, source, Headers(scope=scope), chunks())
    await response(scope, receive_msg, send)


async def accept(services: Services, source: str, headers: Headers, chunks: AsyncIterator[bytes]) -> JSONResponse:
    """Size (413), authentication (401), JSON (400), schema (422), then the inbox commit and the 202."""
    settings = services.settings
    if source not in SOURCES:
        hint = "; GitHub deployments go to /api/v1/changes/github" if source.lower() == "github" else ""
        return _error(404, f"unknown webhook source {source[:40]!r}; known: {', '.join(SOURCES)}{hint}", "unknown")
    limit = settings.webhook_max_bytes
    body = await read_bounded(headers, chunks, limit)
    if body is None:
        return _error(413, f"payload larger than {limit} bytes", source)
    secret = settings.webhook_secrets.get(source)
    if secret is None:
        return _error(401, f"webhook source {source} is not configured (no secret)", source)
    why = _authenticated(source, secret.get_secret_value(), headers, body)
    if why is not None and (old := settings.webhook_previous_secrets.get(source)) is not None:
        if _authenticated(source, old.get_secret_value(), headers, body) is None:  # mid-rotation: still accepted
            why = None
            metrics.WEBHOOKS.labels(source=source, outcome="previous_secret").inc()
    if why is not None:
        return _error(401, f"unauthenticated: {why}", source)
    try:
        text = body.decode("utf-8-sig")  # .NET's UTF-8 writers (PowerShell, C# senders) start with a BOM: not stored
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        return _error(400, f"malformed JSON: {str(exc)[:200] or 'too deeply nested'}", source)
    try:
        alerts = parse_payload(source, data, mask=False)  # validated and counted here; masked when processed
    except ValidationError as exc:
        errs = exc.errors()
        first = errs[0]
        return _error(422, f"invalid {source} payload: field `{_field(first)}`: {first.get('msg')}", source,
                      fields=[{"field": _field(e), "problem": e.get("msg")} for e in errs[:20]])
    except RecursionError:
        return _error(400, "malformed JSON: too deeply nested", source)
    try:
        inbox_id = await _inbox(services).submit((source, text, delivery_id(source, data)))
    except (OperationalError, sqlite3.Error):  # nothing was acknowledged: the sender retries
        return _error(503, "database unavailable; retry", source)
    if inbox_id is None:
        metrics.WEBHOOKS.labels(source=source, outcome="duplicate").inc()
        return JSONResponse({"status": "duplicate", "detail": "this delivery was already accepted"}, status_code=200)
    metrics.WEBHOOKS.labels(source=source, outcome="accepted").inc()
    # Accepted whole (an alert is never refused for a word), but what was not understood is said to the sender.
    warnings = [f"alert {a.name!r}: severity {a.severity_unread!r} is not a level I know (critical, high, warning, "
                f"low, info, SEV1-4, P1-4, 1-4): taken as SEV3" for a in alerts if a.severity_unread][:20]
    return JSONResponse({"status": "accepted", "inbox_id": inbox_id, "alerts": len(alerts),
                         **({"warnings": warnings} if warnings else {})}, status_code=202)
