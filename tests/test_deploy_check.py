"""Is it a good time to deploy ("is it safe to deploy payments-api?", "ok to ship ingest?"): it went to the knowledge
base, which answered with a postmortem passage. Through the real app: signed mentions in, changes posted to the REST
API, the Slack stand-in checked."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import delete, select

from knowledge.models import OnCallShift, Team, utcnow
from knowledge.risk_store import add_reading
from tests.conftest import Live, open_incidents
from tests.test_changes import _post, settings  # noqa: F401  (settings: the REST API's token)
from tests.test_incident_words import _say


def _section(said: str, service: str) -> str:
    """The lines of one service's section of the answer."""
    return said.split(f"*{service}*\n", 1)[1].split("\n*", 1)[0]


def test_an_open_incident_holds_the_deploy_and_one_near_it_asks_for_care(live: Live) -> None:
    (inc,) = open_incidents(live, "payments-api 5xx spike sev2")
    said = _say(live, "is it safe to deploy payments-api?")
    assert "knowledge base" not in said and "== Deploy check ==" in said, said
    assert said.split("\n")[1].startswith("*Hold* payments-api."), said
    assert f"open incident on payments-api: #{inc.id} SEV2 [open] payments-api 5xx spike: a deploy now muddles" in said
    assert "deploy freezes, reported changes" in said and "not your CI." in said
    said = _say(live, "can I deploy checkout-web now?")  # it depends on payments-api
    assert "checkout-web: go with care." in said, said
    assert (f"open incident #{inc.id} SEV2 [open] on payments-api, which it depends on (checkout-web → payments-api): "
            "trouble there would be blamed on the deploy") in said
    said = _say(live, "any reason not to deploy postgres-main?")  # payments-api depends on it
    assert f"#{inc.id} SEV2 [open] on payments-api, which depends on it (payments-api → postgres-main)" in said, said
    said = _say(live, "ok to ship ingest?")  # nothing near it
    assert "ingest: nothing I know of against it." in said and "someone is on call" in _section(said, "ingest"), said
    said = _say(live, "can we deploy payments?")  # a team: its services, what to hold first
    assert said.index("*Hold* payments-api") < said.index("checkout-web: go with care") < said.index(
        "billing-worker: nothing I know of against it"), said
    said = _say(live, "can we deploy?")  # which service: asked, not guessed
    assert "Deploy which service?" in said and "Deploy check" not in said, said
    said = _say(live, "deploy payments-api")  # an order is not a question: nothing runs from a message
    assert "Nothing runs from a message" in said and "Deploy check" not in said, said


def test_a_recent_change_high_risk_and_nobody_on_call_ask_for_care(live: Live) -> None:
    now = utcnow().replace(microsecond=0)
    r = _post(live, {"service": "ingest", "summary": "v2.0: new consumer group", "version": "v2.0", "author": "erin",
                     "at": (now - dt.timedelta(minutes=10)).isoformat() + "Z", "id": "dc-1"})
    assert r.status_code == 201, r.text
    r = _post(live, {"service": "kafka", "summary": "did not finish (failure): v3.1", "version": "v3.1",
                     "at": (now - dt.timedelta(minutes=20)).isoformat() + "Z", "id": "dc-2"})
    assert r.status_code == 201, r.text
    assert _post(live, {"service": "dns", "summary": "v9", "at": (now - dt.timedelta(hours=3)).isoformat() + "Z",
                        "id": "dc-3"}).status_code == 201  # three hours ago: settled
    said = _section(_say(live, "is it safe to deploy ingest?"), "ingest")
    # (minutes rounded down: a slow run may see one more)
    assert re.search(r"deploy on ingest 1[01] min ago \(v2\.0\) by erin: wait until it has settled", said), said
    assert re.search(r"deploy on kafka \(a dependency: ingest → kafka\) 2[01] min ago \(v3\.1\): it did not finish",
                     said), said
    assert "nothing I know of against it" in _say(live, "ok to ship dns?")
    with live.db.session() as s:  # the latest metrics said HIGH 5 minutes ago; an older CRITICAL does not count
        old = add_reading(s, probability=0.9, band="CRITICAL", model_version="t", source="api", inputs={},
                          factors=[], service_name="billing-worker")
        old.created_at = now - dt.timedelta(hours=2)
        s.flush()
        new = add_reading(s, probability=0.72, band="HIGH", model_version="t", source="api", inputs={}, factors=[],
                          service_name="billing-worker")
        new.created_at = now - dt.timedelta(minutes=5)
    said = _say(live, "is now a good time to release billing-worker?")
    assert re.search(r"failure risk HIGH \(72%\) [56] min ago: `/risk billing-worker` says why", said), said
    assert "CRITICAL" not in said
    with live.db.session() as s:  # nobody on call for identity
        team = s.scalar(select(Team).where(Team.name == "identity"))
        assert team is not None
        s.execute(delete(OnCallShift).where(OnCallShift.team_id == team.id))
    said = _say(live, "go/no-go for auth-service")
    assert "auth-service: go with care" in said, said
    assert "nobody is on call for identity now: nobody to page if it goes wrong" in said


def test_under_a_card_the_fix_and_a_rollback_are_about_its_service(live: Live) -> None:
    """"Can I deploy the fix?" under a card said "Deploy which service?"; a fix is not held by the incident it fixes,
    and "should we roll back?" says what a rollback would undo."""
    (inc,) = open_incidents(live, "payments-api 5xx spike sev2")
    here = {"channel": "C0INCIDENTS", "thread": inc.card_ts}
    said = _say(live, "can we deploy?", **here)  # its service, and the incident holds a plain deploy
    assert "*Hold* payments-api" in said, said
    said = _say(live, "can I deploy the fix?", **here)
    assert "payments-api: go with care" in said and "Hold" not in said, said
    assert f"a fix for #{inc.id} SEV2 [open] payments-api 5xx spike: say it on its timeline" in said
    said = _say(live, "should we roll back?", **here)
    assert f"a rollback for #{inc.id} SEV2" in said and "`note: rolling back to v...`" in said, said
    assert "no deploy of payments-api reported in the last 24 hours" in said
    now = utcnow().replace(microsecond=0)
    assert _post(live, {"service": "payments-api", "summary": "v1.4.2: pool 50", "version": "v1.4.2", "author": "bob",
                        "at": (now - dt.timedelta(minutes=30)).isoformat() + "Z", "id": "rb-1"}).status_code == 201
    said = _say(live, "should we roll back?", **here)
    assert re.search(r"a rollback undoes the deploy of payments-api 3[01] min ago \(v1\.4\.2\) by bob", said), said
    assert "wait until it has settled" not in said
    said = _say(live, "is it still happening?", **here)  # the incident's trend, not the knowledge base
    assert f"Incident #{inc.id}" in said and "knowledge base" not in said and "alert(s) firing" in said, said
