"""Nobody acknowledged a new incident: remind in its card's thread and call the next people.

The triage of a new (or reopened) incident queues ``incident.ack_check`` with the delay its severity sets
(``Settings.ack_reminders``). When it runs and the incident is still ``open`` (nobody acknowledged, took,
mitigated or resolved it), the bot posts in the card's thread, mentioning (so notifying) people the router
ranks for this incident (on call and owners first) whom no earlier reminder called (when there is nobody new,
the same people again, as a pager repeats), with an *Acknowledge* button, writes a ``reminder`` event on the
timeline, and queues the next check, up to ``Settings.ack_reminder_max`` reminders. An acknowledged incident
stops the chain at the next check.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from knowledge.models import Incident, TimelineEvent, utcnow
from skills.base import Action, SkillResult

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.services import Services

__all__ = ["register", "queue_first_check", "reminded"]

KIND = "incident.ack_check"


def _reopenings(session: Session, incident_id: int) -> tuple[int, dt.datetime | None]:
    """How many times the incident was reopened, and when last: each opening gets its own reminders."""
    n, last = session.execute(select(func.count(), func.max(TimelineEvent.at)).where(
        TimelineEvent.incident_id == incident_id, TimelineEvent.kind.in_(("reopen", "reopened")))).one()
    return int(n or 0), last


def _queue(services: Services, incident_id: int, rnd: int, step: int, called: list[str], delay: float) -> None:
    """One check, once per (opening, step): the dedup key makes a repeated triage or retry queue nothing."""
    services.runner.submit(KIND, {"incident_id": incident_id, "step": step, "called": called},
                           f"ackcheck:{incident_id}:r{rnd}:{step}", delay_s=delay)


def reminded(s: Session, incident_id: int, status: str, per_severity: dict[int, float]) -> Incident | None:
    """The incident, if it is in ``status`` and its severity has a reminder delay; else None."""
    inc = s.get(Incident, incident_id)
    return inc if inc is not None and inc.status == status and inc.severity in per_severity else None


def queue_first_check(services: Services, incident_id: int) -> None:
    """After triage: the first check of an open incident, once per opening."""
    delays = services.settings.ack_reminders()
    with services.db.session() as s:
        inc = reminded(s, incident_id, "open", delays)
        if inc is None:
            return
        delay, (rnd, _) = delays[inc.severity], _reopenings(s, inc.id)
    _queue(services, incident_id, rnd, 1, [], delay)


def register(services: Services) -> None:
    """Register ``incident.ack_check`` on the runner."""
    from bot.handlers import deliver
    from skills.routing_engine import route

    def check(payload: dict[str, Any]) -> None:
        incident_id, step = int(payload["incident_id"]), int(payload.get("step", 1))
        called_before = [str(u) for u in payload.get("called") or []]
        delays = services.settings.ack_reminders()
        with services.db.session() as s:
            inc = reminded(s, incident_id, "open", delays)
            if inc is None:
                return  # acknowledged, taken, mitigated or resolved since: nothing to remind
            title, sev, service, card = inc.title, inc.severity, inc.service_name, (inc.channel_id, inc.card_ts)
            this_round, last = _reopenings(s, inc.id)
            reopened = last if this_round else None
            text, waited = f"{inc.title}. {inc.description or ''}"[:2000], utcnow() - (reopened or inc.created_at)
        decision = route(services.ctx, text=text, service=service, incident_id=incident_id, limit=6)
        fresh = [c for c in decision.candidates if c.user_id not in called_before][:2]
        again = [] if fresh else called_before[:2]  # nobody new: call the same people again, as a pager does
        minutes = max(1, int(waited.total_seconds() // 60))
        who = "; ".join(f"<@{c.user_id}> ({c.why})" for c in fresh)
        if fresh:
            ask = f" Calling {who}: please acknowledge, or say \"I'm on it\" here."
        elif again:
            ask = f" Nobody else to call; calling again {', '.join(f'<@{u}>' for u in again)}: please acknowledge."
        else:
            ask = f" Nobody to call{': ' + decision.fallback if decision.fallback else ''}."
        since = "it reopened" if reopened else "it opened"
        summary = (f"Reminder {step}: incident #{incident_id} (SEV{sev}) has not been acknowledged {minutes} min "
                   f"after {since}.{ask}")
        result = SkillResult(title=f"Incident #{incident_id}: {title[:100]}", summary=summary,
                             actions=(Action("incident:ack", "Acknowledge", str(incident_id), "primary"),),
                             data={"incident_id": incident_id})
        channel, card_ts = card
        deliver(services, result, {"channel": channel or services.settings.slack_incident_channel,
                                   "thread_ts": card_ts})
        with services.db.session() as s:  # after the post: a failed post is retried, not written down twice
            s.add(TimelineEvent(incident_id=incident_id, at=utcnow(), kind="reminder",
                                text=f"Reminder {step}: not acknowledged after {minutes} min"
                                + (f"; called {', '.join(f'<@{u}>' for u in [c.user_id for c in fresh] + again)}"
                                   if fresh or again else "")))
        if step >= services.settings.ack_reminder_max:
            return
        _queue(services, incident_id, this_round, step + 1, called_before + [c.user_id for c in fresh], delays[sev])

    services.runner.register(KIND, check)
