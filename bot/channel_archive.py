"""Archive the channels of incidents resolved long enough ago (``WARROOM_SLACK_ARCHIVE_RESOLVED_AFTER_H``, 7 days).

With ``WARROOM_SLACK_OPEN_INCIDENT_CHANNELS`` every incident opens a channel of its own; without this, the channel
list grows by one for every incident, forever. Each channel whose incident was resolved ``after_h`` hours ago gets
a last message (why, the postmortem's link, how to bring the incident back) and is archived: it stays readable and
searchable in Slack, and the timeline says when. A reopened incident's card moves to the incident channel, as for
any archived channel (``bot/incident_card.py``). Run with the 6-hourly maintenance (``bot/maintenance.py``); each
incident is archived once: its ``findings["channel_archived"]`` records the outcome, success or Slack's refusal.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot.slack_client import slack_error
from knowledge.models import Incident, TimelineEvent, utcnow
from skills.base import duration

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["archive_resolved"]

log = logging.getLogger("warroom.channels")

_MAX_PER_RUN = 200  # the next run goes on; Slack's Tier 2 limit (20 a minute) is waited out by the client


def archive_resolved(services: Services, *, now: dt.datetime | None = None) -> list[int]:
    """Archive the own channels of incidents resolved at least ``slack_archive_resolved_after_h`` hours before
    ``now``; return the ids of the incidents whose channel was archived (or found archived already)."""
    after_h = services.settings.slack_archive_resolved_after_h
    if not after_h:
        return []
    now = now or utcnow()
    with services.db.session() as s:
        rows = s.execute(select(Incident.id, Incident.channel_id, Incident.resolved_at, Incident.findings).where(
            Incident.dedicated_channel.is_(True), Incident.status == "resolved", Incident.channel_id.is_not(None),
            Incident.resolved_at <= now - dt.timedelta(hours=after_h)).order_by(Incident.id)).all()
    due = [(i, str(ch), at) for i, ch, at, findings in rows if "channel_archived" not in (findings or {})]
    done: list[int] = []
    for incident_id, channel, resolved_at in due[:_MAX_PER_RUN]:
        secs = (now - resolved_at).total_seconds()
        ago = f"{int(secs // 86400)} days" if secs >= 2 * 86400 else duration(secs)
        from skills.postmortem import kb_url

        try:
            services.poster.post(channel, (
                f"Incident #{incident_id} was resolved {ago} ago: archiving this channel (it stays readable and "
                f"searchable). The postmortem: {kb_url(services.ctx, incident_id)}. If it is back, "
                f"`/incident reopen {incident_id}` reopens it in <#{services.settings.slack_incident_channel}>."))
            services.poster.archive(channel)
            outcome, text = "archived", f"Channel <#{channel}> archived, {ago} after the incident was resolved"
        except SlackApiError as exc:
            why = str(slack_error(exc) or "error")
            if why in ("already_archived", "is_archived"):
                outcome, text = "archived", f"Channel <#{channel}> was already archived"
            elif why in ("ratelimited",):
                break  # the next run goes on
            else:  # not_in_channel, missing_scope, cant_archive_general, ...: said once, not tried every run
                outcome, text = f"refused: {why}", f"Could not archive channel <#{channel}>: Slack said {why}"
                log.warning("incident #%s: could not archive its channel %s: %s", incident_id, channel, why)
        with services.db.session() as s:
            inc = s.get(Incident, incident_id)
            if inc is None:
                continue
            inc.findings = {**(inc.findings or {}), "channel_archived": {"at": now.isoformat(), "outcome": outcome}}
            s.add(TimelineEvent(incident_id=incident_id, at=now, kind="channel", text=text))
        if outcome == "archived":
            done.append(incident_id)
    if done:
        log.info("archived the channels of resolved incidents %s", done)
    return done
