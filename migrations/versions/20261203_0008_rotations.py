"""rotations and team_calendars: a team's rotation kept as declared, and its imported iCal file, so their shifts can
be written ahead for as long as they run

A rotation used to be written out as shift rows eight weeks ahead at import, and nothing wrote more: eight weeks
after the last import nobody was on call (``/oncall``: "nobody on call now"; routing lost its on-call lead; no
handover). The definition now lives in ``rotations`` and ``knowledge/rotations.py`` tops its shifts up every day.
The same for a calendar's repeating events (one shift per occurrence up to 180 days ahead): the calendar imported
last is kept in ``team_calendars`` and expanded again every hour, and one imported from a URL (a scheduling tool's
feed) is fetched again.

A database that already holds rotation shifts gets its definition back from them: the first shift's start and
length, and the members in the order they took turns (the shortest repeating cycle). A team whose rotation
shifts are not back to back and of one length (not written by warroom) is left as it is.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _cycle(seq: list[int]) -> list[int]:
    for p in range(1, len(seq) + 1):
        if all(seq[i] == seq[i % p] for i in range(len(seq))):
            return seq[:p]
    return seq


def _as_datetime(value: object) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def upgrade() -> None:
    rotations = op.create_table(
        "rotations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=False, unique=True),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("shift_hours", sa.Integer(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("next_turn", sa.Integer(), nullable=False),
    )
    op.create_table(
        "team_calendars",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("ics", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
    )
    bind = op.get_bind()
    shifts: dict[int, list[tuple[dt.datetime, dt.datetime, int]]] = {}
    for team_id, start, end, expert_id in bind.execute(sa.text(
            "SELECT team_id, starts_at, ends_at, expert_id FROM oncall_shifts WHERE source = 'rotation' "
            "ORDER BY team_id, starts_at")):
        shifts.setdefault(team_id, []).append((_as_datetime(start), _as_datetime(end), expert_id))
    rows = []
    for team_id, turns in shifts.items():
        length = turns[0][1] - turns[0][0]
        hours = length.total_seconds() / 3600
        if hours != int(hours) or hours < 1 or any(
                a != turns[0][0] + i * length or b - a != length for i, (a, b, _) in enumerate(turns)):
            continue
        rows.append({"team_id": team_id, "starts_at": turns[0][0], "timezone": None, "shift_hours": int(hours),
                     "members": _cycle([e for _, _, e in turns]), "next_turn": len(turns)})
    if rows:
        op.bulk_insert(rotations, rows)


def downgrade() -> None:
    op.drop_table("team_calendars")
    op.drop_table("rotations")
