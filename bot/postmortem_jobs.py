"""Bot-side postmortem work: the ``postmortem.draft`` job and the job-submission hook for the skill.

``/incident resolve`` submits ``postmortem.draft`` with ``{"incident_id", "channel", "thread_ts"}``;
the handler drafts the postmortem (the skill reuses an unchanged draft, so a re-run after a crash
adds no version) and posts the summary, buttons and Markdown file in the incident channel.
(Publishing asks, through the result's ``follow_up_jobs``, for ``index.sync`` when a handler for it is
registered, so similar-incident search picks the published postmortem up.)
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from bot.handlers import deliver, follow_up, run_skill
from skills.base import SkillRequest

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["register"]

log = logging.getLogger("warroom.postmortem")


def register(services: Services) -> None:
    """Register ``postmortem.draft``."""

    def draft(payload: dict[str, Any]) -> None:
        try:
            incident_id = int(payload["incident_id"])
        except (KeyError, TypeError, ValueError):
            log.warning("postmortem.draft without a valid incident_id: %r", payload)
            return
        channel = payload.get("channel")
        request = SkillRequest(text=f"draft {incident_id}", source="job", channel_id=channel,
                               incident_id=incident_id, thread_ts=payload.get("thread_ts"))
        result = run_skill(services, "postmortem", request)
        if not result.ok:  # no user to show an ephemeral to: say it in the channel
            result = dataclasses.replace(result, ephemeral=False)
        deliver(services, result, {"channel": channel, "thread_ts": payload.get("thread_ts")})
        follow_up(services, result)

    services.runner.register("postmortem.draft", draft)
