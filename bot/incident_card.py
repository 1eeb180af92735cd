"""The incident card: one message per incident, rendered from the knowledge base, updated in place.

Everything that came from outside (alert text, titles, findings) is escaped; only user mentions
(``<@U123>``) survive, so alert text can never ping ``@channel``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import unicodedata
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from bot.render import cut, esc, unique_action_ids, whole_lines
from bot.slack_client import SlackApiError, slack_error
from bot.worker import is_transient
from knowledge.changes import for_incident
from knowledge.models import Alert, Incident, TimelineEvent, utcnow
from knowledge.service_graph import related_lines, related_open
from skills.base import esc_keep_users, no_bidi, slack_clock
from skills.changes import change_line
from skills.incident import MAX_LINKS, ROLES, eta_text, link_text, roles_of

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["render_card", "card_job", "esc_keep_users"]

log = logging.getLogger("warroom.incident_card")

_STATUS_ICON = {"open": ":red_circle:", "acknowledged": ":large_orange_circle:", "mitigated": ":large_yellow_circle:",
                "resolved": ":white_check_mark:"}
_CARD_LOCKS: dict[int, threading.Lock] = {}
_CARD_LOCKS_GUARD = threading.Lock()




def _finding_blocks(name: str, f: dict[str, Any]) -> list[dict[str, Any]]:
    if "error" in f:
        return [{"type": "context", "elements": [{"type": "mrkdwn", "text": f":warning: {esc(f['error'])[:300]}"}]}]
    lines = [esc_keep_users(x) for x in f.get("lines", [])][:15]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": cut(
        f"*{esc(f.get('heading') or name)}*\n" + "\n".join(lines), 2900)}}]
    actions = f.get("actions") or []
    if actions:
        blocks.append({"type": "actions", "block_id": f"f:{name}"[:255], "elements": unique_action_ids([
            {"type": "button", "action_id": a["action_id"], "value": str(a["value"])[:2000],
             "text": {"type": "plain_text", "text": no_bidi(str(a["label"]))[:75]},
             **({"style": a["style"]} if a.get("style") else {})} for a in actions[:5]])})
    return blocks


# Links an alert brings, by where they lead: the tool's own fields, then the usual annotations.
_LINK_KEYS = (("generatorURL", "Alert source"), ("panelURL", "Grafana panel"), ("dashboardURL", "Grafana dashboard"),
              ("html_url", "PagerDuty incident"), ("dashboard_url", "Dashboard"), ("dashboard", "Dashboard"),
              ("grafana_url", "Dashboard"), ("runbook_url", "Runbook (from the alert)"))
_SAFE_URL = re.compile(r"^https?://[^\s<>|]{1,1900}$")


def _links(annotations: list[dict[str, Any]], limit: int = 6) -> list[str]:
    """Slack links to what the incident's alerts point at (http(s) only, nothing that could break the markup),
    each URL once, at most ``limit``."""
    seen: dict[str, str] = {}
    for ann in annotations:
        for key, label in _LINK_KEYS:
            url = ann.get(key)
            if isinstance(url, str) and _SAFE_URL.match(url.strip()) and url.strip() not in seen:
                seen[url.strip()] = label
    return [f"<{url.replace('&', '&amp;')}|{label}>" for url, label in list(seen.items())[:limit]]


def render_card(services: Services, incident_id: int) -> tuple[str, list[dict[str, Any]]] | None:
    """Text and blocks of an incident's card."""
    with services.db.session() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            return None
        firing = s.scalar(select(func.count()).select_from(Alert)
                          .where(Alert.incident_id == incident_id, Alert.status == "firing")) or 0
        total = s.scalar(select(func.count()).select_from(Alert).where(Alert.incident_id == incident_id)) or 0
        occurrences = s.scalar(select(func.coalesce(func.sum(Alert.occurrences), 0))
                               .where(Alert.incident_id == incident_id)) or 0
        grouped = s.scalar(select(TimelineEvent.text).where(TimelineEvent.incident_id == incident_id,
                                                            TimelineEvent.kind == "grouped")
                           .order_by(TimelineEvent.id.desc()).limit(1))
        recent = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == incident_id,
                                                       TimelineEvent.kind.not_in(("grouped", "card", "message")))
                           .order_by(TimelineEvent.id.desc()).limit(5)).all()
        findings = dict(inc.findings or {})
        title = f"{_STATUS_ICON.get(inc.status, '')} #{inc.id} SEV{inc.severity} {no_bidi(inc.title)}"
        intake = findings.get("intake") or {}
        service = esc(inc.service_name or "unknown")
        if intake.get("unknown_service"):
            service += " _(not in the service catalogue)_"
        severity = f"SEV{inc.severity}"
        if intake.get("unread_severity"):
            severity += (f" _(the alert said `{esc(intake['unread_severity'])}`, a level I do not know: "
                         f"`/incident sev <1-4> {inc.id}` sets it)_")
        fields = [("Status", inc.status), ("Severity", severity), ("Service", service),
                  ("Assignee", f"<@{inc.assignee}>" if inc.assignee else "nobody yet"),
                  ("Alerts", (f"{firing} firing / {total} ({occurrences} received)" if total else "none linked")
                   + (f"; Alertmanager left out up to {intake['truncated_alerts']} more (its `max_alerts`)"
                      if intake.get("truncated_alerts") else ""))]
        if impact := (findings.get("impact") or {}).get("text"):  # who or what it hurts ("impact: ...")
            fields.append(("Impact", cut(esc(str(impact)), 500)))
        if inc.status != "resolved" and (eta := eta_text(inc)):  # when it should be over ("eta: 30 min")
            fields.append(("ETA", eta))
        if links := findings.get("links"):  # dashboards, the ticket, the bridge ("dashboard: https://...")
            fields.append(("Links", cut(" · ".join(link_text(x) for x in links[:MAX_LINKS]), 1500)))
        roles = {r: u for r, u in roles_of(inc).items() if r != "commander"}
        if roles:  # the commander is the assignee, shown above
            fields.append(("Roles", " · ".join(f"{ROLES[r]} <@{u}>" for r, u in roles.items())))
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]},
        ]
        if inc.description:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": cut(esc(inc.description), 1500)}})
        links = _links([a or {} for a in s.scalars(select(Alert.annotations).where(Alert.incident_id == incident_id)
                                                   .order_by(Alert.id).limit(20))])
        if links:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(links)}]})
        if grouped:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(esc(grouped), 300)}]})
        order = [sk.name for sk in services.registry.skills]
        for name in sorted((k for k, v in findings.items() if isinstance(v, dict) and ("heading" in v or "error" in v)),
                           key=lambda n: order.index(n) if n in order else len(order)):
            blocks.extend(_finding_blocks(name, findings[name]))
        related = related_lines(related_open(s, inc))
        if related:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": cut(
                "*Related open incidents* (service dependencies)\n" + "\n".join(esc(x) for x in related), 2900)}})
        near = for_incident(s, inc)  # the first suspects: what changed on it, or on what it depends on
        if near:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": whole_lines(
                ["*Changes* (its service and what it depends on, from 6h before it opened)",
                 *(change_line(n, inc.created_at) for n in near)], 2900)}})
        if recent:
            lines = [f"{slack_clock(e.at)} {esc_keep_users(e.text)[:150]}" for e in reversed(recent)]
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": whole_lines(lines, 2000)}]})
        buttons = []
        if inc.status != "resolved":
            if inc.status == "open":
                buttons.append({"type": "button", "action_id": "incident:ack", "value": str(inc.id),
                                "text": {"type": "plain_text", "text": "Acknowledge"}})
            buttons.append({"type": "button", "action_id": "incident:resolve", "value": str(inc.id), "style": "primary",
                            "text": {"type": "plain_text", "text": "Resolve"}})
            buttons.append({"type": "button", "action_id": "incident:follow", "value": str(inc.id),
                            "text": {"type": "plain_text", "text": "Follow"}})
            if inc.severity > 1:  # the severity it was clicked at: a double click escalates once
                buttons.append({"type": "button", "action_id": "incident:escalate", "value": f"{inc.id}:{inc.severity}",
                                "text": {"type": "plain_text", "text": f"Escalate to SEV{inc.severity - 1}"}})
        if buttons:
            blocks.append({"type": "actions", "block_id": "incident", "elements": buttons})
        text = f"#{inc.id} SEV{inc.severity} [{inc.status}] {inc.title}"[:300]
    return esc(text), blocks[:50]


def _lock(incident_id: int) -> threading.Lock:
    with _CARD_LOCKS_GUARD:
        return _CARD_LOCKS.setdefault(incident_id, threading.Lock())


def card_job(services: Services, payload: dict[str, Any]) -> None:
    """Post the card, or update it in place; skip the Slack call when nothing changed."""
    incident_id = int(payload["incident_id"])
    with _lock(incident_id):
        rendered = render_card(services, incident_id)
        if rendered is None:
            return
        text, blocks = rendered
        digest = hashlib.sha256(json.dumps(blocks, sort_keys=True).encode()).hexdigest()
        with services.db.session() as s:
            inc = s.get(Incident, incident_id)
            assert inc is not None
            channel, ts, last = inc.channel_id, inc.card_ts, inc.card_hash
        if ts and last == digest and not payload.get("force"):  # forced: its channel is gone, find out now
            return
        _post_or_update(services, incident_id, channel, ts, text, blocks, digest)
        _topic(services, incident_id)  # under the lock: two refreshes at once must not both set the same topic


def _topic(services: Services, incident_id: int) -> None:
    """An incident's own channel shows its state in the topic (severity, status, service, who is on it), for
    whoever joins; set when it changes. Slack refusing it (a missing scope) is logged, the card stands."""
    with services.db.session() as s:
        inc = s.get(Incident, incident_id)
        if inc is None or not inc.dedicated_channel or not inc.channel_id:
            return
        who = f"<@{inc.assignee}>" if inc.assignee else "nobody yet"
        topic = (f"SEV{inc.severity} · {inc.status} · {inc.service_name or 'unknown service'} · on it: {who} · "
                 f"#{inc.id} {inc.title}")[:250]
        if (inc.findings or {}).get("channel_topic") == topic:
            return
        channel = inc.channel_id
    try:
        services.poster.set_topic(channel, topic)
    except SlackApiError as exc:
        log.warning("could not set the topic of %s: %s", channel, slack_error(exc))
        return
    with services.db.session() as s:
        inc = s.get(Incident, incident_id)
        if inc is not None:
            inc.findings = {**(inc.findings or {}), "channel_topic": topic}


def _post_or_update(services: Services, incident_id: int, channel: str | None, ts: str | None, text: str,
                    blocks: list[dict[str, Any]], digest: str) -> None:
    """Post the card the first time, else update it in place; remember what was sent."""
    if channel is None:
        channel = _open_channel(services, incident_id)
    if ts is None:
        resp = services.poster.post(channel, text, blocks)
        with services.db.session() as s:
            inc = s.get(Incident, incident_id)
            assert inc is not None
            inc.card_ts, inc.card_hash = str(resp["ts"]), digest
        link = services.poster.permalink(channel, str(resp["ts"]))
        with services.db.session() as s:
            s.add(TimelineEvent(incident_id=incident_id, kind="card", text="Incident card posted",
                                permalink=link))
    else:
        try:
            services.poster.update(channel, ts, text, blocks)
        except SlackApiError as exc:
            if slack_error(exc) not in _CARD_GONE + _CHANNEL_GONE:
                raise
            _repost(services, incident_id, channel, text, blocks, digest, str(slack_error(exc)))
            return
        with services.db.session() as s:
            inc = s.get(Incident, incident_id)
            assert inc is not None
            inc.card_hash = digest


# Slack's answers when the card cannot be updated where it was: someone deleted the message, or archived (or
# deleted) its channel. Retrying cannot help; the card is posted again, in the incident channel if need be.
_CARD_GONE = ("message_not_found", "cant_update_message")
_CHANNEL_GONE = ("is_archived", "channel_not_found")


def _repost(services: Services, incident_id: int, channel: str, text: str, blocks: list[dict[str, Any]],
            digest: str, why: str) -> None:
    """Post the card anew: in its channel when only the message is gone, else in the incident channel; the
    incident follows it there (reminders, answers in its thread) and the timeline says what happened."""
    home = services.settings.slack_incident_channel
    where = home if why in _CHANNEL_GONE else channel
    if where == channel == home and why in _CHANNEL_GONE:
        raise RuntimeError(f"the incident channel {home} is {why}: the card cannot be posted anywhere")
    try:
        resp = services.poster.post(where, text, blocks)
    except SlackApiError as exc:
        if slack_error(exc) not in _CHANNEL_GONE or where == home:
            raise
        where, why = home, str(slack_error(exc))
        resp = services.poster.post(where, text, blocks)
    gone = {"is_archived": "was archived", "channel_not_found": "was deleted"}.get(why, f"refused ({why})")
    note = ("The card was deleted in Slack; posted it again" if where == channel else
            f"The incident's channel <#{channel}> {gone}; the card is now in <#{where}>")
    log.warning("incident #%s: card update refused (%s); %s", incident_id, why, note)
    link = services.poster.permalink(where, str(resp["ts"]))
    with services.db.session() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        inc.card_ts, inc.card_hash = str(resp["ts"]), digest
        if where != channel:
            inc.channel_id, inc.dedicated_channel = where, False
        s.add(TimelineEvent(incident_id=incident_id, kind="card", at=utcnow(), text=note[:2000], permalink=link))


def _open_channel(services: Services, incident_id: int) -> str:
    """The card's channel: a new channel per incident, or the configured incident channel."""
    settings = services.settings
    with services.db.session() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        if inc.channel_id:
            return inc.channel_id
        title, assignee, creator = inc.title, inc.assignee, inc.created_by
    channel, dedicated = settings.slack_incident_channel, False
    if settings.slack_open_incident_channels:
        ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()  # "über" -> "uber"
        slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:40]
        name = f"inc-{incident_id}-{slug}".rstrip("-")[:80]
        try:
            try:
                channel = services.poster.create_channel(name)
            except SlackApiError as exc:  # another install (staging, a reset database) has an inc-<id> channel
                if slack_error(exc) != "name_taken":
                    raise
                name = f"{name[:74]}-{secrets.token_hex(2)}"
                log.warning("channel name taken; opening #%s instead", name)
                channel = services.poster.create_channel(name)
            dedicated = True
        except SlackApiError as exc:
            if is_transient(exc):  # Slack out, or the token refused: the job waits and tries again
                raise
            # Refused for good (only admins may create channels, a missing scope): the incident is not held up,
            # its card goes to the incident channel and the timeline says why there is no channel of its own.
            log.warning("could not open #%s (%s); the card goes to %s", name, slack_error(exc) or exc, channel)
            with services.db.session() as s:
                s.add(TimelineEvent(incident_id=incident_id, kind="card", at=utcnow(), text=(
                    f"Could not open an incident channel ({slack_error(exc) or 'Slack error'}); the card is "
                    f"in <#{channel}>. Ask an admin to allow the app to create channels, or open one by hand "
                    "and /invite @warroom")[:2000]))
    with services.db.session() as s:  # kept before inviting: a retry of this job reuses the channel, never a second
        inc = s.get(Incident, incident_id)
        assert inc is not None
        inc.channel_id, inc.dedicated_channel = channel, dedicated
    if dedicated:
        # One call per person: Slack refuses a whole invitation when one person in it cannot be invited (someone
        # who left), so inviting both at once would leave out the one who could come.
        for user in sorted(u for u in {assignee, creator} if u):
            try:
                services.poster.invite(channel, [user])
            except SlackApiError as exc:  # a person who left, a guest: the channel and the card go on without them
                if slack_error(exc) in ("already_in_channel", "cant_invite_self"):
                    continue
                log.warning("could not invite %s to %s: %s", user, channel, slack_error(exc) or exc)
                with services.db.session() as s:
                    s.add(TimelineEvent(incident_id=incident_id, kind="card", at=utcnow(), text=(
                        f"Could not invite <@{user}> to the incident channel ({slack_error(exc) or 'Slack error'}); "
                        "/invite them by hand")[:2000]))
    return channel
