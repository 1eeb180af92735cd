"""What a service depends on and what depends on it: "what depends on postgres-main?", "what does payments-api
depend on?", "what breaks if redis-cache goes down?", "blast radius of dns".

The graph is the services' declared ``depends_on`` (``knowledge/service_graph.py``, the same walk that relates
open incidents on the card), followed a few hops both ways. Each service named comes with its team, whoever is on
call for it now, and its open incidents, so the answer is also whom to page and where it may already be burning.
"""

from __future__ import annotations

import dataclasses
import difflib
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import people
from knowledge.models import Incident, Service
from knowledge.people import OPEN_STATUSES
from knowledge.service_graph import MAX_HOPS, dependency_paths, graph
from skills.base import Section, SkillError, SkillResult, esc

__all__ = ["DEPS_ASKED", "INCIDENT_DEPS_ASKED", "asked_service", "dependencies", "incident_dependencies",
           "service_hint"]

_NAME = r"(?!(?:the|a|an|this|that|it|its|our|my|your|their|whether|how|what|which|when)\b)(?P<{}>[\w.-]+)"
# "what depends on X?", "which services use X?", "who calls X?", "what does X depend on?", "dependencies of X",
# "blast radius of X", "what breaks if X goes down?"
DEPS_ASKED = re.compile(
    r"^\W*(?:(?:what|which(?:\s+services?)?|who)\s+(?:depends|relies|calls|uses|needs|is\s+using|talks\s+to)"
    rf"(?:\s+on)?\s+{_NAME.format('a')}"
    rf"|what\s+(?:does|do)\s+{_NAME.format('b')}\s+(?:depend|rely|call)(?:\s+on)?"
    r"|(?:what(?:'s|\s+is|\s+are)\s+|show\s+(?:me\s+)?)?(?:the\s+)?(?:dependencies|deps|upstreams?|downstreams?|"
    rf"dependents|blast\s+radius|impact)\s+(?:of|for)\s+{_NAME.format('c')}"
    rf"|what\s+(?:would|will|could|might)?\s*(?:break|breaks|fail|fails|go\s+down)\s+if\s+{_NAME.format('d')}"
    r"\s+(?:goes|went|is|were|was|fails|failed|dies|died))\b", re.I)


# The same about an incident's service: "what's the blast radius of #113?", "blast radius?" or "what depends on
# this?" under its card (they got "I don't know": "#113" is no service name)
INCIDENT_DEPS_ASKED = re.compile(
    r"^\W*(?:(?:what(?:'s|\s+is|\s+are)\s+|show\s+(?:me\s+)?)?(?:the\s+|its\s+)?(?:blast\s+radius|dependencies|deps"
    r"|dependents|upstreams?|downstreams?)(?:\s+(?:of|for)\s+(?:(?:#|inc(?:ident)?[-\s#]*)(?P<id>\d{1,9})"
    r"|this(?:\s+incident)?|it|the\s+incident))?"
    r"|what\s+(?:depends|relies)\s+on\s+(?:this|it)(?:\s+(?:service|one))?"
    r"|what\s+(?:does|do)\s+(?:this|it)\s+(?:depend|rely)\s+on"
    r"|what\s+(?:else\s+)?(?:would|will|could|might)\s+(?:break|fail|go\s+down)(?:\s+(?:because\s+of|with)\s+"
    r"(?:this|it))?)\W*$", re.I)


def asked_service(text: str) -> str | None:
    """The service a dependency question names, or None when ``text`` is not one."""
    m = DEPS_ASKED.match(text)
    return next((g for g in m.groups() if g), None) if m else None


def service_hint(s: Session, name: str) -> str:
    """What to say about a service name nobody declared: the close ones, else the known ones."""
    known = list(s.scalars(select(Service.name).order_by(Service.name)))
    close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.6)
    return (f" Did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else
            f" Known services: {', '.join(f'`{k}`' for k in known[:20])}." if known else "")


def dependencies(s: Session, name: str) -> SkillResult:
    """``name``'s dependencies (what it calls, transitively) and dependents (what calls it: its blast radius),
    each with team, on-call now and open incidents.

    Raises:
        SkillError: no such service.
    """
    svc = people.service_named(session=s, name=name)
    if svc is None:
        raise SkillError(f"I know no service called `{esc(name[:40])}`.{service_hint(s, name)}")
    deps = graph(s)
    up = dependency_paths(deps, svc.name)
    down = dependency_paths(deps, svc.name, reverse=True)
    rows = {r.name.lower(): r for r in s.scalars(select(Service).where(Service.name.in_([*up, *down])))}
    open_on: dict[str, list[Incident]] = {}
    for inc in s.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES),
                                                Incident.service_name.in_([*up, *down, svc.name]))
                         .order_by(Incident.severity, Incident.id)):
        open_on.setdefault((inc.service_name or "").lower(), []).append(inc)
    oncall: dict[str, str] = {}

    def who(team: str | None) -> str:
        if not team:
            return "no team"
        if team not in oncall:
            found = people.oncall_by_team(session=s, team=team)
            names = [f"<@{u}>" for r in found for u, _ in r.people]
            oncall[team] = f"{esc(team)}, on call {', '.join(names)}" if names else f"{esc(team)}, nobody on call"
        return oncall[team]

    def line(service: str, path: tuple[str, ...]) -> str:
        row = rows.get(service)
        text = f"*{esc(row.name if row else service)}* ({who(row.team.name if row and row.team else None)})"
        if len(path) > 1:
            text += " via " + " → ".join(esc(p) for p in path[:-1])
        if incs := open_on.get(service):
            text += "; open: " + ", ".join(f"#{i.id} SEV{i.severity} {esc(i.title[:60])}" for i in incs[:3])
        return text

    def ordered(paths: dict[str, tuple[str, ...]]) -> list[str]:
        return [line(n, p[1:]) for n, p in sorted(paths.items(), key=lambda kv: (len(kv[1]), kv[0]))]

    direct_up = sum(1 for p in up.values() if len(p) == 2)
    direct_down = sum(1 for p in down.values() if len(p) == 2)
    summary = (f"{esc(svc.name)} ({who(svc.team.name if svc.team else None)}) depends on "
               + (f"{len(up)} service(s), {direct_up} directly" if up else "no declared service")
               + "; " + (f"{len(down)} service(s) depend on it, {direct_down} directly." if down
                         else "nothing declared depends on it."))
    burning = [i for n in up for i in open_on.get(n, [])]
    if burning:
        summary += " Open upstream: " + ", ".join(f"#{i.id} on {esc(i.service_name or '?')}" for i in burning[:5]) \
            + " (a possible cause of trouble here)."
    sections = tuple(Section(title, tuple(ordered(paths))) for title, paths in (
        ("It depends on", up), (f"Depends on it (within {MAX_HOPS} hops: what breaks if it goes down)", down))
        if paths)
    if not deps:
        summary += " No service declares `depends_on` yet: add it to the services file (`warroom experts import`)."
    return SkillResult(title=f"Dependencies of {svc.name}", summary=summary, sections=sections,
                       data={"service": svc.name, "depends_on": sorted(up), "dependents": sorted(down),
                             "open_upstream": [i.id for i in burning]})


def incident_dependencies(s: Session, incident_id: int | None) -> SkillResult:
    """:func:`dependencies` of an incident's service, said as its blast radius.

    Raises:
        SkillError: no incident named or here, no such incident, or an incident on no service.
    """
    if incident_id is None:
        raise SkillError("Of which service or incident? \"blast radius of payments-api\", \"blast radius of #113\", "
                         "or ask under the incident's card.")
    inc = s.get(Incident, incident_id)
    if inc is None:
        raise SkillError(f"There is no incident #{incident_id}.")
    if not inc.service_name:
        raise SkillError(f"Incident #{inc.id} names no service, so I cannot say what depends on it: "
                         f"`/incident service {inc.id} <service>` sets it.")
    if people.service_named(session=s, name=inc.service_name) is None:
        raise SkillError(f"Incident #{inc.id} is on `{esc(inc.service_name)}`, which no services file declares, so "
                         f"I know nothing that depends on it.{service_hint(s, inc.service_name)}")
    found = dependencies(s, inc.service_name)
    return dataclasses.replace(found, title=f"Blast radius of incident #{inc.id}",
                               summary=f"Incident #{inc.id} is on {esc(inc.service_name)}. {found.summary}",
                               data={**found.data, "incident_id": inc.id})
