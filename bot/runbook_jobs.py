"""The ``runbook.execute`` job: runs an approved runbook in a worker, streaming into the thread.

Also the bot-side parts the runbook skill needs: resolving Slack user groups through the Web API
(``usergroups.users.list``, cached briefly) and, on start, marking runs that a stopped bot left
``running`` as ``interrupted``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from bot.slack_client import SlackApiError
from knowledge.models import RunbookExecution, TimelineEvent, utcnow
from knowledge.runbook_store import (
    NOTICE_JOB,
    audit,
    expire_waiting,
    get_runbook,
    mark_interrupted,
    spec_of,
    transition,
)
from skills.runbook_exec import PlannedStep, StepOutcome, plan, run_step
from skills.runbooks import policy_for

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["register", "recover_interrupted", "execute", "expire_sweep", "schedule_sweep", "EXPIRE_SWEEP"]

log = logging.getLogger("warroom.runbooks")

MAX_STORED_OUTPUT = 64_000
_ICON = {"ok": ":white_check_mark:", "failed": ":x:", "timeout": ":hourglass:", "cancelled": ":octagonal_sign:",
         "blocked": ":no_entry:", "manual": ":memo:"}


def recover_interrupted(services: Services) -> list[int]:
    """Mark executions left running by a previous process as interrupted (never succeeded)."""
    try:
        with services.db.session() as s:
            ids = mark_interrupted(s)
    except Exception as exc:  # noqa: BLE001 - a database without the tables yet must not stop the start
        log.warning("could not check for interrupted runbook runs: %s", exc)
        return []
    if ids:
        log.warning("marked runbook runs %s as interrupted", ids)
    return ids


def _usergroup_resolver(services: Services) -> Any:
    cache: dict[str, tuple[float, set[str]]] = {}

    def resolve(group: str) -> set[str]:
        hit = cache.get(group)
        if hit and time.monotonic() - hit[0] < 60:
            return hit[1]
        try:
            users = set(services.poster.client.usergroups_users_list(usergroup=group).get("users") or [])
        except SlackApiError as exc:
            log.warning("cannot resolve user group %s: %s", group, exc)
            users = set()
        cache[group] = (time.monotonic(), users)
        return users

    return resolve


def _post(services: Services, channel: str | None, thread: str | None, text: str) -> None:
    if not channel:
        return
    try:
        services.poster.post(channel, text[:3900], thread_ts=thread)
    except SlackApiError as exc:  # the run goes on; the audit log has everything
        log.warning("could not post runbook progress: %s", exc)


def _status(services: Services, execution_id: int) -> str:
    with services.db.session() as s:
        row = s.get(RunbookExecution, execution_id)
        return row.status if row else "missing"


def _cancel_probe(services: Services, execution_id: int) -> Any:
    last = [0.0, False]

    def should_cancel() -> bool:
        if time.monotonic() - last[0] > 0.25:
            last[0], last[1] = time.monotonic(), _status(services, execution_id) == "cancelling"
        return bool(last[1])

    return should_cancel


def _step_text(step: PlannedStep, out: StepOutcome) -> str:
    head = f"{_ICON.get(out.status, '')} step {step.index} *{step.name}*: {out.status}"
    if out.exit_code is not None and step.kind == "shell":
        head += f" (exit {out.exit_code}, {out.seconds:.1f}s)"
    body = out.output.strip().replace("```", "'''")
    if not body:
        return head
    return f"{head}\n{body}" if out.status == "manual" else f"{head}\n```{body[-3000:]}```"


def execute(services: Services, payload: dict[str, Any]) -> None:
    """Run one queued execution; idempotent (a second delivery finds it no longer queued)."""
    eid = int(payload["execution_id"])
    with services.db.session() as s:
        row = s.get(RunbookExecution, eid)
        if row is None:
            return
        if row.status in ("running", "cancelling"):
            # The job came back: its lease ran out. Never run twice. If the run is past every step's
            # timeout, its worker is gone: interrupted. Otherwise it is still going on elsewhere.
            spec = spec_of(get_runbook(s, slug=row.runbook_slug, version=row.runbook_version))  # type: ignore[arg-type]
            budget = sum(st.timeout_s for st in spec.steps) + 120
            started = row.started_at or row.requested_at
            if (utcnow() - started).total_seconds() > budget:
                transition(s, execution_id=eid, from_states=("running", "cancelling"), to_state="interrupted",
                           rotate=False, finished_at=utcnow())
                audit(s, actor="warroom", action="runbook.interrupted", execution_id=eid,
                      detail={"reason": "the worker running it stopped"})
            return
        if not transition(s, execution_id=eid, from_states=("queued",), to_state="running", rotate=False,
                          started_at=utcnow()):
            return
        spec = spec_of(get_runbook(s, slug=row.runbook_slug, version=row.runbook_version))  # type: ignore[arg-type]
        params, channel, thread = dict(row.params), row.channel_id, row.thread_ts
        requested_by, approved_by, incident_id = row.requested_by, row.approved_by, row.incident_id
        audit(s, actor="warroom", action="runbook.started", subject=f"{spec.slug}@v{spec.version}", execution_id=eid,
              detail={"params": params, "requested_by": requested_by, "approved_by": approved_by})
    ctx = services.ctx
    steps = plan(spec, params, policy_for(ctx))
    _post(services, channel, thread, f":gear: Running `{spec.slug}` v{spec.version} (run #{eid}), "
                                      f"{len(steps)} step(s).")
    should_cancel = _cancel_probe(services, eid)
    outputs: list[str] = []
    final = "succeeded"
    for step in steps:
        if should_cancel():
            final = "cancelled"
            break
        out = run_step(step, policy_for(ctx), should_cancel)
        text = _step_text(step, out)
        outputs.append(text)
        _post(services, channel, thread, text)
        with services.db.session() as s:
            audit(s, actor="warroom", action="runbook.step", subject=f"{spec.slug} step {step.index}",
                  execution_id=eid, detail={"step": step.index, "name": step.name, "kind": step.kind,
                                            "argv": list(step.argv), "url": step.url, "status": out.status,
                                            "exit_code": out.exit_code, "seconds": round(out.seconds, 3),
                                            "output": out.output[:4000]})
        if out.status == "cancelled":
            final = "cancelled"
            break
        if out.status in ("failed", "timeout", "blocked"):
            final = "failed"
            break
    with services.db.session() as s:
        stored = "\n\n".join(outputs)[-MAX_STORED_OUTPUT:]
        done = transition(s, execution_id=eid, from_states=("running", "cancelling"), to_state=final,
                          rotate=False, finished_at=utcnow(), output=stored)
        if not done:  # marked interrupted meanwhile by a restarting replica: leave it so
            final = _status(services, eid)
        audit(s, actor="warroom", action=f"runbook.{final}", subject=f"{spec.slug}@v{spec.version}",
              execution_id=eid, detail={"status": final, "steps_run": len(outputs)})
        if incident_id is not None:
            s.add(TimelineEvent(incident_id=incident_id, kind="runbook", actor=approved_by or requested_by,
                                text=f"Runbook {spec.slug} v{spec.version} (run #{eid}): {final}",
                                data={"execution_id": eid}))
    icon = {"succeeded": ":white_check_mark:", "cancelled": ":octagonal_sign:"}.get(final, ":x:")
    _post(services, channel, thread, f"{icon} Run #{eid} of `{spec.slug}` {final}.")


EXPIRE_SWEEP = "runbook.expire_sweep"
SWEEP_EVERY_S = 600


def expire_sweep(services: Services) -> list[int]:
    """Expire the requests nobody confirmed or approved in time (``knowledge.runbook_store.expire_waiting``): their
    outcome is in the audit log and their requester is told, without anyone clicking an old button."""
    from skills.runbook_flow import approval_ttl

    with services.db.session() as s:
        ids = expire_waiting(s, ttl=approval_ttl(services.ctx))
    if ids:
        log.info("expired runbook requests %s (not confirmed or approved in time)", ids)
    return ids


def schedule_sweep(services: Services, delay_s: float) -> None:
    """Queue the sweep ``delay_s`` from now, once per slot whoever asks (replicas, restarts)."""
    slot = int((utcnow().timestamp() + delay_s) // SWEEP_EVERY_S)
    services.runner.submit(EXPIRE_SWEEP, {}, f"{EXPIRE_SWEEP}:{slot}", delay_s=delay_s)


def register(services: Services) -> None:
    """Register the job kind and give the skill its user-group resolver."""
    services.ctx.resources["slack_usergroup_members"] = _usergroup_resolver(services)
    services.runner.register("runbook.execute", lambda payload: execute(services, payload))
    services.runner.register(NOTICE_JOB, lambda payload: _post(services, str(payload["channel"]),
                                                               payload.get("thread_ts"), str(payload["text"])))

    def sweep(payload: dict[str, Any]) -> None:
        try:
            expire_sweep(services)
        finally:
            if services.settings.mode not in ("test", "demo"):
                schedule_sweep(services, SWEEP_EVERY_S)

    services.runner.register(EXPIRE_SWEEP, sweep)
