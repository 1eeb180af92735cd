"""The ``warroom`` command line.

Problems a person can fix (bad settings, unreachable database, unreadable file) end with one line
on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.settings import Settings, SettingsError, load_settings

__all__ = ["app", "main", "train_app", "eval_app"]

app = typer.Typer(help="warroom: the incident-response ChatOps bot.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
train_app = typer.Typer(help="Train the learned skills.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate skills on labelled data (prints JSON with --json).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")


class CliError(Exception):
    """One-line failure for the person at the terminal."""


def _settings(*, online: bool = False, **overrides: object) -> Settings:
    """The settings; ``online`` for the commands that run the bot (they need real Slack and webhook secrets
    outside demo mode), offline for the rest (training, evaluation, imports, migrations)."""
    return load_settings(offline=not online, **overrides)


def _logging(level: str, fmt: str = "json") -> None:
    from bot.logs import configure

    configure(level, fmt)


@app.command()
def serve(
    socket_mode: Annotated[bool, typer.Option("--socket-mode", help="Slack over Socket Mode (no public URL); "
                                              "webhooks, API and health stay on HTTP.")] = False,
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
) -> None:
    """Run the bot: Slack, webhooks, REST API, health and metrics."""
    settings = _settings(online=True)
    _logging(settings.log_level, settings.log_format)
    from knowledge.db import Database

    Database(settings.database_url).ping()
    if socket_mode:  # Slack over a WebSocket; webhooks, REST API, health and metrics still on HTTP
        if settings.slack_app_token is None:
            raise CliError("Socket Mode needs WARROOM_SLACK_APP_TOKEN (xapp-...)")
        settings = settings.model_copy(update={"slack_socket_mode": True})
    import subprocess

    import uvicorn

    from bot.app import create_app

    child = None
    if settings.background == "process":
        child = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "background",
                                  "--parent", str(os.getpid())])
    try:
        app = create_app(settings, background_in_child=child is not None)
        uvicorn.run(app, host=host or settings.host, port=port or settings.port,
                    log_level=settings.log_level.lower(), access_log=False)
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()


def _die_with_parent() -> None:
    """Linux: the kernel sends this process SIGTERM when its parent dies, even by SIGKILL (the poll of the
    parent's pid below covers other systems and a parent that died before this call)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except OSError:
            pass


@app.command(hidden=True)
def background(parent: Annotated[int, typer.Option(help="pid of `warroom serve`: exit when it is gone")] = 0) -> None:
    """The inbox processor and the job pool of `warroom serve` in their own process (WARROOM_BACKGROUND=process).
    Exits when its parent does."""
    import signal
    import time

    _die_with_parent()
    parent = parent or os.getppid()
    if os.getppid() != parent:  # the web process died while this one was starting
        return
    settings = _settings(online=True)
    _logging(settings.log_level, settings.log_format)
    from bot.services import build_services

    if settings.background_nice:
        os.nice(settings.background_nice)
    services = build_services(settings)
    while not services.db.at_head():  # the web process applies the migrations
        time.sleep(0.2)
    services.migrated = True
    services.intake.poll_s = services.runner.poll_s = 0.2  # no in-process wake-ups from the door: poll often
    services.intake.batch = settings.intake_batch  # short write transactions: the door commits between them
    # The handler only appends to a list: an Event.set() in a signal handler deadlocks when a second SIGTERM
    # (the parent's terminate() and the parent-death signal) lands while the first holds the Event's lock.
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    services.start_background()
    while not stopping and os.getppid() == parent:  # stop on SIGTERM, or when the web process is gone
        time.sleep(0.25)
    services.stop()


@app.command()
def worker(concurrency: Annotated[int, typer.Option(help="Worker threads.")] = 4) -> None:
    """Run a Celery worker for the scale-out mode (WARROOM_JOB_BACKEND=celery, WARROOM_REDIS_URL)."""
    settings = _settings(online=True)
    _logging(settings.log_level, settings.log_format)
    from knowledge.db import Database

    Database(settings.database_url).ping()
    from bot.celery_app import QUEUES, make_celery, worker_services

    worker_services()  # load the skills once, before taking jobs
    make_celery(settings.redis_url).worker_main(
        ["worker", f"--concurrency={concurrency}", "--pool=threads", f"--queues={','.join(QUEUES)}",
         f"--loglevel={settings.log_level}", "--without-gossip", "--without-mingle", "--without-heartbeat"])


@app.command()
def demo(
    keep: Annotated[Path | None, typer.Option(help="Keep the demo's data in this directory.")] = None,
    real_model: Annotated[bool, typer.Option("--real-model/--hash-model",
                                             help="Use the bundled MiniLM embedder (slower start).")] = True,
) -> None:
    """Seed a sample world, start the real server against a local Slack stand-in, play a scenario."""
    from bot.demo import run_demo

    raise typer.Exit(run_demo(keep=keep, real_model=real_model))


@app.command()
def standin(port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765) -> None:
    """Run the local Slack Web API stand-in on loopback."""
    import time

    from bot.standin.server import SlackStandIn

    with SlackStandIn(port=port) as s:
        typer.echo(f"Slack stand-in on {s.api_url} (set WARROOM_SLACK_API_URL to it)")
        while True:
            time.sleep(3600)


@app.command()
def seed(world: Annotated[Path | None, typer.Option(help="A world YAML file (default: the sample world).")] = None
         ) -> None:
    """Load the sample world (teams, services, experts, past incidents) into the knowledge base."""
    from knowledge.db import Database
    from knowledge.seed import load_world
    from knowledge.seed import seed as do_seed

    settings = _settings()
    db = Database(settings.database_url)
    db.upgrade()
    try:
        data = load_world(world) if world else None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read world file: {exc}") from None
    with db.session() as s:
        typer.echo(json.dumps(do_seed(s, data)))


@app.command()
def jobs(retry_failed: Annotated[bool, typer.Option(help="Queue failed jobs again.")] = False) -> None:
    """Show the job queue (counts per status, and the latest failures)."""
    from sqlalchemy import select

    from knowledge import jobs as q
    from knowledge.db import Database
    from knowledge.models import Job

    db = Database(_settings().database_url)
    with db.session() as s:
        if retry_failed:
            typer.echo(f"queued again: {q.requeue_failed(s)}")
        typer.echo(json.dumps(q.counts(s)))
        for j in s.scalars(select(Job).where(Job.status == "failed").order_by(Job.id.desc()).limit(10)):
            typer.echo(f"failed #{j.id} {j.kind} attempts={j.attempts}: {j.last_error}")


@train_app.command("queue")
def train_queue(
    model: Annotated[str, typer.Argument(help="routing, risk or logs.")],
    episodes: Annotated[int, typer.Option(min=200, max=200_000, help="Risk: synthetic episodes.")] = 3000,
) -> None:
    """Queue training as a job (`model.train`): a worker (or the running server) trains, not this shell."""
    from bot.train_jobs import MODELS
    from knowledge import jobs as q
    from knowledge.db import Database

    if model not in MODELS:
        raise CliError(f"unknown model {model!r}: use one of {', '.join(MODELS)}")
    settings = _settings()
    payload: dict[str, object] = {"model": model, **({"episodes": episodes} if model == "risk" else {})}
    with Database(settings.database_url).session() as s:
        ref = q.enqueue(s, kind="model.train", payload=payload, max_attempts=2)
    if settings.job_backend == "celery":
        from bot.celery_app import celery_dispatcher, make_celery

        try:
            celery_dispatcher(make_celery(settings.redis_url))(ref.id, 0.0)
        except Exception:  # noqa: BLE001 - broker down: the job is in the database; a replica's sweeper sends it
            typer.echo("broker unreachable; the job will be sent by a replica's sweeper", err=True)
    typer.echo(json.dumps({"queued": ref.id, "kind": "model.train", "payload": payload}))


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Apply migrations (default: all)."""
    from knowledge.db import Database

    Database(_settings().database_url).upgrade(revision)
    typer.echo("database is at head")


@db_app.command("downgrade")
def db_downgrade(revision: str = "base") -> None:
    """Revert migrations (default: all)."""
    from knowledge.db import Database

    Database(_settings().database_url).downgrade(revision)
    typer.echo(f"database downgraded to {revision}")


@db_app.command("prune")
def db_prune(days: int | None = typer.Option(None, help="Days after processing (default: "
                                                        "WARROOM_INBOX_RETENTION_DAYS).", min=1, max=3650),
             job_days: int | None = typer.Option(None, help="Days after a job is done (default: "
                                                            "WARROOM_JOB_RETENTION_DAYS).", min=1, max=3650),
             risk_days: int | None = typer.Option(None, help="Days a risk reading of no incident is kept (default: "
                                                             "WARROOM_RISK_READING_RETENTION_DAYS).", min=1,
                                                  max=3650),
             change_days: int | None = typer.Option(None, help="Days a change (deploy, config push) is kept "
                                                               "(default: WARROOM_CHANGE_RETENTION_DAYS).", min=1,
                                                    max=3650)) -> None:
    """Empty the raw bodies of webhook deliveries processed over N days ago, delete finished jobs, old risk
    readings of no incident and old changes (the bot does it every 6 hours)."""
    from bot.maintenance import prune_all
    from knowledge.db import Database

    settings = _settings()
    keep = days if days is not None else settings.inbox_retention_days
    keep_jobs = job_days if job_days is not None else settings.job_retention_days
    keep_failed = max(keep_jobs, settings.failed_job_retention_days)  # a failed job is never kept less than a done one
    keep_risk = risk_days if risk_days is not None else settings.risk_reading_retention_days
    keep_changes = change_days if change_days is not None else settings.change_retention_days
    n, jobs, readings, changes = prune_all(Database(settings.database_url), keep, job_days=keep_jobs,
                                           failed_job_days=keep_failed, risk_days=keep_risk, change_days=keep_changes)
    typer.echo(f"emptied the bodies of {n} webhook deliveries processed over {keep} days ago; deleted {jobs} job(s) "
               f"done over {keep_jobs} days ago or failed over {keep_failed} days ago, {readings} risk "
               f"reading(s) of no incident older than {keep_risk} days, and {changes} change(s) older than "
               f"{keep_changes} days")


@db_app.command("current")
def db_current() -> None:
    """Say whether every migration is applied."""
    from knowledge.db import Database

    ok = Database(_settings().database_url).at_head()
    typer.echo("at head" if ok else "NOT at head: run `warroom db upgrade`")
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    """Console entry point."""
    from knowledge.db import DatabaseUnavailable

    try:
        app()
    except SettingsError as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        sys.exit(2)
    except DatabaseUnavailable as exc:
        print(f"warroom: database unavailable: {exc}", file=sys.stderr)
        sys.exit(1)
    except CliError as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        sys.exit(1)
import bot.cli_changes  # noqa: E402,F401
import bot.cli_logs  # noqa: E402,F401
import bot.cli_postmortem  # noqa: E402,F401
import bot.cli_risk  # noqa: E402,F401
import bot.cli_routing  # noqa: E402,F401
import bot.cli_runbooks  # noqa: E402,F401
import bot.cli_similar  # noqa: E402,F401
