"""Data access for failure-risk readings (keyword-only functions)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from knowledge.models import RiskReading

__all__ = ["add_reading", "add_readings", "readings_for_incident", "recent_readings", "latest_per_service"]


def add_reading(
    session: Session,
    *,
    probability: float,
    band: str,
    model_version: str,
    source: str,
    inputs: dict[str, Any],
    factors: list[dict[str, Any]],
    service_name: str | None = None,
    incident_id: int | None = None,
) -> RiskReading:
    """Store one assessment; the caller's session commits."""
    row = RiskReading(
        probability=float(probability),
        band=band,
        model_version=model_version,
        source=source,
        inputs=inputs,
        factors=factors,
        service_name=service_name,
        incident_id=incident_id,
    )
    session.add(row)
    session.flush()
    return row


def add_readings(session: Session, readings: list[dict[str, Any]]) -> int:
    """Store many assessments in one statement (the REST API's group commit); the caller's session commits.

    Each dict has ``add_reading``'s keyword arguments; returns how many rows were written."""
    if not readings:
        return 0
    rows = [
        {
            "probability": float(r["probability"]),
            "band": r["band"],
            "model_version": r["model_version"],
            "source": r["source"],
            "inputs": r["inputs"],
            "factors": r["factors"],
            "service_name": r.get("service_name"),
            "incident_id": r.get("incident_id"),
        }
        for r in readings
    ]
    session.execute(insert(RiskReading), rows)
    return len(rows)


def readings_for_incident(session: Session, *, incident_id: int) -> list[RiskReading]:
    """The risk readings of an incident, oldest first (for postmortems and the timeline)."""
    return list(
        session.scalars(
            select(RiskReading)
            .where(RiskReading.incident_id == incident_id)
            .order_by(RiskReading.created_at, RiskReading.id)
        )
    )


def recent_readings(session: Session, *, service_name: str, limit: int = 60) -> list[RiskReading]:
    """The newest ``limit`` readings of a service, oldest first (the recent window of the chart)."""
    rows = list(
        session.scalars(
            select(RiskReading)
            .where(RiskReading.service_name == service_name)
            .order_by(RiskReading.created_at.desc(), RiskReading.id.desc())
            .limit(limit)
        )
    )
    return rows[::-1]


def latest_per_service(session: Session, *, since: dt.datetime, limit: int = 200) -> list[RiskReading]:
    """Each service's newest reading made after ``since`` (naive UTC), most likely to fail first."""
    newest = (select(func.max(RiskReading.id)).where(RiskReading.service_name.is_not(None),
                                                     RiskReading.created_at >= since)
              .group_by(RiskReading.service_name))
    return list(session.scalars(select(RiskReading).where(RiskReading.id.in_(newest))
                                .order_by(RiskReading.probability.desc(), RiskReading.service_name).limit(limit)))
