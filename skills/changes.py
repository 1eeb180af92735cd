"""What changed: deploys, config pushes, feature flags and rollbacks, the first suspects of an incident.

CI/CD reports them (``POST /api/v1/changes``, ``warroom changes add``; ``report`` checks and keeps one). They show
on an incident's card when they touched its service or one it depends on in the hours before it opened, and are
asked about in Slack: "what changed before #113?", "what changed?" under a card, "any deploys on payments-api in
the last 2h?", "recent changes", ``/incident changes [id]``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import changes, people
from knowledge.models import ChangeEvent, Incident, utcnow
from skills.base import (
    INCIDENT_REF,
    BaseSkill,
    Section,
    SkillContext,
    SkillError,
    SkillRequest,
    SkillResult,
    duration,
    esc,
    outsider,
    slack_when,
)
from skills.clock_words import lookback
from skills.deploy_check import DEPLOY_ASKED, deploy_check
from skills.deploy_freeze import FREEZE_ASKED, FREEZE_LIFT, FREEZE_SET, freeze_words
from skills.redact import mask_secrets

__all__ = ["ChangesSkill", "CHANGES_ASKED", "VERSION_ASKED", "versions", "checked", "report", "change_line", "answer",
           "MAX_FUTURE", "MAX_AGE"]

MAX_FUTURE = dt.timedelta(minutes=10)  # clocks differ a little; a change an hour ahead is a wrong time zone
MAX_AGE = dt.timedelta(days=90)
_THINGS = r"(?:changes?|deploy(?:ment)?s?|releases?|rollouts?|rollbacks?|config(?:uration)?\s+changes?|flags?)"
# "what changed before #113?", "what changed?", "what was deployed today?", "any deploys on payments-api?",
# "recent changes", "did anyone deploy payments-api?", "was there a deploy?", "show me the deploys of the last 2h"
CHANGES_ASKED = re.compile(
    r"^\W*(?:what(?:'s|\s+has|\s+have)?\s+(?:changed|been\s+(?:deployed|changed|released|rolled\s+out))"
    r"|what\s+(?:was|were|got)\s+(?:deployed|changed|released|rolled\s+(?:out|back))"
    rf"|(?:were\s+there\s+|was\s+there\s+|are\s+there\s+|any\s+)(?:any\s+)?(?:recent\s+)?(?:an?\s+)?{_THINGS}"
    r"|(?:did|has)\s+(?:any|some)(?:one|body)\s+(?:deploy|deployed|change|changed|release|released|roll)"
    rf"|(?:(?:show|list|give)\s+(?:me\s+)?|what(?:'s|\s+is|\s+was|\s+were|\s+are)\s+)?(?:the\s+)?(?:recent|latest|last)"
    rf"\s+{_THINGS}"
    rf"|(?:show|list|give)\s+(?:me\s+)?(?:the\s+)?{_THINGS}\b"
    # "was anything deployed before #113?", "has anything changed?", "anything deployed recently?", "who deployed
    # last?", "when was payments-api last deployed?"
    r"|(?:(?:was|has|is)\s+)?(?:anything|something)\s+(?:been\s+)?(?:deployed|changed|released|rolled\s+(?:out|back))"
    r"|who\s+(?:deployed|changed|released|rolled\s+(?:out|back))\b"
    r"|when\s+was\s+.{1,80}?\s+last\s+(?:deployed|changed|released|rolled\s+(?:out|back)))", re.I)
# "what version of payments-api is deployed?", "which version is ingest running?", "current version of X", "what's
# live for checkout-web?" (they went to the knowledge base: a postmortem passage)
VERSION_ASKED = re.compile(
    r"^\W*(?:(?:what|which)(?:'s|\s+is)?\s+(?:the\s+)?(?:current\s+|latest\s+|deployed\s+|live\s+|running\s+)?"
    r"(?:version|build|release|tag|sha|commit)s?\s+(?:of|for|on|is)\b"
    r"|(?:the\s+)?(?:current|deployed|live|running)\s+(?:version|build|release)s?\s+(?:of|for|on)\b"
    r"|what(?:'s|\s+is)\s+(?:live|running|deployed|out)\s+(?:in\s+prod(?:uction)?\s+)?(?:for|on)\b"
    # "what's the latest deploy on payments-api?", "show me the last release of ingest" (one: the newest)
    r"|(?:(?:show|give)\s+(?:me\s+)?|what(?:'s|\s+is|\s+was)\s+)?(?:the\s+)?(?:latest|last|most\s+recent|newest)\s+"
    r"(?:deploy(?:ment)?|release|rollout)\s+(?:of|for|on|to)\b)", re.I)
_VERSIONED = ("deploy", "rollback")
_WHEN_LAST = re.compile(r"^\W*when\s+was\s+.{1,80}?\s+last\s+(?:deployed|changed|released|rolled)", re.I)

def checked(*, service: str, summary: str, kind: str = "deploy", version: str | None = None,
            author: str | None = None, url: str | None = None, at: dt.datetime | None = None, source: str = "api",
            external_id: str | None = None) -> dict[str, Any]:
    """One change's fields, checked and made ready to keep (secrets masked, times naive UTC): the keyword arguments
    of ``knowledge.changes.record``.

    Raises:
        SkillError: a field a person must fix (unknown kind, empty summary, a URL that is not http(s), a time too far
        ahead or too old).
    """
    def clean(v: str | None) -> str | None:  # a lone surrogate ("\udb4e") cannot be stored as UTF-8: "?"
        return v.encode("utf-8", "replace").decode("utf-8") if v else v

    service, summary = clean(service) or "", clean(summary) or ""
    version, author, url, external_id = clean(version), clean(author), clean(url), clean(external_id)
    kind = (kind or "deploy").strip().lower()
    if kind not in changes.KINDS:
        raise SkillError(f"`kind` is one of {', '.join(changes.KINDS)}; not `{esc(kind[:40])}`.")
    name = " ".join(service.split()).lower()
    if not name or len(name) > 200 or not re.fullmatch(r"[\w.:/-]+", name):
        raise SkillError("`service` is the service's name as in the catalogue, e.g. `payments-api`.")
    text = mask_secrets(" ".join(summary.split()))[:500]
    if not text:
        raise SkillError("`summary` says what changed, e.g. `payments-api v1.4.2: connection pool 20 -> 50`.")
    try:
        parts = urlsplit(url) if url else None
    except ValueError:  # "http://[": not a URL at all
        parts = None
    if url and (parts is None or parts.scheme not in ("http", "https") or not parts.netloc):
        raise SkillError("`url` is an http(s) link to the change (the pipeline run, the pull request).")
    now = utcnow()
    if at is not None:
        try:
            at = at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at
        except (OverflowError, ValueError):  # year 1 at +05:00 is before the calendar starts
            raise SkillError("`at` is not a time a change can have: send it in UTC.") from None
        if at > now + MAX_FUTURE:
            raise SkillError(f"`at` is {duration((at - now).total_seconds())} from now: send UTC, or the time with "
                             "its offset (`2026-12-04T14:05:00+01:00`).")
        if at < now - MAX_AGE:
            raise SkillError(f"`at` is older than {MAX_AGE.days} days: too old to matter to an incident.")
    return {"service": name, "summary": text, "kind": kind,
            "version": mask_secrets(version)[:200] if version else None,
            "author": mask_secrets(author)[:200] if author else None,
            "url": mask_secrets(url)[:1000] if url else None, "at": at, "source": source[:64],
            "external_id": external_id[:200] if external_id else None}


def report(s: Session, **fields: Any) -> tuple[ChangeEvent, bool, bool]:
    """Check (:func:`checked`) and keep one change; returns it, whether it is new (False: the same ``external_id``
    was reported before) and whether its service is one the catalogue knows.

    Raises:
        SkillError: a field a person must fix.
    """
    ready = checked(**fields)
    row, created = changes.record(s, **ready)
    return row, created, people.service_named(session=s, name=ready["service"]) is not None


def change_line(n: changes.Near, opened: dt.datetime | None = None) -> str:
    """One change for people: kind, service (and through which dependency), version, author, what, when."""
    c = n.change
    head = f"*{esc(c.kind)}* {esc(c.service)}" + (f" {esc(c.version)}" if c.version else "")
    if len(n.path) > 1:
        head += f" (a dependency: {' → '.join(esc(p) for p in n.path)})"
    line = head + (f" by {esc(c.author)}" if c.author else "") + f": {esc(c.summary[:200])}"
    if opened is not None:
        gap = (opened - c.at).total_seconds()
        line += (f" · {duration(gap)} before it opened" if gap >= 0 else f" · {duration(-gap)} after it opened")
    else:
        line += f" · {slack_when(c.at)}"
    if c.url:
        line += f" · <{c.url.replace('>', '%3E').replace('|', '%7C')}|link>"
    return line


def _span(text: str) -> tuple[dt.timedelta, str]:
    if _WHEN_LAST.match(text):  # "when was payments-api last deployed?": as far back as changes are kept for this
        return MAX_AGE, f"the last {MAX_AGE.days} days"
    return lookback(text, MAX_AGE) or (dt.timedelta(hours=24), "the last 24 hours")


def answer(ctx: SkillContext, text: str, incident_id: int | None = None, user_id: str | None = None) -> SkillResult:
    """The changes an incident's span saw (named ``#113``, or the incident the question is under), or those of the
    services named (a team: its services; "our services", "mine": the asker's team's; none: all) over a span ("last
    2h", "today"; 24 hours by default)."""
    ref = INCIDENT_REF.search(text)
    with ctx.db.session() as s:
        # "what changed on our services?": the asker's team's
        scope = people.asker_scope(session=s, text=INCIDENT_REF.sub(" ", text), user_id=user_id)
        about = int(ref.group(1)) if ref else incident_id if scope is None else None
        if about is not None:
            inc = s.get(Incident, about)
            if inc is None:
                raise SkillError(f"There is no incident #{about}.")
            if not inc.service_name:
                raise SkillError(f"Incident #{inc.id} names no service, so no changes can be tied to it: "
                                 f"`/incident service {inc.id} <service>` sets it.")
            found = changes.for_incident(s, inc, limit=15)
            lines = tuple(change_line(n, inc.created_at) for n in found)
            where = f"{esc(inc.service_name)} and what it depends on"
            summary = (f"{len(found)} change(s) on {where} from {duration(changes.BEFORE.total_seconds())} before "
                       f"incident #{inc.id} opened ({slack_when(inc.created_at)}) to "
                       + ("its resolution." if inc.resolved_at else "now.") if found else
                       f"No change recorded on {where} from {duration(changes.BEFORE.total_seconds())} before "
                       f"incident #{inc.id} opened until {'its resolution' if inc.resolved_at else 'now'}.")
            title = f"Changes near incident #{inc.id}"
        else:
            span, said = _span(text)
            start = utcnow() - span
            names = list(scope.services) if scope is not None else [None]
            found = sorted({n.change.id: n for name in names for n in changes.near(s, name, start, utcnow(),
                                                                                    limit=25)}.values(),
                           key=lambda n: n.change.at, reverse=True)[:25]
            lines = tuple(change_line(n) for n in found)
            they = scope is not None and len(scope.services) > 1
            where = (f" {esc(scope.label)} and what {'they depend' if they else 'it depends'} on" if scope is not None
                     else "")
            summary = (f"{len(found)} change(s){where} in {said}." if found else
                       f"No change recorded{where} in {said}.")
            title = "Recent changes"
    if not found:
        summary += (" Changes come from CI/CD: `POST /api/v1/changes` or `warroom changes add` (see the README).")
    return SkillResult(title=title, summary=summary, sections=(Section("", lines),) if lines else (),
                       data={"changes": [n.change.id for n in found]})


def versions(ctx: SkillContext, text: str) -> SkillResult:
    """What each service named runs now, as far as its reported deploys and rollbacks say: the newest one (a deploy
    that did not finish said so, with the last one that did), and the two before it.

    Raises:
        SkillError: no service named.
    """
    with ctx.db.session() as s:
        known = set(s.scalars(select(ChangeEvent.service).distinct()).all())
        names = people.names_in_text(known, text) or people.known_services_in_text(session=s, text=text)
        if not names:
            raise SkillError("Which service? \"what version of payments-api is deployed?\"")
        lines: list[str] = []
        heads: list[str] = []
        for name in names[:5]:
            rows = s.scalars(select(ChangeEvent).where(
                ChangeEvent.service == name.lower(), ChangeEvent.kind.in_(_VERSIONED),
                ChangeEvent.at >= utcnow() - MAX_AGE).order_by(ChangeEvent.at.desc(), ChangeEvent.id.desc())
                .limit(10)).all()
            if not rows:
                heads.append(f"no deploy of {esc(name)} recorded in the last {MAX_AGE.days} days")
                continue
            done = [r for r in rows if not r.summary.startswith("did not finish")]
            top = rows[0]
            what = esc(top.version) if top.version else "no version given"
            if done and top is done[0]:
                heads.append(f"{esc(name)} runs {what} ({top.kind} {slack_when(top.at)}"
                             + (f" by {esc(top.author)}" if top.author else "") + ")")
            else:
                before = (f"; the last one that finished: {esc(done[0].version or 'no version given')} "
                          f"{slack_when(done[0].at)}" if done else "")
                heads.append(f"{esc(name)}: the last {top.kind} ({what}, {slack_when(top.at)}) did not finish, so "
                             f"it may run a mix{before}")
            lines += [change_line(changes.Near(r, (r.service,))) for r in rows[:3]]
    summary = "; ".join(heads) + ". From the deploys CI/CD reported (`POST /api/v1/changes`), not from the cluster."
    return SkillResult(title="Deployed versions", summary=summary[0].upper() + summary[1:],
                       sections=(Section("", tuple(lines)),) if lines else ())


class ChangesSkill(BaseSkill):
    """Say what changed (deploys, config, flags, rollbacks) before an incident or on a service."""

    name = "changes"
    commands = ()
    keywords = ()  # questions only (CHANGES_ASKED): "the deploy failed" is not a question about changes
    examples = ("@warroom what changed before #113?", "@warroom any deploys on payments-api in the last 2h?",
                "@warroom is it safe to deploy payments-api?",
                "@warroom freeze deploys on payments-api until monday 09:00: black friday",
                "@warroom is there a deploy freeze?")
    usage = ("Ask: \"what changed before #113?\", \"what changed?\" under a card, \"any deploys on payments-api in "
             "the last 2h?\", \"what changed on our services?\", \"when was payments-api last deployed?\", \"what "
             "version of payments-api is deployed?\", \"recent changes\"; or `/incident changes [id]`. Deploy freezes: "
             "\"freeze deploys on payments-api until monday 09:00: why\", \"lift the freeze\", \"is there a deploy "
             "freeze?\"")

    def score(self, text: str) -> float:
        return 0.9 if (CHANGES_ASKED.match(text) or VERSION_ASKED.match(text) or DEPLOY_ASKED.match(text)
                       or FREEZE_SET.match(text) or FREEZE_LIFT.match(text) or FREEZE_ASKED.match(text)) else 0.0

    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        if FREEZE_SET.match(request.text) or FREEZE_LIFT.match(request.text) or FREEZE_ASKED.match(request.text):
            if (not FREEZE_ASKED.match(request.text) and request.user_id
                    and (what := outsider(ctx, request.user_id)) is not None):
                raise SkillError(f"{what[0].upper()}{what[1:]} cannot set or lift deploy freezes here; ask a member of "
                                 "this workspace.")
            with ctx.db.session() as s:  # "freeze deploys on payments-api until monday" (skills/deploy_freeze.py)
                return freeze_words(s, request.text, request.user_id, request.incident_id,
                                    getattr(ctx.settings, "slack_incident_channel", ""))
        if DEPLOY_ASKED.match(request.text):  # "is it safe to deploy payments-api?" (skills/deploy_check.py)
            with ctx.db.session() as s:
                return deploy_check(s, request.text, request.user_id, request.incident_id)
        if VERSION_ASKED.match(request.text):  # "what version of payments-api is deployed?"
            return versions(ctx, request.text)
        return answer(ctx, request.text, request.incident_id, request.user_id)
