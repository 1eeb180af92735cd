"""One settings object, read from the environment and `.env` (prefix ``WARROOM_``).

Built once by :func:`load_settings` and passed down; nothing reads the environment elsewhere.
Secrets are :class:`pydantic.SecretStr`, so they never appear in reprs or logs, and placeholder
secrets are refused outside demo/test mode.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "load_settings", "PLACEHOLDER"]

PLACEHOLDER = "change-me"
_PREFIX = "WARROOM_"


_OFFLINE: ContextVar[bool] = ContextVar("warroom_settings_offline", default=False)


class SettingsError(Exception):
    """The configuration cannot be used; the message is one line for a person."""


class Settings(BaseSettings):
    """Everything the service can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix=_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="forbid"
    )

    mode: Literal["production", "demo", "test"] = "production"

    # Slack
    slack_bot_token: SecretStr = SecretStr(f"xoxb-{PLACEHOLDER}")
    slack_signing_secret: SecretStr = SecretStr(PLACEHOLDER)
    slack_app_token: SecretStr | None = None  # xapp-..., only for Socket Mode
    # Slack over a WebSocket the bot opens (no public URL needed; bot/socket_mode.py); webhooks, the REST API and
    # health stay on HTTP. `warroom serve --socket-mode` sets it.
    slack_socket_mode: bool = False
    # Down this long, the bot asks Slack for a new WebSocket URL (slack_sdk alone retries the old one forever).
    slack_socket_stale_s: float = Field(default=30.0, gt=0)
    slack_api_url: str = "https://slack.com/api/"
    slack_incident_channel: str = "C0INCIDENTS"
    # Where status updates ("update: ...", `/incident update`) go for the people following incidents (support,
    # management); then also the mitigation and resolution of those incidents. Unset: updates stay on the timeline.
    slack_status_channel: str | None = None
    slack_open_incident_channels: bool = False
    # An incident's own channel is archived this many hours after it was resolved (it stays readable and
    # searchable; a reopened incident's card moves to the incident channel). 0: never.
    slack_archive_resolved_after_h: int = Field(default=168, ge=0, le=24 * 365)
    slack_max_text: int = 3000
    # At most one post per this many seconds per channel (Slack's chat.postMessage allows about one a second per
    # channel and answers 429 beyond short bursts). Lower only against a server without that limit.
    slack_channel_interval_s: float = Field(default=1.0, ge=0, le=10)

    # Storage
    database_url: str = "sqlite:///./var/warroom.db"
    data_dir: Path = Path("./var")
    model_dir: Path | None = None  # default: <data_dir>/models

    # Embeddings: "minilm" is the bundled all-MiniLM-L6-v2; "hash" is a small deterministic encoder
    # for tests and machines without torch.
    embedder: Literal["minilm", "hash"] = "minilm"

    # Optional LLM (any OpenAI-compatible endpoint)
    llm_api_key: SecretStr | None = None
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = 20.0

    # Webhooks: one secret per source, e.g. WARROOM_WEBHOOK_SECRETS='{"alertmanager": "..."}'
    webhook_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    # Rotating a secret without losing alerts: the old one, still accepted until every sender has the new one
    # (each delivery it authenticates is counted: warroom_webhooks_total{outcome="previous_secret"}). Senders do not
    # retry a 401, so a hard switch loses what they send in between.
    # WARROOM_WEBHOOK_PREVIOUS_SECRETS='{"grafana": "..."}'
    webhook_previous_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    webhook_max_bytes: int = 1024 * 1024
    # GitHub's deployment_status webhook (POST /api/v1/changes/github, secret WARROOM_WEBHOOK_SECRETS["github"]):
    # deployments to these environments are kept as changes; '["*"]' keeps every environment's.
    github_environments: list[str] = Field(default_factory=lambda: ["production", "prod"])
    # Raw webhook bodies (unmasked, as the sender sent them) are emptied this many days after they were processed;
    # the alerts and incidents they made stay (knowledge/retention.py, `warroom db prune`).
    inbox_retention_days: int = Field(default=30, ge=1, le=3650)
    # Finished jobs are deleted this many days after they finished (done), or gave up (failed); queued and running
    # jobs never are (knowledge/retention.py).
    job_retention_days: int = Field(default=7, ge=1, le=3650)
    failed_job_retention_days: int = Field(default=30, ge=1, le=3650)
    risk_reading_retention_days: int = Field(default=90, ge=1, le=3650)  # readings of no incident (retention.py)
    change_retention_days: int = Field(default=400, ge=7, le=3650)  # deploys, config pushes (change_events)
    # Whether the bot runs that retention itself every 6 hours. Unset: on in production, off in test and demo mode
    # (a run planned hours ahead would keep their job queue from ever being empty).
    inbox_retention_runs: bool | None = None

    # PagerDuty write-back (bot/pagerduty.py): with a REST API token, acknowledging, resolving and status updates
    # of an incident that PagerDuty opened reach its PagerDuty incident(s), so PagerDuty stops paging. `From`:
    # the email of the PagerDuty user the bot acts as (required with an account token). Unset token: off.
    pagerduty_api_token: SecretStr | None = None
    pagerduty_from: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    pagerduty_api_url: str = Field(default="https://api.pagerduty.com", pattern=r"^https?://[^\s]+$")
    pagerduty_timeout_s: float = Field(default=10.0, gt=0, le=60)
    pagerduty_max_attempts: int = Field(default=5, ge=1, le=20)  # then the incident's thread is told

    # Incident intake: grouping rules in order, the service+alert-name window, and how often a card or
    # the triage of a growing incident may be refreshed during an alert storm.
    grouping_rules: list[Literal["fingerprint", "group_key", "service_alertname"]] = Field(
        default_factory=lambda: ["fingerprint", "group_key", "service_alertname"])
    grouping_window_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    card_update_interval_s: float = Field(default=3.0, gt=0, le=300)
    triage_interval_s: float = Field(default=30.0, gt=0, le=3600)
    # Nobody acknowledged a new incident: remind (and call the next people) after this many seconds, by
    # severity; a severity left out gets no reminder. Unset: SEV1 5 min, SEV2 15, SEV3 30 in production, none
    # in test and demo mode (their runs end when the queue is empty). WARROOM_ACK_REMINDER_S='{"1": 120}'.
    ack_reminder_s: dict[int, float] | None = None
    ack_reminder_max: int = Field(default=3, ge=1, le=10)  # reminders per incident, each calling new people

    def ack_reminders(self) -> dict[int, float]:
        """The reminder delay per severity in effect (see ``ack_reminder_s``)."""
        if self.ack_reminder_s is not None:
            return {k: v for k, v in self.ack_reminder_s.items() if v > 0}
        return {} if self.mode in ("test", "demo") else {1: 300.0, 2: 900.0, 3: 1800.0}

    # An acknowledged incident with no update for this many seconds, by severity: ask for one in its thread
    # (see bot/update_reminders.py). Unset: SEV1 30 min, SEV2 60 min in production, none in test and demo mode.
    # WARROOM_UPDATE_REMINDER_S='{"1": 900, "2": 1800}'; '{}' turns them off.
    update_reminder_s: dict[int, float] | None = None
    update_reminder_max: int = Field(default=3, ge=1, le=20)  # reminders in a row without an update, then quiet

    # At each on-call shift change, post the handover of the team's services in the team's channel (see
    # bot/shift_handover.py). Unset: on in production, off in test and demo mode (a shift change is days away).
    shift_handover: bool | None = None
    # On Mondays (from 09:00 UTC), post in each team's channel the noisiest alerts of its services over the last week
    # (see bot/noise_digest.py). Unset: on in production, off in test and demo mode.
    alert_noise_digest: bool | None = None

    # Retrain the routing classifier from the knowledge base every this many hours when what it learns from changed
    # (new incidents with a team, "wrong owner" feedback; see bot/train_jobs.py). A model trained from a CSV is kept.
    # Unset: 24 in production, off in test and demo mode; 0 turns it off.
    routing_refresh_hours: float | None = Field(default=None, ge=0, le=24 * 90)

    def routing_refresh_s(self) -> float:
        """Seconds between routing refreshes in effect (0: off)."""
        hours = self.routing_refresh_hours
        return 3600.0 * (hours if hours is not None else 0.0 if self.mode in ("test", "demo") else 24.0)

    def retention_runs(self) -> bool:
        """Whether the 6-hourly retention run is planned (see ``bot/maintenance.py``)."""
        return self.inbox_retention_runs if self.inbox_retention_runs is not None else self.mode not in ("test", "demo")

    def shift_handovers(self) -> bool:
        """Whether shift-change handovers are posted (see ``shift_handover``)."""
        return self.shift_handover if self.shift_handover is not None else self.mode not in ("test", "demo")

    def noise_digests(self) -> bool:
        """Whether the weekly alert-noise digest is posted (see ``alert_noise_digest``)."""
        return self.alert_noise_digest if self.alert_noise_digest is not None else self.mode not in ("test", "demo")

    def update_reminders(self) -> dict[int, float]:
        """The update cadence per severity in effect (see ``update_reminder_s``)."""
        if self.update_reminder_s is not None:
            return {k: v for k, v in self.update_reminder_s.items() if v > 0}
        return {} if self.mode in ("test", "demo") else {1: 1800.0, 2: 3600.0}

    # Work hand-off: the in-process worker pool (embedded default) or Celery on Redis (scale-out).
    job_backend: Literal["inprocess", "celery"] = "inprocess"
    redis_url: str = "redis://127.0.0.1:6379/0"

    # Server and worker
    host: str = "127.0.0.1"
    port: int = 3000
    workers: int = 4
    # The first worker thread takes only the jobs a person waits for (commands, mentions, clicks: bot/worker.py
    # INTERACTIVE), the others everything; off: first in, first out on every thread (bench/interactive_bench.py).
    interactive_lane: bool = True
    # Where `warroom serve` runs the inbox processor and the job pool: "process" (a `warroom background`
    # child, at a lower CPU priority; the web door then never waits for the interpreter lock behind parsing,
    # grouping and triage: an alert storm is accepted at about 1.4x the rate, docs/benchmarks.md) or "thread"
    # (in the web process: one process, half the memory for loaded models).
    background: Literal["thread", "process"] = "process"
    # The child's CPU priority (nice increment): in a storm on a small machine, accepting an alert (the
    # door) comes before processing it; idle cores still run the child at full speed.
    background_nice: int = Field(default=10, ge=0, le=19)
    # Inbox rows per processing transaction (with WARROOM_BACKGROUND=process; thread mode uses 200).
    intake_batch: int = Field(default=25, ge=1, le=1000)
    # SQLite: the webhook door commits deliveries to its own file (<db>.inbox.db) that the processor drains,
    # so accepting an alert never waits for the main database's write lock (bot.inbox_spool).
    inbox_spool: bool = True
    job_lease_s: float = Field(default=30.0, gt=0)  # renewed every third while the job runs
    upgrade_on_start: bool = True
    warm_models: bool = True
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    kb_token: SecretStr | None = None
    # Runbooks (issue 8): what shell steps may run and which hosts http steps may reach.
    runbook_commands: list[str] = Field(default_factory=lambda: [
        "kubectl", "helm", "redis-cli", "cmctl", "systemctl", "journalctl", "df", "du", "find", "uptime"])
    runbook_http_hosts: list[str] = Field(default_factory=list)
    # A run not confirmed and approved within this many minutes of its request expires: an old Approve button must not
    # start, days later, what an incident needed then (skills/runbook_flow.py).
    runbook_approval_ttl_min: int = Field(default=60, ge=1, le=7 * 24 * 60)
    public_url: str | None = None  # how people reach this app (links to the /kb pages); default host:port

    @property
    def models_path(self) -> Path:
        """Directory for trained artifacts."""
        return self.model_dir if self.model_dir is not None else self.data_dir / "models"

    @property
    def llm_enabled(self) -> bool:
        """Whether an LLM endpoint is configured."""
        return self.llm_base_url is not None or self.llm_api_key is not None

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.mode != "production" or _OFFLINE.get():
            return self
        bad = []
        if PLACEHOLDER in self.slack_bot_token.get_secret_value():
            bad.append("WARROOM_SLACK_BOT_TOKEN")
        if PLACEHOLDER in self.slack_signing_secret.get_secret_value():
            bad.append("WARROOM_SLACK_SIGNING_SECRET")
        for name, secrets in (("WARROOM_WEBHOOK_SECRETS", self.webhook_secrets),
                              ("WARROOM_WEBHOOK_PREVIOUS_SECRETS", self.webhook_previous_secrets)):
            for source, secret in secrets.items():
                if PLACEHOLDER in secret.get_secret_value() or len(secret.get_secret_value()) < 16:
                    bad.append(f"{name}[{source}] (placeholder or shorter than 16)")
        kb = self.kb_token.get_secret_value() if self.kb_token is not None else ""
        if kb and (PLACEHOLDER in kb or len(kb) < 16):  # it guards the KB pages and the REST API (risk writes)
            bad.append("WARROOM_KB_TOKEN (placeholder or shorter than 16)")
        if bad:
            raise ValueError(
                "placeholder secrets are refused in production mode: set " + ", ".join(bad)
                + " (or WARROOM_MODE=demo)"
            )
        return self


def _unknown_env_keys() -> list[str]:
    known = {f"{_PREFIX}{name}".upper() for name in Settings.model_fields}
    # WARROOM_TEST_* is reserved for the test suite's own knobs.
    return sorted(
        k for k in os.environ
        if k.upper().startswith(_PREFIX) and k.upper() not in known and not k.upper().startswith("WARROOM_TEST_")
    )


def load_settings(*, offline: bool = False, **overrides: object) -> Settings:
    """Build the settings, turning any problem into a one-line :class:`SettingsError`.

    ``offline``: for commands that neither talk to Slack nor receive webhooks (training, evaluation,
    imports, migrations): they do not need the Slack and webhook secrets, so placeholders are not refused.
    """
    unknown = _unknown_env_keys()
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
    token = _OFFLINE.set(offline)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise SettingsError(f"invalid setting {where}: {first.get('msg')}") from None
    finally:
        _OFFLINE.reset(token)
