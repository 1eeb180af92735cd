"""One background processor per SQLite database: a second process (or a second set of services in this one)
waits for the lock instead of applying the same inbox rows twice, and a `warroom background` whose parent
is already gone exits at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.processor_lock import ProcessorLock
from bot.services import build_services
from knowledge.db import Database
from tests.conftest import make_settings

pytestmark = pytest.mark.sqlite_only  # PostgreSQL serialises with advisory locks (bot/intake_worker.py)


def test_lock_is_exclusive_and_released_on_close(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'warroom.db'}")
    first, second = ProcessorLock.for_database(db), ProcessorLock.for_database(db)
    assert first is not None and second is not None and first.path == tmp_path / "warroom.db.processor.lock"
    assert first.acquire(wait=False)
    assert not second.acquire(wait=False)
    first.release()
    assert second.acquire(wait=False) and second.held
    second.release()
    assert ProcessorLock.for_database(Database("postgresql+psycopg://u:p@127.0.0.1:9/x")) is None


def test_lock_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'warroom.db'}")
    lock = ProcessorLock.for_database(db)
    assert lock is not None
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"), str(lock.path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not lock.acquire(wait=False)
        holder.kill()  # SIGKILL: the kernel releases its lock
        holder.wait()
        assert lock.acquire(wait=True)
    finally:
        holder.kill()
        lock.release()


def test_second_services_start_processing_only_after_the_first_stops(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, warm_models=False)
    Database(settings.database_url).upgrade()
    a, b = build_services(settings), build_services(settings)
    a.start_background()
    b.start_background()
    try:
        assert a.intake._thread is not None and a.intake._thread.is_alive()
        assert b.intake._thread is None  # waiting for the lock, not processing the same rows
        a.stop()
        deadline = time.time() + 10
        while time.time() < deadline and not (b.intake._thread is not None and b.intake._thread.is_alive()):
            time.sleep(0.05)
        assert b.intake._thread is not None and b.intake._thread.is_alive()
    finally:
        a.stop()
        b.stop()


def test_background_whose_parent_is_gone_exits_at_once(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    env = {**os.environ, "WARROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'warroom.db'}",
           "WARROOM_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "background",
                           "--parent", str(gone.pid)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "warroom.db.processor.lock").exists()  # it never started processing


def test_background_exits_on_repeated_sigterm_and_frees_the_lock(tmp_path: Path) -> None:
    """Its parent's terminate() and the parent-death signal can arrive together: it must still exit."""
    settings = make_settings(tmp_path)
    Database(settings.database_url).upgrade()
    env = {**os.environ, "WARROOM_DATABASE_URL": settings.database_url, "WARROOM_DATA_DIR": str(tmp_path),
           "WARROOM_WARM_MODELS": "false", "WARROOM_EMBEDDER": "hash", "WARROOM_MODE": "demo"}
    proc = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "background",
                             "--parent", str(os.getpid())], env=env)
    lock = ProcessorLock.for_database(Database(settings.database_url))
    assert lock is not None
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (lock.path.exists() and lock.path.read_text().strip()):
            time.sleep(0.1)
        assert lock.path.read_text().strip() == str(proc.pid)  # it holds the lock: processing
        for _ in range(5):
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert lock.acquire(wait=False)  # released
    finally:
        proc.kill()
        lock.release()
