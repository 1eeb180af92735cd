"""``status``: is the bot alive, and what is open right now."""

from __future__ import annotations

import dataclasses
import re

from sqlalchemy import func, select

from knowledge import jobs
from knowledge.models import Incident, WebhookInbox
from skills.base import INCIDENT_REF, BaseSkill, Section, SkillContext, SkillRequest, SkillResult

__all__ = ["StatusSkill"]


class StatusSkill(BaseSkill):
    """Tell whether I am alive, how much work is queued, and which incidents are open."""

    name = "status"
    commands = ("/warroom status",)
    keywords = ("status", "are you alive", "open incidents", "what is open", "health")
    examples = ("@warroom status",)

    def score(self, text: str) -> float:
        """Keywords; "what is open right now?" / "are you alive?" are for me, not a knowledge-base question.
        A message about one incident ("status of #101") is the incident skill's."""
        if INCIDENT_REF.search(text):
            return 0.0
        if re.search(r"\b(what is open|what's open|open incidents|are you (alive|up)|(what is|what's|is anything|"
                     r"anything|is something|something) on fire|is anything (open|going on|down)|anything open)\b",
                     text, re.I):
            return 0.9
        return super().score(text)

    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        if request.source in ("mention", "dm") and request.incident_id is not None \
                and not re.search(r"\b(you|warroom|bot|open)\b", request.text, re.I):
            # "@warroom status" in an incident card's thread or channel: that incident's status
            from skills.incident import IncidentSkill

            return IncidentSkill().run(dataclasses.replace(request, text=f"status #{request.incident_id}",
                                                           source="command"), ctx)
        with ctx.db.session() as s:
            open_rows = s.execute(
                select(Incident.id, Incident.title, Incident.severity, Incident.status)
                .where(Incident.status.in_(("open", "acknowledged", "mitigated")))
                .order_by(Incident.severity, Incident.id).limit(10)
            ).all()
            n_open = s.scalar(select(func.count()).select_from(Incident)
                              .where(Incident.status.in_(("open", "acknowledged", "mitigated")))) or 0
            queue = jobs.counts(s)
            inbox = s.scalar(select(func.count()).select_from(WebhookInbox)
                             .where(WebhookInbox.status == "pending")) or 0
        waiting, failed = queue.get("queued", 0) + queue.get("running", 0), queue.get("failed", 0)
        lines = tuple(f"#{i} SEV{sev} [{st}] {title}" for i, title, sev, st in open_rows)
        if n_open > len(lines):
            lines += (f"... and {n_open - len(lines)} more: `/incident list`",)
        backlog = f"{waiting} job(s) in progress" + (f", {failed} failed" if failed else "")
        if inbox:
            backlog += f", {inbox} alert deliveries not yet processed"
        return SkillResult(
            title="warroom status",
            summary=f"I am up. {n_open} open incident(s); {backlog}.",
            fields=(("Open incidents", str(n_open)), ("Jobs in progress", str(waiting)), ("Jobs failed", str(failed)),
                    ("Alerts waiting", str(inbox))),
            sections=(Section("Open incidents", lines),) if lines else (),
            data={"open_incidents": n_open, "jobs": queue, "inbox_pending": inbox},
        )
