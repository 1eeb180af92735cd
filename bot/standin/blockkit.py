"""Block Kit limits as Slack enforces them, for the stand-in: a message or view that breaks one is refused there
as Slack refuses it (``invalid_blocks`` for messages, ``invalid_arguments`` for views), so every test that posts
checks what the bot sends against Slack's documented limits, not only against what the stand-in happens to accept.

Limits from Slack's Block Kit reference (docs.slack.dev/reference/block-kit): a message holds at most 50 blocks and
a view 100; header text 150 characters; section text 3,000, at most 10 fields of 2,000 each; context at most 10
elements; actions at most 25 elements; a button's text 75, ``action_id`` 255, ``value`` 2,000, ``url`` 3,000; a
select's options at most 100, each text 75 and value 150, placeholder 150; ``block_id`` 255 and unique in the
message; ``action_id`` unique in its block; text objects never empty. A modal's title, submit and close texts at
most 24 characters, ``private_metadata`` 3,000, ``callback_id`` 255, and a submit button when it has input blocks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["message_errors", "view_errors"]

_TEXT_TYPES = ("plain_text", "mrkdwn")


def _text(obj: Any, where: str, limit: int, errors: list[str], plain: bool = False) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in (("plain_text",) if plain else _TEXT_TYPES):
        errors.append(f"{where}: must be a {'plain_text' if plain else 'text'} object")
        return
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        errors.append(f"{where}: must be more than 0 characters")
    elif len(text) > limit:
        errors.append(f"{where}: must be less than {limit + 1} characters (is {len(text)})")


def _too_long(value: Any, where: str, limit: int, errors: list[str]) -> None:
    if value is not None and len(str(value)) > limit:
        errors.append(f"{where}: must be less than {limit + 1} characters (is {len(str(value))})")


def _element(el: Any, where: str, errors: list[str]) -> None:
    if not isinstance(el, dict):
        errors.append(f"{where}: must be an object")
        return
    kind = el.get("type")
    _too_long(el.get("action_id"), f"{where}.action_id", 255, errors)
    if kind == "button":
        _text(el.get("text"), f"{where}.text", 75, errors, plain=True)
        _too_long(el.get("value"), f"{where}.value", 2000, errors)
        _too_long(el.get("url"), f"{where}.url", 3000, errors)
        if el.get("style") not in (None, "primary", "danger"):
            errors.append(f"{where}.style: must be primary or danger")
    elif kind in ("static_select", "multi_static_select", "radio_buttons", "checkboxes", "overflow"):
        options = el.get("options") or [o for g in el.get("option_groups") or [] for o in g.get("options") or []]
        if len(options) > (5 if kind == "overflow" else 10 if kind in ("radio_buttons", "checkboxes") else 100):
            errors.append(f"{where}.options: too many ({len(options)})")
        for j, opt in enumerate(options):
            _text((opt or {}).get("text"), f"{where}.options[{j}].text", 75, errors, plain=kind != "checkboxes"
                  and kind != "radio_buttons")
            _too_long((opt or {}).get("value"), f"{where}.options[{j}].value", 150, errors)
        if el.get("placeholder") is not None:
            _text(el["placeholder"], f"{where}.placeholder", 150, errors, plain=True)
    elif kind == "plain_text_input":
        if el.get("placeholder") is not None:
            _text(el["placeholder"], f"{where}.placeholder", 150, errors, plain=True)
        _too_long(el.get("initial_value"), f"{where}.initial_value", 3000, errors)
    elif kind in ("image",):
        _too_long(el.get("alt_text"), f"{where}.alt_text", 2000, errors)
    elif kind in _TEXT_TYPES:
        _text(el, where, 3000, errors)


def _blocks(blocks: Any, limit: int, errors: list[str]) -> None:
    if not isinstance(blocks, list):
        errors.append("blocks: must be an array")
        return
    if len(blocks) > limit:
        errors.append(f"blocks: must contain at most {limit} blocks (has {len(blocks)})")
    block_ids: set[str] = set()
    for i, b in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(b, dict):
            errors.append(f"{where}: must be an object")
            continue
        if (bid := b.get("block_id")) is not None:
            _too_long(bid, f"{where}.block_id", 255, errors)
            if bid in block_ids:
                errors.append(f"{where}.block_id: duplicate {bid!r}")
            block_ids.add(bid)
        kind = b.get("type")
        if kind == "header":
            _text(b.get("text"), f"{where}.text", 150, errors, plain=True)
        elif kind == "section":
            if "text" not in b and not b.get("fields"):
                errors.append(f"{where}: must have text or fields")
            if "text" in b:
                _text(b["text"], f"{where}.text", 3000, errors)
            fields = b.get("fields") or []
            if len(fields) > 10:
                errors.append(f"{where}.fields: at most 10 (has {len(fields)})")
            for j, f in enumerate(fields):
                _text(f, f"{where}.fields[{j}]", 2000, errors)
            if b.get("accessory") is not None:
                _element(b["accessory"], f"{where}.accessory", errors)
        elif kind == "context":
            elements = b.get("elements") or []
            if not elements or len(elements) > 10:
                errors.append(f"{where}.elements: 1 to 10 (has {len(elements)})")
            for j, el in enumerate(elements):
                _element(el, f"{where}.elements[{j}]", errors)
        elif kind == "actions":
            elements = b.get("elements") or []
            if not elements or len(elements) > 25:
                errors.append(f"{where}.elements: 1 to 25 (has {len(elements)})")
            action_ids = [el.get("action_id") for el in elements if isinstance(el, dict) and el.get("action_id")]
            if len(action_ids) != len(set(action_ids)):
                errors.append(f"{where}.elements: duplicate action_id")
            for j, el in enumerate(elements):
                _element(el, f"{where}.elements[{j}]", errors)
        elif kind == "input":
            _text(b.get("label"), f"{where}.label", 2000, errors, plain=True)
            if b.get("hint") is not None:
                _text(b["hint"], f"{where}.hint", 2000, errors, plain=True)
            if not isinstance(b.get("element"), dict):
                errors.append(f"{where}.element: required")
            else:
                _element(b["element"], f"{where}.element", errors)
        elif kind == "image":
            _too_long(b.get("alt_text"), f"{where}.alt_text", 2000, errors)
        elif kind not in ("divider", "rich_text", "file", "video"):
            errors.append(f"{where}.type: unknown block type {kind!r}")


def message_errors(args: dict[str, Any]) -> list[str]:
    """What Slack would refuse in a message's ``blocks`` (empty: nothing)."""
    errors: list[str] = []
    if args.get("blocks") is not None:
        _blocks(args["blocks"], 50, errors)
    return errors


def view_errors(view: Any) -> list[str]:
    """What Slack would refuse in a view (a modal or the Home tab)."""
    errors: list[str] = []
    if not isinstance(view, dict):
        return ["view: must be an object"]
    _blocks(view.get("blocks") or [], 100, errors)
    _too_long(view.get("private_metadata"), "private_metadata", 3000, errors)
    _too_long(view.get("callback_id"), "callback_id", 255, errors)
    if view.get("type") == "modal":
        _text(view.get("title"), "title", 24, errors, plain=True)
        for key in ("submit", "close"):
            if view.get(key) is not None:
                _text(view[key], key, 24, errors, plain=True)
        if any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or []) \
                and view.get("submit") is None:
            errors.append("submit: required when the view has input blocks")
    return errors
