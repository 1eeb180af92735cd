"""Who comes after the person on call: "what's the escalation policy for payments-api?", "who's the secondary for
payments?", "who's the backup?" under an incident's card. They went to the knowledge base (an old postmortem's
passage) or to the help."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.render import blocks_to_text
from knowledge.models import Service
from tests.conftest import Live, open_incidents
from tests.test_rotations import _only_payments_shifts


def _ask(live: Live, text: str, *, channel: str = "C0OPS", thread: str | None = None) -> str:
    before = len(live.standin.messages(channel))
    event = live.driver.mention_event(text, "U0ERIN", channel)
    assert live.driver.event({**event, **({"thread_ts": thread} if thread else {})}).status_code == 200
    live.drain(due_within_s=60)
    return " || ".join(blocks_to_text(m.get("blocks") or []) or m.get("text", "")
                       for m in live.standin.messages(channel)[before:])


def test_the_escalation_of_a_service_a_team_and_the_incident_under_the_card(live: Live) -> None:
    now = _only_payments_shifts(live, (("U0BOB", -1, 10), ("U0ALICE", 10, 40)))
    with live.db.session() as s:
        svc = s.scalar(select(Service).where(Service.name == "payments-api"))
        svc.escalation = ["U0ALICE", "U0LENA", "U0IRIS", "U0NOBODY"]  # Lena is deactivated; U0NOBODY is unknown
    said = _ask(live, "what's the escalation policy for payments-api?")
    assert "Escalation: payments-api" in said, said
    first = said.index("1. On call for *payments*: <@U0BOB> (Bob Okafor) until ")
    then = said.index("then <@U0ALICE> (Alice Moreau) from ")
    chain = [said.index(x) for x in ("2. <@U0ALICE> (Alice Moreau)", "3. <@U0LENA> (Lena Fischer) _(deactivated: "
                                     "skipped)_", "4. <@U0IRIS> (Iris Novak)")]
    assert first < then < chain[0] < chain[1] < chain[2], said
    assert "U0NOBODY" not in said and f"until {now + dt.timedelta(hours=10):%a %d %b}" in said
    for q in ("who's the secondary for payments?", "who is the backup on call for payments-api?",
              "escalation chain of payments-api"):
        assert "2. <@U0ALICE> (Alice Moreau)" in _ask(live, q), q
    # another team's service without a chain says so
    said = _ask(live, "who is the backup for ingest?")
    assert "Escalation: ingest" in said and "No escalation chain in the catalogue" in said, said
    # under an incident's card: its service
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _ask(live, "who's the secondary?", channel=inc.channel_id, thread=inc.card_ts)
    assert "Escalation: payments-api" in said and "2. <@U0ALICE>" in said, said
    # nothing named, not under a card: asked which
    assert "Escalation of which service?" in _ask(live, "what's the escalation policy?")
