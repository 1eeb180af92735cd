"""Scale-out mode: the jobs people wait for go to their own Celery queue, which a worker reads before the backlog.

Against the real Redis that scripts/test.sh starts: the dispatcher routes by job kind, and a consumer set up as
`warroom worker` sets up its own (the same Celery app, its queues in the same order) takes three interactive jobs
first although five background jobs were sent before them. With kombu's default queue order (round robin) it
would take one from each queue in turn."""

from __future__ import annotations

import os

import pytest
from kombu import Consumer, Queue

from bot.celery_app import QUEUES, celery_dispatcher, make_celery

REDIS = os.environ.get("WARROOM_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not REDIS, reason="needs WARROOM_TEST_REDIS_URL")


def _taken(order_strategy: str | None) -> list[int]:
    import redis

    assert REDIS
    redis.Redis.from_url(REDIS).flushdb()
    app = make_celery(REDIS)
    if order_strategy is not None:
        app.conf.broker_transport_options = {**app.conf.broker_transport_options,
                                             "queue_order_strategy": order_strategy}
    dispatch = celery_dispatcher(app)
    for job_id in range(1, 6):
        dispatch(job_id, 0.0, "incident.card")  # an alert storm's backlog
    for job_id in (97, 98, 99):  # slash commands, mentions, clicks, sent last
        dispatch(job_id, 0.0, "skill.run")
    taken: list[int] = []
    with app.connection_for_read() as conn:
        def on_message(body: object, message: object) -> None:
            args = body[0] if isinstance(body, (list, tuple)) else []  # protocol 2: (args, kwargs, embed)
            taken.append(int(args[0]))
            message.ack()  # type: ignore[attr-defined]

        consumer = Consumer(conn, queues=[Queue(q) for q in QUEUES], callbacks=[on_message], prefetch_count=1)
        with consumer:
            while len(taken) < 8:
                conn.drain_events(timeout=5)
    return taken


def test_commands_are_taken_before_the_backlog() -> None:
    assert QUEUES[0] == "warroom.interactive"
    taken = _taken(None)
    assert taken == [97, 98, 99, 1, 2, 3, 4, 5], taken


def test_with_the_default_order_the_queues_take_turns() -> None:
    taken = _taken("round_robin")  # the baseline: kombu's default
    assert taken[:4] == [97, 1, 98, 2], taken


def test_a_retry_reaches_the_broker_when_the_database_says_it_is_due(tmp_path) -> None:  # noqa: ANN001
    """A job that fails on a refused connection (Slack or a dependency out) is due again in 1 s while it is young
    (knowledge.jobs.fail); the message the worker sends Celery must carry that time, not the 15 s ceiling."""
    import datetime as dt
    import time

    import redis

    from bot.worker import JobRunner
    from knowledge.db import Database

    assert REDIS
    redis.Redis.from_url(REDIS).flushdb()
    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    db.upgrade()
    app = make_celery(REDIS)
    runner = JobRunner(db, n_threads=1, lease_s=30, dispatch=celery_dispatcher(app))

    def refused(payload: dict) -> None:
        raise ConnectionRefusedError("dependency out")

    runner.register("incident.card", refused)
    ref = runner.submit("incident.card", {"incident_id": 1})
    assert runner.run_job(ref.id) is True  # claimed and run: it failed, and was queued again
    failed_at = time.time()
    etas: list[str | None] = []
    with app.connection_for_read() as conn:
        def on_message(body: object, message: object) -> None:
            etas.append(message.headers.get("eta"))  # type: ignore[attr-defined]
            message.ack()  # type: ignore[attr-defined]

        with Consumer(conn, queues=[Queue(q) for q in QUEUES], callbacks=[on_message], prefetch_count=1):
            while len(etas) < 2:
                conn.drain_events(timeout=5)
    assert etas[0] is None  # the first delivery: at once
    assert etas[1] is not None
    retry_in = dt.datetime.fromisoformat(etas[1]).timestamp() - failed_at
    assert 0 < retry_in <= 2.0, retry_in  # jobs.fail made it due in 1 s (it was 15 s: TRANSIENT_CAP_S)


def test_the_sweeper_leaves_a_backlog_alone_and_resends_what_redis_lost(tmp_path) -> None:  # noqa: ANN001
    """Jobs that wait in a backlog are in the broker: the sweeper must not send them again (it sent every job that
    had waited 5 s, every 15 s, from every replica: copies the worker had to claim and drop). When Redis loses them
    (a restart), each is resent once, and a lost command goes back to the interactive queue, not behind the
    backlog."""
    import datetime as dt

    import redis
    from prometheus_client import REGISTRY
    from sqlalchemy import update

    from bot.celery_app import celery_pending
    from bot.worker import JobRunner
    from knowledge.db import Database
    from knowledge.models import Job, utcnow

    assert REDIS
    r = redis.Redis.from_url(REDIS)
    r.flushdb()
    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    db.upgrade()
    app = make_celery(REDIS)
    runner = JobRunner(db, n_threads=1, lease_s=30, dispatch=celery_dispatcher(app), pending=celery_pending(app))
    for kind in ("incident.card", "skill.run"):
        runner.register(kind, lambda payload: None)
    for i in range(30):
        runner.submit("incident.card", {"incident_id": i})
    for i in range(2):
        runner.submit("skill.run", {"n": i})
    with db.session() as s:  # they have all waited 10 s: an alert storm's backlog the worker has not reached
        s.execute(update(Job).values(run_after=utcnow() - dt.timedelta(seconds=10)))
    assert (r.llen(QUEUES[1]), r.llen(QUEUES[0])) == (30, 2)

    assert runner.sweep() == 0
    assert (r.llen(QUEUES[1]), r.llen(QUEUES[0])) == (30, 2)  # no copies

    r.delete(QUEUES[0])  # Redis loses the commands ...
    for _ in range(10):
        r.rpop(QUEUES[1])  # ... and the 10 oldest alerts' messages (the worker takes from the other end)
    for i in range(15):  # the storm goes on: new alerts' messages fill the queue again, but not for the lost ones
        runner.submit("incident.card", {"incident_id": 100 + i})
    lost_before = REGISTRY.get_sample_value("warroom_jobs_resent_total", {"reason": "lost"}) or 0.0
    assert runner.sweep() == 12
    assert (r.llen(QUEUES[1]), r.llen(QUEUES[0])) == (45, 2)
    assert REGISTRY.get_sample_value("warroom_jobs_resent_total", {"reason": "lost"}) == lost_before + 12
    assert runner.sweep() == 0  # found again at once: nothing more to send

    # Another replica, whose broker cannot say what it holds, sends every job that has waited again, except the 12
    # the first replica has just sent (not one job twice from two replicas: each took its resends in the database)
    never_asked = JobRunner(db, n_threads=1, lease_s=30, dispatch=celery_dispatcher(app), pending=lambda _: None)
    assert never_asked.sweep() == 20
    assert never_asked.sweep() == 0
