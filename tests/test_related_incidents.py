"""Service dependencies relate open incidents: an incident on what a service depends on may be the cause of
the service's own, and the service's incident is its impact. Driven through the real app (signed slash commands
in, the cards on the Slack stand-in) over the sample world, whose services declare ``depends_on``; the YAML
import refuses dependencies it cannot place, with one line saying why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from bot.render import blocks_to_text
from knowledge.db import Database
from knowledge.models import Incident, Service
from knowledge.people_import import PeopleImportError, import_people
from knowledge.service_graph import dependency_paths
from tests.conftest import Live, open_incidents


def _card(live: Live, inc: Any) -> str:
    (msg,) = [m for m in live.standin.messages(inc.channel_id) if m.get("ts") == inc.card_ts]
    return blocks_to_text(msg.get("blocks") or [])


def test_cards_and_status_name_the_likely_cause_and_the_impact(live: Live) -> None:
    (db_inc,) = open_incidents(live, "postgres-main replication lag above 30s sev2")
    assert "Related open incidents" not in _card(live, db_inc)  # nothing else is open
    res = live.driver.command("/incident", "new payments-api 503s at checkout sev1", user="U0ERIN", channel="C0OPS")
    assert res.status_code == 200
    live.drain()
    said = [m["text"] for m in live.standin.messages("C0OPS")][-1]
    assert (f"Heads-up: payments-api depends on postgres-main, which has an open incident, #{db_inc.id} SEV2 [open] "
            "postgres-main replication lag above 30s (payments-api → postgres-main): it may be the cause.") in said
    with live.db.session() as s:
        pay = s.scalars(select(Incident).where(Incident.title == "payments-api 503s at checkout")).one()
        s.expunge(pay)
    (web,) = open_incidents(live, "checkout-web blank page sev3")
    pay_card = _card(live, pay)
    assert "Related open incidents" in pay_card
    assert (f"#{db_inc.id} SEV2 [open] postgres-main: postgres-main replication lag above 30s (may be the cause: "
            "payments-api → postgres-main)") in pay_card
    assert f"#{web.id} SEV3 [open] checkout-web: checkout-web blank page (may be impact of this one: " \
           "checkout-web → payments-api)" in pay_card
    web_card = _card(live, web)  # two hops up, nearest first
    assert web_card.index(f"#{pay.id} SEV1") < web_card.index(f"#{db_inc.id} SEV2")
    assert "checkout-web → payments-api → postgres-main" in web_card
    db_card = _card(live, db_inc)  # refreshed when the others opened: its impact
    assert f"#{pay.id} SEV1 [open] payments-api" in db_card and f"#{web.id} SEV3 [open] checkout-web" in db_card

    live.driver.command("/incident", "handover", user="U0ERIN", channel="C0OPS")  # the handover says it too
    live.drain()
    handover = blocks_to_text(live.standin.messages("C0OPS")[-1].get("blocks") or [])
    assert f"ago; may be caused by #{db_inc.id} (postgres-main)\n" in handover
    assert (f"ago; may be caused by #{pay.id} (payments-api); may be caused by #{db_inc.id} (postgres-main)"
            in handover)
    live.driver.command("/incident", f"status {pay.id}", user="U0ERIN", channel="C0OPS")
    live.drain()
    status = blocks_to_text(live.standin.messages("C0OPS")[-1].get("blocks") or [])
    assert "Related open incidents" in status and f"#{db_inc.id} SEV2" in status

    live.driver.command("/incident", f"resolve {db_inc.id} failed over to the replica", user="U0ERIN", channel="C0OPS")
    live.drain()
    assert f"#{db_inc.id}" not in _card(live, pay).split("Related open incidents")[-1]  # resolved: no longer named
    assert f"#{db_inc.id}" not in _card(live, web).split("Related open incidents")[-1]
    assert f"#{pay.id} SEV1" in _card(live, web)


def test_dependency_import_refuses_what_it_cannot_place(db: Database, tmp_path: Path, settings: Any,
                                                        monkeypatch: Any) -> None:
    def world(services: str) -> Path:
        f = tmp_path / "world.yaml"
        f.write_text("services:\n" + services)
        return f

    bad = {
        "  - {name: payments-api, team: payments, depends_on: [postgres-mian]}\n":
            "services[1]: depends_on names unknown service(s) postgres-mian (declare them under services)",
        "  - {name: kafka, team: data, depends_on: [Kafka]}\n": "services[1]: kafka cannot depend on itself",
    }
    for text, error in bad.items():
        try:
            with db.session() as s:
                import_people(session=s, path=world(text))
        except PeopleImportError as exc:
            assert error in str(exc), str(exc)
        else:
            raise AssertionError(f"imported {text!r}")
    with db.session() as s:  # nothing of a refused file was kept
        assert s.scalar(select(Service.depends_on).where(Service.name == "payments-api")) == [
            "postgres-main", "redis-cache", "auth-service", "dns"]

    # A cycle is legal to declare (systems do call each other); the walk ends instead of looping.
    monkeypatch.setenv("WARROOM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WARROOM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("WARROOM_MODE", "test")
    cyc = world("  - {name: kafka, team: data, depends_on: [ingest]}\n  - {name: new-svc, team: data, "
                "depends_on: [kafka, ingest]}\n")
    res = CliRunner().invoke(app, ["experts", "import", str(cyc)])
    assert res.exit_code == 0, res.output
    with db.session() as s:
        deps = {n.lower(): d for n, d in s.execute(select(Service.name, Service.depends_on)) if d}
    assert deps["kafka"] == ["ingest"] and deps["ingest"] == ["kafka", "postgres-main"]
    assert dependency_paths(deps, "kafka") == {"ingest": ("kafka", "ingest"),
                                               "postgres-main": ("kafka", "ingest", "postgres-main")}
    assert dependency_paths(deps, "kafka", reverse=True) == {
        "ingest": ("kafka", "ingest"), "new-svc": ("kafka", "new-svc"), "billing-worker": ("kafka", "billing-worker"),
        "warehouse-loader": ("kafka", "ingest", "warehouse-loader")}
