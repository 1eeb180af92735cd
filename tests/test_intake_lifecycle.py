"""The incident lifecycle in Slack: commands, buttons, the card in place, the timeline, triage notes."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from bot.standin.harness import LiveServer
from knowledge.db import Database
from knowledge.models import Alert, Incident, SlackMessage, TimelineEvent, WebhookInbox
from knowledge.seed import seed
from skills.base import BaseSkill, Finding, IncidentFacts, SkillContext
from tests.conftest import Live, make_settings
from tests.test_intake_webhooks import load, post, wait_processed


def _new_incident(live: Live, text: str = "payments-api checkout failing sev2") -> Incident:
    assert live.driver.command("/incident", f"new {text}", user="U0ALICE", channel="C0OPS").status_code == 200
    live.drain()
    with live.db.session() as s:
        return s.scalars(select(Incident).where(Incident.source == "slack").order_by(Incident.id.desc())).first()


def test_new_ack_sev_assign_resolve(live: Live) -> None:
    inc = _new_incident(live)
    assert inc.severity == 2 and inc.service_name == "payments-api" and inc.card_ts
    card = live.standin.calls_to("chat.postMessage")
    first = next(c for c in card if c.args["channel"] == "C0INCIDENTS" and f"#{inc.id} SEV2" in c.args["text"])
    assert "*Alerts*\\nnone linked" in json.dumps(first.args["blocks"])  # no alert yet: not "0 firing / 0"
    for cmd in (f"ack {inc.id}", f"sev 1 #{inc.id}", f"assign <@U0BOB|bob> {inc.id}"):
        live.driver.command("/incident", cmd, user="U0ALICE", channel="C0OPS")
        live.drain()
    with live.db.session() as s:
        row = s.get(Incident, inc.id)
        assert row.status == "acknowledged" and row.severity == 1 and row.assignee == "U0BOB"
    updates = [c for c in live.standin.calls_to("chat.update") if c.args["ts"] == inc.card_ts]
    assert "SEV1" in updates[-1].args["text"] and "<@U0BOB>" in json.dumps(updates[-1].args["blocks"])
    # One card: every change was an update of the same message.
    assert len([c for c in live.standin.calls_to("chat.postMessage") if c.args["channel"] == "C0INCIDENTS"]) == 1
    live.driver.command("/incident", f"resolve {inc.id} rolled back the deploy", user="U0BOB", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        row = s.get(Incident, inc.id)
        assert row.status == "resolved" and row.resolution == "rolled back the deploy" and row.resolved_at
        kinds = [e.kind for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id))]
    lifecycle = [k for k in kinds if k in ("created", "ack", "sev", "assign", "resolve")]
    assert lifecycle == ["created", "ack", "sev", "assign", "resolve"]


def test_buttons_ack_and_resolve(live: Live) -> None:
    inc = _new_incident(live, "ingress 502s")
    live.driver.click("incident:ack", str(inc.id), user="U0CARLA", channel="C0INCIDENTS", message_ts=inc.card_ts)
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, inc.id).status == "acknowledged"
        assert s.get(Incident, inc.id).assignee == "U0CARLA"
    card = [c for c in live.standin.calls_to("chat.update") if c.args["ts"] == inc.card_ts][-1]
    escalate = next(e for b in card.args["blocks"] if b.get("type") == "actions" for e in b["elements"]
                    if e["action_id"] == "incident:escalate")
    assert escalate["text"]["text"] == f"Escalate to SEV{inc.severity - 1}"
    for _ in range(2):  # a double click on the same card escalates once
        live.driver.click("incident:escalate", escalate["value"], user="U0CARLA", channel="C0INCIDENTS",
                          message_ts=inc.card_ts)
        live.drain()
    with live.db.session() as s:
        assert s.get(Incident, inc.id).severity == inc.severity - 1
    said = [m["text"] for m in live.standin.messages("C0INCIDENTS")]
    assert any("escalated incident" in t for t in said) and any("not escalated again" in t for t in said)
    live.driver.click("incident:resolve", str(inc.id), user="U0CARLA", channel="C0INCIDENTS", message_ts=inc.card_ts)
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, inc.id).status == "resolved"
    last = [c for c in live.standin.calls_to("chat.update") if c.args["ts"] == inc.card_ts][-1]
    assert "resolved" in last.args["text"] and "incident:resolve" not in json.dumps(last.args["blocks"])


def test_usage_errors_are_clear(live: Live) -> None:
    for text in ("", "frobnicate", "new", "ack", "ack 99999", "sev 9 1", "assign nobody", "reopen #99999999999",
                 "escalate", "mitigate 99999"):
        assert live.driver.command("/incident", text, user="U0ALICE", channel="C0X").status_code == 200
    live.drain()
    replies = [m["text"] for m in live.standin.messages("C0X")]
    assert len(replies) == 10 and all(m.startswith("incident: cannot do that") for m in replies)
    assert any("There is no incident #99999" in r for r in replies)
    assert any("There is no incident #99999999999" in r for r in replies)
    assert any("Which incident?" in r for r in replies)


def test_timeline_records_thread_messages_and_pins(live: Live) -> None:
    inc = _new_incident(live, "kafka lag")
    channel, card_ts = inc.channel_id, inc.card_ts
    ev = {"type": "message", "user": "U0ERIN", "text": "restarting consumers now, token=abcd1234secret",
          "ts": "1800000000.000100", "thread_ts": card_ts, "channel": channel, "channel_type": "channel"}
    assert live.driver.event(ev).status_code == 200
    live.drain()
    live.driver.reaction("pushpin", channel, "1800000000.000100", user="U0ERIN")
    live.drain()
    with live.db.session() as s:
        msg = s.scalar(select(SlackMessage).where(SlackMessage.ts == "1800000000.000100"))
        assert msg.incident_id == inc.id and msg.key is True and msg.permalink.startswith("https://")
        assert "abcd1234secret" not in msg.text and "[REDACTED]" in msg.text
        event = s.scalar(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id,
                                                     TimelineEvent.kind == "message"))
        assert event.key is True and event.permalink == msg.permalink
    # Edited in Slack: our copy follows, masked. Deleted (a secret the mask did not catch): ours goes too.
    edit = {"type": "message", "subtype": "message_changed", "channel": channel, "ts": "1800000000.000300",
            "message": {"type": "message", "user": "U0ERIN", "ts": "1800000000.000100", "thread_ts": card_ts,
                        "text": "restarting consumers group B now, password=hunter22", "edited": {"user": "U0ERIN"}}}
    pasted = {"type": "message", "user": "U0ERIN", "text": "the vault unseal phrase is correct horse battery staple",
              "ts": "1800000000.000200", "thread_ts": card_ts, "channel": channel, "channel_type": "channel"}
    for e in (edit, pasted):
        assert live.driver.event(e).status_code == 200
        live.drain()
    deleted = {"type": "message", "subtype": "message_deleted", "channel": channel, "ts": "1800000000.000400",
               "deleted_ts": "1800000000.000200", "previous_message": {"type": "message", "ts": "1800000000.000200"}}
    assert live.driver.event(deleted).status_code == 200
    live.drain()
    with live.db.session() as s:
        texts = [e.text for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id,
                                                                       TimelineEvent.kind == "message"))]
        kept = s.scalars(select(SlackMessage.text).where(SlackMessage.incident_id == inc.id)).all()
    assert texts == ["restarting consumers group B now, password=[REDACTED]"] and kept == texts


def test_list(live: Live) -> None:
    _new_incident(live, "dns failures sev1")
    live.driver.command("/incident", "list", channel="C0L")
    live.drain()
    (msg,) = live.standin.messages("C0L")
    assert "dns failures" in json.dumps(msg["blocks"])


def test_status_collapses_repeated_timeline_events(live: Live) -> None:
    inc = _new_incident(live, "ingest lag sev2")
    with live.db.session() as s:  # what an alert storm leaves: the same event many times in a row
        at = s.get(Incident, inc.id).created_at
        s.add_all([TimelineEvent(incident_id=inc.id, at=at, kind="alert", text="Alert LagHigh joined incident")
                   for _ in range(5)])
    live.driver.command("/incident", f"status {inc.id}", channel="C0S")
    live.drain()
    (msg,) = live.standin.messages("C0S")
    text = json.dumps(msg["blocks"], ensure_ascii=False)
    assert text.count("Alert LagHigh joined incident") == 1 and "Alert LagHigh joined incident (×5)" in text
    assert "Declared by" in text  # the other events are still listed
    live.driver.command("/incident", f"status {inc.id} 101", channel="C0S2")  # the 101 was dropped without a word
    live.drain()
    (msg,) = live.standin.messages("C0S2")
    assert "`/incident status` shows one incident; I cannot read `101`" in msg["text"]


class _BrokenSkill(BaseSkill):
    """A triage plug-in that always fails."""

    name = "broken"

    def triage(self, facts: IncidentFacts, ctx: SkillContext) -> Finding | None:
        raise RuntimeError("boom")


class _EchoSkill(BaseSkill):
    """A triage plug-in that reports what it was given."""

    name = "echo"

    def triage(self, facts: IncidentFacts, ctx: SkillContext) -> Finding | None:
        return Finding(skill=self.name, heading="Echo", lines=(f"metrics {sorted(facts.metrics)}",))


def test_failing_triage_skill_leaves_a_note_and_others_still_show(live: Live) -> None:
    live.services.registry.skills.extend([_BrokenSkill(), _EchoSkill()])
    assert post(live, "alertmanager", load("alertmanager")).status_code == 202
    wait_processed(live)
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.source == "alertmanager")).one()
    assert inc.findings["broken"] == {"error": "broken failed: RuntimeError"}
    assert inc.findings["echo"]["lines"] == ["metrics ['cpu_usage', 'error_count']"]
    last = [c for c in live.standin.calls if c.method in ("chat.postMessage", "chat.update")
            and c.args.get("channel") == "C0INCIDENTS"][-1]
    blocks = json.dumps(last.args["blocks"])
    assert "broken failed" in blocks and "metrics" in blocks


def test_acknowledged_alerts_survive_a_crash_and_are_processed_once(tmp_path: Path, standin) -> None:  # noqa: ANN001
    """Rows committed to the inbox (acknowledged) but never processed are processed after a restart."""
    settings = make_settings(tmp_path, standin)
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as s:
        seed(s)
        body = json.dumps(load("alertmanager"))
        s.add_all([WebhookInbox(source="alertmanager", body=body) for _ in range(3)])
    for _ in range(2):  # start, stop, start again: the second start finds nothing left to do
        with LiveServer(settings) as srv:
            srv.services.intake.notify()
            live = Live(srv, standin, None)  # type: ignore[arg-type]
            wait_processed(live)
    with db.session() as s:
        assert [r.status for r in s.scalars(select(WebhookInbox))] == ["processed"] * 3
        alerts = s.scalars(select(Alert).where(Alert.source == "alertmanager")).all()
        assert sorted(a.occurrences for a in alerts) == [3, 3]
        assert len(s.scalars(select(Incident).where(Incident.source == "alertmanager")).all()) == 1
    assert len([c for c in standin.calls_to("chat.postMessage") if c.args["channel"] == "C0INCIDENTS"]) == 1
