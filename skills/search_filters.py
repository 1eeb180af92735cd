"""Search filters written in the words of a request: ``/similar db timeout service:payments-api since:30d sev:2``.

The knowledge-base search (:func:`knowledge.search.search`) filters by service, time range, severity and status;
the REST API takes them as fields. This module reads them from Slack text (and the CLI's options) so every door
filters alike:

- ``service:NAME`` (also ``service=NAME``, ``--service NAME``): only documents about that service;
- ``since:7d`` / ``until:...``: a span back from now (``90m``, ``36h``, ``7d``, ``2w``) or a date
  (``2026-11-01``, ``2026-11-01T09:30``, UTC);
- ``sev:2`` (``sev:1-2``, ``sev<=2``, ``severity:sev2``): SEV1 up to SEV2 (runbooks have no severity and stay);
- ``status:resolved`` (``--resolved``): only incidents that were resolved;
- in a question, "in the last 30 days" / "over the past week" read as ``since``.

A filter word with a value it cannot read is an error naming it, never dropped: a filter that silently does
nothing answers another question than the one asked. The plain words stay search text: "service unavailable
since the deploy" is not a filter.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Filters", "FILTER_HELP", "take_filters", "parse_when", "FilterError"]

FILTER_HELP = ("`service:payments-api`, `since:7d` (or `since:2026-11-01`), `until:2026-11-30`, `sev:2` (SEV1-2), "
               "`status:resolved`")
_KEYS = {"service": "service", "svc": "service", "since": "since", "until": "until", "sev": "sev", "severity": "sev",
         "status": "status"}
# key:value, key=value, --key=value, --key value, sev<=2; the bare word (no ':'/'='/'--') is text, not a filter
_TOKEN = re.compile(r"(--)?([a-z]+)(?:([:=]|<=)(.*))?", re.I)
_SPAN = re.compile(r"(\d{1,4})\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?|mo|months?|y|years?)",
                   re.I)
_UNIT = {"m": dt.timedelta(minutes=1), "h": dt.timedelta(hours=1), "d": dt.timedelta(days=1),
         "w": dt.timedelta(weeks=1), "mo": dt.timedelta(days=30), "y": dt.timedelta(days=365)}
_LAST = re.compile(r"\b(?:in|over|during|within|for)\s+the\s+(?:last|past)\s+(?:(\d{1,4})\s*)?"
                   r"(hours?|days?|weeks?|months?|years?)\b", re.I)
_SEV = re.compile(r"(?:sev)?([1-4])(?:\s*-\s*(?:sev)?([1-4]))?", re.I)


class FilterError(ValueError):
    """A filter written with a value that cannot be read; the message names it and says how to write it."""


@dataclass(frozen=True)
class Filters:
    service: str | None = None
    since: dt.datetime | None = None  # naive UTC, as the database stores times
    until: dt.datetime | None = None
    max_severity: int | None = None
    resolved_only: bool = False

    def __bool__(self) -> bool:
        return bool(self.service or self.since or self.until or self.max_severity or self.resolved_only)

    def search_args(self) -> dict[str, Any]:
        """The keyword arguments of :func:`knowledge.search.search` these filters set."""
        return {"filter_service": self.service, "since": self.since, "until": self.until,
                "max_severity": self.max_severity, "resolved_only": self.resolved_only}

    def describe(self) -> str:
        """"service payments-api, since Tue 03 Nov 2026 18:00 UTC, SEV1-2, resolved incidents" ("" without filters)."""
        parts = [f"service {self.service}"] if self.service else []
        parts += [f"{w} {t:%a %d %b %Y %H:%M} UTC" for w, t in (("since", self.since), ("until", self.until)) if t]
        if self.max_severity is not None:
            parts.append("SEV1" if self.max_severity == 1 else f"SEV1-{self.max_severity}")
        if self.resolved_only:
            parts.append("resolved incidents")
        return ", ".join(parts)


def parse_when(value: str, now: dt.datetime, what: str = "since") -> dt.datetime:
    """A time from a span back from ``now`` (``7d``) or a date or date-time (UTC); naive UTC."""
    v = value.strip()
    m = _SPAN.fullmatch(v)
    if m:
        unit = m.group(2).lower()
        step = _UNIT["mo" if unit.startswith("mo") else unit[0]]
        try:
            return now - int(m.group(1)) * step
        except OverflowError:
            raise FilterError(f"`{what}:{v[:40]}` reaches back before year 1") from None
    try:
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"I cannot read `{what}:{v[:40]}` as a time: write a span back from now (`{what}:7d`, "
                          f"`{what}:36h`, `{what}:2w`) or a date (`{what}:2026-11-01`, UTC).") from None
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def _severity(value: str) -> int:
    m = _SEV.fullmatch(value.strip())
    if not m or (m.group(2) and m.group(1) != "1"):
        raise FilterError(f"I cannot read `sev:{value[:20]}`: `sev:2` (or `sev:1-2`) keeps SEV1 and SEV2; the "
                          "severity filter keeps everything from SEV1 up to the one named.")
    return int(m.group(2) or m.group(1))


def take_filters(text: str, now: dt.datetime, *, natural: bool = False) -> tuple[str, Filters]:
    """The text without its filter words, and the filters; ``natural``: "in the last 30 days" counts too.

    Pasted log text keeps its own ``key=value`` and ``status: 503``: ``status`` and ``sev`` are filters only with a
    value they can take, ``since``/``until`` written with ``=`` likewise, and ``Service: x`` (a space after the
    colon) is words. Written as ``--key value`` or ``key:value`` (``since``, ``until``, ``service``, ``sev`` with a
    number), a value that cannot be read is an error.

    Raises:
        FilterError: a filter whose value cannot be read, or a range that ends before it starts.
    """
    found: dict[str, Any] = {}
    if natural and (m := _LAST.search(text)):
        unit = m.group(2).lower()
        found["since"] = now - int(m.group(1) or 1) * _UNIT["mo" if unit.startswith("mo") else unit[0]]
        text = (text[:m.start()] + " " + text[m.end():]).strip()
    words = text.split()
    kept: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        i += 1
        if w.lower() in ("--resolved", "is:resolved"):
            found["resolved"] = True
            continue
        m = _TOKEN.fullmatch(w)
        key = _KEYS.get(m.group(2).lower()) if m else None
        value = (m.group(4) or "").strip("`'\"").rstrip("?!.,;:)") if m else ""  # "since:2026-01-01?" ends a question
        strict = bool(m and (m.group(1) or (m.group(3) == ":" and value and (  # "Service: x" is words
            key in ("service", "since", "until") or (key == "sev" and any(c.isdigit() for c in value))))))
        if m is not None and key is not None and m.group(1) and not m.group(3) and i < len(words):
            value = words[i].strip("`'\"").rstrip("?!.,;:)")  # --service payments-api
            i += 1
        if m is None or key is None or not value:
            if strict:
                raise FilterError(f"`{w[:40]}` needs a value: {FILTER_HELP}.")
            kept.append(w)  # words, "service", "since", "status: 503" among them
            continue
        try:
            if key == "service":
                got: Any = value.lower()[:100]
            elif key in ("since", "until"):
                got = parse_when(value, now, key)
            elif key == "sev":
                got = _severity(value)
            elif value.lower() in ("resolved", "closed"):
                key, got = "resolved", True
            else:
                raise FilterError(f"`status:{value[:20]}`: only `status:resolved` filters by status.")
        except FilterError:
            if strict:
                raise
            kept.append(w)  # status=503, severity=ERROR, since=boot: the log's own words
            continue
        if key in found:
            raise FilterError(f"`{key}` is given twice.")
        found[key] = got
    f = Filters(service=found.get("service"), since=found.get("since"), until=found.get("until"),
                max_severity=found.get("sev"), resolved_only=bool(found.get("resolved")))
    if f.since and f.until and f.until <= f.since:
        raise FilterError(f"`until` ({f.until:%d %b %Y %H:%M}) is not after `since` ({f.since:%d %b %Y %H:%M}).")
    if f.since and f.since > now:
        raise FilterError(f"`since` ({f.since:%d %b %Y %H:%M} UTC) is in the future: nothing happened after it yet.")
    return " ".join(kept), f
