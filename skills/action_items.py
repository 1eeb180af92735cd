"""Postmortem action items: the follow-ups people named during an incident, tracked until someone closes them.

The postmortem writer finds them in the incident's conversation ("we should add a pool alert", "TODO:",
"action item: ... @bob"). ``/postmortem actions [mine] [all] [service or team]`` lists the open ones of every
incident's newest postmortem version, oldest incident first, each numbered ``<incident>.<n>``;
``/postmortem done <incident>.<n>`` closes one (who, when) on that version (``/postmortem reopen <incident>.<n>``
opens it again) and says so on the incident's
timeline, so the postmortem's history shows it. A later version (edited, regenerated, published) keeps the
marks of the items whose text is the same (``carry_done``).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import postmortems as store
from knowledge.models import Incident, Postmortem, TimelineEvent, utcnow
from skills.base import Section, SkillError, SkillResult, duration, esc

__all__ = ["carry_done", "listing", "mark_done", "ITEM_REF"]

ITEM_REF = re.compile(r"^\W*(?:#|inc-?)?(\d{1,9})[.:/](\d{1,3})\W*$", re.I)  # "109.2", "#109.2"
_LIMIT = 25


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def carry_done(fields: dict[str, Any], top: Postmortem | None) -> None:
    """Copy the done marks of ``top``'s action items onto the items of a new version with the same text."""
    done = {_norm(str(a.get("text", ""))): a for a in ((top.fields or {}).get("action_items") or [] if top else [])
            if a.get("done_at")}
    for item in fields.get("action_items") or []:
        old = done.get(_norm(str(item.get("text", ""))))
        if old is not None:
            item.update(done_by=old.get("done_by"), done_at=old["done_at"])


def listing(s: Session, text: str, *, user: str | None, strict: bool = False) -> SkillResult:
    """Open action items (``all``: done ones too; ``mine``: owned by ``user``; a service or team name: its
    incidents'), oldest incident first; ``strict`` (the slash command): a word it cannot read is an error."""
    from knowledge.people import scope_in_text

    words = set(re.findall(r"[\w-]+", text.lower()))
    mine, every = bool({"mine", "my", "me"} & words), "all" in words
    if mine and not user:
        raise SkillError("`mine` needs to know who you are: ask in Slack.")
    rows = store.latest_fields(s)  # every postmortem, oldest incident first (not only the newest 1,000)
    service_of = dict(s.execute(select(Incident.id, Incident.service_name).where(
        Incident.id.in_([r.incident_id for r in rows if (r.fields or {}).get("action_items")]))).all())
    scope = scope_in_text(session=s, text=text)  # a service, or a team's services
    unread = words - {"mine", "my", "me", "all", "actions", "action", "items", "open", "of", "for", "on", "the",
                      "and"} - {n.lower() for n in (scope.names if scope else ())}
    if unread and strict:  # "payments" was ignored: every team's items, as if no name had been given
        raise SkillError(f"I cannot filter action items by `{esc(' '.join(sorted(unread))[:60])}`: "
                         "`/postmortem actions [mine] [all] [service or team]`.")
    lines, open_count, done_count, now = [], 0, 0, utcnow()
    for row in rows:
        if scope is not None and service_of.get(row.incident_id) not in scope.services:
            continue
        for n, item in enumerate((row.fields or {}).get("action_items") or [], start=1):
            if mine and item.get("owner") != user:
                continue
            closed = bool(item.get("done_at"))
            done_count += closed
            open_count += not closed
            if closed and not every:
                continue
            owner = f"<@{item['owner']}>" if item.get("owner") else "*no owner*"
            state = f" ~done by <@{item.get('done_by')}>~" if closed else ""
            lines.append(f"*{row.incident_id}.{n}* {esc(str(item.get('text', ''))[:200])} ({owner}; postmortem of "
                         f"#{row.incident_id} [{row.status}], {duration((now - row.created_at).total_seconds())} "
                         f"old){state}")
    which = (" of yours" if mine else "") + (f" {esc(scope.label)}" if scope else "")
    if not lines:
        none = "No open action items" if not every else "No action items"
        return SkillResult(title="Action items", ephemeral=True,
                           summary=f"{none}{which}{f' ({done_count} done)' if done_count else ''}.")
    more = f" ({_LIMIT} shown)" if len(lines) > _LIMIT else ""
    summary = (f"{open_count} open action item(s){which}, {done_count} done{more}. "
               "`/postmortem done <incident>.<n>` closes one.")
    return SkillResult(title="Action items", summary=summary, sections=(Section("", tuple(lines[:_LIMIT])),),
                       ephemeral=True)


def mark_done(s: Session, ref: str, *, user: str | None, reopen: bool = False) -> SkillResult:
    """Close action item ``<incident>.<n>`` of the incident's newest postmortem version; ``reopen``: open it again
    (closed by mistake, or the fix did not hold)."""
    m = ITEM_REF.match(ref)
    if m is None:
        raise SkillError("Which action item? `/postmortem done <incident>.<n>`, e.g. `/postmortem done 109.2` "
                         "(`/postmortem actions` lists them with their numbers).")
    if not user:
        raise SkillError("Closing an action item needs to know who you are: ask in Slack.")
    incident_id, n = int(m.group(1)), int(m.group(2))
    top = store.latest(s, incident_id=incident_id)
    if top is None:
        raise SkillError(f"Incident #{incident_id} has no postmortem, so no action items.")
    items = [dict(a) for a in (top.fields or {}).get("action_items") or []]
    if not 1 <= n <= len(items):
        raise SkillError(f"The postmortem of #{incident_id} has {len(items)} action item(s); there is no "
                         f"{incident_id}.{n}.")
    item = items[n - 1]
    text = esc(str(item.get("text", ""))[:200])
    if reopen:
        if not item.get("done_at"):
            return SkillResult(title="Action item", summary=f"*{incident_id}.{n}* {text} is open already.")
        closed_by = item.pop("done_by", None)
        item.pop("done_at", None)
        items[n - 1] = item
        top.fields = {**(top.fields or {}), "action_items": items}
        s.add(TimelineEvent(incident_id=incident_id, at=utcnow(), kind="action_reopened", actor=user,
                            text=f"Action item {n} reopened by <@{user}> (closed by <@{closed_by}>): "
                                 f"{str(item.get('text', ''))[:500]}"))
        return SkillResult(title="Action item reopened", summary=f"<@{user}> reopened *{incident_id}.{n}* {text}.")
    if item.get("done_at"):
        return SkillResult(title="Action item", summary=f"*{incident_id}.{n}* {text} was already closed by "
                           f"<@{item.get('done_by')}>.")
    item.update(done_by=user, done_at=utcnow().isoformat(timespec="seconds"))
    items[n - 1] = item
    top.fields = {**(top.fields or {}), "action_items": items}
    s.add(TimelineEvent(incident_id=incident_id, at=utcnow(), kind="action_done", actor=user,
                        text=f"Action item {n} done by <@{user}>: {str(item.get('text', ''))[:500]}"))
    left = sum(1 for a in items if not a.get("done_at"))
    return SkillResult(title="Action item closed", summary=f"<@{user}> closed *{incident_id}.{n}* {text}. "
                       f"{left} open action item(s) left on the postmortem of #{incident_id}. (By mistake? "
                       f"`/postmortem reopen {incident_id}.{n}`)")
