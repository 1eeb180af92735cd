"""The skill interface: a typed request in, a typed result out.

A skill is a small class with a ``name``, a docstring that is its help text, the slash commands
that resolve to it directly, a ``score`` for free text (0..1, how sure it is that the text is for
it) and ``run``. Heavy resources load in ``warm`` (called once, in the background, at start).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from knowledge.db import Database
from knowledge.models import MAX_ID

# An incident named in free text: "#12", "incident 12", "inc-12" (group 1: the number).
INCIDENT_REF = re.compile(r"(?:#|\binc(?:ident)?[-\s#]*)(\d{1,9})\b", re.I)

# A message that points at the incident it is posted under ("have we seen this before?", "who should take
# it?", "what should I do?"): in a card's thread or an incident's own channel, that incident is the subject.
ABOUT_HERE = re.compile(r"\b(this|it|that|here)\b|^\W*what (?:should|do|can) (?:i|we) do\b|\bnext steps?\b"
                        r"|^\W*what(?:'s|\s+is)\s+next\W*$", re.I)

# A severity first: "sev1 outage on checkout", "SEV-2: ingest lag", "severity 1 db down" (group 1: the level)
# (group 1: the level; SEV0 / P0, the top level where levels start at 0, is SEV1: see severity_word)
LEAD_SEV = re.compile(r"^\W*(?:sev(?:erity)?[\s-]?|p)([0-4])\b[\s:,.-]*", re.I)
_SEV_WORD = re.compile(r"^(?:sev(?:erity)?-?|p)?([0-4])$", re.I)


def severity_word(word: str) -> int | None:
    """The severity a word names: ``sev1``, ``SEV-2``, ``P1`` (PagerDuty's and many teams' priorities), a bare
    ``3``; ``SEV0`` / ``P0`` (where levels start at 0) is the top one, 1. Mapped up, never down: a P1 opened as
    the default SEV3 would page nobody. A bare ``0`` is not a severity."""
    m = _SEV_WORD.match(word)
    if m is None or word == "0":
        return None
    return max(1, int(m.group(1)))

# Slack user IDs: U..., or W... (Enterprise Grid's organisation-wide IDs). Bare in text (not inside <@...>), one
# needs a digit too, so that UTC, URL, WARN or WAL are not read as people.
USER_ID = r"[UW][A-Z0-9]{2,}"
BARE_USER_ID = r"\b[UW](?=[A-Z0-9]*\d)[A-Z0-9]{2,}\b"
_USER_MENTION = re.compile(rf"&lt;@({USER_ID})&gt;")


_SLACK_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITY_CHAR = {"amp": "&", "lt": "<", "gt": ">"}


def unesc(text: str) -> str:
    """Text as the person typed it: Slack sends ``&``, ``<`` and ``>`` in message and command text as ``&amp;``,
    ``&lt;`` and ``&gt;`` (its control sequences, ``<@U1>`` or ``<https://...|label>``, stay as they are).
    One pass, so ``&amp;lt;`` (someone typed ``&lt;``) comes back as ``&lt;``; no other entity is Slack's."""
    return _SLACK_ENTITY.sub(lambda m: _ENTITY_CHAR[m.group(1)], text)


_LABELLED_USER = re.compile(rf"<@({USER_ID})\|[^<>]*>")
_CHANNEL_REF = re.compile(r"<#C[A-Z0-9]+\|([^<>]+)>")
_LINK = re.compile(r"<((?:https?|mailto):[^<>|\s]+)(?:\|[^<>]*)?>")
# "@payments-oncall" (a user group: <!subteam^S0X|@payments-oncall>), "@here" (<!here>, <!channel>, <!everyone>):
# stored as the words, so a title never pings a group where it is shown again, and reads as it was typed.
_GROUP_REF = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|@?([^<>]+))?>")
_SPECIAL_REF = re.compile(r"<!(here|channel|everyone)(?:\|[^<>]*)?>")


def typed(text: str) -> str:
    """Slack text (a message, a command with its users and channels escaped) as the person typed it: ``@bob``
    stays a mention (``<@U0BOB>``, the label dropped, so the card shows whoever it is now), ``#ops`` is the word
    ``#ops`` again, a link is its address; then :func:`unesc`. Stored like this, a title or note reads on the card
    as it was written instead of as ``<#C0OPS|ops>``."""
    text = _LABELLED_USER.sub(r"<@\1>", text)
    text = _CHANNEL_REF.sub(r"#\1", text)
    text = _LINK.sub(lambda m: m.group(1).removeprefix("mailto:"), text)
    text = _GROUP_REF.sub(lambda m: f"@{m.group(1) or 'group'}", text)
    text = _SPECIAL_REF.sub(r"@\1", text)
    return no_bidi(unesc(text))


# What a Slack client's "smart punctuation" (macOS) makes of what was typed: `--dry-run` becomes `—dry-run`, and
# `reason="disk full"` gets curly quotes. In a command's words they are read as typed (a dash inside a sentence,
# "checkout down — 503s", stays: only a dash that starts a word is an option's).
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
_OPTION_DASH = re.compile(r"(?<!\S)[\u2014\u2013](?=[A-Za-z])")


def as_typed_command(text: str) -> str:
    """A slash command's text with the client's smart punctuation undone (see ``_OPTION_DASH``)."""
    return _OPTION_DASH.sub("--", text.translate(_SMART_QUOTES))


# Unicode's bidirectional embeddings, overrides and isolates ("Trojan Source"): an incident titled
# "\u202edevloser" showed on its card as "resolved". Removed from what is stored and what is shown.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


def no_bidi(text: str) -> str:
    """``text`` without bidirectional control characters (the marks U+200E/U+200F stay)."""
    return text.translate(_BIDI_CONTROLS)


def esc(text: object) -> str:
    """Escape Slack mrkdwn control characters (``&``, ``<``, ``>``) in untrusted text, and drop bidi controls."""
    return no_bidi(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def esc_keep_users(text: object) -> str:
    """Escape, then let plain user mentions through (they notify one person, never a channel)."""
    return _USER_MENTION.sub(r"<@\1>", esc(text))


__all__ = [
    "ABOUT_HERE", "INCIDENT_REF", "LEAD_SEV", "severity_word", "clock", "duration", "esc", "esc_keep_users",
    "no_bidi",
    "incident_here",
    "SkillContext", "SkillRequest", "SkillResult", "Section", "Action", "Attachment", "Skill",
    "SkillError", "BaseSkill", "IncidentFacts", "Finding", "TriageSkill", "slack_clock", "slack_when", "PERSON_LOOKUP",
    "outsider",
    "small_int",
    "db_id",
]


class SkillError(Exception):
    """A problem the user can fix; the message is shown to them as is."""


@dataclass
class SkillContext:
    """What skills may use: the database, directories, optional LLM settings, shared resources."""

    db: Database
    data_dir: Path
    model_dir: Path
    settings: Any = None  # bot.settings.Settings; typed loosely so skills do not import bot
    resources: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SkillRequest:
    """One piece of work for a skill, whichever door it came through."""

    text: str
    source: str = "cli"  # mention, dm, command, cli, webhook, action, triage
    user_id: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    command: str | None = None
    incident_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """A titled block of lines."""

    heading: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Action:
    """A button: the bot routes ``action_id`` back to the skill that made it."""

    action_id: str
    label: str
    value: str
    style: str | None = None  # primary, danger


@dataclass(frozen=True)
class Attachment:
    """A file to upload next to the result (a chart, a Markdown document, long output)."""

    filename: str
    content: bytes
    title: str = ""


@dataclass(frozen=True)
class SkillResult:
    """What a skill returns: data for people, rendered by the bot."""

    title: str
    summary: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    sections: tuple[Section, ...] = ()
    actions: tuple[Action, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    detail: str = ""  # long text: goes into the thread, not the channel
    ok: bool = True
    ephemeral: bool = False
    data: dict[str, Any] = field(default_factory=dict)


class Skill(Protocol):
    name: str
    commands: tuple[str, ...]

    def score(self, text: str) -> float: ...

    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult: ...

    def warm(self, ctx: SkillContext) -> None: ...


class BaseSkill:
    """Convenience base: keyword scoring and a no-op warm-up."""

    name: ClassVar[str] = ""
    commands: ClassVar[tuple[str, ...]] = ()
    keywords: ClassVar[tuple[str, ...]] = ()
    examples: ClassVar[tuple[str, ...]] = ()
    usage: ClassVar[str] = ""  # every form the skill's commands take, as `/warroom help <skill>` shows them

    def score_here(self, text: str) -> float:
        """How well the skill fits ``text`` said under an incident's card (beyond :meth:`score`); 0 by default."""
        return 0.0

    def score(self, text: str) -> float:
        """Share of the skill's keywords found, capped: 1 keyword 0.5, 2 or more 0.8."""
        low = text.lower()
        hits = sum(1 for k in self.keywords if k in low)
        return 0.0 if hits == 0 else (0.5 if hits == 1 else 0.8)

    def warm(self, ctx: SkillContext) -> None:
        """Load heavy resources once; the default has none."""
        return None

    @classmethod
    def help_line(cls) -> str:
        """First line of the docstring: the help text."""
        return (cls.__doc__ or cls.name).strip().splitlines()[0]


@dataclass(frozen=True)
class IncidentFacts:
    """What the triage flow knows about an incident when it opens or grows."""

    incident_id: int
    title: str
    description: str = ""
    service: str | None = None
    alert_name: str | None = None
    severity: int = 3
    labels: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)
    log_lines: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    alert_count: int = 0


@dataclass(frozen=True)
class Finding:
    """One skill's contribution to an incident card (stored in ``incidents.findings[skill]``)."""

    skill: str
    heading: str
    lines: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


class TriageSkill(Protocol):
    """A skill that contributes to the triage flow implements ``triage``.

    It must be quick (the flow gives each skill a few seconds), must not post to Slack itself, and
    returns None when it has nothing to say about this incident.
    """

    name: str

    def triage(self, facts: IncidentFacts, ctx: SkillContext) -> Finding | None: ...


def duration(seconds: float) -> str:
    """A span for people: "7 min", "2h05m" (whole minutes, rounded down)."""
    minutes = max(0, int(seconds // 60))
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"


def clock(at: dt.datetime, today: dt.date | None = None) -> str:
    """A timeline time for people: "14:05" today, "02 Mar 09:14" on another day (UTC)."""
    today = today or dt.datetime.now(dt.UTC).date()
    return at.strftime("%H:%M" if at.date() == today else "%d %b %H:%M")


def small_int(text: str, max_digits: int = 12) -> int | None:
    """``text`` as a number when it is ASCII digits (at most ``max_digits``), else None. Input from outside
    passes ``str.isdigit()`` with "²" or 5,000 digits, on which ``int()`` raises."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= max_digits else None


def db_id(text: str) -> int | None:
    """``text`` as a row id when it is ASCII digits naming one an id column can hold (1 to ``MAX_ID``), else None:
    a button value of 30 digits reached ``session.get`` and failed the job (SQLite cannot bind it) with no answer."""
    n = small_int(text, 10)
    return n if n is not None and 1 <= n <= MAX_ID else None


def slack_clock(at: dt.datetime, today: dt.date | None = None) -> str:
    """:func:`clock` as Slack's date token: every reader sees the time in their own time zone (Slack renders
    ``<!date^unix^{time}|fallback>``); the fallback, for notifications and clients that cannot, says UTC."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    today = today or dt.datetime.now(dt.UTC).date()
    fmt = "{time}" if aware.astimezone(dt.UTC).date() == today else "{date_short} {time}"
    return f"<!date^{int(aware.timestamp())}^{fmt}|{clock(aware.astimezone(dt.UTC), today)} UTC>"


def slack_when(at: dt.datetime, time_only: bool = False) -> str:
    """A time to come, as Slack's date token: each reader sees it in their own time zone ("tomorrow 09:00"); the
    fallback (notifications, clients that cannot, the demo transcript) is "Mon 07 Dec 09:00 UTC"."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    utc = aware.astimezone(dt.UTC)
    fmt, fallback = ("{time}", f"{utc:%H:%M} UTC") if time_only else ("{date_short_pretty} {time}",
                                                                      f"{utc:%a %d %b %H:%M} UTC")
    return f"<!date^{int(aware.timestamp())}^{fmt}|{fallback}>"


def incident_here(db: Database, *, channel_id: str | None, thread_ts: str | None) -> int | None:
    """The incident whose card thread (``thread_ts`` is the card's ts) or dedicated channel this is."""
    from sqlalchemy import select

    from knowledge.models import Incident

    with db.session() as s:
        if thread_ts:
            found = s.scalar(select(Incident.id).where(Incident.card_ts == thread_ts).limit(1))
            if found is not None:
                return int(found)
        if channel_id:
            found = s.scalar(select(Incident.id).where(Incident.channel_id == channel_id,
                                                      Incident.dedicated_channel.is_(True))
                             .order_by(Incident.id.desc()).limit(1))
            return int(found) if found is not None else None
    return None


# ctx.resources key: callable(user_id) -> the person as Slack describes them (users.info's ``user``, with
# ``external`` set for someone from another organisation); raises LookupError when Slack cannot tell.
PERSON_LOOKUP = "slack_person"


def outsider(ctx: SkillContext, user: str) -> str | None:
    """What this Slack account is when it is not a full member of the workspace ("a guest account", "someone
    from another organisation (a Slack Connect channel)", a bot, a deactivated account), or why Slack could not
    tell; None for a member, or where there is no Slack to ask (the CLI: the operator at the keyboard)."""
    lookup: Callable[[str], dict[str, object]] | None = ctx.resources.get(PERSON_LOOKUP)
    if lookup is None:
        return None
    try:
        person = lookup(user)
    except LookupError as exc:
        return f"an account I could not check ({exc})"
    if person.get("deleted"):
        return "a deactivated account"
    if person.get("is_bot") or person.get("is_app_user"):
        return "a bot or app"
    if person.get("is_restricted") or person.get("is_ultra_restricted"):
        return "a guest account"
    if person.get("external"):
        return "someone from another organisation (a Slack Connect channel)"
    return None
