"""Engine and session factory, and Alembic migrations run from code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Database", "DatabaseUnavailable", "MIGRATIONS_DIR"]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseUnavailable(Exception):
    """The database cannot be reached or used."""


def _sqlite_pragmas(dbapi_conn, _record, autocheckpoint: int | None = None) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the single writer; NORMAL sync is durable across process crashes.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    if autocheckpoint is not None:
        cur.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
    cur.close()
    # SQLite's lower() folds ASCII only: lower('Zahlungen-Ä') kept the 'Ä', so a team or service whose name has
    # a capital beyond ASCII was never found by its name lower-cased in Python (func.lower(Team.name) == ...),
    # and importing a people file that named it twice failed on the unique name. Python's, as PostgreSQL's does
    # under a UTF-8 locale.
    dbapi_conn.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _has_nul(row: object) -> bool:
    values = row.values() if isinstance(row, dict) else row
    return any(type(v) is str and "\x00" in v for v in values)  # type: ignore[union-attr]


def _without_nul(row: object) -> object:
    def clean(v: object) -> object:
        return v.replace("\x00", "\ufffd") if type(v) is str else v

    if isinstance(row, dict):
        return {k: clean(v) for k, v in row.items()}
    return type(row)(clean(v) for v in row)  # type: ignore[call-arg, union-attr]


def _no_nul_bytes(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
    """PostgreSQL refuses a text value holding a NUL byte (``DataError``), SQLite stores it: an alert whose summary
    held "\\u0000" was accepted (202) and then never became an incident on PostgreSQL, and "/incident new" with one
    answered "something went wrong". Every string bound to a statement has its NULs replaced by U+FFFD, the
    character that already stands for unreadable bytes in logs, so both databases store the same text."""
    if not parameters:
        return statement, parameters
    # executemany: a list of rows; but a batched INSERT (insertmanyvalues) comes as one flat row with the flag set
    many = executemany and not isinstance(parameters, dict) and isinstance(parameters[0], dict | tuple | list)
    rows = parameters if many else (parameters,)
    if not any(_has_nul(row) for row in rows):
        return statement, parameters
    if many:
        return statement, type(parameters)(_without_nul(row) for row in parameters)
    return statement, _without_nul(parameters)


class Database:
    """One engine and its session factory for a database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # The database file of a file-backed SQLite URL (None for PostgreSQL and in-memory databases): files
        # that belong to it (the webhook spool, the processor lock) are named after it.
        self.sqlite_file: Path | None = None
        kwargs: dict[str, object] = {"future": True}
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                if not path.startswith("file:"):
                    self.sqlite_file = Path(path)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=10,
                          connect_args={"connect_timeout": 5})
        self.engine: Engine = create_engine(url, **kwargs)
        event.listen(self.engine, "before_cursor_execute", _no_nul_bytes, retval=True)
        # SQLite only: WAL pages after which a committing connection copies the WAL back into the database
        # (None: SQLite's 1,000). A process whose commits must stay fast sets it high and leaves the
        # checkpoints to another process (see bot.app: the web door when a background child exists).
        self.wal_autocheckpoint: int | None = None
        if self.is_sqlite:
            event.listen(self.engine, "connect",
                         lambda conn, rec: _sqlite_pragmas(conn, rec, self.wal_autocheckpoint))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def ping(self) -> None:
        """Raise :class:`DatabaseUnavailable` unless a trivial query works."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(_one_line(exc)) from None

    # --- migrations -------------------------------------------------------------------------
    def _alembic_config(self):  # type: ignore[no-untyped-def]
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        cfg.attributes["engine"] = self.engine
        return cfg

    def upgrade(self, revision: str = "heads") -> None:
        """Apply migrations up to ``revision`` (all heads by default)."""
        from alembic import command

        try:
            command.upgrade(self._alembic_config(), revision)
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(_one_line(exc)) from None

    def reset_postgres_schema(self) -> None:
        """Drop everything in PostgreSQL's ``public`` schema (for tests and benches on a scratch server)."""
        if self.engine.dialect.name != "postgresql":
            raise ValueError("reset_postgres_schema is for PostgreSQL only")
        with self.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))

    def downgrade(self, revision: str = "base") -> None:
        """Revert migrations down to ``revision``."""
        from alembic import command

        command.downgrade(self._alembic_config(), revision)

    def at_head(self) -> bool:
        """Whether every migration has been applied."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._alembic_config())
        try:
            with self.engine.connect() as conn:
                current = set(MigrationContext.configure(conn).get_current_heads())
        except SQLAlchemyError:
            return False
        return current == set(script.get_heads())


def _one_line(exc: BaseException) -> str:
    msg = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return msg[0] if msg else type(exc).__name__
