"""A short answer from an LLM, grounded only in retrieved passages, every claim cited.

The model sees the question and numbered passages (secrets masked first), and must answer in a few
sentences with ``[n]`` citations, or say exactly "I don't know". Its output is checked: an answer
without citations, with citations to passages that do not exist, or empty, is refused and the
caller falls back to the extractive answer; a sentence that cites nothing is left out of the answer.
Network trouble (timeouts, 429, 5xx, malformed JSON) raises :class:`LLMUnavailable` for the same fallback.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skills.redact import mask_secrets

__all__ = ["GroundedAnswer", "LLMUnavailable", "ask_llm", "build_messages", "check_answer", "withheld", "IDK",
           "without_reasoning", "invoke", "NoAnswer", "check_endpoint", "complete"]

log = logging.getLogger("warroom.skills.ask")

IDK = "I don't know"
_CITE = re.compile(r"\[(\d{1,2})\]")
SYSTEM = (
    "You answer questions from incident responders using ONLY the numbered passages from the team's "
    "knowledge base. Rules: answer in at most 4 short sentences; put the passage number in square "
    "brackets after every claim, like [1] or [2]; never use knowledge from outside the passages; if the "
    f"passages do not answer the question, reply exactly: {IDK}."
)


class LLMUnavailable(Exception):
    """The model could not be reached or gave an unusable answer; the message says which."""


@dataclass(frozen=True)
class GroundedAnswer:
    """A checked answer: its text and the passage numbers it cites (empty for "I don't know")."""

    text: str
    cited: tuple[int, ...]
    uncited_dropped: int = 0  # sentences left out because they cited no passage

    @property
    def unknown(self) -> bool:
        return not self.cited


def build_messages(question: str, passages: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Chat messages for the model; question and passages are masked here, whatever the caller did."""
    numbered = "\n\n".join(f"[{i}] ({mask_secrets(src)}) {mask_secrets(text)}"
                           for i, (src, text) in enumerate(passages, 1))
    return [("system", SYSTEM), ("human", f"Passages:\n{numbered}\n\nQuestion: {mask_secrets(question)}")]


def check_answer(raw: object, n_passages: int) -> GroundedAnswer:
    """Accept only a non-empty answer citing existing passages, or "I don't know"."""
    if not isinstance(raw, str) or not raw.strip():
        raise LLMUnavailable("empty answer")
    text = raw.strip()
    if text.lower().rstrip(".!").startswith(IDK.lower()):
        return GroundedAnswer(IDK, ())
    cited = tuple(dict.fromkeys(int(m) for m in _CITE.findall(text)))
    if not cited:
        raise LLMUnavailable("answer without citations")
    if any(c < 1 or c > n_passages for c in cited):
        raise LLMUnavailable("answer cites passages that do not exist")
    # Every claim cited: a sentence that cites no passage ("Also drop the old replica.") is not shown.
    sentences = _sentences(text)
    kept = [x for x in sentences if _CITE.search(x)]
    return GroundedAnswer(" ".join(kept)[:1500], cited, len(sentences) - len(kept))


def _sentences(text: str) -> list[str]:
    """``text`` cut after each sentence end (its citations right after the full stop stay with it)."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append(text[start:m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [x for x in out if x]


def ask_llm(question: str, passages: Sequence[tuple[str, str]], *, base_url: str | None, api_key: str,
            model: str, timeout_s: float) -> GroundedAnswer:
    """Ask an OpenAI-compatible endpoint through langchain's ``ChatOpenAI``.

    Raises:
        LLMUnavailable: timeout, rate limit, server error, malformed output, or an unchecked answer.
    """
    import openai  # here, not at the top: 1.1 s of import that a start-up without an LLM need not pay

    messages = build_messages(question, passages)
    log.info("llm request: model=%s passages=%d chars=%d", model, len(passages),
             sum(len(m[1]) for m in messages))
    log.debug("llm prompt (masked): %s", messages[1][1])
    try:
        reply = complete(messages, base_url=base_url, api_key=api_key, model=model, timeout_s=timeout_s,
                         max_tokens=300)
    except NoAnswer as exc:
        raise LLMUnavailable(str(exc)) from None
    except openai.OpenAIError as exc:  # timeouts, 429, 5xx, bad JSON from the endpoint
        raise LLMUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    except (ValueError, KeyError, TypeError) as exc:  # a body langchain cannot turn into a message
        raise LLMUnavailable(f"malformed reply: {type(exc).__name__}") from None
    content = getattr(reply, "content", None)
    finish = (getattr(reply, "response_metadata", None) or {}).get("finish_reason")
    if (problem := withheld(reply)) is not None:
        raise LLMUnavailable(problem)
    if isinstance(content, str):
        content = without_reasoning(content)
        if not content:
            raise LLMUnavailable("the model was still reasoning (<think>) when it stopped: no answer"
                                 + (" within the token limit" if finish == "length" else ""))
    if finish == "length" and isinstance(content, str):
        # Cut at max_tokens, perhaps mid-claim: keep the whole sentences, each of which must still be cited.
        content = _whole_sentences(content)
        if not content:
            raise LLMUnavailable("the answer was cut off at the token limit before its first sentence ended")
    return check_answer(content, len(passages))


def check_endpoint(base_url: str | None, api_key: str, model: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """Whether the configured endpoint answers and serves ``model`` (``GET /models``, which OpenAI, Ollama, vLLM,
    LM Studio and llama.cpp all serve): ``{"ok": True, "model": ...}`` or ``{"ok": False, "error": ...}``
    naming what to fix. A wrong model name or key otherwise shows only as every answer falling back."""
    import openai

    try:
        served = [m.id for m in openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s,
                                              max_retries=0).models.list()]
    except openai.AuthenticationError:
        return {"ok": False, "error": "the endpoint refuses the API key (401): check WARROOM_LLM_API_KEY"}
    except openai.NotFoundError:  # a server without the listing: the model is found out at the first question
        return {"ok": True, "model": model, "listed": False}
    except openai.OpenAIError as exc:
        return {"ok": False, "error": f"the endpoint does not answer ({type(exc).__name__}: {str(exc)[:120]})"}
    except (ValueError, TypeError, AttributeError) as exc:  # a 200 that is not a model list
        return {"ok": False, "error": f"the endpoint's model list is unreadable ({type(exc).__name__})"}
    if model not in served and not any(s.split(":")[0] == model for s in served):  # Ollama: "llama3" ~ llama3:latest
        shown = ", ".join(sorted(served)[:10]) or "none"
        return {"ok": False, "error": f"the endpoint does not serve model '{model}' (WARROOM_LLM_MODEL); it serves: "
                                      f"{shown}"}
    return {"ok": True, "model": model, "listed": True}


# The request shape each endpoint and model took: OpenAI's reasoning models (o1, o3, gpt-5) refuse max_tokens
# ("use max_completion_tokens") and any temperature but the default, with a 400 naming the parameter; Ollama,
# vLLM and llama.cpp take max_tokens. Learnt from the first refusal, kept for the process.
_SHAPES: dict[tuple[str | None, str], dict[str, Any]] = {}


def complete(messages: Any, *, base_url: str | None, api_key: str, model: str, timeout_s: float,
             max_tokens: int) -> Any:
    """One chat completion through langchain's ``ChatOpenAI`` (see :func:`invoke`), in the request shape the
    endpoint takes: a 400 that names ``max_tokens`` or ``temperature`` as unsupported is asked again once
    without it (``max_completion_tokens`` instead; the model's default temperature), and remembered."""
    import openai

    key = (base_url, model)
    while True:
        shape = _SHAPES.get(key, {"tokens": "max_tokens", "temperature": True})
        chat = _chat(base_url, api_key, model, timeout_s, max_tokens, shape["tokens"], shape["temperature"])
        try:
            return invoke(chat, messages)
        except openai.BadRequestError as exc:
            said = f"{exc.param or ''} {exc.message}"
            adapted = dict(shape)
            if "max_tokens" in said and shape["tokens"] == "max_tokens":
                adapted["tokens"] = "max_completion_tokens"
            elif "temperature" in said and shape["temperature"]:
                adapted["temperature"] = False
            if adapted == shape:
                raise
            log.info("llm %s refuses %s: asking again with %s", model, exc.param or "a parameter", adapted)
            _SHAPES[key] = adapted


@functools.lru_cache(maxsize=16)
def _chat(base_url: str | None, api_key: str, model: str, timeout_s: float, max_tokens: int, tokens: str,
          temperature: bool) -> Any:
    """One ``ChatOpenAI`` per endpoint, model and request shape, kept: each new one built an OpenAI client with its
    own connection pool and TLS context (loading the CA bundle, about 50 ms of CPU here) for every question, and
    never reused a connection to the endpoint. The clients are thread-safe."""
    from langchain_openai import ChatOpenAI

    extra = {"temperature": 0} if temperature else {}
    return ChatOpenAI(model=model, base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0,
                      extra_body={tokens: max_tokens}, **extra)


class NoAnswer(ValueError):
    """The endpoint answered 200 with no answer in it."""


def invoke(chat: Any, messages: Any) -> Any:
    """``chat.invoke(messages)``; a 200 with no answer in it raises :class:`NoAnswer` instead of whatever
    langchain trips over: ``"choices": []`` (Azure's and Gemini's safety filters, some proxies) is an
    IndexError, ``null`` (vLLM) a TypeError, a choice without a message an AttributeError."""
    try:
        return chat.invoke(messages)
    except (IndexError, AttributeError, TypeError) as exc:
        raise NoAnswer(f"the endpoint answered with no answer in it ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0][:80] if str(exc) else 'no choices'})") from None


def withheld(reply: object) -> str | None:
    """Why a chat reply carries no usable answer although the call succeeded: the provider's content filter,
    or the model's own refusal (OpenAI sends it in ``refusal``, with no content); None when neither."""
    if (getattr(reply, "response_metadata", None) or {}).get("finish_reason") == "content_filter":
        return "the provider's content filter withheld the answer"
    refusal = (getattr(reply, "additional_kwargs", None) or {}).get("refusal")
    if refusal:
        return f"the model refused: {str(refusal)[:200]}"
    return None


_REASONING_END = re.compile(r"</(?:think|thinking|reasoning)>", re.I)
_REASONING_START = re.compile(r"\s*+<(?:think|thinking|reasoning)>", re.I)


def without_reasoning(text: str) -> str:
    """The answer without a reasoning model's thoughts. DeepSeek-R1, Qwen3 and QwQ behind an OpenAI-compatible
    server (Ollama, vLLM without a reasoning parser) put them in the content as ``<think>...</think>`` before the
    answer, or only the closing tag when the chat template opened it; shown, they are a wall of half-thoughts,
    and parsed as JSON, an error. Empty when the thoughts never ended (the answer never came)."""
    ends = list(_REASONING_END.finditer(text))
    if ends:
        return text[ends[-1].end():].strip()
    return "" if _REASONING_START.match(text) else text.strip()


_SENTENCE_END = re.compile(r"[.!?](?:\s*\[\d{1,2}\])*(?=\s|$)")


def _whole_sentences(text: str) -> str:
    """``text`` up to the end of its last complete sentence (a citation right after the full stop included)."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].strip() if ends else ""
