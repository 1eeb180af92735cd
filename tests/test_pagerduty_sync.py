"""PagerDuty write-back through the real app: an incident PagerDuty opened (signed v3 webhook in) is acknowledged,
updated and resolved in Slack (signed requests in), and the PagerDuty REST API stand-in receives exactly those
changes; PagerDuty's echoes of them change nothing; PagerDuty refusing or not answering is told in the card's
thread with what to do by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from knowledge.models import Incident, Job, TimelineEvent
from tests.conftest import Live, live_with, make_settings
from tests.pagerduty_standin import FakePagerDuty
from tests.test_intake_webhooks import pd_event, post, wait_processed

TOKEN = "pd-rest-token-0123456789abcdef"


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    fake = FakePagerDuty(token=TOKEN)
    yield fake
    fake.close()


@pytest.fixture
def settings(tmp_path: Path, standin: Any, pagerduty: FakePagerDuty) -> Any:
    return make_settings(tmp_path, standin, warm_models=False, pagerduty_api_token=SecretStr(TOKEN),
                         pagerduty_from="warroom-bot@acme.test", pagerduty_api_url=pagerduty.url,
                         pagerduty_max_attempts=2)


def _trigger(live: Live, pagerduty: FakePagerDuty, pd_id: str, n: int, title: str) -> Incident:
    """PagerDuty opens ``pd_id``: its webhook opens our incident (with its card)."""
    pagerduty.incidents.setdefault(pd_id, "triggered")
    event = pd_event("incident.triggered", n, id=pd_id, title=title)
    assert post(live, "pagerduty", event, auth="pagerduty").status_code == 202
    wait_processed(live)
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.title.contains(title))).one()
        s.expunge(inc)
    return inc


def _cmd(live: Live, text: str, user: str = "U0ALICE", channel: str = "C0OPS") -> None:
    assert live.driver.command("/incident", text, user=user, channel=channel).status_code == 200
    live.drain()


def _timeline(live: Live, incident_id: int, kind: str | None = None) -> list[TimelineEvent]:
    with live.db.session() as s:
        q = select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
        rows = list(s.scalars(q.where(TimelineEvent.kind == kind) if kind else q).all())
        for r in rows:
            s.expunge(r)
    return sorted(rows, key=lambda e: e.id)


def _thread(live: Live, inc: Incident) -> list[str]:
    return [m["text"] for m in live.standin.messages(inc.channel_id) if m.get("thread_ts") == inc.card_ts]


def test_ack_update_resolve_reach_pagerduty_and_echoes_change_nothing(live: Live, pagerduty: FakePagerDuty) -> None:
    inc = _trigger(live, pagerduty, "PGR0VU2", 1, "auth-service login latency above 2s")
    assert pagerduty.requests == []  # PagerDuty told us: nothing to tell it back

    _cmd(live, f"ack {inc.id}")
    (put,) = pagerduty.calls()
    assert (put.method, put.path, put.status) == ("PUT", "/incidents/PGR0VU2", 200)
    assert put.body == {"incident": {"type": "incident_reference", "status": "acknowledged"}}
    assert put.headers["authorization"] == f"Token token={TOKEN}"
    assert put.headers["accept"] == "application/vnd.pagerduty+json;version=2"
    assert put.headers["from"] == "warroom-bot@acme.test"
    assert pagerduty.incidents["PGR0VU2"] == "acknowledged"
    assert [e.text for e in _timeline(live, inc.id, "pagerduty")] == [
        "PagerDuty incident PGR0VU2 acknowledged (for Alice Moreau)"]

    # PagerDuty's webhook says it back: the incident stays as it is, no second acknowledgement goes out
    echo = pd_event("incident.acknowledged", 2, id="PGR0VU2", status="acknowledged")
    echo["event"]["agent"]["summary"] = "Warroom Bot"
    assert post(live, "pagerduty", echo, auth="pagerduty").status_code == 202
    wait_processed(live)
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, inc.id).status == "acknowledged"  # type: ignore[union-attr]
    assert len(pagerduty.calls()) == 1

    # A status update is a note there (secrets masked); a plain note stays here
    _cmd(live, f"note {inc.id} looking at the pool")
    _cmd(live, f"update {inc.id} failed over to the replica, password=hunter22")
    (note,) = pagerduty.calls("POST")
    assert note.path == "/incidents/PGR0VU2/notes" and note.status == 201
    content = note.body["note"]["content"]
    assert content == "[warroom] Update: failed over to the replica, password=[REDACTED] (Alice Moreau, in Slack)"
    notes_before = len(_timeline(live, inc.id, "note"))
    echoed = pd_event("incident.annotated", 3, note=content)  # PagerDuty's webhook for the note we wrote
    assert post(live, "pagerduty", echoed, auth="pagerduty").status_code == 202
    theirs = pd_event("incident.annotated", 4, note="customer support informed")  # a note written there
    assert post(live, "pagerduty", theirs, auth="pagerduty").status_code == 202
    wait_processed(live)
    notes = _timeline(live, inc.id, "note")
    assert len(notes) == notes_before + 1
    assert notes[-1].text == "PagerDuty note by Tenex Engineer: customer support informed"

    _cmd(live, f"resolve {inc.id} rolled back the auth config", user="U0BOB")
    put = pagerduty.calls("PUT")[-1]
    assert put.body["incident"]["status"] == "resolved" and put.status == 200
    assert put.body["incident"]["resolution"].endswith(": rolled back the auth config")
    assert pagerduty.incidents["PGR0VU2"] == "resolved"
    assert all(e.data["ok"] for e in _timeline(live, inc.id, "pagerduty"))
    assert not any(":warning:" in t for t in _thread(live, inc))
    # the token is never in a job (payloads are stored)
    with live.db.session() as s:
        assert TOKEN not in json.dumps([j.payload for j in s.scalars(select(Job))])


def test_refusals_and_outages_are_told_in_the_thread(live: Live, pagerduty: FakePagerDuty) -> None:
    gone = _trigger(live, pagerduty, "PGONE01", 1, "billing-worker queue stuck")
    del pagerduty.incidents["PGONE01"]  # deleted in PagerDuty meanwhile: 404, no retry
    _cmd(live, f"ack {gone.id}")
    assert [r.status for r in pagerduty.calls()] == [404]
    (warn,) = [t for t in _thread(live, gone) if ":warning:" in t]
    assert "could not acknowledge PagerDuty incident PGONE01: PagerDuty refused it" in warn
    assert "Incident Not Found" in warn and "acknowledge it in PagerDuty" in warn
    (failed,) = _timeline(live, gone.id, "pagerduty")
    assert failed.data["ok"] is False and failed.text.startswith("Could not acknowledge PagerDuty incident PGONE01")
    with live.db.session() as s:  # acknowledged here all the same
        assert s.get(Incident, gone.id).status == "acknowledged"  # type: ignore[union-attr]

    down = _trigger(live, pagerduty, "PDOWN01", 2, "search-api timeouts")
    pagerduty.requests.clear()
    pagerduty.fail_next[:] = [503, 500]  # both attempts (WARROOM_PAGERDUTY_MAX_ATTEMPTS=2)
    _cmd(live, f"ack {down.id}")
    assert [r.status for r in pagerduty.calls()] == [503, 500]
    (warn,) = [t for t in _thread(live, down) if ":warning:" in t]
    assert "PagerDuty did not answer (HTTP 500: Internal error)" in warn

    pagerduty.requests.clear()
    pagerduty.fail_next[:] = [429]  # rate-limited once: the retry gets through, nobody is bothered
    _cmd(live, f"resolve {down.id} false alarm: synthetic probe misconfigured")
    assert [r.status for r in pagerduty.calls()] == [429, 200]
    assert pagerduty.incidents["PDOWN01"] == "resolved"
    assert pagerduty.calls()[-1].body["incident"]["resolution"].endswith(
        ": False alarm: synthetic probe misconfigured")
    assert len([t for t in _thread(live, down) if ":warning:" in t]) == 1

    # Resolved in PagerDuty first (its webhook lost or late): resolving here is not an error
    late = _trigger(live, pagerduty, "PLATE01", 3, "ingest lag growing")
    pagerduty.incidents["PLATE01"] = "resolved"
    _cmd(live, f"resolve {late.id} restarted the consumer")
    assert pagerduty.calls()[-1].status == 400
    assert _timeline(live, late.id, "pagerduty")[-1].text == "PagerDuty incident PLATE01 was already resolved there"
    assert not any(":warning:" in t for t in _thread(live, late))
    # Acknowledged here after PagerDuty resolved it: no warning that it "may go on paging", a plain word instead
    over = _trigger(live, pagerduty, "POVER01", 4, "cache hit ratio low")
    pagerduty.incidents["POVER01"] = "resolved"
    _cmd(live, f"ack {over.id}")
    assert pagerduty.calls()[-1].status == 400
    assert not any(":warning:" in t for t in _thread(live, over))
    (said,) = [t for t in _thread(live, over) if "already resolved there" in t]
    assert "so I did not acknowledge it. If this incident is over, resolve it here too." in said


def test_rerating_across_sev2_and_sev3_sets_the_urgency_there(live: Live, pagerduty: FakePagerDuty) -> None:
    """SEV1-2 is PagerDuty's high urgency, SEV3-4 its low: a re-rating that crosses the line is sent, one within
    it is not, and a priority change that came from PagerDuty is not sent back."""
    inc = _trigger(live, pagerduty, "PURG001", 1, "checkout-web cart errors")  # P1: SEV1
    _cmd(live, f"sev 2 {inc.id}")
    assert pagerduty.requests == []  # still high urgency
    _cmd(live, f"sev 4 {inc.id}", user="U0BOB")
    (put,) = pagerduty.calls("PUT")
    assert (put.path, put.status) == ("/incidents/PURG001", 200)
    assert put.body == {"incident": {"type": "incident_reference", "urgency": "low"}}
    assert pagerduty.urgency == {"PURG001": "low"} and pagerduty.incidents["PURG001"] == "triggered"
    _cmd(live, f"sev 3 {inc.id}")
    assert len(pagerduty.calls()) == 1
    _cmd(live, f"escalate {inc.id}")  # SEV3 -> SEV2 (the people it names have no email here: not paged there)
    assert pagerduty.urgency == {"PURG001": "high"} and len(pagerduty.calls()) == 2
    said = [e.text for e in _timeline(live, inc.id, "pagerduty") if "urgency" in e.text]
    assert said[0].startswith("PagerDuty incident PURG001 urgency set to low (for ")
    assert said[1].startswith("PagerDuty incident PURG001 urgency set to high (for ")
    changed = pd_event("incident.priority_updated", 5, priority="P4", id="PURG001")  # re-rated there
    assert post(live, "pagerduty", changed, auth="pagerduty").status_code == 202
    wait_processed(live)
    live.drain()
    assert len(pagerduty.calls()) == 2  # news from PagerDuty is not written back to it

    pagerduty.incidents["PURG001"] = "resolved"  # resolved there meanwhile (its webhook late): refused, told
    with live.db.session() as s:  # P4 there: SEV4 here
        assert s.get(Incident, inc.id).severity == 4  # type: ignore[union-attr]
    _cmd(live, f"sev 1 {inc.id}")
    assert pagerduty.calls()[-1].status == 400 and len(pagerduty.calls()) == 3
    # nothing to set there any more: said plainly, not "set its urgency in PagerDuty" (it pages nobody now)
    assert not [t for t in _thread(live, inc) if ":warning:" in t and "urgency" in t]
    (said,) = [t for t in _thread(live, inc) if "already resolved there" in t]
    assert "so I did not change the urgency of it. If this incident is over, resolve it here too." in said


def test_changes_are_made_as_the_person_when_pagerduty_knows_them(live: Live, pagerduty: FakePagerDuty) -> None:
    """``From`` is the acting person's email from the people directory, so PagerDuty's log names them; someone
    PagerDuty has no user for is acted for by the bot's user, in the same attempt, and not tried again."""
    from knowledge.models import Expert

    with live.db.session() as s:
        for user, email in (("U0ALICE", "alice@acme.test"), ("U0BOB", "bob@contractor.test")):
            s.scalars(select(Expert).where(Expert.slack_user_id == user)).one().email = email
    pagerduty.users = {"warroom-bot@acme.test": "PBOT001", "alice@acme.test": "PALICE1"}
    inc = _trigger(live, pagerduty, "PASME01", 1, "warehouse-loader stuck on the nightly batch")
    _cmd(live, f"ack {inc.id}")  # Alice
    (ack,) = pagerduty.calls()
    assert ack.headers["from"] == "alice@acme.test" and ack.status == 200
    _cmd(live, f"update {inc.id} lag shrinking", user="U0BOB")
    _cmd(live, f"resolve {inc.id} scaled the consumers", user="U0BOB")
    sent = [(r.method, r.headers["from"], r.status) for r in pagerduty.calls()[1:]]
    assert sent == [("POST", "bob@contractor.test", 400), ("POST", "warroom-bot@acme.test", 201),
                    ("PUT", "warroom-bot@acme.test", 200)]  # Bob's email is not tried a second time
    assert pagerduty.notes["PASME01"] == ["[warroom] Update: lag shrinking (Bob Okafor, in Slack)"]
    assert pagerduty.incidents["PASME01"] == "resolved"
    assert [e.text for e in _timeline(live, inc.id, "pagerduty")] == [
        "PagerDuty incident PASME01 acknowledged (as Alice Moreau)",
        "Note added to PagerDuty incident PASME01 (for Bob Okafor)",
        "PagerDuty incident PASME01 resolved (for Bob Okafor)"]
    assert not any(":warning:" in t for t in _thread(live, inc))


def test_assigning_here_reassigns_there(live: Live, pagerduty: FakePagerDuty) -> None:
    """``/incident assign`` and the card's *Assign* button make the PagerDuty user with the person's directory email
    the assignee there (so PagerDuty pages them, not the one before); PagerDuty's echo changes nothing; a person
    PagerDuty cannot be told about is said in the thread with what to do."""
    from knowledge.models import Expert

    with live.db.session() as s:
        for user, email in (("U0ALICE", "alice@acme.test"), ("U0BOB", "bob@acme.test")):
            s.scalars(select(Expert).where(Expert.slack_user_id == user)).one().email = email
    pagerduty.users = {"warroom-bot@acme.test": "PBOT001", "alice@acme.test": "PALICE1", "bob@acme.test": "PBOB001"}
    inc = _trigger(live, pagerduty, "PASN001", 1, "auth-service refresh tokens rejected")
    _cmd(live, f"assign <@U0BOB> {inc.id}")  # Alice assigns Bob
    get, put = pagerduty.calls()
    assert (get.method, get.path, get.status) == ("GET", "/users?query=bob%40acme.test", 200)
    assert put.body == {"incident": {"type": "incident_reference",
                                     "assignments": [{"assignee": {"id": "PBOB001", "type": "user_reference"}}]}}
    assert put.headers["from"] == "alice@acme.test" and pagerduty.assigned == {"PASN001": ["PBOB001"]}
    echo = pd_event("incident.reassigned", 4, id="PASN001", status="triggered",
                    assignees=[{"id": "PBOB001", "type": "user_reference", "summary": "Bob Okafor"}])
    assert post(live, "pagerduty", echo, auth="pagerduty").status_code == 202
    wait_processed(live)
    live.drain()
    assert len(pagerduty.calls()) == 2

    assert live.driver.click("routing:assign", f"{inc.id}:U0ALICE", user="U0BOB",
                             channel=inc.channel_id or "C0INCIDENTS").status_code == 200
    live.drain()
    assert pagerduty.assigned == {"PASN001": ["PALICE1"]} and len(pagerduty.calls()) == 4
    assert [e.text for e in _timeline(live, inc.id, "pagerduty")] == [
        "PagerDuty incident PASN001 assigned to Bob Okafor (as Alice Moreau)",
        "PagerDuty incident PASN001 assigned to Alice Moreau (as Bob Okafor)"]

    _cmd(live, f"assign <@U0CARLA> {inc.id}")  # no email in the directory: PagerDuty cannot be told who
    assert len(pagerduty.calls()) == 4 and pagerduty.assigned == {"PASN001": ["PALICE1"]}
    (warn,) = [t for t in _thread(live, inc) if ":warning:" in t]
    assert "could not reassign PagerDuty incident PASN001" in warn and "no email for Carla Mendes" in warn
    assert "Reassign it in PagerDuty, or it goes on paging the person before." in warn
    with live.db.session() as s:  # assigned here all the same
        assert s.get(Incident, inc.id).assignee == "U0CARLA"  # type: ignore[union-attr]


def test_nothing_goes_to_pagerduty_for_other_incidents(live: Live, pagerduty: FakePagerDuty) -> None:
    """An incident a person declared (or Alertmanager opened) has no PagerDuty incident: no request."""
    _cmd(live, "new checkout-web 500s on the cart page sev2")
    with live.db.session() as s:
        inc_id = s.scalar(select(Incident.id).where(Incident.title.contains("cart page")))
    _cmd(live, f"ack {inc_id}")
    _cmd(live, f"update {inc_id} cache flushed")
    _cmd(live, f"resolve {inc_id} flushed the cache")
    assert pagerduty.requests == [] and _timeline(live, inc_id, "pagerduty") == []


def test_write_back_is_off_without_a_token(tmp_path: Path, standin: Any, pagerduty: FakePagerDuty) -> None:
    (tmp_path / "off").mkdir()
    with live_with(tmp_path / "off", standin, warm_models=False, pagerduty_api_url=pagerduty.url) as live:
        inc = _trigger(live, pagerduty, "POFF001", 1, "auth-service token errors")
        _cmd(live, f"ack {inc.id}")
        _cmd(live, f"resolve {inc.id} fixed")
        with live.db.session() as s:
            assert s.get(Incident, inc.id).status == "resolved"  # type: ignore[union-attr]
    assert pagerduty.requests == []


def test_reassigned_in_pagerduty_changes_the_assignee_here(live: Live, pagerduty: FakePagerDuty) -> None:
    inc = _trigger(live, pagerduty, "PRE0001", 1, "payments-api 503s")

    def reassign(n: int, *names: str) -> None:
        event = pd_event("incident.reassigned", n, id="PRE0001", status="triggered",
                         assignees=[{"id": f"PU{i}", "type": "user_reference", "summary": name}
                                    for i, name in enumerate(names)])
        assert post(live, "pagerduty", event, auth="pagerduty").status_code == 202
        wait_processed(live)

    reassign(2, "Somebody Else", "bob okafor")  # the first one the people directory knows
    with live.db.session() as s:
        assert s.get(Incident, inc.id).assignee == "U0BOB"  # type: ignore[union-attr]
    assert _timeline(live, inc.id, "assign")[-1].text == "Reassigned in PagerDuty to <@U0BOB> by Tenex Engineer"
    reassign(3, "Contractor X")  # nobody we know: said, and the assignee here stays
    with live.db.session() as s:
        assert s.get(Incident, inc.id).assignee == "U0BOB"  # type: ignore[union-attr]
    assert _timeline(live, inc.id)[-1].text == (
        "PagerDuty: reassigned to Contractor X by Tenex Engineer (not in the people directory: the assignee here "
        "stays)")
    assert pagerduty.requests == []  # news from PagerDuty is not written back to it


def test_escalating_here_pages_the_next_people_there(live: Live, pagerduty: FakePagerDuty) -> None:
    """``/incident escalate`` names the next people to call; PagerDuty is asked to page them as responders (one
    request, whoever escalated as the requester, or the bot when PagerDuty does not know them); those PagerDuty
    cannot page are said in the thread, and when it can page nobody, what to do by hand."""
    from knowledge.models import Expert

    with live.db.session() as s:
        experts = list(s.scalars(select(Expert)))
        for e in experts:
            e.email = f"{e.slack_user_id.lower()}@acme.test"
        everyone = {f"{e.slack_user_id.lower()}@acme.test": f"P{e.slack_user_id[2:]}"[:7] for e in experts}
    pagerduty.users = {"warroom-bot@acme.test": "PBOT001", **everyone}
    inc = _trigger(live, pagerduty, "PESC001", 1, "ledger writes time out on the primary")

    def named() -> list[str]:  # whom the last escalation named, from its pagerduty.sync job
        with live.db.session() as s:
            job = s.scalars(select(Job).where(Job.kind == "pagerduty.sync").order_by(Job.id.desc())).first()
            assert job is not None and job.payload["action"] == "responders"
            return str(job.payload["text"]).split(",")

    _cmd(live, f"escalate {inc.id}")  # Alice escalates
    first = named()
    assert len(first) >= 2 and "U0ALICE" not in first
    (req,) = [r for r in pagerduty.calls("POST")]
    assert req.path == "/incidents/PESC001/responder_requests" and req.status == 200
    assert req.headers["from"] == "u0alice@acme.test" and req.body["requester_id"] == everyone["u0alice@acme.test"]
    assert pagerduty.responders == {"PESC001": [(everyone["u0alice@acme.test"],
                                                 [everyone[f"{u.lower()}@acme.test"] for u in first])]}
    assert f"incident #{inc.id}" in req.body["message"]
    (said,) = [e.text for e in _timeline(live, inc.id, "pagerduty")]
    assert said.startswith("PagerDuty incident PESC001: asked ") and said.endswith("to respond (as Alice Moreau)")

    # The second one named is no PagerDuty user, nor is whoever escalates: the bot asks for the first alone
    gone = f"{first[1].lower()}@acme.test"
    pagerduty.users = {k: v for k, v in pagerduty.users.items() if k not in (gone, "u0alice@acme.test")}
    _cmd(live, f"escalate {inc.id}")
    again = named()
    assert first[1] in again
    last = pagerduty.calls("POST")[-1]
    assert last.headers["from"] == "warroom-bot@acme.test" and last.body["requester_id"] == "PBOT001"
    assert gone.replace("@acme.test", "").upper() not in json.dumps(last.body)
    assert [r for r in pagerduty.responders["PESC001"][1][1]] == [
        everyone[f"{u.lower()}@acme.test"] for u in again if u != first[1]]
    (warn,) = [t for t in _thread(live, inc) if ":warning:" in t]
    assert "but not everyone I named" in warn and f"no user with the email {gone}" in warn

    # PagerDuty can page none of them: nothing is sent, and the thread says what to do by hand
    pagerduty.users = {"warroom-bot@acme.test": "PBOT001"}
    posts = len(pagerduty.calls("POST"))
    _cmd(live, f"escalate {inc.id}")
    assert len(pagerduty.calls("POST")) == posts and len(pagerduty.responders["PESC001"]) == 2
    warn = [t for t in _thread(live, inc) if ":warning:" in t][-1]
    assert "could not ask for more responders on PagerDuty incident PESC001" in warn
    assert "Add them as responders in PagerDuty, or call them." in warn


def test_a_retried_escalation_does_not_page_twice(live: Live, pagerduty: FakePagerDuty) -> None:
    """PagerDuty took the responder request, then telling the card's thread failed (the bot was taken out of the
    incident channel): the job fails without claiming PagerDuty failed; run again once the bot is back, it tells the
    thread and does not ask PagerDuty a second time (nobody is paged twice)."""
    from knowledge import jobs
    from knowledge.models import Expert

    with live.db.session() as s:
        for e in s.scalars(select(Expert)):
            e.email = f"{e.slack_user_id.lower()}@acme.test"
        everyone = {f"{e.slack_user_id.lower()}@acme.test": f"P{e.slack_user_id[2:]}"[:7]
                    for e in s.scalars(select(Expert))}
    pagerduty.users = {"warroom-bot@acme.test": "PBOT001", **everyone}
    seen = _trigger(live, pagerduty, "PESC002", 1, "ledger writes time out on the primary")
    _cmd(live, f"escalate {seen.id}")  # who an escalation of such an incident names
    with live.db.session() as s:
        first = str(s.scalars(select(Job).where(Job.kind == "pagerduty.sync")).one().payload["text"]).split(",")
    assert len(first) >= 2
    # The same failure again; PagerDuty cannot page the second one named, so the thread has something to be told
    pagerduty.users.pop(f"{first[1].lower()}@acme.test")
    inc = _trigger(live, pagerduty, "PESC003", 2, "ledger writes time out on the primary again")
    posts = len(pagerduty.calls("POST"))
    live.standin.leave(inc.channel_id, private=True)
    _cmd(live, f"escalate {inc.id}")
    with live.db.session() as s:
        job = s.scalars(select(Job).where(Job.kind == "pagerduty.sync").order_by(Job.id.desc())).first()
        assert job is not None and str(job.payload["text"]).split(",") == first
        assert job.status == "failed" and "not a member" in str(job.last_error)
        job_id = job.id
    (req,) = pagerduty.calls("POST")[posts:]
    assert req.path == "/incidents/PESC003/responder_requests"
    (said,) = [e.text for e in _timeline(live, inc.id, "pagerduty")]
    assert said.startswith("PagerDuty incident PESC003: asked ")  # PagerDuty did its part; not said to have failed

    live.standin.outside.clear()  # the bot is invited back; the operator retries the failed job
    with live.db.session() as s:
        assert jobs.requeue_failed(s) >= 1
    live.services.runner.notify()
    live.drain()
    assert len(pagerduty.calls("POST")) == posts + 1  # not asked again
    assert len(_timeline(live, inc.id, "pagerduty")) == 1
    (warn,) = [t for t in _thread(live, inc) if ":warning:" in t]  # the thread is told now
    assert "but not everyone I named" in warn
    with live.db.session() as s:
        assert s.get(Job, job_id).status == "done"  # type: ignore[union-attr]
