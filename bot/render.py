"""Skill results to Slack Block Kit, and Slack text escaping.

Everything that came from outside (alert text, log lines, user text) goes through :func:`esc`, so
``<!channel>`` or ``<@U123>`` in an alert renders as text and pings nobody.
"""

from __future__ import annotations

import re
from typing import Any

from skills.base import SkillResult, esc

__all__ = ["esc", "cut", "result_blocks", "result_text", "blocks_to_text", "unique_action_ids", "base_action_id"]

MAX_SECTION = 2900  # Slack's section text limit is 3000 characters


def cut(text: str, limit: int = MAX_SECTION) -> str:
    """Shorten ``text`` to ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    note = f"\n… (cut: {len(text) - limit + 40} more characters)"
    return text[: limit - len(note)] + note


def unique_action_ids(elements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Slack refuses a block whose elements share an ``action_id`` (``invalid_blocks``): three *Run* buttons, one per
    suggested runbook, become ``runbooks:start``, ``runbooks:start#2``, ``runbooks:start#3``. The value still says
    which; :func:`base_action_id` gives back the action."""
    seen: dict[str, int] = {}
    for el in elements:
        aid = el.get("action_id")
        if aid is None:
            continue
        seen[aid] = seen.get(aid, 0) + 1
        if seen[aid] > 1:
            el["action_id"] = f"{aid}#{seen[aid]}"
    return elements


def base_action_id(action_id: str) -> str:
    """The action a button stands for, without the suffix :func:`unique_action_ids` gave it."""
    return action_id.split("#", 1)[0]


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text) or " "}}


def result_blocks(result: SkillResult) -> list[dict[str, Any]]:
    """Block Kit for a skill result. Skills write trusted mrkdwn; untrusted parts they escape via
    the ``esc`` helper when they build lines (see skills' renderers)."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text",
                                                                  "text": result.title[:150] or "warroom"}}]
    if result.summary:
        blocks.append(_mrkdwn(result.summary))
    if result.fields:
        fields = [{"type": "mrkdwn", "text": cut(f"*{k}*\n{v}", 1900)} for k, v in result.fields[:10]]
        blocks.append({"type": "section", "fields": fields})
    room = 50 - len(blocks) - (1 if result.actions else 0)  # Slack's 50 blocks; the buttons are never the ones cut
    sections = result.sections if len(result.sections) <= room else result.sections[:room - 1]
    for sec in sections:
        body = "\n".join(sec.lines)
        blocks.append(_mrkdwn(f"*{sec.heading}*\n{body}" if sec.heading else body))
    if len(sections) < len(result.sections):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"… {len(result.sections) - len(sections)} more sections cut (Slack shows at most 50 blocks)")}]})
    if result.actions:
        elements = []
        for a in result.actions[:25]:
            btn: dict[str, Any] = {"type": "button", "action_id": a.action_id,
                                   "text": {"type": "plain_text", "text": a.label[:75]}, "value": a.value[:2000]}
            if a.style:
                btn["style"] = a.style
            elements.append(btn)
        blocks.append({"type": "actions", "elements": unique_action_ids(elements)})
    return blocks[:50]


def result_text(result: SkillResult) -> str:
    """Plain-text fallback (notifications, screen readers)."""
    return cut(f"{result.title}: {result.summary}" if result.summary else result.title, 3000)


def blocks_to_text(blocks: list[dict[str, Any]]) -> str:
    """How a reader of the channel sees blocks, as plain text (used by the demo transcript)."""
    out: list[str] = []
    for b in blocks:
        t = b.get("type")
        if t == "header":
            out.append(f"== {b['text']['text']} ==")
        elif t == "section":
            if "text" in b:
                out.append(b["text"]["text"])
            for f in b.get("fields", []):
                out.append(f["text"].replace("\n", ": ", 1))
        elif t == "context":
            out.append(" ".join(e.get("text", "") for e in b.get("elements", [])))
        elif t == "actions":
            out.append(" ".join(f"[{e['text']['text']}]" for e in b.get("elements", []) if "text" in e))
        elif t == "divider":
            out.append("---")
    text = _DATE_TOKEN.sub(r"\1", "\n".join(out))  # a date token reads as its fallback ("14:05 UTC")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_DATE_TOKEN = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")


def whole_lines(lines: list[str], limit: int) -> str:
    """``lines`` joined, keeping the first ones that fit in ``limit`` characters and then a line saying how many
    were left out; a line is never cut, so a Slack token in it (a date, a mention) is never broken."""
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        left = len(lines) - i
        room = 0 if left == 1 else len(f"… {left - 1} more") + 1  # kept for the "more" line
        if used + len(line) + room > limit:
            out.append(f"… {left} more")
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(out)
