"""The triage flow: when an incident opens or grows, ask every triage skill what it sees.

Each skill that implements ``triage(facts, ctx)`` runs with a time limit; a skill that fails or
times out leaves a note instead of its finding, and the others still show. Findings are stored in
``incidents.findings[skill]`` for the card and the postmortem.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
from typing import Any

from sqlalchemy import select

from knowledge.models import Alert, Incident, utcnow
from skills.base import Finding, IncidentFacts, SkillContext
from skills.registry import Registry

__all__ = ["facts_for", "run_triage", "TRIAGE_TIMEOUT_S"]

log = logging.getLogger("warroom.triage")

TRIAGE_TIMEOUT_S = 8.0
_POOL = cf.ThreadPoolExecutor(max_workers=8, thread_name_prefix="warroom-triage")


def facts_for(ctx: SkillContext, incident_id: int) -> IncidentFacts | None:
    """What the knowledge base says about an incident, for the triage skills."""
    with ctx.db.session() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            return None
        alerts = s.scalars(select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id).limit(50)).all()
        labels: dict[str, Any] = {}
        annotations: dict[str, Any] = {}
        for a in alerts:
            labels.update(a.labels or {})
            annotations.update(a.annotations or {})
        intake = (inc.findings or {}).get("intake") or {}
        return IncidentFacts(
            incident_id=inc.id, title=inc.title, description=inc.description, service=inc.service_name,
            alert_name=inc.alert_name, severity=inc.severity, labels=labels, annotations=annotations,
            log_lines=tuple(intake.get("log_lines") or ()), metrics=dict(intake.get("metrics") or {}),
            alert_count=inc.alert_count or len(alerts))


def _as_dict(f: Finding) -> dict[str, Any]:
    return {"heading": f.heading, "lines": list(f.lines), "data": f.data,
            "actions": [{"action_id": a.action_id, "label": a.label, "value": a.value, "style": a.style}
                        for a in f.actions]}


def run_triage(ctx: SkillContext, registry: Registry, incident_id: int,
               timeout_s: float = TRIAGE_TIMEOUT_S) -> dict[str, dict[str, Any]]:
    """Run every triage skill on the incident, store and return their findings."""
    facts = facts_for(ctx, incident_id)
    if facts is None:
        return {}
    skills = [s for s in registry.skills if hasattr(s, "triage")]
    futures = {s.name: _POOL.submit(s.triage, facts, ctx) for s in skills}  # type: ignore[attr-defined]
    results: dict[str, dict[str, Any]] = {}
    for name, fut in futures.items():
        try:
            finding = fut.result(timeout=timeout_s)
        except cf.TimeoutError:
            results[name] = {"error": f"{name} took longer than {timeout_s:.0f}s; its result will show when ready"}
            continue
        except Exception as exc:  # noqa: BLE001 - the flow's boundary: one skill's failure is a note
            log.exception("triage skill %s failed on incident %s", name, incident_id)
            results[name] = {"error": f"{name} failed: {type(exc).__name__}"}
            continue
        if finding is not None:
            results[name] = _as_dict(finding)
    with ctx.db.session() as s:
        inc = s.get(Incident, incident_id)
        if inc is not None:
            merged = {k: v for k, v in (inc.findings or {}).items() if k not in futures}
            merged.update(results)
            merged["triaged_at"] = utcnow().isoformat(timespec="seconds")
            inc.findings = merged
    return results
