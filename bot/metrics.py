"""Prometheus metrics of the bot itself."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["REQUESTS", "REQUEST_LATENCY", "SLACK_CALLS", "SLACK_LATENCY", "SLACK_RETRIES", "JOBS", "JOB_LATENCY",
           "SKILL_LATENCY", "SKILL_ERRORS", "WEBHOOKS", "QUEUE_DEPTH", "SLACK_AUTH_OK", "JOBS_RESENT"]

REQUESTS = Counter("warroom_http_requests_total", "HTTP requests", ["route", "status"])
REQUEST_LATENCY = Histogram("warroom_http_request_seconds", "HTTP request latency", ["route"],
                            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3))
SLACK_CALLS = Counter("warroom_slack_api_calls_total", "Slack Web API calls", ["method"])
SLACK_RETRIES = Counter("warroom_slack_api_retries_total", "Slack Web API retries", ["reason"])
SLACK_LATENCY = Histogram("warroom_slack_api_seconds", "Slack Web API call latency")
JOBS = Counter("warroom_jobs_total", "Jobs finished", ["kind", "outcome"])
JOB_LATENCY = Histogram("warroom_job_seconds", "Job run time", ["kind"])
# How long a job was due before a worker took it: the queue's delay, per kind (an answer someone waits for is
# skill.run / slack.action; a backlog shows here before it shows anywhere else).
JOB_WAIT = Histogram("warroom_job_wait_seconds", "Time a job waited in the queue, from due to claimed", ["kind"],
                     buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
SKILL_LATENCY = Histogram("warroom_skill_seconds", "Skill run time", ["skill"])
SKILL_ERRORS = Counter("warroom_skill_errors_total", "Skill failures", ["skill"])
WEBHOOKS = Counter("warroom_webhooks_total", "Webhook deliveries", ["source", "outcome"])
QUEUE_DEPTH = Gauge("warroom_queue_depth", "Jobs waiting in the queue")
# What the replicas' sweepers sent to the broker again: "lost" (due, and the broker's queue no longer holds it: Redis
# lost its data) or "expired" (its worker died mid-job). Anything above zero means the broker or a worker failed.
JOBS_RESENT = Counter("warroom_jobs_resent_total", "Jobs the sweeper sent to the broker again", ["reason"])
# 0 while Slack refuses the bot's token (revoked, the app reinstalled): work waits; alert on it.
SLACK_AUTH_OK = Gauge("warroom_slack_auth_ok", "1 while Slack accepts the bot token, 0 while it refuses it")
SLACK_AUTH_OK.set(1)
# Slack's app_rate_limited: it is holding back the app's events (mentions, messages, uploads may be lost)
SLACK_EVENTS_LIMITED = Counter("warroom_slack_events_limited", "app_rate_limited notices from Slack")
