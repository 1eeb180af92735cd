"""The webhook door's spool file (SQLite): deliveries are committed there, copied into ``webhook_inbox`` exactly
once (also when a copy fails half-way or the spool file is replaced), keep their ids, are pruned once copied,
and an acknowledgement does not wait for the main database's write lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bot.inbox_spool import SPOOL, InboxSpool, backlog
from bot.standin.harness import LiveServer
from knowledge.db import Database
from knowledge.models import IntakeSpoolCursor, WebhookInbox
from knowledge.seed import seed
from tests.conftest import Live, make_settings
from tests.test_intake_batch import delivery
from tests.test_intake_webhooks import incidents, load, post, wait_processed

pytestmark = pytest.mark.sqlite_only  # the spool is a SQLite file beside the SQLite database


def _main(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'warroom.db'}")
    db.upgrade()
    return db


def _spool_write(spool: InboxSpool, items: list[tuple[str, str, str | None]]) -> list[int | None]:
    return spool.write(items)


def _inbox(db: Database) -> list[WebhookInbox]:
    with db.session() as s:
        return list(s.scalars(select(WebhookInbox).order_by(WebhookInbox.id)))


def test_spool_rows_are_copied_once_with_their_ids(tmp_path: Path) -> None:
    db = _main(tmp_path)
    spool = InboxSpool.for_database(db)
    assert spool is not None and spool.path == tmp_path / "warroom.inbox.db"
    ids = _spool_write(spool, [("alertmanager", delivery(f"fp-{i}"), None) for i in range(5)])
    assert ids == sorted(ids) and None not in ids
    assert _inbox(db) == [] and backlog(db, spool) == 5  # accepted, waiting in the spool only
    assert spool.transfer(limit=3) == 3
    assert spool.transfer() == 2
    assert spool.transfer() == 0  # nothing copied twice
    rows = _inbox(db)
    assert [r.id for r in rows] == ids and {r.status for r in rows} == {"pending"}
    assert [r.body for r in rows] == [delivery(f"fp-{i}") for i in range(5)]
    assert backlog(db, spool) == 5  # now pending in the main inbox


def test_a_failed_copy_leaves_the_cursor_and_is_redone_exactly_once(tmp_path: Path) -> None:
    db = _main(tmp_path)
    spool = InboxSpool.for_database(db)
    assert spool is not None
    _spool_write(spool, [("alertmanager", delivery(f"fp-{i}"), None) for i in range(4)])
    with db.engine.begin() as conn:  # the main database refuses the copy (disk full, a crash: the same rollback)
        conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON webhook_inbox "
                             "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    try:
        spool.transfer()
    except Exception as exc:  # noqa: BLE001 - the database's refusal, whatever its class
        assert "refused" in str(exc)
    else:
        raise AssertionError("the copy should have been refused")
    assert _inbox(db) == [] and spool.cursor() == 0 and spool.waiting() == 4
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse")
    assert spool.transfer() == 4 and spool.transfer() == 0
    assert len(_inbox(db)) == 4 and spool.waiting() == 0


def test_pruned_spool_keeps_ids_increasing_and_dedups_against_the_main_inbox(tmp_path: Path) -> None:
    db = _main(tmp_path)
    spool = InboxSpool.for_database(db)
    assert spool is not None
    first = _spool_write(spool, [("pagerduty", '{"x": 1}', "evt-1"), ("pagerduty", '{"x": 2}', "evt-2")])
    spool.transfer()
    spool.PRUNE_EVERY_S = 0.0
    again = _spool_write(spool, [("pagerduty", '{"x": 1}', "evt-1"), ("pagerduty", '{"x": 3}', "evt-3")])
    assert again[0] is None  # a replay of a delivery already copied (and now pruned from the spool)
    assert again[1] is not None and again[1] > max(i for i in first if i is not None)
    with spool.db.engine.connect() as c:
        left = [r.id for r in c.execute(select(SPOOL.c.id))]
    assert left == [again[1]]  # the copied rows were pruned, the new one stays until copied
    spool.transfer()
    assert [r.delivery_id for r in _inbox(db)] == ["evt-1", "evt-2", "evt-3"]


def test_a_replaced_spool_file_starts_from_its_beginning_above_the_main_ids(tmp_path: Path) -> None:
    db = _main(tmp_path)
    spool = InboxSpool.for_database(db)
    assert spool is not None
    _spool_write(spool, [("alertmanager", delivery(f"fp-{i}"), None) for i in range(3)])
    spool.transfer()
    spool.db.engine.dispose()
    for p in tmp_path.glob("warroom.inbox.db*"):
        p.unlink()
    fresh = InboxSpool.for_database(db)
    assert fresh is not None
    ids = _spool_write(fresh, [("alertmanager", delivery("fp-new"), None)])
    assert fresh.epoch() != spool.epoch()
    assert ids[0] is not None and ids[0] > 3  # above every id already in the main inbox
    assert fresh.transfer() == 1
    assert [r.id for r in _inbox(db)] == [1, 2, 3, ids[0]]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(IntakeSpoolCursor)) == 2


def test_the_door_acknowledges_while_the_main_database_is_write_locked(live: Live) -> None:
    """A storm's acknowledgements must not queue behind the processor's writes: the door commits to its own file."""
    path = live.db.url.split("///", 1)[1]
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # nobody else can write the main database until this ends
    try:
        resp = post(live, "alertmanager", load("alertmanager"))
        assert resp.status_code == 202, resp.text
        with live.services.spool.db.engine.connect() as c:  # type: ignore[union-attr]
            assert c.scalar(select(func.count()).select_from(SPOOL).where(SPOOL.c.id == resp.json()["inbox_id"])) == 1
    finally:
        holder.rollback()
        holder.close()
    wait_processed(live)
    (inc,) = incidents(live)
    assert inc.source == "alertmanager"
    with live.db.session() as s:
        row = s.get(WebhookInbox, resp.json()["inbox_id"])
        assert row is not None and row.status == "processed"
        assert s.execute(text("SELECT count(*) FROM webhook_inbox")).scalar() == 1


def test_postgres_and_memory_databases_have_no_spool() -> None:
    assert InboxSpool.for_database(Database("sqlite:///:memory:")) is None
    assert InboxSpool.for_database(Database("postgresql+psycopg://u:p@127.0.0.1:9/x")) is None


def test_a_spool_that_refuses_writes_answers_503_and_loses_nothing_accepted(live: Live) -> None:
    first = post(live, "alertmanager", load("alertmanager"))
    assert first.status_code == 202
    spool = live.services.spool
    assert spool is not None
    con = sqlite3.connect(spool.path)
    con.execute("CREATE TRIGGER refuse BEFORE INSERT ON spool BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    con.commit()
    try:
        refused = post(live, "generic", {"alerts": [{"name": "Other", "service": "ingest", "fingerprint": "o-1"}]})
        assert refused.status_code == 503 and "retry" in refused.json()["error"]
    finally:
        con.execute("DROP TRIGGER refuse")
        con.commit()
        con.close()
    wait_processed(live)
    (inc,) = incidents(live)  # the delivery acknowledged before the failure is processed; the refused one is not
    assert inc.source == "alertmanager"
    assert [r.status for r in _inbox(live.db)] == ["processed"]



def test_spool_left_from_before_is_drained_when_the_spool_is_switched_off(tmp_path: Path, standin) -> None:  # noqa: ANN001
    """Deliveries acknowledged into the spool are processed even after WARROOM_INBOX_SPOOL=false."""
    settings = make_settings(tmp_path, standin, inbox_spool=False)
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as s:
        seed(s)
    spool = InboxSpool.for_database(db)
    assert spool is not None
    spool.write([("alertmanager", delivery("left-1"), None), ("alertmanager", delivery("left-2"), None)])
    spool.close()
    with LiveServer(settings) as srv:
        live = Live(srv, standin, None)  # type: ignore[arg-type]
        assert post(live, "alertmanager", load("alertmanager")).status_code == 202  # straight to webhook_inbox
        srv.services.intake.notify()
        wait_processed(live)
    rows = _inbox(db)
    assert len(rows) == 3 and {r.status for r in rows} == {"processed"}
    assert sorted(r.id for r in rows) == sorted({r.id for r in rows})  # no id reused
