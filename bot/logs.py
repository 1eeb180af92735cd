"""Structured JSON logs, with the request id and incident id of the work in hand bound to every line."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys

__all__ = ["REQUEST_ID", "INCIDENT_ID", "JsonFormatter", "configure"]

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
INCIDENT_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar("incident_id", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, incident_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        for key, var in (("request_id", REQUEST_ID), ("incident_id", INCIDENT_ID)):
            value = getattr(record, key, None) or var.get()
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Install the formatter on the root logger (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
