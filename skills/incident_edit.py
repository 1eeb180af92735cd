"""What people learn about an incident after it opened: a better title, the service it is really on.

An alert names an incident after its rule (``HighErrorRate``) and the service its labels carry; the people on it
soon know better ("it's postgres-main, not payments-api"). ``/incident rename [id] <title>`` and ``/incident
service [id] <service>`` (in words: "rename #101 to checkout 500s", "move #101 to postgres-main", "this is on
postgres-main") change them, each on the timeline with the old value and with how to undo it. A new service runs
triage again (its runbooks, similar incidents, owners and on-call are another service's), refreshes the card and
the channel topic, and names who is on call for the service's team now, so the team that owns it hears of it.
Later alerts of the same group still join the incident: grouping keys do not change.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from skills.base import SkillError, SkillRequest, SkillResult, esc
from skills.redact import mask_secrets
from skills.service_deps import service_hint

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from skills.base import SkillContext

__all__ = ["IncidentEdits", "RENAME_SAID", "SERVICE_SAID", "said_as_command", "surely_said"]

_THIS = r"(?:(?:incident\s+)?#?(?P<{0}>\d{{1,9}})|this(?:\s+incident|\s+one)?|it)"
# "rename #101 to checkout 500s", "retitle this: pool exhausted", "change the title of #101 to ..."
RENAME_SAID = re.compile(rf"^\W*(?:rename|retitle|(?:change|set|update)\s+the\s+title\s+of)\s+{_THIS.format('id')}"
                         r"\s*(?:\bto\b|\bas\b|[:\u2013\u2014-])?\s*(?P<title>\S.*)$", re.I | re.S)
_NOT_SEV = r"(?!sev|p[0-5]\b|severity)"  # "move it to sev1", "this is a sev1 incident": a severity
# "move #101 to postgres-main", "change the service of this to dns", "this is on postgres-main, not payments-api",
# "#101 is really a kafka incident"
SERVICE_SAID = re.compile(
    rf"^\W*(?:(?:move|reassign)\s+{_THIS.format('id')}\s+to\s+(?:the\s+)?(?:service\s+)?{_NOT_SEV}(?P<svc>[\w.-]+)"
    rf"|(?:change|set)\s+the\s+service\s+(?:of\s+{_THIS.format('id2')}\s+)?to\s+(?P<svc2>[\w.-]+)"
    # "this is on X" only when X looks like a service: a hyphenated name, "X service/incident", or "..., not Y"
    rf"|{_THIS.format('id3')}(?:\s+is|'s)\s+(?:really\s+|actually\s+)?(?:on|in|an?)\s+{_NOT_SEV}"
    r"(?:(?P<svc3>[\w.]+-[\w.-]+)|(?P<svc4>[\w.-]+)(?=\s+(?:service|incident|issue|problem|outage)\b|\s*,?\s+not\s))"
    r"(?:\s+(?:service|incident|issue|problem|outage))?)"
    r"(?P<why>(?:\s*,?\s+not\s+(?:on\s+|in\s+)?[\w.-]+)?(?:\s*(?:[:;,.!]|\s[-\u2014]\s|\s(?:because|since)\s)\s*.*)?)$",
    re.I | re.S)


def said_as_command(text: str) -> tuple[str, str, str | None] | None:
    """("rename" | "service", the command's text, the service named when only the sentence's shape says it is one)
    for a sentence that renames or moves an incident. "this is a kafka issue" is a move only if kafka is a service
    ("this is a duplicate incident" is not): the caller checks the third item against the services it knows."""
    if m := RENAME_SAID.match(text):
        return "rename", (f"#{m.group('id')} " if m.group("id") else "") + m.group("title"), None
    if m := SERVICE_SAID.match(text):
        ref = m.group("id") or m.group("id2") or m.group("id3")
        svc = m.group("svc") or m.group("svc2") or m.group("svc3") or m.group("svc4")
        why = re.sub(r"^\s*,?\s*(?:not\s+(?:on\s+|in\s+)?[\w.-]+)?\s*", "", m.group("why") or "")
        return ("service", (f"#{ref} " if ref else "") + svc + (f" {why}" if why.strip(" :;,.!") else ""),
                m.group("svc4"))
    return None


def surely_said(text: str) -> bool:
    """A rename or a move whatever the names in it are ("move #101 to dns", "it's on postgres-main")."""
    edit = said_as_command(text)
    return edit is not None and edit[2] is None


class IncidentEdits:
    """``/incident rename`` and ``/incident service``, mixed into ``IncidentSkill``: they use its ``_target``
    (which incident), ``_event`` (the timeline) and ``_done`` (the answer, and the card refreshed)."""

    _target: Any
    _event: Any
    _done: Any

    @staticmethod
    def _edit_said(text: str, ctx: SkillContext) -> tuple[str, str] | None:
        """The command a sentence says (see ``said_as_command``); None when it names no known service where only
        its shape said it would."""
        from knowledge.people import service_named

        edit = said_as_command(text)
        if edit is None:
            return None
        if edit[2] is not None:
            with ctx.db.session() as s:
                if service_named(session=s, name=edit[2]) is None:
                    return None
        return edit[0], edit[1]

    def _rename(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        inc, left = self._target(s, request, rest.split())
        title = re.sub(r"^(?:(?:to|as)\b|[:\u2013\u2014-])\s*", "", " ".join(left).strip(), flags=re.I)
        title = mask_secrets(title.strip().strip("\"'\u201c\u201d\u2018\u2019`").strip())[:300]
        if not title:
            raise SkillError("Usage: `/incident rename [id] <new title>`, e.g. `/incident rename 101 checkout 500s: "
                             "payments-api pool exhausted`.")
        if title == inc.title:
            return self._done(inc, f"Incident #{inc.id} is called that already.")
        old, inc.title = inc.title, title
        self._event(s, inc, "rename", f"Renamed by <@{request.user_id}> (was \"{old[:300]}\")", request.user_id)
        return self._done(inc, f"Incident #{inc.id} is now *{esc(title)}* (was \"{esc(old[:200])}\"). "
                               f"(By mistake? `/incident rename {inc.id} {esc(old[:200])}`)")

    def _service(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        from knowledge.people import oncall_by_team, service_named, team_named
        from skills.incident import _why

        usage = "`/incident service [id] <service>`, e.g. `/incident service 101 postgres-main`"
        inc, left = self._target(s, request, rest.split())
        filler = ("to", "the", "service", "on", "in", "is")
        while left and left[0].lower() in filler:
            left = left[1:]
        if not left:
            raise SkillError(f"Which service? {usage}.")
        name, left = left[0].strip(" .,;:!?"), left[1:]
        while left and left[0].lower() in filler:  # "to the dns service because ..."
            left = left[1:]
        svc = service_named(session=s, name=name)
        if svc is None:
            team = team_named(session=s, name=name)
            if team is not None:
                theirs = ", ".join(f"`{x.name}`" for x in team.services) or "none"
                raise SkillError(f"`{esc(name[:40])}` is a team; an incident is on a service: one of theirs "
                                 f"({theirs}). {usage}.")
            raise SkillError(f"I know no service called `{esc(name[:40])}`.{service_hint(s, name)} {usage}.")
        why = _why(left)
        if inc.service_name == svc.name:
            return self._done(inc, f"Incident #{inc.id} is on {esc(svc.name)} already.")
        old = inc.service_name
        inc.service_id, inc.service_name = svc.id, svc.name
        self._event(s, inc, "service", f"Service {old or 'unknown'} -> {svc.name} by <@{request.user_id}>{why}",
                    request.user_id)
        tell = ""
        if inc.status != "resolved" and svc.team is not None:
            on = next(iter(oncall_by_team(session=s, team=svc.team.name)), None)
            people = [f"<@{uid}>" for uid, _ in (on.people if on else ()) if uid not in (inc.assignee,
                                                                                         request.user_id)]
            tell = (f" {esc(svc.name)} is the {esc(svc.team.name)} team's: on call now {', '.join(people)}."
                    if people else f" {esc(svc.name)} is the {esc(svc.team.name)} team's"
                    + ("." if on and on.people else ": nobody is on call there now."))
        undo = f"`/incident service {inc.id} {old}`" if old else None
        return self._done(inc, f"Incident #{inc.id} is on *{esc(svc.name)}* now (was {esc(old or 'unknown')}).{tell} "
                          "Its suggestions are being worked out again for the new service."
                          + (f" (By mistake? {undo})" if undo else ""),
                          follow_up_jobs=[{"kind": "incident.triage", "payload": {"incident_id": inc.id},
                                           "dedup_key": f"triage:{inc.id}:service:{uuid.uuid4().hex[:8]}"}])
