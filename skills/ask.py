"""``ask``: answer questions in channels from the knowledge base, with citations.

"Have we seen this before?", "how do I restart ingest?", "what fixed the kafka disk outage?": the
question is masked for secrets, the knowledge base is searched (incidents, postmortems, runbooks),
and the answer is either the best passages with links (no LLM configured) or a short answer from
the configured LLM grounded only in those passages, each claim cited. When retrieval finds nothing
relevant the answer is "I don't know", and the LLM is not asked at all. Any LLM trouble (timeout,
429, malformed output, uncited answer) falls back to the passages.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from knowledge.models import Incident
from knowledge.search import KINDS, Hit, SearchError, search
from skills.ask_llm import IDK, LLMUnavailable, ask_llm
from skills.base import (
    ABOUT_HERE,
    INCIDENT_REF,
    Action,
    BaseSkill,
    Section,
    SkillContext,
    SkillError,
    SkillRequest,
    SkillResult,
    esc,
)
from skills.redact import mask_secrets
from skills.runbooks import incident_runbooks, preview_line
from skills.search_filters import FILTER_HELP, Filters
from skills.similar import collapse, kb_link, read_filters, service_in

__all__ = ["AskSkill", "relevant"]

log = logging.getLogger("warroom.skills.ask")

_KB_QUESTION = re.compile(
    r"\b(have we (ever )?(seen|had)|seen (this|that|it) before|happened before|what (fixed|resolved|caused)"
    r"|how (do|can|should|did) (i|we|you)|how to\b|is there a runbook|runbook for|what do we know about"
    r"|any (postmortems?|incidents?) (about|on|for|with))", re.I)
_QUESTION = re.compile(r"^\s*(what|why|how|when|where|which|is|are|was|were|did|do|does|can|could|should|has|have)"
                       r"\b", re.I)
_HOW_TO = re.compile(r"\b(how (do|can|should) (i|we|you)|how to\b|is there a runbook|runbook (for|to)"
                     r"|what (should|do|can) (i|we) do|next steps?)\b|^\W*what(?:'s|\s+is)\s+next\W*$", re.I)
# An instruction ("restart ingest", "roll back payments-api"): answered like "how do I ...?", and nothing runs
_DO = re.compile(r"^\W*(?:(?:please|pls|can you|could you)\s+)?(restart|reboot|roll ?back|revert|redeploy|deploy|scale"
                 r"|fail ?over|drain|flush|purge|clear|rotate|bounce|kill)\b(?!.*\?\s*$)", re.I | re.S)
# The runbook for one incident: "what's the runbook for #113?", "which runbook fits #113?", "any runbook for this?"
_RUNBOOK_FOR = re.compile(r"\b(?:runbooks?|playbooks?)\s+(?:for|to\s+use\s+(?:for|on)|fits?|applies|should)\b"
                          r"|\bwhat\s+(?:should|do|can)\s+(?:i|we)\s+do\s+(?:about|with|for|on)\b"
                          # "which runbook?" under a card ("I don't know")
                          r"|^\W*(?:which|what)\s+(?:runbook|playbook)\W*$", re.I)
# Under an incident's card, questions that point at it without "this": "same as last week?", "again?", "which runbook
# should we use?" (they searched their own words: a TLS postmortem for "same as last week?")
_SAME_AGAIN = re.compile(r"^\W*(?:(?:the\s+)?same\s+(?:thing\s+|problem\s+|issue\s+|one\s+)?as\s+(?:last\s+(?:time|week"
                         r"|month|night)|before|yesterday)|again|happening\s+again|back\s+again"
                         r"|(?:which|what)\s+(?:runbook|playbook)s?\s+(?:should|do|can|could|would|shall)\s+(?:i|we)\s+"
                         r"(?:use|run|follow|try|pick)(?:\s+(?:now|first|here))?)\W*$", re.I)
_NOT_FOR_ME = re.compile(r"^\s*help\b|what can you do|who are you|\bstatus\b", re.I)
MIN_RELEVANT = 0.3
MIN_RUNBOOK_HOW_TO = 0.2


def relevant(hit: Hit) -> bool:
    """Whether a hit is worth citing: a decent fused score backed by shared words or close meaning."""
    return hit.score >= MIN_RELEVANT and ("words:" in hit.why or hit.dense >= 0.5)


def _source(n: int, ctx: SkillContext, hit: Hit) -> str:
    return f"[{n}] {kb_link(ctx, hit)} {esc(hit.title)}"


def _fix(hit: Hit) -> tuple[str, ...]:
    """The fix that worked, when the passage does not already say it."""
    if hit.kind == "runbook" or not hit.resolution or hit.resolution[:60] in hit.passage:
        return ()
    return (f"> _fix that worked:_ {esc(hit.resolution[:300])}",)


def _preview_hint(ctx: SkillContext, hit: Hit, service: str | None, question: str = "") -> tuple[str, ...]:
    """For a runbook: the command that previews it, with what the question names filled in (nothing runs from a
    question)."""
    line = preview_line(ctx, hit.id, service, question) if hit.kind == "runbook" else None
    return (line,) if line else ()


# The words of a question that only points at something ("has this happened before?"): nothing to search for
_ONLY_POINTING = frozenset("""this that it here has have had we ever seen happened happen before did does do is was
    what should can could i next step steps the same thing again anything like ok something fixed fix""".split())


class AskSkill(BaseSkill):
    """Answer questions from past incidents, postmortems and runbooks, with links to the sources."""

    name = "ask"
    commands = ("/ask",)
    usage = "Usage: `/ask <question>` or `@warroom <question>`; filters " + FILTER_HELP
    examples = ("@warroom have we seen remaining connection slots are reserved before?",
                "@warroom how do I restart ingest?")

    def score(self, text: str) -> float:
        """Questions are for me (0.9 when clearly about past incidents or how-to); meta questions are not."""
        if not text.strip() or _NOT_FOR_ME.search(text):
            return 0.0
        if _KB_QUESTION.search(text) or _RUNBOOK_FOR.match(text):
            return 0.9
        if _DO.match(text):
            return 0.7
        if text.rstrip().endswith("?") or _QUESTION.match(text):
            return 0.6
        return 0.0

    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        question = mask_secrets(request.text.strip())
        if not question:
            raise SkillError("Ask me a question, e.g. `@warroom how do I restart ingest?`")
        if request.incident_id is None and not INCIDENT_REF.search(question) and ABOUT_HERE.search(question) and not (
                set(re.findall(r"[a-z0-9][\w.-]+", question.lower())) - _ONLY_POINTING):
            # "has this happened before?", "what should I do?" away from any incident: "this" is nothing here
            raise SkillError("About what? Ask under the incident's card (or name it: \"have we seen #113 before?\"), "
                             "or say what you see: `/similar <error or symptom>`, \"how do I <task>?\".")
        rest, filters = read_filters(ctx, question, natural=True)  # "... in the last 30 days?", "service:x"
        query, exclude, told = rest or question, (), bool(_DO.match(question))
        service = service_in(query, ctx) or filters.service
        pre: tuple[Section, ...] = ()
        acts: tuple[Action, ...] = ()
        ref = INCIDENT_REF.search(question)  # "what's the runbook for #113?": that incident, when it is one
        about = (int(ref.group(1)) if ref and (told or _HOW_TO.search(question) or _RUNBOOK_FOR.search(question))
                 else request.incident_id if ref is None and (ABOUT_HERE.search(question) or _RUNBOOK_FOR.match(
                     question) or _SAME_AGAIN.match(question)) else None)
        if about is not None:
            with ctx.db.session() as s:  # "have we seen this before?" under an incident card: "this" is it
                inc = s.get(Incident, about)
                if inc is not None:
                    query = mask_secrets(f"{question} {inc.title}. {inc.description or ''}")[:4000]
                    service, exclude = service or inc.service_name, (f"incident:{inc.id}",)
            if inc is not None and (told or _HOW_TO.search(question) or _RUNBOOK_FOR.search(question)
                                    or re.search(r"\b(?:runbook|playbook)", question, re.I)):
                # "what should I do?", "which runbook for #113?": its runbooks
                lines, acts = incident_runbooks(ctx, inc.id)
                pre = (Section(f"Runbooks for incident #{inc.id}", lines),) if lines else ()
        result = self._answer(ctx, question, query, service, exclude, told, filters)
        if not pre:
            return result
        if result.title == IDK:  # nothing in the passages, but runbooks for the incident: those are the answer
            return SkillResult(title="Runbooks for this incident", summary="What the runbook suggester proposes "
                               "for it (a Run button opens a preview first; nothing runs without approval):",
                               sections=pre, actions=acts, data={"mode": "incident_runbooks"})
        return dataclasses.replace(result, sections=pre + result.sections, actions=acts + result.actions)

    def _answer(self, ctx: SkillContext, question: str, query: str, service: str | None, exclude: tuple[str, ...],
                told: bool, filters: Filters) -> SkillResult:
        """From the knowledge-base passages that match ``query``: extractive, or an LLM grounded in them."""
        result = self._grounded(ctx, question, query, service, exclude, told, filters)
        if not filters:
            return result
        return dataclasses.replace(result, summary=f"{result.summary} _(Only {esc(filters.describe())}.)_")

    def _grounded(self, ctx: SkillContext, question: str, query: str, service: str | None, exclude: tuple[str, ...],
                  told: bool, filters: Filters) -> SkillResult:
        try:
            hits = search(ctx, text=query, kinds=KINDS, service=service, exclude=exclude, k=8,
                          **filters.search_args())
        except SearchError as exc:
            raise SkillError(str(exc)) from None
        how_to = told or bool(_HOW_TO.search(question))
        # "how do I ...": a runbook is the answer sought, so one sharing a word with the question counts at a
        # lower score (runbooks are short: their fused scores run lower than long postmortems').
        found = [h for h in collapse(hits) if relevant(h) or (
            how_to and h.kind == "runbook" and h.score >= MIN_RUNBOOK_HOW_TO and h.keyword > 0)][:4]
        if how_to:  # the runbook that does it first, then the past
            found.sort(key=lambda h: h.kind != "runbook")
        if not found:
            return SkillResult(title=IDK, summary="I found nothing in the knowledge base (incidents, postmortems, "
                               "runbooks) that answers this.", data={"mode": "unknown", "hits": []})
        sources = tuple(_source(i, ctx, h) for i, h in enumerate(found, 1))
        data: dict[str, object] = {"hits": [h.key for h in found]}
        s = ctx.settings
        if told:  # an instruction: what would do it, and how to preview it; a message never runs anything
            sections = tuple(Section("", (src, f"> {esc(h.passage)}", *_preview_hint(ctx, h, service, question)))
                             for src, h in zip(sources, found, strict=True))
            return SkillResult(title="Nothing runs from a message",
                               summary="I do not run anything from a mention. What would do it, and the command "
                               "that previews it (`/runbook run` asks for approval where the runbook needs it):",
                               sections=sections, data={**data, "mode": "instruction"})
        if s is not None and getattr(s, "llm_enabled", False):
            passages = [(f"{h.link}: {h.title}", h.passage) for h in found]
            key = s.llm_api_key.get_secret_value() if s.llm_api_key is not None else "not-needed"
            try:
                answer = ask_llm(question, passages, base_url=s.llm_base_url, api_key=key, model=s.llm_model,
                                 timeout_s=s.llm_timeout_s)
            except LLMUnavailable as exc:
                log.warning("llm answer unavailable, answering with passages: %s", exc)
                data["fallback"] = str(exc)
            else:
                if answer.unknown:
                    return SkillResult(title=IDK, summary="The closest knowledge-base passages do not answer this.",
                                       sections=(Section("Closest sources", sources),),
                                       data={**data, "mode": "llm_unknown"})
                cited = tuple(line for i, (src, h) in enumerate(zip(sources, found, strict=True), 1)
                              if i in answer.cited for line in (src, *_preview_hint(ctx, h, service, question)))
                left_out = (f"\n_{answer.uncited_dropped} sentence(s) of the model's answer cited no passage and are "
                            "left out._" if answer.uncited_dropped else "")
                return SkillResult(title="From the knowledge base", summary=esc(answer.text) + left_out,
                                   sections=(Section("Sources", cited),), data={**data, "mode": "llm"})
        sections = tuple(Section("", (src, f"> {esc(h.passage)}", *_fix(h), *_preview_hint(ctx, h, service, question)))
                         for src, h in zip(sources, found, strict=True))
        note = " (the language model did not answer; these are the passages)" if "fallback" in data else ""
        return SkillResult(title="From the knowledge base", summary=f"The most relevant passages{note}:",
                           sections=sections, data={**data, "mode": "extractive"})
