"""More questions asked under an incident's card, through the real app (signed mentions in, the Slack stand-in read).
Before, "who was paged for #113?", "has anyone been paged?", "tl;dr?", "what's the timeline?" and "is there a
dashboard for this?" went to the knowledge base ("I don't know", or a postmortem of another incident), and "draft a
status update" showed the incident's status instead of a draft."""

from __future__ import annotations

from tests.conftest import Live, open_incidents
from tests.test_incident_words import _say


def test_who_was_called_about_an_incident(live: Live) -> None:
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    here = {"channel": inc.channel_id, "thread": inc.card_ts}
    said = _say(live, f"who was paged for #{inc.id}?")
    assert f"Nobody has been paged through me for incident #{inc.id} (SEV2, open). Not acknowledged yet." in said, said
    assert "Paging storage" in _say(live, f"page the storage team about #{inc.id}")
    for words in ("has anyone been paged?", "did we page anyone?", "who got paged?", "who was notified about this?"):
        said = _say(live, words, **here)
        assert f"Incident #{inc.id}: 1 call(s) for help, reaching <@U0JONAS>. Not acknowledged yet." in said, (words,
                                                                                                          said)
        assert "<@U0BOB> paged storage: <@U0JONAS>" in said
    _say(live, "ack", **here)
    assert "Acknowledged " in _say(live, f"who was paged for #{inc.id}?")


def test_summary_timeline_draft_and_dashboards_in_words(live: Live) -> None:
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    here = {"channel": inc.channel_id, "thread": inc.card_ts}
    for words in ("tl;dr?", "tldr", "what's the situation?"):
        said = _say(live, words, **here)
        assert f"Incident #{inc.id}: payments-api 503 errors at checkout" in said and "*Status*: open" in said, said
    said = _say(live, "what's the timeline?", **here)
    assert f"Timeline of incident #{inc.id}" in said and "Declared by <@U0ERIN>" in said, said
    said = _say(live, "draft a status update", **here)
    assert f"Status page draft for incident #{inc.id}" in said and "Investigating: we are investigating" in said, said
    for words in ("is there a dashboard for this?", "any dashboards?", "dashboard link?"):
        assert f"No links on incident #{inc.id} yet." in _say(live, words, **here), words
    _say(live, "dashboard: https://grafana.example.com/d/payments", **here)
    assert "https://grafana.example.com/d/payments" in _say(live, "is there a dashboard for this?", **here)
