"""An incident's title and service after it opened (`/incident rename`, `/incident service`, in words too), through
the real app: signed commands and mentions in, the Slack stand-in and the database checked."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from bot.render import blocks_to_text
from knowledge.models import Incident, TimelineEvent
from tests.conftest import Live, open_incidents


def _mention(live: Live, text: str, *, user: str = "U0BOB", channel: str = "C0OPS", thread: str | None = None) -> str:
    before = len(live.standin.messages(channel))
    ts = f"{time.time():.6f}"
    event = {"type": "app_mention", "user": user, "ts": ts, "event_ts": ts, "text": f"<@UWARROOM> {text}",
             "channel": channel, **({"thread_ts": thread} if thread else {})}
    assert live.driver.event(event).status_code == 200
    live.drain()
    return " ".join(m["text"] for m in live.standin.messages(channel)[before:])


def _cmd(live: Live, text: str, user: str = "U0BOB") -> str:
    before = len(live.standin.messages("C0OPS"))
    assert live.driver.command("/incident", text, user=user, channel="C0OPS").status_code == 200
    live.drain()
    return " ".join(m["text"] for m in live.standin.messages("C0OPS")[before:])


def _incident(live: Live, incident_id: int) -> Incident:
    with live.db.session() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        s.expunge(inc)
        return inc


def test_an_incident_is_renamed_and_moved_to_the_service_it_is_really_on(live: Live) -> None:
    """An alert's rule name and labels were an incident's title and service for good: nothing changed them. Now a
    rename and a move are commands and sentences, each on the timeline with the old value and an undo; a move runs
    triage again (the new service's runbooks and people), names the team's on-call, and refreshes the card; a
    service nobody knows, a team, an empty title and a guest are refused; sentences that only look like it
    ("this is a sev1 incident", "this is on fire", "this is a duplicate incident") are not moves."""
    (inc,) = open_incidents(live, "TLS handshake errors on the edge sev2")
    iid = inc.id
    before = inc.findings or {}
    assert inc.service_name is None
    assert "covers service ingress" not in str(before.get("runbooks"))

    renamed = _cmd(live, f"rename {iid} edge TLS: expired certificate on ingress")
    assert (f"Incident #{iid} is now *edge TLS: expired certificate on ingress* (was \"TLS handshake errors on the "
            "edge\")") in renamed
    assert f"`/incident rename {iid} TLS handshake errors on the edge`" in renamed
    assert "Usage: `/incident rename [id] <new title>`" in _cmd(live, f"rename {iid}")
    assert "is called that already" in _cmd(live, f"rename {iid} edge TLS: expired certificate on ingress")

    moved = _cmd(live, f"service {iid} ingress because the edge is ingress")
    assert f"Incident #{iid} is on *ingress* now (was unknown). ingress is the platform team's: on call now <@" in moved
    assert "is on ingress already" in _cmd(live, f"service {iid} ingress")
    assert "Did you mean `postgres-main`?" in _cmd(live, f"service {iid} postgres")
    assert "`storage` is a team; an incident is on a service: one of theirs (`postgres-main`, `redis-cache`)" in _cmd(
        live, f"service {iid} storage")
    assert "I know no service called `banana`. Known services: `auth-service`" in _cmd(live, f"service {iid} banana")
    assert "Which service?" in _cmd(live, f"service {iid}")
    after = _incident(live, iid)
    assert after.title == "edge TLS: expired certificate on ingress" and after.service_name == "ingress"
    assert after.service_id is not None
    findings = after.findings or {}
    assert findings["triaged_at"] >= before["triaged_at"]
    assert "covers service ingress" in str(findings["runbooks"]), findings["runbooks"]  # the new service's runbooks
    assert findings["routing"]["data"]["service"] == "ingress"
    card = [m for m in live.standin.messages(after.channel_id or "") if m.get("ts") == after.card_ts]
    updates = [c.args for c in live.standin.calls_to("chat.update") if c.args.get("ts") == after.card_ts]
    shown = blocks_to_text(updates[-1].get("blocks") or []) if updates else blocks_to_text(card[0]["blocks"])
    assert "edge TLS: expired certificate on ingress" in shown and "ingress" in shown

    # in words: a number, or under the card; the reason after the name is kept
    assert f"Incident #{iid} is on *dns* now (was ingress)" in _mention(live, f"move #{iid} to dns")
    said = _mention(live, "it's actually on ingress, not dns: wrong label on the alert",
                    channel=after.channel_id or "", thread=after.card_ts)
    assert f"Incident #{iid} is on *ingress* now (was dns)" in said
    assert "is now *certificate expired* (was" in _mention(live, f"rename #{iid} to \"certificate expired\"")
    # look-alikes are not moves
    assert f"Incident #{iid} is now SEV1 (was SEV2)" in _mention(live, "this is a sev1 incident",
                                                                   channel=after.channel_id or "",
                                                                   thread=after.card_ts)
    _mention(live, "this is on fire", channel=after.channel_id or "", thread=after.card_ts)
    _mention(live, "this is a duplicate incident", channel=after.channel_id or "", thread=after.card_ts)
    assert _incident(live, iid).service_name == "ingress"
    # guests cannot change it
    live.standin.users.update({"U0GUEST": {"is_ultra_restricted": True}})
    _cmd(live, f"rename {iid} mine now", user="U0GUEST")
    _cmd(live, f"service {iid} dns", user="U0GUEST")
    refused = [json.dumps(m["blocks"]) for m in live.standin.messages("C0OPS") if m.get("user") == "U0GUEST"
               and m["ephemeral"]]
    assert ["A guest account cannot rename" in r for r in refused] == [True, False], refused
    assert "A guest account cannot move incidents here" in refused[1], refused
    final = _incident(live, iid)
    assert final.title == "certificate expired" and final.service_name == "ingress"
    with live.db.session() as s:
        rows = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == iid, TimelineEvent.kind.in_(
            ("rename", "service"))).order_by(TimelineEvent.id))
        events = [(e.kind, e.text) for e in rows]
    assert events == [
        ("rename", "Renamed by <@U0BOB> (was \"TLS handshake errors on the edge\")"),
        ("service", "Service unknown -> ingress by <@U0BOB>: the edge is ingress"),
        ("service", "Service ingress -> dns by <@U0BOB>"),
        ("service", "Service dns -> ingress by <@U0BOB>: wrong label on the alert"),
        ("rename", "Renamed by <@U0BOB> (was \"edge TLS: expired certificate on ingress\")"),
    ], events
