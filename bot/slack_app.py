"""The Bolt app: listeners that verify, persist and acknowledge; the work happens in jobs.

Bolt runs with ``process_before_response=True`` so each listener commits its job to the durable
queue *before* the acknowledgement goes back: an acknowledged command or event is never lost, and
Slack's retries (same ``event_id`` / ``trigger_id``) find the job already queued and do not act
twice. A job that failed for good is queued again by a retry, so a retry is never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.render import base_action_id, esc
from skills.base import as_typed_command, typed

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["build_bolt_app", "parse_command"]

log = logging.getLogger("warroom.slack")

# Message subtypes that carry what a person said; the others (channel_join, channel_topic, pinned_item, bot_message,
# channel_name, ...) are Slack's notices about the channel, which the incident timeline and postmortem must not quote.
_SAID_BY_PEOPLE = (None, "thread_broadcast", "file_share", "me_message")

_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(\|[^>]*)?>[\s,:]*")


def _bot_users(body: dict[str, Any]) -> list[str]:
    """The bot's own user ids, as Slack lists them under an event's ``authorizations``."""
    return [uid for a in body.get("authorizations") or [] if isinstance(a, dict) and a.get("is_bot")
            and isinstance(uid := a.get("user_id"), str) and re.fullmatch(r"[A-Z0-9]+", uid)]


def strip_bot_mention(text: str, body: dict[str, Any]) -> str:
    """The message without its address to the bot: the leading mention, and any mention of the bot's own
    user (Slack lists it under ``authorizations``). Other people's mentions stay ("assign #12 to @bob")."""
    text = _LEADING_MENTION.sub("", text, count=1)
    for uid in _bot_users(body):
        text = re.sub(rf"<@{uid}(\|[^>]*)?>", "", text)
    return text.strip()


def _typed(event: dict[str, Any]) -> dict[str, Any]:
    """A message event with its text (and an edited message's) as typed: see :func:`skills.base.unesc`."""
    out = {**event, "text": typed(str(event.get("text", "")))} if "text" in event else dict(event)
    if isinstance(event.get("message"), dict) and "text" in event["message"]:
        out["message"] = {**event["message"], "text": typed(str(event["message"]["text"]))}
    return out


def parse_command(services: Services, command: str, text: str) -> tuple[str | None, str]:
    """Resolve ``/cmd text`` to a skill name and the text left for it (None: unknown command)."""
    reg = services.registry
    first, _, rest = text.strip().partition(" ")
    if first:
        skill = reg.for_command(f"{command} {first.lower()}")
        if skill is not None:
            return skill.name, rest.strip()
    skill = reg.for_command(command)
    if skill is not None:
        return skill.name, text.strip()
    if command == "/warroom":
        if not text.strip():
            return "help", ""
        return reg.route(text)[0].name, text.strip()
    return None, text


def _cut(services: Services, text: str) -> tuple[str, bool]:
    limit = services.settings.slack_max_text
    return (text[:limit], True) if len(text) > limit else (text, False)


def build_bolt_app(services: Services) -> AsyncApp:
    """The AsyncApp with every listener registered."""
    s = services.settings
    client = AsyncWebClient(token=s.slack_bot_token.get_secret_value(), base_url=s.slack_api_url)
    bot_token = s.slack_bot_token.get_secret_value()
    known: dict[str, AuthorizeResult] = {}
    failed_until = [0.0]

    async def authorize(enterprise_id: str | None, team_id: str | None, logger: logging.Logger) -> AuthorizeResult:
        # Bolt's default asks auth.test before the first request is handled and drops the request when Slack
        # is unreachable. Work must be accepted during a Slack outage (it is delivered afterwards), so ask
        # once, remember the answer, and meanwhile go on with the token alone.
        if "ok" in known:
            return known["ok"]
        fallback = AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=bot_token)
        if time.monotonic() < failed_until[0]:
            return fallback
        try:
            auth = await asyncio.wait_for(client.auth_test(token=bot_token), 2.0)
            known["ok"] = AuthorizeResult.from_auth_test_response(auth_test_response=auth, bot_token=bot_token)
            return known["ok"]
        except Exception as exc:  # noqa: BLE001 - Slack down or slow: accept the work anyway
            failed_until[0] = time.monotonic() + 10.0
            logger.warning("auth.test failed (%s); accepting the request with the configured token", exc)
            return fallback

    app = AsyncApp(
        client=client,
        signing_secret=s.slack_signing_secret.get_secret_value(),
        authorize=authorize,
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )

    submitter = services.runner.group_submitter()  # concurrent requests share one commit

    async def submit(kind: str, payload: dict[str, Any], dedup_key: str | None) -> None:
        await submitter.submit((kind, payload, dedup_key))

    @app.error
    async def on_error(error: Exception, body: dict[str, Any], logger: logging.Logger) -> BoltResponse:
        # Most likely the database is down: 503 makes Slack retry later instead of losing the work.
        logger.error("could not accept a Slack request: %s", error)
        return BoltResponse(status=503, body="warroom cannot accept this right now; please retry")

    @app.middleware
    async def on_app_rate_limited(body: dict[str, Any], next: Any) -> BoltResponse | None:  # noqa: A002 - Bolt's name
        """``app_rate_limited`` has no inner event, so no listener matches it and Bolt would answer 404: another
        failed delivery, the very thing that makes Slack disable an app's events. Answered 200, counted, said."""
        if body.get("type") != "app_rate_limited":
            await next()
            return None
        from bot import metrics
        from skills.base import small_int

        minute = small_int(str(body.get("minute_rate_limited", ""))) or int(time.time()) // 60 * 60
        team = str(body.get("team_id") or "")[:32]
        log.error("Slack is holding back this app's events for team %s since %s (app_rate_limited): mentions, "
                  "messages and uploads may be lost until it stops", team, minute)
        metrics.SLACK_EVENTS_LIMITED.inc()
        services.poster.events_limited = {"minute": minute, "team": team, "at": time.time()}
        # Slack repeats the notice while it lasts: people hear it once an hour, whichever replica gets it.
        await submit("slack.events_limited", {"minute": minute, "team": team},
                     f"slack:app_rate_limited:{team}:{minute // 3600}")
        return BoltResponse(status=200, body="")

    @app.command(re.compile(r"^/[\w-]+$"))
    async def on_command(ack: Any, body: dict[str, Any]) -> None:
        command = str(body.get("command", ""))
        text, was_cut = _cut(services, as_typed_command(typed(str(body.get("text", "")))))
        skill_name, rest = parse_command(services, command, text)
        if skill_name is None:
            await ack(text=f"I do not know `{esc(command)}`. Try `/warroom help`.")
            return
        payload = {
            "skill": skill_name,
            "request": {"text": rest, "source": "command", "user_id": body.get("user_id"),
                        "channel_id": body.get("channel_id"), "command": command,
                        "data": {"trigger_id": body.get("trigger_id"), "truncated": was_cut,
                                 "response_url": body.get("response_url")}},
            "reply": {"channel": body.get("channel_id"), "user": body.get("user_id"),
                      "response_url": body.get("response_url")},
        }
        await submit("skill.run", payload, f"slack:cmd:{body.get('trigger_id') or id(body)}")
        if was_cut:
            await ack(text=f"Working on `{esc(command)}` (your text was cut to {len(text)} characters)")
        else:
            await ack()

    async def route_text(event: dict[str, Any], body: dict[str, Any], source: str) -> None:
        text, was_cut = _cut(services, strip_bot_mention(str(event.get("text", "")), body))
        payload = {
            "skill": None,
            "request": {"text": text, "source": source, "user_id": event.get("user"),
                        "channel_id": event.get("channel"), "thread_ts": event.get("thread_ts") or event.get("ts"),
                        "data": {"truncated": was_cut, "files": event.get("files") or [], "ts": event.get("ts")}},
            "reply": {"channel": event.get("channel"), "user": event.get("user"),
                      "thread_ts": event.get("thread_ts") or event.get("ts")},
        }
        await submit("skill.run", payload, f"slack:event:{body.get('event_id') or event.get('ts')}")

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any]) -> None:
        await route_text(_typed(event), body, "mention")

    @app.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        event = _typed(event)
        if event.get("subtype") in ("message_changed", "message_deleted"):
            # An edit or a deletion: the incident timeline's copy follows (a deleted secret goes from ours too).
            if "slack.message_edit" in services.runner.handlers:
                await submit("slack.message_edit", {"event": event}, f"slack:event:{body.get('event_id')}")
            return
        if event.get("bot_id") or event.get("subtype") not in _SAID_BY_PEOPLE:
            return  # a bot's, or Slack's own notice: "<@U1> has joined the channel", "set the channel topic: ..."
        if event.get("channel_type") == "im":
            await route_text(event, body, "dm")
        elif "slack.message" in services.runner.handlers:
            await submit("slack.message", {"event": event}, f"slack:event:{body.get('event_id')}")

    @app.event(re.compile(r"^(reaction_added|pin_added|file_shared)$"))
    async def on_marker(event: dict[str, Any], body: dict[str, Any]) -> None:
        kind = f"slack.{event.get('type')}"
        if event.get("user_id") and event.get("user_id") in _bot_users(body):
            # The bot's own upload (the CSV of a long log summary). Bolt drops its own events only once auth.test
            # has answered; reading its own CSV as logs would post another CSV, and so on.
            return
        if kind in services.runner.handlers:
            await submit(kind, {"event": event}, f"slack:event:{body.get('event_id')}")

    @app.event("member_joined_channel")
    async def on_join(event: dict[str, Any], body: dict[str, Any]) -> None:
        # Bolt keeps this event even for the bot's own joins. The bot itself, and the people it invites when it
        # opens an incident channel (its card is right there), get no catch-up.
        ours = _bot_users(body)
        if event.get("user") in ours or event.get("inviter") in ours:
            return
        if "slack.member_joined_channel" in services.runner.handlers and event.get("user") and event.get("channel"):
            await submit("slack.member_joined_channel",
                         {"user": str(event["user"])[:32], "channel": str(event["channel"])[:32]},
                         f"slack:event:{body.get('event_id')}")

    @app.event("user_change")
    async def on_user_change(event: dict[str, Any], body: dict[str, Any]) -> None:
        # Someone deactivated in Slack (they left): stop routing to them and tell their team (bot/shift_handover.py)
        user = event.get("user") if isinstance(event.get("user"), dict) else {}
        uid = str(user.get("id") or "")
        if user.get("deleted") is True and re.fullmatch(r"[UW][A-Z0-9]{2,31}", uid) \
                and "slack.user_deactivated" in services.runner.handlers:
            await submit("slack.user_deactivated", {"user": uid}, f"slack:event:{body.get('event_id')}")

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], body: dict[str, Any]) -> None:
        # the Home tab (not the Messages tab): publish what is on this person now (bot/app_home.py)
        if event.get("tab") == "home" and event.get("user") and "slack.app_home" in services.runner.handlers:
            await submit("slack.app_home", {"user": str(event["user"])[:32]}, f"slack:event:{body.get('event_id')}")

    @app.event(re.compile(r".*"))
    async def on_other_event(event: dict[str, Any]) -> None:
        log.debug("ignored event %s", event.get("type"))

    @app.action(re.compile(r".*"))
    async def on_action(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        container = body.get("container") or {}
        payload = {
            "action_id": base_action_id(str(action.get("action_id") or "")), "value": action.get("value") or
            (action.get("selected_option") or {}).get("value", ""),
            "user": (body.get("user") or {}).get("id"),
            "channel": (body.get("channel") or {}).get("id") or container.get("channel_id"),
            # A button on an ephemeral message (a /runbook suggest answer) comes without ``message``: its
            # container still has the ts. The response_url answers where the bot may not post (a private
            # channel without it, a DM between two people).
            "message_ts": (body.get("message") or {}).get("ts") or container.get("message_ts"),
            "ephemeral_source": bool(container.get("is_ephemeral")),
            "response_url": body.get("response_url"),
            "trigger_id": body.get("trigger_id"), "action_ts": action.get("action_ts"),
        }
        await submit("slack.action", payload,
                     f"slack:action:{action.get('action_id')}:{action.get('action_ts') or body.get('trigger_id')}")
        await ack()

    @app.shortcut(re.compile(r".*"))
    async def on_shortcut(ack: Any, body: dict[str, Any]) -> None:
        callback = str(body.get("callback_id", ""))
        message = body.get("message") or {}
        payload = {
            "action_id": callback, "value": typed(str(message.get("text", ""))),
            "user": (body.get("user") or {}).get("id"), "channel": (body.get("channel") or {}).get("id"),
            "message_ts": message.get("ts"), "trigger_id": body.get("trigger_id"),
            "files": message.get("files") or [], "response_url": body.get("response_url"),
        }
        await submit("slack.action", payload, f"slack:shortcut:{body.get('trigger_id')}")
        await ack()

    @app.view(re.compile(r".*"))
    async def on_view(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        payload = {
            "action_id": view.get("callback_id", ""), "value": view.get("private_metadata", ""),
            "user": (body.get("user") or {}).get("id"), "channel": None, "message_ts": None,
            "view_state": (view.get("state") or {}).get("values", {}),
        }
        await submit("slack.action", payload, f"slack:view:{view.get('id')}:{view.get('hash')}")
        await ack()

    return app
