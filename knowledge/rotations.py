"""On-call rotations: kept as declared, their turns written as shift rows ahead of time and topped up every hour.

A rotation (``rotations:`` in an experts file) is its members taking turns of ``shift_hours`` (a week unless
``days`` or ``hours`` says otherwise) from ``start``. With a ``timezone`` the start is a wall-clock time there, and
every handover keeps that local time when the clocks change (a Monday 09:00 Berlin handover stays at 09:00, not
08:00 or 10:00 for half the year). The rest of the bot reads shift rows (``knowledge.people.shifts_now``, routing,
the shift-change handover), so :func:`top_up` writes the turns up to ``HORIZON`` ahead; the bot's workers call it at
start and every hour (``bot/shift_handover.py``), and an import or the seed writes the first ones.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from knowledge.models import OnCallShift, Rotation, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["HORIZON", "HISTORY", "turn_start", "define_rotation", "top_up"]

HORIZON = dt.timedelta(weeks=8)  # turns written ahead of now
HISTORY = dt.timedelta(days=365)  # a rotation that began earlier is written from the turn running a year ago


def turn_start(rot: Rotation, k: int) -> dt.datetime:
    """When turn ``k`` begins, as naive UTC."""
    wall = rot.starts_at + dt.timedelta(hours=rot.shift_hours * k)
    if not rot.timezone:
        return wall
    return wall.replace(tzinfo=ZoneInfo(rot.timezone)).astimezone(dt.UTC).replace(tzinfo=None)


def _write(session: Session, rot: Rotation, until: dt.datetime) -> int:
    """Write the turns of ``rot`` that begin before ``until``, from ``next_turn`` on; return how many."""
    n, start = 0, turn_start(rot, rot.next_turn)
    while start < until and rot.members:
        end = turn_start(rot, rot.next_turn + 1)
        session.add(OnCallShift(team_id=rot.team_id, expert_id=int(rot.members[rot.next_turn % len(rot.members)]),
                                starts_at=start, ends_at=end, source="rotation"))
        rot.next_turn, start, n = rot.next_turn + 1, end, n + 1
    return n


def define_rotation(session: Session, *, team_id: int, start: dt.datetime, members: list[int],
                    shift_hours: int = 168, timezone: str | None = None, now: dt.datetime | None = None) -> int:
    """Make this the team's rotation (replacing the one before and the shifts it had written) and write its turns up
    to ``HORIZON`` ahead; return how many shifts were written. ``start`` is naive: UTC, or wall-clock time in
    ``timezone``."""
    now = now or utcnow()
    session.execute(delete(OnCallShift).where(OnCallShift.team_id == team_id, OnCallShift.source == "rotation"))
    rot = session.scalar(select(Rotation).where(Rotation.team_id == team_id)) or Rotation(team_id=team_id)
    rot.starts_at, rot.timezone, rot.shift_hours, rot.members = start, timezone, shift_hours, list(members)
    # skip the turns over before HISTORY (a start years back would otherwise write thousands of rows)
    k = max(0, int((now - HISTORY - start).total_seconds() // (shift_hours * 3600)) - 1)
    while k > 0 and turn_start(rot, k) > now - HISTORY:
        k -= 1
    rot.next_turn = k
    session.add(rot)
    return _write(session, rot, now + HORIZON)


def top_up(session: Session, *, now: dt.datetime | None = None) -> int:
    """Write every rotation's turns up to ``HORIZON`` ahead of ``now``; return how many shifts were written."""
    until = (now or utcnow()) + HORIZON
    return sum(_write(session, rot, until) for rot in session.scalars(
        select(Rotation).order_by(Rotation.id).with_for_update()).all())  # replicas: one writes each turn
