"""PagerDuty write-back: what people do in Slack reaches the PagerDuty incidents behind an incident.

An incident PagerDuty opened (its alerts come from the PagerDuty v3 webhook; each alert's fingerprint is a
PagerDuty incident id) keeps paging in PagerDuty until someone acknowledges it there. With
``WARROOM_PAGERDUTY_API_TOKEN`` set, the incident skill queues a ``pagerduty.sync`` job
(``skills.incident.pagerduty_jobs``) when a person, in Slack:

- acknowledges the incident or takes it: ``PUT /incidents/{id}`` status ``acknowledged`` (PagerDuty stops
  escalating);
- resolves it (a false alarm and a duplicate too): status ``resolved``, with what fixed it as the resolution;
- mitigates it or posts a status update: ``POST /incidents/{id}/notes``;
- re-rates it across the SEV2/SEV3 line (``/incident sev``, escalate): its urgency, ``high`` for SEV1-2 and
  ``low`` for SEV3-4 (``skills.incident.pd_urgency``);
- assigns it to someone (``/incident assign``, the card's *Assign* and *Wrong owner* buttons): the PagerDuty user
  with that person's directory email (``GET /users?query=``) becomes the assignee there, so PagerDuty pages the
  person chosen here and stops paging the one before.
- escalates it (``/incident escalate``, "escalate to storage"): the next people to call that the bot named are
  asked to respond there too (``POST /incidents/{id}/responder_requests``, each the PagerDuty user with their
  directory email), so PagerDuty pages their phones, not only their Slack; the requester is the person who
  escalated, or the bot's PagerDuty user when PagerDuty has none for them.

Requests follow PagerDuty's REST API v2 (``Authorization: Token token=...``, ``Accept:
application/vnd.pagerduty+json;version=2``). ``From:`` is the email the people directory has for the person who
acted, so PagerDuty's log names them; when PagerDuty knows no user by that email ("Requester User Not Found") or
the directory has none, the change is sent (again) as the bot's PagerDuty user (``WARROOM_PAGERDUTY_FROM``). Each
outcome is on the incident's timeline, with the job that made it: a job retried after its change went through (the
thread's Slack post failed) tells the thread again and does not send the change twice (no second page, no
duplicate note). PagerDuty refusing (401, 403, 404, 400) fails at once; not answering (a
timeout, 429, 5xx) is retried ``WARROOM_PAGERDUTY_MAX_ATTEMPTS`` times. Either way the card's thread is told, with
what to do by hand: an acknowledgement that did not arrive means PagerDuty goes on paging.

PagerDuty then sends its own webhook events for these changes: an acknowledgement or resolution already made
here changes nothing, and the notes the bot wrote start with :data:`NOTE_MARK`, so they are not written on the
timeline a second time (``skills/intake.py``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select

from bot.worker import PermanentJobError
from knowledge import jobs
from knowledge.models import Expert, Incident, TimelineEvent, utcnow
from skills.base import SkillResult, esc
from skills.intake import PD_NOTE_MARK as NOTE_MARK

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.services import Services
    from bot.settings import Settings

__all__ = ["register", "PagerDutyRejected", "PagerDutyUnavailable", "NOTE_MARK"]

log = logging.getLogger("warroom.pagerduty")

ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved", "note": "note", "urgency": "urgency",
           "assign": "assign", "responders": "responders"}
_WORDS = {"acknowledge": "acknowledge", "resolve": "resolve", "note": "add the note to",
          "urgency": "change the urgency of", "assign": "reassign", "responders": "ask for more responders on"}


class PagerDutyRejected(PermanentJobError):
    """PagerDuty answered and said no (bad token, no such incident, invalid input): retrying cannot help."""


class PagerDutyUnavailable(Exception):
    """PagerDuty did not answer, was rate-limiting or failing: worth retrying."""


def _error(resp: httpx.Response) -> str:
    """PagerDuty's own words: ``{"error": {"message": ..., "errors": [...]}}``."""
    try:
        err = resp.json().get("error") or {}
        said = "; ".join(str(x) for x in [err.get("message"), *(err.get("errors") or [])] if x)
    except (ValueError, AttributeError):
        said = ""
    return f"HTTP {resp.status_code}" + (f": {said[:300]}" if said else "")


def _person(session: Session, user: str | None) -> tuple[str, str | None]:
    """(the name to write, the email to act as in PagerDuty: an active person's, when the directory has one)."""
    if not user:
        return "someone", None
    row = session.execute(select(Expert.name, Expert.email, Expert.active).where(Expert.slack_user_id == user)).first()
    if row is None:
        return user, None
    email = (row.email or "").strip()
    return row.name or user, email if row.active and "@" in email and email not in _NOT_PD_USERS else None


_NOT_PD_USERS: set[str] = set()  # emails PagerDuty said it has no user for (this process): not tried again


def _unknown_requester(resp: httpx.Response) -> bool:
    return resp.status_code == 400 and "requester user not found" in _error(resp).lower()


def _request(settings: Settings, method: str, path: str, body: dict[str, Any] | None,
             sender: str | None = None, params: dict[str, str] | None = None) -> httpx.Response:
    token = settings.pagerduty_api_token
    assert token is not None
    headers = {"Authorization": f"Token token={token.get_secret_value()}",
               "Accept": "application/vnd.pagerduty+json;version=2", "Content-Type": "application/json"}
    if sender or settings.pagerduty_from:
        headers["From"] = str(sender or settings.pagerduty_from)
    try:
        return httpx.request(method, settings.pagerduty_api_url.rstrip("/") + path, json=body, params=params,
                             headers=headers, timeout=settings.pagerduty_timeout_s)
    except httpx.HTTPError as exc:
        raise PagerDutyUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from None


def _checked(resp: httpx.Response) -> httpx.Response:
    if resp.status_code == 429 or resp.status_code >= 500:
        raise PagerDutyUnavailable(_error(resp))
    if resp.status_code >= 400:
        raise PagerDutyRejected(_error(resp))
    return resp


def _pd_user_id(services: Services, email: str) -> str | None:
    """The id of the PagerDuty user with this email (``GET /users?query=``, which also matches names: the email
    must be equal), or None."""
    resp = _checked(_request(services.settings, "GET", "/users", None, params={"query": email}))
    try:
        users = resp.json().get("users") or []
    except (ValueError, AttributeError):
        raise PagerDutyUnavailable(f"GET /users answered {resp.status_code} without a user list") from None
    for u in users if isinstance(users, list) else []:
        if isinstance(u, dict) and str(u.get("email", "")).lower() == email.lower() and u.get("id"):
            return str(u["id"])
    return None


def _pd_user(services: Services, user: str) -> tuple[str, str]:
    """(PagerDuty user id, name here) of the person with Slack id ``user``, by their email in the people directory."""
    with services.db.session() as s:
        row = s.execute(select(Expert.name, Expert.email).where(Expert.slack_user_id == user)).first()
    name = row.name if row is not None else user
    email = (row.email or "").strip() if row is not None else ""
    if "@" not in email:
        raise PagerDutyRejected(f"the people directory has no email for {name}, so I cannot tell which PagerDuty "
                                "user they are")
    pd_user = _pd_user_id(services, email)
    if pd_user is None:
        raise PagerDutyRejected(f"PagerDuty has no user with the email {email} ({name})")
    return pd_user, name


def _responders(services: Services, payload: dict[str, Any], email: str | None, who: str
                ) -> tuple[dict[str, Any], str | None, list[str], list[str]]:
    """The responder request for the people named in ``text`` (Slack ids, comma-separated): (body, the email to
    send it as, the names asked, why the others could not be). Its requester is the person who escalated when
    PagerDuty knows them, else the bot's PagerDuty user (``WARROOM_PAGERDUTY_FROM``)."""
    asked: list[tuple[str, str]] = []
    missing: list[str] = []
    for uid in dict.fromkeys(u for u in str(payload.get("text") or "").split(",") if u.strip()):
        try:
            asked.append(_pd_user(services, uid.strip()))
        except PagerDutyRejected as exc:
            missing.append(str(exc))
    if not asked:
        raise PagerDutyRejected("; ".join(missing) or "nobody to ask")
    requester = _pd_user_id(services, email) if email else None
    if requester is None:
        email, bot = None, str(services.settings.pagerduty_from or "")
        requester = _pd_user_id(services, bot) if "@" in bot else None
        if requester is None:
            raise PagerDutyRejected("a responder request needs a requester, and PagerDuty has a user neither for "
                                    f"{who} nor for the bot (WARROOM_PAGERDUTY_FROM={bot or 'unset'})")
    body = {"requester_id": requester,
            "message": f"Escalated in Slack by {who}: incident #{payload['incident_id']}. Please join.",
            "responder_request_targets": [{"responder_request_target": {"id": pid, "type": "user_reference"}}
                                          for pid, _ in asked]}
    return body, email, [name for _, name in asked], missing


def _write(services: Services, payload: dict[str, Any]) -> tuple[str, str | None]:
    """Send one change; return what it did, for the timeline, and what the card's thread must be told (a part
    that could not be done), if anything. Raises the two errors above."""
    pd_id, action = str(payload["pd_incident"]), str(payload["action"])
    text = str(payload.get("text") or "")
    with services.db.session() as s:
        who, email = _person(s, payload.get("user"))
    if action == "note":
        method, path, body = "POST", f"/incidents/{pd_id}/notes", \
            {"note": {"content": f"{NOTE_MARK}{text} ({who}, in Slack)"[:25000]}}
    elif action == "assign":
        pd_user, assignee = _pd_user(services, text)
        method, path, body = "PUT", f"/incidents/{pd_id}", {"incident": {
            "type": "incident_reference", "assignments": [{"assignee": {"id": pd_user, "type": "user_reference"}}]}}
    elif action == "responders":
        body, email, asked, missing = _responders(services, payload, email, who)
        method, path = "POST", f"/incidents/{pd_id}/responder_requests"
    elif action == "urgency":
        if text not in ("high", "low"):
            raise PagerDutyRejected(f"not an urgency: {text[:20]!r}")
        method, path, body = "PUT", f"/incidents/{pd_id}", {"incident": {"type": "incident_reference", "urgency": text}}
    else:
        change: dict[str, Any] = {"type": "incident_reference", "status": ACTIONS[action]}
        if action == "resolve":
            change["resolution"] = f"Resolved in Slack by {who}" + (f": {text}" if text else "")
        method, path, body = "PUT", f"/incidents/{pd_id}", {"incident": change}
    resp = _request(services.settings, method, path, body, email)
    if email and _unknown_requester(resp):  # not a PagerDuty user by that email: act as the bot
        _NOT_PD_USERS.add(email)
        log.info("PagerDuty has no user %s: acting as %s", email, services.settings.pagerduty_from or "the token")
        email = None
        resp = _request(services.settings, method, path, body)
    if resp.status_code == 429 or resp.status_code >= 500:
        raise PagerDutyUnavailable(_error(resp))
    if resp.status_code >= 400:
        said = _error(resp)
        if "already resolved" in said.lower():  # resolved in PagerDuty first (its webhook lost or late)
            if action == "resolve":
                return f"PagerDuty incident {pd_id} was already resolved there", None
            # not a failure to warn about ("it may go on paging" would be wrong): it pages nobody any more
            return (f"PagerDuty incident {pd_id} is already resolved there: did not {_WORDS.get(action, action)} it",
                    f":information_source: PagerDuty incident {pd_id} is already resolved there, so I did not "
                    f"{_WORDS.get(action, action)} it. If this incident is over, resolve it here too.")
        raise PagerDutyRejected(said)
    by = f"as {who}" if email else f"for {who}"  # acting as the person in PagerDuty, or as the bot on their behalf
    if action == "urgency":
        return f"PagerDuty incident {pd_id} urgency set to {text} ({by})", None
    if action == "assign":
        return f"PagerDuty incident {pd_id} assigned to {assignee} ({by})", None
    if action == "responders":
        not_asked = "; ".join(missing)
        return (f"PagerDuty incident {pd_id}: asked {', '.join(asked)} to respond ({by})"
                + (f"; not asked: {not_asked}" if missing else ""),
                f":warning: PagerDuty paged {', '.join(asked)}, but not everyone I named: {esc(not_asked)}. "
                "Call them, or add them as responders in PagerDuty." if missing else None)
    return (f"Note added to PagerDuty incident {pd_id} ({by})" if action == "note"
            else f"PagerDuty incident {pd_id} {ACTIONS[action]} ({by})"), None


def _record(services: Services, payload: dict[str, Any], text: str, ok: bool,
            tell: str | None = None) -> tuple[str | None, str | None]:
    """Write the outcome on the timeline (with this job's id, and what the thread must be told); return the card's
    (channel, thread)."""
    with services.db.session() as s:
        inc = s.get(Incident, int(payload["incident_id"]))
        if inc is None:
            return None, None
        s.add(TimelineEvent(incident_id=inc.id, at=utcnow(), kind="pagerduty", text=text[:2000],
                            data={"pd_incident": payload.get("pd_incident"), "action": payload.get("action"),
                                  "ok": ok, "job": jobs.CURRENT_JOB.get(), "tell": tell}))
        return _card_of(services, inc)


def _card_of(services: Services, inc: Incident) -> tuple[str | None, str | None]:
    return inc.channel_id or services.settings.slack_incident_channel, inc.card_ts


def _card(services: Services, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """The incident card's (channel, thread)."""
    with services.db.session() as s:
        inc = s.get(Incident, int(payload["incident_id"]))
        return (None, None) if inc is None else _card_of(services, inc)


def _done_by_this_job(services: Services, payload: dict[str, Any]) -> tuple[str, str | None] | None:
    """(what was done, what the thread must be told) when an earlier attempt of this job already made the change."""
    job = jobs.CURRENT_JOB.get()
    if job is None or payload.get("incident_id") is None:
        return None
    with services.db.session() as s:
        for ev in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == int(payload["incident_id"]),
                                                        TimelineEvent.kind == "pagerduty")):
            data = ev.data or {}
            if data.get("job") == job and data.get("ok"):
                return ev.text, data.get("tell")
    return None


def register(services: Services) -> None:
    """Register ``pagerduty.sync`` on the runner."""

    def sync(payload: dict[str, Any]) -> None:
        from bot.handlers import deliver

        again = _done_by_this_job(services, payload)
        if again is None:
            done, tell = _write(services, payload)
            channel, thread = _record(services, payload, done, True, tell)
            log.info("%s", done)
        else:  # retried after the change went through: only the thread's message is left to send
            (done, tell), (channel, thread) = again, _card(services, payload)
            log.info("%s (already done by this job; not sent again)", done)
        if tell and channel is not None:
            deliver(services, SkillResult(title=f"PagerDuty incident {payload.get('pd_incident')}", summary=tell,
                                          data={"incident_id": payload.get("incident_id")}),
                    {"channel": channel, "thread_ts": thread})

    def give_up(payload: dict[str, Any], exc: BaseException) -> None:
        from bot.handlers import deliver

        pd_id, action = payload.get("pd_incident"), str(payload.get("action"))
        if _done_by_this_job(services, payload) is not None:  # PagerDuty has it; only telling the thread failed
            log.warning("PagerDuty incident %s: %s went through, but the thread was not told (%s)", pd_id, action, exc)
            return
        why = f"PagerDuty refused it ({exc})" if isinstance(exc, PagerDutyRejected) else \
            f"PagerDuty did not answer ({exc})"
        channel, thread = _record(services, payload, f"Could not {_WORDS.get(action, action)} PagerDuty "
                                  f"incident {pd_id}: {why}", False)
        if channel is None:
            return
        then = {"acknowledge": "It may go on paging: acknowledge it in PagerDuty.",
                "resolve": "Resolve it in PagerDuty, or it stays open there.",
                "urgency": f"Set its urgency to {payload.get('text')} in PagerDuty.",
                "assign": "Reassign it in PagerDuty, or it goes on paging the person before.",
                "responders": "Add them as responders in PagerDuty, or call them."}.get(
                    action, "Add it there by hand.")
        what = f"I could not {_WORDS.get(action, action)} PagerDuty incident {pd_id}"
        deliver(services, SkillResult(
            title=f"PagerDuty incident {pd_id} not updated", summary=f":warning: {what}: {esc(why)}. {then}",
            data={"incident_id": payload.get("incident_id")}), {"channel": channel, "thread_ts": thread})

    services.runner.register("pagerduty.sync", sync, on_give_up=give_up)
