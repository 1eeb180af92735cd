"""``status``: is the bot alive, and what is open right now."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from sqlalchemy import func, or_, select

from knowledge import jobs
from knowledge.models import Incident, Job, WebhookInbox, utcnow
from skills.base import INCIDENT_REF, BaseSkill, Section, SkillContext, SkillRequest, SkillResult, duration, esc
from skills.firing import AFFECTED_ASKED, FIRING_ASKED, NOISE_ASKED, affected, firing, noise
from skills.redact import mask_secrets

__all__ = ["StatusSkill"]


def _gist(error: str | None) -> str:
    """What a job's error says: its first line and, when there are more, its last (Slack's answer)."""
    lines = [ln.strip() for ln in (error or "").strip().splitlines() if ln.strip()]
    if not lines:
        return "no error recorded"
    return lines[0] if len(lines) == 1 else f"{lines[0]} … {lines[-1]}"


# "is ingest healthy?", "is payments-api ok?", "how is checkout-web doing?", "health of kafka"
_HEALTH = re.compile(r"^\W*(?:is|are)\s+(?:the\s+)?[\w.-]+(?:\s+(?:and|&)\s+[\w.-]+)*(?:\s+(?:team|service)s?)?"
                     r"\s+(?:healthy|ok|okay|up|fine|"
                     r"alright|all\s+right|working|down|broken)\W*$|^\W*how(?:'s|\s+is|\s+are)\s+(?:the\s+)?[\w.-]+"
                     r"(?:\s+(?:and|&)\s+[\w.-]+)*(?:\s+(?:doing|looking))?\W*$|\bhealth\s+of\b"
                     # "what's happening with payments?", "anything going on with ingest?", "how long has payments-api
                     # been down?", "who's working on the payments outage?" (they went to the knowledge base)
                     r"|^\W*what(?:'s|\s+is)\s+(?:happening|going\s+on|up|wrong)\s+(?:with|on|in|at)\s+(?:the\s+)?[\w.-]+"
                     r"|^\W*(?:is\s+there\s+)?anything\s+(?:going\s+on|happening|wrong|up|broken)\s+(?:with|on|in)\s+"
                     r"|^\W*how\s+long\s+(?:has|have)\s+(?:the\s+)?[\w.-]+\s+been\s+(?:down|broken|failing|degraded|out"
                     r"|erroring|slow)"
                     r"|^\W*who(?:'s|\s+is|\s+are)\s+(?:working\s+on|handling|looking\s+at|fixing)\s+(?:the\s+)?[\w.-]+\s+"
                     r"(?:outage|incident|issue|problem|errors?)s?\W*$", re.I)


class StatusSkill(BaseSkill):
    """Tell whether I am alive, how much work is queued, and which incidents are open."""

    name = "status"
    commands = ("/warroom status",)
    keywords = ("status", "are you alive", "open incidents", "what is open", "health")
    examples = ("@warroom status", "@warroom which alerts are the noisiest this week?",
                "@warroom what's happening with payments?")

    def score(self, text: str) -> float:
        """Keywords; "what is open right now?" / "are you alive?" are for me, not a knowledge-base question.
        A message about one incident ("status of #101") is the incident skill's."""
        if FIRING_ASKED.match(text) or AFFECTED_ASKED.match(text) or NOISE_ASKED.match(text):  # "what alerts are
            return 0.9  # firing (for #113)?", "which alerts are the noisiest?"
        if INCIDENT_REF.search(text):
            return 0.0
        if _HEALTH.search(text):  # "is ingest healthy?", "how is payments-api doing?"
            return 0.9
        if re.search(r"\b(what is open|what'?s open|open incidents|are you (alive|up)|(what is|what's|is anything|"
                     r"anything|is something|something) on fire|is anything (open|going on|down)|anything open"
                     r"|what(?:'s| is| are)? (?:broken|down|failing|burning)(?= right now\W*$| now\W*$|\W*$)"
                     # "anything burning?", "is anything broken right now?" (the knowledge base's "I found nothing")
                     r"|^\W*(?:is\s+)?(?:any|some)thing\s+(?:burning|broken|down|failing|exploding)(?:\s+(?:right\s+)?"
                     r"now|\s+today)?\W*$"
                     r"|^\W*what(?:'s| is) (?:going on|happening|up)(?: right now| now| today)?\W*$"
                     r"|^\W*status of (?:all|the) (?:open )?incidents\W*$"
                     # "is there an incident for payments-api?", "are we having an outage?", "is ingest having an
                     # incident?", "is anyone working on the payments issue?" (the knowledge base's passages)
                     r"|^\W*(?:is|are)\s+(?:there|we)\s+(?:having\s+)?(?:an?\s+|any\s+)?(?:open\s+|ongoing\s+|active\s+)?"
                     r"(?:incidents?|outages?)\b"
                     r"|^\W*is\s+[\w.-]+\s+(?:having|in|down\s+in)\s+(?:an?\s+)?(?:incident|outage)\b"
                     r"|^\W*is\s+(?:any|some)(?:one|body)\s+(?:working|looking)\s+(?:on|at|into)\s+(?:the\s+)?[\w.-]+\s+"
                     r"(?:issue|incident|problem|outage)s?\b)",
                     text, re.I):
            return 0.9
        return super().score(text)

    @staticmethod
    def _health(ctx: SkillContext, scope: Any, listed: SkillResult) -> SkillResult:
        """"Is ingest healthy?": its open incidents, and the risk its metrics last gave (it went to the knowledge
        base, which answered with a postmortem)."""
        from knowledge.risk_store import recent_readings

        now, lines = utcnow(), []
        with ctx.db.session() as s:
            for name in sorted(scope.services)[:10]:
                last = recent_readings(s, service_name=name, limit=1)
                if last and now - last[-1].created_at <= dt.timedelta(hours=24):
                    r = last[-1]
                    lines.append(f"{esc(name)}: {r.band} ({r.probability * 100:.0f}%), "
                                 f"{duration((now - r.created_at).total_seconds())} ago via {esc(r.source)}")
        n_open = sum(len(sec.lines) for sec in listed.sections)
        verdict = (f"{n_open} open incident(s)" if n_open else "no open incident") + f" {scope.label}"
        risk = (Section("Failure risk from the latest metrics (24 h)", tuple(lines)),) if lines else (
            Section("Failure risk", ("no metrics in the last 24 hours: `/risk <service> cpu=.. mem=..` assesses "
                                     "them",)),)
        return SkillResult(title=f"Health of {scope.label.removeprefix('on ')}",
                           summary=verdict[:1].upper() + verdict[1:] + ".",
                           sections=listed.sections + risk)

    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        if request.source in ("mention", "dm", "command") and NOISE_ASKED.match(request.text):  # "the noisiest
            from knowledge.people import asker_scope  # alerts this week" ("command": the Home tab's part)

            with ctx.db.session() as s:  # "on my team's services": the asker's team's
                scope = asker_scope(session=s, text=request.text, user_id=request.user_id)
                return noise(s, text=request.text, services=set(scope.services) if scope else None,
                             label=scope.label if scope else "")
        if request.source in ("mention", "dm") and (FIRING_ASKED.match(request.text)
                                                   or AFFECTED_ASKED.match(request.text)):
            from knowledge.people import scope_in_text

            with ctx.db.session() as s:
                if AFFECTED_ASKED.match(request.text):
                    return affected(s)
                ref = INCIDENT_REF.search(request.text)  # "... for #113", or "for this" under its card
                here = request.incident_id if re.search(r"\b(?:this|it|here)\b", request.text, re.I) else None
                about = int(ref.group(1)) if ref else here
                if about is not None:
                    return firing(s, incident_id=about)
                scope = scope_in_text(session=s, text=request.text)
                return firing(s, services=set(scope.services) if scope else None,
                              label=scope.label if scope else "")
        if request.source in ("mention", "dm"):  # "list open incidents for payments": that team's, not all
            from knowledge.people import scope_in_text
            from skills.incident import IncidentSkill

            with ctx.db.session() as s:
                scope = scope_in_text(session=s, text=request.text)
            if scope is not None:
                listed = IncidentSkill().run(dataclasses.replace(request, text=f"list {' '.join(scope.names)}",
                                                                 source="command"), ctx)
                return self._health(ctx, scope, listed) if _HEALTH.search(request.text) else listed
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
            now = utcnow()
            queue = jobs.counts(s, due_before=now)  # reminders planned for later are not work in progress
            # how far behind the workers are: the job due longest ago and still not taken
            oldest = s.scalar(select(func.min(Job.run_after)).where(Job.status == "queued", Job.run_after <= now))
            inbox = s.scalar(select(func.count()).select_from(WebhookInbox)
                             .where(WebhookInbox.status == "pending")) or 0
            # What went wrong lately, so whoever asks sees why (a channel the bot cannot post in, ...)
            since = utcnow() - dt.timedelta(hours=24)
            recent = s.execute(select(Job.kind, Job.status, Job.last_error).where(
                Job.last_error.is_not(None), Job.created_at >= since,
                or_(Job.status == "failed", Job.status == "queued")).order_by(Job.id.desc()).limit(3)).all()
            bad_inbox = s.scalar(select(func.count()).select_from(WebhookInbox).where(
                WebhookInbox.status == "error", WebhookInbox.received_at >= since)) or 0
            # scale-out: jobs a replica's sweeper had to send to Redis again (the broker lost them, a worker died)
            resent = s.scalar(select(func.count()).select_from(Job).where(
                Job.resent_at >= now - dt.timedelta(hours=1))) or 0
        waiting, failed = queue.get("queued", 0) + queue.get("running", 0), queue.get("failed", 0)
        lines = tuple(f"#{i} SEV{sev} [{st}] {title}" for i, title, sev, st in open_rows)
        if n_open > len(lines):
            lines += (f"... and {n_open - len(lines)} more: `/incident list`",)
        backlog = f"{waiting} job(s) in progress" + (f", {failed} failed" if failed else "")
        waited = (now - oldest).total_seconds() if oldest is not None else None
        if waited is not None:
            span = f"{waited:.0f} s" if waited < 60 else duration(waited)
            backlog += f" (the oldest waiting for a worker for {span})"
        if inbox:
            backlog += f", {inbox} alert deliveries not yet processed"
        problems = tuple(f"`{kind}` ({'gave up' if st == 'failed' else 'retrying'}): "
                         f"{esc(mask_secrets(_gist(err))[:400])}" for kind, st, err in recent)
        if bad_inbox:
            problems += (f"{bad_inbox} alert deliveries could not be processed (kept in the inbox, status error)",)
        if resent:
            problems += (f"{resent} job(s) sent to the job broker again in the last hour: Redis lost them or their "
                         "worker died (nothing is lost; see `warroom_jobs_resent_total`)",)
        sections = (Section("Open incidents", lines),) if lines else ()
        if problems:
            sections += (Section("Recent failures", problems),)
        return SkillResult(
            title="warroom status",
            summary=f"I am up. {n_open} open incident(s); {backlog}.",
            fields=(("Open incidents", str(n_open)), ("Jobs in progress", str(waiting)), ("Jobs failed", str(failed)),
                    ("Alerts waiting", str(inbox))),
            sections=sections,
            data={"open_incidents": n_open, "jobs": queue, "inbox_pending": inbox, "oldest_wait_s": waited,
                  "jobs_resent_last_hour": resent},
        )
