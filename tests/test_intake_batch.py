"""The inbox processor's batch path (one prefetch, one flush per batch) against a real database: a storm's
repeats are all counted exactly once, resolutions inside a batch take effect, and a row that the database
refuses is isolated as an error while the rest of its batch goes through."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text

from knowledge.models import Alert, Incident, WebhookInbox
from tests.conftest import Live
from tests.test_intake_webhooks import wait_processed


def delivery(fingerprint: str, status: str = "firing") -> str:
    return json.dumps({
        "version": "4", "groupKey": f"{{}}:{{alertname=\"A-{fingerprint}\"}}", "status": status, "receiver": "warroom",
        "alerts": [{"status": status, "labels": {"alertname": f"A-{fingerprint}", "service": f"svc-{fingerprint}",
                                                 "severity": "warning"},
                    "annotations": {"summary": f"{fingerprint} is unhappy"}, "startsAt": "2026-11-23T10:00:00Z",
                    "fingerprint": fingerprint}]})


def enqueue_raw(live: Live, bodies: list[str]) -> None:
    """Rows as the door stores them, committed together so that they tend to land in one batch."""
    with live.db.session() as s:
        s.add_all([WebhookInbox(source="alertmanager", body=b) for b in bodies])
    live.services.intake.notify()


def test_storm_repeats_counted_once_and_resolution_in_the_same_batch(live: Live) -> None:
    bodies = [delivery(fp) for _ in range(40) for fp in ("fp-a", "fp-b", "fp-c")]
    bodies.append(delivery("fp-c", "resolved"))
    enqueue_raw(live, bodies)
    wait_processed(live)
    with live.db.session() as s:
        rows = {a.fingerprint: a for a in s.scalars(select(Alert).where(Alert.fingerprint.like("fp-%")))}
        assert {fp: a.occurrences for fp, a in rows.items()} == {"fp-a": 40, "fp-b": 40, "fp-c": 41}
        incs = {i.alert_name: i for i in s.scalars(select(Incident).where(Incident.alert_name.like("A-fp-%")))}
        assert sorted(incs) == ["A-fp-a", "A-fp-b", "A-fp-c"]  # one incident per fingerprint
        assert incs["A-fp-c"].status == "mitigated" and rows["fp-c"].status == "resolved"
        assert incs["A-fp-a"].status == "open" and incs["A-fp-a"].alert_count == 1
        assert all(a.inbox_id is not None for a in rows.values())  # each alert row points at its first delivery
        done = s.scalar(select(func.count()).select_from(WebhookInbox).where(WebhookInbox.status == "processed"))
        assert done == len(bodies)


@pytest.mark.sqlite_only  # a SQLite trigger poisons the row
def test_a_row_the_database_refuses_is_isolated_and_the_batch_goes_through(live: Live) -> None:
    with live.db.session() as s:
        s.execute(text("CREATE TRIGGER poison_alert BEFORE INSERT ON alerts WHEN NEW.fingerprint = 'fp-poison' "
                       "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"))
    bodies = [delivery(f"fp-ok{i % 3}") for i in range(6)] + [delivery("fp-poison")] + \
        [delivery(f"fp-ok{i % 3}") for i in range(6)]
    enqueue_raw(live, bodies)
    wait_processed(live)
    with live.db.session() as s:
        inbox = list(s.scalars(select(WebhookInbox).order_by(WebhookInbox.id)))
        bad = [r for r in inbox if r.status == "error"]
        assert len(bad) == 1 and "fp-poison" in bad[0].body and "poisoned row" in bad[0].error
        assert sum(r.status == "processed" for r in inbox) == 12
        occ = dict(s.execute(select(Alert.fingerprint, Alert.occurrences)
                             .where(Alert.fingerprint.like("fp-ok%"))).all())
        assert occ == {"fp-ok0": 4, "fp-ok1": 4, "fp-ok2": 4}
        assert s.scalar(select(func.count()).select_from(Incident).where(Incident.alert_name == "A-fp-poison")) == 0
