"""The webhook door's own inbox file (SQLite only): accepting an alert never waits for the main database.

SQLite has one writer at a time per file. With the inbox in the main database, the door's commit (the
acknowledgement) queued behind whatever the background processor was writing (incidents, jobs, cards),
and a processor descheduled while holding the write lock stalled every webhook for hundreds of ms during
a storm. Here the door is the only writer of ``<db>.inbox.db``: it commits the raw delivery there and
answers. The processor copies new spool rows into the main ``webhook_inbox`` table (pending) and moves
its cursor in the same main-database transaction, so each delivery is copied exactly once, then processes
them as before. Spool ids are assigned under SQLite's write lock, so they are committed in increasing
order and "everything after the cursor" is exactly what was not copied yet.

The cursor is kept per spool *epoch* (a random id the spool file gets when it is created), so a deleted
or replaced spool file starts from its beginning instead of being skipped. The door prunes rows the
cursor has passed. On PostgreSQL there is no spool: row locks let the door write ``webhook_inbox``
directly.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from knowledge.db import Database
from knowledge.models import IntakeSpoolCursor, WebhookInbox, utcnow

__all__ = ["InboxSpool", "write_rows", "backlog"]

_meta = MetaData()
SPOOL = Table(
    "spool", _meta,
    Column("id", Integer, primary_key=True),
    Column("source", String(32), nullable=False),
    Column("delivery_id", String(200), unique=True),
    Column("body", Text, nullable=False),
    Column("received_at", DateTime, nullable=False),
    sqlite_autoincrement=True,  # ids never reused, even after pruning
)
_DDL = (
    "CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, source VARCHAR(32) NOT NULL, "
    "delivery_id VARCHAR(200) UNIQUE, body TEXT NOT NULL, received_at DATETIME NOT NULL)",
    "CREATE TABLE IF NOT EXISTS spool_meta (key VARCHAR(32) PRIMARY KEY, value VARCHAR(64) NOT NULL)",
)


def _new_deliveries(items: list[tuple[str, str, str | None]], seen: set[str]) -> list[bool]:
    """For each (source, body, delivery id): False when its delivery id is in ``seen`` or earlier in the batch."""
    out: list[bool] = []
    for _, _, delivery in items:
        out.append(delivery is None or delivery not in seen)
        if delivery is not None:
            seen.add(delivery)
    return out


def write_rows(session: Session, table: Table, items: list[tuple[str, str, str | None]],
               **defaults: Any) -> list[int | None]:
    """Insert (source, body, delivery id) rows into ``table`` in one transaction, ids in the order given;
    None for a delivery id already accepted (in the table, or earlier in the batch)."""
    given = [d for _, _, d in items if d is not None]
    seen = set(session.scalars(select(table.c.delivery_id).where(table.c.delivery_id.in_(given)))) if given else set()
    news = _new_deliveries(items, seen)
    fresh = [{"source": source, "body": body, "delivery_id": delivery, "received_at": utcnow(), **defaults}
             if new else None for (source, body, delivery), new in zip(items, news, strict=True)]
    values = [v for v in fresh if v is not None]
    try:
        with session.begin_nested():
            # Core, not ORM objects: one multi-row INSERT .. RETURNING (ids in the order given) per batch.
            ids = iter(session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                                       values).all() if values else [])
    except IntegrityError:  # another writer took one of the delivery ids meanwhile: one savepoint per row
        out: list[int | None] = []
        for v in fresh:
            if v is None:
                out.append(None)
                continue
            try:
                with session.begin_nested():
                    out.append(int(session.scalar(insert(table).returning(table.c.id), v)))
            except IntegrityError:
                out.append(None)
        return out
    return [int(next(ids)) if v is not None else None for v in fresh]


class InboxSpool:
    """``<main db>.inbox.db``: written by the webhook door only, drained into the main database."""

    PRUNE_EVERY_S = 1.0
    CHECKPOINT_EVERY_S = 2.0
    PRUNE_MAX_ROWS = 1000  # per prune: a short delete, never a long one in the middle of a storm

    def __init__(self, main: Database, path: Path) -> None:
        self.main, self.path = main, path
        self.db = Database(f"sqlite:///{path}")
        # The processor checkpoints the spool's WAL (passively: that never blocks the door); the door's own
        # commits checkpoint only as a safety net if the processor is not running.
        self.db.wal_autocheckpoint = 10_000
        self._epoch: str | None = None
        self._pruned_at = self._checkpointed_at = 0.0
        self._con: sqlite3.Connection | None = None

    @classmethod
    def for_database(cls, main: Database) -> InboxSpool | None:
        """The spool of a file-backed SQLite database; None for PostgreSQL or an in-memory database."""
        p = main.sqlite_file
        return None if p is None else cls(main, p.with_name(p.stem + ".inbox" + (p.suffix or ".db")))

    # -- setup ------------------------------------------------------------------------------------------
    def epoch(self) -> str:
        """Create the spool's tables and epoch if missing (idempotent; safe from several processes)."""
        if self._epoch is None and self.path.exists():
            with self.db.engine.connect() as conn:  # set up already: a read, no write lock
                if conn.scalar(text("SELECT count(*) FROM sqlite_master WHERE name = 'spool_meta'")):
                    self._epoch = conn.scalar(text("SELECT value FROM spool_meta WHERE key = 'epoch'"))
        if self._epoch is None:
            with self.db.engine.begin() as conn:
                for ddl in _DDL:
                    conn.exec_driver_sql(ddl)
                new = uuid.uuid4().hex
                created = conn.execute(text("INSERT OR IGNORE INTO spool_meta (key, value) VALUES ('epoch', :e)"),
                                       {"e": new}).rowcount == 1
                if created:
                    # Start the ids above every main-database inbox id, so a delivery keeps its id when copied.
                    with self.main.engine.connect() as mc:
                        top = mc.scalar(select(func.max(WebhookInbox.id))) or 0
                    if top:
                        conn.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES ('spool', :n)"), {"n": top})
                self._epoch = conn.scalar(text("SELECT value FROM spool_meta WHERE key = 'epoch'"))
        return self._epoch  # type: ignore[return-value]

    # -- the door ---------------------------------------------------------------------------------------
    def write(self, items: list[tuple[str, str, str | None]]) -> list[int | None]:
        """The door's group-commit body: insert the batch in one transaction and return each row's id (None for a
        delivery id already accepted: in the spool, the main inbox or earlier in the batch); now and then prune
        what the processor has copied. A plain sqlite3 connection, not the ORM: this runs for every webhook in
        a storm, on the event loop, and the ORM's session, savepoint and statement compilation cost more than
        the insert itself."""
        self.epoch()
        given = [d for _, _, d in items if d is not None]
        seen: set[str] = set()
        if given:
            with self.main.sessions() as ms:
                seen = set(ms.scalars(select(WebhookInbox.delivery_id).where(WebhookInbox.delivery_id.in_(given))))
        con = self._door()
        stamp = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DateTime storage format
        con.execute("BEGIN IMMEDIATE")
        try:
            out: list[int | None] = []
            for (source, body, delivery), new in zip(items, _new_deliveries(items, seen), strict=True):
                if not new:
                    out.append(None)
                    continue
                cur = con.execute("INSERT OR IGNORE INTO spool (source, delivery_id, body, received_at) "
                                  "VALUES (?, ?, ?, ?)", (source, delivery, body, stamp))
                out.append(int(cur.lastrowid) if cur.rowcount == 1 and cur.lastrowid else None)
            now = time.monotonic()
            if now - self._pruned_at >= self.PRUNE_EVERY_S:
                self._pruned_at = now
                copied = self.cursor()
                if copied:
                    con.execute("DELETE FROM spool WHERE id IN (SELECT id FROM spool WHERE id <= ? ORDER BY id "
                                "LIMIT ?)", (copied, self.PRUNE_MAX_ROWS))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return out

    def _door(self) -> sqlite3.Connection:
        """The door's own connection (autocommit mode: transactions are explicit), opened once."""
        if self._con is None:
            con = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute(f"PRAGMA wal_autocheckpoint={self.db.wal_autocheckpoint}")
            self._con = con
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        self.db.engine.dispose()

    def cursor(self) -> int:
        """The last spool id copied into the main database (a read of the main database)."""
        with self.main.sessions() as ms:
            return ms.scalar(select(IntakeSpoolCursor.last_id).where(IntakeSpoolCursor.epoch == self.epoch())) or 0

    # -- the processor ----------------------------------------------------------------------------------
    def transfer(self, limit: int = 500) -> int:
        """Copy up to ``limit`` new spool rows into ``webhook_inbox`` (pending) and move the cursor, in one
        main-database transaction; returns how many spool rows were consumed."""
        epoch = self.epoch()
        last = self.cursor()
        with self.db.engine.connect() as sc:  # a read: never waits for the door
            rows = sc.execute(select(SPOOL).where(SPOOL.c.id > last).order_by(SPOOL.c.id).limit(limit)).all()
            if time.monotonic() - self._checkpointed_at >= self.CHECKPOINT_EVERY_S:
                # Fold the WAL back into the file, passively: the door keeps appending meanwhile.
                sc.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                self._checkpointed_at = time.monotonic()
        if not rows:
            return 0
        with self.main.session() as s:
            cur = s.get(IntakeSpoolCursor, epoch, with_for_update=True)
            if cur is not None and cur.last_id != last:  # another processor copied meanwhile: next round
                return 0
            ids = [r.id for r in rows]
            taken = set(s.scalars(select(WebhookInbox.id).where(WebhookInbox.id.in_(ids))))
            given = [r.delivery_id for r in rows if r.delivery_id]
            dup = set(s.scalars(select(WebhookInbox.delivery_id).where(WebhookInbox.delivery_id.in_(given)))) \
                if given else set()
            values = []
            for r in rows:
                if r.delivery_id and r.delivery_id in dup:
                    continue  # the same delivery reached the main inbox another way: it is not processed twice
                v = {"source": r.source, "body": r.body, "delivery_id": r.delivery_id, "status": "pending",
                     "attempts": 0, "received_at": r.received_at}
                if r.id not in taken:
                    v["id"] = r.id
                values.append(v)
            with_id = [v for v in values if "id" in v]
            without = [v for v in values if "id" not in v]
            if with_id:
                s.execute(insert(WebhookInbox), with_id)
            if without:
                s.execute(insert(WebhookInbox), without)
            if cur is None:
                s.add(IntakeSpoolCursor(epoch=epoch, last_id=rows[-1].id))
            else:
                cur.last_id = rows[-1].id
        return len(rows)

    def waiting(self) -> int:
        """Spool rows not yet copied into the main database."""
        last = self.cursor()
        with self.db.engine.connect() as sc:
            return int(sc.scalar(select(func.count()).select_from(SPOOL).where(SPOOL.c.id > last)) or 0)


def backlog(db: Database, spool: InboxSpool | None) -> int:
    """Accepted deliveries not processed yet: spool rows not copied yet plus pending main-inbox rows (counted in
    that order, so a row copied between the two counts is not missed)."""
    waiting = spool.waiting() if spool is not None else 0
    with db.sessions() as s:
        n = int(s.scalar(select(func.count()).select_from(WebhookInbox).where(WebhookInbox.status == "pending")) or 0)
    return waiting + n
