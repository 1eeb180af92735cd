"""On-call rotations go on for as long as they are declared: written ahead, topped up by the running bot, local
handover times kept across daylight-saving changes, and a database from before rotations were kept as declared
gets its rotation back from its shifts."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from bot.render import blocks_to_text
from bot.settings import Settings
from bot.standin.driver import SlackDriver
from bot.standin.harness import LiveServer
from knowledge.db import Database
from knowledge.models import Expert, Job, OnCallShift, Rotation, Team, utcnow
from knowledge.people import oncall_by_team
from knowledge.people_import import import_ical, import_people, refresh_calendars
from knowledge.rotations import HORIZON, define_rotation, top_up, turn_start
from tests.conftest import Live

MONDAY = dt.datetime(2026, 1, 5)


def _ids(db: Database, *users: str) -> tuple[int, list[int]]:
    with db.session() as s:
        team = s.scalar(select(Team.id).where(Team.name == "payments"))
        return team, [s.scalar(select(Expert.id).where(Expert.slack_user_id == u)) for u in users]


def _on_call(db: Database, team: str = "payments") -> list[str]:
    with db.session() as s:
        return [u for u, _ in oncall_by_team(session=s, team=team)[0].people]


def _whose_turn(now: dt.datetime, members: list[str]) -> str:
    return members[int((now - MONDAY).total_seconds() // (7 * 86400)) % len(members)]


def _weekly_ics(tmp_path: Path, who: str, days_ago: int) -> Path:
    """A calendar with one event, ``who`` on call every week from ``days_ago`` days ago (RRULE)."""
    first = (utcnow() - dt.timedelta(days=days_ago)).replace(hour=9, minute=0, second=0, microsecond=0)
    f = tmp_path / "weekly.ics"
    f.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//rota//EN\nBEGIN:VEVENT\nUID:weekly@rota\n"
                 f"DTSTART:{first:%Y%m%dT%H%M%SZ}\nDTEND:{first + dt.timedelta(weeks=1):%Y%m%dT%H%M%SZ}\n"
                 f"RRULE:FREQ=WEEKLY\nSUMMARY:On call: {who}\nEND:VEVENT\nEND:VCALENDAR\n")
    return f


def _last_oncall_answer(live: Live) -> str:
    texts = [blocks_to_text(m.get("blocks") or []) or m.get("text", "") for m in live.standin.messages("C0OPS")]
    return texts[-1]


def test_a_rotation_imported_weeks_ago_goes_on_when_the_bot_starts_and_every_day(settings: Settings, db: Database,
                                                                                standin: Any, tmp_path: Path) -> None:
    """Before: a rotation was written 8 weeks ahead at import and never again, so 8 weeks later ``/oncall`` said
    "nobody on call now" for a team whose rotation had not changed; the same for a calendar's repeating events
    180 days after its import."""
    team_id, members = _ids(db, "U0ALICE", "U0BOB")
    ten_weeks_ago = utcnow() - dt.timedelta(weeks=10)
    with db.session() as s:
        s.execute(OnCallShift.__table__.delete().where(OnCallShift.team_id == team_id))
        define_rotation(s, team_id=team_id, start=MONDAY, members=members, now=ten_weeks_ago)
    assert _on_call(db) == []  # what a bot that imported ten weeks ago and did nothing since would say
    # The data team's rotation lives in a calendar instead: one event repeating every week, imported 200 days ago
    # (its occurrences were written 180 days ahead of then).
    ics = _weekly_ics(tmp_path, "Farid Haddad", days_ago=300)
    with db.session() as s:
        data = s.scalar(select(Team.id).where(Team.name == "data"))
        s.execute(Rotation.__table__.delete().where(Rotation.team_id == data))
        s.execute(OnCallShift.__table__.delete().where(OnCallShift.team_id == data))
        import_ical(session=s, path=ics, team="data", now=utcnow() - dt.timedelta(days=200))
    assert _on_call(db, "data") == []
    with LiveServer(settings) as srv:  # the workers start: the turns are written ahead again
        live = Live(srv, standin, SlackDriver(srv.url, settings.slack_signing_secret.get_secret_value(),
                                              standin_url=standin.url))
        live.driver.command("/oncall", "payments", user="U0ERIN", channel="C0OPS")
        live.drain()
        now = utcnow()
        assert f"<@{_whose_turn(now, ['U0ALICE', 'U0BOB'])}>" in _last_oncall_answer(live)
        live.driver.command("/oncall", "data", user="U0ERIN", channel="C0OPS")
        live.drain()
        assert "<@U0FARID>" in _last_oncall_answer(live)
        with live.db.session() as s:
            ahead = s.scalar(select(func.max(OnCallShift.ends_at)).where(OnCallShift.team_id == team_id))
        assert ahead >= now + HORIZON
        # Weeks pass without a restart: the hourly job writes the turns ahead.
        with live.db.session() as s:
            define_rotation(s, team_id=team_id, start=MONDAY, members=members, now=ten_weeks_ago)
        assert _on_call(live.db) == []
        live.services.runner.submit("oncall.top_up", {})
        live.drain(due_within_s=60)  # (its next run, tomorrow, stays queued)
        live.driver.command("/oncall", "payments", user="U0ERIN", channel="C0OPS")
        live.drain(due_within_s=60)
        assert f"<@{_whose_turn(utcnow(), ['U0ALICE', 'U0BOB'])}>" in _last_oncall_answer(live)
        with live.db.session() as s:  # and it comes back in an hour
            again = s.scalars(select(Job).where(Job.kind == "oncall.top_up", Job.status == "queued")).all()
            assert len(again) == 1 and again[0].run_after > utcnow() + dt.timedelta(minutes=59)


def test_topping_up_twice_writes_each_turn_once(db: Database) -> None:
    team_id, members = _ids(db, "U0ALICE", "U0BOB")
    with db.session() as s:
        define_rotation(s, team_id=team_id, start=MONDAY, members=members, now=MONDAY)
    later = MONDAY + dt.timedelta(weeks=20)
    with db.session() as s:
        assert top_up(s, now=later) == 20
    with db.session() as s:
        assert top_up(s, now=later) == 0
        starts = s.scalars(select(OnCallShift.starts_at).where(OnCallShift.team_id == team_id,
                                                                OnCallShift.source == "rotation")
                           .order_by(OnCallShift.starts_at)).all()
    assert len(starts) == len(set(starts)) == 28  # weeks 0..27: up to 8 weeks after `later`
    assert all(b - a == dt.timedelta(weeks=1) for a, b in zip(starts, starts[1:], strict=False))


def test_a_local_handover_time_stays_when_the_clocks_change(db: Database, tmp_path: Path) -> None:
    """A Monday 09:00 Berlin handover is 08:00 UTC in winter and 07:00 UTC in summer."""
    team_id, members = _ids(db, "U0ALICE", "U0BOB")
    with db.session() as s:
        define_rotation(s, team_id=team_id, start=dt.datetime(2026, 3, 16, 9, 0), members=members,
                        timezone="Europe/Berlin", now=dt.datetime(2026, 3, 1))
        rows = s.execute(select(OnCallShift.starts_at, OnCallShift.ends_at, OnCallShift.expert_id)
                         .where(OnCallShift.team_id == team_id, OnCallShift.source == "rotation")
                         .order_by(OnCallShift.starts_at)).all()
    assert [r[0] for r in rows[:3]] == [dt.datetime(2026, 3, 16, 8), dt.datetime(2026, 3, 23, 8),
                                        dt.datetime(2026, 3, 30, 7)]  # summer time from 29 March
    assert rows[1][1] == rows[2][0] and rows[1][1] - rows[1][0] == dt.timedelta(hours=167)  # the short week
    assert [r[2] for r in rows[:3]] == [members[0], members[1], members[0]]
    rot = Rotation(starts_at=dt.datetime(2026, 3, 16, 9, 0), timezone="Europe/Berlin", shift_hours=168, members=[])
    assert turn_start(rot, 32) == dt.datetime(2026, 10, 26, 8)  # winter again from 25 October

    # The same through the experts file: 12-hour turns, a zone without daylight saving, a start with its offset.
    f = tmp_path / "rota.yaml"
    start = (utcnow() - dt.timedelta(days=2)).replace(hour=7, minute=0, second=0, microsecond=0)
    f.write_text(f"rotations: [{{team: payments, start: '{start:%Y-%m-%dT%H:%M}+00:00', hours: 12, "
                 "timezone: Asia/Kolkata, members: [U0ALICE, U0BOB]}]\n")
    with db.session() as s:
        rep = import_people(session=s, path=f)
        rot = s.scalars(select(Rotation).where(Rotation.team_id == team_id)).one()
        shifts = s.scalars(select(OnCallShift).where(OnCallShift.team_id == team_id, OnCallShift.source == "rotation")
                           .order_by(OnCallShift.starts_at)).all()
    assert (rot.shift_hours, rot.timezone, rot.starts_at) == (12, "Asia/Kolkata", start + dt.timedelta(hours=5.5))
    assert rep.shifts == len(shifts) and shifts[-1].ends_at >= utcnow() + HORIZON
    assert (shifts[0].starts_at, shifts[0].ends_at) == (start, start + dt.timedelta(hours=12))
    half_days = int((utcnow() - start).total_seconds() // (12 * 3600))
    assert _on_call(db) == [["U0ALICE", "U0BOB"][half_days % 2]]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_database_from_before_gets_its_rotations_back_from_their_shifts(kind: str, tmp_path: Path) -> None:
    if kind == "postgres":
        url = os.environ.get("WARROOM_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("WARROOM_TEST_POSTGRES_URL not set (scripts/test.sh starts PostgreSQL)")
        db = Database(url)
        db.reset_postgres_schema()
    else:
        db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    db.upgrade("0007")
    with db.engine.begin() as c:
        c.execute(text("INSERT INTO teams (id, name, description) VALUES (1, 'payments', ''), (2, 'data', '')"))
        for i, (uid, team) in enumerate([("U0A", 1), ("U0B", 1), ("U0C", 1), ("U0D", 2)], 1):
            c.execute(text("INSERT INTO experts (id, slack_user_id, name, team_id, services, skills, timezone, "
                           "active) VALUES (:i, :u, :u, :t, '[]', '[]', 'UTC', TRUE)"), {"i": i, "u": uid, "t": team})
        for k in range(10):  # payments: A, B, C taking weekly turns, the way warroom wrote them
            c.execute(text("INSERT INTO oncall_shifts (team_id, expert_id, starts_at, ends_at, source) "
                           "VALUES (1, :e, :a, :b, 'rotation')"),
                      {"e": [1, 2, 3][k % 3], "a": MONDAY + dt.timedelta(weeks=k),
                       "b": MONDAY + dt.timedelta(weeks=k + 1)})
        for a, b in ((0, 5), (9, 20)):  # data: shifts with a gap, not warroom's: left as they are
            c.execute(text("INSERT INTO oncall_shifts (team_id, expert_id, starts_at, ends_at, source) "
                           "VALUES (2, 4, :a, :b, 'rotation')"),
                      {"a": MONDAY + dt.timedelta(days=a), "b": MONDAY + dt.timedelta(days=b)})
    db.upgrade()
    with db.session() as s:
        rot = s.scalars(select(Rotation)).one()
        assert (rot.team_id, rot.starts_at, rot.shift_hours, rot.members, rot.next_turn) == (1, MONDAY, 168,
                                                                                             [1, 2, 3], 10)
        assert top_up(s, now=MONDAY + dt.timedelta(weeks=10)) == 8  # weeks 10..17
        week12 = s.scalar(select(OnCallShift.expert_id).where(
            OnCallShift.team_id == 1, OnCallShift.starts_at == MONDAY + dt.timedelta(weeks=12)))
    assert week12 == [1, 2, 3][12 % 3]
    db.downgrade("0007")
    db.upgrade()


def test_a_calendar_that_no_longer_imports_keeps_its_shifts(db: Database, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    ics = _weekly_ics(tmp_path, "Bob Okafor", days_ago=30)
    with db.session() as s:
        before = import_ical(session=s, path=ics, team="payments").shifts
        s.execute(Expert.__table__.update().where(Expert.slack_user_id == "U0BOB").values(name="Robert Okafor"))
    with db.session() as s:
        assert refresh_calendars(s) == 0
        kept = s.scalar(select(func.count()).select_from(OnCallShift).where(OnCallShift.source == "ical"))
    assert kept == before and _on_call(db) == ["U0BOB"]
    assert "could not refresh the calendar of team" in caplog.text and "Bob Okafor" in caplog.text


def test_oncall_names_who_is_next_and_warns_of_a_gap(live: Live) -> None:
    now = utcnow().replace(microsecond=0)
    hours = [now + dt.timedelta(hours=h) for h in range(-1, 30)]
    with live.db.session() as s:
        ids = {u: s.scalar(select(Expert.id).where(Expert.slack_user_id == u))
               for u in ("U0ALICE", "U0BOB", "U0DEV", "U0ERIN", "U0GRACE")}
        teams = {n: s.scalar(select(Team.id).where(Team.name == n))
                 for n in ("payments", "platform", "data", "identity")}
        s.execute(OnCallShift.__table__.delete())
        s.execute(Rotation.__table__.delete())
        for team, user, a, b in (("payments", "U0ALICE", 0, 3), ("payments", "U0BOB", 3, 25),  # then a gap
                                 ("platform", "U0DEV", 6, 25),  # nobody now, Dev from 5 hours on
                                 ("data", "U0ERIN", 0, 3), ("data", "U0ERIN", 3, 25),  # Erin stays on
                                 ("identity", "U0GRACE", 0, 2)):  # and then nobody
            s.add(OnCallShift(team_id=teams[team], expert_id=ids[user], starts_at=hours[a], ends_at=hours[b],
                              source="ical"))
    for team in ("payments", "platform", "data", "identity"):
        live.driver.command("/oncall", team, user="U0ERIN", channel="C0OPS")
        live.drain()
    payments, platform, data, identity = [blocks_to_text(m.get("blocks") or [])
                                          for m in live.standin.messages("C0OPS")[-4:]]
    assert f"<@U0ALICE> (Alice Moreau) per the calendar until {hours[3]:%a %d %b %H:%M} UTC; next: <@U0BOB> (Bob " \
           f"Okafor) from " \
           f"{hours[3]:%a %d %b %H:%M} UTC" in payments
    assert f"nobody on call now: ask in <#C0PLATFORM>; next: <@U0DEV> (Dev Sharma) from {hours[6]:%a %d %b %H:%M}" \
           " UTC. To take it: `/oncall cover platform for 2h`" in platform
    assert "<@U0ERIN> (Erin Walsh) per the calendar until" in data and "next" not in data  # the same person goes on
    assert f"*then nobody* from {hours[2]:%a %d %b %H:%M} UTC: a gap in the schedule" in identity
    with live.db.session() as s:
        (later,) = oncall_by_team(session=s, team="payments", at=hours[5])
    assert later.people == (("U0BOB", "Bob Okafor"),) and (later.next_people, later.next_at) == ((), hours[25])


def _only_payments_shifts(live: Live, shifts: tuple[tuple[str, int, int], ...]) -> dt.datetime:
    """The payments team's only shifts: (user, start, end) in hours from now, from a calendar; returns now."""
    now = utcnow().replace(microsecond=0)
    with live.db.session() as s:
        ids = {u: s.scalar(select(Expert.id).where(Expert.slack_user_id == u)) for u in ("U0ALICE", "U0BOB")}
        payments = s.scalar(select(Team.id).where(Team.name == "payments"))
        s.execute(OnCallShift.__table__.delete().where(OnCallShift.team_id == payments))
        s.execute(Rotation.__table__.delete().where(Rotation.team_id == payments))
        for user, a, b in shifts:
            s.add(OnCallShift(team_id=payments, expert_id=ids[user], starts_at=now + dt.timedelta(hours=a),
                              ends_at=now + dt.timedelta(hours=b), source="ical"))
    return now


def test_oncall_at_another_time_answers_for_that_time(live: Live) -> None:
    """"Who is on call tomorrow?" answered who is on call now: the time words were dropped. Now `/oncall` and the
    question read a moment (in the asker's zone unless one is written), in the future or the past, and a word that
    is neither team, service nor time is said back."""
    now = _only_payments_shifts(live, (("U0ALICE", -48, 2), ("U0BOB", 2, 50)))
    said = _say(live, "payments in 3h", "U0ERIN")
    assert "On call in 3h: payments" in said and "Will be on call at" in said
    assert "*payments*: <@U0BOB> (Bob Okafor) per the calendar" in said and "U0ALICE" not in said
    assert "<@U0ALICE> (Alice Moreau)" in _say(live, "payments", "U0ERIN")  # now
    assert "On call tomorrow: payments" in _say(live, "who is on call for payments tomorrow", "U0ERIN")
    # Erin is in New York: "at 06:00 CET" is Paris time, the next one to come
    paris = (now + dt.timedelta(hours=4)).replace(tzinfo=dt.UTC).astimezone(ZoneInfo("Europe/Paris"))
    said = _say(live, f"payments at {paris:%H:%M} CET", "U0ERIN")
    assert f"Will be on call at {now + dt.timedelta(hours=4):%a %d %b %H:%M} UTC" in said
    assert "<@U0BOB>" in said
    # the past: "who was on call at 16:00?" is the last 16:00, in the asker's own zone
    ago = (now - dt.timedelta(hours=5)).replace(tzinfo=dt.UTC).astimezone(ZoneInfo("America/New_York"))
    live.driver.mention(f"who was on call for payments at {ago:%H:%M}?", user="U0ERIN", channel="C0OPS")
    live.drain()
    said = blocks_to_text(live.standin.messages("C0OPS")[-1].get("blocks") or [])
    assert "Was on call at" in said and "<@U0ALICE> (Alice Moreau)" in said and "U0BOB" not in said.split("next")[0]
    # a holiday by name was read as no time at all (who is on call now): now its day, the next one to come
    live.driver.mention("who is on call for payments on christmas?", user="U0ERIN", channel="C0OPS")
    live.drain()
    said = blocks_to_text(live.standin.messages("C0OPS")[-1].get("blocks") or [])
    assert "On call on christmas: payments" in said and "25 Dec 14:00 UTC" in said, said  # 09:00 in New York
    # a time in another sentence is about something else: now
    live.driver.mention("who is on call for payments? the errors started at 23:59", user="U0ERIN", channel="C0OPS")
    live.drain()
    said = blocks_to_text(live.standin.messages("C0OPS")[-1].get("blocks") or [])
    assert "On call now: payments" in said and "<@U0ALICE> (Alice Moreau)" in said, said
    for asked, error in (("payments thursdya", "I cannot read `thursdya`"),
                        ("payments 25:00", "`25:00` is not a time of day"),
                        ("payments 2026-02-30", "`2026-02-30` is not a date"),
                        ("payments at 9:00 CST", "`CST` could mean US Central or China")):
        assert error in _say(live, asked, "U0ERIN"), asked


def _say(live: Live, text: str, user: str) -> str:
    live.driver.command("/oncall", text, user=user, channel="C0OPS")
    live.drain(due_within_s=60)
    msgs = live.standin.messages("C0OPS")
    return blocks_to_text(msgs[-1].get("blocks") or []) or msgs[-1].get("text", "")


def test_someone_covers_the_pager_from_slack_and_releases_it(live: Live) -> None:
    """``/oncall cover``: the cover wins over the rotation and the calendar while it runs, /oncall and routing
    follow it, its end follows the requester's local time, and ``/oncall release`` gives the pager back."""
    now = _only_payments_shifts(live, (("U0ALICE", -1, 30),))
    said = _say(live, "cover payments for 3h", "U0BOB")  # Bob takes Alice's pager for three hours
    assert f"<@U0BOB> is on call for payments from now until {now + dt.timedelta(hours=3):%a %d %b %H}" in said
    assert "instead of <@U0ALICE>" in said and "`/oncall release payments` ends it early" in said
    with live.db.session() as s:  # /oncall: until the cover ends, then Alice again
        three = f"{s.scalar(select(OnCallShift.ends_at).where(OnCallShift.source == 'override')):%a %d %b %H:%M}"
    assert f"<@U0BOB> (Bob Okafor) covering until {three} UTC; next: <@U0ALICE> (Alice Moreau) from {three}" in _say(
        live, "payments", "U0ERIN")
    told = [blocks_to_text(m.get("blocks") or []) for m in live.standin.messages("C0PAYMENTS")]
    assert len(told) == 1 and "<@U0BOB> is on call for payments from now until" in told[0]  # the team's channel
    assert _on_call(live.db) == ["U0BOB"]
    assert "<@U0BOB>" in _say(live, "payments", "U0ERIN")
    with live.db.session() as s:  # and three hours later Alice is back
        (later,) = oncall_by_team(session=s, team="payments", at=now + dt.timedelta(hours=3, minutes=1))
    assert [u for u, _ in later.people] == ["U0ALICE"]
    said = _say(live, "release", "U0BOB")
    assert "<@U0BOB> is no longer covering payments" in said and "*payments*: <@U0ALICE>" in said
    told = blocks_to_text(live.standin.messages("C0PAYMENTS")[-1].get("blocks") or [])
    assert "<@U0BOB> is no longer covering payments; on call now: <@U0ALICE>." in told
    assert _on_call(live.db) == ["U0ALICE"]
    # "until 18:00" is the requester's own time: Alice works in Europe/Paris
    said = _say(live, "cover until 18:00", "U0ALICE")  # her own team by default
    paris = now.replace(tzinfo=dt.UTC).astimezone(ZoneInfo("Europe/Paris"))
    end = paris.replace(hour=18, minute=0, second=0)
    end = end if end > paris else (end.replace(tzinfo=None) + dt.timedelta(days=1)).replace(tzinfo=paris.tzinfo)
    assert f"until {end.astimezone(dt.UTC):%a %d %b %H:%M} UTC (18:00 Europe/Paris)" in said
    # Alice hands her cover to Bob (no time given): he takes it over to its end, as /oncall says, and then the
    # calendar (Alice) goes on; it was: to the end of the longest shift running, the calendar's 30 hours
    said = _say(live, "cover <@U0BOB|bob> payments", "U0ALICE")
    assert f"until {end.astimezone(dt.UTC):%a %d %b %H:%M} UTC" in said and "Set by <@U0ALICE>" in said
    assert "instead of <@U0ALICE>" in said and _on_call(live.db) == ["U0BOB"]  # her own cover ends: replaced
    said = _say(live, "release", "U0BOB")  # and with the cover gone, to the end of the calendar's shift
    said = _say(live, "cover <@U0BOB|bob> payments", "U0ALICE")
    assert f"until {now + dt.timedelta(hours=30):%a %d %b %H:%M} UTC" in said
    # set for Bob by mistake: only Bob could end it. Whoever may set the team's cover may end it now; others may not
    assert "only a member of it, or whoever is on call for it, can end another's cover" in _say(
        live, "release payments", "U0IRIS")
    assert _on_call(live.db) == ["U0BOB"]
    said = _say(live, "release payments", "U0ALICE")
    assert "<@U0BOB> is no longer covering payments. Ended by <@U0ALICE>." in said and "*payments*: <@U0ALICE>" in said
    assert _on_call(live.db) == ["U0ALICE"]
    told = blocks_to_text(live.standin.messages("C0PAYMENTS")[-1].get("blocks") or [])
    assert "<@U0BOB> is no longer covering payments; on call now: <@U0ALICE>. Ended by <@U0ALICE>." in told


def _next(now: dt.datetime, zone: dt.tzinfo, hour: int, minute: int = 0) -> dt.datetime:
    """The next ``hour:minute`` in ``zone`` after ``now`` (naive UTC), in naive UTC."""
    local = now.replace(tzinfo=dt.UTC).astimezone(zone)
    end = local.replace(hour=hour, minute=minute, second=0)
    end = end if end > local else (end.replace(tzinfo=None) + dt.timedelta(days=1)).replace(tzinfo=zone)
    return end.astimezone(dt.UTC).replace(tzinfo=None)


@pytest.mark.parametrize(("words", "zone", "shown"), [
    ("until 18:00 PST", ZoneInfo("America/Los_Angeles"), "18:00 America/Los_Angeles"),  # Pacific time, summer too
    ("until 6pm cet", ZoneInfo("Europe/Paris"), "18:00 Europe/Paris"),
    ("until 18:00 Asia/Kolkata", ZoneInfo("Asia/Kolkata"), "18:00 Asia/Kolkata"),
    ("until 18:30 UTC+5:30", dt.timezone(dt.timedelta(hours=5, minutes=30)), "18:30 UTC+05:30"),
    ("until 18:00 -03:00", dt.timezone(dt.timedelta(hours=-3)), "18:00 UTC-03:00"),
    ("until 18:00 UTC", dt.UTC, ""),
    ("until 18:00", ZoneInfo("Europe/London"), "18:00 Europe/London"),  # Bob's own zone
])
def test_a_zone_after_the_time_is_the_zone_it_names(live: Live, words: str, zone: dt.tzinfo, shown: str) -> None:
    """It was ignored: "until 18:00 CET" from Bob in London ended at 18:00 London time, an hour late."""
    now = utcnow().replace(microsecond=0)
    said = _say(live, f"cover payments {words}", "U0BOB")
    end = _next(now, zone, int(words.split()[1][:2].rstrip("p")) + (12 if "pm" in words else 0),
                30 if ":30" in words else 0)
    assert f"until {end:%a %d %b %H:%M} UTC{f' ({shown})' if shown else ''}" in said
    with live.db.session() as s:
        assert s.scalar(select(OnCallShift.ends_at).where(OnCallShift.source == "override")) == end


@pytest.mark.parametrize(("words", "message"), [
    ("until 18:00 CST", "`CST` could mean US Central or China"),
    ("until 18:00 IST", "`IST` could mean India, Israel or Ireland"),
    ("until 18:00 AKST", "`AKST` is not a time zone I know"),
    ("until 18:00 Mars/Olympus_Mons", "`Mars/Olympus_Mons` is not a time zone I know"),
    ("until 18:00 UTC+15", "is not a UTC offset"),
])
def test_a_zone_it_cannot_read_is_refused_not_guessed(live: Live, words: str, message: str) -> None:
    before = _on_call(live.db)
    assert message in _say(live, f"cover payments {words}", "U0BOB")
    assert _on_call(live.db) == before
    with live.db.session() as s:
        assert not s.scalars(select(OnCallShift).where(OnCallShift.source == "override")).all()


@pytest.mark.parametrize(("text", "user", "message"), [
    ("cover payments for 2h", "U0NOBODY", "Only people in the knowledge base can change who is on call"),
    ("cover payments for 2h", "U0IRIS", "Only a member of payments, or whoever is on call for it"),
    ("cover payments for 20d", "U0BOB", "A cover runs at most 14 days"),
    ("cover payments until 25:00", "U0BOB", "is not a time of day"),
    ("cover payments until 13pm", "U0BOB", "is not a time of day"),
    ("cover payments for 1.5h", "U0BOB", "I cannot read `for 1.5h` as a time"),  # was: to the shift's end, silently
    ("cover payments until noon", "U0BOB", "I cannot read `until noon` as a time"),
    ("cover <@U0GHOST> payments for 1h", "U0BOB", "<@U0GHOST> is not an active expert"),
    ("release payments", "U0BOB", "You are not covering payments now"),
    # the second team was dropped: its pager stayed as it was, with nothing said
    ("cover payments and platform for 2h", "U0BOB", "One team at a time: `/oncall cover payments ...`, then"),
])
def test_bad_covers_get_a_clear_answer_and_change_nothing(live: Live, text: str, user: str, message: str) -> None:
    before = _on_call(live.db)
    assert message in _say(live, text, user)
    assert _on_call(live.db) == before
    with live.db.session() as s:
        assert not s.scalars(select(OnCallShift).where(OnCallShift.source == "override")).all()


class _Feed:
    """A scheduling tool's on-call feed on loopback: what it serves can change, or fail."""

    def __init__(self) -> None:
        import http.server
        import threading

        feed = self
        self.body, self.status, self.paths = b"", 200, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the library's name
                feed.paths.append(self.path)
                self.send_response(feed.status)
                self.send_header("Content-Type", "text/calendar")
                self.end_headers()
                self.wfile.write(feed.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/private/feed.ics?token=s3cr3t-feed-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def feed() -> Any:
    f = _Feed()
    yield f
    f.server.shutdown()


def test_a_calendar_feed_url_is_fetched_again_so_a_swap_made_there_arrives(
        settings: Settings, db: Database, feed: _Feed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    for key, value in (("WARROOM_DATABASE_URL", settings.database_url), ("WARROOM_DATA_DIR", str(settings.data_dir)),
                       ("WARROOM_MODE", "test"), ("WARROOM_EMBEDDER", "hash")):
        monkeypatch.setenv(key, value)
    feed.body = _weekly_ics(tmp_path, "Alice Moreau", days_ago=3).read_bytes()
    res = CliRunner().invoke(app, ["oncall", "import-ical", feed.url, "--team", "payments"])
    assert res.exit_code == 0, res.output
    assert _on_call(db) == ["U0ALICE"] and feed.paths == ["/private/feed.ics?token=s3cr3t-feed-token"]
    feed.body = _weekly_ics(tmp_path, "Bob Okafor", days_ago=3).read_bytes()  # Bob swaps in, in the tool
    with db.session() as s:
        assert refresh_calendars(s) > 0
    assert _on_call(db) == ["U0BOB"]
    feed.status = 503  # the tool is down: what it said last stays, and the log says why (without the token)
    with db.session() as s:
        assert refresh_calendars(s) == 0
    assert _on_call(db) == ["U0BOB"]
    assert "the server answered HTTP 503" in caplog.text and "s3cr3t" not in caplog.text
    for source, message in ((feed.url, "the server answered HTTP 503"), ("http://127.0.0.1:9/x.ics", "cannot fetch"),
                            ("ftp://example.com/x.ics", "cannot read ftp:")):
        res = CliRunner().invoke(app, ["oncall", "import-ical", source, "--team", "payments"])
        assert res.exit_code == 1 and message in str(res.exception or res.output), (source, res.output)
        assert "s3cr3t" not in str(res.exception or res.output)
    assert _on_call(db) == ["U0BOB"]


def test_someone_deactivated_in_slack_is_no_longer_paged_and_their_team_is_told(live: Live) -> None:
    """Slack's ``user_change`` with ``deleted: true`` (they left): routing, pages and /oncall skip them at once,
    their team hears which shifts are now uncovered; a change that is not a deactivation changes nothing."""
    now = utcnow().replace(microsecond=0)
    with live.db.session() as s:
        team = s.scalar(select(Team.id).where(Team.name == "payments"))
        bob = s.scalar(select(Expert.id).where(Expert.slack_user_id == "U0BOB"))
        s.execute(OnCallShift.__table__.delete().where(OnCallShift.team_id == team))
        s.execute(Rotation.__table__.delete().where(Rotation.team_id == team))
        s.add(OnCallShift(team_id=team, expert_id=bob, starts_at=now - dt.timedelta(hours=1),
                          ends_at=now + dt.timedelta(days=2), source="ical"))
    profile = {"id": "U0BOB", "name": "bob", "real_name": "Bob Okafor", "deleted": False}
    for change in ({"type": "user_change", "user": profile},  # a new status emoji: nothing to do
                   {"type": "user_change", "user": "U0BOB"},  # not Slack's shape: ignored
                   {"type": "user_change", "user": {"id": "<script>", "deleted": True}}):
        assert live.driver.event(change).status_code == 200
    live.drain(due_within_s=60)
    assert _on_call(live.db) == ["U0BOB"] and live.standin.messages("C0PAYMENTS") == []
    assert live.driver.event({"type": "user_change", "user": {**profile, "deleted": True}}).status_code == 200
    live.drain(due_within_s=60)
    assert _on_call(live.db) == []
    (told,) = [blocks_to_text(m.get("blocks") or []) for m in live.standin.messages("C0PAYMENTS")]
    assert ("<@U0BOB> (Bob Okafor) was deactivated in Slack: warroom no longer routes or pages to them, and skips "
            f"their payments on-call shifts (now until {now + dt.timedelta(days=2):%a %d %b %H:%M} UTC). On call "
            "now: *nobody*.") in told
    assert "<@U0BOB>" not in _say(live, "payments", "U0ERIN").split("skipped")[0]
    live.driver.event({"type": "user_change", "user": {**profile, "deleted": True}})  # Slack says it again
    live.drain(due_within_s=60)
    assert len(live.standin.messages("C0PAYMENTS")) == 1
    # the nightly import of a staff file that still lists him (no `active` column) made him active again: routed and
    # paged once more. An `active` the file does not state now changes nothing.
    staff = live.services.settings.data_dir / "people.csv"
    staff.write_text("slack_user_id,name,team\nU0BOB,Bob Okafor,payments\nU0NEW,Nina West,payments\n")
    with live.db.session() as s:
        import_people(session=s, path=staff)
    with live.db.session() as s:
        active = dict(s.execute(select(Expert.slack_user_id, Expert.active)
                                .where(Expert.slack_user_id.in_(("U0BOB", "U0NEW")))).all())
    assert active == {"U0BOB": False, "U0NEW": True} and _on_call(live.db) == []


def test_import_prune_deactivates_who_left_the_staff_list(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """``warroom experts import FILE --prune``: the file is the whole staff list (an HR export); whoever it no longer
    lists is deactivated as a Slack deactivation would, and their teams are told of the shifts they leave."""
    from typer.testing import CliRunner

    from bot.cli import app

    now = utcnow().replace(microsecond=0)
    with live.db.session() as s:
        team = s.scalar(select(Team.id).where(Team.name == "payments"))
        bob = s.scalar(select(Expert.id).where(Expert.slack_user_id == "U0BOB"))
        s.add(OnCallShift(team_id=team, expert_id=bob, starts_at=now + dt.timedelta(hours=5),
                          ends_at=now + dt.timedelta(hours=30), source="override"))
        everyone = set(s.scalars(select(Expert.slack_user_id).where(Expert.active.is_(True))))
    staff = live.services.settings.data_dir / "staff.csv"
    staff.write_text("slack_user_id,name,team\n" + "".join(f"{u},{u},payments\n" for u in sorted(everyone)
                                                           if u not in ("U0BOB", "U0ERIN")))
    for key, value in (("WARROOM_MODE", "test"), ("WARROOM_DATABASE_URL", live.db.url),
                       ("WARROOM_DATA_DIR", str(live.services.settings.data_dir))):
        monkeypatch.setenv(key, value)
    empty = live.services.settings.data_dir / "empty.yaml"
    empty.write_text("teams:\n  - {name: payments}\n")
    res = CliRunner().invoke(app, ["experts", "import", str(empty), "--prune"])
    assert res.exit_code == 1 and "lists no experts, and --prune would deactivate everyone" in str(res.exception)
    res = CliRunner().invoke(app, ["experts", "import", str(staff), "--prune"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["deactivated"] == ["U0BOB", "U0ERIN"]
    assert "by mistake? warroom experts activate U0BOB U0ERIN" in res.stderr
    with live.db.session() as s:
        still = set(s.scalars(select(Expert.slack_user_id).where(Expert.active.is_(True))))
    assert still == everyone - {"U0BOB", "U0ERIN"}
    live.drain(due_within_s=60)
    told = " ".join(blocks_to_text(m.get("blocks") or []) for m in live.standin.messages("C0PAYMENTS"))
    assert "<@U0BOB> (Bob Okafor) is no longer in staff.csv: warroom no longer routes or pages to them" in told
    res = CliRunner().invoke(app, ["experts", "import", str(staff), "--prune"])  # again: nobody more
    assert json.loads(res.stdout.strip().splitlines()[-1])["deactivated"] == []
    # Erin was pruned by mistake (the export missed her): a re-import would not bring her back, this does
    res = CliRunner().invoke(app, ["experts", "activate", "U0ERIN", "U0NOPE"])
    assert res.exit_code == 1 and "nothing changed: no expert U0NOPE" in str(res.exception)
    res = CliRunner().invoke(app, ["experts", "activate", "U0ERIN", "U0ALICE"])
    assert res.exit_code == 0 and json.loads(res.stdout) == {"activated": ["U0ERIN"]}  # Alice was active
    res = CliRunner().invoke(app, ["experts", "deactivate", "U0ALICE"])
    assert res.exit_code == 0 and json.loads(res.stdout) == {"deactivated": ["U0ALICE"]}
    with live.db.session() as s:
        now_active = set(s.scalars(select(Expert.slack_user_id).where(Expert.active.is_(True))))
    assert now_active == (everyone - {"U0BOB", "U0ALICE"})


def test_who_was_on_call_last_night_and_who_is_tonight(live: Live) -> None:
    """"Who was on call last night?" answered for now: the words were not read. Last night is the last 03:00 gone in
    the asker's zone."""
    now = _only_payments_shifts(live, (("U0ALICE", -48, 0), ("U0BOB", 0, 48)))
    ny = now.replace(tzinfo=dt.UTC).astimezone(ZoneInfo("America/New_York"))
    night = ny.replace(hour=3, minute=0, second=0)
    night = night if night <= ny else night - dt.timedelta(days=1)
    live.driver.mention("who was on call for payments last night?", user="U0ERIN", channel="C0OPS")
    live.drain()
    said = blocks_to_text(live.standin.messages("C0OPS")[-1].get("blocks") or [])
    utc = night.astimezone(dt.UTC)
    assert f"Was on call at {utc:%a %d %b %H:%M} UTC (03:00 your time)" in said, said
    assert "<@U0ALICE> (Alice Moreau)" in said.split("next")[0], said
    live.driver.mention("who is on call for payments tonight?", user="U0ERIN", channel="C0OPS")
    live.drain()
    said = blocks_to_text(live.standin.messages("C0OPS")[-1].get("blocks") or [])
    assert "Will be on call at" in said and "22:00 your time" in said, said  # "tonight" is 22:00, as before
