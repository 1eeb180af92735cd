"""The approval state machine of a runbook run, driven by signed button clicks.

::

    pending --confirm (requester)--> queued (low risk)      --worker--> running --> succeeded
            \\                     \\-> awaiting_approval --approve--> queued              \\-> failed
             \\--cancel--> cancelled           \\--reject--> rejected     running --cancel--> cancelling --> cancelled

Every button carries ``<execution id>:<runbook version>:<nonce>``; the nonce is rotated on every
state change, so a replayed click, a forged value or a click on an old message is refused. An
approval is refused when the runbook changed since the request (the approver must see what runs).
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from knowledge import jobs
from knowledge.models import RunbookExecution, utcnow
from knowledge.runbook_store import (
    EXPIRES,
    audit,
    expire_waiting,
    get_execution,
    get_runbook,
    retired_note,
    spec_of,
    transition,
)
from knowledge.runbooks import RunbookSpec
from skills.base import Action, SkillContext, SkillError, SkillResult, db_id, duration, slack_when, small_int
from skills.runbook_access import approvers_to_ping, may_approve, refuse

__all__ = ["ButtonValue", "button_value", "parse_button", "load_checked", "confirm", "approve", "reject",
           "cancel", "cancel_run", "enqueue_execution", "approval_ttl", "shown_status", "EXECUTE_JOB"]

EXECUTE_JOB = "runbook.execute"
SKILL = "runbooks"


@dataclass(frozen=True)
class ButtonValue:
    execution_id: int
    version: int
    nonce: str


def button_value(row: RunbookExecution) -> str:
    return f"{row.id}:{row.runbook_version}:{row.nonce}"


def parse_button(ctx: SkillContext, value: str, user: str | None) -> ButtonValue:
    """Parse a button value, refusing (and auditing) anything malformed."""
    parts = (value or "").split(":")
    execution_id = db_id(parts[0]) if len(parts) == 3 else None
    version = small_int(parts[1]) if len(parts) == 3 else None
    if execution_id is None or version is None or not parts[2]:
        raise refuse(ctx, actor=user, reason="this button is not one of mine (malformed value)",
                     detail={"value": (value or "")[:200]})
    return ButtonValue(execution_id, version, parts[2])


def load_checked(s: Session, ctx: SkillContext, bv: ButtonValue, user: str | None, states: tuple[str, ...],
                 verb: str) -> tuple[RunbookExecution, RunbookSpec]:
    """The execution a button names, after checking nonce, version and state (refusals audited)."""
    row = get_execution(s, execution_id=bv.execution_id)
    if row is None:
        raise refuse(ctx, actor=user, reason=f"there is no run #{bv.execution_id}", detail={"verb": verb})
    if not hmac.compare_digest(row.nonce or "", bv.nonce) or row.runbook_version != bv.version:
        raise refuse(ctx, actor=user, execution_id=row.id, subject=f"execution {row.id}",
                     reason="this button is stale or forged (it no longer matches the run); use the latest message",
                     detail={"verb": verb})
    if row.status not in states:
        raise refuse(ctx, actor=user, execution_id=row.id, subject=f"execution {row.id}",
                     reason=f"run #{row.id} is {row.status}, it cannot be {verb} now", detail={"verb": verb})
    ttl = approval_ttl(ctx)
    age = utcnow() - row.requested_at
    if row.status in EXPIRES and age > ttl:  # what an incident needed then, not now: asked for again, or not at all
        if expire_waiting(s, ttl=ttl, execution_id=row.id):
            s.commit()  # the refusal below rolls this session back
        raise refuse(ctx, actor=user, execution_id=row.id, subject=f"execution {row.id}",
                     reason=(f"run #{row.id} was requested {duration(age.total_seconds())} ago and expired (a run "
                             f"must be confirmed and approved within {duration(ttl.total_seconds())}); request it "
                             "again if it is still needed"), detail={"verb": verb})
    latest = get_runbook(s, slug=row.runbook_slug)
    if latest is not None and not latest.active:  # no version active: retired
        retired = retired_note(s, slug=row.runbook_slug) or "retired"
        raise refuse(ctx, actor=user, execution_id=row.id, subject=f"execution {row.id}",
                     reason=f"`{row.runbook_slug}` was {retired}; it no longer runs", detail={"verb": verb})
    if latest is None or latest.version != row.runbook_version or not latest.active:
        raise refuse(ctx, actor=user, execution_id=row.id, subject=f"execution {row.id}",
                     reason=(f"`{row.runbook_slug}` changed since this run was requested (requested v"
                             f"{row.runbook_version}, now v{latest.version if latest else '?'}); request it again"),
                     detail={"verb": verb})
    return row, spec_of(latest)


def approval_ttl(ctx: SkillContext) -> dt.timedelta:
    """How long a request waits for confirmation and approval before it expires (``runbook_approval_ttl_min``)."""
    return dt.timedelta(minutes=getattr(ctx.settings, "runbook_approval_ttl_min", 60))


def shown_status(ctx: SkillContext, row: RunbookExecution) -> str:
    """The status to show: "expired" for a request past its time that nobody clicked since (it is marked so when
    someone does)."""
    return "expired" if row.status in EXPIRES and utcnow() - row.requested_at > approval_ttl(ctx) else row.status


def enqueue_execution(s: Session, row: RunbookExecution) -> None:
    jobs.enqueue(s, kind=EXECUTE_JOB, payload={"execution_id": row.id}, dedup_key=f"{EXECUTE_JOB}:{row.id}",
                 max_attempts=1)


def _buttons(row: RunbookExecution, *verbs: tuple[str, str, str | None]) -> tuple[Action, ...]:
    return tuple(Action(f"{SKILL}:{v}", label, button_value(row), style) for v, label, style in verbs)


def confirm(ctx: SkillContext, value: str, user: str | None, channel: str | None, message_ts: str | None
            ) -> SkillResult:
    """The requester confirms the previewed run: queue it (low risk) or ask for approval."""
    bv = parse_button(ctx, value, user)
    with ctx.db.session() as s:
        row, spec = load_checked(s, ctx, bv, user, ("pending",), "confirmed")
        if user != row.requested_by:
            reason = f"only <@{row.requested_by}>, who asked for run #{row.id}, can confirm it"
            s.rollback()
            raise refuse(ctx, actor=user, execution_id=row.id, subject=f"execution {row.id}", reason=reason)
        to = "queued" if spec.risk == "low" else "awaiting_approval"
        transition(s, execution_id=row.id, from_states=("pending",), to_state=to,
                   channel_id=row.channel_id or channel, thread_ts=row.thread_ts or message_ts)
        s.refresh(row)
        audit(s, actor=user, action="runbook.confirmed", subject=f"{spec.slug}@v{spec.version}",
              execution_id=row.id, detail={"params": row.params, "next": to})
        if to == "queued":
            enqueue_execution(s, row)
            return SkillResult(title=f"Running {spec.slug} (run #{row.id})",
                               summary=f"<@{user}> confirmed; output follows in this thread.",
                               actions=_buttons(row, ("cancel", "Cancel run", "danger")))
        who = ", ".join(spec.approvers)
        extra = " (not the requester)" if spec.risk == "high" else ""
        left = row.requested_at + approval_ttl(ctx)
        ping = approvers_to_ping(s, ctx, spec, user)  # they learn of it (the request was seen only by chance)
        return SkillResult(
            title=f"Approval needed: {spec.slug} v{spec.version} (run #{row.id})",
            summary=f"<@{user}> asked to run a {spec.risk}-risk runbook. Someone from *{who}*{extra} must approve, "
                    f"by {slack_when(left, time_only=True)} (then the request expires)."
                    + (f" {', '.join(ping)}: can you approve or reject it?" if ping else
                       " Nobody who can approve is on call now: ask them directly."),
            actions=_buttons(row, ("approve", "Approve", "primary"), ("reject", "Reject", "danger")))


def approve(ctx: SkillContext, value: str, user: str | None) -> SkillResult:
    """An approver lets the run go (never the requester of a high-risk run)."""
    bv = parse_button(ctx, value, user)
    with ctx.db.session() as s:
        row, spec = load_checked(s, ctx, bv, user, ("awaiting_approval",), "approved")
        why = may_approve(s, ctx, spec, user, row.requested_by)
        if why:
            s.rollback()
            raise refuse(ctx, actor=user, execution_id=bv.execution_id, subject=f"execution {bv.execution_id}",
                         reason=why, detail={"verb": "approve"})
        transition(s, execution_id=row.id, from_states=("awaiting_approval",), to_state="queued", approved_by=user)
        s.refresh(row)
        audit(s, actor=user, action="runbook.approved", subject=f"{spec.slug}@v{spec.version}",
              execution_id=row.id, detail={"requested_by": row.requested_by, "params": row.params})
        enqueue_execution(s, row)
        return SkillResult(title=f"Approved: {spec.slug} (run #{row.id})",
                           summary=f"<@{user}> approved the run requested by <@{row.requested_by}>; "
                                   "output follows in this thread.",
                           actions=_buttons(row, ("cancel", "Cancel run", "danger")))


def reject(ctx: SkillContext, value: str, user: str | None) -> SkillResult:
    bv = parse_button(ctx, value, user)
    with ctx.db.session() as s:
        row, spec = load_checked(s, ctx, bv, user, ("awaiting_approval",), "rejected")
        why = may_approve(s, ctx, spec, user, "")
        if why and user != row.requested_by:
            s.rollback()
            raise refuse(ctx, actor=user, execution_id=row.id, subject=f"execution {row.id}", reason=why)
        transition(s, execution_id=row.id, from_states=("awaiting_approval",), to_state="rejected",
                   finished_at=utcnow())
        audit(s, actor=user, action="runbook.rejected", subject=f"{spec.slug}@v{spec.version}", execution_id=row.id)
    return SkillResult(title=f"Rejected: {spec.slug} (run #{row.id})", summary=f"<@{user}> rejected the run.")


def cancel(ctx: SkillContext, value: str, user: str | None) -> SkillResult:
    """Cancel before it starts, or ask a running run to stop (the worker kills the current step)."""
    bv = parse_button(ctx, value, user)
    with ctx.db.session() as s:
        row = get_execution(s, execution_id=bv.execution_id)
        if row is None or not hmac.compare_digest(row.nonce or "", bv.nonce):
            s.rollback()
            raise refuse(ctx, actor=user, reason="this cancel button is stale or forged",
                         detail={"verb": "cancel"})
    return cancel_run(ctx, bv.execution_id, user)


def cancel_run(ctx: SkillContext, execution_id: int, user: str | None) -> SkillResult:
    """:func:`cancel` by the run's number (``/runbook cancel 12``: its button may be far up the thread, or in a
    message the person cannot find); the same rule: the requester, whoever approved it, or an approver."""
    with ctx.db.session() as s:
        row = get_execution(s, execution_id=execution_id)
        if row is None:
            raise SkillError(f"There is no run #{execution_id}. `/runbook history` lists the runs.")
        spec = spec_of(get_runbook(s, slug=row.runbook_slug, version=row.runbook_version))  # type: ignore[arg-type]
        allowed = user == row.requested_by or user == row.approved_by or \
            may_approve(s, ctx, spec, user, "") is None
        if not allowed:
            s.rollback()
            raise refuse(ctx, actor=user, execution_id=row.id, subject=f"execution {row.id}",
                         reason=f"only the requester or an approver of `{spec.slug}` can cancel run #{row.id}")
        before = row.status
        if before in ("pending", "awaiting_approval", "queued"):
            ok = transition(s, execution_id=row.id, from_states=(before,), to_state="cancelled", finished_at=utcnow())
        elif before == "running":
            ok = transition(s, execution_id=row.id, from_states=("running",), to_state="cancelling")
        else:
            ok = False
        if not ok:
            s.rollback()
            raise refuse(ctx, actor=user, execution_id=row.id, subject=f"execution {row.id}",
                         reason=f"run #{row.id} is {before}; nothing to cancel")
        audit(s, actor=user, action="runbook.cancel_requested", subject=f"{spec.slug}@v{spec.version}",
              execution_id=row.id, detail={"was": before})
    note = "it stops after killing the current step" if before == "running" else "it will not run"
    return SkillResult(title=f"Cancelled: {spec.slug} (run #{row.id})", summary=f"<@{user}> cancelled; {note}.")


def describe(row: RunbookExecution) -> dict[str, Any]:
    return {"id": row.id, "runbook": row.runbook_slug, "version": row.runbook_version, "status": row.status,
            "params": row.params, "requested_by": row.requested_by, "approved_by": row.approved_by}
