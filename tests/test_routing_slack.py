"""Routing through the real app: signed /route and /oncall commands, the incident card's buttons."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from bot.render import blocks_to_text
from knowledge.db import Database
from knowledge.models import Expert, Feedback, Incident, Job, OnCallShift, Team, TimelineEvent, utcnow
from tests.conftest import Live

CHANNEL = "C0INCIDENTS"
# Who these tests expect on call now. The sample world's weekly rotations move every Monday, so the
# current shift is pinned here instead of depending on the week the tests happen to run in.
ON_CALL_NOW = {"payments": "U0ALICE", "platform": "U0DEV", "data": "U0ERIN", "identity": "U0GRACE",
               "storage": "U0IRIS"}


@pytest.fixture(autouse=True)
def _pinned_on_call(db: Database) -> None:
    import datetime as dt

    now = utcnow()
    with db.session() as s:
        s.execute(delete(OnCallShift).where(OnCallShift.starts_at <= now, OnCallShift.ends_at > now))
        for team, user in ON_CALL_NOW.items():
            team_id = s.scalar(select(Team.id).where(Team.name == team))
            expert_id = s.scalar(select(Expert.id).where(Expert.slack_user_id == user))
            s.add(OnCallShift(team_id=team_id, expert_id=expert_id, starts_at=now - dt.timedelta(hours=1),
                              ends_at=now + dt.timedelta(days=3), source="rotation"))


def _texts(live: Live, channel: str = CHANNEL) -> list[str]:
    return [blocks_to_text(m.get("blocks") or []) or m.get("text", "") for m in live.standin.messages(channel)]


def _last(live: Live, channel: str = CHANNEL) -> str:
    texts = _texts(live, channel)
    assert texts, "the bot said nothing"
    return texts[-1]


def _buttons(live: Live, prefix: str) -> list[dict[str, Any]]:
    out = []
    for m in live.standin.messages(CHANNEL):
        for b in m.get("blocks") or []:
            out += [e for e in b.get("elements", []) if str(e.get("action_id", "")).startswith(prefix)]
    return out


def test_route_command_names_the_on_call_owner_with_reasons(live: Live) -> None:
    r = live.driver.command("/route", "payments-api returns 503: remaining connection slots are reserved",
                            user="U0BOB", channel=CHANNEL)
    assert r.status_code == 200
    live.drain()
    text = _last(live)
    assert "Route: Alice Moreau" in text
    assert "on call for payments-api (payments)" in text and "declared owner of payments-api" in text
    assert "resolved 1 similar incident (#101)" in text
    assert "Bob Okafor" in text  # the runner-up is listed with his own reasons


def test_oncall_for_one_team_and_all_teams(live: Live) -> None:
    live.driver.command("/oncall", "payments", user="U0BOB", channel=CHANNEL)
    live.drain()
    live.driver.command("/oncall", "", user="U0BOB", channel=CHANNEL)
    live.drain()
    live.driver.command("/oncall", "ingest", user="U0BOB", channel=CHANNEL)  # a service: the team that owns it
    live.drain()
    live.driver.command("/oncall", "payments platform", user="U0BOB", channel=CHANNEL)  # the second was ignored
    live.drain()
    live.driver.command("/oncall", "ingest, dns", user="U0BOB", channel=CHANNEL)  # two services, two owners
    live.drain()
    one, every, service, two, owners = _texts(live)[-5:]
    assert "On call now: payments" in one and "<@U0ALICE>" in one
    for team in ("data", "identity", "payments", "platform", "storage"):
        assert f"*{team}*" in every
    assert "On call now: data" in service and "identity" not in service
    assert "On call now: payments, platform" in two and "*payments*" in two and "*platform*" in two
    assert "*data*" not in two
    assert "On call now: data, platform" in owners and "*payments*" not in owners


def test_bad_input_gets_clear_answers(live: Live) -> None:
    for cmd, text in (("/route", "   "), ("/oncall", "no-such-team"),
                      ("/route", "service:ghost-service the thing is broken"),
                      ("/route", "the office printer is on fire"), ("/route", "#101 #102")):
        live.driver.command(cmd, text, user="U0BOB", channel=CHANNEL)
        live.drain()
    empty, team, ghost, printer, two = _texts(live)[-5:]
    assert "One incident at a time: `/route #101`, then `/route #102`" in two  # the second was dropped
    assert "Tell me what the ticket is about" in empty
    assert "no team called 'no-such-team'" in team and "payments" in team
    assert "unknown service 'ghost-service'" in ghost
    assert "No one to suggest" in printer and "<#C0INCIDENTS>" in printer


def test_team_with_nobody_on_call_and_deactivated_expert(live: Live) -> None:
    with live.db.session() as s:
        team = s.scalar(select(Team).where(Team.name == "payments"))
        assert team is not None
        s.execute(update(OnCallShift).where(OnCallShift.team_id == team.id).values(source="gone",
                                                                                      ends_at=OnCallShift.starts_at))
        s.execute(update(Expert).where(Expert.slack_user_id == "U0BOB").values(active=False))
    live.driver.command("/route", "service:payments-api checkout is failing", user="U0BOB", channel=CHANNEL)
    live.drain()
    live.driver.command("/oncall", "payments", user="U0BOB", channel=CHANNEL)
    live.drain()
    routed, oncall = _texts(live)[-2:]
    assert "nobody is on call for payments now" in routed
    assert "skipped Bob Okafor: deactivated" in routed
    assert "Route: Alice Moreau" in routed and "declared owner of payments-api" in routed
    assert "nobody on call now: ask in <#C0PAYMENTS>" in oncall


def test_incident_card_assign_and_wrong_owner(live: Live) -> None:
    live.driver.command("/incident", "new payments-api 503 connection slots reserved on postgres-main sev1",
                        user="U0BOB", channel=CHANNEL)
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.source == "slack")).one()
        inc_id = inc.id
        finding = inc.findings["routing"]
    assert finding["heading"] == "Suggested responder: <@U0ALICE>"
    card = live.standin.messages(CHANNEL)
    assert any("Suggested responder" in blocks_to_text(m.get("blocks") or []) for m in card)
    assign = _buttons(live, "routing:assign")[-1]
    assert assign["value"] == f"{inc_id}:U0ALICE"

    live.driver.click("routing:assign", assign["value"], user="U0BOB", channel=CHANNEL)
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, inc_id).assignee == "U0ALICE"  # type: ignore[union-attr]
        ev = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc_id,
                                                   TimelineEvent.kind == "assign")).one()
        assert "U0ALICE" in ev.text and ev.actor == "U0BOB"
    assert f"#{inc_id} assigned to Alice Moreau" in "\n".join(_texts(live))
    updates = [c for c in live.standin.calls_to("chat.update") if "Alice Moreau" in json.dumps(c.args)]
    assert updates, "the card was not refreshed after the assignment"

    live.driver.click("routing:wrong_owner", f"{inc_id}:U0ALICE", user="U0BOB", channel=CHANNEL)
    live.drain()
    with live.db.session() as s:
        inc = s.get(Incident, inc_id)
        assert inc is not None and inc.assignee not in (None, "U0ALICE")
        new_owner = inc.assignee
        fb = s.scalars(select(Feedback).where(Feedback.kind == "wrong_owner")).one()
        assert fb.target == "U0ALICE" and fb.incident_id == inc_id and fb.user_id == "U0BOB"
        assert fb.data["team"] and "503" in fb.data["text"]
        assert s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc_id,
                                                     TimelineEvent.kind == "reassign")).one()
        assert inc.findings["routing"]["data"]["candidates"][0]["user_id"] == new_owner
        assert all(c["user_id"] != "U0ALICE" for c in inc.findings["routing"]["data"]["candidates"])
    assert "marked <@U0ALICE> wrong owner" in "\n".join(_texts(live))

    # a click by mistake could not be taken back: learned from (and, now, retrained on) for good
    (undo,) = _buttons(live, "routing:undo")
    for value, who, said in (("abc", "U0BOB", "this Undo button is not one of mine"),
                             ("99999", "U0BOB", "there is no \"wrong owner\" to undo here"),
                             (undo["value"], "U0CARLA", "only <@U0BOB>, who marked <@U0ALICE> wrong owner, can undo")):
        live.driver.click("routing:undo", value, user=who, channel=CHANNEL)
        live.drain()
        assert said in _last(live), _last(live)
    with live.db.session() as s:
        assert s.get(Incident, inc_id).assignee == new_owner  # type: ignore[union-attr]
    live.driver.click("routing:undo", undo["value"], user="U0BOB", channel=CHANNEL)
    live.drain()
    assert f"<@U0ALICE> is a candidate again; nothing is learned from that click. #{inc_id} is with <@U0ALICE> " \
           "again." in _last(live)
    with live.db.session() as s:
        inc = s.get(Incident, inc_id)
        assert inc is not None and inc.assignee == "U0ALICE"
        assert s.scalars(select(Feedback).where(Feedback.kind == "wrong_owner")).all() == []
        (kept,) = s.scalars(select(Feedback).where(Feedback.kind == "wrong_owner_undone")).all()
        assert kept.data["undone_by"] == "U0BOB"
        assert inc.findings["routing"]["data"]["candidates"][0]["user_id"] == "U0ALICE"
    live.driver.click("routing:undo", undo["value"], user="U0BOB", channel=CHANNEL)  # a second click
    live.drain()
    assert "<@U0BOB> already undid it" in _last(live)


def test_undo_of_wrong_owner_on_an_unassigned_incident_leaves_it_unassigned_again(live: Live) -> None:
    """*Wrong owner* on the suggestion of an incident nobody had assigned the next candidate; its *Undo* left
    that person assigned ("stays with whom it is with now"): the click's effect was not taken back."""
    live.driver.command("/incident", "new payments-api 503 connection slots reserved on postgres-main sev2",
                        user="U0BOB", channel=CHANNEL)
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.source == "slack")).one()
        inc_id, suggested = inc.id, inc.findings["routing"]["data"]["candidates"][0]["user_id"]
        assert inc.assignee is None
    live.driver.click("routing:wrong_owner", f"{inc_id}:{suggested}", user="U0BOB", channel=CHANNEL)
    live.drain()
    with live.db.session() as s:
        moved_to = s.get(Incident, inc_id).assignee  # type: ignore[union-attr]
    assert moved_to not in (None, suggested)
    (undo,) = _buttons(live, "routing:undo")
    live.driver.click("routing:undo", undo["value"], user="U0BOB", channel=CHANNEL)
    live.drain()
    assert f"#{inc_id} has nobody assigned again, as before the click" in _last(live), _last(live)
    with live.db.session() as s:
        assert s.get(Incident, inc_id).assignee is None  # type: ignore[union-attr]
        last = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc_id)
                         .order_by(TimelineEvent.id.desc())).first()
        assert last is not None and f"Unassigned <@{moved_to}>" in last.text and last.actor == "U0BOB"
    card = [c for c in live.standin.calls_to("chat.update") if f"#{inc_id} " in c.args.get("text", "")][-1]
    assert "nobody yet" in blocks_to_text(card.args["blocks"])


def test_bad_button_values_are_refused_politely(live: Live) -> None:
    for action, value in (("routing:assign", "not-a-value"), ("routing:assign", "99999:U0ALICE"),
                          ("routing:wrong_owner", "{broken json"), ("routing:assign", f"{'9' * 30}:U0ALICE"),
                          ("incident:ack", "9" * 30), ("incident:escalate", f"{'9' * 30}:2"),
                          ("incident:ack", "\u00b2")):
        live.driver.click(action, value, user="U0BOB", channel=CHANNEL)
        live.drain()
    texts = "\n".join(_texts(live))
    assert "does not name an incident and a person" in texts
    assert "There is no incident #99999" in texts
    assert "does not carry a ticket" in texts
    # ids past what an id column holds, or digits int() cannot read: a clear answer each, no job left failing
    assert texts.count("There is no incident #" + "9" * 24 + ".") == 3, texts  # assign, ack, escalate
    assert re.search(r"this button does not name an incident$", texts, re.M), texts  # the "²"
    with live.db.session() as s:
        assert not s.scalars(select(Job).where(Job.status.in_(("failed", "queued", "running")))).all()


def test_wrong_owner_on_a_ticket_is_stored_and_names_the_next(live: Live) -> None:
    live.driver.command("/route", "payments-api returns 503 at checkout", user="U0BOB", channel=CHANNEL)
    live.drain()
    (btn,) = _buttons(live, "routing:wrong_owner")
    live.driver.click("routing:wrong_owner", btn["value"], user="U0BOB", channel=CHANNEL)
    live.drain()
    assert "Noted: Alice Moreau is not the owner" in _last(live) and "Next: <@U0BOB>" in _last(live)
    with live.db.session() as s:
        fb = s.scalars(select(Feedback).where(Feedback.kind == "wrong_owner")).one()
        assert fb.incident_id is None and fb.target == "U0ALICE" and fb.data["service"] == "payments-api"
    # Learned from: the next routing for that service demotes her with the reason stated.
    live.driver.command("/route", "payments-api returns 503 at checkout", user="U0BOB", channel=CHANNEL)
    live.drain()
    assert "marked wrong owner 1x for payments-api" in _last(live)
    (undo,) = _buttons(live, "routing:undo")  # unless it was a slip of the finger
    live.driver.click("routing:undo", undo["value"], user="U0BOB", channel=CHANNEL)
    live.drain()
    assert "<@U0ALICE> is a candidate again" in _last(live)
    live.driver.command("/route", "payments-api returns 503 at checkout", user="U0BOB", channel=CHANNEL)
    live.drain()
    assert "marked wrong owner" not in _last(live) and "Route: Alice Moreau" in _last(live)


def test_long_ticket_with_quotes_and_injection_round_trips_through_the_button(live: Live) -> None:
    text = 'payments-api "checkout" <!channel> é ' * 150  # ~5,000 characters, cut to the command limit
    live.driver.command("/route", text[:3000], user="U0BOB", channel=CHANNEL)
    live.drain()
    assert "<!channel>" not in _last(live)
    (btn,) = _buttons(live, "routing:wrong_owner")
    assert len(btn["value"]) <= 2000 and json.loads(btn["value"])["u"] == "U0ALICE"
    live.driver.click("routing:wrong_owner", btn["value"], user="U0BOB", channel=CHANNEL)
    live.drain()
    assert "Noted: Alice Moreau is not the owner" in _last(live)


def test_mention_asking_who_is_on_call(live: Live) -> None:
    live.driver.mention("who is on call for storage right now?", user="U0BOB", channel=CHANNEL)
    live.drain()
    text = "\n".join(_texts(live))
    assert "On call now: storage" in text and "<@U0IRIS>" in text
    live.driver.mention("who is on call for payments and platform?", user="U0BOB", channel="C0BOTH")
    live.drain()
    both = _last(live, "C0BOTH")  # the second team was dropped
    assert "On call now: payments, platform" in both and "<@U0ALICE>" in both and "<@U0DEV>" in both


def test_the_routing_classifier_keeps_up_with_the_knowledge_base(tmp_path: Any, standin: Any) -> None:
    """It was trained only by hand (`warroom train routing`): a new install routed without it until someone knew the
    command, and a trained one never learned from the incidents after it. ``model.refresh`` retrains it when what it
    learns from changed, and leaves a model trained from a CSV alone."""
    from models.routing_artifact import load_routing_model
    from tests.conftest import live_with

    own = tmp_path / "own"  # not the database of this module's autouse fixture
    own.mkdir()
    with live_with(own, standin, routing_refresh_hours=24) as live:
        with live.db.session() as s:  # planned when the workers start, a minute later, once per slot
            (job,) = s.scalars(select(Job).where(Job.kind == "model.refresh")).all()
            assert 30 < (job.run_after - utcnow()).total_seconds() <= 60
        record = live.services.settings.models_path / "routing" / "routing-model.json"
        live.driver.command("/route", "kafka consumer lag growing on ingest", user="U0BOB", channel=CHANNEL)
        live.drain(due_within_s=5)  # the next refresh, planned ahead, is not waited for
        assert "no routing classifier trained yet" in _last(live)

        def refresh(key: str) -> None:
            live.services.runner.submit("model.refresh", {}, key)
            live.drain(due_within_s=5)

        refresh("now-1")
        first = load_routing_model(live.services.settings.models_path)
        assert first is not None and first.record["source"] == "knowledge-base" and len(first.record["classes"]) >= 2
        live.driver.command("/route", "kafka consumer lag growing on ingest", user="U0BOB", channel=CHANNEL)
        live.drain(due_within_s=5)
        assert "no routing classifier trained yet" not in _last(live) and "classifier" in _last(live)
        stamp = record.stat().st_mtime_ns
        refresh("now-2")  # nothing new: not retrained
        assert record.stat().st_mtime_ns == stamp
        live.driver.command("/incident", "new warehouse-loader nightly load failed again sev3", user="U0ERIN",
                            channel=CHANNEL)
        live.drain(due_within_s=5)
        with live.db.session() as s:
            new = s.scalar(select(Incident.id).order_by(Incident.id.desc()).limit(1))
        live.driver.command("/incident", f"resolve {new} re-ran the load", user="U0ERIN", channel=CHANNEL)
        live.drain(due_within_s=5)
        refresh("now-3")  # a resolved incident more: retrained on it
        second = load_routing_model(live.services.settings.models_path)
        assert second is not None and second.record["n_train"] == first.record["n_train"] + 1
        with live.db.session() as s:  # and the next run is planned a day on
            later = [j.run_after for j in s.scalars(select(Job).where(Job.kind == "model.refresh",
                                                                      Job.status == "queued"))]
        assert any((t - utcnow()).total_seconds() > 23 * 3600 for t in later), later
        # a model trained from the user's own tickets is theirs: kept
        csv = tmp_path / "tickets.csv"
        csv.write_text("text,team\n" + "".join(f"disk full on node {i},storage\npayments 503 {i},payments\n"
                                               for i in range(10)))
        from typer.testing import CliRunner

        from bot.cli import app

        env = {"WARROOM_MODE": "test", "WARROOM_DATABASE_URL": live.db.url,
               "WARROOM_DATA_DIR": str(live.services.settings.data_dir),
               "WARROOM_MODEL_DIR": str(live.services.settings.models_path)}
        done = CliRunner().invoke(app, ["train", "routing", "--csv", str(csv), "--text", "text", "--label", "team"],
                                  env=env)
        assert done.exit_code == 0, done.output
        mine = record.stat().st_mtime_ns
        refresh("now-4")
        assert record.stat().st_mtime_ns == mine
        assert load_routing_model(live.services.settings.models_path).record["source"] == "csv:tickets.csv"
