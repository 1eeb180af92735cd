"""Runbooks in the knowledge base: versioned storage, import/export, executions and the audit log.

Every change to a runbook's content makes a new version (the old one stays, inactive), so an
execution always names the exact version it was requested, approved and run with. The audit log
is append-only: this module only ever inserts into it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from knowledge.models import AuditRecord, Expert, Incident, Runbook, RunbookExecution, Team, utcnow
from knowledge.runbooks import RunbookFormatError, RunbookSpec, parse_runbook, spec_from_row_fields, to_markdown

__all__ = [
    "SAMPLE_RUNBOOKS", "UpsertResult", "upsert_runbook", "get_runbook", "list_runbooks", "spec_of",
    "import_dir", "export_dir", "seed_runbooks", "audit", "new_nonce", "create_execution", "get_execution",
    "transition", "mark_interrupted", "recent_executions", "audit_rows", "team_members", "past_resolutions",
    "ACTIVE_STATES", "Retired", "retire_runbook", "retire_missing", "retired_note", "NOTICE_JOB", "EXPIRES",
    "expire_waiting",
]

SAMPLE_RUNBOOKS = Path(__file__).resolve().parent / "sample_world" / "runbooks"
ACTIVE_STATES = ("queued", "running", "cancelling")
WAITING_STATES = ("pending", "awaiting_approval", "queued")  # requested, not started: a retirement cancels them
NOTICE_JOB = "runbook.notice"  # payload {channel, thread_ts, text}: a line into a run's thread (bot/runbook_jobs.py)


@dataclass(frozen=True)
class UpsertResult:
    slug: str
    version: int
    changed: bool
    revived: bool = False  # a retired runbook imported again as it was: active again, the same version


def spec_of(row: Runbook) -> RunbookSpec:
    """The validated spec of a stored runbook row."""
    meta = {"id": row.slug, "title": row.title, "services": row.services, "alert_names": row.alert_names,
            "tags": row.tags, "risk": row.risk, "auto_safe": row.auto_safe, "approvers": row.approvers,
            "allowed_users": row.allowed_users, "allowed_channels": row.allowed_channels,
            "parameters": row.parameters, "steps": row.steps}
    return spec_from_row_fields(meta, row.body, source=f"runbook {row.slug} v{row.version}", version=row.version)


def get_runbook(session: Session, *, slug: str, version: int | None = None) -> Runbook | None:
    """The active (latest) version of a runbook, or a given version."""
    q = select(Runbook).where(Runbook.slug == slug)
    q = q.where(Runbook.version == version) if version is not None else q.order_by(Runbook.version.desc())
    return session.scalars(q.limit(1)).first()


def list_runbooks(session: Session, *, service: str | None = None) -> list[Runbook]:
    """Latest version of every active runbook, optionally only those for ``service``."""
    rows = list(session.scalars(select(Runbook).where(Runbook.active.is_(True)).order_by(Runbook.slug)))
    if service:  # "postgres" also finds the runbooks for postgres-main; a tag counts too ("kafka", "dns")
        want = service.lower()
        rows = [r for r in rows if not r.services or want in (t.lower() for t in r.tags or [])
                or any(x.lower() == want or x.lower().startswith(f"{want}-") for x in r.services)]
    return rows


def upsert_runbook(session: Session, *, spec: RunbookSpec) -> UpsertResult:
    """Store ``spec`` as a new version unless the latest version has the same content."""
    latest = get_runbook(session, slug=spec.slug)
    if latest is not None and spec_of(latest).front_matter() == spec.front_matter() \
            and latest.body.strip() == spec.body.strip():
        revived = not latest.active
        latest.active = True
        return UpsertResult(spec.slug, latest.version, False, revived)
    version = 1 if latest is None else latest.version + 1
    session.execute(update(Runbook).where(Runbook.slug == spec.slug).values(active=False))
    fm = spec.front_matter()
    session.add(Runbook(slug=spec.slug, version=version, title=spec.title, services=fm["services"],
                        alert_names=fm["alert_names"], tags=fm["tags"], parameters=fm["parameters"],
                        steps=fm["steps"], risk=spec.risk, approvers=fm["approvers"],
                        allowed_users=fm["allowed_users"], allowed_channels=fm["allowed_channels"],
                        auto_safe=spec.auto_safe, body=spec.body, active=True))
    session.flush()
    return UpsertResult(spec.slug, version, True)


def import_dir(session: Session, *, path: Path, actor: str = "cli") -> list[UpsertResult]:
    """Import every ``*.md`` runbook under ``path``; all files are validated before any is stored.

    Raises:
        RunbookFormatError: naming the first bad file (nothing is stored then).
    """
    if not path.is_dir():
        raise RunbookFormatError(f"{path}: not a directory")
    specs: list[RunbookSpec] = []
    seen: dict[str, Path] = {}
    for f in sorted(path.glob("*.md")):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunbookFormatError(f"{f}: cannot read: {exc}") from None
        spec = parse_runbook(text, source=str(f))
        if spec.slug in seen:
            raise RunbookFormatError(f"{f}: id {spec.slug!r} is also used by {seen[spec.slug]}")
        seen[spec.slug] = f
        specs.append(spec)
    results = [upsert_runbook(session, spec=s) for s in specs]
    for r in results:
        if r.changed or r.revived:
            audit(session, actor=actor, action="runbook.imported" if r.changed else "runbook.reactivated",
                  subject=f"{r.slug}@v{r.version}", detail={"source": str(path)})
    return results


@dataclass(frozen=True)
class Retired:
    slug: str
    version: int  # the last version, kept with its runs and audit
    cancelled: tuple[int, ...]  # runs that were waiting (to be confirmed, approved or started): they will not run
    running: tuple[int, ...]  # runs already going: they finish unless cancelled with their button


def retire_runbook(session: Session, *, slug: str, actor: str, reason: str = "") -> Retired | None:
    """Stop offering a runbook: no version stays active, so it is not listed, suggested, searched or run; its
    versions, runs and audit stay. Runs still waiting are cancelled, and their threads told (``NOTICE_JOB``, in this
    transaction). Importing it again brings it back. None when there is no such active runbook."""
    from knowledge import jobs

    latest = get_runbook(session, slug=slug)
    if latest is None or not latest.active:
        return None
    session.execute(update(Runbook).where(Runbook.slug == slug).values(active=False))
    why = f"`{slug}` was retired" + (f" ({reason})" if reason else "")
    cancelled = []
    for run in session.scalars(select(RunbookExecution).where(RunbookExecution.runbook_slug == slug,
                                                              RunbookExecution.status.in_(WAITING_STATES))):
        was = run.status  # the nonce stays: a click on its buttons is told "cancelled", not "stale or forged"
        if not transition(session, execution_id=run.id, from_states=(was,), to_state="cancelled", rotate=False,
                          finished_at=utcnow()):
            continue
        audit(session, actor=actor, action="runbook.cancelled", subject=f"{slug}@v{run.runbook_version}",
              execution_id=run.id, detail={"was": was, "reason": why})
        if run.channel_id:
            jobs.enqueue(session, kind=NOTICE_JOB, payload={
                "channel": run.channel_id, "thread_ts": run.thread_ts,
                "text": f":octagonal_sign: Run #{run.id} will not run: {why}."})
        cancelled.append(run.id)
    running = tuple(session.scalars(select(RunbookExecution.id).where(
        RunbookExecution.runbook_slug == slug, RunbookExecution.status.in_(ACTIVE_STATES[1:]))))
    audit(session, actor=actor, action="runbook.retired", subject=f"{slug}@v{latest.version}",
          detail={"reason": reason, "cancelled": cancelled, "running": list(running)})
    return Retired(slug, latest.version, tuple(cancelled), running)


def retire_missing(session: Session, *, keep: set[str], actor: str, source: str) -> list[Retired]:
    """Retire every active runbook whose id is not in ``keep`` (``warroom runbooks import DIR --prune``: the
    directory is the whole library)."""
    gone = [r.slug for r in list_runbooks(session) if r.slug not in keep]
    out = [retire_runbook(session, slug=slug, actor=actor, reason=f"not in {source}") for slug in gone]
    return [r for r in out if r is not None]


def retired_note(session: Session, *, slug: str) -> str | None:
    """"retired Thu 03 Dec 2026 by cli (reason)" for a runbook none of whose versions is active, else None."""
    if get_runbook(session, slug=slug) is None or session.scalar(select(func.count(Runbook.id)).where(
            Runbook.slug == slug, Runbook.active.is_(True))):
        return None
    rec = session.scalars(select(AuditRecord).where(AuditRecord.action == "runbook.retired",
                                                    AuditRecord.subject.startswith(f"{slug}@v", autoescape=True))
                          .order_by(AuditRecord.id.desc()).limit(1)).first()
    if rec is None:
        return "retired"
    reason = (rec.detail or {}).get("reason")
    return f"retired {rec.at:%a %d %b %Y} by {rec.actor}" + (f" ({reason})" if reason else "")


def export_dir(session: Session, *, path: Path) -> list[Path]:
    """Write the latest version of every active runbook to ``path/<id>.md``."""
    path.mkdir(parents=True, exist_ok=True)
    out = []
    for row in list_runbooks(session):
        f = path / f"{row.slug}.md"
        f.write_text(to_markdown(spec_of(row)), encoding="utf-8")
        out.append(f)
    return out


def seed_runbooks(session: Session) -> int:
    """Load the sample world's runbooks; returns how many new versions were stored."""
    if not SAMPLE_RUNBOOKS.is_dir():
        return 0
    return sum(1 for r in import_dir(session, path=SAMPLE_RUNBOOKS, actor="seed") if r.changed)


# --- audit ----------------------------------------------------------------------------------------
def audit(session: Session, *, actor: str | None, action: str, subject: str | None = None,
          execution_id: int | None = None, detail: dict[str, Any] | None = None) -> None:
    """Append one audit record (never updated or deleted)."""
    session.add(AuditRecord(actor=actor, action=action[:64], subject=(subject or "")[:200] or None,
                            execution_id=execution_id, detail=detail or {}))
    session.flush()


def audit_rows(session: Session, *, execution_id: int | None = None, action_prefix: str | None = None,
               limit: int = 200) -> list[AuditRecord]:
    """Audit records, oldest first."""
    q = select(AuditRecord).order_by(AuditRecord.id)
    if execution_id is not None:
        q = q.where(AuditRecord.execution_id == execution_id)
    if action_prefix:
        q = q.where(AuditRecord.action.startswith(action_prefix))
    return list(session.scalars(q.limit(limit)))


# --- executions -----------------------------------------------------------------------------------
def new_nonce() -> str:
    return secrets.token_urlsafe(12)


def create_execution(session: Session, *, spec: RunbookSpec, requested_by: str, params: dict[str, str],
                     status: str, dry_run: bool = False, incident_id: int | None = None,
                     channel_id: str | None = None, thread_ts: str | None = None) -> RunbookExecution:
    """A new execution row with a fresh nonce."""
    row = RunbookExecution(runbook_slug=spec.slug, runbook_version=spec.version, requested_by=requested_by,
                           params=params, status=status, dry_run=dry_run, incident_id=incident_id,
                           channel_id=channel_id, thread_ts=thread_ts, nonce=new_nonce())
    session.add(row)
    session.flush()
    return row


def get_execution(session: Session, *, execution_id: int) -> RunbookExecution | None:
    return session.get(RunbookExecution, execution_id)


def transition(session: Session, *, execution_id: int, from_states: tuple[str, ...], to_state: str,
               rotate: bool = True, **values: Any) -> bool:
    """Compare-and-set an execution's status; False if it was not in ``from_states``.

    ``rotate`` issues a new button nonce (every human decision does, so an old click cannot be
    replayed); the worker's own transitions keep it, so the posted Cancel button stays valid.
    """
    values = {"status": to_state, **({"nonce": new_nonce()} if rotate else {}), **values}
    res = session.execute(update(RunbookExecution).where(RunbookExecution.id == execution_id)
                          .where(RunbookExecution.status.in_(from_states)).values(**values)
                          .execution_options(synchronize_session="fetch"))
    return bool(res.rowcount == 1)  # type: ignore[attr-defined]


def mark_interrupted(session: Session) -> list[int]:
    """Executions left running by a stopped bot become ``interrupted`` (never ``succeeded``)."""
    ids = list(session.scalars(select(RunbookExecution.id).where(RunbookExecution.status.in_(ACTIVE_STATES[1:]))))
    for eid in ids:
        if transition(session, execution_id=eid, from_states=ACTIVE_STATES[1:], to_state="interrupted",
                      finished_at=utcnow()):
            audit(session, actor="warroom", action="runbook.interrupted", subject=f"execution {eid}",
                  execution_id=eid, detail={"reason": "the bot restarted while this run was in progress"})
    return ids


EXPIRES = ("pending", "awaiting_approval")  # not confirmed or not approved yet: these expire


def expire_waiting(session: Session, *, ttl: dt.timedelta, execution_id: int | None = None) -> list[int]:
    """Mark requests still waiting for confirmation or approval ``ttl`` after they were made ``expired`` (audited, and
    their channel or thread told through ``NOTICE_JOB``): an old button must not start, days later, what an
    incident needed then. Only ``execution_id`` when given. Return the ids expired."""
    from knowledge import jobs

    now = utcnow()
    q = select(RunbookExecution).where(RunbookExecution.status.in_(EXPIRES), RunbookExecution.requested_at < now - ttl)
    if execution_id is not None:
        q = q.where(RunbookExecution.id == execution_id)
    out = []
    for run in session.scalars(q.limit(500)):
        was, age = run.status, now - run.requested_at
        if not transition(session, execution_id=run.id, from_states=(was,), to_state="expired", rotate=False,
                          finished_at=now):
            continue
        audit(session, actor="warroom", action="runbook.expired", subject=f"{run.runbook_slug}@v{run.runbook_version}",
              execution_id=run.id, detail={"was": was, "age_s": int(age.total_seconds())})
        if run.channel_id:
            waiting = "confirmed" if was == "pending" else "approved"
            jobs.enqueue(session, kind=NOTICE_JOB, dedup_key=f"runbook.expired:{run.id}", payload={
                "channel": run.channel_id, "thread_ts": run.thread_ts,
                "text": f":hourglass: Run #{run.id} of `{run.runbook_slug}` expired: nobody {waiting} it within "
                        f"{int(ttl.total_seconds() // 60)} min. Request it again if it is still needed."})
        out.append(run.id)
    return out


def recent_executions(session: Session, *, limit: int = 10, slug: str | None = None,
                      since: dt.datetime | None = None) -> list[RunbookExecution]:
    q = select(RunbookExecution).order_by(RunbookExecution.id.desc())
    if slug:
        q = q.where(RunbookExecution.runbook_slug == slug)
    if since is not None:
        q = q.where(RunbookExecution.requested_at >= since)
    return list(session.scalars(q.limit(limit)))


# --- people ---------------------------------------------------------------------------------------
def team_members(session: Session, *, team: str) -> tuple[set[str], str | None] | None:
    """Slack user ids of a team's experts and its Slack user group (None: no such team)."""
    t = session.scalar(select(Team).where(func.lower(Team.name) == team.lower()))
    if t is None:
        return None
    users = set(session.scalars(select(Expert.slack_user_id).where(Expert.team_id == t.id)
                                .where(Expert.active.is_(True))))
    return users, t.slack_usergroup


def past_resolutions(session: Session) -> list[tuple[str, str]]:
    """(text, runbook slug) for past incidents whose findings say which runbook resolved them."""
    out = []
    for inc in session.scalars(select(Incident).where(Incident.status == "resolved")):
        slug = (inc.findings or {}).get("resolved_by_runbook")
        if isinstance(slug, str) and slug:
            text = " ".join([inc.title, inc.service_name or "", inc.alert_name or "", inc.description])
            out.append((text, slug))
    return out
