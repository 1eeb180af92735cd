"""At an on-call shift change the team's channel gets the handover by itself: shifts imported through the real
CLI (iCal), the running bot plans the change, and at that second posts who hands over to whom and the team's
incidents; the next change is planned; no post when the same person stays on call."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from bot.render import blocks_to_text
from bot.settings import Settings
from knowledge.models import Job, Team
from tests.conftest import Live, make_settings


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    return make_settings(tmp_path, standin, shift_handover=True, warm_models=False)


def _ics(*shifts: tuple[str, dt.datetime, dt.datetime]) -> str:
    events = "".join(f"BEGIN:VEVENT\nUID:{i}@test\nDTSTART:{a:%Y%m%dT%H%M%SZ}\nDTEND:{b:%Y%m%dT%H%M%SZ}\n"
                     f"SUMMARY:On call: {who}\nEND:VEVENT\n" for i, (who, a, b) in enumerate(shifts))
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//oncall//EN\n{events}END:VCALENDAR\n"


def _import(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, team: str, ics: str) -> None:
    for key, value in (("WARROOM_DATABASE_URL", settings.database_url), ("WARROOM_DATA_DIR", str(settings.data_dir)),
                       ("WARROOM_MODE", "test"), ("WARROOM_EMBEDDER", "hash")):
        monkeypatch.setenv(key, value)
    f = tmp_path / f"{team}.ics"
    f.write_text(ics)
    res = CliRunner().invoke(app, ["oncall", "import-ical", str(f), "--team", team])
    assert res.exit_code == 0, res.output


def _wait_for(live: Live, channel: str, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        said = json.dumps(live.standin.messages(channel))
        if text in said:
            return said
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never reached {channel}: {live.standin.messages(channel)}")


def test_the_team_channel_gets_the_handover_at_the_shift_change(live: Live, settings: Settings, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    live.driver.command("/incident", "new payments-api returning 503 sev1", user="U0ERIN", channel="C0OPS")
    live.driver.command("/incident", "new ingest lag growing sev2", user="U0ERIN", channel="C0OPS")  # data team's
    live.drain(due_within_s=60)
    with live.db.session() as s:  # the sample world's weekly rotations: the next change of each team is planned
        planned = s.scalars(select(Job).where(Job.kind == "oncall.shift_change", Job.status == "queued")).all()
        assert len({j.payload["team_id"] for j in planned}) == 5
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    change = now + dt.timedelta(seconds=3)
    before, after = now - dt.timedelta(hours=8), now + dt.timedelta(hours=8)
    _import(settings, tmp_path, monkeypatch, "payments",
            _ics(("Bob Okafor", before, change), ("Alice Moreau", change, after)))
    # the same person before and after a change: nothing to hand over
    _import(settings, tmp_path, monkeypatch, "data",
            _ics(("Erin Walsh", before, change), ("Erin Walsh", change, after)))
    said = _wait_for(live, "C0PAYMENTS", "On-call handover: payments")
    assert "<@U0BOB> hands payments (payments-api, billing-worker, checkout-web) over to <@U0ALICE>." in said
    assert "Handover for the last 8 hours: 1 incident(s) opened" in said and "payments-api returning 503" in said
    assert "ingest lag growing" not in said  # another team's service
    live.drain(due_within_s=60)
    assert live.standin.messages("C0DATA") == []
    with live.db.session() as s:  # the next change is planned: Alice's shift ends in 8 hours
        team = s.scalars(select(Team).where(Team.name == "payments")).one()
        queued = [j.payload["at"] for j in s.scalars(select(Job).where(Job.kind == "oncall.shift_change",
                                                                        Job.status == "queued"))
                  if j.payload["team_id"] == team.id]
        assert after.isoformat() in queued and change.isoformat() not in queued, queued  # (and the rotation's)


def test_a_gap_in_the_schedule_is_told_to_the_team_once_before_it_starts(live: Live) -> None:
    """At the change itself ("hands over to *nobody*") it is too late: a gap in the next 48 hours is told ahead."""
    from sqlalchemy import delete

    from knowledge.models import Expert, OnCallShift, Rotation, utcnow

    now = utcnow().replace(microsecond=0)
    with live.db.session() as s:
        team = s.scalars(select(Team).where(Team.name == "payments")).one()
        alice, bob = (s.scalar(select(Expert.id).where(Expert.slack_user_id == u)) for u in ("U0ALICE", "U0BOB"))
        s.execute(delete(OnCallShift).where(OnCallShift.team_id == team.id))
        s.execute(delete(Rotation).where(Rotation.team_id == team.id))
        for who, a, b in ((alice, -1, 5), (bob, 10, 40)):  # a hole from +5 h to +10 h, and nothing after +40 h
            s.add(OnCallShift(team_id=team.id, expert_id=who, starts_at=now + dt.timedelta(hours=a),
                              ends_at=now + dt.timedelta(hours=b), source="ical"))
    for _ in range(2):  # planned again (every import, change and day): told once
        live.services.runner.submit("oncall.plan", {})
        live.drain(due_within_s=60)
    said = [blocks_to_text(m.get("blocks") or []) for m in live.standin.messages("C0PAYMENTS")]
    assert len(said) == 2, said
    raw = json.dumps(live.standin.messages("C0PAYMENTS")[0])  # each reader sees the time in their own zone
    assert f"<!date^{int((now + dt.timedelta(hours=5)).replace(tzinfo=dt.UTC).timestamp())}^" in raw
    hole, end = now + dt.timedelta(hours=5), now + dt.timedelta(hours=40)
    assert (f"Heads-up: *nobody* will be on call for payments (payments-api, billing-worker, checkout-web) from "
            f"{hole:%a %d %b %H:%M} UTC until {hole + dt.timedelta(hours=5):%a %d %b %H:%M} UTC") in said[0]
    assert f"from {end:%a %d %b %H:%M} UTC with no shift after that" in said[1]
    assert not any(live.standin.messages(c) for c in ("C0PLATFORM", "C0DATA"))  # their rotations have no hole
