"""Drains the webhook inbox: parse, dedup and group, then queue the card and triage jobs.

One processor per process works through pending inbox rows in batches. Each batch is one
transaction: the incidents and alerts it changes, the jobs it queues and the rows it marks
processed commit together, so a crash part-way leaves the rows pending and the next run redoes them
exactly once. On PostgreSQL an advisory lock keeps replicas from grouping the same alerts at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from typing import TYPE_CHECKING

from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from bot.webhook_schemas import parse_payload
from knowledge import jobs
from knowledge.models import WebhookInbox, utcnow
from skills.intake import GroupingRules, IngestCache, ingest
from skills.redact import mask_json_text

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["IntakeProcessor", "queue_card", "queue_followups"]

log = logging.getLogger("warroom.intake")

_ADVISORY_KEY = 7_420_001


def queue_card(session, incident_id: int, *, immediate_key: str | None = None,  # type: ignore[no-untyped-def]
               interval_s: float = 3.0) -> tuple[int, float] | None:
    """Queue a card render: now under ``immediate_key``, else coalesced into the current time bucket, so
    a storm updates each card at most once per ``interval_s``."""
    if immediate_key is not None:
        ref = jobs.enqueue(session, kind="incident.card", payload={"incident_id": incident_id},
                           dedup_key=f"card:{incident_id}:{immediate_key}")
        return (ref.id, 0.0) if ref.created else None
    now = time.time()
    bucket = int(now // interval_s)
    delay = (bucket + 1) * interval_s - now + 0.05
    ref = jobs.enqueue(session, kind="incident.card", payload={"incident_id": incident_id},
                       dedup_key=f"card:{incident_id}:b{bucket}", delay_s=delay)
    return (ref.id, delay) if ref.created else None


class IntakeProcessor:
    """Background thread that processes the inbox."""

    def __init__(self, services: Services, batch: int = 200, poll_s: float = 1.0) -> None:
        self.services = services
        self.batch = batch
        self.poll_s = poll_s
        self.yield_s = 0.02
        st = services.settings
        self.rules = GroupingRules(tuple(st.grouping_rules), dt.timedelta(minutes=st.grouping_window_minutes))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        thread = threading.Thread(target=self._loop, name="warroom-intake", daemon=True)
        thread.start()
        self._thread = thread  # set once started: stop() may run in another thread meanwhile

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.process_pending()
            except Exception as exc:  # noqa: BLE001 - database hiccup: log, wait, retry; rows stay pending
                log.warning("inbox processing failed, will retry: %s", exc)
                n = 0
                time.sleep(1.0)
            if n == 0:
                self._wake.wait(self.poll_s)
                self._wake.clear()
            else:
                # A storm: leave the GIL to the web door between batches. Accepting (a commit, then 202)
                # comes first; processing may lag a little, it never loses anything.
                time.sleep(self.yield_s)

    def process_pending(self) -> int:
        """Process one batch of pending rows; returns how many were handled.

        Fast path: the open incidents of all the batch's fingerprints loaded with one query (a storm's
        repeats of a fingerprint then cost no query), the changes flushed once at the end (so SQLite's write
        lock is held only for that flush and the commit), and the card and triage jobs queued with one
        lookup. If any row fails, the batch is rolled back and redone one row per savepoint, so a poison row
        is marked as an error and the rest still go through.
        """
        with self._lock:
            # SQLite: first copy what the door spooled into webhook_inbox (its own short transaction).
            moved = self.services.spool.transfer(max(self.batch, 200)) if self.services.spool is not None else 0
            return max(self._process_batch(), moved)

    def _process_batch(self) -> int:
        self._extra: list[tuple[int, float]] = []  # jobs a row queued besides the follow-ups (test notices)
        with self.services.db.session() as s:
            self._serialise(s)
            rows = s.scalars(select(WebhookInbox).where(WebhookInbox.status == "pending")
                             .order_by(WebhookInbox.id).limit(self.batch)).all()
            parsed: list[tuple[WebhookInbox, list]] = []  # type: ignore[type-arg]
            failed: list[tuple[WebhookInbox, str]] = []
            for row in rows:
                try:
                    parsed.append((row, parse_payload(row.source, json.loads(row.body))))
                except (ValueError, ValidationError) as exc:
                    failed.append((row, str(exc)[:2000]))
            # Reads first, changes after: SQLite's single write lock (which the web door's inbox commits need)
            # is then taken only by the final flush and commit, not for the whole batch.
            cache = IngestCache()
            cache.prefetch(s, [a for _, alerts in parsed for a in alerts], self.rules)

            def mark() -> None:
                for row in rows:
                    row.attempts += 1
                    # Parsed above; what is kept of the delivery from now on has its secrets masked (still JSON)
                    row.body = mask_json_text(row.body)
                for row, why in failed:
                    # Validated at the door, so this means the format changed under us: keep it, visible.
                    row.status, row.error = "error", why

            mark()
            touched: dict[int, bool] = {}
            try:
                for row, alerts in parsed:  # no savepoint: its flush would take the write lock from here on
                    self._ingest_row(s, row, alerts, touched, cache)
                s.flush()  # what the database refuses shows here, inside the try
            except OperationalError:
                raise  # the database, not a row: retry the whole batch later
            except Exception:  # noqa: BLE001 - find the poison row: undo the batch, redo one row per savepoint
                s.rollback()
                self._serialise(s)  # the rollback ended the transaction and its advisory lock: take it again
                # Meanwhile another replica may have taken some rows (the rollback reloads them): skip those.
                rows = [r for r in rows if r.status == "pending"]
                parsed = [(r, a) for r, a in parsed if r.status == "pending"]
                failed = [(r, why) for r, why in failed if r.status == "pending"]
                mark()
                touched.clear()
                self._extra.clear()
                for row, alerts in parsed:
                    try:
                        with s.begin_nested():
                            self._ingest_row(s, row, alerts, touched, None)
                    except OperationalError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - a poison row must not block the inbox
                        log.exception("inbox row %s could not be processed", row.id)
                        row.status, row.error = "error", f"{type(exc).__name__}: {exc}"[:2000]
            queued = queue_followups(s, touched, self.services.settings) + self._extra
        if rows:
            self.services.runner.handoff(queued)
        return len(rows)

    @staticmethod
    def _serialise(s) -> None:  # type: ignore[no-untyped-def]
        """On PostgreSQL, one processor at a time across replicas (until the transaction ends)."""
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})

    def _ingest_row(self, s, row: WebhookInbox, alerts: list, touched: dict[int, bool],  # type: ignore[no-untyped-def,type-arg]
                    cache: IngestCache | None) -> None:
        for d in ingest(s, alerts, self.rules, inbox_id=row.id, cache=cache):
            if d.incident_id:
                touched[d.incident_id] = touched.get(d.incident_id, False) or d.created
            if d.still_firing:  # tell the resolved incident's thread, once
                ref = jobs.enqueue(s, kind="incident.still_firing", dedup_key=f"still-firing:{row.id}:{d.incident_id}",
                                   payload={"incident_id": d.incident_id})
                if ref.created:
                    self._extra.append((ref.id, 0.0))
        tests = [a for a in alerts if a.test]
        if tests:  # say in the incident channel that the connection works (one message per delivery)
            ref = jobs.enqueue(s, kind="intake.test", dedup_key=f"intake-test:{row.id}",
                               payload={"source": row.source, "summary": tests[0].summary,
                                        "receiver": str(tests[0].labels.get("receiver", ""))})
            if ref.created:
                self._extra.append((ref.id, 0.0))
        row.status, row.processed_at = "processed", utcnow()


def queue_followups(session, touched: dict[int, bool], settings) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
    """Queue, with one lookup, the card render and the triage for each incident a batch touched: at once
    for a new incident, else coalesced into the current time bucket (see :func:`queue_card`)."""
    now = time.time()
    items: list[tuple[str, dict, str, float]] = []  # type: ignore[type-arg]
    for incident_id, created in touched.items():
        for kind, prefix, interval in (("incident.card", "card", settings.card_update_interval_s),
                                       ("incident.triage", "triage", settings.triage_interval_s)):
            if created:
                items.append((kind, {"incident_id": incident_id}, f"{prefix}:{incident_id}:new", 0.0))
            else:
                bucket = int(now // interval)
                items.append((kind, {"incident_id": incident_id}, f"{prefix}:{incident_id}:b{bucket}",
                              (bucket + 1) * interval - now + 0.05))
    if not items:
        return []
    refs = jobs.enqueue_many(session, items)
    return [(ref.id, delay) for ref, (_, _, _, delay) in zip(refs, items, strict=True) if ref.created]
