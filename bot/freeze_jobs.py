"""A deploy freeze's start and end, told to the teams it covers (``freeze.notice``).

Setting a freeze (in Slack or through ``POST /api/v1/freezes``) queues (``knowledge.freezes.notice_jobs``), per
channel, one notice for when it starts (when that is later) and one for when it ends (when it has an end): the owning
team's channel for a freeze of its services, the incident channel for a freeze of every service. When a notice runs,
the freezes are read again: one lifted or cancelled before that moment, or whose start or end has moved since (set
again), is not told; the moved time has its own notice.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from knowledge.freezes import NOTICE as KIND
from knowledge.models import DeployFreeze

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["KIND", "register"]


def register(services: Services) -> None:
    from bot.handlers import deliver
    from skills.base import SkillResult, esc
    from skills.deploy_freeze import frozen_by

    def notice(payload: dict[str, Any]) -> None:
        at = dt.datetime.fromisoformat(str(payload["at"]))
        start = payload.get("edge") == "start"
        with services.db.session() as s:
            rows = [f for i in payload.get("freezes") or [] if (f := s.get(DeployFreeze, int(i))) is not None
                    and (f.starts_at if start else f.ends_at) == at  # moved since: its own notice tells it
                    and (f.lifted_at is None or f.lifted_at > at)]  # lifted or cancelled before: nothing to tell
            if not rows:
                return
            what = ("every service" if any(f.service is None for f in rows)
                    else ", ".join(esc(f.service or "") for f in rows[:10]))
            f = rows[0]
            if start:
                until = f"until {f.ends_at:%a %d %b %H:%M} UTC" if f.ends_at else "until lifted"
                text = (f":snowflake: Deploy freeze on {what} starts now, {until}"
                        + (f", set by {frozen_by(f)}" if f.created_by else "")
                        + (f": {esc(f.reason[:300])}" if f.reason else "")
                        + ". The deploy check says hold; `lift the freeze` ends it early.")
            else:
                text = f":sunny: The deploy freeze on {what} has ended: deploys are open again."
        deliver(services, SkillResult(title="Deploy freeze", summary=text), {"channel": payload["channel"]})

    services.runner.register(KIND, notice)
