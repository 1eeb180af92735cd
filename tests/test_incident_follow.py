"""Following an incident: "keep me posted" under its card (or `/incident follow`) and its status updates, severity
changes, mitigation, resolution and reopening come by DM, except the follower's own changes; "unfollow" stops
them. Through the real app: signed requests in, the DMs asserted on the Slack stand-in."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bot.render import blocks_to_text
from bot.settings import Settings
from tests.conftest import Live, make_settings, open_incidents


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    return make_settings(tmp_path, standin, warm_models=False)


def _dms(live: Live, user: str) -> list[str]:
    return [blocks_to_text(m.get("blocks") or []) for m in live.standin.messages(user)]


def _cmd(live: Live, text: str, user: str) -> str:
    assert live.driver.command("/incident", text, user=user, channel="C0FOLLOW").status_code == 200
    live.drain()
    return live.standin.messages("C0FOLLOW")[-1]["text"]


def test_followers_get_the_changes_by_dm(live: Live) -> None:
    (pay,) = open_incidents(live, "payments-api returning 503 sev2")
    ts = f"{time.time():.6f}"
    assert live.driver.event({"type": "app_mention", "user": "U0ERIN", "ts": ts, "event_ts": ts,
                              "text": "<@UWARROOM> keep me posted", "thread_ts": pay.card_ts,
                              "channel": pay.channel_id}).status_code == 200
    live.drain()
    reply = live.standin.messages(pay.channel_id)[-1]  # only to the person who asked
    assert reply["ephemeral"] and f"You follow incident #{pay.id}: I will send you its updates" in reply["text"]
    assert "You follow incident" in _cmd(live, f"follow {pay.id}", "U0FRANK")
    assert f"You already follow incident #{pay.id}." in _cmd(live, f"follow {pay.id}", "U0ERIN")

    _cmd(live, f"update {pay.id} failed over to the replica, token=abc123secretvalue", "U0BOB")
    for follower in ("U0ERIN", "U0FRANK"):
        (dm,) = _dms(live, follower)
        assert f"Incident #{pay.id}: payments-api returning 503" in dm and "SEV2 · open · payments-api" in dm
        assert "Update from <@U0BOB>: failed over to the replica, token=[REDACTED]" in dm
        assert "abc123secretvalue" not in dm and "|Follow the incident>" in dm
    assert _dms(live, "U0BOB") == []  # not a follower

    _cmd(live, f"sev 1 {pay.id}", "U0ERIN")  # a follower's own change is not sent back to them
    assert len(_dms(live, "U0ERIN")) == 1
    assert "Severity changed by <@U0ERIN>: SEV2 -> SEV1" in _dms(live, "U0FRANK")[-1]

    assert f"You no longer follow incident #{pay.id}." in _cmd(live, f"unfollow {pay.id}", "U0FRANK")
    _cmd(live, f"mitigate {pay.id} traffic on the replica", "U0BOB")
    _cmd(live, f"resolve {pay.id} raised the pool limit", "U0BOB")
    assert "Mitigated by <@U0BOB>: traffic on the replica" in _dms(live, "U0ERIN")[-2]
    assert "Resolved by <@U0BOB>: raised the pool limit" in _dms(live, "U0ERIN")[-1]
    assert len(_dms(live, "U0FRANK")) == 2  # nothing after the unfollow
    _cmd(live, f"reopen {pay.id}", "U0BOB")
    assert "Reopened by <@U0BOB>" in _dms(live, "U0ERIN")[-1]

    # bad input: a clear answer, nobody followed
    _cmd(live, f"resolve {pay.id} again", "U0BOB")
    assert "is resolved: there is nothing more to follow" in _cmd(live, f"follow {pay.id}", "U0GIA")
    assert "There is no incident #99999" in _cmd(live, "follow 99999", "U0GIA")
    assert f"You do not follow incident #{pay.id}." in _cmd(live, f"unfollow {pay.id}", "U0GIA")
    assert _dms(live, "U0GIA") == []


def test_reminders_under_the_card(live: Live) -> None:
    (pay,) = open_incidents(live, "payments-api returning 503 sev2")

    def say(text: str, user: str = "U0BOB") -> str:
        ts = f"{time.time():.6f}"
        assert live.driver.event({"type": "app_mention", "user": user, "ts": ts, "event_ts": ts,
                                  "text": f"<@UWARROOM> {text}", "thread_ts": pay.card_ts,
                                  "channel": pay.channel_id}).status_code == 200
        live.drain(30)
        return live.standin.messages(pay.channel_id)[-1]["text"]  # in the thread, or privately for a mistake

    said = say("remind me in 1s to check the replica lag, password=hunter22")
    assert said.endswith(":alarm_clock: <@U0BOB> reminder: check the replica lag, password=[REDACTED]"), said
    assert _cmd(live, f"remind {pay.id} <@U0ERIN> in 2 seconds that the vendor call starts", "U0BOB").startswith(
        f"Incident #{pay.id}: OK: at ")
    live.drain(30)
    thread = [m["text"] for m in live.standin.messages(pay.channel_id) if m.get("thread_ts") == pay.card_ts]
    assert thread[-1].endswith(":alarm_clock: <@U0ERIN> reminder from <@U0BOB>: the vendor call starts")
    # bad input: said plainly, nothing queued
    for text, reply in (("remind me in 30h to sleep", "1 second to 24 hours ahead"),
                        ("remind me in 0m to x", "1 second to 24 hours ahead"),
                        ("remind me in 5m", "Remind you of what?")):
        assert reply in say(text), text
    assert "There is no incident #99999" in _cmd(live, "remind 99999 me in 5m x", "U0BOB")


def test_the_reason_said_after_the_id_is_kept_on_the_timeline(live: Live) -> None:
    """`/incident reopen 12 it is back after the deploy` kept "Reopened by <@U>" and dropped the why; so did
    `ack 12 looking at the consumers`, `sev 1 12 customers affected` and `escalate 12 to storage because ...`.
    The reason is what the postmortem's timeline needs; a follower reads it in the DM."""
    from sqlalchemy import select

    from knowledge.models import TimelineEvent

    (pay,) = open_incidents(live, "payments-api returning 503 sev3")
    _cmd(live, f"follow {pay.id}", "U0ERIN")
    _cmd(live, f"ack {pay.id} looking at the consumers", "U0BOB")
    _cmd(live, f"sev 2 {pay.id} customers affected password=hunter2", "U0BOB")
    _cmd(live, f"escalate {pay.id} to storage because the disk is full", "U0BOB")
    said = _cmd(live, f"escalate {pay.id} checkout revenue at risk", "U0BOB")
    assert "SEV1" in said
    _cmd(live, f"resolve {pay.id} restarted the consumers", "U0BOB")
    assert "it is back after the deploy" in _cmd(live, f"reopen {pay.id} it is back after the deploy", "U0BOB")
    _cmd(live, f"ack {pay.id} please", "U0BOB")  # nothing to keep
    with live.db.session() as s:
        texts = [e.text for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == pay.id)
                                           .order_by(TimelineEvent.id))]
    assert "Acknowledged by <@U0BOB>: looking at the consumers" in texts
    assert any(t.startswith("Severity SEV3 -> SEV2 by <@U0BOB>: customers affected password=") and "hunter2" not in t
               for t in texts), texts
    assert any(t.startswith("Escalated by <@U0BOB> (SEV2 -> SEV1): the disk is full; called <@U0JONAS>")
               for t in texts), texts
    assert any(t.startswith("Escalated by <@U0BOB> (it stays SEV1, the highest): checkout revenue at risk")
               for t in texts), texts
    assert "Reopened by <@U0BOB>: it is back after the deploy" in texts
    assert texts[-1] == "Acknowledged by <@U0BOB>"
    assert any("it is back after the deploy" in dm for dm in _dms(live, "U0ERIN"))


def test_a_reminder_set_by_mistake_can_be_cancelled_by_whoever_set_it(live: Live) -> None:
    """A reminder set for the wrong time fired anyway: its confirmation now has *Cancel reminder*."""
    from sqlalchemy import select

    from knowledge.models import Job

    (pay,) = open_incidents(live, "payments-api returning 503 sev2")
    live.driver.command("/incident", f"remind {pay.id} me in 2h to check the replica lag", user="U0BOB",
                        channel="C0FOLLOW")
    live.drain(due_within_s=60)  # not the reminder, two hours ahead
    assert live.standin.messages("C0FOLLOW")[-1]["text"].startswith(f"Incident #{pay.id}: OK: at ")
    msg = live.standin.messages("C0FOLLOW")[-1]
    (button,) = [e for b in msg["blocks"] if b.get("type") == "actions" for e in b["elements"]
                 if e["action_id"] == "incident:unremind"]
    with live.db.session() as s:
        assert s.scalars(select(Job).where(Job.kind == "incident.reminder", Job.status == "queued")).one()
    for user, value, answer in (("U0ERIN", button["value"], "Only <@U0BOB>, who set this reminder, can cancel it"),
                                ("U0BOB", "remind:1:forged", "There is no such reminder"),
                                ("U0BOB", button["value"], "<@U0BOB> cancelled the reminder \"check the replica lag\""),
                                ("U0BOB", button["value"], "There is no such reminder")):
        assert live.driver.click("incident:unremind", value, user=user, channel="C0FOLLOW").status_code == 200
        live.drain(due_within_s=60)
        assert answer in live.standin.messages("C0FOLLOW")[-1]["text"], (user, value)
    with live.db.session() as s:
        assert not s.scalars(select(Job).where(Job.kind == "incident.reminder")).all()
    # "what reminders do I have?": the ones to come, each with its Cancel (there was no way to see them)
    for text in (f"remind {pay.id} me in 3h to call the vendor", f"remind {pay.id} me in 1h to check the lag"):
        live.driver.command("/incident", text, user="U0BOB", channel="C0FOLLOW")
        live.drain(due_within_s=60)
    live.driver.mention("what reminders do I have?", user="U0BOB", channel="C0FOLLOW")
    live.driver.command("/incident", "reminders", user="U0ERIN", channel="C0FOLLOW")
    live.drain(due_within_s=60)
    mine, erin = live.standin.messages("C0FOLLOW")[-2:]
    if erin.get("user") == "U0BOB":
        mine, erin = erin, mine
    listed = blocks_to_text(mine["blocks"])
    assert "2 to come, soonest first." in listed and listed.index("check the lag") < listed.index("call the vendor")
    first = [e for b in mine["blocks"] if b.get("type") == "actions" for e in b["elements"]][0]
    assert "You have no reminder to come" in erin["text"]
    live.driver.click("incident:unremind", first["value"], user="U0BOB", channel="C0FOLLOW")
    live.drain(due_within_s=60)
    assert "cancelled the reminder \"check the lag\"" in live.standin.messages("C0FOLLOW")[-1]["text"]
    # one already sent: said so (the 3-hour one stays queued: only what is due within a minute is waited for)
    live.driver.command("/incident", f"remind {pay.id} me in 1s to look again", user="U0BOB", channel="C0FOLLOW")
    live.drain(due_within_s=60)
    msg = next(m for m in reversed(live.standin.messages("C0FOLLOW")) if "look again" in m.get("text", "")
               and m.get("blocks"))
    (value,) = [e["value"] for b in msg["blocks"] if b.get("type") == "actions" for e in b["elements"]]
    live.drain(30, due_within_s=60)
    live.driver.click("incident:unremind", value, user="U0BOB", channel="C0FOLLOW")
    live.drain(due_within_s=60)
    assert "The reminder \"look again\" was sent." in live.standin.messages("C0FOLLOW")[-1]["text"]


def test_timeline_of_the_last_hour_or_key_moments_only(live: Live) -> None:
    """`/incident timeline 12 last hour` showed every event from the start ("last hour" dropped)."""
    import datetime as dt

    from sqlalchemy import update

    from knowledge.models import TimelineEvent, utcnow

    (pay,) = open_incidents(live, "payments-api returning 503 sev2")
    _cmd(live, f"note {pay.id} failover started", "U0BOB")  # a note is a key moment
    _cmd(live, f"ack {pay.id}", "U0BOB")
    with live.db.session() as s:
        total = len(s.scalars(select_events(pay.id)).all())
        s.execute(update(TimelineEvent).where(TimelineEvent.incident_id == pay.id, TimelineEvent.kind != "ack")
                  .values(at=utcnow() - dt.timedelta(hours=3)))

    def summary(text: str) -> str:
        _cmd(live, text, "U0BOB")
        return next(m["text"] for m in reversed(live.standin.messages("C0FOLLOW")) if "Timeline of" in m["text"]
                    or "cannot read" in m["text"])

    assert f"{total} event(s)" in summary(f"timeline {pay.id}")
    assert "1 event(s) in the last hour" in summary(f"timeline {pay.id} last hour")
    assert "1 key event(s)" in summary(f"timeline {pay.id} key")
    assert "No key moments in the last 30m: nothing was noted or pinned" in summary(f"timeline {pay.id} key last 30m")
    assert "I cannot read `yesterday-ish`" in summary(f"timeline {pay.id} yesterday-ish")


def select_events(incident_id: int):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from knowledge.models import TimelineEvent

    return select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)


def test_resolved_incidents_of_a_span_are_listed_with_what_fixed_them(live: Live) -> None:
    """`/incident list resolved` was "I cannot filter by `resolved`", and "which incidents were resolved this week?"
    went to the knowledge base: what was fixed lately, and how, is what a stand-up and a handover ask."""
    (pay, _) = open_incidents(live, "payments-api returning 503 sev2", "ingest lag growing sev3")
    _cmd(live, f"resolve {pay.id} rolled back the 14:02 deploy", "U0BOB")
    said = _cmd(live, "list resolved", "U0BOB")
    assert said.startswith("Resolved incidents: 1 resolved incident(s) (in the last 7 days).")
    body = blocks_text(live.standin.messages("C0FOLLOW")[-1])
    assert f"*#{pay.id}* SEV2 payments-api returning 503" in body and "rolled back the 14:02 deploy" in body
    assert "ingest lag growing" not in body
    assert "(in the last 1 day, on ingest)" in _cmd(live, "list resolved today ingest", "U0BOB")
    assert "1 resolved incident(s) (in the last 1 day)" in _cmd(live, "list resolved last 2h", "U0BOB")
    assert "I cannot filter by `soon`" in _cmd(live, "list resolved soon", "U0BOB")
    open_now = _cmd(live, "list", "U0BOB")
    assert open_now.startswith("Open incidents: 1 open incident(s)")
    live.driver.mention("which incidents were resolved this week?", user="U0BOB", channel="C0FOLLOW")
    live.drain()
    assert live.standin.messages("C0FOLLOW")[-1]["text"].startswith("Resolved incidents: 1 resolved incident(s)")


def blocks_text(msg: dict[str, Any]) -> str:
    return blocks_to_text(msg.get("blocks") or [])
