"""The postmortem skill through the real app: signed slash commands and buttons in, Slack stand-in out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.standin.driver import SlackDriver
from bot.standin.harness import LiveServer
from bot.standin.server import SlackStandIn
from knowledge import postmortems as store
from knowledge.db import Database
from knowledge.incident_history import load_history
from knowledge.models import Job
from knowledge.seed import seed
from skills.postmortem_eval import SECRETS, expand, load_scenarios
from tests.conftest import Live, make_settings
from tests.test_postmortem_llm import FakeOpenAI

SCENARIOS = {s["name"]: s for s in load_scenarios()}
CHANNEL = "C0INC0042"


@pytest.fixture
def live(tmp_path: Path, standin: SlackStandIn) -> Iterator[Live]:
    """Like the shared ``live`` fixture, without warming other skills' models (nothing here needs them)."""
    settings = make_settings(tmp_path, standin, warm_models=False)
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as s:
        seed(s)
    with LiveServer(settings) as srv:
        yield Live(srv, standin, SlackDriver(srv.url, settings.slack_signing_secret.get_secret_value()))


def _seed(db: Database, name: str = "pool-exhaustion-runbook") -> int:
    with db.session() as s:
        return load_history(s, expand(SCENARIOS[name]), channel=CHANNEL)


def _uploaded(standin: SlackStandIn) -> list[tuple[str, bytes]]:
    return [(f.get("name") or "", f.get("content") or b"") for f in standin.files.values()]


def _texts(standin: SlackStandIn, channel: str) -> list[str]:
    out = []
    for m in standin.messages(channel):
        blocks = " ".join(str(b) for b in m.get("blocks") or [])
        out.append(f"{m.get('text', '')} {blocks}")
    return out


def test_draft_buttons_and_publish_through_slack(live: Live) -> None:
    iid = _seed(live.db)
    assert live.driver.command("/postmortem", f"draft {iid}", user="U0ALICE", channel=CHANNEL).status_code == 200
    live.drain()
    msgs = live.standin.messages(CHANNEL)
    card = msgs[0]
    assert f"Postmortem draft for incident #{iid}" in card["text"]
    buttons = [e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["postmortem:publish", "postmortem:regenerate",
                                                  "postmortem:confirm_root_cause"]
    assert all(b["value"] == str(iid) for b in buttons)
    assert f"/kb/postmortems/{iid}|Open it in the knowledge base" in str(card["blocks"])
    files = _uploaded(live.standin)
    assert files and files[0][0] == f"postmortem-incident-{iid}-v1.md"
    md = files[0][1].decode()
    assert "## Action items" in md and "pgbouncer" in md
    assert not any(secret in md for secret in SECRETS)
    assert not any(secret in t for t in _texts(live.standin, CHANNEL) for secret in SECRETS)

    # Same facts again: no new version.
    live.driver.command("/postmortem", f"draft {iid}", user="U0ALICE", channel=CHANNEL)
    live.drain()
    live.driver.click("postmortem:confirm_root_cause", str(iid), user="U0BOB", channel=CHANNEL,
                      message_ts=card["ts"])
    live.drain()
    live.driver.click("postmortem:publish", str(iid), user="U0ALICE", channel=CHANNEL, message_ts=card["ts"])
    live.drain()
    with live.db.session() as s:
        versions = store.history(s, incident_id=iid)
        assert [(p.version, p.status) for p in versions] == [(1, "draft"), (2, "edited"), (3, "published")]
        assert versions[1].fields["root_cause_confirmed"] is True
        assert "**Confirmed:**" in versions[2].markdown and versions[2].published_at is not None
        synced = s.scalars(select(Job).where(Job.kind == "index.sync")).all()
    assert any("published" in t for t in _texts(live.standin, CHANNEL))
    assert "index.sync" in live.services.runner.handlers
    assert synced, "publishing must submit index.sync (so similar-incident search finds it)"
    # The loop closes: the published postmortem is now in the knowledge search.
    from knowledge.search import search

    hits = search(live.services.ctx, text="replicas doubled pool size connection slots pgbouncer",
                  kinds=("postmortem",), k=10)
    assert any(h.incident_id == iid and h.postmortem_id == versions[2].id for h in hits)

    live.driver.command("/postmortem", f"export {iid}", user="U0ALICE", channel=CHANNEL)
    live.drain()
    assert any(name == f"postmortem-incident-{iid}-v3.md" for name, _ in _uploaded(live.standin))

    # Published by mistake (the button sits on the draft): it could not be taken back, and search kept finding it.
    published = next(m for m in live.standin.messages(CHANNEL) if "published" in m.get("text", "")
                     and any(b["type"] == "actions" for b in m.get("blocks") or []))
    (undo,) = [e for b in published["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert (undo["action_id"], undo["value"]) == ("postmortem:unpublish", str(iid))
    live.driver.click("postmortem:unpublish", str(iid), user="U0ALICE", channel=CHANNEL)
    live.drain(due_within_s=60)
    assert f"Postmortem for incident #{iid} withdrawn" in live.standin.messages(CHANNEL)[-1]["text"]
    with live.db.session() as s:
        assert [(p.version, p.status) for p in store.history(s, incident_id=iid)][-1] == (4, "withdrawn")
    hits = search(live.services.ctx, text="replicas doubled pool size connection slots pgbouncer",
                  kinds=("postmortem",), k=10)
    assert not any(h.incident_id == iid for h in hits), "a withdrawn postmortem is out of search"
    live.driver.click("postmortem:unpublish", str(iid), user="U0ALICE", channel=CHANNEL)  # a second click
    live.drain(due_within_s=60)
    assert "already withdrawn" in live.standin.messages(CHANNEL)[-1]["text"]
    live.driver.command("/postmortem", f"publish {iid}", user="U0ALICE", channel=CHANNEL)
    live.drain(due_within_s=60)
    hits = search(live.services.ctx, text="replicas doubled pool size connection slots pgbouncer",
                  kinds=("postmortem",), k=10)
    assert any(h.incident_id == iid for h in hits), "published again: found again"
    with live.db.session() as s:
        top = store.latest(s, incident_id=iid)
        assert top is not None and (top.version, top.status) == (5, "published")
        assert "_Status: published" in top.markdown
    other = _seed(live.db, "minimal-imported")
    live.driver.command("/postmortem", f"unpublish {other} wrong root cause", user="U0ALICE", channel=CHANNEL)
    live.drain()
    assert "is not published: nothing to take back" in live.standin.messages(CHANNEL)[-1]["text"]


def test_edit_show_and_draft_job(live: Live) -> None:
    iid = _seed(live.db, "dns-reported-by-human")
    live.services.runner.submit("postmortem.draft", {"incident_id": iid, "channel": CHANNEL, "thread_ts": None})
    live.drain()
    assert any(f"Postmortem draft for incident #{iid}" in m["text"] for m in live.standin.messages(CHANNEL))
    live.driver.command("/postmortem", f"edit #{iid} went_well: Dev Sharma reported it within minutes.",
                        user="U0DEV", channel=CHANNEL)
    live.drain()
    live.driver.command("/postmortem", "show", user="U0DEV", channel=CHANNEL)  # the channel's incident
    live.driver.mention(f"what does the postmortem for incident #{iid} say?", user="U0DEV", channel="C0OTHER")
    live.drain()
    assert any(f"Postmortem for incident #{iid}" in m["text"] for m in live.standin.messages("C0OTHER"))
    with live.db.session() as s:
        top = store.latest(s, incident_id=iid)
        assert top is not None and top.status == "edited" and top.author == "U0DEV"
        assert "Dev Sharma reported it within minutes." in top.markdown
    assert any(f"Postmortem for incident #{iid}" in m["text"] for m in live.standin.messages(CHANNEL))
    live.driver.command("/postmortem", "list drafts", user="U0DEV", channel="C0LIST")
    live.driver.mention("which postmortems are still drafts?", user="U0DEV", channel="C0LIST2")
    live.driver.command("/postmortem", "list", user="U0DEV", channel="C0LIST3")
    live.driver.command("/postmortem", "list published ingress", user="U0DEV", channel="C0LIST4")  # was: all 12
    live.driver.command("/postmortem", "list platform", user="U0DEV", channel="C0LIST5")  # a team's services
    live.drain()
    (ingress,) = _texts(live.standin, "C0LIST4")
    assert "2 postmortem(s) on ingress, 0 not published yet" in ingress and "#112>" in ingress and "#103>" in ingress
    (platform,) = _texts(live.standin, "C0LIST5")
    assert "4 postmortem(s) on the platform team's services, 1 not published yet" in platform and "#106>" in platform
    for channel in ("C0LIST", "C0LIST2"):  # the edited draft, not the 12 published ones of the sample world
        (listing,) = _texts(live.standin, channel)
        assert "1 postmortem(s), 1 not published yet" in listing and f"postmortem of #{iid}> v2 [edited]" in listing
    (everything,) = _texts(live.standin, "C0LIST3")
    assert "13 postmortem(s), 1 not published yet" in everything
    assert everything.index(f"#{iid}> v2 [edited]") < everything.index("[published]")  # drafts first


def test_bad_input_gets_a_clear_message(live: Live) -> None:
    iid = _seed(live.db, "minimal-imported")
    cases = [("frobnicate 1", "Usage"), ("draft abc", "is not an incident number"),
             ("draft 99999", "There is no incident #99999"), ("show 99999", "has no postmortem yet"),
             (f"publish {iid}", "Nothing to publish"), (f"edit {iid} colour: blue", "Usage"),
             ("draft", "Which incident?"),
             # the second incident and the format were dropped: one draft, and Markdown, with nothing said
             (f"draft {iid} 102", f"One incident at a time: `/postmortem draft {iid}`, then `/postmortem draft 102`"),
             (f"export {iid} as pdf", "I export postmortems as Markdown only, not `pdf`")]
    for text, _expected in cases:
        resp = live.driver.command("/postmortem", text, user="U0ALICE", channel="C0ELSEWHERE")
        assert resp.status_code == 200
    live.driver.click("postmortem:publish", "not-a-number", user="U0ALICE", channel="C0ELSEWHERE")
    live.driver.click("postmortem:explode", str(iid), user="U0ALICE", channel="C0ELSEWHERE")
    live.services.runner.submit("postmortem.draft", {"channel": "C0ELSEWHERE"})
    live.drain()
    said = [m["text"] for m in live.standin.messages("C0ELSEWHERE")]
    assert all(m.get("ephemeral") for m in live.standin.messages("C0ELSEWHERE"))
    for _, expected in cases:
        assert any(expected in t for t in said), (expected, said)
    assert any("does not name an incident" in t for t in said)
    assert any("Unknown postmortem action" in t for t in said)
    assert not any("error id" in t for t in said)


def test_llm_writer_through_the_app(tmp_path: Path, standin: SlackStandIn) -> None:
    fake = FakeOpenAI()
    try:
        fake.answers.append(("ok", {"summary": "Kemal Aydin raised the CoreDNS CPU limit to 500m after 52 min. "
                                               "It cost 4812 dollars."}))
        settings = make_settings(tmp_path, standin, llm_base_url=fake.url, llm_model="fake-model",
                                 llm_api_key="sk-local-test", warm_models=False)
        db = Database(settings.database_url)
        db.upgrade()
        with db.session() as s:
            seed(s)
        iid = _seed(db, "dns-reported-by-human")
        with LiveServer(settings) as srv:
            driver = SlackDriver(srv.url, settings.slack_signing_secret.get_secret_value())
            driver.command("/postmortem", f"draft {iid}", user="U0KEMAL", channel=CHANNEL)
            assert srv.drain(30)
        card = standin.messages(CHANNEL)[0]
        assert "checker removed 1 unsupported sentence" in str(card["blocks"])
        with db.session() as s:
            top = store.latest(s, incident_id=iid)
            assert top is not None and top.writer == "llm"
            assert "Kemal Aydin raised the CoreDNS CPU limit to 500m after 52 min." in top.markdown
            assert "4812" not in top.markdown
        assert fake.requests and fake.requests[0]["auth"] == "Bearer sk-local-test"
    finally:
        fake.close()


def test_resolve_drafts_the_postmortem_end_to_end(tmp_path: Path, standin: SlackStandIn) -> None:
    """/incident new, talk and pin in the incident channel, /incident resolve: the draft arrives."""
    settings = make_settings(tmp_path, standin, slack_open_incident_channels=True, warm_models=False)
    db = Database(settings.database_url)
    db.upgrade()
    from knowledge.models import Incident, SlackMessage

    with db.session() as s:
        seed(s)
    with LiveServer(settings) as srv:
        d = SlackDriver(srv.url, settings.slack_signing_secret.get_secret_value())
        assert d.command("/incident", "new payments-api 503s on checkout sev2", user="U0ALICE",
                         channel="C0INCIDENTS").status_code == 200
        assert srv.drain(60)
        with db.session() as s:
            inc = s.scalars(select(Incident).order_by(Incident.id.desc())).first()
            assert inc is not None and inc.channel_id
            iid, channel = inc.id, inc.channel_id
        d.command("/incident", f"ack {iid}", user="U0ALICE", channel=channel)
        for user, text in (("U0IRIS", "postgres-main at 497 connections. password=hunter2-secret"),
                           ("U0BOB", "the deploy doubled the replicas, that is the root cause"),
                           ("U0BOB", "we should put pgbouncer in front of postgres-main <@U0IRIS>")):
            assert d.message(text, user=user, channel=channel).status_code == 200
        # What Slack itself posts in an incident channel (people invited, the bot's topic, a pin) is not said by
        # anyone: not on the timeline, not in the postmortem. A reply also sent to the channel is.
        for subtype, user, text in (("channel_join", "U0CARA", "<@U0CARA> has joined the channel"),
                                    ("channel_topic", "UWARROOM", "set the channel topic: SEV2 open"),
                                    ("pinned_item", "U0ALICE", "pinned a message to this channel."),
                                    ("thread_broadcast", "U0CARA", "replicas back to 4, errors falling")):
            assert d.message(text, user=user, channel=channel, subtype=subtype).status_code == 200
        assert srv.drain(60)
        with db.session() as s:
            ts = s.scalar(select(SlackMessage.ts).where(SlackMessage.incident_id == iid,
                                                        SlackMessage.text.contains("root cause")))
        assert ts, "the intake records incident-channel messages"
        d.event({"type": "reaction_added", "user": "U0ALICE", "reaction": "pushpin",
                 "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": ts})
        assert srv.drain(60)
        d.command("/incident", f"resolve {iid} rolled back the deploy", user="U0ALICE", channel=channel)
        assert srv.drain(60)
    drafts = [m for m in standin.messages(channel) if f"Postmortem draft for incident #{iid}" in m.get("text", "")]
    assert len(drafts) == 1
    with db.session() as s:
        pm = store.latest(s, incident_id=iid)
        assert pm is not None and pm.status == "draft" and pm.version == 1
        md = pm.markdown
    assert "hunter2-secret" not in md
    assert "has joined the channel" not in md and "SEV2 open" not in md and "pinned a message" not in md
    assert "replicas back to 4, errors falling" in md
    assert "**key** [the deploy doubled the replicas" in md
    assert "- Services: payments-api" in md
    assert "rolled back the deploy" in md
    items = pm.fields["action_items"]
    assert [(a["owner"], "pgbouncer" in a["text"]) for a in items] == [("U0IRIS", True)]
    assert any(name.startswith(f"postmortem-incident-{iid}-") for name, _ in _uploaded(standin))


def test_action_items_are_listed_closed_and_kept_across_versions(live: Live) -> None:
    """`/postmortem actions` lists the follow-ups named in the incident; `done <incident>.<n>` closes one (on the
    timeline too); a regenerated and a published version keep the mark; words work; bad references are named."""
    from knowledge.models import TimelineEvent

    iid = _seed(live.db)
    d = live.driver

    def say(channel: str, text: str, user: str = "U0BOB", command: str = "/postmortem") -> str:
        before = len(live.standin.messages(channel))
        if command:
            assert d.command(command, text, user=user, channel=channel).status_code == 200
        else:
            assert d.mention(text, user=user, channel=channel).status_code == 200
        live.drain()
        return " ".join(_texts(live.standin, channel)[before:])

    assert "No open action items." in say("C0AI", "actions")  # no postmortem yet
    say(CHANNEL, f"draft {iid}", user="U0ALICE")
    listed = say("C0AI", "actions")
    assert "3 open action item(s), 0 done" in listed
    assert (f"*{iid}.1* put pgbouncer in front of postgres-main. I will take it (<@U0IRIS>; postmortem of #{iid} "
            "[draft]") in listed
    assert f"*{iid}.3* alert on connection saturation above 80%" in listed
    mine = say("C0AI", "actions mine", user="U0IRIS")
    assert "2 open action item(s) of yours" in mine and f"*{iid}.2*" not in mine  # Bob owns the CI check
    closed = say("C0AI", f"done {iid}.1", user="U0IRIS")
    assert (f"<@U0IRIS> closed *{iid}.1* put pgbouncer in front of postgres-main. I will take it. 2 open action "
            "item(s) left") in closed
    assert "was already closed by <@U0IRIS>" in say("C0AI", f"done #{iid}.1")
    # closed by mistake: there was no way back
    assert f"`/postmortem reopen {iid}.1`" in closed
    assert f"<@U0BOB> reopened *{iid}.1* put pgbouncer" in say("C0AI", f"reopen {iid}.1")
    assert "3 open action item(s), 0 done" in say("C0AI", "actions")
    assert "is open already" in say("C0AI", f"reopen {iid}.1")
    assert "Which action item?" in say("C0AI", "reopen banana")
    say("C0AI", f"done {iid}.1", user="U0IRIS")
    with live.db.session() as s:
        events = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == iid,
                                                       TimelineEvent.kind == "action_done")).all()
        said = [(e.actor, e.text[:46]) for e in events]
        assert said == [("U0IRIS", "Action item 1 done by <@U0IRIS>: put pgbouncer")] * 2
        reopened = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == iid,
                                                         TimelineEvent.kind == "action_reopened")).one()
        assert reopened.actor == "U0BOB" and "closed by <@U0IRIS>" in reopened.text
    # a regenerated draft and the published version keep the mark
    say(CHANNEL, f"regenerate {iid}", user="U0ALICE")
    say(CHANNEL, f"publish {iid}", user="U0ALICE")
    with live.db.session() as s:
        top = store.latest(s, incident_id=iid)
        assert top is not None and top.status == "published" and top.version >= 3
        assert [bool(a.get("done_at")) for a in top.fields["action_items"]] == [True, False, False]
    assert f"{iid}.1 put pgbouncer" in say(CHANNEL, f"show {iid}") and "(done by <@U0IRIS>)" in say(
        CHANNEL, f"show {iid}")
    everything = say("C0AI", "actions all")
    assert "2 open action item(s), 1 done" in everything and "~done by <@U0IRIS>~" in everything
    assert "2 open action item(s) on payments-api, 1 done" in say("C0AI", "actions payments-api")
    # a team: its services' items (the word was ignored: every team's items); a word it cannot read is said
    assert "2 open action item(s) on the payments team's services, 1 done" in say("C0AI", "actions payments")
    assert "No open action items on the data team's services." in say("C0AI", "actions data")
    assert "I cannot filter action items by `paymnts`" in say("C0AI", "actions paymnts")
    # in words
    asked = say("C0AI", "what action items are open?", command="")
    assert f"*{iid}.2* add a CI check" in asked and f"*{iid}.1*" not in asked
    assert f"closed *{iid}.3* alert on connection saturation" in say("C0AI", f"{iid}.3 is done", command="")
    # one incident's, done ones too (they went to the knowledge base: "I don't know"); "what did we learn": its
    # postmortem
    of_one = say("C0AI", f"what were the action items from #{iid}?", command="")
    assert f"1 open action item(s) of incident #{iid}, 2 done" in of_one and f"*{iid}.1*" in of_one
    assert "~done by <@U0IRIS>~" in of_one
    assert f"of incident #{iid}" in say("C0AI", f"actions {iid}")
    owners = say("C0AI", f"who owns the action items for #{iid}?", command="")  # it was #{iid}'s status
    assert f"1 open action item(s) of incident #{iid}, 2 done" in owners and "<@U0IRIS>" in owners, owners
    assert "has no postmortem yet, so no action items" in say("C0AI", "action items for #99999", command="")
    learned = say("C0AI", f"what did we learn from #{iid}?", command="")
    assert f"Postmortem for incident #{iid}" in learned, learned
    shown = say("C0AI", f"is the postmortem of #{iid} done?", command="")  # a question: shown, not exported
    assert f"Postmortem for incident #{iid}" in shown and "Open it in the knowledge base" in shown
    # bad references get a clear message and change nothing
    for text, reply in (("done banana", "Which action item?"), ("done 99999.1", "#99999 has no postmortem"),
                        (f"done {iid}.9", f"has 3 action item(s); there is no {iid}.9"),
                        (f"done {iid}.0", "there is no"), ("done " + "9" * 400, "Which action item?")):
        assert reply in say("C0AI", text), text
    with live.db.session() as s:
        top = store.latest(s, incident_id=iid)
        assert top is not None and [bool(a.get("done_at")) for a in top.fields["action_items"]] == [True, False, True]


def test_an_old_postmortems_open_action_items_are_not_forgotten(live: Live) -> None:
    """An action item stays on `/postmortem actions` however many postmortems came after its own (the list once
    read only the newest 1,000)."""
    from knowledge.models import Incident, Postmortem

    iid = _seed(live.db)
    assert live.driver.command("/postmortem", f"draft {iid}", user="U0ALICE", channel=CHANNEL).status_code == 200
    live.drain()
    with live.db.session() as s:  # 1,000 later incidents, each with a published postmortem without action items
        later = [Incident(title=f"later incident {i}", service_name="ingest", status="resolved") for i in range(1000)]
        s.add_all(later)
        s.flush()
        s.add_all(Postmortem(incident_id=inc.id, status="published", title=inc.title, fields={"action_items": []})
                  for inc in later)
    assert live.driver.command("/postmortem", "actions", user="U0BOB", channel="C0AI").status_code == 200
    live.drain()
    listed = " ".join(_texts(live.standin, "C0AI"))
    assert "3 open action item(s), 0 done" in listed and f"*{iid}.1* put pgbouncer" in listed


def test_action_items_get_owners_due_dates_and_hand_added_items(live: Live) -> None:
    """An item of no owner, or one nobody said in the channel, could not be tracked: `assign`, `due` and `add` set
    them (typed or said), each undoable and on the timeline; the list shows due dates and `overdue`; the exported
    document ticks what is done; a regenerated version keeps all of it; the maintenance run tells each owner once
    when an item of theirs is overdue, with a button that closes it."""
    import datetime as dt

    from bot.maintenance import PRUNE
    from knowledge.models import TimelineEvent, utcnow

    iid = _seed(live.db)
    d = live.driver

    def say(text: str, user: str = "U0BOB", command: str = "/postmortem", channel: str = "C0AI") -> str:
        before = len(live.standin.messages(channel))
        if command:
            assert d.command(command, text, user=user, channel=channel).status_code == 200
        else:
            assert d.mention(text, user=user, channel=channel).status_code == 200
        live.drain(due_within_s=60)  # (the maintenance run below plans its next run in 6 hours)
        return " ".join(_texts(live.standin, channel)[before:])

    say(f"draft {iid}", user="U0ALICE", channel=CHANNEL)
    today = utcnow().date()
    # owners: a mention, me, a name, nobody; each says how to undo it
    moved = say(f"assign {iid}.2 <@U0IRIS|iris>", user="U0ALICE")
    assert f"*{iid}.2* add a CI check" in moved and "is <@U0IRIS>'s now (was <@U0BOB>)" in moved
    assert f"`/postmortem assign {iid}.2 <@U0BOB>`" in moved
    assert "is <@U0BOB>'s now (was <@U0IRIS>)" in say(f"assign {iid}.2 me")
    assert "is <@U0BOB>'s already" in say(f"assign {iid}.2 <@U0BOB>")
    assert f"*{iid}.3* alert on connection saturation above 80% is <@U0JONAS>'s now" in say(f"assign {iid}.3 jonas")
    assert "has no owner now (was <@U0JONAS>)" in say(f"assign {iid}.3 nobody")
    assert "I do not know `zed`" in say(f"assign {iid}.3 zed")
    assert "Who should own" in say(f"assign {iid}.3")
    # due dates: a weekday, a month and day, ISO, none; a date gone is refused
    in3 = today + dt.timedelta(days=3)
    assert f"is due {in3:%a %d %b %Y}" in say(f"due {iid}.2 in 3 days")
    assert f"is due {in3:%a %d %b} already" in say(f"due {iid}.2 {in3:%b %d}".lower())
    assert f"*{iid}.3* alert on connection saturation above 80% is due {in3:%a %d %b %Y}" in say(
        f"due {iid}.3 {in3:%d %B}")
    gone = say(f"due {iid}.2 {today - dt.timedelta(days=9):%Y-%m-%d}")
    assert "is in the past" in gone
    assert "is not a date I can read" in say(f"due {iid}.2 whenever")
    assert "is without a due date already" in say(f"due {iid}.1 none")
    # added by hand: owner and due date read off the end, secrets masked
    added = say(f"add {iid} rotate the token ghp_abcdefghijklmnopqrstuvwxyz0123456789 <@U0IRIS> by "
                f"{in3:%Y-%m-%d}", user="U0ALICE")
    assert f"<@U0ALICE> added *{iid}.4* rotate the token" in added and "ghp_abcdef" not in added
    assert f"owner <@U0IRIS>, due {in3:%a %d %b %Y}" in added
    assert "is on the postmortem already" in say(f"add {iid} rotate the token ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    assert "What should be done?" in say(f"add {iid} <@U0IRIS>")
    assert "has no postmortem yet" in say("add 99999 check the pool size")
    # said in words
    assert "is <@U0ERIN>'s now" in say(f"assign {iid}.4 to <@U0ERIN>", command="")
    assert "is <@U0IRIS>'s now (was <@U0ERIN>)" in say(f"I'll take {iid}.4", user="U0IRIS", command="")
    yesterday = today - dt.timedelta(days=1)
    assert f"is due {yesterday:%a %d %b %Y}" in say(f"{iid}.4 is due {yesterday:%Y-%m-%d}", command="")
    assert f"<@U0BOB> added *{iid}.5* check the pool size" in say(
        f"add an action item to #{iid}: check the pool size", command="")
    # the list: due dates, overdue, unassigned
    listed = say("actions")
    assert "5 open action item(s), 0 done" in listed
    assert f"*{iid}.4* rotate the token" in listed and "*overdue 1 day*" in listed
    assert f"due {in3:%a %d %b}" in listed
    late = say("actions overdue")
    assert "1 overdue action item(s)" in late and f"*{iid}.4*" in late and f"*{iid}.2*" not in late
    for asked in ("what's overdue?", "anything overdue?"):  # they went to the knowledge base ("I don't know")
        late = say(asked, command="")
        assert "1 overdue action item(s)" in late and f"*{iid}.4*" in late, (asked, late)
    unowned = say("which action items are unassigned?", command="")
    assert f"*{iid}.3*" in unowned and f"*{iid}.5*" in unowned and f"*{iid}.4*" not in unowned
    # the document: ticked, owners, due dates; a regenerated version keeps them all, numbers included
    say(f"done {iid}.1", user="U0IRIS")
    say(f"regenerate {iid}", user="U0ALICE", channel=CHANNEL)
    with live.db.session() as s:
        top = store.latest(s, incident_id=iid)
        assert top is not None and top.version >= 2
        items = top.fields["action_items"]
        assert [a["text"][:14] for a in items] == ["put pgbouncer ", "add a CI check", "alert on conne",
                                                   "rotate the tok", "check the pool"]
        assert [a.get("owner") for a in items] == ["U0IRIS", "U0BOB", None, "U0IRIS", None]
        assert items[3]["due"] == yesterday.isoformat() and bool(items[0].get("done_at"))
        md = top.markdown
    assert "- [x] [put pgbouncer" in md and f"— owner: Iris Novak — due {yesterday:%Y-%m-%d}" in md
    assert "- [ ] [add a CI check" in md and "— owner: Bob Okafor" in md
    kinds = {}
    with live.db.session() as s:
        for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == iid)):
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
    assert kinds["action_assigned"] == 6 and kinds["action_due"] == 3 and kinds["action_added"] == 2, kinds
    # overdue: the owner is told once, in a DM, with a button that closes the item
    for run in range(2):
        live.services.runner.submit(PRUNE, {}, f"test-run-{run}")
        live.drain(due_within_s=60)
    told = live.standin.messages("U0IRIS")
    assert len(told) == 1, told
    assert f"<@U0IRIS>, action item *{iid}.4* rotate the token" in told[0]["text"]
    assert f"was due {yesterday:%a %d %b}, 1 day ago" in told[0]["text"]
    button = next(e for b in told[0]["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert button["action_id"] == "postmortem:action_done" and button["value"] == f"{iid}.4"
    d.click("postmortem:action_done", f"{iid}.4", user="U0IRIS", channel="D0IRIS", message_ts=told[0]["ts"])
    live.drain(due_within_s=60)
    assert f"<@U0IRIS> closed *{iid}.4* rotate the token" in " ".join(_texts(live.standin, "D0IRIS"))
    assert "No overdue action items." in say("actions overdue")
