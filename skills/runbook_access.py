"""Who may request and who may approve a runbook run, and the refusals that are audited.

Entries in ``allowed_users`` and ``approvers`` are Slack user ids (``U...``/``W...``), Slack user
group ids (``S...``, resolved by the bot through ``usergroups.users.list``; the skill gets the
resolver in ``ctx.resources["slack_usergroup_members"]``) or team names from the knowledge base
(the team's active experts, plus the team's Slack user group when it has one).

Whatever the lists say, guests, people from another organisation (Slack Connect), bots and deactivated
accounts never request or approve a run: the bot looks each person up (``users.info``, cached briefly) and
refuses when Slack cannot tell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session

from knowledge.runbook_store import audit, team_members
from knowledge.runbooks import RunbookSpec
from skills.base import PERSON_LOOKUP, USER_ID, SkillContext, SkillError, outsider

__all__ = ["members", "may_request", "may_approve", "approvers_to_ping", "refuse", "ENTRY_USER", "ENTRY_GROUP",
           "PERSON_LOOKUP",
           "outsider"]

ENTRY_USER = re.compile(rf"^{USER_ID}$")
ENTRY_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")


def _group_members(ctx: SkillContext, group: str) -> set[str]:
    resolve: Callable[[str], Iterable[str]] | None = ctx.resources.get("slack_usergroup_members")
    return set(resolve(group)) if resolve is not None else set()


def members(session: Session, ctx: SkillContext, entries: Iterable[str]) -> set[str]:
    """Every Slack user id that the entries name."""
    out: set[str] = set()
    for e in entries:
        if ENTRY_USER.match(e):
            out.add(e)
        elif ENTRY_GROUP.match(e):
            out |= _group_members(ctx, e)
        else:
            found = team_members(session, team=e)
            if found is not None:
                users, group = found
                out |= users
                if group:
                    out |= _group_members(ctx, group)
    return out


def approvers_to_ping(session: Session, ctx: SkillContext, spec: RunbookSpec, requester: str | None,
                      limit: int = 5) -> list[str]:
    """Who to mention on an approval request, so the approvers learn of it: a person named in ``approvers``; a Slack
    user group, as the group; for a team, whoever is on call for it now (else its Slack user group), as long as
    they may approve (never the requester of a high-risk run)."""
    from knowledge.people import oncall_by_team

    eligible = members(session, ctx, spec.approvers)
    if spec.risk == "high" and requester:
        eligible.discard(requester)
    out: list[str] = []
    for e in spec.approvers:
        if ENTRY_USER.match(e):
            out += [f"<@{e}>"] if e in eligible else []
        elif ENTRY_GROUP.match(e):
            out.append(f"<!subteam^{e}>")
        else:
            try:
                on_call = [u for r in oncall_by_team(session=session, team=e) for u, _ in r.people if u in eligible]
            except LookupError:
                on_call = []
            group = (team_members(session, team=e) or (set(), None))[1]
            out += [f"<@{u}>" for u in on_call] or ([f"<!subteam^{group}>"] if group else [])
    return list(dict.fromkeys(out))[:limit]


def _not_one_of_us(ctx: SkillContext, user: str) -> str | None:
    """Why this account may never run or approve anything (None: a full member, or no Slack here to ask)."""
    what = outsider(ctx, user)
    return None if what is None else f"{what} cannot run or approve runbooks; ask a member of this workspace"


def may_request(session: Session, ctx: SkillContext, spec: RunbookSpec, user: str | None,
                channel: str | None) -> str | None:
    """Why ``user`` may not request ``spec`` in ``channel`` (None: allowed)."""
    if not user:
        return "I cannot tell who is asking, so I will not run anything"
    if (why := _not_one_of_us(ctx, user)) is not None:
        return why
    if spec.allowed_channels and channel not in spec.allowed_channels:
        return f"`{spec.slug}` may only be run in " + ", ".join(f"<#{c}>" for c in spec.allowed_channels)
    if spec.allowed_users and user not in members(session, ctx, spec.allowed_users):
        return (f"you are not allowed to run `{spec.slug}` (allowed: {', '.join(spec.allowed_users)}); "
                "ask someone from those teams")
    return None


def may_approve(session: Session, ctx: SkillContext, spec: RunbookSpec, user: str | None,
                requester: str) -> str | None:
    """Why ``user`` may not approve a run of ``spec`` requested by ``requester`` (None: allowed)."""
    if not user:
        return "I cannot tell who is approving"
    if (why := _not_one_of_us(ctx, user)) is not None:
        return why
    if spec.risk == "high" and user == requester:
        return (f"`{spec.slug}` is high risk: the person who asked for the run cannot approve it; "
                f"someone else from {', '.join(spec.approvers)} must")
    if user not in members(session, ctx, spec.approvers):
        return f"only {', '.join(spec.approvers)} can approve `{spec.slug}`"
    return None


def refuse(ctx: SkillContext, *, actor: str | None, reason: str, subject: str | None = None,
           execution_id: int | None = None, detail: dict[str, object] | None = None) -> SkillError:
    """Audit a refusal in its own transaction and return the error to raise (message for the user)."""
    with ctx.db.session() as s:
        audit(s, actor=actor, action="runbook.refused", subject=subject, execution_id=execution_id,
              detail={"reason": reason, **(detail or {})})
    return SkillError(f":no_entry: Refused: {reason}")
