"""Scenario tests through the real app: signed Slack requests in, the Slack stand-in and the DB checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.render import blocks_to_text
from bot.standin.driver import SlackDriver
from bot.standin.harness import LiveServer
from bot.standin.server import SlackStandIn
from knowledge.db import Database
from knowledge.models import Feedback, Incident, RunbookExecution
from knowledge.search import sync_index
from skills.similar import resolver
from tests.conftest import Live, make_settings

CH = "C0GENERAL"


@pytest.fixture
def live(tmp_path: Path, standin: SlackStandIn, db: Database) -> Iterator[Live]:
    """The real app over the seeded database, without the start-up warm-up of every skill's models
    (the search loads its index on first use), which keeps these scenarios fast on a busy machine."""
    settings = make_settings(tmp_path, standin, warm_models=False)
    with LiveServer(settings) as srv:
        yield Live(srv, standin, SlackDriver(srv.url, settings.slack_signing_secret.get_secret_value()))


def _text(msg: dict[str, Any]) -> str:
    blocks = msg.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return blocks_to_text(blocks) + "\n" + str(msg.get("text") or "")


def _buttons(msg: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = msg.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return [e for b in blocks if b.get("type") == "actions" for e in b.get("elements", [])]


def _last(live: Live, channel: str = CH) -> dict[str, Any]:
    msgs = live.standin.messages(channel)
    assert msgs, "the bot posted nothing"
    return msgs[-1]


def test_slash_similar_answers_with_why_fix_and_feedback_buttons(live: Live) -> None:
    resp = live.driver.command("/similar", "payments-api 503: remaining connection slots are reserved", channel=CH)
    assert resp.status_code == 200
    live.drain()
    msg = _last(live)
    text = _text(msg)
    assert not msg["ephemeral"] and "Similar past incidents" in text
    assert "incident #101" in text and "fix that worked" in text and "pgbouncer" in text
    assert "(resolved with restart-service)" in text  # the runbook run that fixed #101
    assert "same service payments-api" in text
    buttons = _buttons(msg)
    assert buttons and all(b["action_id"] == "similar:not_similar" for b in buttons)
    assert json.loads(buttons[0]["value"])["t"] == "incident:101"
    _similar_for_an_incident_id_excludes_itself(live)
    _not_similar_click_is_stored_and_reranks(live)


def test_resolver_names_a_person_as_a_mention_and_a_runbook_by_its_id() -> None:
    assert resolver("U0ALICE") == "resolved by <@U0ALICE>"
    assert resolver("U0ALICE", markup=False) == "resolved by @U0ALICE"
    assert resolver("restart-service") == "resolved with restart-service"
    assert resolver("<!channel> x") == "resolved with &lt;!channel&gt; x"  # stored text is never a live mention


def _not_similar_click_is_stored_and_reranks(live: Live) -> None:
    query = "payments-api 503: remaining connection slots are reserved"
    live.driver.command("/similar", query, channel=CH)
    live.drain()
    value = _buttons(_last(live))[0]["value"]
    assert live.driver.click("similar:not_similar", value, user="U0BOB", channel=CH).status_code == 200
    live.drain()
    assert "will not be suggested" in _text(_last(live)) and _last(live)["ephemeral"]
    with live.db.session() as s:
        fb = s.query(Feedback).filter_by(kind="not_similar").one()
        assert (fb.target, fb.user_id, fb.incident_id) == ("incident:101", "U0BOB", None)
    live.driver.command("/similar", query, channel=CH)
    live.drain()
    again = _text(_last(live))
    assert "incident #101" not in again.split("Not similar")[0]


def test_bad_input_at_the_slack_door(live: Live) -> None:
    assert live.driver.command("/similar", "", channel=CH).status_code == 200
    live.drain()
    assert _last(live)["ephemeral"] and "Tell me what to look for" in _text(_last(live))
    assert live.driver.command("/similar", "#99999", channel=CH).status_code == 200
    live.drain()
    assert "There is no incident #99999" in _text(_last(live))
    live.driver.command("/similar", "#99999999999999999999", channel=CH)  # was searched as words
    live.drain()
    assert "There is no incident #99999999999999999999" in _text(_last(live))
    assert live.driver.command("/similar", "?!", channel=CH).status_code == 200
    live.drain()
    assert "nothing to search for" in _text(_last(live))
    huge = "kafka broker disk full under-replicated partitions " * 2000  # ~100 KB
    assert live.driver.command("/similar", huge, channel=CH).status_code == 200
    live.drain()
    assert "incident #109" in _text(_last(live))
    for value in ("not json", json.dumps({"t": "users:1; drop table"}), json.dumps({"t": "incident:1", "i": "x"}),
                  json.dumps({"t": "incident:101", "i": 424242}), json.dumps({"t": "incident:101", "i": 10**30}),
                  json.dumps({"t": "incident:101", "i": True})):
        assert live.driver.click("similar:not_similar", value, channel=CH).status_code == 200
        live.drain()
        assert "nothing was recorded" in _text(_last(live))
    with live.db.session() as s:
        assert s.query(Feedback).count() == 0


def _similar_for_an_incident_id_excludes_itself(live: Live) -> None:
    live.driver.command("/similar", "#109", channel=CH)
    live.drain()
    text = _text(_last(live))
    assert "Closest matches for incident #109: _kafka broker" in text
    assert "incident #109*" not in text and "|incident #109>" not in text  # never among its own matches
    assert "postmortem of #109" not in text
    assert "incident #105" in text or "clear-disk-space" in text  # the other disk-full incident / runbook


def test_questions_in_the_channel_get_cited_passages_or_i_dont_know(live: Live) -> None:
    live.driver.mention("have we seen 'remaining connection slots are reserved' before?", channel=CH)
    live.drain()
    msg = _last(live)
    text = _text(msg)
    assert "From the knowledge base" in text and "incident #101" in text and "[1]" in text
    assert "remaining connection slots are reserved" in text and msg.get("thread_ts")
    live.driver.mention("how do I restart ingest?", channel=CH)
    live.drain()
    howto = _text(_last(live))
    assert "[1] runbook `restart-service`" in howto  # how-to: the runbook first, with its preview filled in
    assert "`/runbook run restart-service service=ingest --dry-run`" in howto
    # the runbook's paragraph is wrapped in its Markdown: quoted whole, not stopped at the line break
    assert "without downtime when the deployment has more than one replica" in howto, howto
    assert "(rolling restart) Restart a service" not in howto  # the title is a sentence of its own
    # Runbooks score lower than long postmortems; for a how-to they are the answer, and come first.
    for question, first in (("what's the runbook for disk full on kafka?", "clear-disk-space"),
                            ("how do I roll back checkout-web?", "rollback-deploy"),
                            ("how do we rotate the TLS certificate for auth-service?", "renew-certificate")):
        live.driver.mention(question, channel=CH)
        live.drain()
        assert f"[1] runbook `{first}`" in _text(_last(live)), question
    with live.db.session() as s:  # a question never starts a run
        assert s.query(RunbookExecution).count() == 0
    live.driver.mention("what is the capital of France?", channel=CH)
    live.drain()
    assert "I don't know" in _text(_last(live))
    _index_sync_job_makes_new_incidents_searchable(live)


def _index_sync_job_makes_new_incidents_searchable(live: Live) -> None:
    with live.db.session() as s:
        s.add(Incident(id=700, title="zookeeper quorum lost after network partition", service_name="kafka",
                       status="resolved", resolution="Healed the partition and restarted zookeeper"))
    live.services.runner.submit("index.sync", {})
    live.drain()
    kb = live.services.ctx.resources["kb_index"]
    assert "incident:700" in kb.docs and "incident:700" in kb.vindex.fingerprints()
    live.driver.command("/similar", "zookeeper quorum lost", channel=CH)
    live.drain()
    assert "incident #700" in _text(_last(live)) and "restarted zookeeper" in _text(_last(live))


def test_incident_card_shows_similar_incidents_and_not_similar_refreshes_it(live: Live) -> None:
    live.driver.command("/incident", "new payments-api connection pool exhausted: remaining connection slots "
                                     "are reserved sev2", channel=CH)
    live.drain()
    cards = [m for m in live.standin.messages() if "Similar incidents" in _text(m)]
    assert cards, "no card with a Similar incidents section"
    card = cards[-1]
    assert "incident #101" in _text(card) and "fix that worked" in _text(card)
    with live.db.session() as s:
        inc = s.query(Incident).order_by(Incident.id.desc()).first()
        assert inc is not None and inc.findings["similar"]["data"]["hits"][0] == "incident:101"
        new_id = inc.id
    button = next(b for b in _buttons(card) if b["action_id"] == "similar:not_similar"
                  and json.loads(b["value"])["t"] == "incident:101")
    live.driver.click("similar:not_similar", button["value"], user="U0CARLA", channel=card["channel"],
                      message_ts=card["ts"])
    live.drain()
    with live.db.session() as s:
        inc = s.get(Incident, new_id)
        assert inc is not None
        assert "incident:101" not in (inc.findings.get("similar") or {}).get("data", {}).get("hits", [])
        assert s.query(Feedback).filter_by(kind="not_similar", incident_id=new_id).count() == 1
    card_now = next(m for m in live.standin.messages(card["channel"]) if m["ts"] == card["ts"])
    assert card_now.get("updated") and "incident #101" not in _text(card_now).split("Similar incidents")[-1]
    # a click by mistake could not be taken back: #101, the incident whose fix applies, was gone from the card
    (undo,) = [b for m in live.standin.messages(card["channel"]) for b in _buttons(m)
               if b["action_id"] == "similar:undo"]
    for value, who, said in (("x", "U0CARLA", "That Undo button's data is broken"),
                             ("99999", "U0CARLA", "There is no \"not similar\" to undo here"),
                             (undo["value"], "U0BOB", "That was not your click: only <@U0CARLA>, who gave it")):
        live.driver.click("similar:undo", value, user=who, channel=card["channel"])
        live.drain()
        assert said in _text(_last(live, card["channel"])), _text(_last(live, card["channel"]))
    live.driver.click("similar:undo", undo["value"], user="U0CARLA", channel=card["channel"])
    live.drain()
    assert "incident 101 can be suggested again" in _text(_last(live, card["channel"]))
    with live.db.session() as s:
        inc = s.get(Incident, new_id)
        assert inc is not None and inc.findings["similar"]["data"]["hits"][0] == "incident:101"
        assert s.query(Feedback).filter_by(kind="not_similar").count() == 0
        assert s.query(Feedback).filter_by(kind="not_similar_undone", incident_id=new_id).count() == 1
    card_now = next(m for m in live.standin.messages(card["channel"]) if m["ts"] == card["ts"])
    assert "incident #101" in _text(card_now).split("Similar incidents")[-1]


def test_rest_api_similar(tmp_path: Any, standin: Any, db: Any) -> None:
    import httpx

    settings = make_settings(tmp_path, standin, kb_token="kb-token-0123456789", warm_models=False)
    with LiveServer(settings) as srv:
        url = f"{srv.url}/api/v1/similar"
        auth = {"Authorization": "Bearer kb-token-0123456789"}
        r = httpx.post(url, json={"text": "kafka broker disk full", "k": 2, "kinds": ["incident"]}, headers=auth)
        assert r.status_code == 200 and r.json()["hits"][0]["id"] == "109" and len(r.json()["hits"]) == 2
        r = httpx.post(url, json={"text": "disk full " * 12_000}, headers=auth)
        assert r.status_code == 200 and r.json()["truncated"]
        assert httpx.post(url, json={"text": "disk"}).status_code == 401
        assert httpx.post(url, json={"text": "disk"}, headers={"Authorization": "Bearer nope"}).status_code == 401
        for bad in ({"text": ""}, {"text": "disk", "k": 0}, {"text": "disk", "kinds": ["tweet"]},
                    {"text": "disk", "extra": 1}, {"text": 5}, {"text": "?!"}, {"text": "disk", "since": "yesterday"}):
            r = httpx.post(url, json=bad, headers=auth)
            assert r.status_code == 422, (bad, r.status_code)
        r = httpx.post(url, content=b"{not json", headers={**auth, "Content-Type": "application/json"})
        assert r.status_code == 422


def _shown(live: Live, text: str, source: str = "command") -> str:
    if source == "command":
        assert live.driver.command("/similar", text, channel=CH).status_code == 200
    else:
        assert live.driver.mention(text, channel=CH).status_code == 200
    live.drain()
    return _text(_last(live))


def test_similar_takes_the_filters_the_search_has(live: Live) -> None:
    """Service, time range, severity and status filtered only through the REST API; in Slack "since:30d" was words
    to search for."""
    both = _shown(live, "disk full")
    assert "incident #109" in both and "incident #105" in both  # kafka (Jul 2026), postgres-main (May 2026)
    since = _shown(live, "disk full since:2026-06-01")
    assert "incident #109" in since and "incident #105" not in since
    assert "(only since Mon 01 Jun 2026 00:00 UTC)" in since
    until = _shown(live, "disk full --until 2026-06-01")
    assert "incident #105" in until and "incident #109" not in until
    assert "runbook `clear-disk-space`" in until  # a runbook is not an event: time filters keep it
    only = _shown(live, "disk full service:postgres-main")
    assert "incident #105" in only and "incident #109" not in only and "(only service postgres-main)" in only
    auth = _shown(live, "auth-service 401")
    assert "#111" in auth and "#104" in auth  # SEV1 and SEV2
    sev1 = _shown(live, "auth-service 401 sev:1")
    assert "#111" in sev1 and "#104" not in sev1 and "(only SEV1)" in sev1
    with live.db.session() as s:
        s.add(Incident(title="auth-service returning 401 to every login", service_name="auth-service", severity=2,
                       status="open", description="401 since the 14:00 deploy"))
        s.flush()
        new = s.scalar(select(func.max(Incident.id)))
    sync_index(live.services.ctx)
    assert f"incident #{new}" in _shown(live, "auth-service 401")
    done = _shown(live, "auth-service 401 status:resolved")
    assert "#111" in done and f"#{new}" not in done and "(only resolved incidents)" in done
    with live.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Feedback)) == 0


@pytest.mark.parametrize(("text", "said"), [
    ("disk full since:yesterday", "I cannot read `since:yesterday` as a time: write a span back from now"),
    ("disk full sev:2-3", "I cannot read `sev:2-3`"),
    ("disk full --service", "`--service` needs a value"),
    ("disk full service:postgres", "No past incident, postmortem or runbook is about `postgres` (did you mean "
                                   "`postgres-main`?)"),
    ("disk full since:2026-06-01 until:2026-05-01", "`until` (01 May 2026 00:00) is not after `since`"),
    ("since:30d sev:1", "Tell me what to look for as well as the filters"),
])
def test_a_filter_it_cannot_read_is_said_not_dropped(live: Live, text: str, said: str) -> None:
    assert said in _shown(live, text)


def test_words_of_a_pasted_log_stay_words(live: Live) -> None:
    """``status=503``, ``Service: x`` and ``severity=ERROR`` in a pasted line are what to search for, not filters."""
    said = _shown(live, "ingress 502s upstream status=503 severity=ERROR Service: ingress pods not ready")
    assert "Closest matches for _ingress 502s upstream status=503 severity=ERROR Service: ingress pods not ready_" \
        in said
    assert "(only" not in said and "incident #112" in said


def test_a_question_in_the_last_n_days_is_asked_of_that_span(live: Live) -> None:
    said = _shown(live, "have we seen disks filling up in the last 30 days?", source="mention")
    assert "(Only since" in said and "incident #105" not in said and "incident #109" not in said
    said = _shown(live, "have we seen disks filling up since:2026-01-01?", source="mention")
    assert "(Only since Thu 01 Jan 2026 00:00 UTC.)" in said and "#10" in said
