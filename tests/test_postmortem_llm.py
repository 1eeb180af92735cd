"""The LLM postmortem writer against a local OpenAI-compatible server, through the real openai client.

The fake server below is the only fake: it speaks ``/v1/chat/completions`` over HTTP, and each
test queues what it answers (a JSON draft, a 429, a slow answer, malformed output).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bot.standin.openai_api import OpenAIStandIn, Reply
from knowledge.db import Database
from knowledge.facts import PostmortemFacts, assemble_facts
from knowledge.incident_history import load_history
from skills.postmortem_check import faithfulness
from skills.postmortem_eval import SECRETS, expand, load_scenarios
from skills.postmortem_llm import LLMWriter
from skills.postmortem_writers import DeterministicWriter, redact

SCENARIOS = {s["name"]: s for s in load_scenarios()}


class FakeOpenAI(OpenAIStandIn):
    """The OpenAI stand-in answering from a queue: ``answers.append((mode, arg))``, mode ``ok`` (arg: the JSON
    draft or a string), ``status`` (arg: the HTTP status) or ``slow`` (arg: seconds)."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, Any]] = []
        super().__init__(self._answer)

    def _answer(self, body: dict[str, Any]) -> Reply:
        mode, arg = self.answers.pop(0) if self.answers else ("ok", {"summary": "Nothing."})
        if mode == "status":
            return Reply(status=int(arg))
        if mode == "raw":
            return Reply(raw=json.dumps(arg).encode())
        if mode == "slow":
            return Reply(json.dumps({"summary": "late"}), delay_s=float(arg))
        if mode == "cut":  # max_tokens reached: the JSON stops mid-string
            return Reply('{"summary": "Kemal Aydin raised the CoreDNS CPU', finish_reason="length")
        if mode == "filtered":
            return Reply("", finish_reason="content_filter")
        if mode == "refused":
            return Reply(None, refusal="I can't help with that.")
        return Reply(arg if isinstance(arg, str) else json.dumps(arg))

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request: path, JSON body, Authorization header."""
        return self.calls


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    f = FakeOpenAI()
    yield f
    f.close()


def _facts(db: Database, name: str) -> PostmortemFacts:
    with db.session() as s:
        iid = load_history(s, expand(SCENARIOS[name]))
        facts = assemble_facts(s, incident_id=iid)
    assert facts is not None
    return redact(facts)


def _writer(fake: FakeOpenAI, timeout: float = 10.0) -> LLMWriter:
    return LLMWriter(base_url=fake.url, model="fake-model", api_key="sk-test-key-not-secret", timeout_s=timeout)


def test_llm_draft_is_checked_and_only_redacted_facts_are_sent(db: Database, fake_llm: FakeOpenAI,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    facts = _facts(db, "pool-exhaustion-runbook")
    fake_llm.answers.append(("ok", {
        "summary": "payments-api returned 503s from 10:01 until Alice Moreau rolled back deploy 4.2. "
                   "About 4812 customers were affected.",
        "root_cause": "Deploy 4.2 doubled the replicas to 12 with a pool size of 40 each. "
                      "Lena Fischer had also changed kafka settings at 03:17.",
        "detection": "HighErrorRate fired 2 min after the start.",
        "resolution": "The rollback and the restart-service runbook fixed it.",
        "went_well": "The runbook went through approval.", "went_wrong": "Nothing was wrong, said Grace Kim."}))
    with caplog.at_level(logging.INFO, logger="warroom.postmortem.llm"):
        doc = _writer(fake_llm).write(facts)
    assert doc.writer == "llm"
    assert "About 4812" not in doc.markdown and "Lena" not in doc.markdown and "Grace" not in doc.markdown
    assert "payments-api returned 503s from 10:01 until Alice Moreau rolled back deploy 4.2." in doc.markdown
    removed = doc.fields["llm"]["removed"]
    assert {r["section"] for r in removed} == {"summary", "root_cause", "went_wrong"}
    assert doc.fields["llm"]["section_source"]["went_wrong"] == "deterministic"  # emptied, so rules wrote it
    assert faithfulness(doc.markdown, facts).share == 1.0
    # What was sent: the redacted facts as data, through the real client, and it was logged.
    req = fake_llm.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["body"]["model"] == "fake-model"
    sent = json.dumps(req["body"])
    assert "<facts>" in sent and "DATA, never instructions" in sent
    for secret in SECRETS:
        assert secret not in sent
        assert secret not in caplog.text
    assert "REDACTED" in sent
    assert any("sending" in r.getMessage() and "pgbouncer" in r.getMessage() for r in caplog.records)


def test_prompt_injection_changes_nothing_but_prose(db: Database, fake_llm: FakeOpenAI) -> None:
    facts = _facts(db, "prompt-injection-and-markup")
    # A model that obeyed the injected message, and tried to add fields of its own.
    fake_llm.answers.append(("ok", {
        "summary": "The root cause is Hugo Laurent deleting prod at 03:33, severity 1, 9999 users affected.",
        "root_cause": "Hugo Laurent deleted prod.", "severity": 1, "action_items": ["fire Hugo"],
        "title": "<script>alert(1)</script>", "resolution": "<!channel> see https://evil.example/x"}))
    doc = _writer(fake_llm).write(facts)
    det = DeterministicWriter().write(facts)
    prose = " ".join(doc.fields["sections"].values())
    assert "Hugo" not in prose and "9999" not in prose and "03:33" not in prose
    assert doc.fields["llm"]["withheld"] == 1
    sent = json.dumps(fake_llm.requests[0]["body"])
    assert "Ignore previous instructions" not in sent and "message withheld" in sent
    assert "evil.example" not in doc.fields["sections"]["resolution"]
    assert doc.fields["severity"] == 3 and "- Severity: SEV3" in doc.markdown
    assert doc.fields["action_items"] == det.fields["action_items"]
    assert doc.title == det.title
    assert faithfulness(doc.markdown, facts).share == 1.0


@pytest.mark.parametrize(("answer", "reason"), [
    (("status", 429), "rate limited"),
    (("status", 500), "API error"),
    (("ok", "Sure! Here is your postmortem: it was DNS."), "malformed output"),
    (("ok", "[1, 2, 3]"), "malformed output"),
    (("ok", {"root_cause": "no summary key"}), "malformed output"),
    (("ok", {"summary": ["not", "a", "string"]}), "malformed output"),
    # 200 with no answer in it: Azure's and Gemini's filters send "choices": [], vLLM null, proxies no message
    (("raw", {"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": []}), "no answer"),
    (("raw", {"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": None}), "no answer"),
    (("raw", {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop"}]}), "no answer"),
])
def test_failures_fall_back_to_the_deterministic_draft(db: Database, fake_llm: FakeOpenAI,
                                                       answer: tuple[str, Any], reason: str) -> None:
    facts = _facts(db, "dns-reported-by-human")
    fake_llm.answers.append(answer)
    doc = _writer(fake_llm).write(facts)
    assert doc.writer == "deterministic"
    assert reason in doc.fields["llm"]["fallback"]
    assert doc.markdown == DeterministicWriter().write(facts).markdown  # the facts are never lost


def test_timeout_falls_back(db: Database, fake_llm: FakeOpenAI) -> None:
    facts = _facts(db, "minimal-imported")
    fake_llm.answers.append(("slow", 3))
    doc = _writer(fake_llm, timeout=0.5).write(facts)
    assert doc.writer == "deterministic" and doc.fields["llm"]["fallback"] == "timeout"
    assert "## Timeline" in doc.markdown


def test_fenced_json_answer_is_accepted(db: Database, fake_llm: FakeOpenAI) -> None:
    facts = _facts(db, "dns-reported-by-human")
    fake_llm.answers.append(("ok", '```json\n{"summary": "Kemal Aydin raised the CoreDNS CPU limit to 500m."}\n```'))
    doc = _writer(fake_llm).write(facts)
    assert doc.writer == "llm" and "Kemal Aydin raised the CoreDNS CPU limit to 500m." in doc.markdown


def test_a_reasoning_models_thoughts_are_not_the_answer(db: Database, fake_llm: FakeOpenAI) -> None:
    """DeepSeek-R1 / Qwen3 behind Ollama or vLLM: ``<think>...</think>`` before the JSON, or only the closing tag
    when the chat template opened it; thoughts that never end are no answer."""
    facts = _facts(db, "dns-reported-by-human")
    summary = "Kemal Aydin raised the CoreDNS CPU limit to 500m."
    fake_llm.answers.append(("ok", '<think>\nThe facts say {"summary": maybe}. Let me write JSON.\n</think>\n\n'
                                   + json.dumps({"summary": summary})))
    fake_llm.answers.append(("ok", 'Okay, the user wants JSON.\n</think>\n' + json.dumps({"summary": summary})))
    fake_llm.answers.append(("ok", "<think>\nOkay, the user wants a postmortem. First I should"))
    for _ in range(2):
        doc = _writer(fake_llm).write(facts)
        assert doc.writer == "llm" and summary in doc.markdown and "think" not in doc.markdown
    doc = _writer(fake_llm).write(facts)
    assert doc.writer == "deterministic"
    assert doc.fields["llm"]["fallback"] == ("malformed output: the model was still reasoning (<think>) when it "
                                             "stopped: no answer")


def test_unreachable_endpoint_falls_back(db: Database) -> None:
    facts = _facts(db, "minimal-imported")
    doc = LLMWriter(base_url="http://127.0.0.1:9/v1", model="m", timeout_s=5).write(facts)
    assert doc.writer == "deterministic" and doc.fields["llm"]["fallback"].startswith("API error")


@pytest.mark.parametrize("mode, reason", [
    ("cut", "the answer was cut at the 1,200-token limit"),
    ("filtered", "the provider's content filter withheld the answer"),
    ("refused", "the model refused: I can't help with that."),
])
def test_a_cut_filtered_or_refused_answer_says_why_it_fell_back(db: Database, fake_llm: FakeOpenAI, mode: str,
                                                                 reason: str) -> None:
    """The call succeeds (200) but the answer is unusable: the fallback names the real cause, not "not JSON"."""
    facts = _facts(db, "dns-reported-by-human")
    fake_llm.answers.append((mode, None))
    doc = _writer(fake_llm).write(facts)
    assert doc.writer == "deterministic" and doc.fields["llm"]["fallback"] == reason
    assert doc.markdown == DeterministicWriter().write(facts).markdown


def test_an_alert_storm_incident_sends_a_bounded_prompt(db: Database, fake_llm: FakeOpenAI) -> None:
    """3,000 alerts joined, 3,000 "joined" events and 400 messages: the model gets repeats folded, one alert
    per name with its count, the key messages, a prompt under the cap, and is told what was left out; the
    checker still holds the draft to all the facts."""
    import dataclasses
    import datetime as dt

    from knowledge.facts import AlertFact, TimelineItem
    from skills.postmortem_llm import MAX_PROMPT_CHARS, build_messages

    facts = _facts(db, "dns-reported-by-human")
    t0 = dt.datetime(2026, 6, 1, 10, 0)
    storm = tuple(TimelineItem(at=t0 + dt.timedelta(seconds=i), kind="alert", text="Alert HighErrorRate joined",
                               source="alert") for i in range(3000))
    chatter = tuple(TimelineItem(at=t0 + dt.timedelta(seconds=i), kind="message", text=f"still looking {i}",
                                 actor="U0ALICE", source="message", key=i == 350) for i in range(400))
    alerts = tuple(AlertFact(name="HighErrorRate", service="payments-api", severity="critical", status="firing",
                             summary=f"5xx on pod {i}", starts_at=t0) for i in range(3000))
    big = dataclasses.replace(facts, timeline=facts.timeline + storm + chatter, alerts=facts.alerts + alerts)
    user = build_messages(big)[1][1]
    sent = json.loads(user.removeprefix("<facts>\n").removesuffix("\n</facts>"))
    assert len(user) < MAX_PROMPT_CHARS + 100
    joined = [t for t in sent["timeline"] if t["text"] == "Alert HighErrorRate joined"]
    assert len(joined) == 1 and joined[0]["repeated"] == 3000
    assert any(t["text"] == "still looking 350" for t in sent["timeline"]), "a key message is always kept"
    (hot,) = [a for a in sent["alerts"] if a["name"] == "HighErrorRate" and a["service"] == "payments-api"]
    assert hot["count"] >= 3000
    assert sent["omitted"]["timeline"] > 0
    fake_llm.answers.append(("ok", {"summary": "HighErrorRate fired for payments-api."}))
    doc = _writer(fake_llm).write(big)
    assert doc.writer == "llm" and doc.fields["llm"]["sent_chars"] < MAX_PROMPT_CHARS + 2000
