"""The bot's Home tab: what is on the person who opens it, at a glance.

Slack sends ``app_home_opened`` when someone opens the app's Home tab; the listener queues ``slack.app_home``
and this job publishes (``views.publish``) a view built from the same answers the commands give: whether they
are on call (``/oncall``), the incidents on them (``/incident list mine``), those they follow (``/incident list
following``), every open incident (``/incident list``), their open postmortem action items (``/postmortem
actions mine``), the changes of the last 24 hours on their team's services ("recent changes on my team's
services"), its noisiest alerts of the week ("noisiest alerts on my team's services") and the deploy freezes
holding on them ("is there a deploy freeze on my team's services?"). Each part is the
skill's own result rendered as blocks, so the tab and the commands never disagree; one part failing leaves a line
saying so, and the others still show.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.render import result_blocks
from knowledge.people import oncall_by_team
from skills.base import SkillError, SkillRequest, SkillResult

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["register", "home_view"]

log = logging.getLogger("warroom.app_home")
# (skill, command text, heading): each part of the tab is that command's answer for the person
PARTS = (("incident", "list mine", "On you"), ("incident", "list following", "You follow"),
         ("incident", "list", "Open incidents"), ("postmortem", "actions mine", "Your action items"),
         ("changes", "recent changes on my team's services", "Changes on your team's services (24 h)"),
         ("status", "noisiest alerts on my team's services", "Noisiest alerts on your team's services (7 days)"),
         ("changes", "is there a deploy freeze on my team's services?", "Deploy freezes on your team's services"))


def _on_call(services: Services, user: str) -> str:
    with services.db.session() as s:
        mine = [row for row in oncall_by_team(session=s) if any(uid == user for uid, _ in row.people)]
    if not mine:
        return "You are not on call now."
    return "You are on call for " + ", ".join(
        f"*{r.team}*" + (f" until {r.until:%a %d %b %H:%M} UTC" if r.until else "") for r in mine) + "."


def home_view(services: Services, user: str) -> dict[str, Any]:
    """The Home tab view for ``user`` (at most 100 blocks, Slack's limit for a view)."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": "warroom"}},
                                    {"type": "section", "text": {"type": "mrkdwn", "text": _on_call(services, user)}}]
    for skill_name, text, heading in PARTS:
        request = SkillRequest(text=text, source="command", user_id=user)
        try:
            result = services.registry.get(skill_name).run(request, services.ctx)
        except SkillError as exc:
            result = SkillResult(title=heading, summary=str(exc))
        except Exception:  # noqa: BLE001 - one part failing leaves a note; the tab still shows the rest
            log.exception("home tab part %s failed", heading)
            result = SkillResult(title=heading, summary="This part could not be loaded; try again later.")
        part = result_blocks(SkillResult(title=heading, summary=result.summary, sections=result.sections))
        blocks += [{"type": "divider"}, *part]
    return {"type": "home", "blocks": blocks[:100]}


def register(services: Services) -> None:
    """Register ``slack.app_home`` on the runner."""

    def publish(payload: dict[str, Any]) -> None:
        user = str(payload["user"])
        services.poster.publish_home(user, home_view(services, user))

    services.runner.register("slack.app_home", publish)
