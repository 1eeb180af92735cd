"""The bot's own observability: request ids on every answer, metrics after real traffic, JSON log lines."""

from __future__ import annotations

import io
import json
import logging

import httpx

from bot.logs import INCIDENT_ID, REQUEST_ID, JsonFormatter
from tests.conftest import Live


def test_request_ids_are_echoed_generated_and_never_taken_raw(live: Live) -> None:
    given = httpx.get(f"{live.url}/healthz", headers={"X-Request-Id": "lb-1234.abc"})
    assert given.headers["x-request-id"] == "lb-1234.abc"
    a, b = httpx.get(f"{live.url}/healthz"), httpx.get(f"{live.url}/healthz")
    assert a.headers["x-request-id"] and a.headers["x-request-id"] != b.headers["x-request-id"]
    hostile = httpx.get(f"{live.url}/healthz", headers={"X-Request-Id": 'x"}\\n{"level": "CRITICAL'})
    assert hostile.headers["x-request-id"] != 'x"}\\n{"level": "CRITICAL'  # replaced, not logged as given


def test_metrics_count_acks_webhooks_jobs_skills_and_slack_calls(live: Live) -> None:
    assert live.driver.command("/warroom", "status", channel="C0OBS").status_code == 200
    live.standin.fail("chat.postMessage", status=429, count=1, retry_after=1)
    assert httpx.post(f"{live.url}/webhooks/generic", json={"alerts": []}, timeout=10).status_code == 401
    live.drain()
    body = httpx.get(f"{live.url}/metrics").text
    for line in ('warroom_http_requests_total{route="/slack/events",status="200"}',
                 'warroom_http_requests_total{route="/webhooks/generic",status="401"}',
                 'warroom_jobs_total{kind="skill.run",outcome="done"}',
                 'warroom_skill_seconds_count{skill="status"}',
                 'warroom_slack_api_retries_total{reason="rate_limited"}',
                 "warroom_queue_depth", "warroom_job_seconds_bucket", "warroom_slack_api_calls_total",
                 'warroom_job_wait_seconds_count{kind="skill.run"}'):
        assert line in body, line
    # the command waited in the queue for a moment, not for ever: counted in a bucket under a minute
    bucket = 'warroom_job_wait_seconds_bucket{kind="skill.run",le="60.0"}'
    waited = [ln for ln in body.splitlines() if ln.startswith(bucket)]
    assert waited and float(waited[0].rsplit(" ", 1)[1]) >= 1


def test_json_log_lines_carry_request_and_incident_ids() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("warroom.test.observability")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    tokens = REQUEST_ID.set("req-42"), INCIDENT_ID.set(7)
    try:
        log.info("card updated for %s", "payments-api")
    finally:
        REQUEST_ID.reset(tokens[0])
        INCIDENT_ID.reset(tokens[1])
        log.removeHandler(handler)
    line = json.loads(out.getvalue())
    assert line["request_id"] == "req-42" and line["incident_id"] == 7
    assert line["msg"] == "card updated for payments-api" and line["level"] == "INFO"
