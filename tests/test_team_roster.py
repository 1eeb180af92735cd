"""Who of a team is around ("is anyone awake in data?", "who is on the storage team?"), and nearby questions that went
to the knowledge base or to the wrong answer: "is anyone on call for payments?", "who can help with postgres-main?",
"anything burning?". Through the real app: signed mentions in, the Slack stand-in and the database checked."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot.render import blocks_to_text
from knowledge.models import utcnow
from knowledge.people import oncall_by_team
from tests.conftest import Live, open_incidents
from tests.test_incident_words import _say


def _working(zone: str, at: dt.datetime) -> bool:
    """Weekdays 09:00-18:00 local time, worked out here independently of the bot."""
    loc = at.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone))
    return loc.weekday() < 5 and 9 <= loc.hour < 18


def _on_call(live: Live, team: str) -> list[str]:
    with live.db.session() as s:
        (row,) = oncall_by_team(session=s, team=team)
    return [u for u, _ in row.people]


DATA = {"U0ERIN": "America/New_York", "U0FARID": "Europe/Berlin"}  # and Lena Fischer, who left


def test_is_anyone_awake_in_a_team_names_who_is_on_call_and_who_is_within_working_hours(live: Live) -> None:
    """It answered "I found nothing in the knowledge base" (and "who's around in payments?" the closest passages)."""
    for _ in range(2):  # asked again if an hour boundary (09:00, 18:00 somewhere) passed while it was answered
        now = utcnow()
        said = _say(live, "is anyone awake in data?")
        working = [u for u, z in DATA.items() if _working(z, now)]
        if working == [u for u, z in DATA.items() if _working(z, utcnow())] and now.date() == utcnow().date():
            break
    assert "I found nothing" not in said and "knowledge base" not in said
    (oncall,) = _on_call(live, "data")
    if working:
        assert f"*data*: {len(working)} of 2 within working hours now" in said
        assert all(f"<@{u}>" in said.split("within working hours now")[1] for u in working)
    else:
        assert f"*data*: nobody within working hours now; on call: <@{oncall}> (`@warroom page data` pages" in said
    for uid, zone in DATA.items():  # each member: local time, working hours or not
        loc = now.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone))
        line = next(ln for ln in said.splitlines() if ln.startswith(f"<@{uid}>"))
        assert f"{zone}" in line and (("within" if uid in working else "outside") + " working hours") in line, line
        assert loc.strftime("%a") in line
        assert ("on call until" in line) == (uid == oncall), line
    assert "Left (deactivated, skipped by routing and pages): Lena Fischer" in said
    assert said.index(f"<@{oncall}> (") < said.index("Lena Fischer")  # the on-call person first

    for question in ("who's around in ingest right now?", "anybody online from the data team?",
                     "who are the members of data?", "who is on the data team?"):  # a service: its team
        assert "*data*:" in _say(live, question) and "<@U0FARID> (Farid Haddad)" in _say(live, question), question


def test_the_team_asked_about_by_default_covers_and_open_incidents(live: Live) -> None:
    said = _say(live, "who else is around?", user="U0IRIS")  # no team named: the asker's own
    assert "*storage*:" in said and "<@U0JONAS> (Jonas Berg)" in said and "*payments*" not in said
    said = _say(live, "anyone around?", user="U0NOBODY")  # in no experts file
    assert "Which team? Name one or one of its services" in said and "payments" in said
    (inc,) = open_incidents(live, "ingest lag growing on kafka consumers sev2")
    assert live.driver.command("/incident", f"assign <@U0FARID> {inc.id}", user="U0ERIN",
                               channel="C0OPS").status_code == 200
    live.drain()
    said = _say(live, "is anyone around?", user="U0IRIS", channel="C0INCIDENTS", thread=inc.card_ts)  # its team
    assert "*data*:" in said and "*storage*" not in said
    farid = next(ln for ln in said.splitlines() if ln.startswith("<@U0FARID>"))
    assert "on 1 open incident(s)" in farid
    # someone from another team covers data: listed, said so
    oncall = _on_call(live, "data")[0]
    assert live.driver.command("/oncall", "cover data for 2h <@U0ALICE>", user=oncall,
                               channel="C0OPS").status_code == 200
    live.drain()
    assert _on_call(live, "data") == ["U0ALICE"]
    said = _say(live, "who is available in data?")
    alice = next(ln for ln in said.splitlines() if ln.startswith("<@U0ALICE>"))
    assert "on call until" in alice and "covering, of payments" in alice
    assert said.index("<@U0ALICE> (") < said.index("<@U0ERIN> (")
    # two teams at once; a person's own availability is still the person card
    said = _say(live, "who's around in storage and platform?")
    assert "*storage*:" in said and "*platform*:" in said and "<@U0KEMAL> (Kemal Aydin)" in said
    assert "<@U0BOB> (Bob Okafor), payments team: " in _say(live, "is bob around?")


def test_on_call_help_and_burning_in_words(live: Live) -> None:
    """"is anyone on call for payments?" got the knowledge base's passages, "who can help with postgres-main?" too,
    and "anything burning?" "I found nothing"."""
    said = _say(live, "is anyone on call for payments?")
    assert "On call now" in said and f"<@{_on_call(live, 'payments')[0]}>" in said and "knowledge base" not in said
    said = _say(live, "is there somebody on call for dns?")
    assert "*platform*:" in said and f"<@{_on_call(live, 'platform')[0]}>" in said
    said = _say(live, "who can help with postgres-main?")
    assert "Route:" in said and "declared owner of postgres-main" in said
    said = _say(live, "who could help?")  # about nothing: asked back, not a guess
    assert "Help with what? Name the service or the symptom" in said and "Route:" not in said
    (inc,) = open_incidents(live, "checkout-web 404 on cart page sev3")
    said = _say(live, "who can help?", channel="C0INCIDENTS", thread=inc.card_ts)  # under its card: for it
    assert "Route:" in said and "Help with what" not in said
    for question in ("anything burning?", "is anything broken right now?"):
        said = _say(live, question)
        assert "I am up. 1 open incident(s)" in said and f"#{inc.id}" in said, question


def test_when_the_rotation_changes_and_who_is_next(live: Live) -> None:
    """"When does the payments rotation change?" and "who's next on call for payments?" got the knowledge base's
    passages, "who's up next?" a ranking of who should take the words: /oncall says who is on call, until when, and
    who takes over."""
    for asked, team in (("when does the payments rotation change?", "payments"),
                        ("who's next on call for payments?", "payments"), ("when is the next handover for dns?",
                                                                            "platform"),
                        ("who's up next?", "storage")):  # no team named: the asker's (Iris: storage)
        said = _say(live, asked, user="U0IRIS")
        with live.db.session() as s:
            (row,) = oncall_by_team(session=s, team=team)
        assert "On call now" in said and f"*{team}*: <@{row.people[0][0]}>" in said, (asked, said)
        assert f"next: <@{row.next_people[0][0]}>" in said and "Route:" not in said, (asked, said)
    assert "Your on-call shifts" in _say(live, "when does my shift end?")  # one's own: as before
    said = _say(live, "when does jonas's shift end?", user="U0ALICE")  # someone's: their card (on call until when)
    assert "<@U0JONAS> (Jonas Berg), storage team" in said and "*On call*:" in said, said


def _buttons(live: Live, channel: str, action_id: str) -> list[dict]:
    return [el for m in live.standin.messages(channel) for b in m.get("blocks") or [] if b.get("type") == "actions"
            for el in b["elements"] if el.get("action_id") == action_id]


def test_asking_the_team_to_cover_and_taking_it_with_the_button(live: Live) -> None:
    """"I'm sick, can someone cover?" got "I don't know" from the knowledge base, "I need someone to take my pager"
    the help. The on-call person asks; the team's channel hears it; a teammate's click on *I'll cover* puts them on
    call (with /oncall cover's rules); the asker cannot take their own request; nobody else can ask for them."""
    (oncall,) = _on_call(live, "payments")
    other = "U0ALICE" if oncall == "U0BOB" else "U0BOB"
    said = _say(live, "I'm sick, can someone cover?", user=oncall, channel="C0OPS")
    assert f"<@{oncall}> asks for someone to take the payments pager from now until" in said, said
    assert "(the end of your shift)" in said and "knowledge base" not in said
    told = " ".join(m["text"] for m in live.standin.messages("C0PAYMENTS"))
    assert f"<@{oncall}> asks for someone to take the payments pager" in told and "`/oncall cover payments`" in told
    (button,) = _buttons(live, "C0OPS", "routing:cover")
    assert button["value"] == f"payments||{oncall}"
    before = len(live.standin.messages("C0OPS"))
    live.driver.click("routing:cover", button["value"], user=oncall, channel="C0OPS")  # the asker: refused
    live.drain()
    assert "You asked for the cover" in " ".join(m["text"] for m in live.standin.messages("C0OPS")[before:])
    assert _on_call(live, "payments") == [oncall]
    live.driver.click("routing:cover", button["value"], user="U0IRIS", channel="C0OPS")  # not in payments
    live.drain()
    assert "Only a member of payments" in " ".join(m["text"] for m in live.standin.messages("C0OPS")[before:])
    assert _on_call(live, "payments") == [oncall]
    live.driver.click("routing:cover", button["value"], user=other, channel="C0OPS")
    live.drain()
    assert _on_call(live, "payments") == [other]
    assert f"<@{other}> is on call for payments from now until" in " ".join(
        m["text"] for m in live.standin.messages("C0OPS")[before:])
    # a span, said in the asker's zone, handed on in UTC; someone not on call is told so, nothing is posted
    said = _say(live, "can anyone take my pager for 3h?", user=other, channel="C0OPS")
    assert "from now for 3h" in said and "`/oncall cover payments for 3h`" in said, said
    said = _say(live, "can someone cover for me?", user=oncall, channel="C0OPS")
    assert f"You are not on call for payments now (<@{other}> is)" in said, said
    for asked in ("can someone take a look at this?", "can someone cover the standup?"):  # not cover requests
        assert "Cover wanted" not in _say(live, asked, user=oncall, channel="C0OPS"), asked
    # "until 18:00" is the asker's own time (Alice: Europe/Paris), handed on in UTC for whoever takes it
    assert live.driver.command("/oncall", "cover payments for 6h", user="U0ALICE", channel="C0OPS").status_code == 200
    live.drain()
    assert _on_call(live, "payments") == ["U0ALICE"]
    said = _say(live, "I need someone to cover my shift until 18:00", user="U0ALICE", channel="C0OPS")
    paris = utcnow().replace(tzinfo=dt.UTC).astimezone(ZoneInfo("Europe/Paris"))
    end = paris.replace(hour=18, minute=0, second=0, microsecond=0)
    end = end if end > paris else end + dt.timedelta(days=1)
    utc = end.astimezone(dt.UTC)
    day = "tomorrow " if utc.date() > utcnow().date() else ""
    assert f"from now until {day}{utc:%H:%M} UTC" in said, said


def test_taking_the_pager_in_words_who_handles_and_who_was_on_call_during(live: Live) -> None:
    """"I'll take the pager for platform" got the help, "who handles dns?" the knowledge base's passages, and "who
    was on call during #109?" the team on call now."""
    said = _say(live, "I'll take the pager for platform", user="U0CARLA", channel="C0OPS")
    assert "Take the pager: platform" in said and "`/oncall cover platform`" in said, said
    (button,) = _buttons(live, "C0OPS", "routing:take_pager")
    assert button["value"] == "platform|"
    live.driver.click("routing:take_pager", button["value"], user="U0CARLA", channel="C0OPS")
    live.drain()
    assert _on_call(live, "platform") == ["U0CARLA"]
    live.driver.click("routing:take_pager", button["value"], user="U0IRIS", channel="C0OPS")  # not in platform
    live.drain()
    assert "Only a member of platform" in live.standin.messages("C0OPS")[-1]["text"]
    assert _on_call(live, "platform") == ["U0CARLA"]
    said = _say(live, "who handles dns?", channel="C0OPS")
    assert "Route:" in said and "declared owner of dns" in said and "knowledge base" not in said, said
    said = _say(live, "who was on call during #109?", channel="C0OPS")  # last July's kafka incident: data's, then
    assert "On call when #109 opened: data" in said and "Was on call at" in said, said


def _cmd(live: Live, command: str, text: str, user: str = "U0CARLA") -> str:
    before = len(live.standin.messages("C0OPS"))
    assert live.driver.command(command, text, user=user, channel="C0OPS").status_code == 200
    live.drain()
    return "\n".join(m["text"] + "\n" + blocks_to_text(m.get("blocks") or [])
                     for m in live.standin.messages("C0OPS")[before:])


def test_the_oncall_and_route_commands_take_the_words_people_type(live: Live) -> None:
    """`/oncall help` said "no team called 'help'", `/route help` routed the word "help", `/oncall all` "no team called
    'all'", `/oncall schedule platform` "I cannot read `schedule`"; `/oncall around` and `/oncall load` are the
    answers to "who's around?" and "who's been paged the most?"."""
    for command in ("/oncall", "/route"):
        said = _cmd(live, command, "help")
        assert "warroom help: routing" in said and "`/oncall around [team]`" in said and "Route:" not in said, said
    said = _cmd(live, "/oncall", "all")
    assert "no team called" not in said and "*payments*:" in said and "*storage*:" in said, said
    said = _cmd(live, "/oncall", "schedule platform")
    assert "I cannot read" not in said and "*platform*:" in said, said
    said = _cmd(live, "/oncall", "around storage")
    assert "*storage*:" in said and "<@U0IRIS> (Iris Novak)" in said, said
    said = _cmd(live, "/oncall", "load this month")
    assert "On-call load" in said and "the last 30 days" in said, said
    assert "I cannot read `wek`" in _cmd(live, "/oncall", "platform wek")  # still said back


def test_a_teams_channel_is_asked_for_by_name_or_by_a_service_it_owns(live: Live) -> None:
    """"What's the slack channel for payments?" answered with a postmortem passage, "how do I reach the platform
    team?" with the knowledge base's closest incident. Now the team's channel heads its roster."""
    for words, team, channel in (("what's the slack channel for payments?", "payments", "C0PAYMENTS"),
                                 ("what's the channel for payments-api?", "payments", "C0PAYMENTS"),
                                 ("which channel is storage in?", "storage", "C0STORAGE"),
                                 ("how do I reach the platform team?", "platform", "C0PLATFORM")):
        said = _say(live, words)
        assert f"*{team}*:" in said and f"channel <#{channel}>" in said and "knowledge base" not in said, (words, said)
    assert "== Who is around ==" not in _say(live, "how do I restart ingest?")  # a how-to is still the knowledge base's
