"""``maintenance.prune``: the retention of raw webhook bodies and finished jobs (``knowledge.retention``), every 6
hours, the archiving of resolved incidents' own channels (``bot/channel_archive.py``), and one message for each
postmortem action item past its due date (``nudge_overdue``).

The job is queued when the bot's workers start and queues its own next run, keyed by the 6-hour slot, so any
number of replicas and restarts plan one run per slot. Each batch is its own short transaction: an alert storm
never waits behind a long delete. ``warroom db prune`` does the same at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.channel_archive import archive_resolved
from bot.noise_digest import queue_digests
from bot.slack_client import slack_error
from knowledge.models import utcnow
from knowledge.retention import prune_changes, prune_inbox, prune_jobs, prune_risk_readings

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from bot.services import Services
    from knowledge.db import Database

__all__ = ["register", "schedule", "prune_all", "nudge_overdue", "PRUNE", "EVERY_S"]

log = logging.getLogger("warroom.maintenance")

PRUNE = "maintenance.prune"
EVERY_S = 6 * 3600
_MAX_BATCHES = 500  # 1,000,000 bodies a run at most; the next slot goes on


def _batches(db: Database, prune: Callable[[Session], int], batch: int) -> int:
    total = 0
    for _ in range(_MAX_BATCHES):
        with db.session() as s:
            n = prune(s)
        total += n
        if n < batch:
            break
    return total


def prune_all(db: Database, days: int, *, job_days: int = 7, failed_job_days: int = 30, risk_days: int = 90,
              change_days: int = 400, batch: int = 2000) -> tuple[int, int, int, int]:
    """Prune in batches of ``batch`` until none is left (or ``_MAX_BATCHES`` each): the bodies of deliveries
    processed over ``days`` days ago, jobs done over ``job_days`` / failed over ``failed_job_days`` days ago, risk
    readings of no incident older than ``risk_days``, changes that took effect over ``change_days`` days ago.
    Return (bodies emptied, jobs deleted, readings deleted, changes deleted)."""
    bodies = _batches(db, lambda s: prune_inbox(s, days, batch=batch), batch)
    jobs = _batches(db, lambda s: prune_jobs(s, job_days, failed_job_days, batch=batch), batch)
    readings = _batches(db, lambda s: prune_risk_readings(s, risk_days, batch=batch), batch)
    return bodies, jobs, readings, _batches(db, lambda s: prune_changes(s, change_days, batch=batch), batch)


def nudge_overdue(services: Services) -> int:
    """Tell the owner of each open action item past its due date, once, in a direct message with a *Mark done*
    button (an item of no owner: in the incident channel, asking for one). An item is marked told only after Slack
    took the message, so a failed post is tried again on the next run. Returns how many were told."""
    from bot.handlers import deliver
    from skills.action_items import mark_nudged, overdue_nudges
    from skills.base import Action, SkillResult, esc

    with services.db.session() as s:
        nudges = overdue_nudges(s)
    told = 0
    for nd in nudges:
        ref, late = f"{nd.incident_id}.{nd.n}", (utcnow().date() - nd.due).days
        who = (f"<@{nd.owner}>, action item" if nd.owner else "Action item")
        text = (f":hourglass: {who} *{ref}* {esc(nd.text[:200])} (postmortem of #{nd.incident_id}) was due "
                f"{nd.due:%a %d %b}, {late} day{'s' if late > 1 else ''} ago.")
        text += (" Done? Mark it below or `/postmortem done {ref}`. More time: `/postmortem due {ref} <date>`."
                 if nd.owner else f" It has no owner: `/postmortem assign {ref} @someone`, then "
                 f"`/postmortem due {ref} <date>`.").format(ref=ref)
        result = SkillResult(title="Overdue action item", summary=text,
                             actions=(Action("postmortem:action_done", "Mark done", ref),))
        home = services.settings.slack_incident_channel
        try:
            deliver(services, result, {"channel": nd.owner or home})
        except SlackApiError as exc:  # the owner left the workspace (user_not_found, ...): said where people see it
            if not nd.owner:
                raise  # Slack down: the next run tries again
            log.warning("could not tell %s about action item %s (%s): telling %s", nd.owner, ref, slack_error(exc),
                        home)
            deliver(services, result, {"channel": home})
        with services.db.session() as s:
            mark_nudged(s, nd)
        told += 1
    if told:
        log.info("told about %d overdue action item(s)", told)
    return told


def schedule(services: Services, delay_s: float = 0.0) -> None:
    """Queue the run of the slot ``delay_s`` from now (once per slot, whoever asks)."""
    slot = int((utcnow().timestamp() + delay_s) // EVERY_S)
    services.runner.submit(PRUNE, {}, f"{PRUNE}:{slot}", delay_s=delay_s)


def register(services: Services) -> None:
    def run(payload: dict[str, Any]) -> None:
        try:
            cfg = services.settings
            n, jobs, readings, changes = prune_all(
                services.db, cfg.inbox_retention_days, job_days=cfg.job_retention_days,
                failed_job_days=cfg.failed_job_retention_days, risk_days=cfg.risk_reading_retention_days,
                change_days=cfg.change_retention_days)
            if n or jobs or readings or changes:
                log.info("emptied the bodies of %d webhook deliveries processed over %d days ago; deleted %d "
                         "finished jobs, %d old risk readings and %d changes older than %d days", n,
                         cfg.inbox_retention_days, jobs, readings, changes, cfg.change_retention_days)
            try:  # the channels of incidents resolved a week ago (bot/channel_archive.py)
                archive_resolved(services)
            except Exception as exc:  # noqa: BLE001 - Slack or the database down: the next run goes on
                log.warning("could not archive the channels of resolved incidents: %s", exc)
            try:
                nudge_overdue(services)
            except Exception as exc:  # noqa: BLE001 - the same
                log.warning("could not tell the owners of overdue action items: %s", exc)
            try:  # Mondays: each team's noisiest alerts of the week (bot/noise_digest.py)
                queue_digests(services)
            except Exception as exc:  # noqa: BLE001 - the same
                log.warning("could not queue the alert-noise digests: %s", exc)
        finally:
            schedule(services, EVERY_S)

    services.runner.register(PRUNE, run)
