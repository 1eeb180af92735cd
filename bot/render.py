"""Skill results to Slack Block Kit, and Slack text escaping.

Everything that came from outside (alert text, log lines, user text) goes through :func:`esc`, so
``<!channel>`` or ``<@U123>`` in an alert renders as text and pings nobody.
"""

from __future__ import annotations

from typing import Any

from skills.base import SkillResult, esc

__all__ = ["esc", "cut", "result_blocks", "result_text", "blocks_to_text"]

MAX_SECTION = 2900  # Slack's section text limit is 3000 characters


def cut(text: str, limit: int = MAX_SECTION) -> str:
    """Shorten ``text`` to ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    note = f"\n… (cut: {len(text) - limit + 40} more characters)"
    return text[: limit - len(note)] + note


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
    for sec in result.sections:
        body = "\n".join(sec.lines)
        blocks.append(_mrkdwn(f"*{sec.heading}*\n{body}" if sec.heading else body))
    if result.actions:
        elements = []
        for a in result.actions[:25]:
            btn: dict[str, Any] = {"type": "button", "action_id": a.action_id,
                                   "text": {"type": "plain_text", "text": a.label[:75]}, "value": a.value[:2000]}
            if a.style:
                btn["style"] = a.style
            elements.append(btn)
        blocks.append({"type": "actions", "elements": elements})
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
    return "\n".join(out).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
