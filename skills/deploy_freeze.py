"""Deploy freezes in words: "freeze deploys on payments-api until monday 09:00: black friday", "code freeze for the
weekend", "lift the freeze on payments-api", "is there a deploy freeze?". Before, these got the help ("I am not
sure what you need") or the knowledge base's rollback runbook, and the deploy check said it knew no freeze.

A freeze covers the services and teams named (a team: its services; "our": the asker's team's), or every service
when none is named; it lasts until the moment named ("until monday 09:00 CET", "for 4h", "for the weekend") or until
lifted. While it holds, the deploy check says hold (a fix: with the OK of whoever froze it), ``GET /api/v1/freezes``
tells a CI pipeline to stop, a deploy reported through the API is answered with the freezes it breaks, and the
listing names the deploys made during it. Guests and people from other organisations cannot set or lift one.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import freezes, people
from knowledge.models import DeployFreeze, Expert, utcnow
from skills.base import Section, SkillError, SkillResult, duration, esc, slack_when
from skills.clock_words import moment, own_zone

__all__ = ["FREEZE_SET", "FREEZE_LIFT", "FREEZE_ASKED", "freeze_words", "freeze_line", "frozen_by", "check_span"]

_WHAT = r"(?:deploy(?:ment)?s?|releases?|changes|code|prod(?:uction)?|merges?|everything)"
_KIND = r"(?:deploy(?:ment)?|change|code|release|merge|prod(?:uction)?)"
FREEZE_SET = re.compile(
    # "freeze deploys on payments-api until monday", "please freeze all releases for 4h"
    rf"^\W*(?:(?:please|pls|let'?s|we\s+need\s+to|can\s+you)\s+)?(?:freeze\s+(?:all\s+)?{_WHAT}\b"
    # "start a code freeze", "put a deploy freeze in place on ingest", "declare a change freeze"
    rf"|(?:start|begin|put|declare|set\s+up|set|announce|add)\s+an?\s+{_KIND}\s+freeze\b"
    # "deploy freeze on payments-api until 18:00", "code freeze: black friday", "code freeze" alone
    rf"|{_KIND}\s+freeze\s*(?=$|[:;,.!-]|on\b|for\b|until\b|till\b|til\b|through\b|from\b|starting\b|beginning\b)"
    # "no deploys to payments-api until monday", "no more releases until the incident is over"
    rf"|no\s+(?:more\s+)?(?:deploy(?:ment)?s|releases|merges)\s+(?:to|on|for|until|till|til)\b)", re.I)
FREEZE_LIFT = re.compile(
    rf"^\W*(?:(?:please|pls|let'?s|can\s+you)\s+)?(?:unfreeze\b(?:\s+(?:all\s+)?{_WHAT}\b)?"
    rf"|(?:lift|end|cancel|remove|stop|drop|call\s+off)\s+(?:the\s+|a\s+|all\s+|our\s+)?"
    rf"(?:(?:upcoming|coming|planned|scheduled|next|weekend|holiday)\s+)?(?:{_KIND}\s+)?freezes?\b"
    rf"|(?:the\s+)?{_KIND}\s+freeze\s+(?:is\s+)?(?:over|lifted|ended|off|done)\b"
    r"|(?:deploy(?:ment)?s|releases)\s+(?:are\s+)?(?:open|unfrozen|allowed|ok)\s+again\b)", re.I)
FREEZE_ASKED = re.compile(
    # "is there a deploy freeze?", "are there any freezes on payments-api?", "is a code freeze on?"
    rf"^\W*(?:(?:is|are)\s+(?:there\s+)?(?:an?\s+|any\s+)?(?:{_KIND}\s+)?freezes?\b"
    # "are deploys frozen?", "are deploys to payments-api frozen?", "is prod frozen?"
    rf"|(?:are|is)\s+{_WHAT}(?:\s+(?:to|on|for)\s+[\w.-]+)?\s+(?:currently\s+|still\s+)?frozen\b"
    # "any freezes?", "list the freezes", "show active deploy freezes", "what's frozen?", "which services are frozen?"
    rf"|any\s+(?:{_KIND}\s+)?freezes?\b|(?:list|show)\s+(?:me\s+)?(?:the\s+|all\s+|our\s+)?(?:active\s+|current\s+)?"
    rf"(?:{_KIND}\s+)?freezes\b|(?:what(?:'s|\s+is)|which\s+services\s+are)\s+frozen\b"
    # "when does the freeze end?", "when is the code freeze over?"
    rf"|when\s+(?:does|is|will)\s+the\s+(?:{_KIND}\s+)?freeze\s+(?:end|over|lift|be\s+lifted|finish))", re.I)

_USAGE = ("Say `freeze deploys on <service or team> until <when>: <why>` (none named: every service; `for 4h`, `for "
          "the weekend`; no end: until lifted), `lift the freeze on <service>`, or ask `is there a deploy freeze?`")
# what the freeze is about, after the words: ": black friday", " because the DB migration runs", " - release 4.2"
# (a run of spaces is tried from its start only, so the search stays linear on a text of spaces)
_REASON = re.compile(r"(?::(?!\d)|;|(?<!\s)\s++(?:because(?:\s+of)?|due\s+to|while|during)\s+"
                     r"|(?<!\s)\s++[-\u2013\u2014]\s+)", re.I)
_FOR = re.compile(r"\bfor\s+(?:the\s+)?(?:next\s+)?(\d{1,3})\s*"
                  r"(m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)\b", re.I)
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_WEEKEND = re.compile(r"\b(?:for|over|during|through)\s+the\s+weekend\b", re.I)
_UNTIL = re.compile(r"\b(?:until|till|til|through|thru)\s+(?P<when>.+)$", re.I)
# a freeze that starts later: "from friday 18:00 until monday 09:00", "starting friday 18:00 for 3 days"
_FROM = re.compile(r"\b(?:from|starting(?:\s+(?:from|at|on))?|beginning)\s+(?P<when>.+?)"
                   r"(?=\s+(?:until|till|til|through|thru|to|for)\s+|\s*$)", re.I)
# "cancel the freeze set for friday", "cancel the upcoming freeze": those to come, even while one holds now
_LATER = re.compile(r"\b(?:set\s+for|upcoming|coming|planned|scheduled|next|(?:start(?:ing|s)?|from)\s+"
                    r"(?:on\s+)?(?:mon|tue|wed|thu|fri|sat|sun|tomorrow|tonight|\d))", re.I)
_NO_END = re.compile(r"^\s*(?:further\s+notice|lifted|(?:it\s+is\s+|it'?s\s+)?lifted|someone\s+lifts\s+it)\W*$", re.I)
_ALL = re.compile(r"\b(?:all\s+services|every\s*(?:thing|\s+service)|everywhere|all\s+of\s+(?:prod|production))\b",
                  re.I)
_LONGEST = dt.timedelta(days=92)


def _zone(s: Session, user_id: str | None) -> str:
    me = s.scalar(select(Expert).where(Expert.slack_user_id == user_id)) if user_id else None
    return me.timezone if me is not None and me.timezone else ""


def _scope(s: Session, text: str, user_id: str | None, lifting: bool = False) -> people.Scope | None:
    """The services a freeze is about; None: every service. A word after "on"/"for" that names nothing known is
    refused."""
    if _ALL.search(text):
        return None
    scope = people.asker_scope(session=s, text=text, user_id=user_id)
    if scope is not None:
        return scope
    if (word := people.unknown_target(text)) is not None:  # "freeze deploys on paymnts": never everything
        every = "lift every freeze" if lifting else "freeze every service"
        raise SkillError(f"I know no service or team `{esc(word[:60])}`: name one from the service catalogue, or "
                         f"name none to {every}.")
    return None


def _start(text: str, zone: str, now: dt.datetime) -> tuple[dt.datetime, str, str]:
    """(when the freeze starts, the text without the words that said it, those words): "from friday 18:00 until
    monday 09:00" starts on Friday (and "to" then ends it); none said, or a start already past: now. A "from" that
    names no moment ("from the payments team") is left to the rest."""
    m = _FROM.search(text)
    if m is None:
        return now, text, ""
    at = moment(m.group("when"), zone, now, usage=_USAGE)
    if at is None:
        return now, text, ""
    rest = text[:m.start()] + re.sub(r"^\s+to\s+", " until ", text[m.end():], flags=re.I)
    return max(at.at, now), rest, at.said


def _until(text: str, zone: str, now: dt.datetime) -> tuple[dt.datetime | None, str, str]:
    """(the end, the words that named it, what was assumed), ``now`` being when the freeze starts; no end: (None,
    "", "")."""
    if m := _FOR.search(text):
        n, unit = int(m.group(1)), m.group(2)[0].lower()
        if n == 0:
            raise SkillError(f"`{esc(m.group(0))}` is no time at all. {_USAGE}")
        return now + dt.timedelta(seconds=n * _UNIT_S[unit]), m.group(0), ""
    if m := re.search(r"\bfor\s+\d\S*(?:\s+\S+)?", text):  # "for 99999h", "for 1.5 hours": asked, so not dropped
        raise SkillError(f"I cannot read `{esc(m.group(0)[:40])}` as a span: say `for 90m`, `for 4h`, `for 2d` or "
                         f"`for 1w` (at most {_LONGEST.days} days).")
    if _WEEKEND.search(text):  # until Monday 09:00 in the asker's zone
        at = moment("monday 09:00", zone, now, usage=_USAGE)
        assert at is not None
        return at.at, "for the weekend", "until Monday 09:00 your time" if zone else "until Monday 09:00 UTC"
    m = _UNTIL.search(text)
    if m is None:
        return None, "", ""
    if _NO_END.match(m.group("when")):
        return None, "", ""
    at = moment(m.group("when"), zone, now, usage=_USAGE)
    if at is None:
        raise SkillError(f"I cannot read when `{esc(m.group('when')[:60])}` is: write it like `until monday 09:00`, "
                         f"`until 18:00 CET`, `until dec 28` or `for 4h`.")
    if at.at <= now:
        raise SkillError(f"`{esc(at.said)}` is already past ({slack_when(at.at)}): a freeze ends after it starts.")
    return at.at, at.said, at.note


def check_span(starts: dt.datetime, until: dt.datetime | None, now: dt.datetime) -> None:
    """A freeze starts within ``_LONGEST`` and lasts at most that long; it ends after it starts.

    Raises:
        SkillError: said back to the person (or the API caller).
    """
    if until is not None and until <= max(starts, now):
        raise SkillError(f"The end ({until:%a %d %b %H:%M} UTC) is not after the start "
                         f"({max(starts, now):%a %d %b %H:%M} UTC).")
    if starts - now > _LONGEST or (until is not None and until - max(starts, now) > _LONGEST):
        raise SkillError(f"A freeze of more than {_LONGEST.days} days, or starting later than that, is a policy, not a "
                         f"freeze: say an end within {_LONGEST.days} days, or none (until lifted).")


def frozen_by(f: DeployFreeze) -> str:
    """Who set the freeze, for people: a Slack mention, else the name kept (an API caller), else ""."""
    if f.created_by and re.fullmatch(r"[UW][A-Z0-9]{2,20}", f.created_by):
        return f"<@{f.created_by}>"
    return esc(f.created_by or "")


def freeze_line(s: Session, f: DeployFreeze, now: dt.datetime) -> str:
    """One freeze for people: what, since when, until when, by whom, why, and the deploys reported during it."""
    what = f"*{esc(f.service)}*" if f.service else "*every service*"
    end = ((f"until {slack_when(f.ends_at)}" + (f" (in {duration((f.ends_at - now).total_seconds())})"
                                                if f.starts_at <= now else "")) if f.ends_at else "until lifted")
    since = (f"to be frozen from {slack_when(f.starts_at)} (in {duration((f.starts_at - now).total_seconds())})"
             if f.starts_at > now else f"frozen since {slack_when(f.starts_at)}")
    line = (f"{what}: {since} {end}"
            + (f", by {frozen_by(f)}" if f.created_by else "")
            + (f": {esc(f.reason[:300])}" if f.reason else ""))
    broke = freezes.broken_by(s, f, limit=3)
    if broke:
        line += " · _deployed during it:_ " + ", ".join(
            f"{esc(c.service)}{' ' + esc(c.version) if c.version else ''} ({c.kind}"
            + (f" by {esc(c.author)}" if c.author else "") + f", {duration((now - c.at).total_seconds())} ago)"
            for c in broke)
    return line


def _ask(s: Session, text: str, user_id: str | None, zone: str) -> SkillResult:
    now = utcnow().replace(microsecond=0)
    said = moment(text, zone, now, usage=_USAGE)  # "is there a freeze on dec 24?": not a name
    scope = _scope(s, said.without(text) if said is not None else text, user_id)
    at = said.at if said is not None and said.at > now else None  # "is there a freeze on friday?": then
    rows = freezes.holding(s, None if scope is None else scope.services, at)  # (None: to the microsecond, so one
    coming = freezes.upcoming(s, None if scope is None else scope.services) if at is None else []  # lifted this
    where = f" {esc(scope.label)}" if scope else ""  # second is lifted)
    when = f"at {slack_when(at)} ({esc(said.said)})" if at is not None and said is not None else "now"
    later = (Section("Coming (30 days)", tuple(freeze_line(s, f, now) for f in coming[:10])),) if coming else ()
    if not rows:
        return SkillResult(title="Deploy freezes", summary=f"No deploy freeze holds {when}{where}"
                           + (f"; {len(coming)} set to start later." if coming else f". {_USAGE}."),
                           sections=later, data={"frozen": False, "freezes": [], "upcoming": [f.id for f in coming]})
    every = [f for f in rows if f.service is None]
    verb = "are" if at is None else "will be"
    head = (f"Every service {'is' if at is None else 'will be'} frozen" if every else
            f"Deploys {verb} frozen on {', '.join(esc(f.service or '') for f in rows[:8])}"
            + (f" and {len(rows) - 8} more" if len(rows) > 8 else "")) + ("" if at is None else f" {when}")
    return SkillResult(title="Deploy freezes", summary=f"{head}. CI can check `GET /api/v1/freezes?service=<name>`; "
                       "`lift the freeze [on <service>]` ends one.",
                       sections=(Section("", tuple(freeze_line(s, f, now) for f in rows[:25])), *later),
                       data={"frozen": True, "freezes": [f.id for f in rows], "upcoming": [f.id for f in coming]})


def _set(s: Session, text: str, user_id: str | None, zone: str, incident_id: int | None, channel: str) -> SkillResult:
    now = utcnow().replace(microsecond=0)
    r = _REASON.search(text)
    head, reason = (text[:r.start()], text[r.end():].strip(" .")) if r else (text, "")
    starts, head, start_said = _start(head, zone, now)
    until, said, note = _until(head, zone, starts)
    check_span(starts, until, now)
    words = head
    for pattern in (_FOR, _WEEKEND, _UNTIL):
        words = pattern.sub(" ", words)
    if (stray := moment(words, zone, now, usage=_USAGE)) is not None:  # "freeze deploys on dec 24"
        raise SkillError(f"When does it start and end? `{esc(stray.said)}` alone says neither: `freeze deploys from "
                         f"{esc(stray.said)} until <when>` (or `for 2d`), or `until {esc(stray.said)}`.")
    scope = _scope(s, words, user_id)
    made = freezes.freeze(s, None if scope is None else sorted(scope.services), until=until,
                          reason=reason[:1000], by=user_id, starts=starts)
    what = "every service" if scope is None else esc(scope.label.removeprefix("on "))
    if starts > now:
        what += f" from {slack_when(starts)} ({esc(start_said)})"
    end = (f"until {slack_when(until)} ({esc(said)}{'; ' + esc(note) if note else ''})" if until else
           "until lifted (say `until <when>` or `for 4h` next time, so it cannot be forgotten)")
    summary = (f"Deploys {'will be' if starts > now else 'are'} frozen on {what} {end}"
               + (f": {esc(reason[:300])}" if reason else "")
               + ". The deploy check says hold, CI can check `GET /api/v1/freezes?service=<name>`, and a deploy "
               f"reported meanwhile is flagged. `lift the freeze{' on ' + esc(scope.names[0]) if scope else ''}` "
               "ends it.")
    if scope is None and incident_id is not None:
        summary += " (Every service: name one to freeze only that.)"
    return SkillResult(title="Deploy freeze", summary=summary,
                       sections=(Section("", tuple(freeze_line(s, f, now) for f in made[:25])),),
                       data={"freezes": [f.id for f in made],
                             "follow_up_jobs": freezes.notice_jobs(s, made, channel)})  # its start and end, told


def _lift(s: Session, text: str, user_id: str | None, zone: str) -> SkillResult:
    now = utcnow().replace(microsecond=0)
    said = moment(text, zone, now, usage=_USAGE)  # "cancel the freeze set for friday"
    scope = _scope(s, said.without(text) if said is not None else text, user_id, lifting=True)
    services = None if scope is None else scope.services
    # what holds now is lifted; with nothing holding (or "cancel the freeze set for friday"), those set for later
    lifted = [] if _LATER.search(text) else freezes.lift(s, services, by=user_id)
    day = None
    if not lifted and said is not None:
        tz = own_zone(zone)  # "cancel the freeze set for friday": those starting that day only
        local = said.at.replace(tzinfo=dt.UTC).astimezone(tz).replace(hour=0, minute=0, second=0)
        day = (local.astimezone(dt.UTC).replace(tzinfo=None),
               (local + dt.timedelta(days=1)).astimezone(dt.UTC).replace(tzinfo=None))
    lifted = lifted or freezes.lift(s, services, by=user_id, later=True, starting=day)
    if not lifted:
        every = [f for f in freezes.holding(s, None, now) if f.service is None]
        if scope is not None and every:
            raise SkillError(f"Nothing is frozen {esc(scope.label)} alone, but every service is, since "
                             f"{slack_when(every[0].starts_at)}: `lift the freeze` lifts it for all.")
        raise SkillError(f"No deploy freeze holds now{' ' + esc(scope.label) if scope else ''}: nothing to lift.")
    lines = []
    for f in lifted:
        if f.starts_at > now:  # set to start later: cancelled before it held
            lines.append(f"*{esc(f.service) if f.service else 'every service'}*: the freeze set for "
                         f"{slack_when(f.starts_at)} is cancelled")
            continue
        broke = freezes.broken_by(s, f, limit=50)
        lines.append(f"*{esc(f.service) if f.service else 'every service'}*: frozen "
                     f"{duration((now - f.starts_at).total_seconds())}"
                     + (f" ({esc(f.reason[:200])})" if f.reason else "")
                     + (f"; {len(broke)} deploy(s) or rollback(s) were reported during it" if broke else ""))
    left = freezes.holding(s, None)  # (now, after the lift: `now` above is the second before)
    held = [f for f in lifted if f.starts_at <= now]

    def names(rows: list[DeployFreeze]) -> str:
        return "every service" if any(f.service is None for f in rows) else ", ".join(esc(f.service or "")
                                                                                        for f in rows[:8])

    summary = (f"Freeze lifted by <@{user_id}>: deploys are open again on {names(held)}." if held else
               f"Freeze of {names(lifted)} cancelled by <@{user_id}> before it started.")
    if left:
        summary += f" Still frozen: {', '.join(esc(f.service or 'every service') for f in left[:8])}."
    if held and (coming := freezes.upcoming(s, services)):
        summary += (f" Still set to start later: {names(coming)} from {slack_when(coming[0].starts_at)} (`cancel the "
                    "freeze set for <when>` cancels it).")
    return SkillResult(title="Deploy freeze lifted", summary=summary, sections=(Section("", tuple(lines)),),
                       data={"lifted": [f.id for f in lifted]})


def freeze_words(s: Session, text: str, user_id: str | None = None, incident_id: int | None = None,
                 channel: str = "") -> SkillResult:
    """Set, lift or list deploy freezes, as the words say; ``channel``: where a freeze of every service is told when
    it starts and ends (the incident channel)."""
    zone = _zone(s, user_id)  # the asker's, for the moments said
    if FREEZE_LIFT.match(text):
        return _lift(s, text, user_id, zone)
    if FREEZE_SET.match(text):
        return _set(s, text, user_id, zone, incident_id, channel)
    return _ask(s, text, user_id, zone)
