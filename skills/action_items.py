"""Postmortem action items: the follow-ups people named during an incident, tracked until someone closes them.

The postmortem writer finds them in the incident's conversation ("we should add a pool alert", "TODO:",
"action item: ... @bob"). ``/postmortem actions [mine] [all] [overdue] [unassigned] [service or team]`` lists the
open ones of every incident's newest postmortem version, oldest incident first, each numbered ``<incident>.<n>``;
``/postmortem done <incident>.<n>`` closes one (who, when) on that version (``/postmortem reopen <incident>.<n>``
opens it again) and says so on the incident's timeline, so the postmortem's history shows it. What nobody said in
the channel is added by hand (``/postmortem add <incident> <text> [@owner] [by <date>]``); an item gets an owner
(``/postmortem assign <incident>.<n> @user|me|nobody``) and a due date (``/postmortem due <incident>.<n> <date>|
none``) after the fact. The document's "Action items" section is written again from these marks
(``section_lines``), so the export and the knowledge-base page show what is done, by whom and by when. A later
version (edited, regenerated, published) keeps the marks of the items whose text is the same, and the items added
by hand (``carry_marks``). The 6-hourly maintenance tells each owner once when an item of theirs is overdue
(``overdue_nudges``; no owner: the incident channel).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import postmortems as store
from knowledge.models import Expert, Incident, Postmortem, TimelineEvent, utcnow
from skills.base import BARE_USER_ID, Section, SkillError, SkillResult, duration, esc

__all__ = ["carry_marks", "listing", "mark_done", "assign", "set_due", "add_item", "section_lines", "sync_markdown",
           "with_items_section", "due_words",
           "overdue_nudges", "mark_nudged", "Nudge", "ITEM_REF"]

ITEM_REF = re.compile(r"^\W*(?:#|inc-?)?(\d{1,9})[.:/](\d{1,3})\W*$", re.I)  # "109.2", "#109.2"
_LIMIT = 25
_USER = re.compile(rf"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>|@?({BARE_USER_ID})")
_MARKS = ("done_by", "done_at", "due", "due_set_by", "nudged")  # what a person set on an item, kept by new versions
_OWNER_MARKS = ("owner", "owner_name", "owner_set_by")
_DATE_USAGE = "Write the date like `friday`, `dec 18`, `2026-12-18` or `in 2 weeks`."


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def carry_marks(fields: dict[str, Any], top: Postmortem | None) -> None:
    """What people set on ``top``'s action items, onto a new version's: the done marks, due dates and owners set by
    hand of the items with the same text, and the items added by hand. The items keep ``top``'s order (their
    numbers stay), items said since come after; an item the writer no longer finds is dropped unless it was added
    by hand."""
    old = [dict(a) for a in ((top.fields or {}).get("action_items") or [] if top else [])]
    new = {_norm(str(a.get("text", ""))): a for a in fields.get("action_items") or []}
    if not old:
        return
    items: list[dict[str, Any]] = []
    for prev in old:
        item = new.pop(_norm(str(prev.get("text", ""))), None)
        if item is None:
            if not prev.get("added_by"):
                continue
            item = prev
        else:
            item.update({k: prev[k] for k in _MARKS if prev.get(k)})
            if prev.get("owner_set_by"):
                item.update({k: prev.get(k) for k in _OWNER_MARKS})
        items.append(item)
    fields["action_items"] = items + list(new.values())


def _due_date(item: dict[str, Any]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(item["due"])) if item.get("due") else None
    except ValueError:
        return None


def due_words(item: dict[str, Any], today: dt.date) -> str:
    """"due Fri 18 Dec", "*overdue 3 days* (due Mon 14 Dec)", or "" (no due date, or closed)."""
    due = _due_date(item)
    if due is None or item.get("done_at"):
        return ""
    late = (today - due).days
    if late > 0:
        return f"*overdue {late} day{'s' if late > 1 else ''}* (due {due:%a %d %b})"
    return "due today" if late == 0 else f"due {due:%a %d %b}"


def section_lines(items: list[dict[str, Any]], md_escape: Any, today: dt.date | None = None) -> list[str]:
    """The document's "Action items" section from the tracked items: a checkbox each, ticked when done."""
    today = today or utcnow().date()
    out = []
    for a in items:
        owner = a.get("owner_name") or a.get("owner")
        tail = f" — owner: {md_escape(owner)}" if owner else " — owner: unassigned"
        due = _due_date(a)
        if due is not None:
            tail += f" — due {due:%Y-%m-%d}"
        if a.get("done_at"):
            tail += f" — done {str(a['done_at'])[:10]}"
        box = "[x]" if a.get("done_at") else "[ ]"
        text = md_escape(str(a.get("text", "")), 240)
        out.append(f"- {box} [{text}]({a['permalink']}){tail}" if a.get("permalink") else f"- {box} {text}{tail}")
    return out or ["_No action items were said in the channel._"]


def with_items_section(markdown: str, items: list[dict[str, Any]]) -> str:
    """``markdown`` with its "Action items" section written again from ``items`` (done, owners, due dates)."""
    from skills.postmortem_writers import md_escape

    head = "\n## Action items\n"
    start = markdown.find(head)
    if start < 0:
        return markdown
    body = start + len(head)
    end = markdown.find("\n## ", body)  # the blank line before the next heading is the first "\n" of this
    return (markdown[:body] + "\n".join(section_lines(items, md_escape)) + "\n"
            + (markdown[end:] if end >= 0 else ""))


def sync_markdown(row: Postmortem) -> None:
    """Write ``row``'s "Action items" section again from its tracked items."""
    row.markdown = with_items_section(row.markdown or "", list((row.fields or {}).get("action_items") or []))


def _save(s: Session, top: Postmortem, items: list[dict[str, Any]]) -> None:
    top.fields = {**(top.fields or {}), "action_items": items}
    sync_markdown(top)


def listing(s: Session, text: str, *, user: str | None, strict: bool = False) -> SkillResult:
    """Open action items (``all``: done ones too; ``mine``: owned by ``user``; ``overdue``: past their due date;
    ``unassigned``: of no owner; a service or team name: its incidents'), oldest incident first; ``strict`` (the
    slash command): a word it cannot read is an error."""
    from knowledge.people import scope_in_text

    words = set(re.findall(r"[\w-]+", text.lower()))
    # one incident's ("what were the action items from #101?", `/postmortem actions 101`): done ones too
    ref = re.search(r"(?:#|\binc(?:ident)?[-\s#]*)(\d{1,9})\b", text, re.I) or (
        re.search(r"(?:^|\s)(\d{1,9})(?=\s|$)", text) if strict else None)
    only = int(ref.group(1)) if ref else None
    words -= {w for w in words if w.isdigit()} | {"inc", "incident", "from", "were", "what", "which", "show", "list"}
    mine, every = bool({"mine", "my", "me"} & words), "all" in words or only is not None
    late, unowned = bool({"overdue", "late", "past"} & words), bool({"unassigned", "unowned", "ownerless"} & words)
    if mine and not user:
        raise SkillError("`mine` needs to know who you are: ask in Slack.")
    rows = store.latest_fields(s)  # every postmortem, oldest incident first (not only the newest 1,000)
    service_of = dict(s.execute(select(Incident.id, Incident.service_name).where(
        Incident.id.in_([r.incident_id for r in rows if (r.fields or {}).get("action_items")]))).all())
    scope = scope_in_text(session=s, text=text)  # a service, or a team's services
    unread = words - {"mine", "my", "me", "all", "actions", "action", "items", "open", "of", "for", "on", "the",
                      "and", "overdue", "late", "past", "due", "unassigned", "unowned", "ownerless"} - {
        n.lower() for n in (scope.names if scope else ())}
    if unread and strict:  # "payments" was ignored: every team's items, as if no name had been given
        raise SkillError(f"I cannot filter action items by `{esc(' '.join(sorted(unread))[:60])}`: "
                         "`/postmortem actions [mine] [all] [overdue] [unassigned] [service or team]`.")
    lines, open_count, done_count, now = [], 0, 0, utcnow()
    if only is not None and not any(r.incident_id == only for r in rows):
        return SkillResult(title="Action items", ephemeral=True, summary=(
            f"Incident #{only} has no postmortem yet, so no action items: `/postmortem draft {only}` writes one from "
            "its channel, where the follow-ups people named are found."))
    for row in rows:
        if (scope is not None and service_of.get(row.incident_id) not in scope.services) or (
                only is not None and row.incident_id != only):
            continue
        for n, item in enumerate((row.fields or {}).get("action_items") or [], start=1):
            if (mine and item.get("owner") != user) or (unowned and item.get("owner")):
                continue
            due = _due_date(item)
            if late and (due is None or due >= now.date() or item.get("done_at")):
                continue
            closed = bool(item.get("done_at"))
            done_count += closed
            open_count += not closed
            if closed and not every:
                continue
            owner = f"<@{item['owner']}>" if item.get("owner") else "*no owner*"
            when = due_words(item, now.date())
            state = f" ~done by <@{item.get('done_by')}>~" if closed else ""
            lines.append(f"*{row.incident_id}.{n}* {esc(str(item.get('text', ''))[:200])} ({owner}"
                         f"{'; ' + when if when else ''}; postmortem of #{row.incident_id} [{row.status}], "
                         f"{duration((now - row.created_at).total_seconds())} old){state}")
    which = (" of yours" if mine else "") + (" with no owner" if unowned else "") + (
        f" {esc(scope.label)}" if scope else "") + (f" of incident #{only}" if only is not None else "")
    kind = "overdue action item" if late else "open action item"
    if not lines:
        none = ("No overdue action items" if late else "No open action items") if not every else "No action items"
        return SkillResult(title="Action items", ephemeral=True,
                           summary=f"{none}{which}{f' ({done_count} done)' if done_count else ''}.")
    more = f" ({_LIMIT} shown)" if len(lines) > _LIMIT else ""
    done_part = "" if late else f", {done_count} done"
    summary = (f"{open_count} {kind}(s){which}{done_part}{more}. `/postmortem done <incident>.<n>` closes one"
               + ("; `/postmortem due <incident>.<n> <date>` moves one." if late else "."))
    return SkillResult(title="Action items", summary=summary, sections=(Section("", tuple(lines[:_LIMIT])),),
                       ephemeral=True)


@dataclass
class _Target:
    incident_id: int
    n: int
    top: Postmortem
    items: list[dict[str, Any]]

    @property
    def item(self) -> dict[str, Any]:
        return self.items[self.n - 1]

    @property
    def text(self) -> str:
        return esc(str(self.item.get("text", ""))[:200])

    @property
    def ref(self) -> str:
        return f"{self.incident_id}.{self.n}"


def _target(s: Session, ref: str, usage: str) -> _Target:
    m = ITEM_REF.match(ref)
    if m is None:
        raise SkillError(f"Which action item? {usage} (`/postmortem actions` lists them with their numbers).")
    incident_id, n = int(m.group(1)), int(m.group(2))
    top = store.latest(s, incident_id=incident_id)
    if top is None:
        raise SkillError(f"Incident #{incident_id} has no postmortem, so no action items.")
    items = [dict(a) for a in (top.fields or {}).get("action_items") or []]
    if not 1 <= n <= len(items):
        raise SkillError(f"The postmortem of #{incident_id} has {len(items)} action item(s); there is no "
                         f"{incident_id}.{n}.")
    return _Target(incident_id, n, top, items)


def _event(s: Session, t: _Target, kind: str, user: str, text: str) -> None:
    s.add(TimelineEvent(incident_id=t.incident_id, at=utcnow(), kind=kind, actor=user,
                        text=f"{text}: {str(t.item.get('text', ''))[:500]}"))


def mark_done(s: Session, ref: str, *, user: str | None, reopen: bool = False) -> SkillResult:
    """Close action item ``<incident>.<n>`` of the incident's newest postmortem version; ``reopen``: open it again
    (closed by mistake, or the fix did not hold)."""
    if not user:
        raise SkillError("Closing an action item needs to know who you are: ask in Slack.")
    t = _target(s, ref, "`/postmortem done <incident>.<n>`, e.g. `/postmortem done 109.2`")
    item, text, incident_id, n = t.item, t.text, t.incident_id, t.n
    if reopen:
        if not item.get("done_at"):
            return SkillResult(title="Action item", summary=f"*{t.ref}* {text} is open already.")
        closed_by = item.pop("done_by", None)
        item.pop("done_at", None)
        _save(s, t.top, t.items)
        _event(s, t, "action_reopened", user, f"Action item {n} reopened by <@{user}> (closed by <@{closed_by}>)")
        return SkillResult(title="Action item reopened", summary=f"<@{user}> reopened *{t.ref}* {text}.")
    if item.get("done_at"):
        return SkillResult(title="Action item", summary=f"*{t.ref}* {text} was already closed by "
                           f"<@{item.get('done_by')}>.")
    item.update(done_by=user, done_at=utcnow().isoformat(timespec="seconds"))
    _save(s, t.top, t.items)
    _event(s, t, "action_done", user, f"Action item {n} done by <@{user}>")
    left = sum(1 for a in t.items if not a.get("done_at"))
    return SkillResult(title="Action item closed", summary=f"<@{user}> closed *{t.ref}* {text}. "
                       f"{left} open action item(s) left on the postmortem of #{incident_id}. (By mistake? "
                       f"`/postmortem reopen {t.ref}`)")


def _owner_in(s: Session, text: str, user: str) -> tuple[str | None, str | None] | None:
    """The owner ``text`` names: a mention, ``me``, a known person's name; (None, None) for ``nobody``; None when
    it names none."""
    if m := _USER.search(text):
        uid = m.group(1) or m.group(2)
        person = s.scalar(select(Expert).where(Expert.slack_user_id == uid))
        return uid, person.name if person is not None else None
    words = [w.lower() for w in re.findall(r"[\w.'-]+", text)]
    if {"nobody", "noone", "none", "unassign", "unassigned"} & set(words) or "no one" in text.lower():
        return None, None
    if {"me", "myself", "i"} & set(words):
        person = s.scalar(select(Expert).where(Expert.slack_user_id == user))
        return user, person.name if person is not None else None
    for w in words:
        if len(w) < 3:
            continue
        found = [e for e in s.scalars(select(Expert).where(Expert.active.is_(True)))
                 if w in e.name.lower().split() or w == e.name.lower()]
        if len(found) == 1:
            return found[0].slack_user_id, found[0].name
    return None


def assign(s: Session, ref: str, who: str, *, user: str | None) -> SkillResult:
    """Give action item ``<incident>.<n>`` an owner (``who``: a mention, ``me``, a name; ``nobody`` takes it off)."""
    if not user:
        raise SkillError("Assigning an action item needs to know who you are: ask in Slack.")
    usage = "`/postmortem assign <incident>.<n> @someone` (or `me`, or `nobody`)"
    t = _target(s, ref, usage)
    owner = _owner_in(s, who, user)
    if owner is None:
        raise SkillError(f"Who should own *{t.ref}*? {usage}." if not who.strip() else
                         f"I do not know `{esc(who.strip()[:40])}`: {usage}.")
    uid, name = owner
    before = t.item.get("owner")
    if uid == before:
        return SkillResult(title="Action item", summary=f"*{t.ref}* {t.text} is "
                           + (f"<@{uid}>'s already." if uid else "unassigned already."))
    t.item.update(owner=uid, owner_name=name, owner_set_by=user, nudged=None)
    _save(s, t.top, t.items)
    was = f" (was <@{before}>)" if before else ""
    _event(s, t, "action_assigned", user, (f"Action item {t.n} assigned to <@{uid}> by <@{user}>{was}" if uid else
                                           f"Action item {t.n} unassigned by <@{user}>{was}"))
    undo = f"`/postmortem assign {t.ref} " + (f"<@{before}>`" if before else "nobody`")
    said = f"*{t.ref}* {t.text} is <@{uid}>'s now{was}." if uid else f"*{t.ref}* {t.text} has no owner now{was}."
    return SkillResult(title="Action item assigned", summary=f"{said} (By mistake? {undo})")


def _when(s: Session, text: str, user: str) -> dt.date | None:
    """The day ``text`` names, in ``user``'s own zone; None: it names none."""
    from skills.clock_words import moment, own_zone

    me = s.scalar(select(Expert).where(Expert.slack_user_id == user))
    zone = me.timezone if me is not None and me.timezone else ""
    now = utcnow().replace(microsecond=0)
    m = moment(text, zone, now, usage=_DATE_USAGE)
    if m is None:
        return None
    return m.at.replace(tzinfo=dt.UTC).astimezone(own_zone(zone)).date()


def set_due(s: Session, ref: str, when: str, *, user: str | None) -> SkillResult:
    """Give action item ``<incident>.<n>`` a due date (``when``: a day in words or a date; ``none`` takes it off)."""
    if not user:
        raise SkillError("Setting a due date needs to know who you are: ask in Slack.")
    usage = "`/postmortem due <incident>.<n> <date>` (or `none`)"
    t = _target(s, ref, usage)
    words = when.strip().lower()
    if words in ("none", "no", "never", "nothing", "-", "clear", "no date"):
        day = None
    else:
        day = _when(s, when, user)
        if day is None:
            raise SkillError(f"When is *{t.ref}* due? {usage}. {_DATE_USAGE}" if not words else
                             f"`{esc(when.strip()[:40])}` is not a date I can read. {_DATE_USAGE}")
        if day < utcnow().date() - dt.timedelta(days=1):
            raise SkillError(f"{day:%a %d %b %Y} is in the past: a due date is a day to come. {_DATE_USAGE}")
    before = _due_date(t.item)
    if day == before:
        return SkillResult(title="Action item", summary=f"*{t.ref}* {t.text} is "
                           + (f"due {day:%a %d %b} already." if day else "without a due date already."))
    t.item.update(due=day.isoformat() if day else None, due_set_by=user, nudged=None)
    _save(s, t.top, t.items)
    was = f" (was {before:%a %d %b})" if before else ""
    _event(s, t, "action_due", user, (f"Action item {t.n} due {day:%Y-%m-%d}, set by <@{user}>{was}" if day else
                                      f"Action item {t.n} due date removed by <@{user}>{was}"))
    undo = f"`/postmortem due {t.ref} " + (f"{before.isoformat()}`" if before else "none`")
    said = (f"*{t.ref}* {t.text} is due {day:%a %d %b %Y}{was}." if day else
            f"*{t.ref}* {t.text} has no due date now{was}.")
    return SkillResult(title="Action item due date", summary=f"{said} (By mistake? {undo})")


_ADD_OWNER = re.compile(r"[\s,;(]*+(?:owner\s*:?\s*|assign(?:ed)?\s+to\s+|for\s+)?(?:<@[UW][A-Z0-9]+(?:\|[^>]*)?>|@me)"
                        r"[\s,;)]*$", re.I)
_ADD_DUE = re.compile(r"[\s,;(]*+\b(?:by|due(?:\s+(?:by|on))?|before|until)\s+(?P<when>[^,;()]{2,40}?)[\s,;).]*$", re.I)


def add_item(s: Session, incident_id: int, text: str, *, user: str | None) -> SkillResult:
    """An action item nobody said in the channel, added to the newest postmortem version: ``text``, then
    optionally an owner (a mention, ``@me``) and a due date (``by friday``), in either order."""
    from skills.redact import mask_secrets

    if not user:
        raise SkillError("Adding an action item needs to know who you are: ask in Slack.")
    usage = "`/postmortem add <incident> <what to do> [@owner] [by <date>]`"
    top = store.latest(s, incident_id=incident_id)
    if top is None:
        raise SkillError(f"Incident #{incident_id} has no postmortem yet: `/postmortem draft {incident_id}` first, "
                         f"then {usage}.")
    body, owner, due = text.strip(), None, None
    for _ in range(2):  # "... @bob by friday" or "... by friday @bob"
        if owner is None and (m := _ADD_OWNER.search(body)):
            owner = _owner_in(s, m.group(0), user)
            body = body[:m.start()].rstrip()
            continue
        if due is None and (m := _ADD_DUE.search(body)):
            day = _when(s, m.group("when"), user)
            if day is not None:
                due, body = day, body[:m.start()].rstrip()
                continue
        break
    body = re.sub(r"\s+", " ", mask_secrets(body)).strip(" -:;,.")[:240]
    if len(_norm(body)) < 6:
        raise SkillError(f"What should be done? {usage}, e.g. `/postmortem add {incident_id} add an alert on "
                         "pool saturation @bob by friday`.")
    items = [dict(a) for a in (top.fields or {}).get("action_items") or []]
    same = next((n for n, a in enumerate(items, start=1) if _norm(str(a.get("text", ""))) == _norm(body)), None)
    if same is not None:
        return SkillResult(title="Action item", summary=f"*{incident_id}.{same}* {esc(body)} is on the postmortem "
                           "already.")
    if due is not None and due < utcnow().date() - dt.timedelta(days=1):
        raise SkillError(f"{due:%a %d %b %Y} is in the past: a due date is a day to come. {_DATE_USAGE}")
    uid, name = owner if owner is not None else (None, None)
    item: dict[str, Any] = {"text": body, "owner": uid, "owner_name": name, "permalink": None, "added_by": user,
                            "added_at": utcnow().isoformat(timespec="seconds")}
    if uid:
        item["owner_set_by"] = user
    if due is not None:
        item.update(due=due.isoformat(), due_set_by=user)
    items.append(item)
    _save(s, top, items)
    t = _Target(incident_id, len(items), top, items)
    _event(s, t, "action_added", user, f"Action item {t.n} added by <@{user}>")
    extra = (f", owner <@{uid}>" if uid else ", no owner") + (f", due {due:%a %d %b %Y}" if due else "")
    return SkillResult(title="Action item added", summary=f"<@{user}> added *{t.ref}* {esc(body)}{extra}. "
                       f"`/postmortem done {t.ref}` closes it.")


@dataclass(frozen=True)
class Nudge:
    incident_id: int
    n: int
    text: str
    owner: str | None
    due: dt.date


def overdue_nudges(s: Session, *, today: dt.date | None = None, limit: int = 200) -> list[Nudge]:
    """The open action items past their due date whose owner was not told yet (``mark_nudged`` once told; a new
    due date or owner clears the mark, so it is said again)."""
    today = today or utcnow().date()
    out: list[Nudge] = []
    for row in store.latest_fields(s):
        for n, a in enumerate((row.fields or {}).get("action_items") or [], start=1):
            due = _due_date(a)
            if not a.get("done_at") and not a.get("nudged") and due is not None and due < today:
                out.append(Nudge(row.incident_id, n, str(a.get("text", "")), a.get("owner"), due))
        if len(out) >= limit:
            break
    return out[:limit]


def mark_nudged(s: Session, nudge: Nudge, *, today: dt.date | None = None) -> None:
    """Record that ``nudge`` was said (on the newest version, if the item is still the one told about)."""
    top = store.latest(s, incident_id=nudge.incident_id)
    items = [dict(a) for a in ((top.fields or {}).get("action_items") or [] if top is not None else [])]
    if top is None or len(items) < nudge.n or _norm(str(items[nudge.n - 1].get("text", ""))) != _norm(nudge.text):
        return
    items[nudge.n - 1]["nudged"] = (today or utcnow().date()).isoformat()
    top.fields = {**(top.fields or {}), "action_items": items}
