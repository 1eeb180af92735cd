"""The durable job queue: a table of small JSON jobs, claimed with a lease.

Work is committed here before the request that caused it is acknowledged, so a crash loses nothing:
a job whose lease ran out (its worker died) is claimed again. Jobs carry an optional ``dedup_key``;
enqueueing the same key twice returns the existing job, which is how Slack retries and webhook
redeliveries are kept from acting twice. Handlers must be idempotent: a job can run again after a
crash between its side effect and its completion.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from knowledge.models import Job, utcnow

__all__ = ["JobRef", "enqueue", "enqueue_many", "claim", "complete", "fail", "requeue_failed", "counts", "BACKOFF_S",
           "stalled", "renew", "CURRENT_JOB"]

BACKOFF_S = (1, 2, 5, 15, 60, 300)

# The job this thread is running (set by the worker around its handler): ``counts`` leaves it out, so a job that
# reports the queue (``/warroom status``) does not count itself as work in progress.
CURRENT_JOB: contextvars.ContextVar[int | None] = contextvars.ContextVar("current_job", default=None)


@dataclass(frozen=True)
class JobRef:
    """A claimed or enqueued job, detached from its session."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    status: str
    created: bool = True
    waited_s: float = 0.0  # claimed jobs: how long it was due before a worker took it


def enqueue_many(session: Session, items: Sequence[tuple[Any, ...]]) -> list[JobRef]:
    """``enqueue`` for many ``(kind, payload, dedup_key[, delay_s])`` at once: one lookup of the keys, one
    flush.

    Items with the same key (in the database or earlier in the list) share one job. If another replica
    inserts one of the keys meanwhile, the flush fails and each item is enqueued on its own instead.
    """
    norm = [(it[0], it[1], it[2], float(it[3]) if len(it) > 3 else 0.0) for it in items]
    keys = [k for _, _, k, _ in norm if k is not None]
    existing = {j.dedup_key: j for j in session.scalars(select(Job).where(Job.dedup_key.in_(keys)))} if keys else {}

    def one_by_one() -> list[JobRef]:
        return [enqueue(session, kind=kind, payload=p, dedup_key=k, delay_s=d) for kind, p, k, d in norm]

    if any(j.status == "failed" for j in existing.values()):
        return one_by_one()
    now = utcnow()
    planned: list[tuple[Job, bool]] = []
    for kind, payload, key, delay in norm:
        if key is not None and key in existing:
            planned.append((existing[key], False))
            continue
        job = Job(kind=kind, payload=payload, dedup_key=key, max_attempts=5,
                  run_after=now + dt.timedelta(seconds=delay) if delay else now)
        if key is not None:
            existing[key] = job
        planned.append((job, True))
    try:
        with session.begin_nested():
            session.add_all([j for j, new in planned if new])
    except IntegrityError:
        return one_by_one()
    return [_ref(job, created=new) for job, new in planned]


def _ref(job: Job, created: bool = True) -> JobRef:
    return JobRef(job.id, job.kind, dict(job.payload or {}), job.attempts, job.status, created)


def enqueue(
    session: Session, *, kind: str, payload: dict[str, Any], dedup_key: str | None = None,
    max_attempts: int = 5, delay_s: float = 0.0,
) -> JobRef:
    """Add a job (committed by the caller's session). Same ``dedup_key`` returns the existing job.

    A job with the same key that already *failed* for good is queued again: a retry from upstream
    (Slack, a webhook sender) of work that failed must not be dropped.
    """
    if dedup_key is not None:
        existing = session.scalar(select(Job).where(Job.dedup_key == dedup_key))
        if existing is not None:
            if existing.status == "failed":
                existing.status, existing.attempts = "queued", 0
                existing.run_after = utcnow()
                session.flush()
                return _ref(existing, created=True)
            return _ref(existing, created=False)
    job = Job(kind=kind, payload=payload, dedup_key=dedup_key, max_attempts=max_attempts,
              run_after=utcnow() + dt.timedelta(seconds=delay_s))
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        # Lost a race with another replica on the same key.
        existing = session.scalar(select(Job).where(Job.dedup_key == dedup_key))
        assert existing is not None
        return _ref(existing, created=False)
    return _ref(job)


def claim(session: Session, *, lease_s: float = 300.0, kinds: list[str] | None = None,
          job_id: int | None = None) -> JobRef | None:
    """Take the oldest runnable job (queued and due, or running with an expired lease), or that job."""
    now = utcnow()
    q = (
        select(Job.id)
        .where(
            ((Job.status == "queued") & (Job.run_after <= now))
            | ((Job.status == "running") & (Job.lease_until < now))
        )
        .order_by(Job.id)
        .limit(1)
    )
    if kinds:
        q = q.where(Job.kind.in_(kinds))
    if job_id is not None:
        q = q.where(Job.id == job_id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    job_id = session.scalar(q)
    if job_id is None:
        return None
    # Compare-and-set so two claimers (threads or replicas) never take the same job.
    res = session.execute(
        update(Job)
        .where(Job.id == job_id)
        .where(
            ((Job.status == "queued")) | ((Job.status == "running") & (Job.lease_until < now))
        )
        .values(status="running", attempts=Job.attempts + 1,
                lease_until=now + dt.timedelta(seconds=lease_s))
    )
    if res.rowcount != 1:  # type: ignore[attr-defined]
        return None
    job = session.get(Job, job_id)
    assert job is not None
    session.refresh(job)
    waited = max(0.0, (now - job.run_after).total_seconds()) if job.run_after is not None else 0.0
    return dataclasses.replace(_ref(job), waited_s=waited)


def complete(session: Session, job_id: int) -> None:
    """Mark a job done."""
    session.execute(update(Job).where(Job.id == job_id)
                    .values(status="done", finished_at=utcnow(), lease_until=None, last_error=None))


TRANSIENT_CAP_S = 15  # backoff ceiling while a dependency (Slack, the database) is out
TRANSIENT_WINDOW = dt.timedelta(hours=1)  # outages shorter than this never use up a job's attempts


class Failed(NamedTuple):
    """What :func:`fail` decided: the job's new status and, when queued again, when it is due."""

    status: str
    due: dt.datetime | None = None


def fail(session: Session, job_id: int, error: str, *, transient: bool = False) -> Failed:
    """Record a failure: queue again with backoff, or mark failed after ``max_attempts``.

    A ``transient`` failure (Slack answering 429/5xx, a connection refused, the database gone) gives the
    attempt back while the job is younger than ``TRANSIENT_WINDOW`` and retries at least every
    ``TRANSIENT_CAP_S``: an outage delays work, it does not drop it.
    """
    job = session.get(Job, job_id)
    if job is None:
        return Failed("missing")
    job.last_error = error[:2000]
    job.lease_until = None
    age = utcnow() - job.created_at if job.created_at is not None else TRANSIENT_WINDOW
    if transient and age < TRANSIENT_WINDOW:
        job.attempts = max(0, job.attempts - 1)
        job.status = "queued"  # back off with the job's age: 1 s at first, at most TRANSIENT_CAP_S
        job.run_after = utcnow() + dt.timedelta(seconds=min(TRANSIENT_CAP_S, max(1.0, age.total_seconds() / 4)))
        return Failed(job.status, job.run_after)
    if job.attempts >= job.max_attempts:
        job.status, job.finished_at = "failed", utcnow()
        return Failed(job.status)
    job.status = "queued"
    job.run_after = utcnow() + dt.timedelta(seconds=BACKOFF_S[min(job.attempts, len(BACKOFF_S)) - 1])
    return Failed(job.status, job.run_after)


def renew(session: Session, job_ids: list[int], lease_s: float) -> int:
    """Extend the leases of jobs still running (the worker's heartbeat): a lease only runs out when its
    worker is gone, so leases can be short and a crashed worker's jobs are taken over quickly."""
    if not job_ids:
        return 0
    res = session.execute(update(Job).where(Job.id.in_(job_ids), Job.status == "running")
                          .values(lease_until=utcnow() + dt.timedelta(seconds=lease_s)))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


def requeue_failed(session: Session) -> int:
    """Queue every failed job again (operator action)."""
    res = session.execute(update(Job).where(Job.status == "failed")
                          .values(status="queued", attempts=0, run_after=utcnow()))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


def counts(session: Session, *, due_before: dt.datetime | None = None) -> dict[str, int]:
    """Number of jobs per status (with ``due_before``: only jobs due by then, so one planned for next week,
    such as a shift change, does not count), the job asking (:data:`CURRENT_JOB`) left out."""
    q = select(Job.status, func.count()).group_by(Job.status)
    if (me := CURRENT_JOB.get()) is not None:
        q = q.where(Job.id != me)
    if due_before is not None:
        q = q.where(Job.run_after <= due_before)
    rows = session.execute(q).all()
    return {status: int(n) for status, n in rows}


RESEND_EVERY_S = 15.0  # a job is sent to the broker again at most this often, by all the sweepers together


@dataclass(frozen=True)
class Stalled:
    """Jobs a broker may have lost (:func:`stalled`)."""

    expired: list[tuple[int, str]]  # (id, kind) running with an expired lease: the worker died
    waiting: list[tuple[int, str]]  # (id, kind) queued and due for a while, oldest first (at most ``limit``)
    waiting_by_kind: dict[str, int]  # how many are queued and due, however briefly, per kind: each should have a
    # message in the broker, so this is what to compare with the broker's queue length


def _not_resent_since(now: dt.datetime) -> Any:
    return Job.resent_at.is_(None) | (Job.resent_at <= now - dt.timedelta(seconds=RESEND_EVERY_S))


def stalled(session: Session, *, older_than_s: float = 5.0, limit: int = 500) -> Stalled:
    """Jobs a broker may have lost: running with an expired lease, or queued and due for ``older_than_s``; those
    a sweeper sent again in the last :data:`RESEND_EVERY_S` are left out of both lists.

    A job that waits is not necessarily lost: in a backlog it waits its turn in the broker. The caller
    compares ``waiting_by_kind`` (every due job, young ones and those just sent again too, as the broker's queue
    holds their messages as well) with what the broker holds (:class:`bot.worker.JobRunner` ``sweep``), and takes
    the resends it makes with :func:`take_resends`.
    """
    now = utcnow()
    due_before = now - dt.timedelta(seconds=older_than_s)
    fresh = _not_resent_since(now)
    expired = session.execute(select(Job.id, Job.kind).where(Job.status == "running", Job.lease_until < now, fresh)
                              .order_by(Job.id).limit(limit)).all()
    waiting = session.execute(select(Job.id, Job.kind).where(Job.status == "queued", Job.run_after <= due_before,
                                                             fresh).order_by(Job.id).limit(limit)).all()
    by_kind = session.execute(select(Job.kind, func.count()).where(Job.status == "queued", Job.run_after <= now)
                              .group_by(Job.kind)).all()
    return Stalled([(int(i), str(k)) for i, k in expired], [(int(i), str(k)) for i, k in waiting],
                   {str(k): int(n) for k, n in by_kind})


def take_resends(session: Session, job_ids: Sequence[int]) -> list[tuple[int, str]]:
    """Claim the resend of these jobs (compare-and-set on ``resent_at``): of several sweepers (replicas) that found
    the same lost job, one sends it again. Returns (id, kind) of the jobs this caller is to send."""
    if not job_ids:
        return []
    now = utcnow()
    rows = session.execute(update(Job).where(Job.id.in_(list(job_ids)), _not_resent_since(now))
                           .values(resent_at=now).returning(Job.id, Job.kind)
                           .execution_options(synchronize_session=False)).all()
    return sorted((int(i), str(k)) for i, k in rows)
