"""The weekly alert-noise digest: on Mondays, each team's channel gets the noisiest alerts of its services over the
last 7 days (``skills.firing.noise``: how often each fired, the incidents, the notifications, how many nobody
acknowledged, how long they fired, the tuning candidates), so alert fatigue is looked at every week instead of
when someone burns out.

The 6-hourly maintenance run (``bot/maintenance.py``) calls :func:`queue_digests`; from Monday 09:00 UTC it queues
one ``alerts.noise_digest`` job per team with a channel, keyed by the ISO week and the team, so replicas, restarts
and the later runs of that Monday post it once. A team whose services sent no alert that week gets nothing.
``WARROOM_ALERT_NOISE_DIGEST``: unset, on in production and off in test and demo mode.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from knowledge import jobs
from knowledge.models import Service, Team, utcnow

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["register", "queue_digests", "KIND", "HOUR_UTC"]

log = logging.getLogger("warroom.noise_digest")

KIND = "alerts.noise_digest"
HOUR_UTC = 9  # Monday from this hour (UTC), at the next maintenance run


def queue_digests(services: Services, now: dt.datetime | None = None) -> int:
    """Queue this week's digest of each team with a channel, once per ISO week; returns how many were new."""
    now = now or utcnow()
    if not services.settings.noise_digests() or now.weekday() != 0 or now.hour < HOUR_UTC:
        return 0
    year, week, _ = now.isocalendar()
    refs = []
    with services.db.session() as s:
        for team_id, name, channel in s.execute(select(Team.id, Team.name, Team.slack_channel)
                                                .where(Team.slack_channel.is_not(None))):
            ref = jobs.enqueue(s, kind=KIND, dedup_key=f"noise-digest:{year}-W{week:02d}:{team_id}",
                               payload={"team": name, "channel": channel})
            if ref.created:
                refs.append((ref.id, 0.0))
    if refs:
        services.runner.handoff(refs)
    return len(refs)


def register(services: Services) -> None:
    """Register ``alerts.noise_digest`` on the runner."""
    from bot.handlers import deliver
    from skills.firing import noise

    def run(payload: dict[str, Any]) -> None:
        team, channel = str(payload["team"]), str(payload["channel"])
        with services.db.session() as s:
            names = set(s.scalars(select(Service.name).join(Team, Team.id == Service.team_id).where(Team.name == team)))
            if not names:
                return
            result = noise(s, text="this week", services=names, label=f"on the {team} team's services")
        if not result.data.get("alerts"):
            return  # a quiet week: nothing to tune, nothing said
        deliver(services, result, {"channel": channel})
        log.info("posted the alert-noise digest of %s (%d alerts)", team, result.data["alerts"])

    services.runner.register(KIND, run)
