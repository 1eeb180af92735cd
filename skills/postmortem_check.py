"""Checking a postmortem against its facts, and finding action items in the conversation.

A *claim* is a time (``09:14``), a date, a number, a person (name, first name or Slack id) or a
service name. :func:`fact_universe` collects every claim the facts support; :func:`check_prose`
keeps only the sentences whose claims all lie in it (the rest are removed and reported), and
:func:`faithfulness` measures the share of supported claims in a whole document.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from knowledge.facts import PostmortemFacts

__all__ = ["Claims", "extract_claims", "fact_universe", "check_prose", "faithfulness", "ActionItem",
           "extract_action_items", "Faithfulness", "sentences"]

_ISO_T = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d)")
_URL = re.compile(r"\b(?:https?|ftp|javascript|data)://?\S+|\]\([^)]*\)", re.I)
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_TIME = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?\b")
_NUM = re.compile(r"(?<![\w.:/#-])(\d+(?:\.\d+)?)(?![\w:/])")
_UID = re.compile(r"\b[UW](?=[0-9A-Z]*\d)[0-9A-Z]{4,}\b")  # Slack user IDs (W: Enterprise Grid)
_SENT = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    """Split prose into sentences (and lines)."""
    return [x for x in (y.strip() for y in _SENT.split(text)) if x]


@dataclass(frozen=True)
class Claims:
    """Checkable tokens of a text, by kind."""

    times: frozenset[str] = frozenset()
    dates: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()
    people: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()

    def items(self) -> list[tuple[str, str]]:
        return [(k, v) for k in ("times", "dates", "numbers", "people", "services")
                for v in sorted(getattr(self, k))]

    def missing_from(self, universe: Claims) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.items() if v not in getattr(universe, k)]


def _norm_num(s: str) -> str:
    return s.rstrip("0").rstrip(".") if "." in s else str(int(s))


def extract_claims(text: str, *, services: tuple[str, ...], people: tuple[tuple[str, str], ...]) -> Claims:
    """The claims in ``text``. ``people`` are (user id, full name) pairs the checker knows of."""
    text = _URL.sub(" ", _ISO_T.sub(r"\1 \2", text))
    dates = frozenset(_DATE.findall(text))
    text = _DATE.sub(" ", text)
    times = frozenset(f"{int(h):02d}:{m}" for h, m in _TIME.findall(text))
    text = _TIME.sub(" ", text)
    low = text.lower()
    svc = frozenset(s for s in services if re.search(rf"(?<![\w-]){re.escape(s.lower())}(?![\w-])", low))
    found: set[str] = set(_UID.findall(text))
    for uid, name in people:
        first = name.split()[0] if name else ""
        if name and re.search(rf"\b{re.escape(name)}\b", text):
            found.add(uid)
        elif first and len(first) > 2 and re.search(rf"\b{re.escape(first)}\b", text):
            found.add(uid)
    for s in svc:  # "payments-api" holds no number, but "redis-cache-2" would: drop service names first
        low = low.replace(s.lower(), " ")
    nums = frozenset(_norm_num(n) for n in _NUM.findall(_UID.sub(" ", low)))
    return Claims(times, dates, nums, frozenset(found), svc)


def _people(facts: PostmortemFacts) -> tuple[tuple[str, str], ...]:
    return tuple((p.user_id, p.name) for p in facts.known_people)


def fact_universe(facts: PostmortemFacts) -> Claims:
    """Every claim the facts support (from their full JSON form, durations and counts included)."""
    blob = json.dumps(facts.to_dict(), ensure_ascii=False)
    # JSON escapes newlines; spaces keep the regexes' word boundaries.
    blob = blob.replace("\\n", " ").replace('"', " ")
    base = extract_claims(blob, services=facts.known_services, people=_people(facts))
    people = set(base.people) | {p.user_id for p in facts.responders}
    return Claims(base.times, base.dates, base.numbers | {str(facts.severity), str(facts.incident_id)},
                  frozenset(people), base.services | frozenset(facts.services))


def check_prose(prose: str, facts: PostmortemFacts, universe: Claims | None = None
                ) -> tuple[str, list[dict[str, object]]]:
    """Keep the sentences of ``prose`` whose claims are all supported; report the removed ones."""
    universe = universe or fact_universe(facts)
    kept: list[str] = []
    removed: list[dict[str, object]] = []
    for sentence in (s.strip() for s in _SENT.split(prose)):
        if not sentence:
            continue
        claims = extract_claims(sentence, services=facts.known_services, people=_people(facts))
        missing = claims.missing_from(universe)
        if _URL.search(sentence) or "<" in sentence:
            missing.append(("markup", "link or markup"))
        if missing:
            removed.append({"sentence": sentence[:500], "unsupported": [f"{k}:{v}" for k, v in missing]})
        else:
            kept.append(sentence)
    return " ".join(kept), removed


@dataclass(frozen=True)
class Faithfulness:
    supported: int
    total: int
    unsupported: tuple[str, ...] = field(default=())

    @property
    def share(self) -> float:
        return 1.0 if self.total == 0 else self.supported / self.total


def faithfulness(markdown: str, facts: PostmortemFacts) -> Faithfulness:
    """Share of the claims in a document (links excluded) that the facts support."""
    universe = fact_universe(facts)
    claims = extract_claims(markdown, services=facts.known_services, people=_people(facts))
    missing = claims.missing_from(universe)
    total = len(claims.items())
    return Faithfulness(total - len(missing), total, tuple(f"{k}:{v}" for k, v in missing))


@dataclass(frozen=True)
class ActionItem:
    text: str
    owner: str | None = None  # Slack user id
    owner_name: str | None = None
    permalink: str | None = None
    said_by: str | None = None


_ACTION = re.compile(
    r"(?:\b(?:TODO|action item|AI|follow[- ]up)\b\s*[:\-]\s*|\bTODO\b\s+|"
    r"\b(?:we|someone|team)\s+(?:should|must|need to|needs to|have to)\s+(?=\w))(?P<body>[^\n]+)",
    re.I,
)
_OWNER_MENTION = re.compile(r"<@([UW][0-9A-Z]+)(?:\|[^>]*)?>|@?\b([UW](?=[0-9A-Z]*\d)[0-9A-Z]{4,})\b")
_OWNER_WORD = re.compile(r"\b(?:owner|assignee|assigned to|assign to)\s*[:=]?\s*@?([A-Za-z][\w.-]*)", re.I)
_SELF = re.compile(r"\b(I will|I'll|I can take|I'll take|mine)\b", re.I)


def _owner(text: str, said_by: str | None, facts: PostmortemFacts) -> str | None:
    m = _OWNER_MENTION.search(text)
    if m:
        return m.group(1) or m.group(2)
    m = _OWNER_WORD.search(text)
    if m:
        word = m.group(1).lower()
        for p in facts.known_people:
            parts = p.name.lower().split()
            if word in parts or word == p.user_id.lower():
                return p.user_id
    if said_by and _SELF.search(text):
        return said_by
    return None


def extract_action_items(facts: PostmortemFacts) -> list[ActionItem]:
    """Action items said in the channel ("we should ...", "TODO", "action item: ...", owners if named)."""
    items: list[ActionItem] = []
    seen: set[str] = set()
    for t in facts.timeline:
        if t.source != "message":
            continue
        for m in _ACTION.finditer(t.text):
            body = m.group("body").strip().rstrip(".!")
            # A trailing mention names the owner (shown apart); mentions inside read as names.
            body = re.sub(r"[\s,]*(<@[UW][0-9A-Z]+(?:\|[^>]*)?>\s*)+$", "", body)
            body = _OWNER_MENTION.sub(lambda x: facts.person_name(x.group(1) or x.group(2))
                                      or (x.group(1) or x.group(2)), body)
            body = re.sub(r"\s+", " ", body).strip()[:240]
            norm = re.sub(r"\W+", " ", body.lower()).strip()
            if len(norm) < 6 or norm in seen:
                continue
            seen.add(norm)
            owner = _owner(t.text, t.actor, facts)
            items.append(ActionItem(body, owner, facts.person_name(owner) if owner else None, t.permalink,
                                    t.actor))
    return items
