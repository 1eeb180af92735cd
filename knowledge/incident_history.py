"""Load an incident history (incident, alerts, timeline, channel messages, runbook runs) from a dict.

Used to replay written scenarios into the knowledge base for the postmortem evaluation, the
benchmark and the demo. Times in the dict are minutes after ``start`` (an ISO string), so a
scenario reads like a story and stays small.

Shape::

    {"title": ..., "service": ..., "severity": 2, "start": "2026-06-01T10:00:00",
     "detected": 3, "acknowledged": 6, "mitigated": 30, "resolved": 41,   # minutes, or null
     "assignee": "U0ALICE", "root_cause": "", "resolution": "...", "description": "...",
     "findings": {"logs": {"heading": ..., "lines": [...]}},
     "alerts": [{"name": ..., "at": 0, "summary": ..., "service": ...}],
     "events": [{"at": 0, "kind": "created", "text": ..., "actor": ...}],
     "messages": [{"at": 5, "user": "U0BOB", "text": ..., "key": false}],
     "runbooks": [{"slug": ..., "at": 20, "status": "succeeded", "by": ..., "approved_by": ...}]}
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from knowledge.models import Alert, AuditRecord, Incident, RunbookExecution, SlackMessage, TimelineEvent

__all__ = ["load_history"]

PERMALINK = "https://warroom-standin.slack.com/archives/{channel}/p{ts}"


def _at(start: dt.datetime, minutes: float | None) -> dt.datetime | None:
    return None if minutes is None else start + dt.timedelta(minutes=float(minutes))


def load_history(session: Any, data: dict[str, Any], *, channel: str = "C0INCIDENTS",
                 incident_id: int | None = None) -> int:
    """Insert one incident history; returns the incident id. ``session`` is an open ORM session."""
    start = dt.datetime.fromisoformat(str(data["start"]))
    inc = Incident(
        title=str(data["title"]), description=str(data.get("description", "")),
        severity=int(data.get("severity", 3)), status=str(data.get("status", "resolved")),
        service_name=data.get("service"), alert_name=data.get("alert_name"),
        source=str(data.get("source", "slack")), channel_id=channel, assignee=data.get("assignee"),
        created_by=data.get("created_by"), created_at=start,
        detected_at=_at(start, data.get("detected")), acknowledged_at=_at(start, data.get("acknowledged")),
        mitigated_at=_at(start, data.get("mitigated")), resolved_at=_at(start, data.get("resolved")),
        root_cause=str(data.get("root_cause", "")), resolution=str(data.get("resolution", "")),
        findings=dict(data.get("findings") or {}),
    )
    if incident_id is not None:
        inc.id = incident_id
    session.add(inc)
    session.flush()
    for a in data.get("alerts", []):
        at = _at(start, a.get("at", 0))
        session.add(Alert(incident_id=inc.id, source=a.get("source", "alertmanager"),
                          fingerprint=a.get("fingerprint", f"{inc.id}-{a['name']}-{a.get('at', 0)}"),
                          name=a["name"], service_name=a.get("service", data.get("service")),
                          severity=a.get("severity"), summary=a.get("summary", ""), starts_at=at,
                          received_at=at, status=a.get("status", "resolved")))
    for e in data.get("events", []):
        session.add(TimelineEvent(incident_id=inc.id, at=_at(start, e.get("at", 0)), kind=e["kind"],
                                  text=e.get("text", ""), actor=e.get("actor"), key=bool(e.get("key", False))))
    for i, m in enumerate(data.get("messages", [])):
        at = _at(start, m.get("at", 0))
        assert at is not None
        ts = f"{at.replace(tzinfo=dt.UTC).timestamp():.6f}"
        ts = ts[:-6] + f"{i:06d}"
        link = PERMALINK.format(channel=channel, ts=ts.replace(".", ""))
        session.add(SlackMessage(channel_id=channel, ts=ts, user_id=m.get("user"), text=m["text"],
                                 permalink=link, incident_id=inc.id, key=bool(m.get("key", False)), created_at=at))
        session.add(TimelineEvent(incident_id=inc.id, at=at, kind="message", text=m["text"], actor=m.get("user"),
                                  permalink=link, key=bool(m.get("key", False)), data={"ts": ts}))
    for r in data.get("runbooks", []):
        at = _at(start, r.get("at", 0))
        assert at is not None
        ex = RunbookExecution(runbook_slug=r["slug"], runbook_version=int(r.get("version", 1)), incident_id=inc.id,
                              requested_by=r.get("by", "U0UNKNOWN"), approved_by=r.get("approved_by"),
                              status=r.get("status", "succeeded"), dry_run=bool(r.get("dry_run", False)),
                              channel_id=channel, requested_at=at, started_at=at,
                              finished_at=at + dt.timedelta(minutes=2), output=r.get("output", ""))
        session.add(ex)
        session.flush()
        session.add(AuditRecord(at=at, actor=ex.requested_by, action="runbook.requested", subject=ex.runbook_slug,
                                execution_id=ex.id))
        if ex.approved_by:
            session.add(AuditRecord(at=at, actor=ex.approved_by, action="runbook.approved",
                                    subject=ex.runbook_slug, execution_id=ex.id))
        session.add(AuditRecord(at=at + dt.timedelta(minutes=2), actor="warroom", action=f"runbook.{ex.status}",
                                subject=ex.runbook_slug, execution_id=ex.id))
    session.flush()
    return inc.id
