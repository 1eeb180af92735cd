"""The searchable documents of the knowledge base, read from the database.

Each incident, each incident's latest published postmortem and each active runbook (latest
version per slug) becomes one :class:`Doc` with a stable key (``incident:101``), the text that is
embedded and keyword-indexed, the structured signals (service, alert name, log templates) and a
fingerprint of everything that matters for search, so a sync can tell added, edited and deleted
documents apart without re-embedding the rest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.models import Incident, Postmortem, Runbook

__all__ = ["Doc", "collect_documents", "log_templates", "clean_text"]

# Incidents that have not been resolved yet are still searchable (a twin of an open incident is
# worth knowing about); the card shows the fix only for resolved ones.
_QUOTED = re.compile(r"'([^']{12,300})'|\"([^\"]{12,300})\"|`([^`]{12,300})`")
_VARIABLE = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"  # uuid
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"  # ip[:port]
    r"|\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b"  # hex
    r"|\b\d+(?:[.,:]\d+)*(?:ms|s|m|h|kb|mb|gb|tb|%)?\b",  # numbers with units
    re.I,
)
_SPACE = re.compile(r"\s+")
_BLOCK_LINE = re.compile(r"^\s{0,3}(?:#{1,6}(?:\s|$)|\|)")  # a Markdown heading, a table row
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s")
_MARKUP = re.compile(r"```[\w-]*|<https?://[^>|]+\|([^>]+)>|<https?://[^>]+>|https?://\S+|[#*`>|]+")


def clean_text(text: str) -> str:
    """Text as it is indexed: links, code-fence and Markdown marks removed, one line per sentence (a heading,
    list item or line without a full stop gets one), spaces collapsed. A prose line that goes on in lower case on
    the next line is one sentence wrapped: it is joined, not stopped ("... without downtime when the. deployment
    has ..." was indexed, and quoted in answers cut there)."""
    out: list[str] = []
    joinable = False  # the last unit is prose that may go on on the next line
    fenced = False
    for raw in text.splitlines():
        if raw.lstrip().startswith("```"):
            fenced, joinable = not fenced, False
        line = _SPACE.sub(" ", _MARKUP.sub(lambda m: m.group(1) or " ", raw)).strip()
        if not line:
            joinable = False
            continue
        block = fenced or bool(_BLOCK_LINE.match(raw))
        if joinable and not block and line[0].islower() and not _LIST_ITEM.match(raw):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
        joinable = not block and out[-1][-1] not in ".!?:;…"
    return " ".join(u if u[-1] in ".!?:;,…" else u + "." for u in out)


def _template(line: str) -> str:
    return _SPACE.sub(" ", _VARIABLE.sub("<*>", line.strip().lower()))[:200]


def log_templates(text: str, log_lines: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Log templates in a text: quoted log messages and explicit log lines, variables masked.

    Args:
        text: free text that may quote log messages (``Logs showed 'FATAL: ...'``).
        log_lines: raw log lines, when the caller has them.

    Returns:
        Distinct templates (numbers, ids, addresses replaced by ``<*>``), in order of appearance.
    """
    found = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
    out: list[str] = []
    for line in [*found, *log_lines]:
        t = _template(line)
        if len(t) >= 8 and t not in out:
            out.append(t)
    return tuple(out[:20])


@dataclass(frozen=True)
class Doc:
    """One searchable document."""

    key: str
    kind: str
    ref_id: str
    title: str
    text: str
    service: str | None = None
    alert_name: str | None = None
    severity: int | None = None
    created_at: str | None = None  # ISO 8601, UTC
    status: str = ""
    resolution: str = ""
    resolved_by: str | None = None
    incident_id: int | None = None
    postmortem_id: int | None = None
    templates: tuple[str, ...] = field(default_factory=tuple)
    services: tuple[str, ...] = field(default_factory=tuple)

    @property
    def link(self) -> str:
        """Where a person reads it."""
        if self.kind == "runbook":
            return f"runbook `{self.ref_id}`"
        if self.kind == "postmortem" and self.incident_id is not None:
            return f"postmortem of #{self.incident_id}"  # as `/postmortem show <incident>` and its page name it
        return f"{self.kind} #{self.ref_id}"

    def fingerprint(self) -> str:
        """Hash of every field that matters for search (an edit changes it)."""
        raw = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha1(raw.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Doc:
        d = dict(d)
        d["templates"] = tuple(d.get("templates") or ())
        d["services"] = tuple(d.get("services") or ())
        return cls(**d)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _incident_doc(inc: Incident, pm_id: int | None) -> Doc:
    resolved_by = (inc.findings or {}).get("resolved_by_runbook") or inc.assignee
    body = ". ".join(p.rstrip(".") for p in (inc.title, inc.description, inc.root_cause, inc.resolution) if p)
    return Doc(
        key=f"incident:{inc.id}", kind="incident", ref_id=str(inc.id), title=inc.title,
        text=clean_text(body), service=inc.service_name, alert_name=inc.alert_name, severity=inc.severity,
        created_at=_iso(inc.created_at), status=inc.status, resolution=inc.resolution or "",
        resolved_by=str(resolved_by) if resolved_by else None, incident_id=inc.id, postmortem_id=pm_id,
        templates=log_templates(inc.description or ""),
        services=(inc.service_name,) if inc.service_name else (),
    )


def _postmortem_doc(pm: Postmortem, inc: Incident | None) -> Doc:
    body = pm.markdown or " ".join(p for p in (pm.title, pm.summary, pm.root_cause, pm.resolution) if p)
    services = tuple(str(s) for s in (pm.fields or {}).get("services", []) if s)
    service = inc.service_name if inc is not None else (services[0] if services else None)
    resolved_by = ((inc.findings or {}).get("resolved_by_runbook") or inc.assignee) if inc is not None else None
    return Doc(
        key=f"postmortem:{pm.id}", kind="postmortem", ref_id=str(pm.id), title=pm.title or f"Postmortem {pm.id}",
        text=clean_text(body), service=service, alert_name=inc.alert_name if inc is not None else None,
        severity=inc.severity if inc is not None else None, created_at=_iso(pm.published_at or pm.created_at),
        status=pm.status, resolution=pm.resolution or "", resolved_by=str(resolved_by) if resolved_by else pm.author,
        incident_id=pm.incident_id, postmortem_id=pm.id, templates=log_templates(pm.summary or ""),
        services=services or ((service,) if service else ()),
    )


def _runbook_doc(rb: Runbook) -> Doc:
    steps = "\n".join(str(s.get("name") or s.get("title") or s) if isinstance(s, dict) else str(s)
                      for s in (rb.steps or []))
    # title, body, step names and alert names each end a sentence ("Restart a service's pods (rolling restart)
    # Restart a service." was quoted as one)
    body = "\n\n".join(p for p in (rb.title, rb.body, steps, "\n".join(map(str, rb.alert_names or []))) if p)
    services = tuple(str(s) for s in (rb.services or []) if s)
    alerts = [str(a) for a in (rb.alert_names or []) if a]
    return Doc(
        key=f"runbook:{rb.slug}", kind="runbook", ref_id=rb.slug, title=rb.title, text=clean_text(body),
        service=services[0] if services else None, alert_name=alerts[0] if alerts else None,
        created_at=_iso(rb.created_at), status="active", resolution=steps.replace("\n", "; ")[:300], resolved_by=None,
        services=services,
    )


def collect_documents(session: Session) -> list[Doc]:
    """Every searchable document now in the database, in a stable order."""
    incidents = {i.id: i for i in session.scalars(select(Incident).order_by(Incident.id))}
    latest_pm: dict[int | str, Postmortem] = {}
    for pm in session.scalars(select(Postmortem).where(Postmortem.status.in_(("published", "withdrawn")))
                              .order_by(Postmortem.version, Postmortem.id)):
        latest_pm[pm.incident_id if pm.incident_id is not None else f"pm{pm.id}"] = pm
    latest_pm = {k: pm for k, pm in latest_pm.items() if pm.status == "published"}  # withdrawn: out of search
    docs: list[Doc] = []
    for inc in incidents.values():
        pm = latest_pm.get(inc.id)
        docs.append(_incident_doc(inc, pm.id if pm is not None else None))
    for pm in latest_pm.values():
        docs.append(_postmortem_doc(pm, incidents.get(pm.incident_id) if pm.incident_id is not None else None))
    runbooks: dict[str, Runbook] = {}
    for rb in session.scalars(select(Runbook).where(Runbook.active.is_(True)).order_by(Runbook.version)):
        runbooks[rb.slug] = rb
    docs.extend(_runbook_doc(rb) for rb in runbooks.values())
    return docs
