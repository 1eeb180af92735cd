"""Which incidents still owe a postmortem ("which incidents still need a postmortem?", "missing postmortems",
`/postmortem list owed`): these got the open incidents, or every postmortem. Through the real app: signed commands and
mentions in, the postmortem drafts written by the worker, the Slack stand-in and the database checked."""

from __future__ import annotations

from sqlalchemy import delete

from knowledge.models import Postmortem
from tests.conftest import Live, open_incidents
from tests.test_incident_words import _say


def _command(live: Live, command: str, text: str) -> str:
    before = len(live.standin.messages("C0OPS"))
    assert live.driver.command(command, text, user="U0ERIN", channel="C0OPS").status_code == 200
    live.drain()
    return " || ".join(m["text"] for m in live.standin.messages("C0OPS")[before:])


def test_resolved_incidents_without_a_published_postmortem_are_listed(live: Live) -> None:
    api, ingest, noise, dns, still = open_incidents(live, "payments-api 5xx spike sev2", "ingest lag growing sev3",
                                                    "disk alert on a test box sev4", "dns lookups failing sev1",
                                                    "checkout-web slow sev3")
    said = _say(live, "which incidents still need a postmortem?")
    assert "None: every incident resolved in the last 90 days has a published postmortem" in said, said
    for inc in (api, ingest, dns):
        assert "resolved" in _command(live, "/incident", f"resolve {inc.id} rolled back")
    assert "No postmortem" in _command(live, "/incident", f"resolve {noise.id} false alarm")
    assert "published" in _command(live, "/postmortem", f"publish {dns.id}")
    with live.db.session() as s:  # the draft job failed for ingest, say: no postmortem at all
        s.execute(delete(Postmortem).where(Postmortem.incident_id == ingest.id))
    said = _say(live, "which incidents still need a postmortem?")
    assert "knowledge base" not in said and "Open incidents" not in said, said
    assert "2 of 3 incident(s) resolved in the last 90 days have no published postmortem" in said, said
    assert (f"*#{api.id}* SEV2 payments-api 5xx spike (payments-api, resolved today): draft v1 not published: "
            f"`/postmortem show {api.id}`, then `/postmortem publish {api.id}`") in said
    assert (f"*#{ingest.id}* SEV3 ingest lag growing (ingest, resolved today): no postmortem: "
            f"`/postmortem draft {ingest.id}`") in said
    assert said.index(f"*#{api.id}*") < said.index(f"*#{ingest.id}*")  # the most severe first
    for gone in (dns, noise, still):  # published; a false alarm owes none; still open
        assert f"*#{gone.id}*" not in said
    said = _say(live, "postmortems due for payments")  # a team: its services
    assert "1 of 1 incident(s) resolved in the last 90 days on the payments team's services" in said, said
    assert f"*#{api.id}*" in said and f"*#{ingest.id}*" not in said
    said = _command(live, "/postmortem", "list owed ingest")
    assert "1 of 1 incident(s)" in said and "on ingest" in said, said
    assert "1 of 1 incident(s)" in _command(live, "/postmortem", "owed ingest")  # the same, shorter
    said = _command(live, "/postmortem", "list owed paymnts")  # a word it cannot read: said, not every team's list
    assert "I cannot read `paymnts`: `/postmortem list owed [service or team]`" in said, said
    assert "published" in _command(live, "/postmortem", f"publish {api.id}")
    said = _say(live, "missing postmortems")
    assert "1 of 3 incident(s)" in said and f"*#{api.id}*" not in said, said
