"""Retention: the raw webhook bodies are not kept forever.

Every delivery is committed to ``webhook_inbox`` as it arrived (``body``: the sender's JSON, up to
``WARROOM_WEBHOOK_MAX_BYTES``, with whatever its annotations carried, unmasked) before the 2xx goes back. Once
processed, what matters of it lives on in the alerts and incidents (normalised, secrets masked). After
``WARROOM_INBOX_RETENTION_DAYS`` the body of a processed delivery is emptied. The row stays: its delivery id
still answers a late redelivery as a duplicate, and the alerts it created still point at it. Deliveries that
failed to process keep their bodies, for whoever looks into them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from knowledge.models import WebhookInbox, utcnow

__all__ = ["prune_inbox"]


def prune_inbox(session: Session, days: int, *, now: dt.datetime | None = None, batch: int = 2000) -> int:
    """Empty the bodies of up to ``batch`` deliveries processed more than ``days`` days ago; return how many.
    One short statement: call again (a new transaction) until it returns fewer than ``batch``."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    ids = list(session.scalars(select(WebhookInbox.id).where(
        WebhookInbox.status == "processed", WebhookInbox.processed_at < cutoff, WebhookInbox.body != "")
        .order_by(WebhookInbox.id).limit(batch)))
    if ids:
        session.execute(update(WebhookInbox).where(WebhookInbox.id.in_(ids)).values(body=""))
    return len(ids)
