"""Who is who: experts import (YAML/CSV), iCal on-call import, the CLI doors and their bad input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import Settings
from knowledge.db import Database
from knowledge.models import Expert, OnCallShift, Service, Team
from knowledge.people import oncall_by_team, oncall_now
from knowledge.people_import import PeopleImportError, import_ical, import_people

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//oncall//EN
BEGIN:VEVENT
UID:1@test
DTSTART:20260101T000000Z
DTEND:20351231T000000Z
SUMMARY:On call: Bob Okafor
ATTENDEE:mailto:bob@example.com
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def env(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("WARROOM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WARROOM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("WARROOM_MODE", "test")
    monkeypatch.setenv("WARROOM_EMBEDDER", "hash")
    return {}


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    if isinstance(res.exception, Exception) and not isinstance(res.exception, SystemExit):
        from bot.cli import CliError

        assert isinstance(res.exception, CliError), repr(res.exception)
        return 1, str(res.exception)
    return res.exit_code, res.output


def test_csv_import_adds_updates_and_deactivates(db: Database, tmp_path: Path) -> None:
    f = tmp_path / "people.csv"
    f.write_text("slack_user_id,name,team,services,skills,timezone,active,email\n"
                 "U0NEW,Nina West,payments,payments-api;checkout-web,java,Europe/Lisbon,true,nina@example.com\n"
                 "U0BOB,Bob Okafor,payments,billing-worker,python,Europe/London,false,bob@example.com\n")
    with db.session() as s:
        rep = import_people(session=s, path=f)
    assert (rep.experts_added, rep.experts_updated) == (1, 1)
    excel = tmp_path / "excel.csv"  # Excel's "CSV UTF-8": a byte-order mark, then the header ("missing column(s)
    excel.write_bytes(b"\xef\xbb\xbf" + f.read_bytes().replace(b"U0NEW", b"U0XLS"))  # slack_user_id" before)
    with db.session() as s:
        assert import_people(session=s, path=excel).experts_added == 1
    for sep, uid in ((";", "U0SEMI"), ("\t", "U0TAB")):  # Excel in de/fr/... writes semicolons; tab-separated
        other = tmp_path / f"people-{uid}.csv"
        other.write_text(f"slack_user_id{sep}name{sep}team{sep}services\n{uid}{sep}Sam Roe{sep}payments{sep}"
                         f"payments-api;checkout-web\n".replace("payments-api;checkout-web",
                                                               '"payments-api;checkout-web"' if sep == ";" else
                                                               "payments-api;checkout-web"))
        with db.session() as s:
            assert import_people(session=s, path=other).experts_added == 1, sep
        with db.session() as s:
            sam = s.scalars(select(Expert).where(Expert.slack_user_id == uid)).one()
            assert (sam.name, sam.services) == ("Sam Roe", ["payments-api", "checkout-web"]), sep
    with db.session() as s:
        nina = s.scalars(select(Expert).where(Expert.slack_user_id == "U0NEW")).one()
        bob = s.scalars(select(Expert).where(Expert.slack_user_id == "U0BOB")).one()
        assert nina.services == ["payments-api", "checkout-web"] and nina.timezone == "Europe/Lisbon"
        assert bob.active is False and bob.email == "bob@example.com"


def test_yaml_import_with_team_service_and_rotation(db: Database, tmp_path: Path) -> None:
    f = tmp_path / "org.yaml"
    f.write_text("teams: [{name: search, slack_channel: C0SEARCH}]\n"
                 "services: [{name: search-api, team: search, escalation: [U0ZED]}]\n"
                 "experts: [{slack_user_id: U0ZED, name: Zed Ali, team: search, services: [search-api]}]\n"
                 "rotations: [{team: search, start: '2026-01-05', members: [U0ZED]}]\n")
    with db.session() as s:
        rep = import_people(session=s, path=f)
        assert rep.teams == 1 and rep.services == 1 and rep.experts_added == 1 and rep.shifts > 0
    with db.session() as s:
        team = s.scalars(select(Team).where(Team.name == "search")).one()
        assert [e.slack_user_id for e in oncall_now(session=s, team_id=team.id)] == ["U0ZED"]
        assert s.scalars(select(Service).where(Service.name == "search-api")).one().escalation == ["U0ZED"]
    # A start with its UTC offset and no timezone (a traceback before: naive and aware times compared).
    day = dt.date.today() - dt.timedelta(days=14)
    f.write_text(f"rotations: [{{team: search, start: '{day}T09:00:00+01:00', members: [U0ZED]}}]\n")
    with db.session() as s:
        import_people(session=s, path=f)
        team = s.scalars(select(Team).where(Team.name == "search")).one()
        first = s.scalar(select(func.min(OnCallShift.starts_at)).where(OnCallShift.team_id == team.id))
    assert first == dt.datetime(day.year, day.month, day.day, 8, 0)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_names_with_capitals_beyond_ascii_are_found_on_both_databases(kind: str, tmp_path: Path) -> None:
    """On SQLite, lower('Zahlungsverkehr-Ä') kept its 'Ä': an expert naming the team "Zahlungsverkehr-Ä" did not
    find the team the same file had just added, and the import died on the unique team name (IntegrityError)."""
    from knowledge.people import service_named, team_in_text, team_named
    from tests.conftest import seeded_database

    db = seeded_database(kind, tmp_path)
    f = tmp_path / "org.yaml"
    f.write_text("teams: [{name: Zahlungsverkehr-Ä, slack_channel: C0ZV}]\n"
                 "services: [{name: Überweisung-API, team: Zahlungsverkehr-Ä}]\n"
                 "experts: [{slack_user_id: U0JOZ, name: Jürgen Öztürk, team: Zahlungsverkehr-Ä}]\n"
                 "rotations: [{team: ZAHLUNGSVERKEHR-Ä, start: '2026-01-05', members: [U0JOZ]}]\n")
    for _ in range(2):  # a second import of the same file changes nothing
        with db.session() as s:
            rep = import_people(session=s, path=f)
    assert (rep.teams, rep.services, rep.experts_added) == (0, 0, 0)
    with db.session() as s:
        team = team_named(session=s, name="zahlungsverkehr-ä")
        assert team is not None and team.name == "Zahlungsverkehr-Ä"
        assert s.scalars(select(Team).where(Team.name.like("Zahlungsverkehr%"))).all() == [team]
        svc = service_named(session=s, name="ÜBERWEISUNG-api")
        assert svc is not None and svc.team_id == team.id
        assert team_in_text(session=s, text="who is on call for überweisung-api?") == "Zahlungsverkehr-Ä"
        assert [e.slack_user_id for e in oncall_now(session=s, team_id=team.id)] == ["U0JOZ"]


@pytest.mark.parametrize(("name", "body", "message"), [
    ("a.csv", "name,team\nX,payments\n", "missing column(s) slack_user_id"),
    ("b.csv", "slack_user_id,name,team\nU0A1,,payments\n", "row 2: missing name"),
    ("c.csv", "slack_user_id,name,team,timezone\nU0A1,A,payments,Mars/Base\n", "unknown time zone 'Mars/Base'"),
    ("d.csv", "slack_user_id,name,team,active\nU0A1,A,payments,maybe\n", "'active' must be true or false"),
    ("e.yaml", "experts: [unclosed\n", "not valid YAML"),
    ("f.yaml", "just a string\n", "expected a mapping"),
    ("g.yaml", "rotations: [{team: nope, start: '2026-01-05', members: [U0ALICE]}]\n", "unknown team 'nope'"),
    ("h.txt", "x", "use a .yaml, .yml or .csv file"),
    # a traceback (int('abc'), int([1])) or a silent 1.7 -> 1 and 99999999999 (past PostgreSQL's INTEGER) before
    ("i.yaml", "services: [{name: s1, team: payments, tier: abc}]\n", "tier 'abc' is not a whole number from 0 to 9"),
    ("j.yaml", "services: [{name: s1, team: payments, tier: [1]}]\n", "tier '[1]' is not a whole number"),
    ("k.yaml", "services: [{name: s1, team: payments, tier: 99999999999}]\n", "is not a whole number from 0 to 9"),
    ("l.yaml", "services: [{name: s1, team: payments, tier: 1.7}]\n", "tier '1.7' is not a whole number"),
    ("m.yaml", "services: [{name: 'pay ments!', team: payments}]\n", "'pay ments!' is not a service name"),
    ("n.csv", "slack_user_id,name,team\nalice@example.com,A,payments\n", "is not a Slack user id"),
    # a rotation's turn length and local time (knowledge/rotations.py)
    ("o.yaml", "rotations: [{team: payments, start: '2026-01-05', days: 0, members: [U0ALICE]}]\n",
     "days '0' is not a whole number from 1 to 366"),
    ("p.yaml", "rotations: [{team: payments, start: '2026-01-05', days: 7, hours: 12, members: [U0ALICE]}]\n",
     "give a turn's length as days or hours, not both"),
    ("q.yaml", "rotations: [{team: payments, start: '2026-01-05', hours: 1.5, members: [U0ALICE]}]\n",
     "hours '1.5' is not a whole number from 1 to 8784"),
    ("r.yaml", "rotations: [{team: payments, start: '2026-01-05', timezone: Mars/Base, members: [U0ALICE]}]\n",
     "unknown time zone 'Mars/Base'"),
])
def test_bad_people_files_give_one_line(db: Database, tmp_path: Path, name: str, body: str, message: str) -> None:
    f = tmp_path / name
    f.write_text(body)
    with pytest.raises(PeopleImportError) as err, db.session() as s:
        import_people(session=s, path=f)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_ical_import_overrides_the_rotation(db: Database, tmp_path: Path) -> None:
    with db.session() as s:
        (row,) = oncall_by_team(session=s, team="payments")
        (rotation,) = [u for u, _ in row.people]  # this week's rotation person; the calendar names the other one
        other, name = ("U0ALICE", "Alice Moreau") if rotation == "U0BOB" else ("U0BOB", "Bob Okafor")
        s.scalars(select(Expert).where(Expert.slack_user_id == other)).one().email = "cover@example.com"
    f = tmp_path / "payments.ics"
    f.write_text(ICS.replace("Bob Okafor", name).replace("bob@example.com", "cover@example.com"))
    with db.session() as s:
        assert import_ical(session=s, path=f, team="payments").shifts == 1
    with db.session() as s:
        (row,) = oncall_by_team(session=s, team="payments")
        assert [u for u, _ in row.people] == [other]  # the override replaces the rotation, not joins it
        assert s.scalars(select(OnCallShift).where(OnCallShift.source == "ical")).one()


@pytest.mark.parametrize(("body", "message"), [
    ("this is not a calendar", "not a valid iCal file"),
    ("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n", "no VEVENT"),
    (ICS.replace("DTEND:20351231T000000Z", "DTEND:20250101T000000Z"), "ends before it starts"),
    (ICS.replace("Bob Okafor", "Nobody Known").replace("bob@example.com", "x@y.z"), "no known expert"),
])
def test_malformed_ical_gives_one_line(db: Database, tmp_path: Path, body: str, message: str) -> None:
    f = tmp_path / "bad.ics"
    f.write_text(body)
    with pytest.raises(PeopleImportError) as err, db.session() as s:
        import_ical(session=s, path=f, team="payments")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_doors(env: dict[str, str], tmp_path: Path) -> None:
    people = tmp_path / "p.csv"
    people.write_text("slack_user_id,name,team\nU0NEW,Nina West,payments\n")
    code, out = _cli("experts", "import", str(people))
    assert code == 0 and json.loads(out)["experts_added"] == 1
    ics = tmp_path / "on.ics"
    ics.write_text(ICS.replace("Bob Okafor", "Nina West").replace("bob@example.com", "nina@nowhere"))
    code, out = _cli("oncall", "import-ical", str(ics), "--team", "payments")
    assert code == 0 and json.loads(out) == {"team": "payments", "shifts": 1}
    code, out = _cli("oncall", "show", "payments")
    assert code == 0 and "payments: Nina West (U0NEW) (per the calendar)" in out
    code, out = _cli("oncall", "show", "checkout-web", "ingest")  # services, as /oncall takes them: their owners
    assert code == 0 and [line.split(":")[0] for line in out.splitlines()] == ["payments", "data"], out
    code, out = _cli("oncall", "show", "paymnts")
    assert code == 1 and "no team called 'paymnts'" in out
    code, out = _cli("oncall", "show", "payments", "--at", "2030-06-01 14:00 Europe/Berlin")  # inside the calendar
    assert code == 0 and out.splitlines()[0] == "at 2030-06-01 12:00 UTC" and "Nina West" in out, out
    code, out = _cli("oncall", "show", "payments", "--at", "2025-06-01 12:00")  # before it: the calendar is not on
    assert code == 0 and "payments: nobody; next: Nina West (U0NEW) from 2026-01-01 00:00 UTC" in out, out
    for bad_at, said in (("someday", "cannot read 'someday' as a time"), ("tomorrow blah", "cannot read"),
                         ("25:00", "is not a time of day")):
        code, out = _cli("oncall", "show", "payments", "--at", bad_at)
        assert code == 1 and said in out, out
    bad = tmp_path / "bad.ics"
    bad.write_text("garbage")
    code, out = _cli("oncall", "import-ical", str(bad), "--team", "payments")
    assert code == 1 and "not a valid iCal file" in out
    code, out = _cli("oncall", "import-ical", str(ics), "--team", "nope")
    assert code == 1 and "no team called 'nope'" in out
    code, out = _cli("experts", "import", str(tmp_path / "missing.csv"))
    assert code == 1 and "cannot read" in out


def test_ical_rotation_that_repeats_is_on_call_every_turn(db: Database, tmp_path: Path) -> None:
    """How calendars hold a rotation: one event per person repeating every 2 weeks (RRULE), a cancelled week
    (EXDATE) and a swap for one week (RECURRENCE-ID). Each occurrence is a shift: the right person is on
    call this week, in three weeks and in five, not only on the first week."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    monday = (now - dt.timedelta(days=now.weekday())).replace(hour=9, minute=0, second=0, microsecond=0)
    a0 = monday - dt.timedelta(weeks=4)  # Alice on even weeks from 4 weeks ago, Bob on odd ones

    def stamp(t: dt.datetime) -> str:
        return t.strftime("%Y%m%dT%H%M%SZ")

    swap = a0 + dt.timedelta(weeks=6)  # Alice's turn two weeks from now: Bob covers it
    ics = "\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//rotation//EN",
        "BEGIN:VEVENT", "UID:alice@rota", f"DTSTART:{stamp(a0)}", f"DTEND:{stamp(a0 + dt.timedelta(weeks=1))}",
        "RRULE:FREQ=WEEKLY;INTERVAL=2", "SUMMARY:On call: Alice Moreau", "END:VEVENT",
        "BEGIN:VEVENT", "UID:alice@rota", f"RECURRENCE-ID:{stamp(swap)}", f"DTSTART:{stamp(swap)}",
        f"DTEND:{stamp(swap + dt.timedelta(weeks=1))}", "SUMMARY:On call: Bob Okafor (swap)", "END:VEVENT",
        "BEGIN:VEVENT", "UID:bob@rota", f"DTSTART:{stamp(a0 + dt.timedelta(weeks=1))}",
        f"DTEND:{stamp(a0 + dt.timedelta(weeks=2))}", "RRULE:FREQ=WEEKLY;INTERVAL=2",
        f"EXDATE:{stamp(a0 + dt.timedelta(weeks=7))}", "SUMMARY:On call: Bob Okafor", "END:VEVENT",
        "END:VCALENDAR", ""])
    f = tmp_path / "rota.ics"
    f.write_text(ics)
    with db.session() as s:
        shifts = import_ical(session=s, path=f, team="payments").shifts
    assert 28 <= shifts <= 31, shifts  # 30 days back to 180 ahead: one shift a week, one cancelled

    def on_call(weeks: int) -> list[str]:
        with db.session() as s:
            (row,) = oncall_by_team(session=s, team="payments", at=now + dt.timedelta(weeks=weeks))
            return [u for u, _ in row.people]

    assert on_call(0) == ["U0ALICE"] and on_call(1) == ["U0BOB"] and on_call(5) == ["U0BOB"]
    assert on_call(2) == ["U0BOB"], "the swapped week is Bob's"
    assert on_call(4) == ["U0ALICE"], "not only the first week"
    assert "U0BOB" not in on_call(3), "Bob's cancelled week (EXDATE) is not his"


def test_ical_rrule_every_minute_is_refused(db: Database, tmp_path: Path) -> None:
    f = tmp_path / "mad.ics"
    f.write_text(ICS.replace("DTEND:20351231T000000Z", "DTEND:20260101T000100Z\nRRULE:FREQ=MINUTELY"))
    with pytest.raises(PeopleImportError, match="more than 5,000 shifts") as err, db.session() as s:
        import_ical(session=s, path=f, team="payments")
    assert "\n" not in str(err.value)


def test_ical_rules_are_judged_before_they_are_expanded(db: Database, tmp_path: Path) -> None:
    """Expanding a rule costs CPU for every repeat from its first DTSTART: an hourly rule from 2000 is refused from
    the rule itself, while a minutely rule that stops after ten repeats (COUNT) is ten shifts."""
    import datetime as dt

    f = tmp_path / "old.ics"
    f.write_text(ICS.replace("DTSTART:20260101T000000Z", "DTSTART:20000101T000000Z")
                 .replace("DTEND:20351231T000000Z", "DTEND:20000101T003000Z\nRRULE:FREQ=HOURLY;BYHOUR=9"))
    with pytest.raises(PeopleImportError, match="starts? decades ago") as err, db.session() as s:
        import_ical(session=s, path=f, team="payments")
    assert "\n" not in str(err.value)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y%m%dT%H%M00Z")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1, minutes=1)).strftime("%Y%m%dT%H%M00Z")
    f.write_text(ICS.replace("DTSTART:20260101T000000Z", f"DTSTART:{soon}")
                 .replace("DTEND:20351231T000000Z", f"DTEND:{later}\nRRULE:FREQ=MINUTELY;COUNT=10"))
    with db.session() as s:
        assert import_ical(session=s, path=f, team="payments").shifts == 10


def test_google_calendar_times_are_in_its_x_wr_timezone(db: Database, tmp_path: Path) -> None:
    """Google Calendar writes times without a zone and names the zone once (X-WR-TIMEZONE): 09:00 in New York
    is 14:00 UTC in January, not 09:00 UTC."""
    import datetime as dt

    f = tmp_path / "google.ics"
    f.write_text(ICS.replace("VERSION:2.0", "VERSION:2.0\nX-WR-TIMEZONE:America/New_York")
                 .replace("DTSTART:20260101T000000Z", "DTSTART:20270105T090000")
                 .replace("DTEND:20351231T000000Z", "DTEND:20270112T090000"))
    with db.session() as s:
        assert import_ical(session=s, path=f, team="payments").shifts == 1
    with db.session() as s:
        shift = s.scalars(select(OnCallShift).where(OnCallShift.source == "ical")).one()
        assert shift.starts_at == dt.datetime(2027, 1, 5, 14, 0) and shift.ends_at == dt.datetime(2027, 1, 12, 14, 0)
    f.write_text(ICS.replace("VERSION:2.0", "VERSION:2.0\nX-WR-TIMEZONE:Mars/Olympus_Mons")
                 .replace("DTSTART:20260101T000000Z", "DTSTART:20270105T090000"))
    with pytest.raises(PeopleImportError) as err, db.session() as s:
        import_ical(session=s, path=f, team="payments")
    assert "\n" not in str(err.value)
