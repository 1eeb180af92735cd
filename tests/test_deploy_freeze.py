"""Deploy freezes: "freeze deploys on payments-api until monday 09:00: black friday" got the help ("I am not sure what
you need"), "is there a deploy freeze?" the rollback runbook, and the deploy check said it knew no freeze. Now they are
set, listed and lifted in Slack, the deploy check holds a frozen service, CI asks ``GET /api/v1/freezes``, and a
deploy reported during a freeze is answered with it and named in the listing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.settings import Settings
from knowledge.models import DeployFreeze
from tests.conftest import Live, make_settings
from tests.test_changes import TOKEN, _post, _say


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    return make_settings(tmp_path, standin, kb_token=TOKEN, warm_models=False)


def _freezes(live: Live, service: str | None = None, token: str | None = TOKEN) -> httpx.Response:
    return httpx.get(f"{live.url}/api/v1/freezes", params={"service": service} if service else {},
                     headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=30)


def test_a_freeze_is_set_in_slack_holds_the_deploy_check_and_ci_and_is_lifted(live: Live) -> None:
    assert "No deploy freeze holds now." in _say(live, "is there a deploy freeze?")
    assert _freezes(live, "payments-api").json() == {"frozen": False, "freezes": [], "upcoming": []}
    said = _say(live, "freeze deploys on payments-api until monday 09:00 UTC: black friday traffic")
    assert "Deploys are frozen on payments-api until Mon " in said and "09:00 UTC (monday 09:00 UTC)" in said, said
    assert "black friday traffic" in said and "`lift the freeze on payments-api` ends it" in said
    with live.db.session() as s:
        (row,) = s.scalars(select(DeployFreeze)).all()
        assert (row.service, row.reason, row.created_by, row.ends_at.weekday(), row.ends_at.hour) == (
            "payments-api", "black friday traffic", "U0BOB", 0, 9)
    # the deploy check holds it, a fix goes with care and the OK of who froze it; a service not frozen is not held
    said = _say(live, "is it safe to deploy payments-api?")
    assert "*Hold* payments-api" in said and "deploy freeze: *payments-api*: frozen since" in said, said
    said = _say(live, "can I deploy the hotfix to payments-api?")
    assert "payments-api: go with care" in said and "a fix may go with the OK of <@U0BOB>" in said, said
    assert "Hold" not in _say(live, "is it safe to deploy ingest?")
    # CI asks before deploying; a deploy reported anyway is answered with the freeze and named in the listing
    got = _freezes(live, "Payments-API").json()
    assert got["frozen"] is True and [f["service"] for f in got["freezes"]] == ["payments-api"], got
    assert got["freezes"][0]["reason"] == "black friday traffic" and got["freezes"][0]["ends_at"].endswith("Z")
    assert _freezes(live, "ingest").json()["frozen"] is False
    body = {"service": "payments-api", "summary": "v1.5.0", "version": "v1.5.0", "author": "ci-bot", "id": "run-9"}
    r = _post(live, body)
    assert r.status_code == 201 and [f["service"] for f in r.json()["frozen"]] == ["payments-api"], r.text
    assert _post(live, body).status_code == 200  # a retried step: the same change, told once
    assert _post(live, {"service": "payments-api", "summary": "pool 50", "kind": "config"}).json()["frozen"] == []
    assert _post(live, {"service": "ingest", "summary": "v9"}).json()["frozen"] == []
    live.drain(due_within_s=60)
    told = [m.get("text", "") for m in live.standin.messages("C0PAYMENTS") if "during a freeze" in m.get("text", "")
            or "while deploys to" in m.get("text", "")]
    assert len(told) == 1 and "deploy of payments-api v1.5.0 by ci-bot was reported" in told[0], told
    assert "while deploys to payments-api are frozen" in told[0] and "by <@U0BOB>: black friday traffic" in told[0]
    said = _say(live, "are deploys frozen?")
    assert "Deploys are frozen on payments-api." in said and "_deployed during it:_ payments-api v1.5.0 (deploy by " \
        "ci-bot, 0 min ago)" in said, said
    # everything frozen on top; lifting one service leaves the freeze of all, said so
    said = _say(live, "code freeze for the weekend")
    assert "Deploys are frozen on every service until Mon " in said, said
    assert _freezes(live, "ingest").json()["frozen"] is True
    said = _say(live, "unfreeze payments-api")
    assert "deploys are open again on payments-api. Still frozen: every service." in said, said
    assert "1 deploy(s) or rollback(s) were reported during it" in said
    said = _say(live, "lift the freeze on ingest")
    assert "Nothing is frozen on ingest alone, but every service is" in said, said
    assert "deploys are open again on every service." in _say(live, "lift the freeze")
    assert _freezes(live).json() == {"frozen": False, "freezes": [], "upcoming": []}
    with live.db.session() as s:
        assert {(f.service, f.lifted_by) for f in s.scalars(select(DeployFreeze))} == {("payments-api", "U0BOB"),
                                                                                     (None, "U0BOB")}


def test_a_team_freeze_covers_its_services_for_a_while(live: Live) -> None:
    said = _say(live, "freeze deploys for the payments team for 4h because of the schema migration")
    assert "Deploys are frozen on the payments team's services until" in said and "(for 4h): the schema" in said, said
    got = _freezes(live, "checkout-web").json()
    assert got["frozen"] and got["freezes"][0]["reason"] == "the schema migration"
    assert not _freezes(live, "ingest").json()["frozen"]
    said = _say(live, "freeze deploys on payments-api for 2h")  # already frozen: the new end, not a second freeze
    with live.db.session() as s:
        assert len(s.scalars(select(DeployFreeze).where(DeployFreeze.service == "payments-api")).all()) == 1
    assert "lifted" not in _say(live, "is there a deploy freeze?")


@pytest.mark.parametrize(("words", "error"), [
    ("freeze deploys on paymnts for 2h", "I know no service or team `paymnts`"),
    ("freeze deploys for 0h", "`for 0h` is no time at all"),
    ("freeze deploys for 99999h", "I cannot read `for 99999h` as a span"),
    ("freeze deploys for 1.5 hours", "I cannot read `for 1.5 hours` as a span"),
    ("freeze deploys until yesterday", "`yesterday` is already past"),
    ("freeze deploys until 2027-09-01", "A freeze of more than 92 days, or starting later than that, is a policy"),
    ("freeze deploys until the cows come home", "I cannot read when `the cows come home` is"),
    ("lift the freeze", "No deploy freeze holds now: nothing to lift."),
    ("freeze deploys on dec 24", "When does it start and end? `on dec 24` alone says neither"),
])
def test_bad_freezes_are_refused_plainly_and_nothing_is_frozen(live: Live, words: str, error: str) -> None:
    assert error in _say(live, words)
    assert not _freezes(live).json()["frozen"]


def test_guests_cannot_freeze_and_the_api_needs_its_token(live: Live) -> None:
    live.standin.users.update({"U0GUEST": {"is_ultra_restricted": True}})
    live.driver.mention("freeze deploys for 2h", user="U0GUEST", channel="C0OPS")
    live.drain(due_within_s=60)
    said = json.dumps(live.standin.messages("C0OPS")[-1])
    assert "A guest account cannot set or lift deploy freezes here" in said, said
    assert not _freezes(live).json()["frozen"]
    assert _freezes(live, token=None).status_code == 401
    assert _freezes(live, token="wrong-token-0123456789").status_code in (401, 403)
    assert _freezes(live, "x" * 201).status_code == 422


def test_a_freeze_set_for_later_holds_only_from_its_start_and_is_cancelled_apart(live: Live) -> None:
    """"Freeze deploys from friday 18:00 until monday 09:00" (the weekend freeze) started at once and never ended on
    the Monday said: a start was not read. Now it is kept for later: listed as coming, not held, warned of by the
    deploy check in the two hours before, and cancelled by "cancel the upcoming freeze" (lifting what holds now
    leaves it)."""
    said = _say(live, "freeze deploys from friday 18:00 UTC until monday 09:00 UTC: weekend freeze")
    assert "Deploys will be frozen on every service from " in said and "(friday 18:00 UTC)" in said, said
    with live.db.session() as s:
        (weekend,) = s.scalars(select(DeployFreeze)).all()
        assert (weekend.starts_at.weekday(), weekend.starts_at.hour, weekend.ends_at.weekday(), weekend.ends_at.hour,
                weekend.ends_at - weekend.starts_at) == (4, 18, 0, 9, dt.timedelta(days=2, hours=15))
    said = _say(live, "code freeze starting in 1h for 2h")
    assert "Deploys will be frozen on every service from " in said and "(for 2h)" in said, said
    got = _freezes(live, "ingest").json()
    assert got["frozen"] is False and len(got["upcoming"]) == 2, got
    said = _say(live, "is it safe to deploy ingest?")
    assert "Hold" not in said and "deploy freeze soon: *every service*: to be frozen from" in said, said
    said = _say(live, "is there a deploy freeze?")
    assert "No deploy freeze holds now; 2 set to start later." in said and "weekend freeze" in said, said
    _say(live, "freeze deploys on ingest for 1h")
    said = _say(live, "lift the freeze")
    assert "deploys are open again on ingest." in said and "Still set to start later: every service" in said, said
    assert len(_freezes(live).json()["upcoming"]) == 2
    said = _say(live, "cancel the upcoming freeze")
    assert "Freeze of every service cancelled by <@U0BOB> before it started." in said, said
    assert _freezes(live).json() == {"frozen": False, "freezes": [], "upcoming": []}


def _api(live: Live, method: str, path: str, body: Any = None, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.request(method, f"{live.url}/api/v1{path}", headers=headers, timeout=30,
                         content=json.dumps(body) if body is not None else None)


def test_a_release_tool_sets_and_lifts_freezes_through_the_api(live: Live) -> None:
    """A release pipeline freezes a team's services for a window and lifts one early; bad bodies are 422s naming the
    field, nothing is stored, and a missing token is a 401."""
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).replace(microsecond=0)
    body = {"service": "payments", "reason": "release 4.2 rollout", "starts_at": start.isoformat(),
            "ends_at": (start + dt.timedelta(hours=2)).isoformat(), "by": "release-bot"}
    r = _api(live, "POST", "/freezes", body)
    assert r.status_code == 201, r.text
    made = r.json()["freezes"]
    assert sorted(f["service"] for f in made) == ["billing-worker", "checkout-web", "payments-api"]
    assert {f["starts_at"] for f in made} == {start.replace(tzinfo=None).isoformat() + "Z"}
    assert _api(live, "POST", "/freezes", body).json()["freezes"][0]["id"] in {f["id"] for f in made}  # same: kept
    got = _freezes(live, "payments-api").json()
    assert got["frozen"] is False and [f["reason"] for f in got["upcoming"]] == ["release 4.2 rollout"]
    assert "to be frozen from" in _say(live, "is there a deploy freeze?")
    now_body = {"service": "ingest", "reason": "db migration"}
    frozen = _api(live, "POST", "/freezes", now_body).json()["freezes"][0]
    assert _freezes(live, "ingest").json()["frozen"] is True
    lifted = _api(live, "DELETE", f"/freezes/{frozen['id']}?by=release-bot")
    assert lifted.status_code == 200 and lifted.json()["freeze"]["lifted_by"] == "release-bot", lifted.text
    assert _freezes(live, "ingest").json()["frozen"] is False
    assert _api(live, "DELETE", f"/freezes/{frozen['id']}").json()["freeze"]["lifted_by"] == "release-bot"  # again
    assert _api(live, "DELETE", "/freezes/999999").status_code == 404
    assert _api(live, "DELETE", "/freezes/0").status_code == 422
    with live.db.session() as s:
        before = len(s.scalars(select(DeployFreeze)).all())
    for bad, field in (({"service": "paymnts", "reason": "x"}, "service"),
                       ({"reason": "x", "ends_at": "2020-01-01T00:00:00Z"}, None),
                       ({"reason": "x", "ends_at": (start + dt.timedelta(days=200)).isoformat()}, None),
                       ({"reason": ""}, "reason"), ({"reason": "x", "colour": "red"}, "colour"),
                       ({"reason": "x", "starts_at": "friday"}, "starts_at")):
        r = _api(live, "POST", "/freezes", bad)
        assert r.status_code == 422, (bad, r.text)
        if field:
            assert any(field in e["loc"] for e in r.json()["detail"]), (bad, r.text)
    assert _api(live, "POST", "/freezes", {"reason": "x"}, token=None).status_code == 401
    with live.db.session() as s:
        assert len(s.scalars(select(DeployFreeze)).all()) == before


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_freezes_on_both_databases(kind: str, tmp_path: Path, standin: Any) -> None:
    """The same freeze, lifted and listed, on SQLite and PostgreSQL (the table comes from migration 0010)."""
    from tests.conftest import live_on

    with live_on(kind, tmp_path, standin, kb_token=TOKEN, warm_models=False) as live:
        assert "Deploys are frozen on payments-api" in _say(live, "freeze deploys on Payments-API for 2h: release")
        assert _freezes(live, "payments-api").json()["frozen"] is True
        r = _post(live, {"service": "payments-api", "summary": "v2", "version": "v2"})
        assert [f["service"] for f in r.json()["frozen"]] == ["payments-api"], r.text
        assert "_deployed during it:_ payments-api v2" in _say(live, "what's frozen?")
        assert "deploys are open again on payments-api" in _say(live, "lift the freeze on payments-api")
        assert _freezes(live).json()["frozen"] is False


def test_a_freezes_start_and_end_are_told_to_the_team_and_a_cancelled_one_is_not(live: Live) -> None:
    """Nobody heard when a weekend freeze began or ended: a notice is queued for each, and checked again when due."""
    from knowledge.models import Job

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    soon = {"service": "payments-api", "reason": "release 4.2", "by": "release-bot",
            "starts_at": (now + dt.timedelta(seconds=2)).isoformat(),
            "ends_at": (now + dt.timedelta(seconds=4)).isoformat()}
    assert _api(live, "POST", "/freezes", soon).status_code == 201
    dropped = {**soon, "service": "ingest", "reason": "never mind"}
    gone = _api(live, "POST", "/freezes", dropped).json()["freezes"][0]["id"]
    assert _api(live, "DELETE", f"/freezes/{gone}").status_code == 200  # cancelled before it starts: not told
    live.drain(timeout=60, due_within_s=60)
    told = [m.get("text", "") for m in live.standin.messages("C0PAYMENTS")]
    assert any(":snowflake: Deploy freeze on payments-api starts now, until" in t and "set by release-bot: release "
               "4.2" in t for t in told), told
    assert any(":sunny: The deploy freeze on payments-api has ended: deploys are open again." in t for t in told)
    assert not any("never mind" in m.get("text", "") for ch in ("C0PLATFORM", "C0DATA", "C0INCIDENTS")
                   for m in live.standin.messages(ch))
    _say(live, "freeze deploys for 2h: datacenter move")  # every service: told in the incident channel, at its end
    with live.db.session() as s:
        (job,) = s.scalars(select(Job).where(Job.kind == "freeze.notice", Job.status == "queued")).all()
        assert job.payload["channel"] == "C0INCIDENTS" and job.payload["edge"] == "end"
        assert dt.timedelta(hours=1, minutes=59) < job.run_after - dt.datetime.utcnow() <= dt.timedelta(hours=2)


def test_cancelling_the_freeze_set_for_a_day_leaves_the_others(live: Live) -> None:
    day = dt.datetime.now(dt.UTC) + dt.timedelta(days=20)
    said = _say(live, f"freeze deploys from {day:%b %d} 18:00 UTC for 2d: holidays")
    assert "Deploys will be frozen on every service from" in said, said
    _say(live, "code freeze starting in 1h for 2h: release")
    said = _say(live, f"cancel the freeze set for {day:%b %d}")
    assert "Freeze of every service cancelled by <@U0BOB> before it started." in said, said
    assert [f["reason"] for f in _freezes(live).json()["upcoming"]] == ["release"]


def test_whether_a_freeze_holds_on_a_day_is_answered_for_that_day(live: Live) -> None:
    day = dt.datetime.now(dt.UTC) + dt.timedelta(days=20)
    _say(live, f"freeze deploys on payments-api from {day:%b %d} 00:00 UTC for 2d: holidays")
    said = _say(live, f"is there a deploy freeze on {day:%b %d} at 12:00 UTC?")
    assert "Deploys will be frozen on payments-api at " in said and "holidays" in said, said
    assert "No deploy freeze holds now; 1 set to start later." in _say(live, "is there a deploy freeze?")
    said = _say(live, f"is there a deploy freeze on {(day + dt.timedelta(days=5)):%b %d}?")
    assert "No deploy freeze holds at " in said, said
