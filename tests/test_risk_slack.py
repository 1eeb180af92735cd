"""The /risk skill through the real app: signed slash commands in, Slack stand-in and database asserted."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from bot.inbox_spool import backlog
from bot.render import blocks_to_text
from bot.settings import Settings
from bot.standin.server import SlackStandIn
from knowledge.models import Incident, RiskReading
from knowledge.risk_store import add_reading, readings_for_incident
from tests.conftest import Live
from tests.risk_support import risk_model_dir  # noqa: F401 - fixture

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def settings(tmp_path: Path, standin: SlackStandIn, risk_model_dir: Path) -> Settings:  # noqa: F811
    from tests.conftest import make_settings  # type: ignore[import-not-found]

    return make_settings(tmp_path, standin, model_dir=risk_model_dir)


def _uploads(live: Live) -> list[dict]:
    return [c.args for c in live.standin.calls_to("files.completeUploadExternal")]


def _texts(live: Live, channel: str = "C0GENERAL") -> str:
    return "\n".join(json.dumps(m) for m in live.standin.messages(channel))


def test_risk_command_posts_card_and_chart_and_stores_reading(live: Live) -> None:
    resp = live.driver.command("/risk", "service=checkout cpu=97 mem=95 errors=80 rt=4000", user="U0ALICE")
    assert resp.status_code == 200
    live.drain()
    msgs = live.standin.messages("C0GENERAL")
    card = next(m for m in msgs if "Failure risk: checkout" in m.get("text", ""))
    text = json.dumps(card["blocks"])
    assert "What drives it" in text and "What to do" in text and "risk-" in text  # model version field
    assert any(band in card["text"] for band in ("CRITICAL", "HIGH"))
    ups = _uploads(live)
    assert len(ups) == 1 and ups[0]["channel_id"] == "C0GENERAL"
    assert ups[0].get("thread_ts") == card["ts"]
    with live.db.session() as s:
        (row,) = s.scalars(select(RiskReading)).all()
        assert row.service_name == "checkout" and row.source == "command" and row.band in ("CRITICAL", "HIGH")
        assert row.inputs["cpu_usage"] == 97.0 and row.probability > 0.6
    files = ups[0]["files"]
    files = json.loads(files) if isinstance(files, str) else files
    content = live.standin.files[files[0]["id"]]["content"]
    assert content[:8] == PNG_MAGIC and len(content) > 5000


def test_numbers_with_the_units_people_write(live: Live) -> None:
    """"cpu=85%", "latency=250ms", "rt=1.2s", "conns=1.5k": what an engineer copies from a dashboard."""
    assert live.driver.command("/risk", "service=search cpu=85% mem=40% latency=250ms rt=1.2s conns=1.5k",
                               user="U0ALICE").status_code == 200
    live.drain()
    with live.db.session() as s:
        (row,) = s.scalars(select(RiskReading)).all()
    assert row.inputs["cpu_usage"] == 85.0 and row.inputs["memory_usage"] == 40.0
    assert row.inputs["network_latency_ms"] == 250.0 and row.inputs["response_time_ms"] == 1200.0
    assert row.inputs["active_connections"] == 1500.0


def test_metrics_in_words_in_the_command_and_their_unit_words(live: Live) -> None:
    """`/risk payments-api cpu 95 latency 2 seconds errors 40/min` answered "I have no metrics from payments-api yet"
    (its words dropped), and "latency 2 seconds" in a mention was read as 2 ms (the unit word dropped)."""
    assert live.driver.command("/risk", "payments-api cpu 95 latency 2 seconds errors 40/min",
                               user="U0ALICE").status_code == 200
    live.driver.mention("risk for ingest with cpu at 90% and latency 1.5 seconds, errors 2/s", user="U0ALICE")
    live.drain()
    with live.db.session() as s:
        rows = s.scalars(select(RiskReading).order_by(RiskReading.id)).all()
    assert sorted(((r.service_name, r.inputs) for r in rows), key=lambda x: str(x[0])) == [  # sent together:
        ("ingest", {"cpu_usage": 90.0, "network_latency_ms": 1500.0, "error_count": 120.0}),  # stored in any order
        ("payments-api", {"cpu_usage": 95.0, "network_latency_ms": 2000.0, "error_count": 40.0})]
    live.driver.command("/risk", "service=api cpu=95 mem=7.5GB", user="U0BOB", channel="C0GB")
    live.drain()
    assert "mem='7.5GB': memory is in %; `GB` is not a unit I convert" in live.standin.messages("C0GB")[-1]["text"]


def test_is_a_service_healthy_gets_its_open_incidents_and_latest_risk(live: Live) -> None:
    """"Is ingest healthy?" went to the knowledge base, which answered with an old postmortem."""
    live.driver.command("/risk", "service=ingest cpu=95 mem=97", user="U0ALICE", channel="C0R")
    live.driver.command("/incident", "new ingest lag growing sev2", user="U0ALICE", channel="C0R")
    live.drain()
    for ch, asked in (("C0H1", "is ingest healthy?"), ("C0H2", "how is payments-api doing?"),
                      ("C0H3", "is the data team ok?")):
        live.driver.mention(asked, user="U0BOB", channel=ch)
    live.drain()
    ingest = _texts(live, "C0H1")
    assert "Health of ingest" in ingest and "1 open incident(s) on ingest" in ingest
    assert "ingest lag growing" in ingest and re.search(r"ingest: (CRITICAL|HIGH) \(\d+%\), 0 min ago via command",
                                                         ingest), ingest
    pay = _texts(live, "C0H2")
    assert "No open incident on payments-api" in pay and "no metrics in the last 24 hours" in pay
    assert "Health of the data team's services" in _texts(live, "C0H3") and "ingest lag growing" in _texts(
        live, "C0H3")


def test_healthy_snapshot_is_low(live: Live) -> None:
    live.driver.command("/risk", "service=search cpu=20 mem=35 disk=30 latency=12 errors=0 rt=90 conns=120")
    live.drain()
    card = next(m for m in live.standin.messages("C0GENERAL") if "Failure risk: search" in m.get("text", ""))
    assert "MINIMAL" in card["text"] or "LOW" in card["text"]


@pytest.mark.parametrize("text, named", [
    ("service=api cpu=500 mem=20", "cpu_usage=500 is out of range"),
    ("service=api cpu=abc mem=20", "'abc' is not a number"),
    ("service=api cpu=nan mem=20", "not a finite number"),
    ("service=api cpu=-5 mem=20", "cpu_usage=-5 is out of range"),
    ("service=api cpu=80", "at least 2 metrics"),
    ("service=api bogus=1 cpu=3", "unknown metric 'bogus'"),
    ("service=api cpu=80 mem=20 incident=999", "no incident #999"),
    ("service=api cpu=250ms mem=20", "CPU is in %, not ms"),
    ("service=api cpu=80 mem=20 errors=12%", "errors is in errors/min, not %"),
    # a decimal comma read as a separator: "cpu=85" and then "I do not understand '5'"
    ("service=api cpu=85,5 mem=20", "'cpu=85,5': a comma inside a number reads two ways (85,5 or 1,500); write it "
                                    "with a point or without the comma (85.5 or 855)"),
    ("service=api cpu=85 mem=20 cpu_usage=20", "cpu and cpu_usage are both cpu_usage: give it once"),  # 20 won
])
def test_bad_input_gets_a_clear_private_reply(live: Live, text: str, named: str) -> None:
    assert live.driver.command("/risk", text, user="U0BOB").status_code == 200
    live.drain()
    (msg,) = live.standin.messages("C0GENERAL")
    assert msg.get("ephemeral") and named in msg["text"]
    assert not _uploads(live)
    with live.db.session() as s:
        assert s.scalar(select(func.count()).select_from(RiskReading)) == 0


def test_history_window_feeds_detector_and_incident_readings(live: Live) -> None:
    with live.db.session() as s:
        inc = Incident(title="checkout slow", service_name="checkout", severity=2)
        s.add(inc)
        s.flush()
        incident_id = inc.id
        for mem in np.linspace(50, 70, 12):  # a slow climb the detector learns from
            add_reading(s, probability=0.1, band="MINIMAL", model_version="x", source="api",
                        inputs={"cpu_usage": 30.0, "memory_usage": float(mem)}, factors=[],
                        service_name="checkout")
    live.driver.command("/risk", f"service=checkout cpu=31 mem=96 #{incident_id}")
    live.drain()
    card = next(m for m in live.standin.messages("C0GENERAL") if "Failure risk: checkout" in m.get("text", ""))
    assert "outside the dynamic threshold: memory_usage\\n" in json.dumps(card["blocks"])
    assert len(_uploads(live)) == 1
    with live.db.session() as s:
        (row,) = readings_for_incident(s, incident_id=incident_id)
        assert row.inputs["memory_usage"] == 96.0 and row.factors[0]["metric"] == "memory_usage"


def _post_alert(live: Live, payload: dict) -> None:
    body = json.dumps(payload).encode()
    h = {"Content-Type": "application/json", "Authorization": "Bearer am-secret-0123456789"}
    assert httpx.post(f"{live.url}/webhooks/alertmanager", content=body, headers=h, timeout=30).status_code == 202
    deadline = time.time() + 30
    while time.time() < deadline:
        if not backlog(live.db, live.services.spool):
            break
        time.sleep(0.05)
    live.drain()


def test_alert_with_metrics_gets_risk_on_the_incident(live: Live) -> None:
    payload = json.loads((Path(__file__).parent / "payloads" / "alertmanager.json").read_text())
    _post_alert(live, payload)
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.source != "import").order_by(Incident.id)).first()
        assert inc is not None
        finding = inc.findings.get("risk")
        assert finding is not None, inc.findings.keys()
        assert finding["heading"].startswith("Failure risk:")
        rows = readings_for_incident(s, incident_id=inc.id)
        assert rows and rows[0].source == "triage" and rows[0].inputs["cpu_usage"] == 93.0


def test_mention_with_metrics_routes_to_risk(live: Live) -> None:
    assert live.driver.mention("what is the failure risk for service=api cpu=96 mem=95?").status_code == 200
    live.drain()
    assert any("Failure risk: api" in m.get("text", "") for m in live.standin.messages("C0GENERAL"))
    assert len(_uploads(live)) == 1
    # in words, as people write: was "I have no metrics from payments-api yet" (the numbers were dropped)
    live.driver.mention("what's the failure risk for payments-api with cpu 96 and memory at 95%?", channel="C0W")
    live.drain()
    card = next(m for m in live.standin.messages("C0W") if "Failure risk: payments-api" in m.get("text", ""))
    assert "CPU 96 %" in json.dumps(card["blocks"]) and "memory 95 %" in json.dumps(card["blocks"]).lower()
    with live.db.session() as s:
        (reading,) = s.scalars(select(RiskReading).where(RiskReading.service_name == "payments-api")).all()
        assert (reading.inputs["cpu_usage"], reading.inputs["memory_usage"]) == (96.0, 95.0)
    # the numbers alone, no "risk" word: it went to the knowledge base (a passage about something else)
    live.driver.mention("cpu 95% mem 90% on ingest, should I worry?", channel="C0W2")
    live.drain()
    (card,) = live.standin.messages("C0W2")
    assert card["text"].startswith("Failure risk: ingest") and "knowledge base" not in card["text"], card["text"]
    with live.db.session() as s:
        (reading,) = s.scalars(select(RiskReading).where(RiskReading.service_name == "ingest")).all()
        assert (reading.inputs["cpu_usage"], reading.inputs["memory_usage"]) == (95.0, 90.0)


def test_a_service_without_metrics_is_answered_from_its_last_reading(live: Live) -> None:
    live.driver.command("/risk", "service=payments-api cpu=97 mem=95 errors=80", user="U0ALICE", channel="C0R1")
    live.drain()
    first = next(m for m in live.standin.messages("C0R1") if "Failure risk: payments-api" in m.get("text", ""))
    live.driver.command("/risk", "payments-api", user="U0BOB", channel="C0R2")
    live.driver.mention("is payments-api at risk?", user="U0BOB", channel="C0R3")
    live.driver.command("/risk", "ingest", user="U0BOB", channel="C0R4")
    live.drain()
    for channel in ("C0R2", "C0R3"):
        card = next(m for m in live.standin.messages(channel) if "Failure risk: payments-api" in m.get("text", ""))
        assert "From the metrics payments-api last reported (0 min ago, via command)" in card["text"]
        band = re.search(r"— (\w+ \([^)]*\))", first["text"])
        assert band and band.group(1) in card["text"]  # the same band and probability
    (msg,) = live.standin.messages("C0R4")
    assert msg.get("ephemeral") and "no metrics from ingest yet" in msg["text"]
    with live.db.session() as s:  # a look at the last reading is not a new reading
        assert s.scalar(select(func.count()).select_from(RiskReading)) == 1


def test_which_services_are_at_risk_lists_each_ones_last_reading_most_likely_first(live: Live) -> None:
    """Was a usage error ("give at least 2 metrics (got 0)"): every service at once, from what was assessed, with its
    age; an old reading is stale, one older than a day is not listed, and looking is not a new reading."""
    import datetime as dt

    from knowledge.models import utcnow

    live.driver.mention("which services are at risk right now?", user="U0BOB", channel="C0R0")
    live.drain()
    (empty,) = live.standin.messages("C0R0")
    assert "No service reported metrics in the last 24 h" in empty["text"], empty["text"]
    live.driver.command("/risk", "service=payments-api cpu=97 mem=95 errors=300", user="U0ALICE", channel="C0R1")
    live.driver.command("/risk", "service=ingest cpu=30 mem=40", user="U0ALICE", channel="C0R1")
    live.drain()
    with live.db.session() as s:  # kafka: two hours ago (stale); dns: two days ago (not listed)
        for name, hours in (("kafka", 2), ("dns", 48)):
            row = add_reading(s, probability=0.4, band="ELEVATED", model_version="m", source="api",
                              inputs={"cpu_usage": 80.0, "memory_usage": 70.0},
                              factors=[{"metric": "cpu_usage", "value": 80.0, "contribution": 0.2}], service_name=name)
            row.created_at = utcnow() - dt.timedelta(hours=hours)
    for i, q in enumerate(("which services are at risk right now?", "what's at risk?", "riskiest services")):
        live.driver.mention(q, user="U0BOB", channel=f"C0R{i + 2}")
    live.driver.command("/risk", "all", user="U0BOB", channel="C0R5")
    live.drain()
    for channel in ("C0R2", "C0R3", "C0R4", "C0R5"):
        (msg,) = live.standin.messages(channel)
        text = blocks_to_text(msg["blocks"] if isinstance(msg["blocks"], list) else json.loads(msg["blocks"]))
        assert "Failure risk by service" in text and "3 service(s) assessed in the last 24 h" in text, text
        pay, kafka, ingest = (text.index(f"*{n}*") for n in ("payments-api", "kafka", "ingest"))
        assert pay < kafka < ingest, text  # most likely to fail first
        assert re.search(r"\*payments-api\* CRITICAL \(>99%\) · mostly \w+ \d+ % · 0 min ago via command", text), text
        assert "*kafka* ELEVATED (40%) · mostly CPU 80 % · 2h00m ago via api · *stale*" in text, text
        assert "*dns*" not in text and "No metrics in the last 24 h" in text  # dns is among the quiet ones
    with live.db.session() as s:
        assert s.scalar(select(func.count()).select_from(RiskReading)) == 4


def test_one_metric_of_a_service_asked_in_words(live: Live) -> None:
    """"What's the error rate on payments-api?" and "how much memory is kafka using?" went to the knowledge base (an
    incident that named the service). The value it last reported, its age and source, then the risk they give."""
    live.driver.mention("what's the error rate on payments-api?", user="U0BOB", channel="C0M0")
    live.drain()
    (msg,) = live.standin.messages("C0M0")
    assert msg.get("ephemeral") and "I have no metrics from payments-api yet" in msg["text"], msg
    live.driver.command("/risk", "service=payments-api cpu=97 mem=95 errors=300", user="U0ALICE", channel="C0M1")
    live.drain()
    for i, (q, said) in enumerate((("what's the error rate on payments-api?", "*errors* of payments-api: *300 "
                                    "errors/min*, last reported 0 min ago via command"),
                                   ("how much memory is payments-api using?", "*memory* of payments-api: *95 %*"),
                                   ("what's the cpu of our payments-api?", "*CPU* of payments-api: *97 %*"),
                                   ("what's the latency of payments-api?", "payments-api did not report its network "
                                    "latency (0 min ago via command: cpu_usage, error_count, memory_usage)"))):
        live.driver.mention(q, user="U0BOB", channel=f"C0M{i + 2}")
        live.drain()
        (msg,) = live.standin.messages(f"C0M{i + 2}")
        assert said in msg["text"] and "Failure risk: payments-api" in msg["text"], (q, msg["text"])
    with live.db.session() as s:  # asking is not a new reading
        assert s.scalar(select(func.count()).select_from(RiskReading)) == 1


def test_a_metric_asked_under_an_incidents_card_is_of_its_service(live: Live) -> None:
    """"What's the error rate now?" under a card went to the knowledge base (a runbook saying "watch the error rate"),
    and "how's the latency looking?" got the incident's status: no service was named. Under a card it is the
    incident's service; elsewhere the service is asked for."""
    from tests.conftest import open_incidents
    from tests.test_incident_words import _say

    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    live.driver.command("/risk", "service=payments-api cpu=97 mem=95 errors=300", user="U0ALICE", channel="C0M1")
    live.drain()
    here = {"channel": inc.channel_id, "thread": inc.card_ts}
    for q, said in (("what's the error rate now?", "*errors* of payments-api: *300 errors/min*, last reported"),
                    ("how's the cpu looking?", "*CPU* of payments-api: *97 %*"),
                    ("what's the memory usage right now?", "*memory* of payments-api: *95 %*")):
        answer = _say(live, q, **here)
        assert said in answer and "Failure risk: payments-api" in answer, (q, answer)
    assert "Of which service? e.g. `what's the error rate on payments-api?`" in _say(live, "what's the error rate now?")
    assert "*Status*: open" in _say(live, "how is it looking?", **here)  # the incident itself: its status
