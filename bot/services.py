"""The service container: settings, database, skills, Slack poster and worker, built once."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from bot.inbox_spool import InboxSpool
from bot.intake_worker import IntakeProcessor
from bot.processor_lock import ProcessorLock
from bot.settings import Settings
from bot.slack_client import SlackPoster, make_web_client
from bot.worker import JobRunner
from knowledge.db import Database
from skills.base import PERSON_LOOKUP, SkillContext
from skills.registry import Registry, default_registry

__all__ = ["Services", "build_services"]

log = logging.getLogger("warroom")


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: Registry
    ctx: SkillContext
    poster: SlackPoster
    runner: JobRunner
    intake: IntakeProcessor = field(default=None, repr=False)  # type: ignore[assignment]
    inbox_writer: Any = field(default=None, repr=False)  # the webhooks' group commit (bot.webhooks._inbox)
    spool: InboxSpool | None = field(default=None, repr=False)  # SQLite: the door's own inbox file
    migrated: bool = False
    warm: bool = False
    warm_error: str | None = None
    llm_status: dict[str, Any] | None = None  # check_llm(): whether the LLM endpoint answers and serves the model
    _warm_thread: threading.Thread | None = field(default=None, repr=False)
    _lock: ProcessorLock | None = field(default=None, repr=False)  # SQLite: one processor per database file

    def warm_up(self) -> None:
        """Load every skill's heavy resources once (run in a background thread)."""
        try:
            for skill in self.registry.skills:
                skill.warm(self.ctx)
            import gc

            gc.collect()
            gc.freeze()  # the loaded models live as long as the process: keep full collections off them
            self.warm = True
        except Exception as exc:  # noqa: BLE001 - reported on /readyz, the app keeps serving
            self.warm_error = f"{type(exc).__name__}: {exc}"
            log.exception("warm-up failed")

    def check_llm(self) -> None:
        """Ask the LLM endpoint, once at start, whether it serves the configured model (logged, on /readyz)."""
        from skills.ask_llm import check_endpoint

        s = self.settings
        key = s.llm_api_key.get_secret_value() if s.llm_api_key else "not-needed"
        self.llm_status = check_endpoint(s.llm_base_url, key, s.llm_model, min(s.llm_timeout_s, 10.0))
        if not self.llm_status["ok"]:
            log.warning("LLM: %s; answers and postmortem drafts fall back to the model-free ones",
                        self.llm_status["error"])

    def start_background(self, *, local_work: bool = True) -> None:
        """Start the worker pool, the inbox processor and the model warm-up. With ``local_work=False`` (the
        web process when ``WARROOM_BACKGROUND=process``) only the warm-up: a `warroom background` child
        process runs the rest."""
        if local_work:
            self._lock = ProcessorLock.for_database(self.db)
            if self._lock is None or self._lock.acquire(wait=False):
                self._start_local_work()
            else:  # another process (an old child still stopping, a second server) processes this SQLite file
                log.warning("another process holds %s: inbox and jobs start when it exits", self._lock.path)
                threading.Thread(target=self._start_when_free, name="warroom-processor-lock", daemon=True).start()
        # the token's scopes against what the bot needs (logged, and on /readyz), without holding up the start
        threading.Thread(target=self.poster.check_scopes, name="warroom-scopes", daemon=True).start()
        if self.settings.llm_enabled:
            threading.Thread(target=self.check_llm, name="warroom-llm-check", daemon=True).start()
        if self.settings.warm_models:
            self._warm_thread = threading.Thread(target=self.warm_up, name="warroom-warm", daemon=True)
            self._warm_thread.start()
        else:
            self.warm = True

    def _start_local_work(self) -> None:
        __import__("bot.runbook_jobs").runbook_jobs.recover_interrupted(self)  # before workers (issue 8)
        self.runner.start()
        self.intake.start()
        if self.settings.retention_runs():  # the retention of raw webhook bodies, every 6 hours (bot/maintenance.py)
            try:
                __import__("bot.maintenance").maintenance.schedule(self)
            except Exception as exc:  # noqa: BLE001 - a database hiccup here must not stop the bot: next start
                log.warning("could not plan the retention run: %s", exc)
        handovers = __import__("bot.shift_handover").shift_handover
        try:  # the rotations' turns ahead, now (a bot down for weeks comes back with someone on call) and hourly
            handovers.top_up_now(self, fetch=False)  # no network here: a slow feed must not hold the start up
            if self.settings.mode not in ("test", "demo"):
                handovers.schedule_top_up(self)  # fetches the feeds, then every hour
        except Exception as exc:  # noqa: BLE001 - a database hiccup here must not stop the bot: next start
            log.warning("could not write the rotations' shifts ahead: %s", exc)
        if self.settings.mode not in ("test", "demo"):  # runbook requests past their approval time (every 10 min)
            try:
                __import__("bot.runbook_jobs").runbook_jobs.schedule_sweep(self, 60.0)
            except Exception as exc:  # noqa: BLE001 - a database hiccup here must not stop the bot: next start
                log.warning("could not plan the runbook request sweep: %s", exc)
        try:  # the routing classifier kept in step with the knowledge base (bot/train_jobs.py); a minute in
            __import__("bot.train_jobs").train_jobs.schedule_refresh(self, 60.0)
        except Exception as exc:  # noqa: BLE001 - a database hiccup here must not stop the bot: next start
            log.warning("could not plan the routing refresh: %s", exc)
        if self.settings.shift_handovers():  # the next on-call change of every team (bot/shift_handover.py)
            try:
                self.runner.submit("oncall.plan", {})
            except Exception as exc:  # noqa: BLE001 - a database hiccup here must not stop the bot: next start
                log.warning("could not plan the on-call handovers: %s", exc)

    def _start_when_free(self) -> None:
        if self._lock is not None and self._lock.acquire(wait=True):
            self._start_local_work()  # (a stop() meanwhile cancels the wait: acquire returns False)

    def stop(self) -> None:
        self.intake.stop()
        self.runner.stop()
        if self._lock is not None:
            self._lock.release()
        if self.spool is not None:
            self.spool.close()


def build_services(settings: Settings) -> Services:
    """Wire the parts together; nothing here talks to the network."""
    from bot import handlers

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.models_path.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    registry = default_registry()
    ctx = SkillContext(db=db, data_dir=settings.data_dir, model_dir=settings.models_path, settings=settings)
    client = make_web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    poster = SlackPoster(client, per_channel_interval=settings.slack_channel_interval_s)
    ctx.resources[PERSON_LOOKUP] = poster.person  # who is a member: runbooks and incident changes ask it
    dispatch = pending = None
    if settings.job_backend == "celery":
        from bot.celery_app import celery_dispatcher, celery_pending, make_celery

        celery = make_celery(settings.redis_url)
        dispatch, pending = celery_dispatcher(celery), celery_pending(celery)
    runner = JobRunner(db, n_threads=settings.workers, lease_s=settings.job_lease_s, dispatch=dispatch,
                       interactive_lane=settings.interactive_lane, pending=pending)
    services = Services(settings=settings, db=db, registry=registry, ctx=ctx, poster=poster, runner=runner)
    spool = InboxSpool.for_database(db)
    # With WARROOM_INBOX_SPOOL=false the door writes webhook_inbox, but a spool file left from before is still
    # drained: what it holds was acknowledged.
    services.spool = spool if spool is not None and (settings.inbox_spool or spool.path.exists()) else None
    services.intake = IntakeProcessor(services)
    handlers.register_all(services)
    return services
