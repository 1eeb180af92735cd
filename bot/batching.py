"""Micro-batching: concurrent callers share one call, each answered with its own result.

Each caller adds its item and awaits a future; one task runs ``run(items)`` on everything that is waiting and
resolves the futures. While one batch runs the next one gathers, so batches grow with the load and a lone
caller goes straight through. Used for the webhook inbox and Slack jobs (one database transaction per batch,
``bot.group_commit``) and for the risk REST endpoint (one model call per batch, ``bot.api``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """``await submit(item)`` returns ``run(items)[i]`` for the batch its item went into.

    ``in_thread(items)`` says whether a batch runs in a worker thread (default: always) or on the event loop
    (for work cheaper than a thread hop). If ``run`` raises, every caller of that batch gets the exception.
    """

    def __init__(self, run: Callable[[list[T]], list[R]], *, max_batch: int = 500,
                 in_thread: Callable[[list[T]], bool] | None = None) -> None:
        self.run, self.max_batch, self.in_thread = run, max_batch, in_thread
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._busy = False

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, fut))
        if not self._busy:
            self._busy = True
            loop.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
                items = [item for item, _ in batch]
                try:
                    if self.in_thread is None or self.in_thread(items):
                        results = await asyncio.to_thread(self.run, items)
                    else:
                        results = self.run(items)
                except BaseException as exc:  # noqa: BLE001 - every caller of the batch learns it failed
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), res in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(res)
        finally:
            self._busy = False
