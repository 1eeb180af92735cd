"""The shape of what Slack sends, checked at the door before Bolt and the listeners read it.

Slack itself never sends a string where an object belongs, but a correctly signed body can (a replayed and edited
request from someone holding the signing secret, a proxy that rewrites JSON, a test harness). Read as they were,
``"user": "U1"`` in a button payload, an empty ``actions`` list, a view without ``state`` or an ``event`` that is
``null`` raised inside Bolt: a 500, or a 503 "please retry" that made Slack send the same broken body again, and
wrongly typed ids failed their job five times in the database driver. Each is now a 400 naming the field.

A spec is a type (``str``, ``dict``, ``list``), a dict of field specs (an object; a field may be absent or null),
or a one-element list (a list whose items all match).
"""

from __future__ import annotations

from typing import Any

__all__ = ["problem_in"]

_ID = str
_MESSAGE: dict[str, Any] = {"text": str, "ts": str, "thread_ts": str, "user": str, "files": [dict]}
# Only the events the app listens to; others (channel_rename's ``channel`` is an object) go by unread.
_EVENT: dict[str, Any] = {
    "type": str, "user": _ID, "text": str, "channel": _ID, "ts": str, "thread_ts": str, "event_ts": str,
    "channel_type": str, "subtype": str, "bot_id": str, "user_id": _ID, "channel_id": _ID, "file_id": _ID,
    "reaction": str, "tab": str, "inviter": _ID, "item": {"type": str, "channel": _ID, "ts": str},
    "files": [dict], "file": {"id": _ID}, "message": _MESSAGE, "previous_message": _MESSAGE,
}
_HANDLED_EVENTS = frozenset({"app_mention", "message", "reaction_added", "pin_added", "file_shared",
                             "member_joined_channel", "app_home_opened"})
_INTERACTIVE: dict[str, Any] = {
    "type": str, "callback_id": str, "trigger_id": str, "response_url": str, "message_ts": str,
    "user": {"id": _ID}, "team": {"id": _ID}, "channel": {"id": _ID},
    "container": {"type": str, "message_ts": str, "channel_id": _ID, "thread_ts": str},
    "message": _MESSAGE,
    "actions": [{"action_id": str, "block_id": str, "value": str, "type": str, "action_ts": str,
                 "selected_option": {"value": str}}],
    "view": {"id": str, "hash": str, "callback_id": str, "private_metadata": str,
             "state": {"values": dict}},
}
# What a listener cannot do without.
_REQUIRED = {"block_actions": ("user", "actions"), "view_submission": ("user", "view"), "view_closed": ("user", "view"),
             "message_action": ("user",), "shortcut": ("user",)}


def _check(value: Any, spec: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(spec, type):
        return None if isinstance(value, spec) else f"`{where}` must be {_NAMES[spec]}"
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"`{where}` must be a list"
        for i, item in enumerate(value[:1000]):
            if (why := _check(item, spec[0], f"{where}[{i}]")) is not None:
                return why
        return None
    if not isinstance(value, dict):
        return f"`{where}` must be an object"
    for key, sub in spec.items():
        if (why := _check(value.get(key), sub, f"{where}.{key}")) is not None:
            return why
    return None


_NAMES = {str: "a string", dict: "an object", list: "a list"}


def problem_in(body: dict[str, Any], *, interactive: bool) -> str | None:
    """Why this parsed Slack body has the wrong shape for the app's listeners, or None."""
    if interactive:
        if (why := _check(body, _INTERACTIVE, "payload")) is not None:
            return why
        for key in _REQUIRED.get(str(body.get("type")), ()):
            if not body.get(key):
                return f"`payload.{key}` is missing or empty"
        view = body.get("view")
        if isinstance(view, dict) and body.get("type") in ("view_submission", "view_closed"):
            values = (view.get("state") or {}).get("values") or {}
            if any(not isinstance(block, dict) or not all(isinstance(v, dict) for v in block.values())
                   for block in values.values()):
                return "`payload.view.state.values` must map blocks to objects of inputs"
        return None
    if body.get("type") != "event_callback":
        return None
    event = body.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "`event` must be an object with a `type`"
    if event["type"] in _HANDLED_EVENTS:
        return _check(event, _EVENT, "event")
    return None
