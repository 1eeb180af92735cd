"""The in-process worker pool: threads that claim jobs from the durable queue and run them.

This is the embedded default; the hand-off is one small interface (``submit`` a kind and a JSON
payload), so a scaled-out backend can run the same handlers elsewhere.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot import metrics
from bot.logs import INCIDENT_ID, REQUEST_ID
from knowledge import jobs
from knowledge.db import Database
from knowledge.models import Job, utcnow

if TYPE_CHECKING:
    from bot.group_commit import GroupCommit

__all__ = ["JobRunner", "Handler", "PermanentJobError", "INTERACTIVE"]

log = logging.getLogger("warroom.worker")

Handler = Callable[[dict[str, Any]], None]

# Jobs a person is waiting for: a slash command, a mention or DM, a click, their Home tab, and the write-back that
# stops PagerDuty paging them once they acknowledged in Slack (one short request). With two threads or more
# the first one takes only these (with one thread, these first), so during an alert storm an answer does not wait
# behind the backlog of cards and triage (the queue is otherwise first in, first out), nor behind a card post that
# waits for its channel's one-message-a-second slot. The other threads take these too, in their turn.
INTERACTIVE = ("skill.run", "slack.action", "slack.app_home", "pagerduty.sync", "slack.member_joined_channel")


class PermanentJobError(Exception):
    """The job cannot succeed by retrying; fail it at once."""


def is_transient(exc: BaseException) -> bool:
    """A failure of a dependency that will come back: Slack 429/5xx, a refused connection, the database gone;
    and Slack refusing the bot's token (revoked, the app reinstalled): the work waits for the fixed token
    (``jobs.TRANSIENT_WINDOW``) instead of using up its attempts in a minute."""
    from slack_sdk.errors import SlackApiError
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, SlackApiError):
        from bot.slack_client import AUTH_ERRORS, slack_error

        status = getattr(exc.response, "status_code", 200)
        return status == 429 or status >= 500 or slack_error(exc) in AUTH_ERRORS
    return isinstance(exc, OSError | OperationalError | InterfaceError)


class JobRunner:
    """Runs registered handlers for queued jobs on ``n_threads`` threads."""

    def __init__(self, db: Database, n_threads: int = 4, lease_s: float = 300.0, poll_s: float = 0.5,
                 dispatch: Callable[[int, float, str], None] | None = None, interactive_lane: bool = True,
                 pending: Callable[[bool], int | None] | None = None) -> None:
        """``dispatch(job_id, delay_s, kind)``, when given, hands queued jobs to an external worker (Celery) instead
        of this process's threads; this process then only sweeps for jobs a broker lost. ``pending(interactive)``:
        how many messages wait in the broker's queue for the :data:`INTERACTIVE` jobs (True) or the rest (None when
        it cannot tell); the sweeper resends only the jobs the broker cannot be holding. ``interactive_lane``:
        the first thread claims only :data:`INTERACTIVE` jobs, and every other thread claims those first, then the
        rest first in, first out (so a second command does not wait behind the backlog while the lane thread is
        busy with a slow one, an LLM answer); off: every thread first in, first out."""
        self.db = db
        self.interactive_lane = interactive_lane
        self.dispatch = dispatch
        self.pending = pending
        self.n_threads = n_threads
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.handlers: dict[str, Handler] = {}
        self.on_give_up: dict[str, Callable[[dict[str, Any], BaseException], None]] = {}
        self._wake = threading.Condition()
        self._pending_wakes = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.runner_id = uuid.uuid4().hex[:8]
        self._running: set[int] = set()
        self._running_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None

    def register(self, kind: str, handler: Handler,
                 on_give_up: Callable[[dict[str, Any], BaseException], None] | None = None) -> None:
        """``on_give_up(payload, error)``: called once when a job of this kind fails for good (its last attempt,
        or a :class:`PermanentJobError`), to tell the people who were waiting for it."""
        self.handlers[kind] = handler
        if on_give_up is not None:
            self.on_give_up[kind] = on_give_up

    def submit(self, kind: str, payload: dict[str, Any], dedup_key: str | None = None,
               max_attempts: int = 5, delay_s: float = 0.0) -> jobs.JobRef:
        """Commit a job to the queue (due after ``delay_s``) and wake a worker. Returns the job (existing one if
        deduped)."""
        if kind not in self.handlers:
            raise KeyError(f"no handler for job kind {kind!r}")
        with self.db.session() as s:
            ref = jobs.enqueue(s, kind=kind, payload=payload, dedup_key=dedup_key, max_attempts=max_attempts,
                               delay_s=delay_s)
        if ref.created:
            if self.dispatch is not None:
                self._dispatch(ref.id, delay_s, kind)
            else:
                self.notify()
        return ref

    def _dispatch(self, job_id: int, delay_s: float, kind: str = "") -> None:
        assert self.dispatch is not None
        try:
            self.dispatch(job_id, delay_s, kind)
        except Exception as exc:  # noqa: BLE001 - broker down: the job is in the database, the sweeper resends it
            log.warning("could not hand job %s to the broker (%s); the sweeper will resend it", job_id, exc)

    def group_submitter(self) -> GroupCommit[tuple[str, dict[str, Any], str | None], jobs.JobRef]:
        """``await g.submit((kind, payload, dedup_key))``: like :meth:`submit`, from async code, with the jobs
        of concurrent requests committed together (see :mod:`bot.group_commit`)."""
        from bot.group_commit import GroupCommit

        def write(session: Any, items: list[tuple[str, dict[str, Any], str | None]]) -> list[jobs.JobRef]:
            unknown = [kind for kind, _, _ in items if kind not in self.handlers]
            if unknown:
                raise KeyError(f"no handler for job kind {unknown[0]!r}")
            return jobs.enqueue_many(session, items)

        return GroupCommit(self.db, write, after_commit=lambda refs: self.handoff(
            [(r.id, 0.0, r.kind) for r in refs if r.created]) if any(r.created for r in refs) else None)

    def handoff(self, created: list[tuple[int, float]] | list[tuple[int, float, str]]) -> None:
        """After a caller committed jobs itself (``jobs.enqueue`` in its own transaction): wake a thread, or
        give each (job id, delay[, kind]) to the broker."""
        if self.dispatch is None:
            self.notify()
            return
        for job_id, delay, *kind in created:
            self._dispatch(job_id, delay, *kind)

    def notify(self) -> None:
        with self._wake:
            self._pending_wakes += 1
            if self.interactive_lane and self.n_threads > 1:
                # The lane thread takes only some kinds: waking it alone would leave a background job for the next
                # poll of another thread (up to poll_s later; measured 0.3 s). Wake them all; one claims it.
                self._wake.notify_all()
            else:
                self._wake.notify()

    def start(self) -> None:
        if self.dispatch is not None:
            t = threading.Thread(target=self._sweep_loop, name="warroom-sweeper", daemon=True)
            t.start()
            self._threads.append(t)
            return
        for i in range(self.n_threads):
            first = INTERACTIVE if self.interactive_lane else ()
            only = bool(first) and i == 0 and self.n_threads > 1
            t = threading.Thread(target=self._loop, args=(first, only), name=f"warroom-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def sweep(self, older_than_s: float = 5.0) -> int:
        """Resend jobs a broker lost (Redis restarted) or whose worker died (lease expired).

        A job that has waited ``older_than_s`` is resent only when the broker's queue holds fewer messages than
        there are due jobs (young ones counted too: their messages are in the queue, and in a storm that goes on
        they would otherwise hide the lost ones): in a backlog each job waits its turn, and resending every one of
        them every round (as before) filled the queue with copies the worker then had to claim and drop, which
        made the backlog longer still. The oldest go first (what a Redis restart loses is the oldest). A job is
        resent at most every 15 s (``jobs.RESEND_EVERY_S``) by all the replicas together.
        """
        with self.db.session() as s:
            found = jobs.stalled(s, older_than_s=older_than_s)
        resend = [i for i, _ in found.expired]
        for interactive in (True, False):
            ids = [i for i, kind in found.waiting if (kind in INTERACTIVE) == interactive]
            held = self.pending(interactive) if self.pending is not None and ids else None
            if held is not None:
                n = sum(c for kind, c in found.waiting_by_kind.items() if (kind in INTERACTIVE) == interactive)
                ids = ids[:max(0, n - held)]
            resend += ids
        with self.db.session() as s:
            taken = jobs.take_resends(s, resend)  # another replica's sweeper may have sent some of them just now
        for job_id, kind in taken:
            self._dispatch(job_id, 0.0, kind)  # to its own queue: a lost command does not wait behind the backlog
        if taken:
            expired = {i for i, _ in found.expired}
            n_expired = sum(1 for i, _ in taken if i in expired)
            metrics.JOBS_RESENT.labels(reason="expired").inc(n_expired)
            metrics.JOBS_RESENT.labels(reason="lost").inc(len(taken) - n_expired)
            log.warning("sweeper: sent %d job(s) to the broker again: %d it no longer held, %d whose worker died",
                        len(taken), len(taken) - n_expired, n_expired)
        return len(taken)

    def _sweep_loop(self) -> None:
        # Every 1-3 s, at random: replicas started together would otherwise sweep in step, each counting the broker's
        # queue before the other's resends reach it
        while not self._stop.wait(random.uniform(1.0, 3.0)):
            try:
                self.sweep()
            except Exception as exc:  # noqa: BLE001 - database hiccup: try again next round
                log.warning("sweeper: %s", exc)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def run_once(self, first: tuple[str, ...] = (), only: bool = False) -> bool:
        """Claim and run one job (the oldest due of the kinds ``first``, if any, else, unless ``only``, the oldest
        due); False when none was due."""
        with self.db.session() as s:
            ref = None
            if first:
                ref = jobs.claim(s, lease_s=self.lease_s, kinds=[k for k in first if k in self.handlers])
            if ref is None and not only:
                ref = jobs.claim(s, lease_s=self.lease_s, kinds=list(self.handlers))
        if ref is None:
            return False
        self._run(ref)
        return True

    def run_job(self, job_id: int) -> bool:
        """Claim and run one given job (the Celery task); False when it is not runnable now (done, running
        elsewhere, or not yet due), which makes a duplicate delivery harmless."""
        with self.db.session() as s:
            ref = jobs.claim(s, lease_s=self.lease_s, kinds=list(self.handlers), job_id=job_id)
        if ref is None:
            return False
        self._run(ref)
        return True

    def _heartbeat_loop(self) -> None:
        """Renew the leases of the jobs this process is running, every third of a lease."""
        while not self._stop.wait(max(0.5, self.lease_s / 3)):
            with self._running_lock:
                ids = sorted(self._running)
            if not ids:
                continue
            try:
                with self.db.session() as s:
                    jobs.renew(s, ids, self.lease_s)
            except Exception as exc:  # noqa: BLE001 - database hiccup: the next beat tries again
                log.warning("could not renew job leases: %s", exc)

    def _track(self, job_id: int, running: bool) -> None:
        with self._running_lock:
            if running:
                self._running.add(job_id)
                if self._heartbeat is None:
                    self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="warroom-heartbeat",
                                                       daemon=True)
                    self._heartbeat.start()
            else:
                self._running.discard(job_id)

    def _run(self, ref: jobs.JobRef) -> None:
        self._track(ref.id, True)
        try:
            self._run_tracked(ref)
        finally:
            self._track(ref.id, False)

    def _run_tracked(self, ref: jobs.JobRef) -> None:
        handler = self.handlers[ref.kind]
        metrics.JOB_WAIT.labels(kind=ref.kind).observe(ref.waited_s)
        start = time.perf_counter()
        incident = ref.payload.get("incident_id") or (ref.payload.get("request") or {}).get("incident_id")
        tokens = (REQUEST_ID.set(f"job-{ref.id}"), INCIDENT_ID.set(incident), jobs.CURRENT_JOB.set(ref.id))
        try:
            handler(ref.payload)
        except Exception as exc:  # noqa: BLE001 - the worker boundary: record, retry, go on
            err_id = uuid.uuid4().hex[:8]
            permanent = isinstance(exc, PermanentJobError)
            log.error("job %s (%s) failed [error id %s]: %s\n%s", ref.id, ref.kind, err_id, exc,
                      traceback.format_exc())
            transient = not permanent and is_transient(exc)
            with self.db.session() as s:
                if permanent:
                    job = s.get(Job, ref.id)
                    if job is not None:
                        job.max_attempts = job.attempts
                status, due = jobs.fail(s, ref.id, f"[{err_id}] {type(exc).__name__}: {exc}", transient=transient)
            # The broker gets the retry when the database says it is due (a transient failure of a young job: 1 s)
            retry_in = max(0.0, (due - utcnow()).total_seconds()) if due is not None else 0.0
            metrics.JOBS.labels(kind=ref.kind, outcome="retry" if status == "queued" else "failed").inc()
            if status == "failed" and ref.kind in self.on_give_up:
                try:
                    self.on_give_up[ref.kind](ref.payload, exc)
                except Exception:  # noqa: BLE001 - telling about a failure must not fail the worker
                    log.exception("job %s (%s): the give-up notice failed too", ref.id, ref.kind)
            if status == "queued" and self.dispatch is not None:
                self._dispatch(ref.id, retry_in, ref.kind)
        else:
            with self.db.session() as s:
                jobs.complete(s, ref.id)
            metrics.JOBS.labels(kind=ref.kind, outcome="done").inc()
        finally:
            metrics.JOB_LATENCY.labels(kind=ref.kind).observe(time.perf_counter() - start)
            REQUEST_ID.reset(tokens[0])
            INCIDENT_ID.reset(tokens[1])
            jobs.CURRENT_JOB.reset(tokens[2])

    def _loop(self, first: tuple[str, ...] = (), only: bool = False) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_once(first, only)
            except Exception as exc:  # noqa: BLE001 - database hiccup: wait and try again
                log.warning("worker could not claim a job: %s", exc)
                ran = False
                time.sleep(1.0)
            if ran:
                continue
            with self._wake:
                if self._pending_wakes == 0:
                    self._wake.wait(self.poll_s)
                self._pending_wakes = max(0, self._pending_wakes - 1)

    def drain(self, timeout: float = 30.0, due_within_s: float | None = None) -> bool:
        """Wait until no job is queued or running (tests and the demo); with ``due_within_s``, jobs due later
        than that from now do not count."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.db.session() as s:
                horizon = None if due_within_s is None else utcnow() + dt.timedelta(seconds=due_within_s)
                c = jobs.counts(s, due_before=horizon)
            with self._running_lock:  # a job marked done or failed may still be telling about it (on_give_up)
                busy = bool(self._running)
            if c.get("queued", 0) == 0 and c.get("running", 0) == 0 and not busy:
                return True
            time.sleep(0.05)
        return False
