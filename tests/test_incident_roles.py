"""Incident roles (commander, comms, scribe, ops) through the real app: said in words under the card or with
`/incident role`, shown on the card and by "who's on this?", and the update reminders ask the comms lead first."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.render import blocks_to_text
from bot.settings import Settings
from knowledge.models import Incident, TimelineEvent
from tests.conftest import Live, make_settings, open_incidents


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    return make_settings(tmp_path, standin, update_reminder_s={1: 1.0}, update_reminder_max=1, warm_models=False)


def _say(live: Live, inc: Incident, text: str, user: str) -> str:
    """A mention in the incident card's thread; the bot's answer there."""
    ts = f"{time.time():.6f}"
    assert live.driver.event({"type": "app_mention", "user": user, "ts": ts, "event_ts": ts,
                              "text": f"<@UWARROOM> {text}", "thread_ts": inc.card_ts,
                              "channel": inc.channel_id}).status_code == 200
    live.drain()
    return [m["text"] for m in live.standin.messages(inc.channel_id) if m.get("thread_ts") == inc.card_ts][-1]


def _cmd(live: Live, text: str, user: str = "U0ALICE") -> str:
    assert live.driver.command("/incident", text, user=user, channel="C0ROLES").status_code == 200
    live.drain()
    return live.standin.messages("C0ROLES")[-1]["text"]


def _card(live: Live, inc: Incident) -> str:
    (msg,) = [m for m in live.standin.messages(inc.channel_id) if m.get("ts") == inc.card_ts]
    return blocks_to_text(msg.get("blocks") or [])


def test_roles_in_words_and_commands_on_the_card_and_in_the_reminders(live: Live) -> None:
    (pay,) = open_incidents(live, "payments-api returning 503 sev1")
    assert "I'll do comms" in _say(live, pay, "who's on comms?", "U0CARLA")  # nobody yet: how to take it
    assert _say(live, pay, "I'll do comms", "U0CARLA").endswith(
        f"<@U0CARLA> is comms on incident #{pay.id}. The update reminders ask them first.")
    assert _say(live, pay, "<@U0DEV> is the scribe", "U0ALICE").endswith(f"<@U0DEV> is scribe on incident #{pay.id}.")
    assert _cmd(live, f"role commander <@U0BOB> {pay.id}").endswith(f"Incident #{pay.id} is assigned to <@U0BOB>.")
    card = _card(live, pay)
    assert "*Assignee*: <@U0BOB>" in card and "*Roles*: Comms <@U0CARLA> · Scribe <@U0DEV>" in card
    who = _say(live, pay, "who's on this?", "U0ERIN")
    assert "Roles: Commander <@U0BOB>, Comms <@U0CARLA>, Scribe <@U0DEV>." in who

    _cmd(live, "handover")
    handover = blocks_to_text(live.standin.messages("C0ROLES")[-1]["blocks"])
    assert "(payments-api, <@U0BOB>, comms <@U0CARLA>)" in handover
    # The reminder asks comms first, then the commander (the incident is acknowledged: taken by Bob)
    _cmd(live, f"ack {pay.id}", user="U0BOB")
    time.sleep(1.2)
    live.drain(30)
    (ask,) = [m["text"] for m in live.standin.messages(pay.channel_id)
              if m.get("thread_ts") == pay.card_ts and "has had no update for" in m["text"]]
    assert "<@U0CARLA>, <@U0BOB>, please post one here" in ask

    # Changes and clearing, on the timeline (a role is not a status update: it does not reset the reminders)
    assert _cmd(live, f"role comms me {pay.id}", user="U0ERIN").endswith(
        f"<@U0ERIN> is comms on incident #{pay.id}. The update reminders ask them first.")
    assert _cmd(live, f"role scribe none {pay.id}").endswith(f"Incident #{pay.id} has no scribe now (was <@U0DEV>).")
    with live.db.session() as s:
        roles = [e.text for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == pay.id,
                                                                       TimelineEvent.kind == "role")
                                            .order_by(TimelineEvent.id))]
    assert roles == ["Comms: <@U0CARLA>, set by <@U0CARLA>", "Scribe: <@U0DEV>, set by <@U0ALICE>",
                     "Comms: <@U0ERIN> (was <@U0CARLA>), set by <@U0ERIN>",
                     "Scribe: <@U0DEV> no longer (by <@U0ALICE>)"]
    assert [ln for ln in _card(live, pay).splitlines() if ln.startswith("*Roles*")] == ["*Roles*: Comms <@U0ERIN>"]

    # Bad input: a clear private answer, nothing changed
    for text, said in ((f"role chef <@U0BOB> {pay.id}", "Usage: `/incident role <commander|comms|scribe|ops>"),
                       (f"role comms {pay.id} please", "Usage: `/incident role"),
                       (f"role commander none {pay.id}", "An open incident keeps its commander"),
                       ("role comms <@U0BOB> 99999", "There is no incident #99999")):
        assert said in _cmd(live, text), text
    _cmd(live, f"resolve {pay.id} raised the pool limit", user="U0BOB")
    assert "its roles are over" in _cmd(live, f"role ops <@U0BOB> {pay.id}")
    with live.db.session() as s:
        inc = s.get(Incident, pay.id)
        assert inc is not None and inc.assignee == "U0BOB" and inc.findings["roles"] == {"comms": "U0ERIN"}


def test_guests_and_people_from_other_organisations_can_follow_but_not_change_an_incident(live: Live) -> None:
    """A vendor in a shared (Slack Connect) incident channel, a guest: they read it and post notes; resolving,
    escalating (which pages people), taking it or changing its severity is for members of the workspace."""
    live.standin.users.update({"U0VENDOR": {"team_id": "T0VENDORCO"}, "U0GUEST": {"is_ultra_restricted": True}})
    (inc,) = open_incidents(live, "object storage 5xx for uploads sev2")
    for user in ("U0VENDOR", "U0GUEST"):
        for cmd in (f"resolve #{inc.id} fixed on our side", f"escalate #{inc.id}", f"take #{inc.id}",
                    f"sev 1 #{inc.id}"):
            live.driver.command("/incident", cmd, user=user, channel="C0OPS")
        live.driver.command("/incident", f"note #{inc.id} our CDN had a bad deploy, rolled back", user=user,
                            channel="C0OPS")
    live.drain()
    answers = [json.dumps(m["blocks"]) for m in live.standin.messages("C0OPS") if m.get("user") in
               ("U0VENDOR", "U0GUEST") and m["ephemeral"]]
    assert sum("cannot resolve incidents here" in a for a in answers) == 2
    assert sum("Someone from another organisation (a Slack Connect channel) cannot" in a for a in answers) == 4
    assert sum("A guest account cannot" in a for a in answers) == 4
    with live.db.session() as s:
        row = s.get(Incident, inc.id)
        assert row is not None and row.status == "open" and row.severity == 2 and row.assignee is None
        notes = [e.text for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id,
                                                                       TimelineEvent.kind == "note"))]
    assert len(notes) == 2, "their notes are welcome"
    live.driver.command("/incident", f"resolve #{inc.id} CDN rollback held", user="U0BOB", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, inc.id).status == "resolved"  # type: ignore[union-attr]


def test_enterprise_grid_people_whose_ids_start_with_w_are_people(live: Live) -> None:
    """On Enterprise Grid a person's ID is organisation-wide and starts with W (W0GRIDDEV), not U: naming them
    must work as naming anyone does, and words like WARN or UTC are not people."""
    (inc,) = open_incidents(live, "checkout 5xx after the WAL disk filled sev2")
    assert _say(live, inc, "<@W0GRIDDEV> is the scribe", "W0GRIDAMY").endswith(
        f"<@W0GRIDDEV> is scribe on incident #{inc.id}.")
    assert _cmd(live, f"assign {inc.id} <@W0GRIDBEN>", user="W0GRIDAMY").endswith(
        f"Incident #{inc.id} is assigned to <@W0GRIDBEN>.")
    said = _say(live, inc, "remind <@W0GRIDDEV> in 1s to check the WAL volume", "W0GRIDAMY")
    assert "<@W0GRIDDEV>" in said and "check the WAL volume" in said, said
    card = _card(live, inc)
    assert "*Assignee*: <@W0GRIDBEN>" in card and "Scribe <@W0GRIDDEV>" in card, card
    with live.db.session() as s:
        row = s.get(Incident, inc.id)
        assert row is not None and row.assignee == "W0GRIDBEN"
    assert "assigned to" not in _cmd(live, f"assign {inc.id} WARN", user="W0GRIDAMY")


def test_roles_and_invites_by_name(live: Live) -> None:
    """"Make alice the IC", "set bob okafor as scribe", "add carla" got "I did not act on that" (a mention worked)."""
    (pay,) = open_incidents(live, "payments-api returning 503 sev1")
    assert _say(live, pay, "make alice the IC", "U0ERIN").endswith(f"Incident #{pay.id} is assigned to <@U0ALICE>.")
    assert _say(live, pay, "set bob okafor as scribe", "U0ERIN").endswith(f"<@U0BOB> is scribe on incident #{pay.id}.")
    said = _say(live, pay, "add carla", "U0ERIN")
    assert f"<@U0CARLA>: <@U0ERIN> asks you to join incident #{pay.id}" in said, said
    before = len(live.standin.messages(pay.channel_id))
    _say(live, pay, "add context", "U0ERIN")  # nobody by that name: asked back (to the asker), nothing changed
    said = " ".join(m["text"] for m in live.standin.messages(pay.channel_id)[before:])
    assert "I know nobody called `context`: mention the one you mean" in said, said
    with live.db.session() as s:
        row = s.get(Incident, pay.id)
        assert row is not None and row.assignee == "U0ALICE"
        assert (row.findings or {}).get("roles", {}).get("scribe") == "U0BOB"
