"""The Slack stand-in refuses what Slack refuses (Block Kit limits), so the suite's fixture check that no call was
refused means something; and the bot's own block builders keep to those limits with hostile, oversized content."""

from __future__ import annotations

from typing import Any

import httpx

from bot.render import base_action_id, result_blocks, unique_action_ids
from bot.standin.blockkit import message_errors, view_errors
from bot.standin.server import SlackStandIn
from skills.base import Action, Section, SkillResult


def _button(action_id: str, text: str = "Go", value: str = "v") -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "value": value, "text": {"type": "plain_text", "text": text}}


def test_what_slack_refuses_is_refused() -> None:
    bad = {
        "duplicate action_id": [{"type": "actions", "elements": [_button("a:start"), _button("a:start")]}],
        "less than 3001": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
        "less than 151": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        "more than 0": [{"type": "section", "text": {"type": "mrkdwn", "text": ""}}],
        "at most 10": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
        "less than 76": [{"type": "actions", "elements": [_button("b", text="t" * 76)]}],
        "less than 2001": [{"type": "actions", "elements": [_button("b", value="v" * 2001)]}],
        "at most 50 blocks": [{"type": "divider"}] * 51,
        "1 to 25": [{"type": "actions", "elements": [_button(f"b{i}") for i in range(26)]}],
        "duplicate 'x'": [{"type": "divider", "block_id": "x"}, {"type": "divider", "block_id": "x"}],
        "must be a plain_text": [{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}],
    }
    for said, blocks in bad.items():
        errors = message_errors({"blocks": blocks})
        assert any(said in e for e in errors), (said, errors)
    assert message_errors({"blocks": [{"type": "actions", "elements": [_button("a"), _button("b")]}]}) == []
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "A title longer than 24 chars"},
             "blocks": [{"type": "input", "label": {"type": "plain_text", "text": "Why"},
                         "element": {"type": "plain_text_input", "action_id": "why"}}]}
    errors = view_errors(modal)
    assert any(e.startswith("title:") for e in errors) and any(e.startswith("submit:") for e in errors)
    assert view_errors({"type": "home", "blocks": [{"type": "divider"}] * 101})


def test_the_stand_in_answers_invalid_blocks_over_http() -> None:
    with SlackStandIn(token="xoxb-t") as standin:
        r = httpx.post(f"{standin.api_url}chat.postMessage", headers={"Authorization": "Bearer xoxb-t"},
                       json={"channel": "C1", "text": "t", "blocks": [{"type": "actions", "elements": [
                           _button("a"), _button("a")]}]})
        assert r.json()["ok"] is False and r.json()["error"] == "invalid_blocks"
        assert standin.messages("C1") == [] and len(standin.bad_calls()) == 1


def test_result_blocks_keep_to_the_limits_with_oversized_hostile_content() -> None:
    huge = "<!channel> " + "x" * 50_000
    result = SkillResult(title=huge, summary=huge, fields=[(f"k{i}", huge) for i in range(30)],
                         sections=[Section(heading=huge[:500], lines=(huge,) * 3) for _ in range(80)],
                         actions=tuple(Action("runbooks:start", huge, huge) for _ in range(40)))
    blocks = result_blocks(result)
    assert message_errors({"blocks": blocks}) == [] and len(blocks) == 50
    assert "35 more sections cut" in str(blocks[-2])  # said, and the buttons kept (they come last)
    ids = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert ids[:3] == ["runbooks:start", "runbooks:start#2", "runbooks:start#3"]
    assert {base_action_id(i) for i in ids} == {"runbooks:start"}
    assert base_action_id("incident:ack") == "incident:ack"
    assert [e["action_id"] for e in unique_action_ids([_button("a"), _button("b"), _button("a")])] == ["a", "b", "a#2"]
