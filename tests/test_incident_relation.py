"""Are two incidents related ("is this related to #112?", "are #113 and #114 related?", "is this a duplicate of
#112?"): these went to the knowledge base ("I found nothing") or showed one of the two. Through the real app: signed
mentions in, the Slack stand-in and the database checked."""

from __future__ import annotations

from knowledge.models import Incident
from tests.conftest import Live, open_incidents
from tests.test_incident_words import _say


def _status(live: Live, incident_id: int) -> str:
    with live.db.session() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        return inc.status


def test_a_dependency_at_the_same_time_is_likely_related_and_a_question_closes_nothing(live: Live) -> None:
    web, api, ingest = open_incidents(live, "checkout-web 502s on cart sev2", "payments-api 5xx spike sev2",
                                      "ingest lag growing sev3")
    here = {"channel": "C0INCIDENTS", "thread": web.card_ts}
    said = _say(live, f"is this related to #{api.id}?", **here)
    assert "knowledge base" not in said and f"#{web.id} and #{api.id}" in said, said
    assert (f"Likely related: checkout-web depends on payments-api (checkout-web → payments-api): #{api.id} may be "
            f"the cause of #{web.id}.") in said
    assert "both open at the same time" in said and "their titles share" not in said
    for asked in (f"is this a duplicate of #{api.id}?", f"could this be caused by #{api.id}?"):
        assert "Likely related: checkout-web depends on payments-api" in _say(live, asked, **here), asked
    assert _status(live, web.id) == "open" and _status(live, api.id) == "open"  # a question merged nothing
    said = _say(live, f"are #{web.id} and #{ingest.id} related?")  # no dependency, nothing shared
    assert ("No sign they are related: different services with no dependency between them, no shared alert or "
            "change.") in said, said
    said = _say(live, f"is #{web.id} related to #109?")  # last July's kafka incident
    assert "No sign they are related" in said and "and not close in time" in said, said
    assert f"#{web.id} opened " in said and " days after #109, not open at the same time" in said, said


def test_the_same_service_suggests_a_merge_and_a_merge_is_said_back(live: Live) -> None:
    one, two = open_incidents(live, "payments-api 5xx spike at checkout sev2", "payments-api checkout latency sev3")
    one, two = sorted((one, two), key=lambda x: (x.created_at, x.id))  # opened together: either may be first
    said = _say(live, f"is #{two.id} the same as #{one.id}?")
    assert (f"Likely the same problem: both on payments-api, open at the same time. If so, `merge #{two.id} into "
            f"#{one.id}` keeps one timeline.") in said, said
    assert "their titles share _checkout_, _payments-api_" in said, said
    _say(live, f"merge #{two.id} into #{one.id}")
    assert _status(live, two.id) == "resolved"
    said = _say(live, f"are #{one.id} and #{two.id} related?")
    assert f"Yes: #{two.id} was closed as a duplicate of #{one.id}." in said, said


def test_what_cannot_be_answered_is_said(live: Live) -> None:
    (inc,) = open_incidents(live, "dns lookups failing sev1")
    said = _say(live, f"is #{inc.id} related to #99999?")
    assert "There is no incident #99999." in said, said
    said = _say(live, f"is this related to #{inc.id}?", channel="C0INCIDENTS", thread=inc.card_ts)  # itself
    assert "Related to what? Name both" in said, said
    said = _say(live, f"is this related to #{inc.id}?")  # away from any card: which "this"?
    assert "Related to what? Name both" in said, said


def test_the_related_command(live: Live) -> None:
    web, api = open_incidents(live, "checkout-web 502s on cart sev2", "payments-api 5xx spike sev2")
    assert live.driver.command("/incident", f"related {web.id} #{api.id}", user="U0BOB",
                               channel="C0OPS").status_code == 200
    live.drain()
    said = live.standin.messages("C0OPS")[-1]["text"]
    assert f"#{web.id} and #{api.id}: Likely related: checkout-web depends on payments-api" in said, said
    assert live.driver.command("/incident", f"related {web.id}", user="U0BOB", channel="C0OPS").status_code == 200
    live.drain()
    assert "Related to what? Name both" in live.standin.messages("C0OPS")[-1]["text"]
