"""The Bolt app over HTTP: signed requests in, what the Slack stand-in received out."""

from __future__ import annotations

import itertools
import json
import re
import time
import urllib.parse

import httpx
from sqlalchemy import func, select

from bot.render import blocks_to_text
from bot.settings import Settings
from bot.slack_app import strip_bot_mention
from knowledge.db import Database
from knowledge.models import AuditRecord, Incident, Job, Postmortem, RunbookExecution, TimelineEvent
from knowledge.people import oncall_by_team
from tests.conftest import Live


def _texts(live: Live, channel: str | None = None) -> list[str]:
    return [json.dumps(m.get("blocks") or m.get("text")) for m in live.standin.messages(channel)]


def _first(live: Live, channel: str) -> str:
    """The plain text of the first message in ``channel``."""
    return str(live.standin.messages(channel)[0]["text"])


def test_health_ready_metrics(live: Live) -> None:
    assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live.url}/readyz")
    assert ready.status_code == 200 and ready.json()["migrated"] is True
    body = httpx.get(f"{live.url}/metrics").text
    assert "warroom_http_requests_total" in body and "warroom_queue_depth" in body


def test_slack_holding_back_events_is_answered_200_and_said_once_an_hour(live: Live) -> None:
    """Slack stops delivering events to an app that gets more than 30,000 an hour, and disables them for one that
    answers non-200 to 5% of deliveries; it says so with ``app_rate_limited``, which has no inner event. The bot
    must answer it 200 (a 404 counts as another failed delivery) and tell people what they may have missed."""
    minute = int(time.time()) // 60 * 60
    assert live.driver.app_rate_limited(minute).status_code == 200
    assert live.driver.app_rate_limited(minute + 60).status_code == 200  # Slack repeats it: said once an hour
    assert live.driver.app_rate_limited(minute + 60).status_code == 200
    live.drain()
    said = [m["text"] for m in live.standin.messages("C0INCIDENTS")]
    assert len(said) == 1 and "holding back" in said[0] and "slash commands" in said[0].lower(), said
    assert f"<!date^{minute}^" in said[0]  # the minute it began, in each reader's time zone
    ready = httpx.get(f"{live.url}/readyz").json()
    assert ready["status"] == "ready" and ready["slack_events_limited"]["minute"].startswith(
        time.strftime("%Y-%m-%dT%H:%M", time.gmtime(minute + 60)))
    metrics = httpx.get(f"{live.url}/metrics").text
    assert re.search(r"^warroom_slack_events_limited_total 3\.0$", metrics, re.M), metrics[-2000:]
    forged = live.driver.post(json.dumps({"type": "app_rate_limited", "team_id": "T0WARROOM"}), "application/json",
                              sign=False)
    assert forged.status_code == 401


def test_what_people_type_is_kept_as_typed_not_as_slacks_escapes(live: Live) -> None:
    """Slack sends &, < and > in typed text as &amp;, &lt; and &gt;: stored as such, a title showed "p99 &gt; 2s"
    and a pasted log line was not the line the CLI sees. One pass: someone who typed "&lt;" keeps "&lt;"."""
    title = "checkout p99 > 2s & rising, see &lt;docs&gt;"
    assert live.driver.command("/incident", f"new {title} sev2", channel="C0OPS").status_code == 200
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).order_by(Incident.id.desc())).first()
        assert inc is not None and inc.title == title, inc.title if inc else None
    card = json.dumps([m.get("blocks") for m in live.standin.messages() if m.get("ts") == inc.card_ts])
    assert "p99 &gt; 2s &amp; rising, see &amp;lt;docs&amp;gt;" in card and "&amp;gt; 2s" not in card
    assert live.driver.mention(f"note #{inc.id}: if the pool < 5 & the lag > 10s, page <@U0BOB>",
                               channel="C0OPS").status_code == 200
    live.drain()
    with live.db.session() as s:
        notes = s.scalars(select(TimelineEvent.text).where(TimelineEvent.incident_id == inc.id,
                                                           TimelineEvent.kind == "note")).all()
    assert any("if the pool < 5 & the lag > 10s, page <@U0BOB>" in n for n in notes), notes
    # Commands escape users and channels (the manifest's should_escape): "#checkout" arrives as <#C0CHK|checkout>,
    # "@bob" as <@U0BOB|bob>, a link as <https://...>; the title reads as typed, the assignee is a person.
    live.driver.command("/incident", "new card errors in <#C0CHK|checkout> see <https://grafana.example/d/x?a=1&b=2> "
                        "sev3", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        new = s.scalars(select(Incident).order_by(Incident.id.desc())).first()
        assert new is not None and new.title == "card errors in #checkout see https://grafana.example/d/x?a=1&b=2"
    live.driver.command("/incident", f"assign {new.id} <@U0BOB|bob>", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, new.id).assignee == "U0BOB"  # type: ignore[union-attr]


def test_signed_slash_command_is_answered(live: Live) -> None:
    resp = live.driver.command("/warroom", "status", user="U0BOB", channel="C0OPS")
    assert resp.status_code == 200
    live.drain()
    msgs = live.standin.messages("C0OPS")
    assert len(msgs) == 1
    assert "warroom status" in json.dumps(msgs[0]["blocks"])
    assert "I am up" in msgs[0]["text"]


def test_status_lists_open_incidents_and_the_backlog(live: Live) -> None:
    live.driver.command("/incident", "new checkout-web 404s on the JS bundles sev2", user="U0BOB", channel="C0OPS")
    live.drain()
    live.driver.command("/warroom", "status", user="U0BOB", channel="C0OPS")
    live.drain()
    msg = live.standin.messages("C0OPS")[-1]
    blocks = json.dumps(msg["blocks"])
    # Not itself (it runs as a job), nor the reminders planned for later
    assert "I am up. 1 open incident(s); 0 job(s) in progress." in msg["text"], msg["text"]
    assert "SEV2 [open] checkout-web 404s on the JS bundles" in blocks
    assert "Jobs failed" in blocks and "Alerts waiting" in blocks


def test_help_is_ephemeral_for_commands(live: Live) -> None:
    live.driver.command("/warroom", "help", user="U0BOB", channel="C0OPS")
    live.drain()
    (msg,) = live.standin.messages("C0OPS")
    assert msg["ephemeral"] is True and msg["user"] == "U0BOB"
    assert "/warroom status" in json.dumps(msg["blocks"])


def test_help_about_one_skill_shows_its_commands_in_full(live: Live) -> None:
    """`/warroom help runbook` listed every skill, "runbook" dropped: it now shows that skill's every form."""
    from bot.render import blocks_to_text

    for i, (cmd, text) in enumerate((("/warroom", "help runbook"), ("/warroom", "help /oncall"),
                                     (None, "help with postmortems"), ("/warroom", "help quantum"))):
        if cmd:
            live.driver.command(cmd, text, user="U0BOB", channel=f"C0HELP{i}")
        else:
            live.driver.mention(text, user="U0BOB", channel=f"C0HELP{i}")
    live.drain()
    said = [blocks_to_text(live.standin.messages(f"C0HELP{i}")[-1]["blocks"]) for i in range(4)]
    assert said[0].startswith("== warroom help: runbooks ==")
    assert "`/runbook history [run id | runbook id | service]`" in said[0]
    assert "/runbook run restart-service service=payments-api --dry-run" in said[0] and "*incident*" not in said[0]
    assert said[1].startswith("== warroom help: routing ==") and "`/oncall cover [team]" in said[1]
    assert "`in 3h`" in said[1] and "/oncall release [team]" in said[1]
    assert said[2].startswith("== warroom help: postmortem ==") and "/postmortem done|reopen" in said[2]
    assert "I have no skill or command called `quantum`" in said[3] and "*incident*" in said[3]
    # "help" after any command is that command's help: "/logs help" classified the word as a log line, "/similar
    # help" searched for it, "/route help" routed it
    for i, cmd in enumerate(("/logs", "/similar", "/route", "/runbook", "/postmortem")):
        assert live.driver.command(cmd, "help", user="U0BOB", channel=f"C0HELPCMD{i}").status_code == 200
    live.drain()
    for i, name in enumerate(("logs", "similar", "routing", "runbooks", "postmortem")):
        said = blocks_to_text(live.standin.messages(f"C0HELPCMD{i}")[-1]["blocks"])
        assert said.startswith(f"== warroom help: {name} =="), said


def test_commands_where_the_bot_is_not_a_member_answer_through_the_response_url(live: Live) -> None:
    """A slash command in a DM between two people or a private channel without the bot (chat.postMessage
    refused): the answer goes back through the command's response_url; the bot joins no channel for it."""
    live.standin.leave("D0ALICEBOB", private=True)
    live.standin.leave("C0PUBLIC")
    live.driver.command("/oncall", "payments", channel="D0ALICEBOB")
    live.driver.command("/incident", "new checkout-web 502 after the deploy sev2", channel="C0PUBLIC")
    live.driver.command("/warroom", "help", channel="D0ALICEBOB")  # ephemeral: the same way, ephemeral
    live.driver.message_shortcut("logs:classify", "2026-11-23 14:02:11 ERROR payments-api pq: remaining "
                                 "connection slots are reserved", channel="D0ALICEBOB")
    live.drain()
    answers = sorted((c.args["channel"], c.args["response_type"], c.args["text"][:40])
                     for c in live.standin.calls_to("response_url"))
    assert [a[:2] for a in answers] == [("C0PUBLIC", "in_channel"), ("D0ALICEBOB", "ephemeral"),
                                        ("D0ALICEBOB", "in_channel"), ("D0ALICEBOB", "in_channel")]
    assert answers[0][2].startswith("Incident #") and answers[1][2].startswith("warroom help")
    assert {answers[2][2][:20], answers[3][2][:20]} == {"Log classification: ", "On call now: payments"[:20]}
    assert live.standin.calls_to("conversations.join") == []
    with live.db.session() as s:  # the incident was opened, its card posted in the incident channel as usual
        inc = s.scalars(select(Incident).where(Incident.title.like("checkout-web 502%"))).one()
        assert inc.card_ts is not None


def test_an_answer_goes_only_to_a_response_url_on_slacks_hosts(live: Live) -> None:
    """Whoever held the signing secret could name a channel the bot cannot post in and their own response_url:
    the answer (here the on-call list; any question to the knowledge base alike) went to them."""
    import http.server
    import threading

    got: list[bytes] = []

    class Catch(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Catch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        live.standin.leave("C0SECRET", private=True)
        live.driver.command("/oncall", "payments", channel="C0SECRET",
                            response_url=f"http://127.0.0.1:{server.server_port}/steal")
        live.drain()
    finally:
        server.shutdown()
    assert got == []
    with live.db.session() as s:
        (job,) = s.scalars(select(Job).where(Job.kind == "skill.run", Job.status == "failed")).all()
        assert "response_url is not on Slack's hosts" in (job.last_error or "") and job.attempts == 1


def test_unsigned_and_stale_requests_are_refused(live: Live) -> None:
    body = urllib.parse.urlencode({"command": "/warroom", "text": "status", "user_id": "U1", "channel_id": "C1",
                                   "trigger_id": "t1"})
    unsigned = live.driver.post(body, "application/x-www-form-urlencoded", sign=False)
    assert unsigned.status_code == 401
    stale = live.driver.post(body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 600)
    assert stale.status_code == 401
    forged = live.driver.post(body, "application/x-www-form-urlencoded",
                              headers={"X-Slack-Signature": "v0=" + "0" * 64})
    assert forged.status_code == 401
    live.drain()
    assert live.standin.messages() == []
    with live.db.session() as s:
        assert s.scalars(select(Job)).all() == []


def test_event_retries_do_not_act_twice(live: Live) -> None:
    first = live.driver.mention("status please", channel="C0OPS", event_id="Ev0DUP")
    assert first.status_code == 200
    for n in (1, 2, 3):
        retry = live.driver.mention("status please", channel="C0OPS", event_id="Ev0DUP", retry_num=n)
        assert retry.status_code == 200
    live.drain()
    assert len(live.standin.messages("C0OPS")) == 1


def test_retry_of_a_failed_event_is_not_dropped(live: Live) -> None:
    # Slack refuses this job's posts for its whole retry budget (a 4xx, not an outage: outages of 429/5xx
    # give attempts back, see test_scaleout), so the job fails for good ...
    live.standin.fail("chat.postMessage", status=400, count=1000)
    live.driver.mention("status", channel="C0OPS", event_id="Ev0FAIL")
    deadline = time.time() + 60
    while time.time() < deadline:
        with live.db.session() as s:
            job = s.scalar(select(Job).where(Job.dedup_key == "slack:event:Ev0FAIL"))
            if job is not None and job.status == "failed":
                break
            if job is not None and job.status == "queued":
                # Do not wait out the backoff: make the retry due now.
                job.run_after = job.created_at
        live.services.runner.notify()
        time.sleep(0.1)
    assert job is not None and job.status == "failed"
    # ... then Slack stops failing and delivers the event again: it is processed, once.
    live.standin.reset()
    assert live.driver.mention("status", channel="C0OPS", event_id="Ev0FAIL", retry_num=1).status_code == 200
    live.drain()
    assert len(live.standin.messages("C0OPS")) == 1


def test_rate_limited_posts_are_retried_after_retry_after(live: Live) -> None:
    live.standin.fail("chat.postMessage", status=429, count=2, retry_after=1)
    live.driver.command("/warroom", "status", channel="C0OPS")
    live.drain()
    assert len(live.standin.messages("C0OPS")) == 1
    statuses = [c.status for c in live.standin.calls if c.method == "chat.postMessage"]
    assert statuses == [429, 429, 200]


def test_posts_to_one_channel_are_paced_at_slacks_rate(tmp_path, standin) -> None:  # type: ignore[no-untyped-def]
    """With the default interval, replies to one channel leave at most one a second; other channels and answers
    only the asker sees (ephemeral, not under that limit) do not wait behind them."""
    from bot.standin.driver import SlackDriver
    from bot.standin.harness import LiveServer
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, standin, slack_channel_interval_s=1.0)
    assert Settings.model_fields["slack_channel_interval_s"].default == 1.0  # the shipped default
    Database(settings.database_url).upgrade()
    with LiveServer(settings) as srv:
        driver = SlackDriver(srv.url, settings.slack_signing_secret.get_secret_value())
        for channel in ("C0PACE", "C0PACE", "C0PACE", "C0OTHER"):
            assert driver.command("/warroom", "status", channel=channel).status_code == 200
        assert driver.command("/warroom", "help", channel="C0PACE").status_code == 200  # ephemeral
        assert srv.drain(30)
    posts = {ch: [c.at for c in standin.calls_to("chat.postMessage") if c.args.get("channel") == ch and c.status == 200]
             for ch in ("C0PACE", "C0OTHER")}
    assert len(posts["C0PACE"]) == 3 and len(posts["C0OTHER"]) == 1
    gaps = [b - a for a, b in itertools.pairwise(posts["C0PACE"])]
    assert min(gaps) >= 0.9, gaps  # a lower bound on spacing (Slack's limit), not a speed assertion
    assert posts["C0OTHER"][0] < posts["C0PACE"][-1]  # another channel is not queued behind C0PACE
    (help_,) = [c.at for c in standin.calls_to("chat.postEphemeral") if c.status == 200]
    assert help_ < posts["C0PACE"][-1]  # nor is the ephemeral answer


def test_free_text_routes_to_best_skill_or_help(live: Live) -> None:
    live.driver.mention("what is the status, are you alive?", channel="C0A")
    live.driver.mention("qwzx frobnicate the gizmo", channel="C0B")
    live.drain()
    assert "warroom status" in _texts(live, "C0A")[0]
    helped = _texts(live, "C0B")[0]
    assert "not sure what you need" in helped and "/warroom status" in helped


def test_free_text_about_an_incident_a_pasted_log_line_and_a_named_service(live: Live) -> None:
    asks = {"C0S1": "status of incident #101", "C0S2": "what's going on with #105?",
            "C0L1": "ERROR db-1 connection refused to 10.0.0.4:5432",
            "C0L2": "2026-11-23 14:02:11 WARN payments-api retrying checkout 8812 in 2s (attempt 3)",
            "C0Q": "why is the ERROR rate high on payments-api?",
            "C0R": "what's the risk for payments-api cpu=95 mem=97?"}
    for ch, text in asks.items():
        live.driver.mention(text, channel=ch)
    live.drain()
    assert _first(live, "C0S1").startswith("Incident #101:")  # the incident, not the bot's own status
    assert _first(live, "C0S2").startswith("Incident #105:")
    assert "Log classification: 1 line(s) in 1 template(s): 1 ERROR" in _first(live, "C0L1")
    assert "1 WARNING" in _first(live, "C0L2")
    assert "Log classification" not in _first(live, "C0Q")  # a question about errors is not a paste
    assert "Failure risk: payments-api" in _first(live, "C0R")  # the service named in words, not service=


def test_free_text_commands_for_incidents_postmortems_and_similar(live: Live) -> None:
    asks = {"C0N1": "open a new incident for payments-api 500s sev2", "C0N2": "can you open an incident?",
            "C0N3": "ERROR dns: could not resolve #101.internal", "C0N4": "ERROR job #101 status=failed",
            "C0P": "show me the postmortem for #101", "C0SIM": "anything similar to #105?"}
    for ch, text in asks.items():
        live.driver.mention(text, channel=ch, user="U0BOB")
    live.drain()
    opened = _first(live, "C0N1")
    assert "(SEV2): payments-api 500s" in opened
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.title == "payments-api 500s")).one()
        assert (inc.severity, inc.service_name) == (2, "payments-api")
        assert s.query(Incident).filter(Incident.title == "?").count() == 0  # a question opens nothing
    live.driver.mention(f"ack #{inc.id}", channel="C0N1", user="U0BOB")
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, inc.id).status == "acknowledged"
    live.driver.mention(f"please resolve incident {inc.id}: rolled back the deploy", channel="C0N1", user="U0BOB")
    live.drain()
    with live.db.session() as s:
        row = s.get(Incident, inc.id)
        assert (row.status, row.resolution) == ("resolved", "rolled back the deploy")
    assert "Log classification" in _first(live, "C0N3")  # a pasted line that says "resolve #101" resolves nothing
    assert "Log classification" in _first(live, "C0N4")  # nor is one that says "#101 status" a status request
    assert _first(live, "C0P").startswith("Postmortem for incident #101")
    assert _first(live, "C0SIM").startswith("Similar past incidents: Closest matches for incident #105: _postgres")


def test_free_text_assign_route_runbooks_and_status(live: Live) -> None:
    asks = {"C0A1": "assign #102 to <@U0CARLA>", "C0A2": "who should take #101?", "C0A3": "list runbooks for kafka",
            "C0A4": "show runbook restart-service", "C0A5": "what is open right now?",
            "C0A7": "what runbooks do we have for postgres?", "C0A8": "what was the root cause of #101?",
            "C0A9": "is anything on fire?",
            # these went to the knowledge base, or to help ("I am not sure what you need")
            "C0B1": "summarize #101", "C0B2": "show me #101", "C0B3": "what's broken right now?",
            "C0B4": "who knows postgres best?", "C0B5": "has kafka had incidents this year?",
            "C0B6": "show the runbooks for #101"}
    for ch, text in asks.items():
        live.driver.mention(text, channel=ch, user="U0BOB")
    live.drain()
    assert "Incident #102 is assigned to <@U0CARLA>" in _first(live, "C0A1")  # the other mention is kept
    with live.db.session() as s:
        assert s.get(Incident, 102).assignee == "U0CARLA"
    routed = json.dumps(live.standin.messages("C0A2")[0]["blocks"])
    assert "declared owner of payments-api" in routed  # #101's own service, not the words "who should take"
    live.driver.command("/route", "checkout-web build #4521 fails after the CDN change", channel="C0A6")
    live.drain()
    assert "checkout-web" in json.dumps(live.standin.messages("C0A6")[0]["blocks"])  # a ticket's own number
    assert _first(live, "C0A3").startswith("Runbooks for kafka")
    assert "(restart-service)" in _first(live, "C0A4")
    shown = [m for m in live.standin.messages("C0A4") if m.get("ephemeral")]  # the runbook's own text, to the asker
    assert any("A rolling restart replaces every pod" in m["text"] and m.get("user") == "U0BOB" for m in shown)
    assert _first(live, "C0A5").startswith("warroom status: I am up")
    assert _first(live, "C0A9").startswith("warroom status: I am up")
    listed = json.dumps(live.standin.messages("C0A7"))  # "postgres" finds the runbooks for postgres-main
    assert "Runbooks for postgres" in listed and "clear-disk-space" in listed and "rollback-deploy" not in listed
    cause = json.dumps(live.standin.messages("C0A8"))  # #101's own outcome, not a search that finds another
    assert _first(live, "C0A8").startswith("Incident #101:") and "doubled the payments-api replica count" in cause
    assert _first(live, "C0B1").startswith("Incident #101:") and _first(live, "C0B2").startswith("Incident #101:")
    assert _first(live, "C0B3").startswith("warroom status: I am up")
    assert _first(live, "C0B4").startswith("Route: ")
    assert _first(live, "C0B5").startswith("Incident stats: ") and "on kafka" in _first(live, "C0B5")
    assert not _first(live, "C0B6").startswith("Incident #101:")  # "show" names the runbooks, not the incident


def test_a_symptom_in_words_gets_similar_incidents_and_one_click_opens_one_incident(live: Live) -> None:
    live.driver.mention("checkout-web is throwing 500s after the CDN change", channel="C0REP", user="U0ERIN")
    live.drain()
    msg = live.standin.messages("C0REP")[0]
    assert msg["text"].startswith("Similar past incidents") and "Not an incident yet" in msg["text"]
    buttons = [e for b in msg["blocks"] if b.get("type") == "actions" for e in b["elements"]]
    offer = next(b for b in buttons if b["action_id"] == "incident:new")
    for _ in range(2):  # a double click opens one incident
        live.driver.click("incident:new", offer["value"], user="U0ERIN", channel="C0REP", message_ts=msg["ts"])
        live.drain()
    with live.db.session() as s:
        opened = s.scalars(select(Incident).where(Incident.title.like("checkout-web is throwing%"))).all()
        assert len(opened) == 1 and opened[0].service_name == "checkout-web" and opened[0].created_by == "U0ERIN"
    assert any(f"Already opened as incident #{opened[0].id}" in m["text"] for m in live.standin.messages("C0REP"))


def test_ack_and_resolve_in_the_card_thread_act_on_that_incident(live: Live) -> None:
    live.driver.command("/incident", "new ingest lag growing sev2", user="U0ERIN", channel="C0OPS")
    live.driver.command("/incident", "new billing-worker stuck sev3", user="U0ERIN", channel="C0OPS")
    live.drain()  # two open cards in the incident channel: only the thread says which one
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.title == "ingest lag growing")).one()
        card_ts, channel = inc.card_ts, inc.channel_id
    assert card_ts and channel

    def reply(text: str, user: str = "U0ERIN") -> None:
        ev = {"type": "app_mention", "user": user, "text": f"<@UWARROOM> {text}", "ts": f"{time.time():.6f}",
              "thread_ts": card_ts, "channel": channel, "event_ts": f"{time.time():.6f}"}
        assert live.driver.event(ev).status_code == 200
        live.drain()

    reply("ack")
    with live.db.session() as s:
        assert s.get(Incident, inc.id).status == "acknowledged"
    reply("on it, checking the consumers", user="U0FARID")  # the writer takes it over
    with live.db.session() as s:
        assert s.get(Incident, inc.id).assignee == "U0FARID"
    assert "<@U0FARID> is on incident" in live.standin.messages(channel)[-1]["text"]
    live.driver.mention(f"assign #{inc.id} to me", channel="C0ME", user="U0ERIN")
    live.driver.mention(f"take a look at the incident #{inc.id}", channel="C0LOOK", user="U0BOB")  # takes nothing
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, inc.id).assignee == "U0ERIN"
    live.driver.mention("what am I on?", channel="C0MINE", user="U0ERIN")
    for i, asked in enumerate(("what incidents are assigned to me?", "anything assigned to me?",
                               "show incidents assigned to me", "which incident is mine?")):
        live.driver.mention(asked, channel=f"C0MINE{i}", user="U0ERIN")  # the first went to the knowledge base
    live.driver.command("/incident", "list sev3", user="U0ERIN", channel="C0SEV3")
    live.driver.command("/incident", "list ingest sev2", user="U0ERIN", channel="C0ING")
    live.driver.command("/incident", "list the moon", user="U0ERIN", channel="C0BAD")
    live.driver.command("/incident", "list payments", user="U0ERIN", channel="C0TEAM")  # a team: its services
    live.drain()
    mine = json.dumps(live.standin.messages("C0MINE"))
    assert "(assigned to you)" in mine and f"#{inc.id}*" in mine and "billing-worker" not in mine
    for i in range(4):
        assert [m["text"] for m in live.standin.messages(f"C0MINE{i}")] == \
            [m["text"] for m in live.standin.messages("C0MINE")], i
    sev3 = json.dumps(live.standin.messages("C0SEV3"))
    assert "billing-worker stuck" in sev3 and "ingest lag" not in sev3
    assert "ingest lag growing" in json.dumps(live.standin.messages("C0ING"))
    assert "I cannot filter by `the moon`" in json.dumps(live.standin.messages("C0BAD"))
    team = json.dumps(live.standin.messages("C0TEAM"))  # was "I cannot filter by `payments`"
    assert "on the payments team's services" in team and "billing-worker stuck" in team and "ingest lag" not in team
    reply("status")  # that incident's status, not the bot's
    assert live.standin.messages(channel)[-1]["text"].startswith(f"Incident #{inc.id}: ingest lag growing")
    reply("escalate")  # one level up, and the data team's people named (a mention notifies them)
    with live.db.session() as s:
        assert s.get(Incident, inc.id).severity == 1
    said = live.standin.messages(channel)[-1]["text"]
    assert "escalated incident" in said and "SEV2 -> SEV1" in said and "<@U0FARID>" in said
    reply("escalate")
    assert "it stays SEV1, the highest" in live.standin.messages(channel)[-1]["text"]
    with live.db.session() as s:  # whoever the rotation has on call for storage today
        storage = [u for r in oncall_by_team(session=s, team="storage") for u, _ in r.people]
    reply("escalate to storage")  # that team's on-call is called first
    said = live.standin.messages(channel)[-1]["text"]
    assert storage and said.index(f"<@{storage[0]}>") < said.index("<@U0FARID>") and "on call for storage" in said
    reply("escalate to the moon team")
    assert "I know no team or service called \"moon team\"" in live.standin.messages(channel)[-1]["text"]
    reply("close the loop with the kafka team first")  # an idiom, not a request: nothing is closed
    reply("mitigate the incident risk by pausing the consumers")  # an instruction to people, not a status
    with live.db.session() as s:
        assert s.get(Incident, inc.id).status == "acknowledged"
    assert "I did not act on that" in live.standin.messages(channel)[-1]["text"]
    reply("resolve it: raised the consumer memory limit")
    with live.db.session() as s:
        row = s.get(Incident, inc.id)
        assert (row.status, row.resolution) == ("resolved", "raised the consumer memory limit")
        assert s.scalars(select(Incident).where(Incident.title == "billing-worker stuck")).one().status == "open"


def test_only_the_bot_is_stripped_from_a_mention() -> None:
    body = {"authorizations": [{"user_id": "UWARROOM", "is_bot": True}]}
    assert strip_bot_mention("<@UWARROOM> assign #12 to <@U0BOB>", body) == "assign #12 to <@U0BOB>"
    assert strip_bot_mention("hey <@UWARROOM|warroom>, status", body) == "hey , status"
    assert strip_bot_mention("<@UOTHER> status", {}) == "status"  # no authorizations: the leading address


def test_dm_is_answered_in_thread(live: Live) -> None:
    live.driver.message("help", channel="D0ALICE", channel_type="im")
    live.drain()
    (msg,) = live.standin.messages("D0ALICE")
    assert msg.get("thread_ts")


def test_url_verification(live: Live) -> None:
    resp = live.driver.url_verification("xyz")
    assert resp.status_code == 200 and "xyz" in resp.text


def test_a_slack_outage_delays_replies_but_never_drops_them(live: Live) -> None:
    live.standin.outage(6.0)  # every Web API call answers 429 or 500 for six seconds
    assert live.driver.command("/warroom", "status", channel="C0OUT").status_code == 200
    assert live.driver.mention("status", channel="C0OUT", event_id="Ev0OUTAGE").status_code == 200
    live.drain(timeout=90)
    assert {c.status for c in live.standin.calls if c.method == "chat.postMessage"} >= {429, 500}
    assert len(live.standin.messages("C0OUT")) == 2  # both delivered after the outage, once each
    with live.db.session() as s:
        assert not s.scalars(select(Job).where(Job.status == "failed")).all()


def test_close_escalate_page_and_a_severity_first_report_in_words(live: Live) -> None:
    live.driver.mention("sev1 outage on checkout after the deploy", channel="C0SEV", user="U0ALICE")
    live.drain()
    msg = live.standin.messages("C0SEV")[0]
    assert "Open a SEV1 incident" in msg["text"]  # a report, offered; the severity rides on the button
    offer = next(e for b in msg["blocks"] if b.get("type") == "actions" for e in b["elements"]
                 if e["action_id"] == "incident:new")
    live.driver.click("incident:new", offer["value"], user="U0ALICE", channel="C0SEV", message_ts=msg["ts"])
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.title == "outage on checkout after the deploy")).one()
        assert (inc.severity, inc.created_by) == (1, "U0ALICE")
    live.driver.mention(f"set #{inc.id} to sev2", channel="C0RAT", user="U0ALICE")
    live.driver.mention(f"mitigated #{inc.id}: traffic moved to the old pods", channel="C0MIT", user="U0ALICE")
    live.drain()
    with live.db.session() as s:
        row = s.get(Incident, inc.id)
        assert (row.severity, row.status) == (2, "mitigated") and row.mitigated_at is not None
    live.driver.mention(f"close #{inc.id}: rolled back the deploy", channel="C0CLS", user="U0ALICE")
    live.driver.mention("page the storage team", channel="C0PAG", user="U0ALICE")
    live.driver.mention("page storage and data", channel="C0PAG2", user="U0ALICE")  # data was dropped
    live.driver.mention("what happened in #101?", channel="C0WHT", user="U0ALICE")
    live.driver.mention("escalate #101", channel="C0ESC", user="U0ALICE")
    live.drain()
    with live.db.session() as s:
        row = s.get(Incident, inc.id)
        assert (row.status, row.resolution) == ("resolved", "rolled back the deploy")
    paged = _first(live, "C0PAG")
    assert paged.startswith("Paging storage") and re.search(r"<@U0(IRIS|JONAS)>", paged)
    both = _first(live, "C0PAG2")
    assert both.startswith("Paging storage, data") and re.search(r"<@U0(IRIS|JONAS)>", both)
    assert re.search(r"<@U0(ERIN|FARID)>", both) and "you are on call for storage, data" in both
    what = json.dumps(live.standin.messages("C0WHT")[0]["blocks"])
    assert "Root cause" in what and "pgbouncer" in what and "/kb/postmortems/101|postmortem of #101" in what
    assert "02 Mar 09:14" in what  # a time of another day carries its date
    assert "is resolved" in _first(live, "C0ESC")  # a closed incident is not escalated
    live.driver.command("/incident", "new sev1: dns resolution failing in eu-west", channel="C0NEW", user="U0BOB")
    live.driver.mention("open an incident sev2 for kafka broker disk full", channel="C0NEW2", user="U0BOB")
    live.drain()  # a severity first counts, in the command and in words
    with live.db.session() as s:
        sev = {t: v for t, v in s.execute(select(Incident.title, Incident.severity))}
    assert (sev["dns resolution failing in eu-west"], sev["kafka broker disk full"]) == (1, 2)
    live.driver.mention(f"reopen #{inc.id}", channel="C0REO", user="U0BOB")
    live.drain()
    live.driver.mention(f"what's going on with #{inc.id}?", channel="C0WHO", user="U0BOB")
    live.driver.mention(f"who is working on #{inc.id}?", channel="C0WHO2", user="U0BOB")
    live.drain()
    assert f"Nobody has taken incident #{inc.id}" in _first(live, "C0WHO2")  # who, not the whole status
    with live.db.session() as s:
        assert (s.get(Incident, inc.id).status, s.get(Incident, inc.id).resolved_at) == ("open", None)
    status = json.dumps(live.standin.messages("C0WHO")[0])
    assert "Reopened by <@U0BOB>" in status and "&lt;@" not in status  # mentions in the timeline stay mentions


def test_an_instruction_to_run_something_runs_nothing(live: Live) -> None:
    live.driver.mention("restart ingest", channel="C0DO1", user="U0ERIN")
    live.driver.mention("run restart-service service=ingest", channel="C0DO2", user="U0ERIN")
    live.driver.mention("thanks!", channel="C0DO3", user="U0ERIN")
    live.driver.mention("silence DiskSpaceLow for 3 hours", channel="C0DO4", user="U0ERIN")
    live.driver.mention("flush the cache on redis-cache-pages", channel="C0DO5", user="U0ERIN")
    live.driver.mention("dry run restart-service for ingest", channel="C0DO6", user="U0ERIN")  # was the help
    live.driver.mention("good bot", channel="C0DO7", user="U0ERIN")  # these got the whole help
    live.driver.mention("thank you so much!", channel="C0DO8", user="U0ERIN")
    live.drain()
    assert _first(live, "C0DO7").startswith("You're welcome") and _first(live, "C0DO8").startswith("You're welcome")
    assert "`/runbook run restart-service service=ingest --dry-run` shows exactly what would run" in _first(
        live, "C0DO6")
    # a parameter's allowed value named in the words is filled in (it was `instance=<instance>`)
    assert "/runbook run flush-cache instance=redis-cache-pages --dry-run" in json.dumps(
        live.standin.messages("C0DO5")[0]["blocks"])
    silence = live.standin.messages("C0DO4")[0]
    assert silence["text"].startswith("I do not silence alerts")
    assert "amtool silence add alertname=DiskSpaceLow --duration=3h" in json.dumps(silence["blocks"])
    told = live.standin.messages("C0DO1")[0]
    assert told["text"].startswith("Nothing runs from a message")
    assert "/runbook run restart-service service=ingest --dry-run" in json.dumps(told["blocks"])
    refused = _first(live, "C0DO2")
    assert "Refused" in refused and "/runbook run restart-service service=ingest --dry-run" in refused
    assert _first(live, "C0DO3").startswith("You're welcome")
    with live.db.session() as s:
        assert s.scalar(select(func.count()).select_from(RunbookExecution)) == 0
        refusals = s.scalars(select(AuditRecord).where(AuditRecord.action == "runbook.refused")).all()
        assert [r.actor for r in refusals] == ["U0ERIN"]
    live.driver.command("/incident", "list", channel="C0LST")
    live.driver.mention("list open incidents for payments", channel="C0LST2")  # was the bot's status: every team
    live.drain()
    listing = live.standin.messages("C0LST")[0]
    assert "No open incidents" in listing["text"] and json.dumps(listing["blocks"]).count("No open incidents") == 1
    assert "No open incidents (on the payments team's services)." in _first(live, "C0LST2")


def test_questions_under_an_incident_card_are_about_that_incident(live: Live) -> None:
    live.driver.command("/incident", "new payments-api returning 503 remaining connection slots are reserved sev2",
                        user="U0ERIN", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.title.like("payments-api returning 503%"))).one()
    asked: dict[str, dict] = {}
    for text in ("have we seen this before?", "what should I do?", "who should take this?", "anything similar?",
                 "payments-api 503s spiking again", "mute this alert", "same as last week?",
                 "which runbook should we use?"):
        before = len(live.standin.messages(inc.channel_id))
        ev = {"type": "app_mention", "user": "U0ERIN", "text": f"<@UWARROOM> {text}", "ts": f"{time.time():.6f}",
              "thread_ts": inc.card_ts, "channel": inc.channel_id, "event_ts": f"{time.time():.6f}"}
        assert live.driver.event(ev).status_code == 200
        live.drain()
        (asked[text],) = live.standin.messages(inc.channel_id)[before:]
    seen = json.dumps(asked["have we seen this before?"])
    assert "incident #101" in seen and f"incident #{inc.id}" not in seen  # the past one, not itself
    same = json.dumps(asked["same as last week?"])  # it searched its own words (a TLS postmortem came first)
    assert "incident #101" in same and "TLS certificate" not in same, same
    which = json.dumps(asked["which runbook should we use?"])  # a generic passage came back, not its runbooks
    assert f"Runbooks for incident #{inc.id}" in which and f"restart-service:{inc.id}" in which, which
    todo = json.dumps(asked["what should I do?"])
    assert f"Runbooks for incident #{inc.id}" in todo and "/runbook run restart-service service=payments-api" in todo
    assert f"restart-service:{inc.id}" in todo  # a Run button for this incident: it opens a preview, runs nothing
    assert "declared owner of payments-api" in json.dumps(asked["who should take this?"])
    assert f"Closest matches for incident #{inc.id}" in asked["anything similar?"]["text"]
    assert f"For incident #{inc.id}: say `ack` here" in asked["mute this alert"]["text"]
    symptom = json.dumps(asked["payments-api 503s spiking again"])
    assert "incident:new" not in symptom and f"incident #{inc.id}*" not in symptom  # part of this incident
    with live.db.session() as s:
        assert s.scalar(select(func.count()).select_from(RunbookExecution)) == 0
    # away from any incident "this" is nothing: they got "I don't know" (the words alone were searched)
    for text in ("have we seen this before?", "what should I do?"):
        live.driver.mention(text, user="U0ERIN", channel="C0AWAY")
    live.drain()
    for m in live.standin.messages("C0AWAY"):
        assert "About what? Ask under the incident's card" in m["text"] and "/similar <error or symptom>" in m["text"]
    assert len(live.standin.messages("C0AWAY")) == 2
    live.driver.mention("have we seen this connection slots error before?", user="U0ERIN", channel="C0AWAY2")
    live.drain()
    (said,) = live.standin.messages("C0AWAY2")  # words to search: searched, and the passages shown
    assert "From the knowledge base" in said["text"] and "connection slots are reserved" in json.dumps(said)
    assert "About what?" not in json.dumps(said)


def test_statements_under_an_incident_card_are_recorded_not_misread(live: Live) -> None:
    """What on-call engineers write in a card's thread: updates, a re-rating, the cause, and sentences that
    merely start with a verb. Numbers in what was done never pick another incident."""
    live.driver.command("/incident", "new checkout latency high sev3", user="U0ERIN", channel="C0OPS")
    live.driver.command("/incident", "new payments-api returning 503 sev2", user="U0ERIN", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        other = s.scalars(select(Incident).where(Incident.title == "checkout latency high")).one()
        inc = s.scalars(select(Incident).where(Incident.title == "payments-api returning 503")).one()
    live.driver.command("/incident", "new payments-api 503s on checkout sev1", user="U0BOB", channel="C0DUP")
    live.drain()  # opened, with a pointer to the one already open on the same service
    dup = _first(live, "C0DUP")
    assert f"Heads-up: payments-api already has an open incident, #{inc.id} SEV2 [open]" in dup
    twin = int(re.search(r"Opened incident #(\d+)", dup).group(1))  # type: ignore[union-attr]
    live.driver.command("/incident", f"resolve {twin} duplicate of #{inc.id}", user="U0BOB", channel="C0DUP")
    live.drain()
    said: dict[str, str] = {}

    def reply(text: str, ts: str | None = None) -> None:
        ts = ts or f"{time.time():.6f}"
        ev = {"type": "app_mention", "user": "U0ERIN", "text": f"<@UWARROOM> {text}", "ts": ts,
              "thread_ts": inc.card_ts, "channel": inc.channel_id, "event_ts": ts}
        before = len(live.standin.messages(inc.channel_id))
        assert live.driver.event(ev).status_code == 200
        live.drain()
        said[text] = " ".join(m["text"] for m in live.standin.messages(inc.channel_id)[before:])

    def row(ident: int) -> Incident:
        with live.db.session() as s:
            return s.get(Incident, ident)

    reply("resolve the DNS issue first, then restart")  # advice to people, not a request
    assert row(inc.id).status == "open" and f"To resolve incident #{inc.id}, say `resolve`" in said[
        "resolve the DNS issue first, then restart"]
    reply(f"mitigated: drained {other.id} nodes")  # the number is what was done
    assert (row(inc.id).status, row(other.id).status) == ("mitigated", "open")
    reply("this is a sev1")
    assert row(inc.id).severity == 1 and row(other.id).severity == 3
    reply("who is the incident commander?")
    assert f"Nobody has taken incident #{inc.id} yet" in said["who is the incident commander?"]
    reply("handing this over to <@U0BOB> for the night")  # shift change: the new assignee, invited
    assert row(inc.id).assignee == "U0BOB" and row(other.id).assignee is None
    reply("who is the IC?")
    assert f"<@U0BOB> is on incident #{inc.id}" in said["who is the IC?"]
    note_ts = f"{time.time():.6f}"
    reply("note: failover to the replica started, password=hunter2", ts=note_ts)
    # Slack also delivers the mention as a message in the thread: it becomes the note, not a second entry
    msg = {"type": "message", "user": "U0ERIN", "text": "<@UWARROOM> note: failover to the replica started",
           "ts": note_ts, "thread_ts": inc.card_ts, "channel": inc.channel_id, "channel_type": "channel"}
    assert live.driver.event(msg).status_code == 200
    reply("update: error rate back to normal")
    reply("full timeline")  # every event, oldest first, in the thread
    assert said["full timeline"].startswith(f"Timeline of incident #{inc.id}") and "· note · key · Note by" in \
        said["full timeline"] and "· sev · Severity SEV2 -&gt; SEV1" in said["full timeline"]
    reply("how long has this been going on?")
    assert said["how long has this been going on?"].startswith(f"Incident #{inc.id}: payments-api returning 503")
    reply("the fix is deployed")  # nothing to act on: said so, with what works here (not the whole help)
    assert said["the fix is deployed"].startswith(f"Incident #{inc.id}: I did not act on that")
    reply("closing this out, rolled back the pool change; root cause was a bad config push")
    with live.db.session() as s:
        done = s.get(Incident, inc.id)
        assert (done.status, done.resolution, done.root_cause) == ("resolved", "rolled back the pool change",
                                                                   "a bad config push")
        notes = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id,
                                                      TimelineEvent.kind.in_(("note", "message")))
                          .order_by(TimelineEvent.id)).all()
        assert [(e.kind, e.key) for e in notes] == [("note", True), ("note", True)]
        assert "failover to the replica started" in notes[0].text and "hunter2" not in notes[0].text
        assert notes[0].permalink and "error rate back to normal" in notes[1].text
        drafts = s.scalars(select(Postmortem).where(Postmortem.incident_id == inc.id)
                           .order_by(Postmortem.id.desc())).all()
        assert drafts and "failover to the replica started" in drafts[0].markdown  # the notes made the timeline
        assert "a bad config push" in drafts[0].markdown and "hunter2" not in drafts[0].markdown
        assert s.get(Incident, other.id).status == "open"
    reply("who's on this?")
    assert f"<@U0BOB> had incident #{inc.id}; it is resolved." in said["who's on this?"]
    live.driver.mention("fyi the deploy is at 3pm", channel="C0FYI", user="U0ERIN")  # no incident here
    live.driver.mention("how many incidents did we have this week?", channel="C0STAT", user="U0ERIN")
    live.drain()
    assert "Which incident is that about?" in _first(live, "C0FYI")
    stats = json.dumps(live.standin.messages("C0STAT"))
    # the twin closed as a duplicate is not counted, and the summary says so
    assert "2 incident(s) in the last 7 days, 1 still open (not counted: 1 duplicate)" in stats
    assert "SEV1 1, SEV3 1" in stats
    assert "Median time to resolve" in stats and "Median time to acknowledge" not in stats  # nobody acked
    live.driver.command("/incident", "stats 30 days payments-api", user="U0ERIN", channel="C0STAT2")
    live.drain()
    assert "1 incident(s) in the last 30 days on payments-api, 0 still open (not counted: 1 duplicate)" in json.dumps(
        live.standin.messages("C0STAT2"))
    live.driver.command("/incident", f"reopen {inc.id}", user="U0ERIN", channel="C0OPS")
    # A person reads the answer before the next command. Two slash commands are two HTTP requests that Slack does
    # not order, and the bot runs them on separate worker threads: sent back to back, they can run in either order
    # (seen once in CI, 2026-12-03: resolve found the incident still resolved, then reopen opened it)
    live.drain()
    live.driver.command("/incident", f"resolve {inc.id} restarted {other.id} pods", user="U0ERIN", channel="C0OPS")
    live.drain()
    assert (row(inc.id).status, row(inc.id).resolution, row(other.id).status) == (
        "resolved", f"restarted {other.id} pods", "open")


def test_false_alarms_duplicates_and_progress_under_a_card(live: Live) -> None:
    """'false positive, closing', 'duplicate of #N' resolve with no postmortem (the original is told);
    'I'm looking into it' takes it; 'we're failing over now' is a key moment; 'can someone take a look?'
    calls that incident's people. Outside a card, the same progress words are no note."""
    for title in ("payments-api returning 503 sev2", "payments-api 503s at checkout sev2",
                  "synthetic login check failing sev3"):
        live.driver.command("/incident", f"new {title}", user="U0ERIN", channel="C0OPS")
    live.drain()
    with live.db.session() as s:  # by title: the three commands run concurrently, so ids are in any order
        by_title = {i.title: i for i in s.scalars(select(Incident).where(Incident.source != "import"))}
    first, twin, noise = (by_title[t] for t in ("payments-api returning 503", "payments-api 503s at checkout",
                                                "synthetic login check failing"))

    def say(inc: Incident, text: str) -> str:
        ts = f"{time.time():.6f}"
        before = len(live.standin.messages(inc.channel_id))
        ev = {"type": "app_mention", "user": "U0ERIN", "text": f"<@UWARROOM> {text}", "ts": ts,
              "thread_ts": inc.card_ts, "channel": inc.channel_id, "event_ts": ts}
        assert live.driver.event(ev).status_code == 200
        live.drain()
        return " ".join(m["text"] for m in live.standin.messages(inc.channel_id)[before:])

    assert "A duplicate of which incident?" in say(twin, "dupe")
    assert f"resolved: Duplicate of #{first.id}. No postmortem" in say(twin, f"this is a duplicate of #{first.id}")
    assert "resolved: False alarm: synthetic check misconfigured. No postmortem" in say(
        noise, "false positive, closing: synthetic check misconfigured")
    assert f"<@U0ERIN> is on incident #{first.id} (acknowledged)" in say(first, "I'm looking into it")
    assert "as a key moment" in say(first, "we're failing over to the replica now")
    assert "declared owner of payments-api" in say(first, "can someone take a look?")
    live.driver.mention("we're seeing 500s on checkout-web", channel="C0ELSE", user="U0ERIN")
    live.drain()
    assert "key moment" not in _first(live, "C0ELSE") and "Which incident" not in _first(live, "C0ELSE")
    with live.db.session() as s:
        rows = {i.id: i for i in s.scalars(select(Incident).where(Incident.id.in_((first.id, twin.id, noise.id))))}
        assert (rows[twin.id].status, rows[twin.id].resolution) == ("resolved", f"Duplicate of #{first.id}")
        assert rows[noise.id].resolution == "False alarm: synthetic check misconfigured"
        assert (rows[first.id].status, rows[first.id].assignee) == ("acknowledged", "U0ERIN")
        told = s.scalars(select(TimelineEvent.text).where(TimelineEvent.incident_id == first.id,
                                                          TimelineEvent.kind.in_(("duplicate", "note")))).all()
        assert told == [f"Incident #{twin.id} (payments-api 503s at checkout) closed as a duplicate of this one by "
                        "<@U0ERIN>", "Note by <@U0ERIN>: we're failing over to the replica now"]
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "postmortem.draft")) == 0


def test_open_an_incident_shortcut_on_a_message_opens_one_incident(live: Live) -> None:
    """The message shortcut on anyone's message: its first line (masked, mentions dropped) is the title, a
    leading severity counts; the same message again names the incident already opened."""
    text = "sev2 <@U0BOB> checkout-web 502s since the 14:00 deploy, token=abcd1234secret\nstack trace follows"
    for user in ("U0ERIN", "U0CARLA"):
        live.driver.message_shortcut("incident:from_message", text, user=user, channel="C0SHORT",
                                     message_ts="1800000001.000100")
        live.drain()
    with live.db.session() as s:
        (inc,) = s.scalars(select(Incident).where(Incident.source == "slack")).all()
    assert inc.severity == 2 and inc.created_by == "U0ERIN" and inc.service_name == "checkout-web"
    assert inc.title.startswith("checkout-web 502s since the 14:00 deploy") and "abcd1234secret" not in inc.title
    replies = [m["text"] for m in live.standin.messages("C0SHORT") if m.get("thread_ts") == "1800000001.000100"]
    assert f"Opened incident #{inc.id} (SEV2)" in replies[0]
    assert f"Already opened as incident #{inc.id} by <@U0ERIN>" in replies[1]


def test_severities_as_teams_write_them(live: Live) -> None:
    """P1 (PagerDuty's and many teams' priorities), "sev 2" with a space, SEV0 where levels start at 0: opened at
    that severity, the words out of the title. A P1 opened at the default SEV3 would page nobody."""
    for text in ("P1 checkout returning 502s", "search results stale sev 2", "SEV0: payments ledger down",
                 "ingest lag growing P3"):
        assert live.driver.command("/incident", f"new {text}", channel="C0OPS").status_code == 200
    live.drain()
    with live.db.session() as s:
        got = {i.title: i.severity for i in s.scalars(select(Incident).where(Incident.source == "slack"))}
    assert got == {"checkout returning 502s": 1, "search results stale": 2, "payments ledger down": 1,
                   "ingest lag growing": 3}, got


def test_incident_stats_for_a_team_and_words_it_cannot_read(live: Live) -> None:
    """``/incident stats payments`` ignored the word (no service is called "payments"): it counted every service's
    incidents and said nothing of it. A team's name now counts its services; an unread word is said."""
    def stats(text: str) -> str:
        live.driver.command("/incident", text, user="U0ERIN", channel="C0STATS")
        live.drain()
        return blocks_to_text(live.standin.messages("C0STATS")[-1].get("blocks") or [])

    every = stats("stats 366 days")
    said = stats("stats 366 days payments")
    assert "incident(s) in the last 366 days on the payments team's services" in said
    assert "payments-api (1), billing-worker (1), checkout-web (1)" in said and "ingress" not in said
    assert "ingress" in every
    assert "I cannot read `paymnts`: `/incident stats [today | 7d | 30 days | this month] [service or team]" in stats(
        "stats paymnts")
    quiet = stats("stats 1 day payments")  # "the last one" is the team's, not any service's (#112 on ingress)
    assert "No incidents in the last 24 hours on the payments team's services. The last one: #108" in quiet
    two = stats("stats 366 days payments and platform")  # the second name was dropped
    assert "6 incident(s) in the last 366 days on the payments and platform teams' services" in two
    assert "ingress (2)" in two and "ingest" not in two
