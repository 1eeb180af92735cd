"""The scale-out job backend: Celery on Redis runs the same job handlers as the in-process pool.

The job's state lives in the database (``jobs`` table); Redis carries only the job id. So a message
lost with a Redis restart, or a worker killed mid-job (its lease runs out), is found by the app's
sweeper and sent again, and a duplicate delivery is harmless: a job is claimed by compare-and-set and
runs at most once at a time. Start workers with ``warroom worker``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from celery import Celery

if TYPE_CHECKING:
    from collections.abc import Callable

    from bot.services import Services

__all__ = ["make_celery", "celery_dispatcher", "celery_pending", "worker_services", "TASK", "QUEUES"]

log = logging.getLogger("warroom.celery")

TASK = "warroom.run_job"
# The jobs people wait for (bot.worker.INTERACTIVE) have their own queue, which workers read first (the "priority"
# queue order: the first queue of `--queues` that holds a message wins), so an alert storm's backlog in "warroom"
# never delays an answer. `warroom worker` reads both, in this order.
QUEUES = ("warroom.interactive", "warroom")
_services: Services | None = None
_services_lock = threading.Lock()


def worker_services() -> Services:
    """Build the worker process's services once, from the same settings as the app."""
    global _services
    with _services_lock:
        if _services is None:
            from bot.services import build_services
            from bot.settings import load_settings

            # The worker runs the jobs Celery hands it (``run_job``), and the jobs those jobs queue (a triage's card
            # refreshes, a retry after a failure) go to the broker like a replica's, not to in-process threads this
            # process never starts: those waited for a replica's sweeper (5 s or more), or for ever with no replica up.
            _services = build_services(load_settings(job_backend="celery"))
        return _services


def make_celery(redis_url: str, run: Callable[[int], bool] | None = None) -> Celery:
    """The Celery app (broker: Redis). Late acks: a job whose worker dies is redelivered. ``run(job_id)`` runs a
    job in the worker (default: this process's :func:`worker_services` runner)."""
    app = Celery("warroom", broker=redis_url)
    app.conf.update(
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_default_queue="warroom", broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 600, "queue_order_strategy": "priority"},
        task_ignore_result=True,
    )

    @app.task(name=TASK)
    def run_job(job_id: int) -> bool:
        return run(int(job_id)) if run is not None else worker_services().runner.run_job(int(job_id))

    return app


def celery_dispatcher(app: Celery):  # type: ignore[no-untyped-def]
    """``dispatch(job_id, delay_s, kind)`` for :class:`bot.worker.JobRunner`: the jobs people wait for go to the
    interactive queue."""
    from bot.worker import INTERACTIVE

    def dispatch(job_id: int, delay_s: float, kind: str = "") -> None:
        app.send_task(TASK, args=[job_id], countdown=max(0.0, delay_s) or None,
                      queue=QUEUES[0] if kind in INTERACTIVE else QUEUES[1])

    return dispatch


def celery_pending(app: Celery):  # type: ignore[no-untyped-def]
    """``pending(interactive)`` for :class:`bot.worker.JobRunner`: how many messages wait in the interactive queue
    (True) or the background queue; None when the broker cannot be asked (the sweeper then resends every job
    that has waited)."""

    def pending(interactive: bool) -> int | None:
        try:
            with app.pool.acquire(block=True, timeout=2.0) as conn:
                return int(conn.default_channel.queue_declare(queue=QUEUES[0] if interactive else QUEUES[1])
                           .message_count)
        except Exception as exc:  # noqa: BLE001 - broker down: say so, the caller falls back
            log.warning("could not read the broker's queue length: %s", exc)
            return None

    return pending
