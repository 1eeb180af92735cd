"""Alembic migrations for the knowledge base (run with ``warroom db upgrade`` or on start)."""
