"""GitHub's own webhook as a source of changes: ``POST /api/v1/changes/github``.

A repository (or organisation) webhook with the "Deployment statuses" event tells the bot of every deployment that
finished, without a step in each pipeline: GitHub Actions jobs with ``environment: production`` create deployments
by themselves, and so do Argo CD, Heroku and most deploy tools that report to GitHub. Each finished one is kept as a
change like ``POST /api/v1/changes`` keeps it (``bot/changes_api.py``): on the card of an incident that opens after
it, told to the incidents open on its service, counted in routing.

Authenticated by GitHub's signature, ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`` with the secret
``WARROOM_WEBHOOK_SECRETS["github"]`` (and the previous one while rotating); not configured: 401, like the alert
webhooks. Order of checks: size (413), signature (401), event, JSON (400), fields (422 naming the field). Both content
types GitHub offers are read (``application/json`` and the form with a ``payload`` field).

What is kept: ``deployment_status`` events whose state is ``success`` (a deploy), ``failure`` or ``error`` (a deploy
that did not finish: it may have changed part of the fleet), to an environment in ``WARROOM_GITHUB_ENVIRONMENTS``
(``production`` and ``prod`` by default; ``*``: all). The service is the deployment's ``payload.service`` when it
names one (a monorepo deploying one of its services), else the repository's name; a ``task`` or ``payload.kind``
saying rollback makes it a rollback. Every other event or state is answered 202 ``ignored`` with the reason (GitHub
shows it in the delivery log), ``ping`` 200. GitHub's redelivery of the same status records nothing new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot import metrics
from bot.changes_api import tell_open_incidents
from bot.webhooks import read_bounded
from skills.base import SkillError
from skills.changes import report

__all__ = ["router", "github_signature", "FINISHED"]

router = APIRouter(prefix="/api/v1", tags=["changes"])

FINISHED = ("success", "failure", "error")  # a deployment status that ends it; the others (queued, pending,
# in_progress, inactive: superseded by a later one) change nothing


def github_signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")  # GitHub's payloads carry far more than is read here


class _User(_Model):
    login: Annotated[str, Field(max_length=200)]


class _Repository(_Model):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    full_name: Annotated[str, Field(max_length=300)] = ""
    html_url: Annotated[str | None, Field(max_length=1000)] = None


_ID = Annotated[int, Field(ge=0, lt=2**63)]


class _Deployment(_Model):
    id: _ID
    sha: Annotated[str, Field(max_length=100)] = ""
    ref: Annotated[str, Field(max_length=300)] = ""
    task: Annotated[str, Field(max_length=200)] = "deploy"
    environment: Annotated[str, Field(max_length=200)] = ""
    description: Annotated[str | None, Field(max_length=5000)] = None
    payload: dict[str, Any] | str | None = None  # GitHub sends an object, or a string when it was created as one
    creator: _User | None = None


class _Status(_Model):
    id: _ID | None = None
    state: Annotated[str, Field(max_length=40)]
    environment: Annotated[str | None, Field(max_length=200)] = None
    description: Annotated[str | None, Field(max_length=5000)] = None
    target_url: Annotated[str | None, Field(max_length=1000)] = None
    log_url: Annotated[str | None, Field(max_length=1000)] = None
    environment_url: Annotated[str | None, Field(max_length=1000)] = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    creator: _User | None = None


class DeploymentStatusEvent(_Model):
    """The parts of GitHub's ``deployment_status`` event that are read."""

    deployment_status: _Status
    deployment: _Deployment
    repository: _Repository
    sender: _User | None = None


def _reply(status: int, body: dict[str, Any], outcome: str) -> JSONResponse:
    metrics.WEBHOOKS.labels(source="github", outcome=outcome).inc()
    return JSONResponse(body, status_code=status)


def _signed(secret: str, header: str, body: bytes) -> bool:
    return bool(header) and hmac.compare_digest(header.strip().encode(), github_signature(secret, body).encode())


def _environment_wanted(name: str, wanted: list[str]) -> bool:
    return "*" in wanted or name.strip().lower() in {w.strip().lower() for w in wanted}


def _http(url: str | None) -> str | None:
    return url if url and url.startswith(("https://", "http://")) else None


def _change(ev: DeploymentStatusEvent) -> dict[str, Any]:
    """The fields of ``skills.changes.report`` for one finished deployment."""
    d, st, repo = ev.deployment, ev.deployment_status, ev.repository
    extra = d.payload if isinstance(d.payload, dict) else {}
    named = extra.get("service")
    service = named.strip() if isinstance(named, str) and named.strip() else repo.name
    told = extra.get("kind")
    rollback = "rollback" in d.task.lower() or (isinstance(told, str) and told.strip().lower() == "rollback")
    env = st.environment or d.environment or "an environment"
    sha = d.sha[:7]
    version = (f"{d.ref}@{sha}" if d.ref and d.ref != d.sha and sha else d.ref or sha) or None
    what = (st.description or d.description or "").strip()
    summary = f"{repo.full_name or repo.name} {version or ''} to {env}".replace("  ", " ")
    if what:
        summary += f": {what}"
    if st.state != "success":
        summary = f"did not finish ({st.state}): {summary}"
    who = (d.creator or st.creator or ev.sender)
    return {"service": service, "summary": summary, "kind": "rollback" if rollback else "deploy", "version": version,
            "author": who.login if who else None,
            "url": _http(st.target_url) or _http(st.log_url) or _http(st.environment_url)
            or (f"{repo.html_url}/deployments" if _http(repo.html_url) else None),
            "at": st.updated_at or st.created_at, "source": "github",
            "external_id": f"deployment:{d.id}:{st.id if st.id is not None else st.state}"}


def _read_json(body: bytes, content_type: str) -> Any:
    """The event: the JSON body, or the ``payload`` field of GitHub's form encoding."""
    text = body.decode("utf-8-sig")
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=20)
        if not fields.get("payload"):
            raise ValueError("a form body without its `payload` field")
        text = fields["payload"][0]
    return json.loads(text)


@router.post("/changes/github", status_code=201, responses={
    200: {"description": "`ping`, or the same deployment status again (nothing new recorded)"},
    201: {"description": "A finished deployment recorded as a change"},
    202: {"description": "Authenticated but not a change: the reason is in `ignored`"},
    400: {"description": "The body is not JSON (or not GitHub's form with a `payload` field)"},
    401: {"description": "No `github` secret configured, or a missing or wrong X-Hub-Signature-256"},
    413: {"description": "Larger than WARROOM_WEBHOOK_MAX_BYTES"},
    422: {"description": "A deployment_status event without a field that is read; `fields` names them"}})
async def github_webhook(request: Request) -> JSONResponse:
    """GitHub's webhook (content type JSON or form): finished deployments become changes."""
    services = request.app.state.services
    settings = services.settings
    limit = settings.webhook_max_bytes
    body = await read_bounded(request.headers, request.stream(), limit)
    if body is None:
        return _reply(413, {"error": f"payload larger than {limit} bytes"}, "413")
    secret = settings.webhook_secrets.get("github")
    if secret is None:
        return _reply(401, {"error": "the GitHub webhook is not configured: set WARROOM_WEBHOOK_SECRETS "
                                     "'{\"github\": \"...\"}' and the same secret in GitHub"}, "401")
    sig = request.headers.get("x-hub-signature-256", "")
    ok = _signed(secret.get_secret_value(), sig, body)
    if not ok and (old := settings.webhook_previous_secrets.get("github")) is not None:
        ok = _signed(old.get_secret_value(), sig, body)
        if ok:
            metrics.WEBHOOKS.labels(source="github", outcome="previous_secret").inc()
    if not ok:
        why = "bad X-Hub-Signature-256" if sig else "missing X-Hub-Signature-256 (set the webhook's secret in GitHub)"
        return _reply(401, {"error": f"unauthenticated: {why}"}, "401")
    event = request.headers.get("x-github-event", "").strip()[:100]
    if event == "ping":
        return _reply(200, {"status": "pong"}, "ping")
    if event != "deployment_status":
        return _reply(202, {"status": "ignored", "ignored": f"event `{event or 'none'}` is not read here: subscribe "
                                                            "to Deployment statuses"}, "ignored")
    try:
        data = _read_json(body, request.headers.get("content-type", ""))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return _reply(400, {"error": f"malformed JSON: {str(exc)[:200] or 'too deeply nested'}"}, "400")
    try:
        ev = DeploymentStatusEvent.model_validate(data)
    except ValidationError as exc:
        errs = exc.errors()
        fields = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "problem": e["msg"]} for e in errs[:20]]
        return _reply(422, {"error": f"invalid deployment_status event: field `{fields[0]['field']}`: "
                                     f"{fields[0]['problem']}", "fields": fields}, "422")
    state = ev.deployment_status.state.strip().lower()
    env = ev.deployment_status.environment or ev.deployment.environment
    if state not in FINISHED:
        return _reply(202, {"status": "ignored", "ignored": f"state `{state[:40]}`: not finished"}, "ignored")
    if not _environment_wanted(env, settings.github_environments):
        return _reply(202, {"status": "ignored", "ignored": f"environment `{env[:100]}` is not in "
                            f"WARROOM_GITHUB_ENVIRONMENTS ({', '.join(settings.github_environments)})"}, "ignored")
    ev.deployment_status.state = state
    with services.db.session() as s:
        try:
            row, created, known = report(s, **_change(ev))
        except SkillError as exc:
            return _reply(422, {"error": f"this deployment cannot be kept: {exc}"}, "422")
        s.flush()
        out = {"id": row.id, "service": row.service, "kind": row.kind, "version": row.version, "summary": row.summary}
        refs = tell_open_incidents(s, row, settings.card_update_interval_s)  # a redelivery tells what is untold
    if refs:
        services.runner.handoff(refs)
    return _reply(201 if created else 200, {"status": "recorded" if created else "duplicate", **out,
                                            "created": created, "known_service": known},
                  "accepted" if created else "duplicate")
