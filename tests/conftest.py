"""Shared fixtures: a real server on loopback, the Slack stand-in, a signed-request driver.

Fakes live only at the network boundary (the Slack Web API stand-in); everything else is real,
including the database (SQLite here; PostgreSQL where WARROOM_TEST_POSTGRES_URL is set).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.pool import NullPool

from bot.settings import Settings
from bot.standin.driver import SlackDriver
from bot.standin.harness import LiveServer
from bot.standin.server import SlackStandIn
from knowledge.db import Database
from knowledge.seed import seed

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BOT_TOKEN = "xoxb-test-token"
SHARED_DATA = Path(os.environ.get("WARROOM_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The shared evaluation data; tests that need it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=BOT_TOKEN) as s:
        yield s
        # Nothing the bot sent in the test would Slack refuse as malformed (Block Kit limits, unknown message, name)
        refused = [(c.method, c.response.get("errors") or c.response.get("response_metadata"))
                   for c in s.bad_calls()]
        assert not refused, f"Slack would refuse these: {refused}"


# WARROOM_TEST_DATABASE=postgres (with WARROOM_TEST_POSTGRES_URL, which scripts/test.sh sets): every test's own
# knowledge base is a fresh PostgreSQL database, a copy of one migrated and seeded once per run (CREATE DATABASE
# ... TEMPLATE), instead of a SQLite file: the whole suite on PostgreSQL (`scripts/test.sh --postgres`).
ALL_ON_POSTGRES = os.environ.get("WARROOM_TEST_DATABASE") == "postgres"
_PG_TEMPLATE: list[str] = []
_PG_COPIES: set[str] = set()


def _postgres_copy(tmp_path: Path) -> str:
    """The URL of a new database on the test PostgreSQL, a copy of the migrated and seeded template; dropped at
    the end of the run."""
    import hashlib

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = os.environ.get("WARROOM_TEST_POSTGRES_URL")
    if not url:
        raise RuntimeError("WARROOM_TEST_DATABASE=postgres needs WARROOM_TEST_POSTGRES_URL (scripts/test.sh sets it)")
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    if not _PG_TEMPLATE:
        name = f"warroom_tpl_{os.getpid()}"
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        template = Database(make_url(url).set(database=name).render_as_string(hide_password=False))
        template.upgrade()
        with template.session() as session:
            seed(session)
        template.engine.dispose()
        _PG_TEMPLATE.append(name)
        atexit.register(_drop_postgres_copies, admin, name)
    name = f"{_PG_TEMPLATE[0]}_{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:16]}"
    if name not in _PG_COPIES:  # one per test: settings made again in the same test (a restart) find its data
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_PG_TEMPLATE[0]}"'))
        _PG_COPIES.add(name)
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ALL_ON_POSTGRES:
        skip = pytest.mark.skip(reason="about SQLite itself; the suite runs on PostgreSQL (WARROOM_TEST_DATABASE)")
        for item in items:
            if "sqlite_only" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _drop_this_tests_postgres_copies() -> Iterator[None]:
    """Under WARROOM_TEST_DATABASE=postgres: the test's databases are dropped when it ends, with the connections
    its engines still hold (PostgreSQL's client limit is reached after a few dozen tests otherwise)."""
    before = set(_PG_COPIES)  # those of module- and session-scoped fixtures (set up first) stay
    yield
    if ALL_ON_POSTGRES and (mine := _PG_COPIES - before):
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        admin = create_engine(make_url(os.environ["WARROOM_TEST_POSTGRES_URL"]).set(database="postgres"),
                              isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as c:
            for name in sorted(mine):
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        _PG_COPIES.difference_update(mine)


def _drop_postgres_copies(admin: Any, template: str) -> None:
    from sqlalchemy import text

    with admin.connect() as c:
        for (name,) in c.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                                 {"p": f"{template}%"}).all():
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(tmp_path: Path, standin: SlackStandIn | None = None, **overrides: Any) -> Settings:
    """Test-mode settings on a fresh SQLite file under ``tmp_path`` (a fresh PostgreSQL database, migrated and
    seeded, under ``WARROOM_TEST_DATABASE=postgres``)."""
    if ALL_ON_POSTGRES and "database_url" not in overrides:
        overrides["database_url"] = _postgres_copy(tmp_path)
    base: dict[str, Any] = dict(
        mode="test", slack_bot_token=BOT_TOKEN, slack_signing_secret=secrets.token_hex(16),
        slack_api_url=standin.api_url if standin else "http://127.0.0.1:9/api/",
        database_url=f"sqlite:///{tmp_path / 'warroom.db'}", data_dir=tmp_path, embedder="hash",
        slack_incident_channel="C0INCIDENTS", workers=2, card_update_interval_s=0.5, triage_interval_s=1.0,
        slack_channel_interval_s=0.05,  # the stand-in has no rate limit; the 1 s default is tested on its own
        webhook_secrets={"alertmanager": "am-secret-0123456789", "grafana": "grafana-secret-0123456789",
                         "pagerduty": "pd-secret-0123456789", "generic": "generic-secret-0123456789"},
    )
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def settings(tmp_path: Path, standin: SlackStandIn) -> Settings:
    return make_settings(tmp_path, standin)


_TEMPLATE: list[Path] = []


def seeded_sqlite(url: str) -> Database:
    """The migrated, seeded database (the sample world) at the SQLite ``url``: a copy of one migrated and seeded once
    per test run, as migrating and seeding each test's own file took 0.3 s of CPU a test."""
    if not _TEMPLATE:
        d = Path(tempfile.mkdtemp(prefix="warroom-test-template-"))
        atexit.register(shutil.rmtree, d, True)
        template = Database(f"sqlite:///{d / 'template.db'}")
        template.upgrade()
        with template.session() as s:
            seed(s)
        template.engine.dispose()  # the last connection closed: the WAL is checkpointed into the file and removed
        assert not (d / "template.db-wal").exists()
        _TEMPLATE.append(d / "template.db")
    database = Database(url)
    if ALL_ON_POSTGRES and database.engine.dialect.name == "postgresql":
        return database  # a copy of the migrated and seeded template already (make_settings)
    target = database.engine.url.database
    assert database.engine.dialect.name == "sqlite" and target and not Path(target).exists(), url
    shutil.copyfile(_TEMPLATE[0], target)
    return database


@pytest.fixture
def db(settings: Settings) -> Database:
    """A migrated, seeded database (the sample world)."""
    return seeded_sqlite(settings.database_url)


class Live:
    """A running app with its Slack stand-in and a driver that signs requests."""

    def __init__(self, server: LiveServer, standin: SlackStandIn, driver: SlackDriver) -> None:
        self.server, self.standin, self.driver = server, standin, driver
        self.url = server.url
        self.services = server.services
        self.db = server.services.db

    def drain(self, timeout: float = 30.0, due_within_s: float | None = None) -> None:
        assert self.server.drain(timeout, due_within_s), "the worker did not finish its jobs in time"


@pytest.fixture
def live(settings: Settings, db: Database, standin: SlackStandIn) -> Iterator[Live]:
    """The real app on loopback over a seeded SQLite knowledge base."""
    with LiveServer(settings) as srv:
        yield Live(srv, standin, SlackDriver(srv.url, settings.slack_signing_secret.get_secret_value(),
                                             standin_url=standin.url))


@contextlib.contextmanager
def live_with(tmp_path: Path, standin: SlackStandIn, **overrides: Any) -> Iterator[Live]:
    """The real app over a fresh, seeded SQLite knowledge base under ``tmp_path``, with settings ``overrides``."""
    settings = make_settings(tmp_path, standin, **overrides)
    seeded_sqlite(settings.database_url)
    with LiveServer(settings) as srv:
        yield Live(srv, standin, SlackDriver(srv.url, settings.slack_signing_secret.get_secret_value(),
                                             standin_url=standin.url))


def seeded_database(kind: str, tmp_path: Path) -> Database:
    """A migrated knowledge base with the sample world, on SQLite (a file under ``tmp_path``) or on the test
    PostgreSQL, emptied first (``kind`` "postgres": the test is skipped where WARROOM_TEST_POSTGRES_URL is unset)."""
    if kind != "postgres":
        return seeded_sqlite(f"sqlite:///{tmp_path / 'seeded.db'}")
    url = os.environ.get("WARROOM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("WARROOM_TEST_POSTGRES_URL not set (scripts/test.sh starts PostgreSQL)")
    db = Database(url)
    db.reset_postgres_schema()
    db.upgrade()
    with db.session() as s:
        seed(s)
    return db


@contextlib.contextmanager
def live_on(kind: str, tmp_path: Path, standin: SlackStandIn, **overrides: Any) -> Iterator[Live]:
    """The real app over a seeded knowledge base on SQLite or PostgreSQL (``kind``, see :func:`seeded_database`):
    what SQLite lets through and PostgreSQL refuses shows here."""
    url = seeded_database(kind, tmp_path).url
    settings = make_settings(tmp_path, standin, database_url=url, **overrides)
    with LiveServer(settings) as srv:
        yield Live(srv, standin, SlackDriver(srv.url, settings.slack_signing_secret.get_secret_value(),
                                             standin_url=standin.url))


def open_incidents(live: Live, *commands: str, user: str = "U0ERIN", channel: str = "C0OPS") -> list[Any]:
    """`/incident new <command>` for each (sent together, as people would), then their rows in the same order,
    found by title (the severity word dropped), not by id: concurrent commands get ids in any order."""
    import re

    from sqlalchemy import select

    from knowledge.models import Incident

    for text in commands:
        assert live.driver.command("/incident", f"new {text}", user=user, channel=channel).status_code == 200
    live.drain()
    titles = [re.sub(r"\s+sev[1-4]$", "", text, flags=re.I) for text in commands]
    with live.db.session() as s:
        rows = {i.title: i for i in s.scalars(select(Incident).where(Incident.title.in_(titles)))}
    assert all(t in rows and rows[t].card_ts for t in titles), (titles, list(rows))
    return [rows[t] for t in titles]


@dataclasses.dataclass(frozen=True)
class ConsoleRun:
    returncode: int
    stdout: str
    stderr: str


def console(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            database_url: str, data_dir: Path) -> ConsoleRun:
    """``warroom ARGS`` through the real console entry point, in process (its error handling included), in test mode
    on ``database_url``."""
    import sys

    from bot.cli import main

    monkeypatch.setenv("WARROOM_MODE", "test")
    monkeypatch.setenv("WARROOM_DATABASE_URL", database_url)
    monkeypatch.setenv("WARROOM_DATA_DIR", str(data_dir))
    monkeypatch.setattr(sys, "argv", ["warroom", *args])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return ConsoleRun(code, cap.out, cap.err)
