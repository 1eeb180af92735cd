"""Load the bundled sample world (or any file of the same shape) into the knowledge base."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.models import Expert, Incident, OnCallShift, Postmortem, Service, Team, TimelineEvent
from knowledge.rotations import define_rotation
from knowledge.yamlfile import safe_load

__all__ = ["SAMPLE_WORLD", "load_world", "seed"]

SAMPLE_WORLD = Path(__file__).resolve().parent / "sample_world" / "world.yaml"


def load_world(path: Path = SAMPLE_WORLD) -> dict[str, Any]:
    """Parse a world file."""
    with path.open(encoding="utf-8") as f:
        data = safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def _ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _postmortem_markdown(inc: dict[str, Any]) -> str:
    return (
        f"# Postmortem: {inc['title']}\n\n## Summary\n{inc['description']}\n\n"
        f"## Impact\nSEV{inc['severity']} on {inc['service']} from {inc['started']} to {inc['resolved']}.\n\n"
        f"## Root cause\n{inc['root_cause']}\n\n## Resolution\n{inc['resolution']}\n"
    )


def seed(session: Session, world: dict[str, Any] | None = None) -> dict[str, int]:
    """Insert the world's teams, services, experts, on-call shifts and past incidents.

    Idempotent: rows that exist (by name, user id or incident id) are left alone.
    """
    world = world or load_world()
    counts = {"teams": 0, "services": 0, "experts": 0, "shifts": 0, "incidents": 0}
    teams: dict[str, Team] = {t.name: t for t in session.scalars(select(Team))}
    for t in world.get("teams", []):
        if t["name"] not in teams:
            teams[t["name"]] = Team(name=t["name"], slack_channel=t.get("slack_channel"),
                                    description=t.get("description", ""))
            session.add(teams[t["name"]])
            counts["teams"] += 1
    session.flush()
    services = {s.name: s for s in session.scalars(select(Service))}
    for s in world.get("services", []):
        if s["name"] not in services:
            services[s["name"]] = Service(name=s["name"], team_id=teams[s["team"]].id, tier=s.get("tier", 2),
                                          description=s.get("description", ""), escalation=s.get("escalation", []),
                                          depends_on=s.get("depends_on", []))
            session.add(services[s["name"]])
            counts["services"] += 1
    experts = {e.slack_user_id: e for e in session.scalars(select(Expert))}
    for e in world.get("experts", []):
        if e["slack_user_id"] not in experts:
            experts[e["slack_user_id"]] = Expert(
                slack_user_id=e["slack_user_id"], name=e["name"], email=e.get("email"), team_id=teams[e["team"]].id,
                services=e.get("services", []), skills=e.get("skills", []),
                timezone=e.get("timezone", "UTC"), active=e.get("active", True))
            session.add(experts[e["slack_user_id"]])
            counts["experts"] += 1
    session.flush()
    for rot in world.get("rotations", []):
        team = teams[rot["team"]]
        if session.scalar(select(OnCallShift.id).where(OnCallShift.team_id == team.id).limit(1)):
            continue
        counts["shifts"] += define_rotation(session, team_id=team.id, start=_ts(rot["start"]),
                                           members=[experts[m].id for m in rot["members"]])
    for inc in world.get("incidents", []):
        if session.get(Incident, inc["id"]) is not None:
            continue
        started, resolved = _ts(inc["started"]), _ts(inc["resolved"])
        svc = services.get(inc["service"])
        row = Incident(
            id=inc["id"], title=inc["title"], description=inc["description"], severity=inc["severity"],
            status="resolved", service_id=svc.id if svc else None, service_name=inc["service"],
            alert_name=inc.get("alert_name"), source="import", assignee=inc.get("assignee"),
            created_at=started, detected_at=started, acknowledged_at=started + dt.timedelta(minutes=4),
            mitigated_at=resolved - dt.timedelta(minutes=5), resolved_at=resolved,
            root_cause=inc.get("root_cause", ""), resolution=inc.get("resolution", ""),
            findings={"resolved_by_runbook": inc["runbook"]} if inc.get("runbook") else {},
        )
        session.add(row)
        session.flush()
        for at, kind, text in ((started, "created", "Incident opened"),
                               (row.acknowledged_at, "ack", f"Acknowledged by <@{inc.get('assignee')}>"),
                               (resolved, "resolve", "Resolved: " + inc.get("resolution", ""))):
            session.add(TimelineEvent(incident_id=row.id, at=at, kind=kind, text=text, actor=inc.get("assignee")))
        session.add(Postmortem(
            incident_id=row.id, version=1, status="published", title=inc["title"], summary=inc["description"],
            root_cause=inc.get("root_cause", ""), resolution=inc.get("resolution", ""),
            markdown=_postmortem_markdown(inc), fields={"services": [inc["service"]]}, author=inc.get("assignee"),
            created_at=resolved, published_at=resolved))
        counts["incidents"] += 1
    # Keep PostgreSQL's id sequence ahead of the explicit incident ids.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text("SELECT setval(pg_get_serial_sequence('incidents','id'), "
                             "GREATEST((SELECT MAX(id) FROM incidents), 1))"))
    counts["runbooks"] = __import__("knowledge.runbook_store").runbook_store.seed_runbooks(session)  # issue 8
    return counts
