"""One background processor per SQLite database, enforced by the operating system.

SQLite has no advisory locks like PostgreSQL's, and two inbox processors on one SQLite file would both read
the same pending rows and apply them twice. That happened when `warroom serve` was killed and restarted
while its old `warroom background` child was still running. The process that runs the inbox processor and
the job pool holds an exclusive ``flock`` on ``<db>.processor.lock``; the kernel releases it when the process
ends, however it ends, and the next one waits for it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from knowledge.db import Database

__all__ = ["ProcessorLock"]


class ProcessorLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._cancel = threading.Event()

    @classmethod
    def for_database(cls, db: Database) -> ProcessorLock | None:
        """The lock of a file-backed SQLite database; None for PostgreSQL (advisory locks serialise there)."""
        p = db.sqlite_file
        return None if p is None else cls(p.with_name(p.name + ".processor.lock"))

    def acquire(self, *, wait: bool = True, poll_s: float = 0.2) -> bool:
        """Take the lock; with ``wait``, until it is free or :meth:`release` cancels the wait."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait or self._cancel.wait(poll_s):
                    os.close(fd)
                    return False
                continue
            self._fd = fd
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return True

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        self._cancel.set()
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
