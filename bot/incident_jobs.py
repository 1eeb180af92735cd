"""Job handlers of the incident lifecycle: card, triage, and the timeline of channel messages."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import or_, select

from bot.ack_reminders import queue_first_check
from bot.incident_card import card_job
from bot.intake_worker import queue_card
from bot.slack_client import slack_error
from bot.update_reminders import queue_update_check
from bot.worker import is_transient
from knowledge.models import Incident, SlackMessage, TimelineEvent, utcnow
from knowledge.service_graph import related_open
from skills.base import SkillRequest, SkillResult, duration, esc, esc_keep_users
from skills.redact import mask_secrets
from skills.triage import run_triage

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["register", "KEY_REACTIONS", "ACK_REACTIONS"]

KEY_REACTIONS = ("pushpin", "round_pushpin", "star")
ACK_REACTIONS = ("eyes", "ack")  # on an incident's card: "I'm looking", i.e. acknowledge


def _incident_for(services: Services, channel: str | None, thread_ts: str | None) -> int | None:
    """The incident a channel message belongs to: its dedicated channel, or its card's thread."""
    if not channel:
        return None
    with services.db.session() as s:
        conds = [Incident.dedicated_channel.is_(True)]
        if thread_ts:
            conds.append(Incident.card_ts == thread_ts)
        return s.scalar(select(Incident.id).where(Incident.channel_id == channel, or_(*conds))
                        .order_by(Incident.id.desc()).limit(1))


def register(services: Services) -> None:
    """Register the incident job kinds on the runner."""

    def card(payload: dict[str, Any]) -> None:
        card_job(services, payload)
        # every change of an incident refreshes its card: when is an update due now? (no-op unless acknowledged)
        queue_update_check(services, int(payload["incident_id"]))

    def broadcast(payload: dict[str, Any]) -> None:
        """A status update (then the mitigation, the resolution) in the status channel, or to a follower of the
        incident by DM (``channel`` is their user id), with the incident's state and a link to its card."""
        from bot.handlers import deliver

        with services.db.session() as s:
            inc = s.get(Incident, int(payload["incident_id"]))
            if inc is None:
                return
            age = duration(((inc.resolved_at or utcnow()) - inc.created_at).total_seconds())
            head = f"SEV{inc.severity} · {inc.status} · {inc.service_name or 'unknown service'} · {age}"
            title, card = f"Incident #{inc.id}: {inc.title[:150]}", (inc.channel_id, inc.card_ts)
        user, said = payload.get("user"), esc_keep_users(str(payload.get("text") or "")[:1000])
        what = ({"update": "Update from", "mitigated": "Mitigated by", "resolved": "Resolved by",
                 "reopened": "Reopened by", "severity": "Severity changed by"}[str(payload["what"])]
                + (f" <@{user}>" if user else " the bot") + (f": {said}" if said else ""))
        link = services.poster.permalink(*card) if all(card) else None
        follow = f"\n<{link}|Follow the incident>" if link else ""
        deliver(services, SkillResult(title=title, summary=f"*{esc(head)}*\n{what}{follow}"),
                {"channel": payload["channel"]})

    def reminder(payload: dict[str, Any]) -> None:
        """A reminder someone set under the card ("remind me in 20m to ..."), now due: in the card's thread."""
        from bot.handlers import deliver

        with services.db.session() as s:
            inc = s.get(Incident, int(payload["incident_id"]))
            if inc is None:
                return
            where = {"channel": inc.channel_id or services.settings.slack_incident_channel, "thread_ts": inc.card_ts}
            state = f" (incident #{inc.id} is {inc.status} now)" if inc.status == "resolved" else ""
            incident_id = inc.id
        by = payload.get("by")
        said = (f":alarm_clock: {payload['mention']} reminder" + (f" from <@{by}>" if by and f"<@{by}>" !=
                                                                   payload["mention"] else "")
                + f": {esc_keep_users(str(payload.get('what') or ''))}{state}")
        deliver(services, SkillResult(title=f"Reminder for incident #{incident_id}", summary=said,
                                      data={"incident_id": incident_id}), where)

    def notice(payload: dict[str, Any]) -> None:
        """A line for the people on an incident, in its card's thread (a deploy made during it, ...)."""
        from bot.handlers import deliver

        with services.db.session() as s:
            inc = s.get(Incident, int(payload["incident_id"]))
            if inc is None or not inc.card_ts:
                return
            where = {"channel": inc.channel_id or services.settings.slack_incident_channel, "thread_ts": inc.card_ts}
            incident_id = inc.id
        deliver(services, SkillResult(title=f"Incident #{incident_id}", summary=str(payload.get("text") or "")[:3000],
                                      data={"incident_id": incident_id}), where)

    def invite(payload: dict[str, Any]) -> None:
        """People called into an incident's own channel ("bring in @alice"): one call each (Slack refuses a whole
        invitation for one person who cannot come); whoever cannot be invited is said in the channel and on the
        timeline. Slack out: the job retries."""
        from bot.handlers import deliver

        with services.db.session() as s:
            inc = s.get(Incident, int(payload["incident_id"]))
            if inc is None or not inc.channel_id:
                return
            channel, incident_id = inc.channel_id, inc.id
        failed: list[str] = []
        for user in [str(u) for u in payload.get("users") or []][:10]:
            try:
                services.poster.invite(channel, [user])
            except SlackApiError as exc:
                if is_transient(exc):
                    raise
                if slack_error(exc) not in ("already_in_channel", "cant_invite_self"):
                    failed.append(f"<@{user}> ({slack_error(exc) or 'Slack error'})")
        if failed:
            said = f"Could not invite {', '.join(failed)} to this channel: /invite them by hand."
            with services.db.session() as s:
                s.add(TimelineEvent(incident_id=incident_id, kind="invited", at=utcnow(), text=said[:2000]))
            deliver(services, SkillResult(title=f"Incident #{incident_id}", summary=said,
                                          data={"incident_id": incident_id}), {"channel": channel})

    def triage(payload: dict[str, Any]) -> None:
        incident_id = int(payload["incident_id"])
        run_triage(services.ctx, services.registry, incident_id)
        queue_first_check(services, incident_id)  # nobody acknowledges it: a reminder later (once per opening)
        with services.db.session() as s:
            ref = queue_card(s, incident_id, immediate_key=f"triage-{uuid.uuid4().hex[:8]}")
            # The open incidents it may cause or come from show it on their cards too (once, coalesced)
            inc = s.get(Incident, incident_id)
            refs = [ref] + [queue_card(s, r.incident_id, interval_s=services.settings.card_update_interval_s)
                            for r in (related_open(s, inc) if inc is not None else [])]
        services.runner.handoff([r for r in refs if r])

    def message(payload: dict[str, Any]) -> None:
        ev = payload["event"]
        channel, ts = ev.get("channel"), ev.get("ts")
        incident_id = _incident_for(services, channel, ev.get("thread_ts"))
        if incident_id is None or not ts:
            return
        with services.db.session() as s:
            if s.scalar(select(SlackMessage.id).where(SlackMessage.channel_id == channel, SlackMessage.ts == ts)):
                return  # already recorded (a retried job)
        link = services.poster.permalink(channel, ts)
        text = mask_secrets(str(ev.get("text", "")))[:20000]
        with services.db.session() as s:
            s.add(SlackMessage(channel_id=channel, ts=ts, thread_ts=ev.get("thread_ts"), user_id=ev.get("user"),
                               text=text, permalink=link, incident_id=incident_id))
            notes = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == incident_id,
                                                          TimelineEvent.kind == "note")).all()
            note = next((e for e in notes if (e.data or {}).get("ts") == ts), None)
            if note is not None:  # "@warroom note: ..." was handled first: that entry is this message
                note.permalink = link
                return
            s.add(TimelineEvent(incident_id=incident_id, at=utcnow(), kind="message", text=text[:2000],
                                actor=ev.get("user"), permalink=link, data={"ts": ts, "channel": channel}))

    def message_edit(payload: dict[str, Any]) -> None:
        """A recorded message was edited (its copy and its timeline entry take the new text, masked) or deleted
        (both go, and a note made from it: whoever deleted a pasted secret expects it gone from here too)."""
        ev = payload["event"]
        deleted = ev.get("subtype") == "message_deleted"
        changed = ev.get("message") or {}
        channel, ts = ev.get("channel"), ev.get("deleted_ts") if deleted else changed.get("ts")
        if not channel or not ts or changed.get("bot_id"):
            return
        with services.db.session() as s:
            msg = s.scalar(select(SlackMessage).where(SlackMessage.channel_id == channel, SlackMessage.ts == ts))
            if msg is None:
                return  # not a message of an incident
            incident_id, text = msg.incident_id, mask_secrets(str(changed.get("text", "")))[:20000]
            events = [e for e in s.scalars(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident_id, TimelineEvent.kind.in_(("message", "note"))))
                if (e.data or {}).get("ts") == ts]
            if deleted:
                for e in events:
                    s.delete(e)
                s.delete(msg)
            else:
                msg.text = text
                for e in events:
                    if e.kind == "message":
                        e.text = text[:2000]
        if incident_id is not None:
            services.runner.submit("incident.card", {"incident_id": incident_id}, f"card:{incident_id}:edit:{ts}:"
                                   f"{uuid.uuid4().hex[:8]}")

    def ack_by_reaction(ev: dict[str, Any], channel: str | None, ts: str | None) -> None:
        """:eyes: on an open incident's card acknowledges it, as its *Acknowledge* button does (once: a
        second reaction on an acknowledged incident says nothing)."""
        from bot.handlers import deliver, follow_up, run_skill

        with services.db.session() as s:
            inc = s.scalar(select(Incident).where(Incident.channel_id == channel, Incident.card_ts == ts))
            if inc is None or inc.status != "open" or not ev.get("user"):
                return
            incident_id = inc.id
        result = run_skill(services, "incident", SkillRequest(text=f"ack {incident_id}", source="action",
                                                               user_id=ev.get("user"), channel_id=channel))
        deliver(services, result, {"channel": channel, "user": ev.get("user"), "thread_ts": ts})
        follow_up(services, result)

    def marker(payload: dict[str, Any]) -> None:
        ev = payload["event"]
        item = ev.get("item") or {}
        channel = item.get("channel") or ev.get("channel_id")
        ts = item.get("ts") or (item.get("message") or {}).get("ts")
        if ev.get("type") == "reaction_added" and ev.get("reaction") in ACK_REACTIONS:
            ack_by_reaction(ev, channel, ts)
            return
        if ev.get("type") == "reaction_added" and ev.get("reaction") not in KEY_REACTIONS:
            return
        with services.db.session() as s:
            msg = s.scalar(select(SlackMessage).where(SlackMessage.channel_id == channel, SlackMessage.ts == ts))
            if msg is None or msg.key:
                return
            msg.key = True
            for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == msg.incident_id,
                                                           TimelineEvent.kind == "message")):
                if (e.data or {}).get("ts") == ts:
                    e.key = True

    def test_notice(payload: dict[str, Any]) -> None:
        """A tool's test notification (Grafana's contact point *Test*, PagerDuty's *Send Test Event*): say in the
        incident channel that it arrived, so whoever set the integration up sees it works; nothing is opened."""
        from bot.handlers import deliver
        from skills.base import SkillResult, esc

        tool = {"pagerduty": "PagerDuty", "alertmanager": "Alertmanager"}.get(payload["source"],
                                                                               payload["source"].capitalize())
        via = f" (contact point `{esc(payload['receiver'])}`)" if payload.get("receiver") else ""
        said = f": \"{esc(payload['summary'][:200])}\"" if payload.get("summary") else ""
        result = SkillResult(title=f"{tool} is connected", summary=(
            f":white_check_mark: Test notification from {tool}{via} received{said}. Its alerts will open incidents "
            "here; the test itself opened nothing."))
        deliver(services, result, {"channel": services.settings.slack_incident_channel})

    def still_firing(payload: dict[str, Any]) -> None:
        """An alert fires on after a person resolved its incident: say so in the card's thread, with what to do."""
        from bot.handlers import deliver
        from skills.base import Action, SkillResult

        with services.db.session() as s:
            inc = s.get(Incident, int(payload["incident_id"]))
            event = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id,
                                                          TimelineEvent.kind == "still_firing")
                              .order_by(TimelineEvent.id.desc())).first() if inc is not None else None
            if inc is None or event is None or inc.status != "resolved":
                return  # reopened meanwhile: nothing to tell
            said, window = event.text, int(services.settings.grouping_window_minutes)
            where = {"channel": inc.channel_id or services.settings.slack_incident_channel, "thread_ts": inc.card_ts}
            incident_id = inc.id
        result = SkillResult(title=f"Incident #{incident_id} is resolved, its alert is not", summary=(
            f":warning: {said}. If the fix did not hold, reopen it; if the alert only lags, nothing to do. Still "
            f"firing after {window} min, it opens a new incident."),
            actions=(Action("incident:reopen", "Reopen", str(incident_id)),), data={"incident_id": incident_id})
        deliver(services, result, where)

    services.runner.register("incident.card", card)
    def member_joined(payload: dict[str, Any]) -> None:
        """Someone joined an open incident's own channel (paged in, asked to help): they get, only for them,
        what `/incident status` says (state, roles, the latest of the timeline), so they need not scroll."""
        import dataclasses

        from bot.handlers import deliver, run_skill
        from skills.base import SkillRequest

        user, channel = str(payload.get("user") or ""), str(payload.get("channel") or "")
        with services.db.session() as s:
            inc = s.scalar(select(Incident).where(Incident.channel_id == channel, Incident.dedicated_channel.is_(True),
                                                  Incident.status != "resolved").limit(1))
            incident_id = inc.id if inc is not None else None
        if not user or incident_id is None:
            return
        result = run_skill(services, "incident", SkillRequest(text=f"status #{incident_id}", source="event",
                                                              user_id=user, channel_id=channel))
        if not result.ok:
            return
        deliver(services, dataclasses.replace(result, title=f"Catching up: {result.title}"[:150], ephemeral=True),
                {"channel": channel, "user": user})

    services.runner.register("incident.broadcast", broadcast)
    services.runner.register("slack.member_joined_channel", member_joined)
    services.runner.register("incident.reminder", reminder)
    services.runner.register("incident.still_firing", still_firing)
    services.runner.register("intake.test", test_notice)
    services.runner.register("incident.triage", triage)
    services.runner.register("incident.invite", invite)
    services.runner.register("incident.notice", notice)
    services.runner.register("slack.message", message)
    services.runner.register("slack.message_edit", message_edit)
    services.runner.register("slack.reaction_added", marker)
    services.runner.register("slack.pin_added", marker)
