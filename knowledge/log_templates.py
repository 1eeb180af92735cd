"""Log templates remembered across pastes, uploads and incidents, so "new" means new across time.

A template is known when its id is stored, or when a stored template of the same length matches it
token by token with ``<*>`` on either side (a template that grew one more variable since, or one
that is a more specific form of a stored one, is not new).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from knowledge.models import LogTemplate, utcnow

__all__ = ["TemplateSeen", "known_template_ids", "record_templates", "WILDCARD"]

WILDCARD = "<*>"


@dataclass(frozen=True)
class TemplateSeen:
    """One template as seen in one batch of lines."""

    template_id: str
    template: str
    count: int
    severity: str
    category: str
    example: str


def _matches(a: Sequence[str], b: Sequence[str]) -> bool:
    return len(a) == len(b) and all(x == y or x == WILDCARD or y == WILDCARD for x, y in zip(a, b, strict=True))


def known_template_ids(s: Session, *, templates: Sequence[tuple[str, str]]) -> set[str]:
    """Which of ``(template_id, template)`` the knowledge base has seen before."""
    if not templates:
        return set()
    ids = [t for t, _ in templates]
    known = set(s.scalars(select(LogTemplate.template_id).where(LogTemplate.template_id.in_(ids))))
    rest = [(tid, text.split(" ")) for tid, text in templates if tid not in known]
    if rest:
        lengths = {len(toks) for _, toks in rest}
        stored: dict[int, list[list[str]]] = {}
        for text in s.scalars(select(LogTemplate.template).where(LogTemplate.n_tokens.in_(lengths))):
            toks = text.split(" ")
            stored.setdefault(len(toks), []).append(toks)
        for tid, toks in rest:
            if any(_matches(toks, other) for other in stored.get(len(toks), ())):
                known.add(tid)
    return known


def record_templates(s: Session, *, seen: Sequence[TemplateSeen], incident_id: int | None = None) -> int:
    """Store or update the templates; returns how many were inserted.

    Safe when two incidents record the same new template at once (two triage jobs of one storm): new ids are
    inserted with "on conflict do nothing", and the counts are added in the UPDATE itself, so neither
    transaction fails on the unique id nor loses the other's count."""
    if not seen:
        return 0
    now = utcnow()
    ids = list(dict.fromkeys(t.template_id for t in seen))
    have = set(s.scalars(select(LogTemplate.template_id).where(LogTemplate.template_id.in_(ids))))
    fresh = {t.template_id: t for t in seen if t.template_id not in have}
    inserted = 0
    if fresh:
        dialect = s.get_bind().dialect.name
        insert = {"sqlite": sqlite_insert, "postgresql": pg_insert}.get(dialect)
        values = [dict(template_id=t.template_id, template=t.template[:4000], n_tokens=len(t.template.split(" ")),
                       severity=t.severity, category=t.category, example=t.example[:500], count=0,
                       first_incident_id=incident_id, first_seen=now, last_seen=now) for t in fresh.values()]
        if insert is not None:
            stmt = insert(LogTemplate).values(values).on_conflict_do_nothing(index_elements=["template_id"])
            inserted = len(s.execute(stmt.returning(LogTemplate.template_id)).all())
        else:  # another database: plain inserts (a concurrent duplicate fails this transaction, as before)
            s.add_all(LogTemplate(**v) for v in values)
            s.flush()
            inserted = len(values)
    rows = {r.template_id: r for r in s.scalars(select(LogTemplate).where(LogTemplate.template_id.in_(ids)))}
    counts: dict[str, int] = {}
    last: dict[str, TemplateSeen] = {}
    for t in seen:  # one id seen twice in a batch: its counts summed, its latest reading kept
        counts[t.template_id] = counts.get(t.template_id, 0) + t.count
        last[t.template_id] = t
    for tid, t in last.items():
        row = rows[tid]
        row.count = LogTemplate.count + counts[tid]  # computed by the database at flush: no lost update
        row.severity, row.category, row.last_seen = t.severity, t.category, now
    s.flush()  # one flush for the batch
    return inserted
