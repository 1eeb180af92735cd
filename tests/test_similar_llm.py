"""Cited answers from an LLM through the real openai/langchain clients against a local fake server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from bot.standin.driver import SlackDriver
from bot.standin.harness import LiveServer
from bot.standin.openai_api import OpenAIStandIn, Reply
from bot.standin.server import SlackStandIn
from knowledge.db import Database
from skills.ask import AskSkill
from skills.base import SkillContext, SkillRequest
from tests.conftest import make_settings

CONTENT = {"ok": "Lower the per-pod pool size and put pgbouncer in front of postgres-main [1].",
           "idk": "I don't know.", "uncited": "Just restart everything.", "bad_cite": "It was DNS [7].",
           "slow": "late [1]",
           "half_cited": "Lower the per-pod pool size [1]. Also drop the old replica and restart every node. "
                         "Put pgbouncer in front of postgres-main. [1]"}


class FakeOpenAI(OpenAIStandIn):
    """The OpenAI stand-in; ``mode`` picks how it answers (``slow``: after 3 s)."""

    def __init__(self) -> None:
        self.mode = "ok"
        super().__init__(self._answer)

    def _answer(self, body: dict[str, Any]) -> Reply:
        if self.mode == "429":
            return Reply(status=429)
        if self.mode == "malformed":
            return Reply(raw=b"{this is not json")
        if self.mode in ("empty_choices", "null_choices", "no_message"):  # Azure / Gemini filters, vLLM, proxies
            choices = {"empty_choices": [], "null_choices": None,
                       "no_message": [{"index": 0, "finish_reason": "stop"}]}[self.mode]
            return Reply(raw=json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                                         "choices": choices}).encode())
        if self.mode == "wrong_shape":
            return Reply(raw=json.dumps({"hello": "world"}).encode())
        if self.mode == "cut":  # max_tokens reached inside the second claim
            return Reply("Lower the per-pod pool size [1]. Then put pgbouncer in front of postg",
                         finish_reason="length")
        if self.mode == "cut_early":
            return Reply("Lower the per-pod pool size and put pgbouncer in", finish_reason="length")
        if self.mode == "thinking":  # a reasoning model behind Ollama / vLLM: its thoughts first, in the content
            return Reply("<think>\nThe passages mention pool size [1]. Maybe restart everything?\n</think>\n\n"
                         + CONTENT["ok"])
        if self.mode == "thinking_cut":  # the token limit reached while still thinking
            return Reply("<think>\nThe user asks about connection slots. Passage [1] says", finish_reason="length")
        if self.mode == "filtered":
            return Reply("", finish_reason="content_filter")
        if self.mode == "refused":
            return Reply(None, refusal="I can't help with that.")
        return Reply(CONTENT[self.mode], delay_s=3.0 if self.mode == "slow" else 0.0)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies received."""
        return [c["body"] for c in self.calls]


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    f = FakeOpenAI()
    yield f
    f.close()


def _ctx(db: Database, tmp_path: Path, fake: FakeOpenAI) -> SkillContext:
    s = make_settings(tmp_path, None, llm_base_url=fake.url, llm_api_key="sk-test-key", llm_model="fake",
                      llm_timeout_s=1.0)
    return SkillContext(db=db, data_dir=tmp_path, model_dir=tmp_path / "models", settings=s)


QUESTION = "have we seen 'remaining connection slots are reserved' before? password=hunter2 xoxb-12345678-abcdef"


def test_llm_answer_is_grounded_cited_and_sees_only_masked_text(db: Database, tmp_path: Path,
                                                                 fake_llm: FakeOpenAI) -> None:
    result = AskSkill().run(SkillRequest(text=QUESTION, source="mention"), _ctx(db, tmp_path, fake_llm))
    assert result.data["mode"] == "llm"
    assert "pgbouncer" in result.summary and "[1]" in result.summary
    assert "incident #101" in "\n".join(result.sections[0].lines)
    sent = json.dumps(fake_llm.requests[-1])
    assert "hunter2" not in sent and "xoxb-12345678" not in sent and "[REDACTED]" in sent
    assert "remaining connection slots are reserved" in sent  # the retrieved passage went along


def test_llm_answer_to_a_how_to_cites_the_runbook_with_its_preview(db: Database, tmp_path: Path,
                                                                     fake_llm: FakeOpenAI) -> None:
    result = AskSkill().run(SkillRequest(text="how do I restart ingest?", source="mention"),
                            _ctx(db, tmp_path, fake_llm))
    assert result.data["mode"] == "llm"  # the fake cites [1], the runbook (how-to: runbooks first)
    assert "`/runbook run restart-service service=ingest --dry-run`" in "\n".join(result.sections[0].lines)


def test_a_sentence_that_cites_nothing_is_left_out(db: Database, tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    """Every claim cited: the one uncited (and invented) claim is not shown; the reader is told something was cut."""
    fake_llm.mode = "half_cited"
    result = AskSkill().run(SkillRequest(text=QUESTION), _ctx(db, tmp_path, fake_llm))
    assert result.data["mode"] == "llm"
    assert "Lower the per-pod pool size [1]." in result.summary and "pgbouncer" in result.summary
    assert "old replica" not in result.summary and "1 sentence(s)" in result.summary


def test_llm_says_i_dont_know(db: Database, tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    fake_llm.mode = "idk"
    result = AskSkill().run(SkillRequest(text=QUESTION), _ctx(db, tmp_path, fake_llm))
    assert result.title == "I don't know" and result.data["mode"] == "llm_unknown"


def test_nothing_relevant_means_i_dont_know_without_asking_the_llm(db: Database, tmp_path: Path,
                                                                   fake_llm: FakeOpenAI) -> None:
    result = AskSkill().run(SkillRequest(text="what is the capital of France?"), _ctx(db, tmp_path, fake_llm))
    assert result.title == "I don't know" and fake_llm.requests == []


@pytest.mark.parametrize("mode", ["slow", "429", "malformed", "wrong_shape", "uncited", "bad_cite", "cut_early",
                                  "filtered", "refused", "empty_choices", "null_choices", "no_message"])
def test_llm_trouble_falls_back_to_the_passages(db: Database, tmp_path: Path, fake_llm: FakeOpenAI,
                                                mode: str) -> None:
    fake_llm.mode = mode
    result = AskSkill().run(SkillRequest(text=QUESTION), _ctx(db, tmp_path, fake_llm))
    assert result.data["mode"] == "extractive" and result.data["fallback"]
    assert "did not answer" in result.summary
    assert "remaining connection slots are reserved" in "\n".join(result.sections[0].lines)


def test_a_reasoning_models_thoughts_are_not_shown(db: Database, tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    fake_llm.mode = "thinking"
    result = AskSkill().run(SkillRequest(text=QUESTION), _ctx(db, tmp_path, fake_llm))
    assert result.data["mode"] == "llm" and result.summary.startswith(CONTENT["ok"]), result.summary
    assert "think" not in result.summary and "restart everything" not in result.summary
    fake_llm.mode = "thinking_cut"
    result = AskSkill().run(SkillRequest(text=QUESTION), _ctx(db, tmp_path, fake_llm))
    assert result.data["mode"] == "extractive" and "still reasoning" in result.data["fallback"], result.data


def test_question_in_slack_with_llm_configured(db: Database, tmp_path: Path, standin: SlackStandIn,
                                               fake_llm: FakeOpenAI) -> None:
    settings: Settings = make_settings(tmp_path, standin, llm_base_url=fake_llm.url, llm_api_key="sk-test-key",
                                       llm_model="fake", llm_timeout_s=2.0, warm_models=False)
    with LiveServer(settings) as srv:
        driver = SlackDriver(srv.url, settings.slack_signing_secret.get_secret_value())
        assert driver.mention("have we seen remaining connection slots are reserved before?",
                              channel="C0GENERAL").status_code == 200
        assert srv.drain(30)
    texts = [json.dumps(m.get("blocks")) for m in standin.messages("C0GENERAL")]
    assert any("pgbouncer" in t and "[1]" in t for t in texts)


def test_an_answer_cut_at_the_token_limit_keeps_only_its_whole_sentences(db: Database, tmp_path: Path,
                                                                         fake_llm: FakeOpenAI) -> None:
    fake_llm.mode = "cut"
    result = AskSkill().run(SkillRequest(text=QUESTION), _ctx(db, tmp_path, fake_llm))
    assert result.data["mode"] == "llm", result.data
    assert "Lower the per-pod pool size [1]." in result.summary
    assert "Then put pgbouncer" not in result.summary, "the half sentence is not shown"


def test_readyz_says_whether_the_llm_endpoint_serves_the_model(tmp_path: Path, standin: SlackStandIn) -> None:
    """A wrong model name or key shows otherwise only as every answer falling back: asked at start, on /readyz."""
    import time

    import httpx

    from skills.ask_llm import check_endpoint

    with OpenAIStandIn(models=["llama3:latest"], api_key="sk-right") as llm:
        assert check_endpoint(llm.url, "sk-wrong", "llama3")["error"] == (
            "the endpoint refuses the API key (401): check WARROOM_LLM_API_KEY")
        # Ollama names "llama3" what it lists as llama3:latest
        assert check_endpoint(llm.url, "sk-right", "llama3") == {"ok": True, "model": "llama3", "listed": True}
        settings = make_settings(tmp_path, standin, llm_base_url=llm.url, llm_api_key="sk-right",
                                 llm_model="qwen3", warm_models=False)
        with LiveServer(settings) as srv:
            deadline = time.time() + 20
            while "llm" not in (ready := httpx.get(f"{srv.url}/readyz").json()) and time.time() < deadline:
                time.sleep(0.1)
    assert ready["status"] == "ready", ready  # the bot works without its LLM: answers fall back
    assert ready["llm"] == {"ok": False, "error": "the endpoint does not serve model 'qwen3' (WARROOM_LLM_MODEL); "
                                                  "it serves: llama3:latest"}, ready["llm"]


def test_a_reasoning_model_that_refuses_max_tokens_and_temperature_still_answers(db: Database,
                                                                                tmp_path: Path) -> None:
    """OpenAI's o1/o3/gpt-5 answer 400 to max_tokens ("use max_completion_tokens") and to temperature 0: asked
    again without what was refused, once, and the next question goes in the shape that worked."""
    with OpenAIStandIn(lambda body: Reply(CONTENT["ok"]), reasoning=True) as llm:
        s = make_settings(tmp_path, None, llm_base_url=llm.url, llm_api_key="sk-test-key", llm_model="o3-mini",
                          llm_timeout_s=5.0)
        ctx = SkillContext(db=db, data_dir=tmp_path, model_dir=tmp_path / "models", settings=s)
        first = AskSkill().run(SkillRequest(text=QUESTION), ctx)
        asked = len(llm.calls)
        second = AskSkill().run(SkillRequest(text=QUESTION), ctx)
        bodies = [c["body"] for c in llm.calls]
    assert first.data["mode"] == "llm" and second.data["mode"] == "llm", (first.data, second.data)
    assert asked == 3 and len(bodies) == 4
    assert "max_tokens" in bodies[0] and "max_completion_tokens" in bodies[1] and bodies[1]["temperature"] == 0
    assert bodies[3].get("max_completion_tokens") == 300 and "temperature" not in bodies[3]
    assert "max_tokens" not in bodies[3]
