"""Webhook intake: real-format payloads through the HTTP server, asserted on the DB and on Slack."""

from __future__ import annotations

import copy
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.inbox_spool import backlog
from bot.standin.server import SlackStandIn
from bot.webhooks import sign_body
from knowledge.models import Alert, Incident, TimelineEvent, WebhookInbox
from skills.intake import extract_log_lines
from tests.conftest import Live, live_on

PAYLOADS = Path(__file__).parent / "payloads"
SECRETS = {"alertmanager": "am-secret-0123456789", "grafana": "grafana-secret-0123456789",
           "pagerduty": "pd-secret-0123456789", "generic": "generic-secret-0123456789"}


def load(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def post(live: Live, source: str, payload: Any, *, auth: str = "bearer", raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    body = raw if raw is not None else json.dumps(payload).encode()
    h = {"Content-Type": "application/json", **(headers or {})}
    secret = SECRETS[source] if source in SECRETS else "x"
    if auth == "bearer":
        h["Authorization"] = f"Bearer {secret}"
    elif auth == "hmac":
        ts = str(int(time.time()))
        h["X-Warroom-Timestamp"] = ts
        h["X-Warroom-Signature"] = "sha256=" + sign_body(secret, body, ts)
    elif auth == "pagerduty":
        h["X-PagerDuty-Signature"] = "v1=" + sign_body(secret, body)
    return httpx.post(f"{live.url}/webhooks/{source}", content=body, headers=h, timeout=30)


def resolved_copy(payload: dict[str, Any]) -> dict[str, Any]:
    """The same Alertmanager group, every alert resolved."""
    resolved = copy.deepcopy(payload)
    resolved["status"] = "resolved"
    for a in resolved["alerts"]:
        a["status"], a["endsAt"] = "resolved", "2026-11-23T10:20:00Z"
    return resolved


def wait_processed(live: Live) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if not backlog(live.db, live.services.spool):
            break
        live.services.intake.notify()
        time.sleep(0.05)
    live.drain()


def incidents(live: Live) -> list[Incident]:
    with live.db.session() as s:
        return list(s.scalars(select(Incident).where(Incident.source != "import").order_by(Incident.id)))


def test_alertmanager_group_opens_one_incident_with_one_card(live: Live) -> None:
    resp = post(live, "alertmanager", {**load("alertmanager"), "truncatedAlerts": 40})  # max_alerts cut 40
    assert resp.status_code == 202 and resp.json()["alerts"] == 2
    wait_processed(live)
    (inc,) = incidents(live)
    assert inc.service_name == "payments-api" and inc.severity == 1 and inc.alert_count == 2
    assert inc.findings["intake"]["metrics"] == {"cpu_usage": 93.0, "error_count": 412.0}
    assert any("pool exhausted" in ln for ln in inc.findings["intake"]["log_lines"])
    posts = live.standin.calls_to("chat.postMessage")
    cards = [c for c in posts if c.args["channel"] == "C0INCIDENTS"]
    assert len(cards) == 1 and f"#{inc.id} SEV1" in cards[0].args["text"]
    assert inc.card_ts == cards[0].response["ts"]
    assert "Alertmanager left out up to 40 more" in json.dumps(cards[0].args["blocks"])


def test_card_links_to_what_the_alerts_point_at_and_nothing_hostile(live: Live) -> None:
    payload = copy.deepcopy(load("alertmanager"))
    first, second = payload["alerts"]
    first["annotations"]["runbook_url"] = "https://runbooks.example/payments/high-error-rate?team=payments&x=1"
    first["annotations"]["dashboard_url"] = "javascript:alert(1)"  # never a link
    second["annotations"]["dashboard"] = "https://grafana.example/d/abc|<!channel>"  # would break the markup
    second["generatorURL"] = first["generatorURL"]  # the same URL twice: one link
    assert post(live, "alertmanager", payload).status_code == 202
    wait_processed(live)
    live.drain()
    (inc,) = incidents(live)
    card = [c for c in live.standin.calls_to("chat.postMessage") if c.args["channel"] == "C0INCIDENTS"][0]
    (links,) = [e["text"] for b in card.args["blocks"] if b["type"] == "context" for e in b["elements"]
                if "|Alert source>" in e["text"]]
    assert links == ("<http://prometheus.example:9090/graph?g0.expr=...|Alert source> · <https://runbooks.example/"
                     "payments/high-error-rate?team=payments&amp;x=1|Runbook (from the alert)>")
    assert "javascript" not in json.dumps(card.args["blocks"]) and "<!channel>" not in json.dumps(card.args["blocks"])
    # Grafana's own dashboard and panel links; PagerDuty's incident page
    graf = copy.deepcopy(load("grafana"))
    graf["alerts"][0].update(dashboardURL="https://grafana.example/d/xyz",
                             panelURL="https://grafana.example/d/xyz?viewPanel=2")
    assert post(live, "grafana", graf).status_code == 202
    assert post(live, "pagerduty", load("pagerduty"), auth="pagerduty").status_code == 202
    wait_processed(live)
    live.drain()
    contexts = [e["text"] for c in live.standin.calls_to("chat.postMessage") if c.args["channel"] == "C0INCIDENTS"
                for b in c.args["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert ("<https://grafana.example/d/xyz?viewPanel=2|Grafana panel> · <https://grafana.example/d/xyz|Grafana "
            "dashboard>") in " ".join(contexts)
    assert "<https://acme.pagerduty.com/incidents/PGR0VU2|PagerDuty incident>" in contexts


def test_redelivery_and_resolution_mitigate_without_new_incident(live: Live) -> None:
    payload = load("alertmanager")
    for _ in range(3):
        assert post(live, "alertmanager", payload, auth="hmac").status_code == 202
    wait_processed(live)
    assert post(live, "alertmanager", resolved_copy(payload)).status_code == 202
    wait_processed(live)
    (inc,) = incidents(live)
    assert inc.status == "mitigated" and inc.mitigated_at is not None
    with live.db.session() as s:
        alerts = s.scalars(select(Alert).where(Alert.incident_id == inc.id)).all()
        assert sorted(a.occurrences for a in alerts) == [4, 4]
        kinds = [e.kind for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id))]
    assert "mitigated" in kinds and kinds.count("created") == 1
    cards = [c for c in live.standin.calls_to("chat.postMessage") if c.args["channel"] == "C0INCIDENTS"]
    assert len(cards) == 1  # updated in place, never re-posted
    updates = [c for c in live.standin.calls_to("chat.update") if c.args["ts"] == inc.card_ts]
    assert updates and "mitigated" in updates[-1].args["text"]


def _opened_then_resolved_in_slack(live: Live, payload: dict[str, Any]) -> None:
    """Alertmanager opens an incident; someone resolves it in Slack while its alerts still fire."""
    assert post(live, "alertmanager", payload).status_code == 202
    wait_processed(live)
    (inc,) = incidents(live)
    live.driver.command("/incident", f"resolve {inc.id} rolled back the deploy", channel="C0OPS")
    live.drain()


def test_alerts_that_clear_after_a_person_resolved_the_incident(live: Live) -> None:
    """Resolved in Slack while its alerts still fired; Alertmanager's resolution arrives later: the alerts are
    marked resolved on that incident (its card stops saying they fire), nothing reopens or opens."""
    payload = load("alertmanager")
    _opened_then_resolved_in_slack(live, payload)
    assert post(live, "alertmanager", resolved_copy(payload)).status_code == 202
    wait_processed(live)
    (inc,) = incidents(live)
    assert inc.status == "resolved"
    with live.db.session() as s:
        assert {a.status for a in s.scalars(select(Alert).where(Alert.incident_id == inc.id))} == {"resolved"}
    card = [c for c in live.standin.calls_to("chat.update") if c.args["ts"] == inc.card_ts][-1]
    assert "0 firing / 2" in json.dumps(card.args["blocks"])


def test_closing_an_alert_incident_as_a_duplicate_moves_its_firing_alerts(live: Live) -> None:
    """Alertmanager opens #A; someone had opened #B by hand; "#A is a duplicate of #B" moves A's firing alerts to
    B, so the next notifications of the group land on B: nothing new opens, A's thread hears no "still firing",
    and B's card counts them."""
    payload = load("alertmanager")
    live.driver.command("/incident", "new payments-api 5xx at checkout sev2", user="U0ERIN", channel="C0OPS")
    live.drain()
    assert post(live, "alertmanager", payload).status_code == 202
    wait_processed(live)
    by_hand, from_alerts = incidents(live)
    assert from_alerts.alert_count == 2 and by_hand.alert_count == 0
    live.driver.command("/incident", f"resolve {from_alerts.id} duplicate of #{by_hand.id}", user="U0ERIN",
                        channel="C0OPS")
    live.drain()
    said = json.dumps(live.standin.messages("C0OPS"))
    assert f"Duplicate of #{by_hand.id} (2 firing alert(s) moved to #{by_hand.id})" in said
    assert post(live, "alertmanager", payload).status_code == 202  # the group again, same start
    wait_processed(live)
    assert [i.id for i in incidents(live)] == [by_hand.id, from_alerts.id]  # nothing new opened
    with live.db.session() as s:
        rows = s.scalars(select(Alert).where(Alert.fingerprint.in_([a["fingerprint"] for a in payload["alerts"]])))
        assert {(a.incident_id, a.occurrences) for a in rows} == {(by_hand.id, 2)}
        b, a = s.get(Incident, by_hand.id), s.get(Incident, from_alerts.id)
        assert (b.alert_count, a.alert_count, a.status) == (2, 0, "resolved")
        told = s.scalar(select(TimelineEvent.text).where(TimelineEvent.incident_id == by_hand.id,
                                                         TimelineEvent.kind == "duplicate"))
        assert told is not None and told.endswith("its 2 firing alert(s) moved here")
        assert s.scalar(select(TimelineEvent.id).where(TimelineEvent.kind == "still_firing")) is None
    card = [c for c in live.standin.calls_to("chat.update") if c.args["ts"] == b.card_ts]
    assert card and "2 firing / 2" in json.dumps(card[-1].args["blocks"])  # the original's card counts them


def test_an_alert_still_firing_after_a_person_resolved_it_tells_the_thread_once(live: Live) -> None:
    """Alertmanager re-sends the group (same start) minutes after the incident was resolved in Slack: the alert
    stays on that incident, nothing reopens or opens, the card's thread is told once with a Reopen button."""
    payload = load("alertmanager")
    _opened_then_resolved_in_slack(live, payload)
    for _ in range(2):  # the group's next notifications, the alerts still firing
        assert post(live, "alertmanager", payload, auth="hmac").status_code == 202
        wait_processed(live)
    live.drain()
    (inc,) = incidents(live)
    assert inc.status == "resolved"
    told = [m for m in live.standin.messages(inc.channel_id)
            if m.get("thread_ts") == inc.card_ts and "still firing" in m["text"]]
    assert len(told) == 1 and "If the fix did not hold, reopen it" in told[0]["text"]
    assert '"action_id": "incident:reopen"' in json.dumps(told[0]["blocks"])
    live.driver.click("incident:reopen", str(inc.id), user="U0BOB", channel=inc.channel_id, message_ts=told[0]["ts"])
    live.drain()
    (inc,) = incidents(live)
    assert inc.status == "open"
    # A new episode of the alert (a later start) is a new problem: it opens its own incident.
    later = copy.deepcopy(payload)
    live.driver.command("/incident", f"resolve {inc.id} fixed for real", channel="C0OPS")
    live.drain()
    for a in later["alerts"]:
        a["startsAt"] = "2026-11-23T11:30:00Z"
    assert post(live, "alertmanager", later).status_code == 202
    wait_processed(live)
    assert [i.status for i in incidents(live)] == ["resolved", "open"]


def test_same_service_and_alertname_join_with_explanation(live: Live) -> None:
    first = {"alerts": [{"name": "HighLatency", "service": "auth-service", "fingerprint": "a1", "severity": "warning"}]}
    second = {"alerts": [{"name": "HighLatency", "service": "auth-service", "fingerprint": "a2", "summary": "p99 4s"}]}
    assert post(live, "generic", first).status_code == 202
    wait_processed(live)
    assert post(live, "generic", second, auth="hmac").status_code == 202
    wait_processed(live)
    (inc,) = incidents(live)
    with live.db.session() as s:
        grouped = s.scalars(select(TimelineEvent.text).where(TimelineEvent.incident_id == inc.id,
                                                             TimelineEvent.kind == "grouped")).all()
    assert grouped == [f"Alert HighLatency joined incident #{inc.id} because same service `auth-service` "
                       "and alert `HighLatency` within 30 min"]


def test_pagerduty_signed_and_replay_refused(live: Live) -> None:
    payload = load("pagerduty")
    first = post(live, "pagerduty", payload, auth="pagerduty")
    assert first.status_code == 202
    replay = post(live, "pagerduty", payload, auth="pagerduty")
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    unsigned = post(live, "pagerduty", payload, auth="none")
    assert unsigned.status_code == 401
    bearer = post(live, "pagerduty", payload, auth="bearer")  # PagerDuty must sign
    assert bearer.status_code == 401
    wait_processed(live)
    (inc,) = incidents(live)
    assert inc.service_name == "auth-service" and inc.severity == 1 and inc.source == "pagerduty"
    with live.db.session() as s:
        assert s.scalar(select(func.count()).select_from(WebhookInbox)) == 1


def pd_event(kind: str, n: int, priority: str = "P1", **data: Any) -> dict[str, Any]:
    """The bundled PagerDuty v3 event as another event type: ``data`` updates the incident, or with
    ``note=`` etc. replaces it by that event's own object."""
    p = copy.deepcopy(load("pagerduty"))
    p["event"].update(id=f"evt-{kind}-{n}", event_type=kind, occurred_at=f"2026-11-23T19:{n:02d}:00Z")
    incident = p["event"]["data"]
    incident["priority"]["summary"] = priority
    ref = {"id": incident["id"], "type": "incident_reference", "summary": incident["title"]}
    if "note" in data:
        p["event"]["data"] = {"incident": ref, "id": f"N{n}", "content": data["note"], "type": "incident_note"}
    elif "status_update" in data:
        p["event"]["data"] = {"incident": ref, "id": f"S{n}", "message": data["status_update"],
                              "type": "incident_status_update"}
    else:
        incident.update(data)
    return p


def test_pagerduty_events_update_the_one_incident(live: Live) -> None:
    """Acknowledged, notes, priority, status updates, resolved, reopened: all on one incident, none opens another."""
    def send(*events: dict[str, Any]) -> None:
        for e in events:
            assert post(live, "pagerduty", e, auth="pagerduty").status_code == 202
            wait_processed(live)

    def timeline(inc_id: int) -> list[tuple[str, str]]:
        with live.db.session() as s:
            return [(e.kind, e.text) for e in s.scalars(select(TimelineEvent).where(
                TimelineEvent.incident_id == inc_id).order_by(TimelineEvent.id))]

    send(pd_event("incident.triggered", 1), pd_event("incident.acknowledged", 2, status="acknowledged"))
    (inc,) = incidents(live)
    assert inc.status == "acknowledged" and inc.acknowledged_at is not None
    assert ("ack", "Acknowledged in PagerDuty by Tenex Engineer") in timeline(inc.id)
    send(pd_event("incident.annotated", 3, note="rolled back deploy 42, DB password=hunter22 rotated"),
         pd_event("incident.priority_updated", 4, priority="P3", status="acknowledged"),
         pd_event("incident.status_update_published", 5, status_update="A fix is being developed"),
         pd_event("incident.escalated", 6, priority="P3", status="acknowledged"))
    (inc,) = incidents(live)
    assert inc.severity == 3 and inc.status == "acknowledged"
    events = timeline(inc.id)
    notes = [t for k, t in events if k == "note"]
    assert notes[0].startswith("PagerDuty note by Tenex Engineer: rolled back deploy 42") and "hunter22" not in notes[0]
    assert notes[1] == "PagerDuty note by Tenex Engineer: A fix is being developed"
    assert ("sev", "Severity SEV1 -> SEV3: priority P3 in PagerDuty by Tenex Engineer") in events
    assert ("alert", "PagerDuty: escalated by Tenex Engineer") in events
    card = [c for c in live.standin.calls_to("chat.update") if c.args["ts"] == inc.card_ts][-1].args["text"]
    assert f"#{inc.id} SEV3 [acknowledged]" in card

    send(pd_event("incident.resolved", 7, priority="P3", status="resolved"),
         pd_event("incident.annotated", 8, note="root cause: expired certificate"))
    (inc,) = incidents(live)
    assert inc.status == "mitigated" and timeline(inc.id)[-1] == (
        "note", "PagerDuty note by Tenex Engineer: root cause: expired certificate")
    # Resolved here too (with what fixed it); PagerDuty reopens it: the same incident opens again.
    live.driver.command("/incident", f"resolve {inc.id} renewed the certificate", channel="C0OPS")
    live.drain()
    send(pd_event("incident.reopened", 9, priority="P3", status="triggered"))
    (inc,) = incidents(live)
    assert inc.status == "open" and inc.resolved_at is None
    assert ("reopen", "Reopened in PagerDuty by Tenex Engineer") in timeline(inc.id)
    with live.db.session() as s:
        (alert,) = s.scalars(select(Alert).where(Alert.incident_id == inc.id)).all()
        assert alert.status == "firing" and alert.fingerprint == "PGR0VU2"

    # News about a PagerDuty incident we never saw: a note has nowhere to go (stored, not shown); an
    # acknowledged incident is one we missed the trigger of, and is opened, acknowledged.
    other = pd_event("incident.annotated", 10, note="unrelated")
    other["event"]["data"]["incident"]["id"] = "PZZZZZZ"
    missed = pd_event("incident.acknowledged", 11, priority="P2", status="acknowledged", id="PMISSED",
                      title="search-api timeouts")
    missed["event"]["agent"]["summary"] = "bob okafor"  # a person of the directory: the one on it here too
    send(other, missed)
    assert [(i.title, i.status, i.severity, i.assignee) for i in incidents(live)] == [
        (inc.title, "open", 3, None), ("auth-service: search-api timeouts", "acknowledged", 2, "U0BOB")]
    assert ("ack", "Acknowledged in PagerDuty by <@U0BOB>") in timeline(incidents(live)[-1].id)
    cards = [c for c in live.standin.calls_to("chat.postMessage")
             if c.args["channel"] == "C0INCIDENTS" and not c.args.get("thread_ts")]
    assert len(cards) == 2  # one card per incident: no update ever posted a card of its own
    with live.db.session() as s:
        assert set(s.scalars(select(WebhookInbox.status))) == {"processed"}


def test_test_notifications_say_connected_and_open_nothing(live: Live) -> None:
    """Grafana's contact point *Test* and PagerDuty's *Send Test Event* (pagey.ping, whose data has no id)."""
    grafana = copy.deepcopy(load("grafana"))
    grafana["alerts"] = [{**grafana["alerts"][0], "labels": {"alertname": "TestAlert", "instance": "Grafana"},
                          "annotations": {"summary": "Notification test"}}]
    ping = {"event": {"id": "01FKZOXA868SHYEE4DVNWB5P9W", "event_type": "pagey.ping", "resource_type": "pagey",
                      "occurred_at": "2026-11-23T03:00:55.532Z", "agent": {"id": "PVE0ZR9", "type": "user_reference"},
                      "client": None, "data": {"message": "Hello from your friend Pagey!", "type": "ping"}}}
    assert post(live, "grafana", grafana).status_code == 202
    assert post(live, "pagerduty", ping, auth="pagerduty").status_code == 202
    wait_processed(live)
    live.drain()
    assert incidents(live) == []
    said = sorted(m["text"] for m in live.standin.messages("C0INCIDENTS"))
    assert said == [
        'Grafana is connected: :white_check_mark: Test notification from Grafana (contact point `warroom`) '
        'received: "Notification test". Its alerts will open incidents here; the test itself opened nothing.',
        'PagerDuty is connected: :white_check_mark: Test notification from PagerDuty received: "Hello from your '
        'friend Pagey!". Its alerts will open incidents here; the test itself opened nothing.']
    with live.db.session() as s:
        assert list(s.scalars(select(WebhookInbox.status))) == ["processed", "processed"]


def test_card_in_a_channel_the_bot_was_not_invited_to(live: Live, caplog: Any) -> None:
    """Public incident channel: the bot joins it and posts the card. Private: it says why it cannot, and the
    card goes out with the next update once someone invites it."""
    live.standin.leave("C0INCIDENTS")
    assert post(live, "alertmanager", load("alertmanager")).status_code == 202
    wait_processed(live)
    (inc,) = incidents(live)
    assert inc.card_ts and [c.args["channel"] for c in live.standin.calls_to("conversations.join")] == ["C0INCIDENTS"]

    live.standin.leave("C0INCIDENTS", private=True)
    first = {"alerts": [{"name": "QueueBacklog", "service": "ingest", "fingerprint": "q1", "severity": "critical"}]}
    assert post(live, "generic", first).status_code == 202
    wait_processed(live)
    new = incidents(live)[-1]
    assert new.card_ts is None
    assert "cannot post in C0INCIDENTS: the bot is not a member and cannot join it" in caplog.text
    live.driver.command("/warroom", "status", channel="C0OPS")  # why is there no card? the status says
    live.drain()
    status = live.standin.messages("C0OPS")[-1]["blocks"]
    failures = next(b["text"]["text"] for b in status if "Recent failures" in b.get("text", {}).get("text", ""))
    assert "`incident.card` (" in failures and "invite it with /invite @warroom" in failures
    live.standin.outside.clear()  # someone typed /invite @warroom
    again = {"alerts": [{**first["alerts"][0], "summary": "backlog 40k"}]}
    assert post(live, "generic", again).status_code == 202
    wait_processed(live)
    time.sleep(live.services.settings.card_update_interval_s + 0.5)
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, new.id).card_ts is not None


def test_grafana_payload(live: Live) -> None:
    assert post(live, "grafana", load("grafana")).status_code == 202
    wait_processed(live)
    (inc,) = incidents(live)
    assert inc.alert_name == "DiskSpaceLow" and inc.severity == 3 and inc.service_name == "postgres-main"
    # A rule whose query fails fires as DatasourceError: the incident names the rule and the error.
    failed = copy.deepcopy(load("grafana"))
    failed["alerts"][0].update(labels={"alertname": "DatasourceError", "rulename": "Checkout p99 latency",
                                       "service": "checkout-web", "datasource_uid": "prom1"},
                               annotations={"Error": "Post \"http://prometheus:9090/api/v1/query\": i/o timeout"},
                               fingerprint="ds-err-1")
    failed.update(groupKey='{}:{alertname="DatasourceError"}', groupLabels={"alertname": "DatasourceError"},
                  commonLabels={"alertname": "DatasourceError"})
    assert post(live, "grafana", failed).status_code == 202
    wait_processed(live)
    new = incidents(live)[-1]
    assert new.alert_name == "Checkout p99 latency (DatasourceError)"
    assert new.title == ('checkout-web: Checkout p99 latency: its query failed: Post "http://prometheus:9090/api/v1/'
                         'query": i/o timeout')


def test_authentication_failures_are_401_and_store_nothing(live: Live) -> None:
    body = load("alertmanager")
    assert post(live, "alertmanager", body, auth="none").status_code == 401
    assert post(live, "alertmanager", body, headers={"Authorization": "Bearer wrong"}, auth="none").status_code == 401
    raw = json.dumps(body).encode()
    bad_sig = {"X-Warroom-Signature": "sha256=" + "0" * 64}
    assert post(live, "alertmanager", body, raw=raw, auth="none", headers=bad_sig).status_code == 401
    stale_ts = str(int(time.time()) - 3600)
    stale = {"X-Warroom-Timestamp": stale_ts,
             "X-Warroom-Signature": "sha256=" + sign_body(SECRETS["alertmanager"], raw, stale_ts)}
    assert post(live, "alertmanager", body, raw=raw, auth="none", headers=stale).status_code == 401
    assert backlog(live.db, live.services.spool) == 0  # nothing spooled
    with live.db.session() as s:
        assert s.scalar(select(func.count()).select_from(WebhookInbox)) == 0


def test_a_secret_is_rotated_without_losing_a_delivery(tmp_path: Path, standin: SlackStandIn) -> None:
    """Senders do not retry a 401: changing a source's secret lost every alert sent between the bot's switch and the
    sender's. WARROOM_WEBHOOK_PREVIOUS_SECRETS keeps the old one accepted (and counted) until the senders have moved.
    """
    from bot.metrics import WEBHOOKS

    new = {**SECRETS, "alertmanager": "am-secret-NEW-0123456789"}
    with live_on("sqlite", tmp_path, standin, webhook_secrets=new,
                 webhook_previous_secrets={"alertmanager": SECRETS["alertmanager"]}) as live:
        before = WEBHOOKS.labels(source="alertmanager", outcome="previous_secret")._value.get()
        body = load("alertmanager")
        raw = json.dumps(body).encode()
        ts = str(int(time.time()))
        old_sig = {"X-Warroom-Timestamp": ts, "X-Warroom-Signature": "sha256=" + sign_body(SECRETS["alertmanager"],
                                                                                           raw, ts)}
        assert post(live, "alertmanager", body).status_code == 202  # the old secret, as bearer token
        assert post(live, "alertmanager", body, raw=raw, auth="none", headers=old_sig).status_code == 202  # as HMAC
        assert post(live, "alertmanager", body, auth="none",
                    headers={"Authorization": f"Bearer {new['alertmanager']}"}).status_code == 202  # the new one
        assert post(live, "alertmanager", body, auth="none",
                    headers={"Authorization": "Bearer am-secret-WRONG-123456"}).status_code == 401
        assert post(live, "grafana", load("grafana"), auth="none",  # no previous secret for grafana
                    headers={"Authorization": f"Bearer {SECRETS['alertmanager']}"}).status_code == 401
        assert WEBHOOKS.labels(source="alertmanager", outcome="previous_secret")._value.get() - before == 2
        wait_processed(live)  # on SQLite a 202 means spooled: the processor copies it into the inbox after
        with live.db.session() as s:
            assert s.scalar(select(func.count()).select_from(WebhookInbox)) == 3


def test_a_json_body_with_a_byte_order_mark_is_accepted(live: Live) -> None:
    """.NET's UTF-8 writers (a PowerShell or C# sender) put a byte-order mark first: it was a 400 "malformed JSON:
    Unexpected UTF-8 BOM", and the sender does not retry a 4xx."""
    raw = b"\xef\xbb\xbf" + json.dumps({"alerts": [{"name": "DiskFull", "service": "ingest",
                                                     "fingerprint": "bom-1"}]}).encode()
    assert post(live, "generic", None, raw=raw).status_code == 202
    wait_processed(live)
    with live.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.fingerprint == "bom-1")) == 1


def test_bad_bodies_are_4xx_with_the_field_named(live: Live) -> None:
    huge = post(live, "generic", None, raw=b'{"alerts": [' + b'{"name": "x"},' * 800_000 + b'{"name": "x"}]}')
    assert huge.status_code == 413
    assert post(live, "generic", None, raw=b"{nope").status_code == 400
    assert post(live, "generic", None, raw=b"\xff\xfe\x00").status_code == 400
    deep = b"[" * 100_000 + b"]" * 100_000
    assert post(live, "generic", None, raw=deep).status_code == 400
    wrong = post(live, "alertmanager", {"version": "4", "groupKey": "k", "status": "firing",
                                        "alerts": [{"status": "firing", "labels": {"service": "x"}}]})
    assert wrong.status_code == 422 and "alerts.0.labels" in wrong.json()["error"]
    types = post(live, "generic", {"alerts": [{"name": 5, "status": "maybe"}]})
    assert types.status_code == 422 and "status" in json.dumps(types.json())
    assert post(live, "nosuchtool", {"a": 1}).status_code == 404
    assert backlog(live.db, live.services.spool) == 0  # nothing spooled
    with live.db.session() as s:
        assert s.scalar(select(func.count()).select_from(WebhookInbox)) == 0


def test_injection_is_rendered_as_text(live: Live) -> None:
    payload = {"alerts": [{"name": "Boom", "service": "ingress", "fingerprint": "inj",
                           "summary": "<!channel> <!here> *bold* <https://evil.example|click> 💥 ünïcödé "
                                      "\u202edevloser\u202c",  # a right-to-left override: showed as "resolved"
                           "description": "@channel wake up <@U0BOB>"}]}
    assert post(live, "generic", payload).status_code == 202
    wait_processed(live)
    # plain_text (the header) is never parsed for mentions or links; everything parsed as mrkdwn is escaped.
    args = [c.args for c in live.standin.calls_to("chat.postMessage")]
    parsed = [[a["text"]] + [b for b in a["blocks"] if b["type"] != "header"] for a in args]
    card = json.dumps(parsed, ensure_ascii=False)
    assert "<!channel>" not in card and "<!here>" not in card and "<https://evil" not in card
    assert "&lt;!channel&gt;" in card and "💥" in card
    everything = json.dumps(args, ensure_ascii=False)
    assert "devloser" in everything and "\u202e" not in everything


def test_thousands_of_alerts_one_fingerprint_one_incident_few_slack_calls(live: Live) -> None:
    one = {"alerts": [{"name": "CPUHigh", "service": "kafka", "fingerprint": "storm-1", "metrics": {"cpu": 99}}]}
    start = time.time()
    for _ in range(20):
        batch = {"alerts": one["alerts"] * 100}
        assert post(live, "generic", batch).status_code == 202
    wait_processed(live)
    (inc,) = incidents(live)
    with live.db.session() as s:
        (alert,) = s.scalars(select(Alert).where(Alert.incident_id == inc.id)).all()
    assert alert.occurrences == 2000
    # One card, updated at most once per card_update_interval_s (plus the triage refresh), not per alert.
    elapsed = time.time() - start
    assert len(live.standin.calls_to("chat.postMessage")) == 1
    updates = live.standin.calls_to("chat.update")
    assert len(updates) <= elapsed / live.services.settings.card_update_interval_s + 3, (len(updates), elapsed)


def test_unknown_service_still_opens_an_incident_and_says_so(live: Live) -> None:
    payload = {"alerts": [{"name": "Weird", "service": "no-such-service", "summary": "odd"}]}
    assert post(live, "generic", payload).status_code == 202
    wait_processed(live)
    (inc,) = incidents(live)
    assert inc.service_id is None and inc.findings["intake"]["unknown_service"] is True
    card = json.dumps(live.standin.calls_to("chat.postMessage")[0].args["blocks"])
    assert "not in the service catalogue" in card


def test_a_severity_no_tool_vocabulary_knows_is_accepted_and_said_not_silently_sev3(live: Live) -> None:
    """An alert with ``"severity": "whenever"`` was opened as SEV3 with nothing said: the sender and the card now
    say which word was not understood, and a person's ``/incident sev`` ends the doubt. Words of other tools
    (ServiceNow's "1 - Critical", Zendesk's "urgent", Jira's "Blocker") are read, not defaulted."""
    payload = {"alerts": [{"name": "Odd", "service": "payments-api", "severity": "whenever"},
                          {"name": "SnowTicket", "service": "ingest", "severity": "1 - Critical"},
                          {"name": "ZendeskEscalation", "service": "auth-service", "severity": "Urgent"},
                          {"name": "JiraBlocker", "service": "search", "severity": "Blocker"},
                          {"name": "Azure", "service": "checkout", "severity": "Sev4"}]}
    resp = post(live, "generic", payload)
    assert resp.status_code == 202
    assert resp.json()["warnings"] == ["alert 'Odd': severity 'whenever' is not a level I know (critical, high, "
                                       "warning, low, info, SEV1-4, P1-4, 1-4): taken as SEV3"]
    wait_processed(live)
    by_alert = {i.alert_name: i for i in incidents(live)}
    assert {n: i.severity for n, i in by_alert.items()} == {"Odd": 3, "SnowTicket": 1, "ZendeskEscalation": 1,
                                                            "JiraBlocker": 1, "Azure": 4}
    odd = by_alert["Odd"]
    cards = {c.args["text"]: json.dumps(c.args["blocks"]) for c in live.standin.calls_to("chat.postMessage")
             if c.args.get("blocks")}
    (card,) = [b for text, b in cards.items() if f"#{odd.id} " in text]
    assert "the alert said `whenever`, a level I do not know" in card
    assert sum("a level I do not know" in b for b in cards.values()) == 1  # the others were read
    live.driver.command("/incident", f"sev 2 {odd.id}", user="U0BOB", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        inc = s.get(Incident, odd.id)
        assert inc is not None and inc.severity == 2 and "unread_severity" not in inc.findings["intake"]
    last = [c for c in live.standin.calls_to("chat.update") if f"#{odd.id} " in c.args.get("text", "")][-1]
    assert "SEV2" in json.dumps(last.args["blocks"]) and "a level I do not know" not in json.dumps(last.args["blocks"])
    # Nothing unknown, no warnings key: the answer senders already parse is unchanged.
    assert "warnings" not in post(live, "generic", {"name": "Fine", "severity": "P2"}).json()


def test_generic_status_words_of_other_tools_are_read_not_refused(live: Live) -> None:
    """`"status": "TRIGGERED"` then `"OK"` (Nagios, Datadog, Zabbix words, any case) were refused with 422, and a
    sender seldom retries a 4xx: the alert was lost at the door. A word that is neither is still refused."""
    for status in ("TRIGGERED", "OK"):
        resp = post(live, "generic", {"name": "DiskFull", "service": "kafka", "fingerprint": "disk-kafka-3",
                                      "status": status})
        assert resp.status_code == 202, resp.text
        wait_processed(live)
    (inc,) = incidents(live)
    assert inc.alert_name == "DiskFull" and inc.status == "mitigated"  # opened, then its only alert cleared
    bad = post(live, "generic", {"name": "DiskFull", "status": "maybe"})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "alerts.0.status"
    # numbers where text is due, quoted numbers, null text, one log string, Unix milliseconds: read, not a 422
    loose = {"name": "PoolExhausted", "service": "payments-api", "fingerprint": 4021, "summary": None,
             "labels": {"replica": 3, "canary": True}, "metrics": {"cpu_usage": "97", "error_count": "12"},
             "logs": "FATAL: remaining connection slots are reserved\nERROR pool timeout", "starts_at": 1764756000000}
    assert post(live, "generic", loose).status_code == 202
    wait_processed(live)
    inc = next(i for i in incidents(live) if i.alert_name == "PoolExhausted")
    intake = inc.findings["intake"]
    assert intake["metrics"] == {"cpu_usage": 97.0, "error_count": 12.0} and len(intake["log_lines"]) == 2
    with live.db.session() as s:
        (row,) = s.scalars(select(Alert).where(Alert.incident_id == inc.id)).all()
        assert row.fingerprint == "4021" and row.labels["replica"] == "3" and row.labels["canary"] == "true"
        assert row.starts_at == dt.datetime(2025, 12, 3, 10, 0)


def test_log_lines_of_a_description_are_its_log_like_lines_not_its_metrics() -> None:
    desc = ("5xx ratio 14% (cpu=91 errors=380 latency=850)\nFATAL: remaining connection slots are reserved\n"
            "level=error msg=\"upstream reset\"\njava.lang.NullPointerException at Foo.bar\npod OOMKilled\nall good")
    assert extract_log_lines({"description": desc}) == (
        "FATAL: remaining connection slots are reserved", 'level=error msg="upstream reset"',
        "java.lang.NullPointerException at Foo.bar", "pod OOMKilled")
    # an explicit logs field is taken whole
    assert extract_log_lines({"logs": "a\nerrors=3", "description": "ERROR x"}) == ("a", "errors=3")


def test_grafana_put_basic_auth_and_its_signature_timestamp(live: Live) -> None:
    """What a Grafana contact point can be set to send: PUT instead of POST, HTTP basic auth (Alertmanager's
    ``basic_auth`` too), an HMAC signature over ``timestamp:body`` whose timestamp must be recent."""
    import base64
    import hashlib
    import hmac

    body = json.dumps(load("grafana")).encode()
    secret = SECRETS["grafana"]

    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
                "Content-Type": "application/json"}

    put = httpx.put(f"{live.url}/webhooks/grafana", content=body, headers=basic("grafana", secret), timeout=30)
    assert put.status_code == 202, put.text
    wait_processed(live)
    (inc,) = incidents(live)
    assert inc.alert_name == "DiskSpaceLow"
    for bad in (basic("grafana", "wrong"), basic("grafana", ""),
                {"Authorization": "Basic !!!not-base64", "Content-Type": "application/json"},
                {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}):  # no "user:"
        refused = httpx.post(f"{live.url}/webhooks/grafana", content=body, headers=bad, timeout=30)
        assert refused.status_code == 401, (bad, refused.text)
    am = json.dumps(load("alertmanager")).encode()
    ok = httpx.post(f"{live.url}/webhooks/alertmanager", content=am, headers=basic("am", SECRETS["alertmanager"]),
                    timeout=30)
    assert ok.status_code == 202
    pd = httpx.post(f"{live.url}/webhooks/pagerduty", content=body, headers=basic("x", SECRETS["pagerduty"]),
                    timeout=30)
    assert pd.status_code == 401, "PagerDuty deliveries are signed; a password is not enough"

    def signed(ts: str) -> httpx.Response:
        sig = hmac.new(secret.encode(), ts.encode() + b":" + body, hashlib.sha256).hexdigest()
        return httpx.post(f"{live.url}/webhooks/grafana", content=body, timeout=30, headers={
            "Content-Type": "application/json", "X-Grafana-Alerting-Signature": sig,
            "X-Grafana-Alerting-Signature-Timestamp": ts.encode("latin-1")})  # HTTP headers are latin-1

    assert signed(str(int(time.time()))).status_code == 202
    stale = signed(str(int(time.time()) - 3600))
    assert stale.status_code == 401 and "stale" in stale.text, "a captured delivery replayed an hour later"
    assert signed("yesterday").status_code == 401
    for odd in ("\u00b2", "9" * 5000):  # a digit to isdigit() that int() refuses; more digits than int() takes
        assert signed(odd).status_code == 401, odd
        warroom_ts = {"X-Warroom-Timestamp": odd.encode("latin-1"), "X-Warroom-Signature": "sha256=" + "0" * 64,
                      "Content-Type": "application/json"}
        resp = httpx.post(f"{live.url}/webhooks/generic", content=b"{}", headers=warroom_ts, timeout=30)
        assert resp.status_code == 401, (odd[:5], resp.status_code)


def test_a_revoked_slack_token_makes_work_wait_not_fail(live: Live) -> None:
    """Slack starts refusing the bot's token (``invalid_auth``: the app was reinstalled, the token revoked).
    Alerts are still accepted and the incident opened; its card job waits (its attempts are not used up in a
    minute), /readyz says why; once the token works again the card is posted, nothing lost."""
    from knowledge.models import Job

    good = live.standin.token
    live.standin.token = "xoxb-the-new-token-nobody-deployed"
    try:
        assert post(live, "alertmanager", load("alertmanager")).status_code == 202
        deadline = time.time() + 30  # not live.drain(): the card job is meant to stay queued meanwhile
        while time.time() < deadline and not (incidents(live) and live.services.poster.auth_problem):
            live.services.intake.notify()
            time.sleep(0.1)
        ready = httpx.get(f"{live.url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["slack_auth"]["error"] == "invalid_auth", ready.json()
        assert "warroom_slack_auth_ok 0.0" in httpx.get(f"{live.url}/metrics", timeout=10).text
        (inc,) = incidents(live)
        assert inc.card_ts is None
        time.sleep(6)  # more than the first backoffs (1 s, 2 s): plain failures would be on their third attempt
        with live.db.session() as s:
            cards = s.scalars(select(Job).where(Job.kind == "incident.card")).all()
            assert cards and all(j.status in ("queued", "running") for j in cards), [(j.status, j.attempts)
                                                                                     for j in cards]
            assert all(j.attempts <= 1 for j in cards), "waiting for the token does not use up attempts"
    finally:
        live.standin.token = good
    live.drain(timeout=60)
    (inc,) = incidents(live)
    assert inc.card_ts is not None, "the card is posted once Slack takes the token again"
    assert "slack_auth" not in httpx.get(f"{live.url}/readyz", timeout=10).json()
    assert "warroom_slack_auth_ok 1.0" in httpx.get(f"{live.url}/metrics", timeout=10).text


def test_digits_that_int_refuses_are_not_numbers(live: Live) -> None:
    """"²" passes str.isdigit() and int() refuses it; so does a 5,000-digit number. As a severity label the alert
    is still taken (default severity), not lost to a processing error; in commands they get a plain answer."""
    body = load("alertmanager")
    for i, odd in enumerate(("\u00b2", "9" * 5000)):
        payload = copy.deepcopy(body)
        payload["groupKey"] = f"odd-{i}"
        for a in payload["alerts"]:
            a["labels"]["severity"], a["labels"]["alertname"] = odd, f"OddSeverity{i}"
            a["fingerprint"] = f"odd{i}{a.get('fingerprint', '')}"
        assert post(live, "alertmanager", payload).status_code == 202
    wait_processed(live)
    odd_ones = [i for i in incidents(live) if (i.alert_name or "").startswith("OddSeverity")]
    assert len(odd_ones) == 2 and all(i.severity == 3 for i in odd_ones)
    live.driver.command("/runbook", "history \u00b2", user="U0ALICE", channel="C0OPS")
    live.driver.command("/risk", "cpu=90 #" + "9" * 5000, user="U0ALICE", channel="C0OPS")
    live.drain()
    said = [json.dumps(m.get("blocks")) for m in live.standin.messages("C0OPS") if m.get("user") == "U0ALICE"]
    assert len(said) == 2 and not any("Something went wrong" in s for s in said), said


def test_severity_words_of_other_tools(live: Live) -> None:
    """"SEV-1", Zabbix's "Disaster" and "Average", syslog's "emerg", OpsGenie's "P0": each at its level, not at the
    default SEV3 (a disaster that pages nobody)."""
    words = {"SEV-1": 1, "Disaster": 1, "emerg": 1, "P0": 1, "Average": 3, "Not classified": 4}
    alerts = [{"name": f"Sev{i}", "service": f"svc-{i}", "fingerprint": f"sevword{i}", "severity": word}
              for i, word in enumerate(words)]
    assert post(live, "generic", {"alerts": alerts}).status_code == 202
    wait_processed(live)
    got = {i.alert_name: i.severity for i in incidents(live)}
    assert got == {f"Sev{i}": level for i, level in enumerate(words.values())}, got


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_long_group_keys_and_names_are_stored_and_still_group(kind: str, tmp_path: Path, standin: SlackStandIn
                                                              ) -> None:
    """An Alertmanager route grouping by twelve labels sends a 478-character groupKey: accepted (202), then its
    incident failed to insert on PostgreSQL (VARCHAR(300)) and the alert was never shown. Long alert names,
    fingerprints, services and Slack ids the same."""
    group_key = "{}/{}:{" + ", ".join(f'label{i}="value-{i}-{"z" * 20}"' for i in range(12)) + "}"
    long_name = "KubeDeploymentReplicasMismatch" + "X" * 400
    with live_on(kind, tmp_path, standin) as live:
        first = load("alertmanager")
        first["groupKey"] = group_key
        for i, a in enumerate(first["alerts"]):
            a["labels"] = {**a["labels"], "alertname": long_name, "service": "svc-" + "s" * 300}
            a["fingerprint"] = f"{i}" + "f" * 400
        assert post(live, "alertmanager", first).status_code == 202
        wait_processed(live)
        again = copy.deepcopy(first)  # the same group, a new alert in it: joins the incident opened for the group
        again["alerts"] = [{**first["alerts"][0], "fingerprint": "9" + "f" * 400,
                            "labels": {**first["alerts"][0]["labels"], "instance": "another:9100"}}]
        assert post(live, "alertmanager", again).status_code == 202
        wait_processed(live)
        live.driver.command("/incident", "list", channel="C0LONG", trigger_id="T" * 400)  # a 503 on PostgreSQL
        live.drain()
        with live.db.session() as s:
            assert [r.status for r in s.scalars(select(WebhookInbox))] == ["processed", "processed"]
            (inc,) = incidents(live)
            alerts = s.scalars(select(Alert).where(Alert.incident_id == inc.id)).all()
        assert len(alerts) == len(first["alerts"]) + 1 and len({a.fingerprint for a in alerts}) == len(alerts)
        assert inc.alert_name is not None and inc.alert_name.startswith("KubeDeploymentReplicasMismatch")
        assert len(inc.group_key or "") == 300
        assert live.standin.messages("C0LONG")[-1]["text"].startswith("Open incidents")


def test_a_start_no_clock_could_have_seen_is_no_start(live: Live) -> None:
    """A 1970 epoch (an unset field) or a year-9999 start made the incident "detected" 56 years ago or in the future,
    so its time to acknowledge and its postmortem's durations were absurd. A start minutes ago still counts."""
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for i, start in enumerate(("1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z", recent)):
        assert post(live, "generic", {"alerts": [{"name": f"Clock{i}", "service": "api", "fingerprint": f"clk{i}",
                                                  "starts_at": start}]}).status_code == 202
    wait_processed(live)
    with live.db.session() as s:
        rows = {inc.alert_name: (inc.detected_at, inc.created_at) for inc in incidents(live)}
        starts = dict(s.execute(select(Alert.name, Alert.starts_at).where(Alert.name.like("Clock%"))).all())
    for name in ("Clock0", "Clock1"):
        detected, created = rows[name]
        assert detected == created and starts[name] is None, (name, detected, created)
    detected, created = rows["Clock2"]
    assert dt.timedelta(minutes=9) < created - detected < dt.timedelta(minutes=11)
