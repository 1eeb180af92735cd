"""The knowledge base schema: SQLAlchemy 2.0 typed ORM for the incident domain.

Tables fall in three groups: who is who (teams, services, experts, on-call shifts), what happened
(incidents, alerts, timeline events, Slack messages, feedback) and what we know (runbooks and their
executions with an append-only audit log, postmortems), plus the durable plumbing (webhook inbox,
job queue) that lets the bot acknowledge fast and never lose accepted work.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "MAX_ID", "Base", "Bounded", "fit", "utcnow", "Team", "Service", "Expert", "OnCallShift", "Rotation",
    "TeamCalendar", "Incident", "Alert", "TimelineEvent", "SlackMessage", "Runbook", "RunbookExecution",
    "AuditRecord", "Postmortem",
    "Feedback", "WebhookInbox", "IntakeSpoolCursor", "Job",
    "RiskReading",
]

# Ids are INTEGER columns: 32 bits in PostgreSQL. A number from outside past this names no row (and SQLite cannot even
# bind one past 64 bits: a 500 before); check it before asking the database.
MAX_ID = 2**31 - 1


def fit(value: str, limit: int) -> str:
    """``value`` made to fit ``limit`` characters, the same way every time: cut, with a hash of the whole value at
    the end (so two long values that share their start stay two values, and a lookup by the long value finds the
    row stored from it). Short limits (status words, ids the code makes) are only cut."""
    if len(value) <= limit:
        return value
    if limit < 40:
        return value[:limit]
    import hashlib

    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{value[:limit - 17]}~{digest}"


class Bounded(TypeDecorator[str]):
    """``VARCHAR(n)`` whose values are made to fit (:func:`fit`) on their way into the database, in statements and in
    the values they are compared with. PostgreSQL refuses a longer value and SQLite stores it whole: an Alertmanager
    group key of 478 characters (twelve ``group_by`` labels) was accepted (202), then its incident failed to insert
    on PostgreSQL, so the alert was never shown; a 400-character Slack ``trigger_id`` made a command a 503."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        length = self.impl.length  # type: ignore[attr-defined]
        return fit(value, length) if isinstance(value, str) and length and len(value) > length else value


def utcnow() -> dt.datetime:
    """Timezone-aware now in UTC (stored as naive UTC for SQLite/PostgreSQL parity)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Bounded(100), unique=True)
    slack_channel: Mapped[str | None] = mapped_column(Bounded(64))
    slack_usergroup: Mapped[str | None] = mapped_column(Bounded(64))
    description: Mapped[str] = mapped_column(Text, default="")
    services: Mapped[list[Service]] = relationship(back_populates="team")
    experts: Mapped[list[Expert]] = relationship(back_populates="team")


class Service(Base):
    __tablename__ = "services"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Bounded(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    tier: Mapped[int] = mapped_column(Integer, default=2)
    # Slack user ids in escalation order after the on-call person.
    escalation: Mapped[list[Any]] = mapped_column(default=list)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    # Names of the services this one calls (knowledge/service_graph.py): their incidents may cause its own.
    depends_on: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    team: Mapped[Team | None] = relationship(back_populates="services")


class Expert(Base):
    __tablename__ = "experts"
    id: Mapped[int] = mapped_column(primary_key=True)
    slack_user_id: Mapped[str] = mapped_column(Bounded(32), unique=True)
    name: Mapped[str] = mapped_column(Bounded(200))
    email: Mapped[str | None] = mapped_column(Bounded(200))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    services: Mapped[list[Any]] = mapped_column(default=list)
    skills: Mapped[list[Any]] = mapped_column(default=list)
    timezone: Mapped[str] = mapped_column(Bounded(64), default="UTC")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    team: Mapped[Team | None] = relationship(back_populates="experts")


class OnCallShift(Base):
    __tablename__ = "oncall_shifts"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id"))
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(Bounded(32), default="rotation")


class ChangeEvent(Base):
    """A change to a service (a deploy, a config push, a feature flag, a rollback), reported by CI/CD
    (``POST /api/v1/changes``, ``warroom changes add``): shown on the cards of the incidents that open soon after it
    on that service or on one that depends on it, and asked about in Slack ("what changed before #113?").
    ``external_id`` (the sender's own id) makes a retried report a no-op."""

    __tablename__ = "change_events"
    __table_args__ = (UniqueConstraint("source", "external_id"), Index("ix_change_events_service_at", "service", "at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    service: Mapped[str] = mapped_column(Bounded(200))
    kind: Mapped[str] = mapped_column(Bounded(32), default="deploy")
    summary: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str | None] = mapped_column(Bounded(200))
    author: Mapped[str | None] = mapped_column(Bounded(200))
    url: Mapped[str | None] = mapped_column(Bounded(1000))
    source: Mapped[str] = mapped_column(Bounded(64), default="api")
    external_id: Mapped[str | None] = mapped_column(Bounded(200))
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class DeployFreeze(Base):
    """A deploy freeze, said in Slack ("freeze deploys on payments-api until monday 09:00: black friday") or set
    through the API: while it holds (from ``starts_at`` until ``ends_at``, or until lifted), the deploy check says
    hold, ``GET /api/v1/freezes`` tells a CI pipeline to stop, and a deploy reported meanwhile is flagged.
    ``service`` lowercased; None: every service."""

    __tablename__ = "deploy_freezes"
    id: Mapped[int] = mapped_column(primary_key=True)
    service: Mapped[str | None] = mapped_column(Bounded(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    ends_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_by: Mapped[str | None] = mapped_column(Bounded(200))
    lifted_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    lifted_by: Mapped[str | None] = mapped_column(Bounded(200))


class Rotation(Base):
    """A team's rotation as declared (``rotations:`` in an experts file): the members take turns of ``shift_hours``
    from ``starts_at``. With ``timezone`` set, ``starts_at`` is a wall-clock time there and every handover keeps that
    local time across daylight-saving changes; without, it is UTC. Its turns are written as ``oncall_shifts`` rows
    ahead of time and topped up every day (knowledge/rotations.py); ``next_turn`` is the first turn not written yet."""

    __tablename__ = "rotations"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), unique=True)
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime)
    timezone: Mapped[str | None] = mapped_column(Bounded(64))
    shift_hours: Mapped[int] = mapped_column(Integer, default=168)
    members: Mapped[list[Any]] = mapped_column(default=list)  # expert ids, in turn order
    next_turn: Mapped[int] = mapped_column(Integer, default=0)


class TeamCalendar(Base):
    """The iCal calendar last imported for a team (``warroom oncall import-ical``). A repeating event is written as one
    shift per occurrence up to 180 days ahead; the calendar is kept so the bot can write them on every hour
    (knowledge/people_import.py ``refresh_calendars``) instead of running out half a year after the import, and one
    imported from a URL is fetched again, so a swap made in the scheduling tool reaches the bot."""

    __tablename__ = "team_calendars"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), unique=True)
    name: Mapped[str] = mapped_column(Bounded(200))
    ics: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)  # a scheduling tool's feed: fetched again every hour
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


REPORT_KEY_PREFIX = "slack-report:"  # group_key of an incident opened from a report in words: unique


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("uq_incidents_report_key", "group_key", unique=True,
                            sqlite_where=text(f"group_key LIKE '{REPORT_KEY_PREFIX}%'"),
                            postgresql_where=text(f"group_key LIKE '{REPORT_KEY_PREFIX}%'")),)
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Bounded(500))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[int] = mapped_column(Integer, default=3)  # 1 (worst) .. 4
    status: Mapped[str] = mapped_column(Bounded(20), default="open", index=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    service_name: Mapped[str | None] = mapped_column(Bounded(100), index=True)
    alert_name: Mapped[str | None] = mapped_column(Bounded(200))
    source: Mapped[str] = mapped_column(Bounded(32), default="slack")
    group_key: Mapped[str | None] = mapped_column(Bounded(300), index=True)
    channel_id: Mapped[str | None] = mapped_column(Bounded(64), index=True)
    card_ts: Mapped[str | None] = mapped_column(Bounded(32), index=True)  # a reply in the card's thread: which one
    # Hash of the card last sent to Slack: an update that would not change it is skipped.
    card_hash: Mapped[str | None] = mapped_column(Bounded(64))
    dedicated_channel: Mapped[bool] = mapped_column(Boolean, default=False)
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    assignee: Mapped[str | None] = mapped_column(Bounded(32))
    created_by: Mapped[str | None] = mapped_column(Bounded(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    detected_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    mitigated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    root_cause: Mapped[str] = mapped_column(Text, default="")
    resolution: Mapped[str] = mapped_column(Text, default="")
    # Skill findings shown on the card, keyed by skill name.
    findings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    alerts: Mapped[list[Alert]] = relationship(back_populates="incident")
    timeline: Mapped[list[TimelineEvent]] = relationship(
        back_populates="incident", order_by="TimelineEvent.at"
    )


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_fingerprint_status", "fingerprint", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_inbox.id"))
    source: Mapped[str] = mapped_column(Bounded(32))
    fingerprint: Mapped[str] = mapped_column(Bounded(200))
    name: Mapped[str] = mapped_column(Bounded(200))
    service_name: Mapped[str | None] = mapped_column(Bounded(100))
    status: Mapped[str] = mapped_column(Bounded(20), default="firing")
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    severity: Mapped[str | None] = mapped_column(Bounded(32))
    summary: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    starts_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    ends_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    incident: Mapped[Incident | None] = relationship(back_populates="alerts")


class TimelineEvent(Base):
    __tablename__ = "timeline_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(Bounded(40))  # created, ack, sev, assign, alert, message, resolve, ...
    text: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str | None] = mapped_column(Bounded(64))
    permalink: Mapped[str | None] = mapped_column(Bounded(500))
    key: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    incident: Mapped[Incident] = relationship(back_populates="timeline")


class SlackMessage(Base):
    __tablename__ = "slack_messages"
    __table_args__ = (UniqueConstraint("channel_id", "ts"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[str] = mapped_column(Bounded(64))
    ts: Mapped[str] = mapped_column(Bounded(32))
    thread_ts: Mapped[str | None] = mapped_column(Bounded(32))
    user_id: Mapped[str | None] = mapped_column(Bounded(32))
    text: Mapped[str] = mapped_column(Text, default="")
    permalink: Mapped[str | None] = mapped_column(Bounded(500))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    key: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Runbook(Base):
    __tablename__ = "runbooks"
    __table_args__ = (UniqueConstraint("slug", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(Bounded(100), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(Bounded(300))
    services: Mapped[list[Any]] = mapped_column(default=list)
    alert_names: Mapped[list[Any]] = mapped_column(default=list)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    steps: Mapped[list[Any]] = mapped_column(default=list)
    risk: Mapped[str] = mapped_column(Bounded(20), default="low")
    approvers: Mapped[list[Any]] = mapped_column(default=list)
    allowed_users: Mapped[list[Any]] = mapped_column(default=list)
    allowed_channels: Mapped[list[Any]] = mapped_column(default=list)
    auto_safe: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RunbookExecution(Base):
    __tablename__ = "runbook_executions"
    id: Mapped[int] = mapped_column(primary_key=True)
    runbook_slug: Mapped[str] = mapped_column(Bounded(100), index=True)
    runbook_version: Mapped[int] = mapped_column(Integer)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    requested_by: Mapped[str] = mapped_column(Bounded(32))
    approved_by: Mapped[str | None] = mapped_column(Bounded(32))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(Bounded(20), default="requested")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    channel_id: Mapped[str | None] = mapped_column(Bounded(64))
    thread_ts: Mapped[str | None] = mapped_column(Bounded(32))
    output: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # One-time token for the buttons of this execution; rotated on every state change (issue 8).
    nonce: Mapped[str | None] = mapped_column(Bounded(64))


class AuditRecord(Base):
    """Append-only: rows are inserted, never updated or deleted by the application."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(Bounded(64))
    action: Mapped[str] = mapped_column(Bounded(64))
    subject: Mapped[str | None] = mapped_column(Bounded(200))
    execution_id: Mapped[int | None] = mapped_column(ForeignKey("runbook_executions.id"), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Postmortem(Base):
    __tablename__ = "postmortems"
    __table_args__ = (UniqueConstraint("incident_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(Bounded(20), default="draft")  # draft, edited, published
    title: Mapped[str] = mapped_column(Bounded(500), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[str] = mapped_column(Text, default="")
    resolution: Mapped[str] = mapped_column(Text, default="")
    markdown: Mapped[str] = mapped_column(Text, default="")
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    author: Mapped[str | None] = mapped_column(Bounded(64))
    writer: Mapped[str] = mapped_column(Bounded(32), default="deterministic")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Feedback(Base):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(Bounded(40), index=True)  # not_similar, wrong_owner, ...
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    target: Mapped[str | None] = mapped_column(Bounded(200))
    user_id: Mapped[str | None] = mapped_column(Bounded(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class WebhookInbox(Base):
    """Raw webhook deliveries, committed before the 2xx goes back."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (Index("ix_webhook_inbox_pending", "status", "id"),)  # the processor's "next pending" scan
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(Bounded(32))
    delivery_id: Mapped[str | None] = mapped_column(Bounded(200), unique=True)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Bounded(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class IntakeSpoolCursor(Base):
    """How far the processor has copied the webhook door's spool file (SQLite only; ``bot.inbox_spool``)."""

    __tablename__ = "intake_spool_cursor"
    epoch: Mapped[str] = mapped_column(Bounded(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer, default=0)


class Job(Base):
    """A durable unit of work for the worker pool (see ``knowledge.jobs``)."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "run_after"),
        # /warroom status counts the jobs resent in the last hour; partial, so a job's insert does not pay for it
        Index("ix_jobs_resent_at", "resent_at", postgresql_where=text("resent_at IS NOT NULL"),
              sqlite_where=text("resent_at IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(Bounded(64))
    dedup_key: Mapped[str | None] = mapped_column(Bounded(300), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(Bounded(20), default="queued")  # queued, running, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_after: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # a sweeper sent it to the broker again
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)



class RiskReading(Base):
    """One failure-risk assessment (from Slack, triage, the CLI or the REST API), for history and postmortems."""

    __tablename__ = "risk_readings"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    service_name: Mapped[str | None] = mapped_column(Bounded(100), index=True)
    source: Mapped[str] = mapped_column(Bounded(32), default="slack")
    probability: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(Bounded(16))
    model_version: Mapped[str] = mapped_column(Bounded(100))
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    factors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class LogTemplate(Base):
    """A log template seen before (so "new" means new across time), with its last classification."""

    __tablename__ = "log_templates"
    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[str] = mapped_column(Bounded(16), unique=True)
    template: Mapped[str] = mapped_column(Text)
    n_tokens: Mapped[int] = mapped_column(Integer, default=0, index=True)
    severity: Mapped[str] = mapped_column(Bounded(10), default="INFO")
    category: Mapped[str] = mapped_column(Bounded(20), default="normal")
    example: Mapped[str] = mapped_column(Text, default="")
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
