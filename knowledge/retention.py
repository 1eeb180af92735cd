"""Retention: the raw webhook bodies and the finished jobs are not kept forever.

Every delivery is committed to ``webhook_inbox`` as it arrived (``body``: the sender's JSON, up to
``WARROOM_WEBHOOK_MAX_BYTES``, with whatever its annotations carried, unmasked) before the 2xx goes back; the
processor masks its secrets when it processes it (``skills.redact.mask_json_text``). Once processed, what matters of
it lives on in the alerts and incidents (normalised, secrets masked). After
``WARROOM_INBOX_RETENTION_DAYS`` the body of a processed delivery is emptied. The row stays: its delivery id
still answers a late redelivery as a duplicate, and the alerts it created still point at it. Deliveries that
failed to process keep their bodies, for whoever looks into them.

Every Slack request, alert batch, card refresh and reminder is a row in ``jobs``; a busy bot adds thousands a day.
A job that is done is deleted ``WARROOM_JOB_RETENTION_DAYS`` after it finished; one that gave up (``failed``: the
evidence for `/warroom status` and `warroom jobs --retry-failed`) after ``WARROOM_FAILED_JOB_RETENTION_DAYS``.
Queued and running jobs are never touched. What a job did lives on in what it wrote (incidents, timelines, the runbook
audit); its ``dedup_key`` is freed, which is safe because every key names a moment or a row that does not recur
(a Slack event id, a delivery, an incident's creation, a planned time).

Every risk assessment is a row in ``risk_readings`` (a monitoring system calling ``/api/v1/risk/batch`` each minute
writes up to 1,000 a minute). A reading older than ``WARROOM_RISK_READING_RETENTION_DAYS`` (90) is deleted unless it
belongs to an incident (the postmortem's evidence); the detector reads only a service's last 59.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from knowledge.models import Job, RiskReading, WebhookInbox, utcnow

__all__ = ["prune_inbox", "prune_jobs", "prune_risk_readings"]


def prune_inbox(session: Session, days: int, *, now: dt.datetime | None = None, batch: int = 2000) -> int:
    """Empty the bodies of up to ``batch`` deliveries processed more than ``days`` days ago; return how many.
    One short statement: call again (a new transaction) until it returns fewer than ``batch``."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    ids = list(session.scalars(select(WebhookInbox.id).where(
        WebhookInbox.status == "processed", WebhookInbox.processed_at < cutoff, WebhookInbox.body != "")
        .order_by(WebhookInbox.id).limit(batch)))
    if ids:
        session.execute(update(WebhookInbox).where(WebhookInbox.id.in_(ids)).values(body=""))
    return len(ids)


def prune_jobs(session: Session, done_days: int, failed_days: int, *, now: dt.datetime | None = None,
               batch: int = 2000) -> int:
    """Delete up to ``batch`` jobs done more than ``done_days`` days ago or failed more than ``failed_days`` days
    ago; return how many. Call again (a new transaction) until it returns fewer than ``batch``."""
    now = now or utcnow()
    old = or_(and_(Job.status == "done", Job.finished_at < now - dt.timedelta(days=done_days)),
              and_(Job.status == "failed", Job.finished_at < now - dt.timedelta(days=failed_days)))
    ids = list(session.scalars(select(Job.id).where(old).order_by(Job.id).limit(batch)))
    if ids:
        session.execute(delete(Job).where(Job.id.in_(ids), old))
    return len(ids)


def prune_risk_readings(session: Session, days: int, *, now: dt.datetime | None = None, batch: int = 2000) -> int:
    """Delete up to ``batch`` risk readings older than ``days`` days that belong to no incident; return how many.
    Call again (a new transaction) until it returns fewer than ``batch``."""
    old = and_(RiskReading.created_at < (now or utcnow()) - dt.timedelta(days=days), RiskReading.incident_id.is_(None))
    ids = list(session.scalars(select(RiskReading.id).where(old).order_by(RiskReading.id).limit(batch)))
    if ids:
        session.execute(delete(RiskReading).where(RiskReading.id.in_(ids), old))
    return len(ids)


def prune_changes(session: Session, days: int, *, now: dt.datetime | None = None, batch: int = 2000) -> int:
    """Delete up to ``batch`` changes (deploys, config pushes: ``change_events``) that took effect over ``days`` days
    ago; return how many. Call again (a new transaction) until it returns fewer than ``batch``."""
    from knowledge.models import ChangeEvent

    old = ChangeEvent.at < (now or utcnow()) - dt.timedelta(days=days)
    ids = list(session.scalars(select(ChangeEvent.id).where(old).order_by(ChangeEvent.id).limit(batch)))
    if ids:
        session.execute(delete(ChangeEvent).where(ChangeEvent.id.in_(ids), old))
    return len(ids)
