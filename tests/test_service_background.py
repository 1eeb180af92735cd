"""`warroom serve` with WARROOM_BACKGROUND=process: the inbox and the jobs run in a child process."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from bot.standin.procs import ServerProcess
from bot.standin.server import SlackStandIn

SECRET = "bench-generic-secret"


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0
    except FileNotFoundError:
        return False


def test_child_process_processes_the_inbox_and_dies_with_its_parent(tmp_path: Path) -> None:
    with SlackStandIn() as standin:
        srv = ServerProcess(tmp_path, standin.api_url, WARROOM_BACKGROUND="process", WARROOM_WARM_MODELS="false",
                            WARROOM_SLACK_INCIDENT_CHANNEL="C0INCIDENTS")
        srv.start()
        try:
            assert srv.proc is not None
            children = _children(srv.proc.pid)
            assert len(children) == 1  # `warroom background`
            alert = {"alerts": [{"name": "DiskFull", "service": "ingest", "fingerprint": "bg-1", "summary": "disk"}]}
            r = httpx.post(f"{srv.url}/webhooks/generic", json=alert, headers={"Authorization": f"Bearer {SECRET}"},
                           timeout=10)
            assert r.status_code == 202
            deadline = time.time() + 60
            while time.time() < deadline and not standin.messages("C0INCIDENTS"):
                time.sleep(0.2)
            assert len(standin.messages("C0INCIDENTS")) == 1  # the child posted the card
            con = sqlite3.connect(tmp_path / "warroom.db")
            assert con.execute("SELECT COUNT(*) FROM incidents WHERE source='generic'").fetchone()[0] == 1
            con.close()
            srv.kill()  # SIGKILL: no chance to stop its child ...
            deadline = time.time() + 10
            while time.time() < deadline and _alive(children[0]):
                time.sleep(0.2)
            assert not _alive(children[0])  # ... which notices and exits on its own
        finally:
            srv.stop()


@pytest.mark.sqlite_only  # SQLite's write-ahead log
def test_web_process_leaves_wal_checkpoints_to_the_child(tmp_path: Path) -> None:
    from sqlalchemy import text

    from bot.app import create_app
    from tests.conftest import make_settings

    def autocheckpoint(background_in_child: bool) -> int:
        app = create_app(make_settings(tmp_path / str(background_in_child)), background_in_child=background_in_child)
        with app.state.services.db.engine.connect() as conn:
            return int(conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())

    assert autocheckpoint(True) == 10_000  # the door's commits rarely pay for a checkpoint
    assert autocheckpoint(False) == 1_000  # one process: SQLite's default
