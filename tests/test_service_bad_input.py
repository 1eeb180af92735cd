"""Hostile and malformed input at the Slack door: clear replies, 4xx not 5xx, nothing lost."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import pytest

from bot.standin.server import SlackStandIn
from tests.conftest import Live, live_on


def test_malformed_payloads_get_4xx(live: Live) -> None:
    for body, ctype in (("{not json", "application/json"), ("payload=%7Bbroken", "application/x-www-form-urlencoded"),
                        ("", "application/json"), ("\x00\xff\xfe", "application/octet-stream")):
        resp = live.driver.post(body, ctype)
        assert 400 <= resp.status_code < 500 or resp.status_code == 200, (body, resp.status_code)
        assert resp.status_code != 500


def test_deeply_nested_json_is_400_not_500(live: Live) -> None:
    """A correctly signed body of 5,000 nested brackets made the JSON parser raise RecursionError: a 500."""
    deep = "[" * 5000 + "]" * 5000
    block_actions = '{"type":"block_actions","actions":' + deep + "}"
    for body, ctype in ((deep, "application/json"),
                        ("payload=" + urllib.parse.quote(block_actions), "application/x-www-form-urlencoded")):
        resp = live.driver.post(body, ctype)
        assert resp.status_code == 400, resp.text
        assert "nested too deeply" in resp.text
    assert live.driver.command("/warroom", "status").status_code == 200  # the app is still there


def test_oversized_body_is_413(live: Live) -> None:
    resp = live.driver.post("text=" + "a" * (2 * 1024 * 1024), "application/x-www-form-urlencoded")
    assert resp.status_code == 413


def test_unknown_command_gets_a_clear_reply(live: Live) -> None:
    resp = live.driver.command("/frobnicate", "now")
    assert resp.status_code == 200
    assert "I do not know `/frobnicate`" in resp.text


def test_empty_text_gets_help(live: Live) -> None:
    live.driver.command("/warroom", "", channel="C0E")
    live.drain()
    (msg,) = live.standin.messages("C0E")
    assert "warroom help" in json.dumps(msg["blocks"])


def test_huge_text_is_cut_with_a_note(live: Live) -> None:
    resp = live.driver.command("/warroom", "status " + "x" * 20000, channel="C0H")
    assert resp.status_code == 200 and "cut to" in resp.text
    live.drain()
    assert len(live.standin.messages("C0H")) == 1


def test_mrkdwn_injection_is_escaped(live: Live) -> None:
    resp = live.driver.command("/nope<!channel>", "x")
    assert "<!channel>" not in resp.text


def test_bidi_controls_cannot_spoof_a_title(live: Live) -> None:
    """An incident titled "\u202edevloser\u202c" showed on its card as "resolved" (a right-to-left override)."""
    live.driver.command("/incident", "new \u202edevloser\u202c sev2", channel="C0BIDI")
    live.drain()
    from sqlalchemy import select

    from knowledge.models import Incident

    with live.db.session() as s:
        (title,) = s.scalars(select(Incident.title).where(Incident.title.like("%devloser%"))).all()
    assert title == "devloser"
    sent = json.dumps([c.args for c in live.standin.calls], ensure_ascii=False)  # the card, its header too
    assert "devloser" in sent and "\u202e" not in sent and "\u202c" not in sent


def _shaped(live: Live, key: str, value: object, base: dict | None = None) -> dict:
    payload = json.loads(json.dumps(base or live.driver.click_payload("incident:ack", "1")))
    payload[key] = value
    return payload


def test_signed_bodies_of_the_wrong_shape_are_400_naming_the_field(live: Live) -> None:
    """Each of these raised inside Bolt or a listener: a 500, or a 503 "please retry" that made Slack resend it."""
    view = {"type": "view_submission", "team": {"id": "T0WARROOM"}, "user": {"id": "U0ALICE"}, "trigger_id": "t",
            "view": {"id": "V1", "hash": "h", "callback_id": "runbook:confirm", "private_metadata": "{}",
                     "state": {"values": {}}}}
    interactive = [(_shaped(live, "user", "U0ALICE"), "payload.user"),
                   (_shaped(live, "actions", []), "payload.actions"),
                   (_shaped(live, "actions", [{"action_id": 5}]), "payload.actions[0].action_id"),
                   (_shaped(live, "channel", "C1"), "payload.channel"),
                   (_shaped(live, "message", "x"), "payload.message"),
                   (_shaped(live, "view", None, view), "payload.view"),
                   (_shaped(live, "view", {"callback_id": "runbook:confirm", "state": {"values": {"b": {"a": 5}}}},
                            view), "payload.view.state.values")]
    for payload, field in interactive:
        resp = live.driver.post(urllib.parse.urlencode({"payload": json.dumps(payload)}),
                                "application/x-www-form-urlencoded")
        assert resp.status_code == 400 and field in resp.text, (field, resp.status_code, resp.text)
    events = [({"type": "reaction_added", "user": "U0ALICE", "reaction": "eyes",
                "item": {"type": "message", "channel": 5, "ts": []}}, "event.item.channel"),
              ({"type": "app_mention", "user": ["x"], "text": "<@UWARROOM> help", "channel": "C0E"}, "event.user"),
              ({"type": "file_shared", "file_id": "F1", "channel_id": ["C"]}, "event.channel_id"),
              ({"type": "message", "user": "U0ALICE", "text": "x", "channel": "C0E", "files": [5]}, "event.files[0]")]
    for event, field in events:
        resp = live.driver.event(event)
        assert resp.status_code == 400 and field in resp.text, (field, resp.status_code, resp.text)
    for body in ({"type": "event_callback", "event": None}, {"type": "event_callback", "event": "x"}):
        resp = live.driver.post(json.dumps(body), "application/json")
        assert resp.status_code == 400 and "`event` must be an object" in resp.text
    # Events the app does not read keep Slack's own shapes (channel_rename's channel is an object) and get a 200.
    assert live.driver.event({"type": "channel_rename", "channel": {"id": "C0E", "name": "x"}}).status_code == 200
    live.drain()
    with live.db.session() as s:
        from sqlalchemy import select

        from knowledge.models import Job

        assert s.scalars(select(Job).where(Job.last_error.is_not(None))).all() == []


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_nul_characters_are_stored_on_both_databases_and_lose_nothing(kind: str, tmp_path: Path,
                                                                     standin: SlackStandIn) -> None:
    """PostgreSQL refuses NUL in text: an alert whose summary held "\\u0000" was accepted (202), then its inbox row
    went to 'error' and no incident was opened; `/incident new` and `/logs` with one answered "went wrong"."""
    from sqlalchemy import select

    from knowledge.models import Incident, WebhookInbox
    from tests.test_intake_webhooks import post, wait_processed

    with live_on(kind, tmp_path, standin) as live:
        alert = {"alerts": [{"name": "Nul\x00Alert", "service": "api", "summary": "disk\x00full",
                             "logs": ["ERROR \x00 x"], "labels": {"team": "v\x00"}}]}
        assert post(live, "generic", alert).status_code == 202
        wait_processed(live)
        live.driver.command("/incident", "new nul\x00title sev2", channel="C0NUL")
        live.driver.command("/logs", "ERROR a\x00b", channel="C0NUL")
        live.drain()
        with live.db.session() as s:
            assert [r.status for r in s.scalars(select(WebhookInbox))] == ["processed"]
            titles = set(s.scalars(select(Incident.title).where(Incident.source != "import")))
        assert titles == {"api: disk\ufffdfull", "nul\ufffdtitle"}, titles
        texts = [m.get("text") or "" for m in live.standin.messages("C0NUL")]
        assert len(texts) == 2 and not any("went wrong" in t for t in texts), texts


def _reply(live: Live, command: str, text: str, channel: str) -> str:
    from bot.render import blocks_to_text

    assert live.driver.command(command, text, channel=channel).status_code == 200
    live.drain()
    msg = live.standin.messages(channel)[-1]
    return blocks_to_text(msg.get("blocks") or []) or msg.get("text", "")


def test_a_severity_we_do_not_have_is_refused_not_filed_as_sev3(live: Live) -> None:
    """`/incident new checkout down sev9` opened a SEV3 titled "checkout down sev9": the person meant something
    urgent (or a typo of a real level) and got the default severity without a word."""
    from sqlalchemy import func, select

    from knowledge.models import Incident

    with live.db.session() as s:
        before = s.scalar(select(func.count(Incident.id)))
    for i, text in enumerate(("new checkout down sev9", "new sev12: checkout down", "new checkout down severity 7",
                              "new checkout down SEV-5")):
        reply = _reply(live, "/incident", text, f"C0SEV{i}")
        assert "is not a severity here" in reply and "sev1 (worst) to sev4" in reply, (text, reply)
    with live.db.session() as s:
        assert s.scalar(select(func.count(Incident.id))) == before, "nothing opened at a made-up severity"
    # real levels and title words that only look alike still open incidents
    for i, (text, sev, title) in enumerate((("new checkout down sev1", 1, "checkout down"),
                                            ("new p5 instances slow", 3, "p5 instances slow"),
                                            ("new severe lag on ingest P2", 2, "severe lag on ingest"))):
        _reply(live, "/incident", text, f"C0SEVOK{i}")
        with live.db.session() as s:
            inc = s.scalars(select(Incident).order_by(Incident.id.desc())).first()
        assert inc is not None and (inc.severity, inc.title) == (sev, title), text


def test_runbook_list_for_an_unknown_or_garbled_service_says_so(live: Live) -> None:
    """`/runbook list paymnets-api` listed the runbooks for any service under "Runbooks for paymnets-api" with no
    hint of the typo; a control character gave the title "Runbooks for \x01"."""
    reply = _reply(live, "/runbook", "list paymnets-api", "C0RBL1")
    assert "No runbook is written for `paymnets-api` (did you mean `payments-api`?)" in reply, reply
    reply = _reply(live, "/runbook", "list \x01payments-api\x7f", "C0RBL2")
    assert "Runbooks for payments-api" in reply and "No runbook is written" not in reply, reply
    assert "\x01" not in reply and "\x7f" not in reply
    # several names: each counts (the second was dropped), and one nothing is written for is named
    reply = _reply(live, "/runbook", "list flush-nothing, kafka and paymnets-api", "C0RBL4")
    assert "Runbooks for flush-nothing, kafka and paymnets-api ==" in reply, reply
    assert "No runbook is written for `flush-nothing`." in reply and "(did you mean `payments-api`?)" in reply
    assert "No runbook is written for `kafka`" not in reply
    one, two = _reply(live, "/runbook", "list dns", "C0RBL5"), _reply(live, "/runbook", "list redis-cache", "C0RBL6")
    both = _reply(live, "/runbook", "list dns redis-cache", "C0RBL7")
    slugs = lambda said: set(re.findall(r"`([a-z-]+)` v\d", said))  # noqa: E731
    assert slugs(both) == slugs(one) | slugs(two) and slugs(one) != slugs(two), (one, two)
    _reply(live, "/runbook", "list <!channel>", "C0RBL3")
    (summary,) = [b["text"]["text"] for b in live.standin.messages("C0RBL3")[-1]["blocks"]
                  if b.get("type") == "section" and "No runbook" in b["text"]["text"]]
    assert "<!channel>" not in summary and "`@channel`" in summary, summary  # the word, never a ping


def test_group_mentions_in_a_title_are_stored_as_words_and_users_stay_mentions(live: Live) -> None:
    """`/incident new paged by @payments-oncall @here` kept `<!subteam^S0ONCALL|@payments-oncall>` and `<!here>` in
    the title: the reply showed them escaped, and the card header as Slack's markup; `@bob` showed as `<@U0BOB>`."""
    from sqlalchemy import select

    from knowledge.models import Incident

    reply = _reply(live, "/incident", "new paged by <!subteam^S0ONCALL|@payments-oncall> and <!here> about "
                   "<#C0PAY|payments>, ask <@U0BOB> sev2", "C0GRP")
    with live.db.session() as s:
        inc = s.scalars(select(Incident).order_by(Incident.id.desc())).first()
    assert inc is not None and inc.title == "paged by @payments-oncall and @here about #payments, ask <@U0BOB>"
    assert inc.severity == 2
    (msg,) = live.standin.messages("C0GRP")
    assert "ask <@U0BOB>" in msg["text"] and "&lt;@U0BOB&gt;" not in msg["text"], msg["text"]  # a real mention
    sent = json.dumps([c.args for c in live.standin.calls])
    assert "subteam" not in sent and "<!here>" not in sent and "&lt;!" not in sent
    assert "@payments-oncall" in reply
