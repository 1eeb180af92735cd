"""Whether an incident can be closed, asked under its card: "can we close this?" and "are we done?" went to the
knowledge base (a postmortem of another incident), and "it's fixed", "all clear", "back to normal" got the help's "I
did not act on that". Now they answer with what still fires, what was recorded and how to resolve it, with the
Resolve button; the words themselves resolve nothing (resolving drafts the postmortem and tells PagerDuty)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from knowledge.models import Incident, TimelineEvent
from tests.conftest import Live, open_incidents
from tests.test_incident_words import _say
from tests.test_risk_slack import _post_alert

_PAYLOAD = json.loads((Path(__file__).parent / "payloads" / "alertmanager.json").read_text())


def _buttons(live: Live, channel: str) -> list[tuple[str, str]]:
    blocks = live.standin.messages(channel)[-1].get("blocks") or []
    return [(e["action_id"], e["value"]) for b in blocks if b.get("type") == "actions" for e in b["elements"]]


def test_closing_is_checked_against_the_alerts_still_firing_and_resolves_only_on_the_button(live: Live) -> None:
    _post_alert(live, _PAYLOAD)
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.source == "alertmanager")).one()
        inc_id, channel, card = inc.id, inc.channel_id, inc.card_ts
    said = _say(live, "can we close this?", channel=channel, thread=card)
    assert f"Incident #{inc_id}: ready to close?" in said and "Not yet: 2 of its alert(s) still firing" in said, said
    assert "*HighErrorRate* on payments-api: 2 firing since" in said and "No mitigation recorded" in said
    assert ("incident:resolve", str(inc_id)) in _buttons(live, channel)
    assert "mitigated" in _say(live, "mitigated: rolled back to v41", channel=channel, thread=card)
    resolved = {**_PAYLOAD, "status": "resolved", "alerts": [{**a, "status": "resolved",
                                                             "endsAt": "2026-11-23T10:20:00.000Z"}
                                                            for a in _PAYLOAD["alerts"]]}
    _post_alert(live, resolved)
    live.drain()
    for words in ("it's fixed", "all clear now", "that fixed it!", "we're back to normal"):
        said = _say(live, words, channel=channel, thread=card)
        assert f"It sounds fixed, but I have not resolved incident #{inc_id}." in said, (words, said)
        assert "Nothing linked to it is firing (2 alert(s) resolved" in said and "Mitigated " in said, said
    with live.db.session() as s:
        assert s.get(Incident, inc_id).status == "mitigated"
        assert not s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc_id,
                                                         TimelineEvent.kind == "resolve")).all()
    assert live.driver.click("incident:resolve", str(inc_id), user="U0BOB", channel=channel).status_code == 200
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, inc_id).status == "resolved"
    assert f"Incident #{inc_id} is already resolved" in _say(live, "are we done?", channel=channel, thread=card)


@pytest.mark.parametrize("words", ["are we done?", "can we resolve it?", "ready to close?", "is this done?",
                                   "is it safe to close now?"])
def test_asked_whether_it_can_be_closed_with_no_alerts_linked(live: Live, words: str) -> None:
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, words, channel=inc.channel_id, thread=inc.card_ts)
    assert f"Incident #{inc.id} is open (SEV2" in said and "No alerts are linked to it, so I cannot tell" in said, said
    assert "It sounds fixed" not in said
    assert ("incident:resolve", str(inc.id)) in _buttons(live, inc.channel_id)
    # by number from anywhere: the same answer
    assert f"Incident #{inc.id}: ready to close?" in _say(live, f"can we close #{inc.id}?")


def test_words_that_only_look_alike_are_not_taken_for_it(live: Live) -> None:
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    for words in ("resolve the DNS issue first", "is it fixed in v42 or do we need a hotfix?",
                  "are we done with the retro doc?", "all good points, but what about the cache?"):
        said = _say(live, words, channel=inc.channel_id, thread=inc.card_ts)
        assert "ready to close?" not in said, (words, said)
    # and "resolved" still resolves, as before
    assert f"Incident #{inc.id} resolved after" in _say(live, "resolved", channel=inc.channel_id, thread=inc.card_ts)
