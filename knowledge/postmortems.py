"""Postmortems in the knowledge base: versioned rows (draft, edited, published).

Every change writes a new version, so the history of a postmortem is kept: a regenerated draft,
a person's edit, a confirmed root cause and the publication each get their own row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from knowledge.models import Incident, Postmortem, Runbook, utcnow

__all__ = ["PostmortemDoc", "latest", "history", "add_version", "publish", "search", "list_latest", "latest_fields",
           "STATUSES", "withdraw"]

# withdrawn: a published postmortem taken back (a publish by mistake, a wrong root cause): out of search until it is
# published again; the versions before it stay, as every version does
STATUSES = ("draft", "edited", "published", "withdrawn")


@dataclass(frozen=True)
class PostmortemDoc:
    """What a writer produces (stored as one version)."""

    title: str
    summary: str
    root_cause: str
    resolution: str
    markdown: str
    fields: dict[str, Any]
    writer: str


def latest(session: Session, *, incident_id: int, status: str | None = None) -> Postmortem | None:
    """The newest version of an incident's postmortem (optionally of one status)."""
    q = select(Postmortem).where(Postmortem.incident_id == incident_id)
    if status:
        q = q.where(Postmortem.status == status)
    return session.scalar(q.order_by(Postmortem.version.desc()).limit(1))


def history(session: Session, *, incident_id: int) -> list[Postmortem]:
    """All versions, oldest first."""
    return list(session.scalars(select(Postmortem).where(Postmortem.incident_id == incident_id)
                                .order_by(Postmortem.version)))


def add_version(session: Session, *, incident_id: int, doc: PostmortemDoc, status: str,
                author: str | None) -> Postmortem:
    """Store ``doc`` as the next version of the incident's postmortem."""
    if status not in STATUSES:
        raise ValueError(f"unknown postmortem status {status!r}")
    top = session.scalar(select(func.max(Postmortem.version)).where(Postmortem.incident_id == incident_id))
    row = Postmortem(incident_id=incident_id, version=(top or 0) + 1, status=status, title=doc.title[:500],
                     summary=doc.summary, root_cause=doc.root_cause, resolution=doc.resolution,
                     markdown=doc.markdown, fields=dict(doc.fields), author=author, writer=doc.writer,
                     published_at=utcnow() if status == "published" else None)
    session.add(row)
    session.flush()
    return row


def publish(session: Session, *, incident_id: int, author: str | None) -> Postmortem | None:
    """Publish the newest version (as a new ``published`` version); None when there is no draft."""
    top = latest(session, incident_id=incident_id)
    if top is None:
        return None
    if top.status == "published":
        return top
    return add_version(session, incident_id=incident_id, status="published", author=author,
                       doc=_restated(top, "published", published_from_version=top.version))


def _restated(top: Postmortem, status: str, **fields: Any) -> PostmortemDoc:
    """``top``'s content as a version of ``status`` (its markdown's status line says so)."""
    markdown = top.markdown
    for old in ("draft", "edited", "published", "withdrawn"):
        markdown = markdown.replace(f"_Status: {old}", f"_Status: {status}", 1)
    return PostmortemDoc(top.title, top.summary, top.root_cause, top.resolution, markdown,
                         {**top.fields, **fields}, top.writer)


def withdraw(session: Session, *, incident_id: int, author: str | None, why: str = "") -> Postmortem | None:
    """Take a published postmortem back (a new ``withdrawn`` version of the newest one): out of search until it is
    published again. None when it was never published; the withdrawn version itself when it already is."""
    top = latest(session, incident_id=incident_id)
    if top is None or latest(session, incident_id=incident_id, status="published") is None:
        return None
    if top.status == "withdrawn":
        return top
    return add_version(session, incident_id=incident_id, author=author,
                       doc=_restated(top, "withdrawn", withdrawn_from_version=top.version, withdrawn_why=why[:500]),
                       status="withdrawn")


def list_latest(session: Session, *, limit: int = 200) -> list[Postmortem]:
    """The newest version of every postmortem, newest incident first."""
    newest = (select(Postmortem.incident_id, func.max(Postmortem.version).label("v"))
              .group_by(Postmortem.incident_id).subquery())
    q = (select(Postmortem).join(newest, (Postmortem.incident_id == newest.c.incident_id)
                                 & (Postmortem.version == newest.c.v))
         .order_by(Postmortem.incident_id.desc()).limit(limit))
    return list(session.scalars(q))


def latest_fields(session: Session) -> list[Any]:
    """(incident_id, status, created_at, fields) of the newest version of every postmortem, oldest incident
    first, without the documents themselves: what the action-item lists read, however many postmortems there are."""
    newest = (select(Postmortem.incident_id, func.max(Postmortem.version).label("v"))
              .group_by(Postmortem.incident_id).subquery())
    q = (select(Postmortem.incident_id, Postmortem.status, Postmortem.created_at, Postmortem.fields)
         .join(newest, (Postmortem.incident_id == newest.c.incident_id) & (Postmortem.version == newest.c.v))
         .order_by(Postmortem.incident_id))
    return list(session.execute(q).all())


def search(session: Session, *, query: str, limit: int = 50) -> dict[str, list[Any]]:
    """Plain word search (every word must appear) over incidents, postmortems and runbooks."""
    words = [w for w in query.lower().split() if w][:8]
    if not words:
        return {"incidents": [], "postmortems": [], "runbooks": []}

    def all_words(*cols: Any) -> Any:
        conds = [or_(*(func.lower(c).contains(w, autoescape=True) for c in cols)) for w in words]
        return conds

    inc = list(session.scalars(select(Incident).where(*all_words(Incident.title, Incident.description,
                                                                 Incident.root_cause, Incident.service_name))
                               .order_by(Incident.id.desc()).limit(limit)))
    pms = [p for p in list_latest(session, limit=1000)
           if all(any(w in (c or "").lower() for c in (p.title, p.markdown)) for w in words)][:limit]
    rbs = list(session.scalars(select(Runbook).where(*all_words(Runbook.title, Runbook.body, Runbook.slug))
                               .order_by(Runbook.slug).limit(limit)))
    return {"incidents": inc, "postmortems": pms, "runbooks": rbs}
