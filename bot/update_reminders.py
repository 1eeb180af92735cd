"""Nobody has said where an incident stands for a while: ask for an update in its card's thread.

People outside the incident read its card and timeline. While an incident of a severity with a cadence
(``Settings.update_reminders``: SEV1 every 30 min, SEV2 every 60 min) is acknowledged, a quiet stretch as long
as its cadence gets one message in the card's thread that mentions the assignee, quotes the last update and
says how to post one. An update is what ``skills.handover.last_updates`` counts: a key moment (a note, "we're
failing over now", a pinned message, an alerting tool's note) or a change a person made (acknowledged,
re-rated, assigned, escalated, a runbook run); chat is not. After ``update_reminder_max`` reminders in a row
the bot stops asking (the last one says so) until the next update. An incident still ``open`` is the
acknowledgement reminders' business; a mitigated or resolved one needs no updates.

Every change of an incident refreshes its card, and the card job calls ``queue_update_check``: it works out
from the database when the next reminder is due (the last update or the last reminder, plus the cadence) and
queues one check for then, keyed by that time, so repeated refreshes, a retried job or a reopening land on the
same job, and an acknowledged incident has at most one pending check.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from bot.ack_reminders import reminded
from knowledge.models import Incident, TimelineEvent, utcnow
from skills.base import Action, SkillResult, duration, esc_keep_users, slack_clock
from skills.handover import last_updates
from skills.incident import roles_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.services import Services

__all__ = ["register", "queue_update_check", "KIND"]

KIND = "incident.update_check"
REMINDER = "update_reminder"  # its timeline kind (not an update itself)


def _next_due(s: Session, inc: Incident, cadence: float) -> tuple[dt.datetime, int, TimelineEvent | None]:
    """When the next reminder is due, how many reminders were posted since the last update, and that update."""
    last = last_updates(s, [inc.id]).get(inc.id)
    base = max(inc.created_at, last.at) if last is not None else inc.created_at
    n, latest = s.execute(select(func.count(), func.max(TimelineEvent.at)).where(
        TimelineEvent.incident_id == inc.id, TimelineEvent.kind == REMINDER, TimelineEvent.at > base)).one()
    due = max(base, latest or base) + dt.timedelta(seconds=cadence)
    snoozed = (inc.findings or {}).get("updates_snoozed_until")  # "snooze the update reminders for 30m"
    if isinstance(snoozed, str):
        try:
            due = max(due, dt.datetime.fromisoformat(snoozed))
        except ValueError:
            pass
    return due, int(n or 0), last


def _submit(services: Services, incident_id: int, due: dt.datetime) -> None:
    delay = max(0.0, (due - utcnow()).total_seconds())
    services.runner.submit(KIND, {"incident_id": incident_id}, f"updcheck:{incident_id}:{due.timestamp():.0f}",
                           delay_s=delay)


def queue_update_check(services: Services, incident_id: int) -> None:
    """After a change of the incident: queue the check for its next update reminder, if one is due at all."""
    cadence = services.settings.update_reminders()
    with services.db.session() as s:
        inc = reminded(s, incident_id, "acknowledged", cadence)
        if inc is None:
            return
        due, asked, _ = _next_due(s, inc, cadence[inc.severity])
    if asked < services.settings.update_reminder_max:
        _submit(services, incident_id, due)


def register(services: Services) -> None:
    """Register ``incident.update_check`` on the runner."""
    from bot.handlers import deliver

    def check(payload: dict[str, Any]) -> None:
        incident_id, now = int(payload["incident_id"]), utcnow()
        cadence = services.settings.update_reminders()
        with services.db.session() as s:
            inc = reminded(s, incident_id, "acknowledged", cadence)
            if inc is None:
                return  # not acknowledged yet, mitigated or resolved: the next change queues a check again
            every, most = cadence[inc.severity], services.settings.update_reminder_max
            due, asked, last = _next_due(s, inc, every)
            if asked >= most:
                return  # asked enough: the next update starts again
            if due > now + dt.timedelta(seconds=1):  # someone updated it since this check was queued
                _submit(services, incident_id, due)
                return
            quiet = (now - (last.at if last is not None else inc.created_at)).total_seconds()
            said = (f" The last one ({slack_clock(last.at)}): {esc_keep_users(' '.join(last.text.split())[:200])}"
                    if last is not None else " There has been none since it opened.")
            # comms first: posting updates is their job; then whoever is on it
            held = roles_of(inc)
            asked_of = list(dict.fromkeys(u for u in (held.get("comms"), held.get("commander")) if u))
            who = f"{', '.join(f'<@{u}>' for u in asked_of)}, please post" if asked_of else "Please post"
            final = asked + 1 >= most
            summary = (f"Incident #{inc.id} (SEV{inc.severity}, {inc.status}) has had no update for "
                       f"{duration(quiet)}.{said} {who} one here: `update: what we know, what we are trying, next "
                       f"update in {duration(every)}` (people following the incident read its card and timeline)."
                       + (" I will not ask again until the next update." if final else ""))
            title, card = inc.title, (inc.channel_id, inc.card_ts)
        result = SkillResult(title=f"Incident #{incident_id}: {title[:100]}", summary=summary,
                             actions=(Action("incident:resolve", "Resolve", str(incident_id)),),
                             data={"incident_id": incident_id})
        channel, card_ts = card
        deliver(services, result, {"channel": channel or services.settings.slack_incident_channel,
                                   "thread_ts": card_ts})
        with services.db.session() as s:  # after the post: a failed post is retried by the queue, not lost
            s.add(TimelineEvent(incident_id=incident_id, at=now, kind=REMINDER,
                                text=f"Asked for an update after {duration(quiet)} without one"))
        if not final:
            _submit(services, incident_id, now + dt.timedelta(seconds=every))

    services.runner.register(KIND, check)
