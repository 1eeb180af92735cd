"""An incident's own channel (WARROOM_SLACK_OPEN_INCIDENT_CHANNELS=true) shows its state in the topic, set when
the state changes and not again when it does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.settings import Settings
from knowledge.models import Incident, TimelineEvent
from tests.conftest import Live, make_settings


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    return make_settings(tmp_path, standin, slack_open_incident_channels=True, warm_models=False)


def _declare(live: Live, title: str, sev: str) -> tuple[Incident, list[str]]:
    """`/incident new <title> <sev>` from #ops, the worker drained: the incident and its timeline's texts."""
    live.driver.command("/incident", f"new {title} {sev}", user="U0ERIN", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.title == title)).one()
        notes = [e.text for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id))]
    return inc, notes


def test_the_incident_channel_topic_follows_its_state(live: Live) -> None:
    live.driver.command("/incident", "new payments-api returning 503 sev2", user="U0ERIN", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.title == "payments-api returning 503")).one()
    assert inc.dedicated_channel and inc.channel_id

    def topics() -> list[str]:
        return [c.args["topic"] for c in live.standin.calls_to("conversations.setTopic")
                if c.args["channel"] == inc.channel_id]

    assert topics() == [f"SEV2 · open · payments-api · on it: nobody yet · #{inc.id} payments-api returning 503"]
    live.driver.command("/incident", "take", user="U0BOB", channel=inc.channel_id)  # in its channel: this one
    live.drain()
    live.driver.command("/incident", "status", user="U0BOB", channel=inc.channel_id)  # changes nothing
    live.driver.command("/incident", "sev 1", user="U0BOB", channel=inc.channel_id)
    live.drain()
    assert topics()[1:] == [
        f"SEV2 · acknowledged · payments-api · on it: <@U0BOB> · #{inc.id} payments-api returning 503",
        f"SEV1 · acknowledged · payments-api · on it: <@U0BOB> · #{inc.id} payments-api returning 503"]
    live.standin.refuse("conversations.setTopic", "missing_scope")  # Slack refuses: the card still updates
    live.driver.command("/incident", "resolve rolled back", user="U0BOB", channel=inc.channel_id)
    live.drain()
    with live.db.session() as s:
        done = s.get(Incident, inc.id)
        assert done is not None and done.status == "resolved"
        assert done.findings["channel_topic"].startswith("SEV1 · acknowledged")  # the refused one was not kept
    assert any("resolved" in c.args["text"] for c in live.standin.calls_to("chat.update"))


def test_a_taken_name_or_a_failed_invite_still_gives_one_channel_and_a_card(live: Live) -> None:
    """Slack answers ``name_taken`` (another install already opened ``inc-<id>-...``): the bot opens the channel
    under a suffixed name. Inviting the reporter fails (``user_not_found``): the channel and the card go on, the
    timeline says who to invite by hand, and no second channel is opened."""
    with live.db.session() as s:
        next_id = (s.scalar(select(func.max(Incident.id))) or 0) + 1
    live.standin.channels["C0OTHER"] = {"id": "C0OTHER", "name": f"inc-{next_id}-ledger-writes-time-out"}
    live.standin.refuse("conversations.invite", "user_not_found")
    inc, notes = _declare(live, "ledger writes time out", "sev2")
    assert inc.id == next_id and inc.dedicated_channel and inc.channel_id != "C0OTHER" and inc.card_ts
    created = [c for c in live.standin.calls_to("conversations.create") if c.response.get("ok")]
    assert len(created) == 1 and created[0].args["name"].startswith(f"inc-{next_id}-ledger-writes-time-out-")
    assert any("Could not invite <@U0ERIN>" in n and "user_not_found" in n for n in notes), notes
    assert any(m.get("ts") == inc.card_ts for m in live.standin.messages(inc.channel_id))


def test_a_refused_channel_still_gives_a_card_in_the_incident_channel(live: Live) -> None:
    """Workspaces that let only admins create channels answer ``restricted_action``: the incident is not held up
    (no retries, no missing card), its card goes to the configured incident channel and the timeline says why.
    A ``500`` from Slack is retried instead, and the channel is opened once Slack answers."""
    live.standin.refuse("conversations.create", "restricted_action")
    inc, notes = _declare(live, "search index lagging", "sev3")
    home = live.services.settings.slack_incident_channel
    assert inc.channel_id == home and not inc.dedicated_channel and inc.card_ts
    assert any(m.get("ts") == inc.card_ts for m in live.standin.messages(home))
    assert any("Could not open an incident channel (restricted_action)" in n for n in notes), notes
    assert live.standin.calls_to("conversations.invite") == []

    live.standin.fail("conversations.create", 500, count=1)
    live.driver.command("/incident", "new cache evictions spike sev3", user="U0ERIN", channel="C0OPS")
    live.drain(due_within_s=120)
    with live.db.session() as s:
        second = s.scalars(select(Incident).where(Incident.title == "cache evictions spike")).one()
    assert second.dedicated_channel and second.channel_id != home and second.card_ts


def test_a_deleted_card_or_an_archived_channel_does_not_stop_the_card(live: Live) -> None:
    """Someone deletes the card message (``message_not_found`` on update): the card is posted again in its
    channel. Someone archives the incident's channel while it is open (``is_archived``): the card moves to the
    incident channel, and the incident follows it (its reminders, its thread); the timeline says both."""
    live.driver.command("/incident", "new kafka consumer lag growing sev2", user="U0ERIN", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.title == "kafka consumer lag growing")).one()
    own, first_ts = inc.channel_id, inc.card_ts
    assert inc.dedicated_channel and own and first_ts
    live.standin.delete_message(own, first_ts)
    live.driver.command("/incident", "take", user="U0BOB", channel=own)
    live.drain()
    with live.db.session() as s:
        again = s.get(Incident, inc.id)
        assert again is not None and again.channel_id == own and again.card_ts not in (None, first_ts)
    card = [m for m in live.standin.messages(own) if m.get("ts") == again.card_ts]
    assert card and "<@U0BOB>" in str(card[0]["blocks"])

    live.standin.archive(own)  # archived channels are read-only: the next command comes from elsewhere
    live.driver.command("/incident", f"sev 1 #{inc.id}", user="U0BOB", channel="C0OPS")
    live.drain()
    home = live.services.settings.slack_incident_channel
    with live.db.session() as s:
        moved = s.get(Incident, inc.id)
        assert moved is not None and moved.channel_id == home and not moved.dedicated_channel
        notes = [e.text for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id))]
    assert any(m.get("ts") == moved.card_ts and "SEV1" in str(m["blocks"]) for m in live.standin.messages(home))
    assert any("The card was deleted in Slack" in n for n in notes), notes
    assert any(f"<#{own}> was archived; the card is now in <#{home}>" in n for n in notes), notes
    live.driver.command("/incident", f"resolve #{inc.id} consumer restarted", user="U0BOB", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        done = s.get(Incident, inc.id)
        assert done is not None and done.status == "resolved"
    assert any(m.get("ts") == moved.card_ts and "resolved" in str(m.get("text")) and m.get("updated")
               for m in live.standin.messages(home))


def test_someone_joining_the_incident_channel_is_caught_up(live: Live) -> None:
    """A responder paged in joins the incident's channel: only they get its status (state, roles, the latest
    of the timeline). Nobody else sees it; the bot's own joins and the people it invited get none; a channel of
    no open incident gets none."""
    inc, _ = _declare(live, "checkout latency doubled", "sev2")
    live.driver.command("/incident", "take", user="U0BOB", channel=inc.channel_id)
    live.drain()
    before = len(live.standin.messages(inc.channel_id))
    for user, inviter in (("U0NEWBIE", "U0BOB"), ("U0ERIN", "UWARROOM"), ("UWARROOM", "U0BOB")):
        live.driver.event({"type": "member_joined_channel", "user": user, "channel": inc.channel_id,
                           "channel_type": "C", "team": "T0WARROOM", "inviter": inviter})
    live.driver.event({"type": "member_joined_channel", "user": "U0NEWBIE", "channel": "C0RANDOM",
                       "channel_type": "C", "team": "T0WARROOM"})
    live.drain()
    new = live.standin.messages(inc.channel_id)[before:]
    (catch_up,) = new
    assert catch_up["ephemeral"] and catch_up["user"] == "U0NEWBIE"
    text = json.dumps(catch_up["blocks"])
    assert f"Catching up: Incident #{inc.id}: checkout latency doubled" in text and "<@U0BOB>" in text
    assert live.standin.messages("C0RANDOM") == []


def test_channel_names_keep_accented_letters_as_plain_ones(live: Live) -> None:
    inc, _ = _declare(live, "Zahlungsdienst überlastet, Café-API lent", "sev3")
    assert live.standin.channels[inc.channel_id]["name"] == f"inc-{inc.id}-zahlungsdienst-uberlastet-cafe-api-lent"


def test_one_person_who_cannot_be_invited_does_not_keep_the_other_out(live: Live) -> None:
    """Slack refuses a whole conversations.invite when one user in it cannot be invited. The incident's
    assignee left the company; its reporter is still invited, and the timeline names only the one left out."""
    live.standin.uninvitable["U0GONE"] = "user_not_found"
    with live.db.session() as s:
        inc = Incident(title="invoice export stuck", status="open", severity=3, source="slack",
                       created_by="U0ERIN", assignee="U0GONE")
        s.add(inc)
        s.flush()
        incident_id = inc.id
    live.services.runner.submit("incident.card", {"incident_id": incident_id}, f"card:{incident_id}:first")
    live.drain()
    invited = [c.args["users"] for c in live.standin.calls_to("conversations.invite") if c.response.get("ok")]
    assert invited == ["U0ERIN"], invited
    with live.db.session() as s:
        row = s.get(Incident, incident_id)
        assert row is not None and row.dedicated_channel and row.card_ts
        notes = [e.text for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == incident_id))]
    assert [n for n in notes if n.startswith("Could not invite")] == [
        "Could not invite <@U0GONE> to the incident channel (user_not_found); /invite them by hand"]


def test_resolved_incidents_channels_are_archived_a_week_later(live: Live) -> None:
    """With a channel per incident, the channel list grew by one per incident for ever. The maintenance run now
    archives the channel of an incident resolved `WARROOM_SLACK_ARCHIVE_RESOLVED_AFTER_H` (168) hours ago, after a
    last message there; once, whatever Slack answers; a reopened incident's card moves to the incident channel."""
    import datetime as dt

    from bot.maintenance import PRUNE
    from knowledge.models import utcnow

    refused, _ = _declare(live, "dns timeouts", "sev3")  # the first archived: Slack refuses it (see below)
    old, _ = _declare(live, "ingest lag growing", "sev2")
    recent, _ = _declare(live, "checkout-web 502s", "sev2")
    for inc in (old, recent, refused):
        live.driver.command("/incident", "resolve restarted the consumers", user="U0BOB", channel=inc.channel_id)
        live.drain()
    with live.db.session() as s:
        for inc, days in ((old, 8), (recent, 2), (refused, 9)):
            s.get(Incident, inc.id).resolved_at = utcnow() - dt.timedelta(days=days)  # type: ignore[union-attr]
    live.standin.refuse("conversations.archive", "restricted_action")  # a workspace policy forbids it
    for _ in range(2):  # the second run archives nothing again, and asks Slack nothing again
        live.services.runner.submit(PRUNE, {}, f"test-run-{_}")  # what the planned run does when its slot comes
        live.drain(due_within_s=60)
    archived = [c.args["channel"] for c in live.standin.calls_to("conversations.archive")]
    assert archived == [refused.channel_id, old.channel_id], archived
    assert old.channel_id in live.standin.archived and recent.channel_id not in live.standin.archived
    last = live.standin.messages(old.channel_id)[-1]["text"]
    assert f"Incident #{old.id} was resolved 8 days ago: archiving this channel" in last
    assert f"/kb/postmortems/{old.id}" in last
    assert f"`/incident reopen {old.id}`" in last
    with live.db.session() as s:
        notes = {i: [e.text for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == i,
                                                                            TimelineEvent.kind == "channel"))]
                 for i in (old.id, recent.id, refused.id)}
        outcome = s.get(Incident, refused.id).findings["channel_archived"]["outcome"]  # type: ignore[union-attr]
    assert outcome == "refused: restricted_action"
    assert notes[old.id] == [f"Channel <#{old.channel_id}> archived, 8 days after the incident was resolved"], notes
    assert notes[recent.id] == [] and "Slack said restricted_action" in notes[refused.id][0]
    # It is back: reopened, its card goes to the incident channel (the archived one refuses posts)
    live.driver.command("/incident", f"reopen {old.id} the lag is back", user="U0BOB", channel="C0OPS")
    live.drain(due_within_s=60)
    with live.db.session() as s:
        back = s.get(Incident, old.id)
        assert back is not None and back.status == "open"
        assert back.channel_id == live.services.settings.slack_incident_channel


def test_people_called_in_are_invited_to_the_incident_channel(live: Live) -> None:
    """"Bring in @alice and @iris" in the incident's channel, `/incident invite <id> @dan` elsewhere: each is invited
    to its channel (one call each), on the timeline; whoever Slack refuses is said in the channel."""
    inc, _ = _declare(live, "ingest lag growing", "sev2")
    live.standin.uninvitable["U0IRIS"] = "user_is_restricted"
    before = len(live.standin.calls_to("conversations.invite"))
    live.driver.mention("bring in <@U0ALICE> and <@U0IRIS>", user="U0ERIN", channel=inc.channel_id)
    live.driver.command("/incident", f"invite {inc.id} <@U0DAN|dan>", user="U0ERIN", channel="C0OPS")
    live.drain()
    calls = [(c.args["channel"], c.args["users"]) for c in live.standin.calls_to("conversations.invite")[before:]]
    assert sorted(calls) == sorted((inc.channel_id, u) for u in ("U0ALICE", "U0IRIS", "U0DAN")), calls
    said = [m.get("text", "") for m in live.standin.messages(inc.channel_id)]
    assert any("Could not invite <@U0IRIS> (user_is_restricted)" in t for t in said), said
    with live.db.session() as s:
        notes = [e.text for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id,
                                                                       TimelineEvent.kind == "invited"))]
    assert f"<@U0ERIN> invited <@U0ALICE>, <@U0IRIS> to <#{inc.channel_id}>" in notes
    assert f"<@U0ERIN> invited <@U0DAN> to <#{inc.channel_id}>" in notes and len(notes) == 3
    live.driver.command("/incident", f"invite {inc.id}", user="U0ERIN", channel="C0OPS")
    live.drain()
    assert "Invite whom?" in live.standin.messages("C0OPS")[-1].get("text", "")
