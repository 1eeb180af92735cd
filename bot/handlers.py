"""Job handlers: the work that Slack listeners and webhooks hand off, run by the worker pool.

Each handler is idempotent: the queue may run a job again after a crash.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from bot import metrics
from bot.render import cut, result_blocks, result_text
from bot.slack_client import SlackApiError, slack_error
from skills.base import SkillError, SkillRequest, SkillResult, incident_here

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["register_all", "deliver", "run_skill", "follow_up"]

log = logging.getLogger("warroom.handlers")


_HELP_WORDS = frozenset(("help", "?", "-h", "--help", "usage"))


def run_skill(services: Services, skill_name: str, request: SkillRequest) -> SkillResult:
    """Run one skill, turning its failures into a result a person can read."""
    skill = services.registry.get(skill_name)
    start = time.perf_counter()
    try:
        if request.source == "command" and skill_name != "help" and request.text.strip().lower() in _HELP_WORDS:
            # "/logs help" classified the word as a log line, "/similar help" searched for it: the command's help
            from skills.help import HelpSkill

            return HelpSkill.detail(skill, request)
        return skill.run(request, services.ctx)
    except SkillError as exc:
        return SkillResult(title=f"{skill_name}: cannot do that", summary=str(exc), ok=False, ephemeral=True)
    except Exception as exc:  # noqa: BLE001 - one place turns unexpected errors into an id + log line
        err_id = uuid.uuid4().hex[:8]
        metrics.SKILL_ERRORS.labels(skill=skill_name).inc()
        log.exception("skill %s failed [error id %s]: %s", skill_name, err_id, exc)
        return SkillResult(title=f"{skill_name} failed",
                           summary=f"Something went wrong on my side (error id `{err_id}`). "
                                   "The team can find it in the logs.", ok=False, ephemeral=True)
    finally:
        metrics.SKILL_LATENCY.labels(skill=skill_name).observe(time.perf_counter() - start)


# Slack's answers when the bot cannot post in the conversation a request came from.
_NOT_HERE = ("not_in_channel", "channel_not_found", "method_not_supported_for_channel_type")
# ... and when the conversation is gone for everyone.
_GONE = ("is_archived", "channel_not_found")


def deliver(services: Services, result: SkillResult, reply: dict[str, Any]) -> dict[str, Any] | None:
    """Post a result where the request came from: channel, thread or ephemeral; files and long
    detail go into the thread."""
    channel, user = reply.get("channel"), reply.get("user")
    if not channel:
        return None
    blocks, text = result_blocks(result), result_text(result)
    ephemeral = bool((result.ephemeral or reply.get("ephemeral")) and user)
    url = reply.get("response_url")
    try:
        if ephemeral:
            services.poster.ephemeral(channel, user, text, blocks)
            if result.detail:  # the long part (a runbook's text), also only for the asker: there is no thread
                services.poster.ephemeral(channel, user, cut(result.detail, 12000))
            return None
        # With a response_url (a slash command, a shortcut) the bot does not join a channel to answer there.
        resp = services.poster.post(channel, text, blocks, thread_ts=reply.get("thread_ts"), join=not url)
    except SlackApiError as exc:
        home = services.settings.slack_incident_channel
        if slack_error(exc) in _GONE and not url and result.data.get("incident_id") and channel != home:
            # The incident's own channel was archived or deleted: a reminder, a PagerDuty note, an update must
            # still reach people, so it goes to the incident channel (not into a thread it cannot reach).
            log.warning("%s is %s: posting %r in %s instead", channel, slack_error(exc), result.title[:80], home)
            channel, reply = home, {**reply, "channel": home, "thread_ts": None}
            resp = services.poster.post(home, text, blocks)
            incident_id = int(result.data["incident_id"])  # and the card follows (it moves on its next update)
            services.runner.submit("incident.card", {"incident_id": incident_id, "force": True},
                                   f"card:{incident_id}:{uuid.uuid4().hex}")
        elif not url or slack_error(exc) not in _NOT_HERE:
            raise
        else:  # A DM between two people, or a channel the bot is not in: Slack's response_url still reaches it.
            more = " (files and long detail are posted only where I am a member: `/invite @warroom`)" \
                if result.detail or result.attachments else ""
            services.poster.respond(url, text + more, blocks, ephemeral=ephemeral)
            return None
    thread = reply.get("thread_ts") or resp.get("ts")
    if result.detail:
        services.poster.post(channel, result.detail[:39000], thread_ts=thread)
    for att in result.attachments:
        services.poster.upload(channel, att.filename, att.content, att.title, thread_ts=thread)
    return resp


def follow_up(services: Services, result: SkillResult) -> None:
    """Queue what a result asks for: a card refresh, and follow-up jobs whose kind has a handler."""
    incident_id = result.data.get("refresh_card")
    if incident_id:
        services.runner.submit("incident.card", {"incident_id": int(incident_id)},
                               f"card:{incident_id}:{uuid.uuid4().hex}")
    for job in result.data.get("follow_up_jobs") or []:
        if job.get("kind") in services.runner.handlers:
            services.runner.submit(job["kind"], job.get("payload") or {}, job.get("dedup_key"),
                                   max_attempts=int(job.get("max_attempts") or 5),
                                   delay_s=float(job.get("delay_s") or 0.0))


def _request_from(payload: dict[str, Any]) -> SkillRequest:
    r = payload["request"]
    return SkillRequest(
        text=r.get("text", ""), source=r.get("source", "command"), user_id=r.get("user_id"),
        channel_id=r.get("channel_id"), thread_ts=r.get("thread_ts"), command=r.get("command"),
        incident_id=r.get("incident_id"), data=r.get("data") or {},
    )


def register_all(services: Services) -> None:
    """Register every job kind the bot knows."""

    def skill_run(payload: dict[str, Any]) -> None:
        request = _request_from(payload)
        if request.source in ("mention", "dm") and request.incident_id is None:
            # In an incident card's thread or an incident's own channel, the request is about that incident.
            here = incident_here(services.db, channel_id=request.channel_id, thread_ts=request.thread_ts)
            request = dataclasses.replace(request, incident_id=here) if here is not None else request
        name = payload.get("skill")
        if not name:
            skill, _score = services.registry.route(request.text, here=request.incident_id is not None)
            name = skill.name
        result = run_skill(services, name, request)
        deliver(services, result, payload.get("reply") or {})
        follow_up(services, result)

    def slack_action(payload: dict[str, Any]) -> None:
        action_id: str = payload["action_id"]
        skill_name = action_id.split(":", 1)[0]
        try:
            skill = services.registry.get(skill_name)
        except KeyError:
            log.warning("action %s names no skill", action_id)
            return
        handle = getattr(skill, "handle_action", None)
        if handle is None:
            return
        request = SkillRequest(text=payload.get("value", ""), source="action", user_id=payload.get("user"),
                               channel_id=payload.get("channel"), thread_ts=payload.get("message_ts"),
                               data=payload)
        try:
            result = handle(action_id, request, services.ctx)
        except SkillError as exc:
            result = SkillResult(title="Cannot do that", summary=str(exc), ok=False, ephemeral=True)
        if result is not None:
            # Not in the thread of an ephemeral message: nobody else can see it, so a thread there is lost.
            thread = None if payload.get("ephemeral_source") else payload.get("message_ts")
            deliver(services, result, {"channel": payload.get("channel"), "user": payload.get("user"),
                                       "thread_ts": thread, "response_url": payload.get("response_url")})
            follow_up(services, result)

    def events_limited(payload: dict[str, Any]) -> None:
        """Tell the incident channel that Slack held back events: what people said there may not have arrived."""
        import datetime as dt

        from skills.base import slack_clock

        since = slack_clock(dt.datetime.fromtimestamp(int(payload["minute"]), dt.UTC))
        text = (f":warning: Slack is holding back the events it sends warroom (since {since}). Mentions, messages, "
                "reactions and file uploads in Slack may not reach warroom while it lasts: repeat anything urgent "
                "as a slash command. Slash commands, buttons and alert webhooks are not affected. Slack does this "
                "when an app gets more than 30,000 events an hour from a workspace (is warroom in a very busy "
                "channel?) or fails to answer 5% of them; the app's Event Subscriptions page shows which.")
        services.poster.post(services.settings.slack_incident_channel, text)

    services.runner.register("skill.run", skill_run)
    services.runner.register("slack.events_limited", events_limited)
    services.runner.register("slack.action", slack_action)
    from bot import incident_jobs

    incident_jobs.register(services)
    __import__("bot.postmortem_jobs").postmortem_jobs.register(services)  # postmortem.draft (issue 9)
    __import__("bot.index_jobs").index_jobs.register(services)  # index.sync (issue 6)
    __import__("bot.runbook_jobs").runbook_jobs.register(services)  # runbook.execute (issue 8)
    __import__("bot.logs_slack").logs_slack.register(services)  # slack.file_shared (issue 4)
    __import__("bot.train_jobs").train_jobs.register(services)  # model.train (issue 10)
    __import__("bot.ack_reminders").ack_reminders.register(services)  # incident.ack_check
    __import__("bot.update_reminders").update_reminders.register(services)  # incident.update_check
    __import__("bot.shift_handover").shift_handover.register(services)  # oncall.plan, oncall.shift_change
    __import__("bot.app_home").app_home.register(services)  # slack.app_home
    __import__("bot.freeze_jobs").freeze_jobs.register(services)  # freeze.notice
    __import__("bot.pagerduty").pagerduty.register(services)  # pagerduty.sync (write-back)
    __import__("bot.maintenance").maintenance.register(services)  # maintenance.prune (retention)
    __import__("bot.noise_digest").noise_digest.register(services)  # alerts.noise_digest (weekly, per team)
