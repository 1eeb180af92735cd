"""Who comes after the person on call: "what's the escalation policy for payments-api?", "who's the secondary for
payments?", "who is the backup for ingest?", "escalation chain of postgres-main".

For each service asked about (a team stands for its services; under an incident's card, its service): who is on
call for its team now and until when, who takes over after them, then the service's escalation chain in order (the
catalogue's ``escalation``: who routing and the ack reminders turn to when the person on call does not answer),
and the team's channel. The same sources as ``/oncall`` and routing, so the answers agree.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import people
from knowledge.models import Incident, Service, Team
from skills.base import Section, SkillError, SkillResult, esc, slack_when

__all__ = ["ESCALATION_ASKED", "escalation"]

# "what's the escalation policy for X?", "escalation chain of X", "who's the secondary for X?", "who is the backup
# on call for X?", "who is after bob?", "who's second on call?"
ESCALATION_ASKED = re.compile(
    r"^\W*(?:(?:what(?:'s|\s+is|\s+are)\s+|show\s+(?:me\s+)?)?(?:the\s+|our\s+)?escalation(?:s|\s+(?:policy|policies|"
    r"chain|path|order|list|ladder|plan))?\s+(?:for|of|on)\b"
    r"|(?:what(?:'s|\s+is)\s+|show\s+(?:me\s+)?)(?:the\s+|our\s+)?escalation(?:\s+(?:policy|chain|path|order))?\W*$"
    r"|who(?:'s|\s+is|\s+are)\s+(?:the\s+|our\s+)?(?:secondary|backup|second|next\s+in\s+line|escalation(?:\s+contact)?)"
    r"(?:\s+on[- ]?call)?\b)", re.I)
_LIMIT = 5


def _services(s: Session, text: str, incident_id: int | None) -> list[Service]:
    names = people.services_in_text(session=s, text=text)
    if not names:  # "the secondary for payments": the team's services
        for team in people.teams_in_text(session=s, text=text):
            row = s.scalar(select(Team).where(Team.name == team))
            names += [x.name for x in (row.services if row is not None else [])]
    if not names and incident_id is not None and (inc := s.get(Incident, incident_id)) is not None \
            and inc.service_name:
        names = [inc.service_name]
    found = [svc for n in dict.fromkeys(names) if (svc := people.service_named(session=s, name=n)) is not None]
    return found[:_LIMIT]


def escalation(s: Session, text: str, incident_id: int | None = None) -> SkillResult:
    """The escalation of each service (or team's services) named, or of the incident's service.

    Raises:
        SkillError: nothing named that the catalogue knows.
    """
    found = _services(s, text, incident_id)
    if not found:
        raise SkillError("Escalation of which service? Name one (or a team), e.g. `@warroom what's the escalation "
                         "policy for payments-api?`, or ask under an incident's card.")
    sections = []
    oncall: dict[str, list[people.OnCall]] = {}
    for svc in found:
        team = svc.team
        lines: list[str] = []
        if team is None:
            lines.append("No owning team in the catalogue: nobody is on call for it.")
        else:
            if team.name not in oncall:
                oncall[team.name] = people.oncall_by_team(session=s, team=team.name)
            for r in oncall[team.name]:
                who = ", ".join(f"<@{u}> ({esc(n)})" for u, n in r.people)
                lines.append(f"1. On call for *{esc(r.team)}*: " + (
                    f"{who}" + (f" until {slack_when(r.until)}" if r.until else "") if who else "nobody now"))
                if r.next_people:
                    lines.append("   then " + ", ".join(f"<@{u}> ({esc(n)})" for u, n in r.next_people)
                                 + (f" from {slack_when(r.next_at)}" if r.next_at else ""))
        chain = people.escalation_for(session=s, service=svc)
        on_now = {u for rows in oncall.values() for r in rows for u, _ in r.people}
        for i, e in enumerate(chain, start=2):
            off = "" if e.active else " _(deactivated: skipped)_"
            now = " (on call now)" if e.slack_user_id in on_now else ""
            lines.append(f"{i}. <@{e.slack_user_id}> ({esc(e.name)}){now}{off}")
        if not chain:
            lines.append("No escalation chain in the catalogue: after the person on call, the team's channel.")
        if team is not None and team.slack_channel:
            lines.append(f"Team channel: <#{team.slack_channel}>")
        sections.append(Section(f"{esc(svc.name)}" + (f" ({esc(team.name)})" if team else ""), tuple(lines)))
    return SkillResult(
        title="Escalation" + (f": {found[0].name}" if len(found) == 1 else ""),
        summary=("Whoever is on call first; if they do not answer, the chain in order (routing and the ack "
                 "reminders use the same). `/oncall <team> tomorrow` shows another moment."),
        sections=tuple(sections),
        data={"services": [svc.name for svc in found]})
