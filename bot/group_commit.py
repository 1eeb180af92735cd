"""Group commit: many concurrent requests, one database transaction, every caller answered after it.

"Durable before acknowledged" costs a transaction per request. Under a burst (50 slash commands at once,
an alert storm) those transactions queue behind one another on the writer lock and the GIL, and the
acknowledgement waits for all of them. Here each request adds its item and awaits a future; one task
writes everything that is waiting in a single transaction (in a thread), and resolves the futures after
the commit. While one batch is being written the next one gathers, so batches grow with the load and
a lone request still goes straight through. Nothing is acknowledged before its commit: if the commit
fails, every caller in the batch gets the exception (and answers 503).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from bot.batching import MicroBatcher
from knowledge.db import Database

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(MicroBatcher[T, R]):
    """``await submit(item)`` returns ``write(session, items)[i]`` once that batch has committed."""

    def __init__(self, db: Database, write: Callable[[Session, list[T]], list[R]],
                 after_commit: Callable[[list[R]], Any] | None = None, max_batch: int = 500) -> None:
        super().__init__(self._write_batch, max_batch=max_batch)
        self.db, self.write, self.after_commit = db, write, after_commit
        self.batches = 0  # how many transactions (for the benchmark's report)

    def _write_batch(self, items: list[T]) -> list[R]:
        with self.db.session() as s:
            results = self.write(s, items)
        self.batches += 1
        if self.after_commit is not None:
            self.after_commit(results)
        return results
