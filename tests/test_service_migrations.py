"""Migrations run up and down on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from knowledge.db import Database
from knowledge.models import Base
from knowledge.seed import seed


def _roundtrip(db: Database) -> None:
    db.downgrade("base")
    db.upgrade()
    assert db.at_head()
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables, set(Base.metadata.tables) - tables
    with db.engine.connect() as conn:  # the migrations build what the models say: columns, types, indexes
        drift = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert drift == [], drift
    with db.session() as s:
        counts = seed(s)
    assert counts["incidents"] == 12
    with db.session() as s:
        assert seed(s)["incidents"] == 0  # idempotent
    db.downgrade("base")
    assert not db.at_head()
    left = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert left == set()


def test_sqlite_upgrade_downgrade(tmp_path: Path) -> None:
    _roundtrip(Database(f"sqlite:///{tmp_path / 'm.db'}"))


@pytest.mark.postgres
def test_postgres_upgrade_downgrade() -> None:
    url = os.environ.get("WARROOM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("WARROOM_TEST_POSTGRES_URL not set (scripts/test.sh starts PostgreSQL)")
    db = Database(url)
    db.reset_postgres_schema()
    _roundtrip(db)
