"""Deploy freezes: set, lifted, and which hold at a moment (``knowledge.models.DeployFreeze``).

A freeze covers one service or every service (``service`` None). It holds from ``starts_at`` until ``ends_at`` (none:
until lifted), unless lifted before. Service names are compared lowercased, like reported changes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from knowledge.models import ChangeEvent, DeployFreeze, Service, utcnow

__all__ = ["holding", "upcoming", "freeze", "lift", "as_dict", "broken_by", "notice_jobs", "NOTICE"]

_MAX = 200  # freezes shown at once; more than this is a mistake somewhere
NOTICE = "freeze.notice"  # its start and end told to the teams (bot/freeze_jobs.py)


def holding(s: Session, services: Iterable[str] | None = None, at: dt.datetime | None = None) -> list[DeployFreeze]:
    """The freezes that hold at ``at`` (now): on any of ``services``, or on every service; ``services`` None: all of
    them. Every-service freezes first, then by service and start."""
    at = at or utcnow()
    q = select(DeployFreeze).where(DeployFreeze.starts_at <= at, DeployFreeze.lifted_at.is_(None)
                                   | (DeployFreeze.lifted_at > at),
                                   DeployFreeze.ends_at.is_(None) | (DeployFreeze.ends_at > at))
    if services is not None:
        names = sorted({x.lower() for x in services})
        q = q.where(or_(DeployFreeze.service.is_(None), func.lower(DeployFreeze.service).in_(names)))
    rows = s.scalars(q.order_by(DeployFreeze.starts_at, DeployFreeze.id).limit(_MAX)).all()
    return sorted(rows, key=lambda f: (f.service is not None, f.service or "", f.starts_at, f.id))


def upcoming(s: Session, services: Iterable[str] | None = None, within: dt.timedelta = dt.timedelta(days=30),
             at: dt.datetime | None = None) -> list[DeployFreeze]:
    """The freezes set to start after ``at`` (now) and within ``within``, not cancelled: on any of ``services`` or on
    every service (``services`` None: all), soonest first."""
    at = at or utcnow()
    q = select(DeployFreeze).where(DeployFreeze.starts_at > at, DeployFreeze.starts_at <= at + within,
                                   DeployFreeze.lifted_at.is_(None))
    if services is not None:
        names = sorted({x.lower() for x in services})
        q = q.where(or_(DeployFreeze.service.is_(None), func.lower(DeployFreeze.service).in_(names)))
    return list(s.scalars(q.order_by(DeployFreeze.starts_at, DeployFreeze.id).limit(_MAX)))


def freeze(s: Session, services: Iterable[str] | None, *, until: dt.datetime | None, reason: str,
           by: str | None, starts: dt.datetime | None = None) -> list[DeployFreeze]:
    """Freeze ``services`` (None: every service) from ``starts`` (default now) until ``until`` (None: until lifted).
    A service already frozen now (for a freeze from now), or one with a freeze set to start at the same moment, gets
    the new end and reason rather than a second freeze."""
    now = utcnow().replace(microsecond=0)
    starts = max(starts or now, now)
    out = []
    for name in ([None] if services is None else sorted({x.lower() for x in services})):
        scope = None if name is None else [name]
        same = [f for f in (holding(s, scope, now) if starts == now else upcoming(s, scope, starts - now, now))
                if f.service == name and (starts == now or f.starts_at == starts)]
        row = same[0] if same else DeployFreeze(service=name, starts_at=starts)
        row.ends_at, row.reason, row.created_by = until, reason or row.reason or "", by or row.created_by
        if not same:
            s.add(row)
        out.append(row)
    s.flush()
    return out


def lift(s: Session, services: Iterable[str] | None, *, by: str | None, later: bool = False,
         starting: tuple[dt.datetime, dt.datetime] | None = None) -> list[DeployFreeze]:
    """Lift the freezes holding now on ``services`` (a freeze of every service is not lifted by naming one), or with
    ``services`` None every freeze holding now; ``later``: cancel those set to start later instead (only those
    ``starting`` within that span, when given)."""
    now = utcnow()  # to the microsecond: a deploy reported the same second before counts as during it
    scope = None if services is None else list(services)
    rows = upcoming(s, scope, dt.timedelta(days=3650), now) if later else holding(s, scope, now)
    if later and starting is not None:
        rows = [f for f in rows if starting[0] <= f.starts_at < starting[1]]
    if services is not None:
        names = {x.lower() for x in services}
        rows = [f for f in rows if f.service is not None and f.service in names]  # a freeze of all stays
    for f in rows:
        f.lifted_at, f.lifted_by = now, by
    s.flush()
    return rows


def broken_by(s: Session, f: DeployFreeze, limit: int = 20) -> list[ChangeEvent]:
    """The deploys and rollbacks reported while ``f`` held, newest first."""
    end = min(x for x in (f.ends_at, f.lifted_at, utcnow()) if x is not None)
    q = select(ChangeEvent).where(ChangeEvent.at >= f.starts_at, ChangeEvent.at < end,
                                  ChangeEvent.kind.in_(("deploy", "rollback")))
    if f.service is not None:
        q = q.where(ChangeEvent.service == f.service)
    return list(s.scalars(q.order_by(ChangeEvent.at.desc()).limit(limit)))


def as_dict(f: DeployFreeze) -> dict[str, Any]:
    """A freeze for the API."""
    def iso(t: dt.datetime | None) -> str | None:
        return t.isoformat() + "Z" if t is not None else None

    return {"id": f.id, "service": f.service, "reason": f.reason, "starts_at": iso(f.starts_at),
            "ends_at": iso(f.ends_at), "created_by": f.created_by, "lifted_at": iso(f.lifted_at),
            "lifted_by": f.lifted_by}


def _channel(s: Session, f: DeployFreeze, fallback: str) -> str:
    if f.service is None:
        return fallback
    svc = s.scalar(select(Service).where(Service.name == f.service))
    return (svc.team.slack_channel if svc is not None and svc.team is not None else None) or fallback


def notice_jobs(s: Session, rows: list[DeployFreeze], fallback_channel: str) -> list[dict[str, Any]]:
    """The ``freeze.notice`` jobs for freezes just set (``follow_up_jobs`` entries, with their delays)."""
    now = utcnow()
    by: dict[tuple[str, str, dt.datetime], list[int]] = defaultdict(list)
    for f in rows:
        channel = _channel(s, f, fallback_channel)
        if f.starts_at > now:
            by[(channel, "start", f.starts_at)].append(f.id)
        if f.ends_at is not None:
            by[(channel, "end", f.ends_at)].append(f.id)
    return [{"kind": NOTICE, "payload": {"channel": channel, "edge": edge, "at": at.isoformat(), "freezes": ids},
             "dedup_key": f"{NOTICE}:{channel}:{edge}:{at.isoformat()}:{min(ids)}"[:300],
             "delay_s": max(0.0, (at - now).total_seconds())} for (channel, edge, at), ids in by.items()]
