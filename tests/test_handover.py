"""Shift handover through the real app: incidents opened, worked, resolved and waiting on people by signed
commands, clicks and webhooks; then `/incident handover` and "what did I miss?" read back what happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.settings import Settings
from knowledge.models import Incident, RunbookExecution
from tests.conftest import Live, make_settings
from tests.test_intake_webhooks import load, post, wait_processed
from tests.test_runbooks_flow import COMMANDS, _buttons, _last

CH = "C0INCIDENTS"


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    return make_settings(tmp_path, standin, runbook_commands=COMMANDS, warm_models=False)


def _id(live: Live, title: str) -> int:
    with live.db.session() as s:
        found = s.scalar(select(Incident.id).where(Incident.title == title))
    assert found is not None, title
    return int(found)


def _said(live: Live, channel: str) -> str:
    return json.dumps(live.standin.messages(channel))


def test_handover_names_what_is_open_what_was_fixed_and_what_waits(live: Live, tmp_path: Path) -> None:
    cmd = live.driver.command
    cmd("/incident", "new payments-api returning 503 sev1", user="U0ERIN", channel="C0OPS")
    cmd("/incident", "new ingest lag growing sev3", user="U0ERIN", channel="C0OPS")
    cmd("/incident", "new billing-worker slow sev2", user="U0ERIN", channel="C0OPS")
    cmd("/incident", "new checkout flaky sev4", user="U0ERIN", channel="C0OPS")
    live.drain()
    pay, lag, bill, flaky = (_id(live, t) for t in ("payments-api returning 503", "ingest lag growing",
                                                    "billing-worker slow", "checkout flaky"))
    cmd("/incident", f"take {pay}", user="U0BOB", channel="C0OPS")
    live.drain()  # taken, then the note: the note is the last update (sent together, either may land first)
    cmd("/incident", f"note {pay} failover to the replica started, token=hunter2secret", user="U0BOB",
        channel="C0OPS")
    cmd("/incident", f"resolve {bill} rolled back the 14:02 deploy", user="U0ERIN", channel="C0OPS")
    cmd("/incident", f"resolve {flaky} false alarm", user="U0ERIN", channel="C0OPS")
    live.drain()
    assert post(live, "alertmanager", load("alertmanager")).status_code == 202
    wait_processed(live)
    logs = tmp_path / "logs"
    logs.mkdir()
    assert live.driver.command("/runbook", f"run clear-disk-space path={logs} days=3", user="U0ALICE",
                               channel=CH).status_code == 200
    live.drain()
    ask = _last(live, "Run clear-disk-space v1?")
    live.driver.click("runbooks:confirm", _buttons(ask)["runbooks:confirm"], user="U0ALICE", channel=CH,
                      message_ts=ask["ts"])
    live.drain()
    with live.db.session() as s:
        waiting = s.scalars(select(RunbookExecution).where(RunbookExecution.status == "awaiting_approval")).all()
        assert len(waiting) == 1

    cmd("/incident", "handover 8h", user="U0CARLA", channel="C0HAND")
    live.drain()
    said = _said(live, "C0HAND")
    assert "Shift handover" in said and "Handover for the last 8 hours: 5 incident(s) opened, 2 resolved" in said
    assert "3 open now, 2 with nobody on it" in said  # the ingest lag and the alert's incident
    # the open ones, most severe first, each with who is on it and its last update (masked)
    assert said.index(f"*#{pay}* SEV1 [acknowledged] payments-api returning 503") < said.index(f"*#{lag}* SEV3")
    assert "<@U0BOB>); last update 0 min ago: Note by <@U0BOB>: failover to the replica started" in said
    assert "hunter2secret" not in said
    assert f"*#{lag}* SEV3 [open] ingest lag growing (ingest, *nobody on it*); no update since it opened" in said
    # what was fixed, and how; a false alarm says so
    assert f"*#{bill}* SEV2 billing-worker slow" in said and "fixed by: rolled back the 14:02 deploy" in said
    assert f"*#{flaky}* SEV4 checkout flaky" in said and "closed as a false alarm" in said
    assert f"run {waiting[0].id} of `clear-disk-space`, asked by <@U0ALICE>" in said
    assert "Runbook runs waiting for an approver" in said
    assert "2 alert(s) fired in the last 8 hours; by name: HighErrorRate (2)" in said  # the Alertmanager group

    # one team's, or some services': "/incident handover 8h payments" (the team's name was refused)
    cmd("/incident", "handover 8h for the data team", user="U0CARLA", channel="C0HANDT")
    cmd("/incident", "handover 8 hours payments-api, billing-worker", user="U0CARLA", channel="C0HANDS")
    live.drain()
    team = _said(live, "C0HANDT")
    assert "Shift handover on the data team's services" in team and "ingest lag growing" in team
    assert "payments-api returning 503" not in team and "billing-worker slow" not in team
    two = _said(live, "C0HANDS")
    assert "Shift handover on payments-api and billing-worker" in two and "payments-api returning 503" in two
    assert "billing-worker slow" in two and "ingest lag growing" not in two

    # in words, anywhere: the default 12 hours
    live.driver.mention("what did I miss?", channel="C0HAND2", user="U0CARLA")
    live.driver.mention("handover for the last 2 days please", channel="C0HAND3", user="U0CARLA")
    live.drain()
    assert "Handover for the last 12 hours: 5 incident(s) opened" in _said(live, "C0HAND2")
    assert "Handover for the last 48 hours" in _said(live, "C0HAND3")


def test_handover_with_nothing_going_on_and_bad_periods(live: Live) -> None:
    live.driver.command("/incident", "handover", user="U0CARLA", channel="C0QUIET")
    live.drain()
    said = _said(live, "C0QUIET")
    assert "Handover for the last 12 hours: 0 incident(s) opened, 0 resolved; 0 open now. Nothing is open." in said
    for text, reply in (("handover 500h", "A handover covers 1 to 168 hours (a week); you asked for 500."),
                        ("handover 0h", "you asked for 0"),
                        ("handover bananas", "Usage: `/incident handover [hours] [service or team ...]`"),
                        ("handover 99999999999 days", "Usage: `/incident handover [hours]")):
        before = len(live.standin.messages("C0BAD"))
        assert live.driver.command("/incident", text, user="U0CARLA", channel="C0BAD").status_code == 200
        live.drain()
        new = live.standin.messages("C0BAD")[before:]
        assert len(new) == 1 and new[0]["ephemeral"] is True and reply in new[0]["text"], (text, new)
    # "hand over to @bob" is still an assignment, not a handover
    live.driver.command("/incident", "new ingest lag growing sev3", user="U0ERIN", channel="C0OPS")
    live.drain()
    lag = _id(live, "ingest lag growing")
    live.driver.mention(f"handing #{lag} over to <@U0BOB>", channel="C0OPS", user="U0ERIN")
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, lag).assignee == "U0BOB"
    live.driver.mention(f"handover #{lag} to <@U0CARLA>", channel="C0OPS", user="U0BOB")  # one word, same thing
    live.driver.mention("did I miss anything?", channel="C0MISS", user="U0CARLA")
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, lag).assignee == "U0CARLA"
    assert "Handover for the last 12 hours: 1 incident(s) opened" in _said(live, "C0MISS")


def test_the_home_tab_shows_what_is_on_the_person(live: Live) -> None:
    """app_home_opened (Home tab) publishes the person's view: on call or not, incidents on them, open
    incidents, their action items; the Messages tab and a retried event publish nothing more."""
    from knowledge.incident_history import load_history
    from knowledge.people import oncall_by_team
    from skills.postmortem_eval import expand, load_scenarios

    with live.db.session() as s:
        (pool,) = [x for x in load_scenarios() if x["name"] == "pool-exhaustion-runbook"]
        old = load_history(s, expand(pool), channel="C0OLD")
    live.driver.command("/postmortem", f"draft {old}", user="U0ALICE", channel="C0OLD")
    live.driver.command("/incident", "new payments-api returning 503 sev1", user="U0ERIN", channel="C0OPS")
    live.driver.command("/incident", "new ingest lag growing sev3", user="U0ERIN", channel="C0OPS")
    live.drain()
    pay = _id(live, "payments-api returning 503")
    live.driver.command("/incident", f"take {pay}", user="U0IRIS", channel="C0OPS")
    lag = _id(live, "ingest lag growing")
    with live.db.session() as s:
        lag_card = s.get(Incident, lag).card_ts  # type: ignore[union-attr]
    live.driver.click("incident:follow", str(lag), user="U0IRIS", channel="C0INCIDENTS", message_ts=lag_card)
    live.drain()
    said = live.standin.messages("C0INCIDENTS")[-1]
    assert said["ephemeral"] and f"You follow incident #{lag}" in said["text"]  # the card's Follow button

    def opened(user: str, tab: str = "home", event_id: str | None = None, retry: int | None = None) -> None:
        ev = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab, "event_ts": "1.0"}
        assert live.driver.event(ev, event_id=event_id, retry_num=retry).status_code == 200
        live.drain(due_within_s=60)

    opened("U0IRIS", event_id="EvHOME1")
    opened("U0IRIS", event_id="EvHOME1", retry=1)  # Slack's retry of the same event
    opened("U0IRIS", tab="messages")
    (call,) = live.standin.calls_to("views.publish")
    assert call.args["user_id"] == "U0IRIS" and call.args["view"]["type"] == "home"
    from bot.render import blocks_to_text

    tab = blocks_to_text(call.args["view"]["blocks"])
    with live.db.session() as s:
        storage = next(r for r in oncall_by_team(session=s) if r.team == "storage")
    assert ("You are on call for *storage*" in tab) == any(u == "U0IRIS" for u, _ in storage.people), tab
    on_you = tab.split("== On you ==")[1].split("== You follow ==")[0]
    assert f"*#{pay}* SEV1 [acknowledged] payments-api returning 503" in on_you and "ingest lag" not in on_you
    followed = tab.split("== You follow ==")[1].split("== Open incidents ==")[0]
    assert f"*#{lag}* SEV3 [open] ingest lag growing" in followed and "payments-api" not in followed
    assert "ingest lag growing" in tab.split("== Open incidents ==")[1]
    items = tab.split("== Your action items ==")[1].split("== Changes on your team's services (24 h) ==")[0]
    assert "2 open action item(s) of yours" in items and f"*{old}.1* put pgbouncer" in items
    changed = tab.split("== Changes on your team's services (24 h) ==")[1].split("== Noisiest alerts")[0]
    assert "No change recorded on the storage team's services and what they depend on in the last 24 hours" in \
        changed, changed
    noisy = tab.split("== Noisiest alerts on your team's services (7 days) ==")[1].split("== Deploy freezes")[0]
    assert "No alerts on the storage team's services in the last 7 days." in noisy, noisy
    frozen = tab.split("== Deploy freezes on your team's services ==")[1]
    assert "No deploy freeze holds now on the storage team's services." in frozen, frozen
    with live.db.session() as s:  # Carla is in platform (ingress, dns): a deploy of ingress is hers to see
        from knowledge.changes import record

        record(s, service="ingress", summary="nginx 1.27 rollout", author="carla")
        record(s, service="ingest", summary="not platform's")
    opened("U0CARLA", event_id="EvHOME2")
    carla = blocks_to_text(live.standin.calls_to("views.publish")[-1].args["view"]["blocks"])
    theirs = carla.split("== Changes on your team's services (24 h) ==")[1].split("== Noisiest alerts")[0]
    assert "*deploy* ingress by carla: nginx 1.27 rollout" in theirs and "not platform's" not in theirs, theirs
    assert "No open incidents (assigned to you)." in carla and "No open action items of yours." in carla
    live.driver.mention("freeze deploys on ingress for 2h: nginx rollout", user="U0CARLA", channel="C0OPS")
    live.drain(due_within_s=60)  # (its end, told in 2h, stays queued)
    opened("U0CARLA", event_id="EvHOME3")
    carla = blocks_to_text(live.standin.calls_to("views.publish")[-1].args["view"]["blocks"])
    frozen = carla.split("== Deploy freezes on your team's services ==")[1]
    assert "Deploys are frozen on ingress." in frozen and "by <@U0CARLA>: nginx rollout" in frozen, frozen
