"""Questions and requests about an incident in words, through the real app (signed mentions in, the Slack stand-in
and the database checked). Each went to the wrong place before: "page the storage team about #113" routed a ticket
to payments, "how long has #113 been open?" and "what's the runbook for #113?" went to the knowledge base ("I don't
know"), "show open sev1 and sev2 incidents" got the usage, "post an update: ..." was not acted on, "summarize the
last 24 hours" got the help, "export #113 timeline" showed the card."""

from __future__ import annotations

import json
import re
import time

from sqlalchemy import func, select

from bot.render import blocks_to_text
from knowledge.models import Incident, TimelineEvent
from tests.conftest import Live, open_incidents


def _say(live: Live, text: str, *, channel: str = "C0OPS", thread: str | None = None, user: str = "U0BOB") -> str:
    before = len(live.standin.messages(channel))
    ts = f"{time.time():.6f}"
    event = {"type": "app_mention", "user": user, "ts": ts, "event_ts": ts, "text": f"<@UWARROOM> {text}",
             "channel": channel, **({"thread_ts": thread} if thread else {})}
    assert live.driver.event(event).status_code == 200
    live.drain(due_within_s=60)
    return " || ".join(blocks_to_text(m.get("blocks") or []) or m.get("text", "")
                       for m in live.standin.messages(channel)[before:])


def _incident(live: Live, text: str) -> str:
    """`/incident <text>` by Bob in #ops; the answer as text."""
    assert live.driver.command("/incident", text, user="U0BOB", channel="C0OPS").status_code == 200
    live.drain()
    return blocks_to_text(live.standin.messages("C0OPS")[-1].get("blocks") or [])


def _events(live: Live, incident_id: int, kind: str) -> list[str]:
    with live.db.session() as s:
        return list(s.scalars(select(TimelineEvent.text).where(TimelineEvent.incident_id == incident_id,
                                                                TimelineEvent.kind == kind)))


def test_paging_a_team_about_an_incident_names_it_and_keeps_it_on_the_timeline(live: Live) -> None:
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, f"page the storage team about #{inc.id}")
    assert "Paging storage" in said and "<@U0JONAS>: you are on call for storage, and wanted here about incident " \
        f"#{inc.id} (SEV2, payments-api 503 errors at checkout" in said, said
    assert _events(live, inc.id, "paged") == ["<@U0BOB> paged storage: <@U0JONAS>"]
    # no team named: the on-call of the team that owns the incident's service; under the card: that incident
    said = _say(live, "page the on-call", channel=inc.channel_id, thread=inc.card_ts)
    assert "<@U0BOB>: you are on call for payments, and wanted here about incident" in said, said
    assert len(_events(live, inc.id, "paged")) == 2
    # a number that is no incident is a ticket's own number, routed as words (as before): no page recorded anywhere
    assert "Paging" not in _say(live, "page the storage team about build #4521")


def test_questions_about_one_incident_get_its_status_people_runbooks_and_timeline(live: Live) -> None:
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, f"how long has #{inc.id} been open?")
    assert f"Incident #{inc.id}: payments-api 503 errors at checkout" in said and "Age" in said, said
    assert f"Nobody has taken incident #{inc.id} yet" in _say(live, f"is anyone looking at #{inc.id}?")
    said = _say(live, f"what's the runbook for #{inc.id}?")
    assert f"Runbooks for incident #{inc.id}" in said and "/runbook run" in said, said
    said = _say(live, f"export #{inc.id} timeline")
    assert f"Timeline of incident #{inc.id}" in said and "created · Declared by <@U0ERIN>" in said, said
    # under the card: what was tried is the key moments; an update said in words is one
    here = {"channel": inc.channel_id, "thread": inc.card_ts}
    assert "No key moments yet: nothing was noted or pinned" in _say(live, "what have we tried so far?", **here)
    assert f"Noted on incident #{inc.id}'s timeline" in _say(live, "post an update: rolled back the deploy", **here)
    said = _say(live, "what did we try?", **here)
    assert "1 key event(s)" in said and "rolled back the deploy" in said, said
    assert f"Nobody has taken incident #{inc.id}" in _say(live, "is anyone looking at this?", **here)


def test_lists_and_summaries_in_words(live: Live) -> None:
    one, two, three = open_incidents(live, "checkout down sev1", "ingest lag growing sev2", "slow dashboard sev3")
    said = _say(live, "show open sev1 and sev2 incidents")
    assert "(SEV1 or SEV2)" in said and f"#{one.id}*" in said and f"#{two.id}*" in said, said
    assert f"#{three.id}*" not in said
    said = _say(live, "what incidents are open?")
    assert all(f"#{i.id}*" in said for i in (one, two, three)), said
    # "status of all sev1s" got every incident's status (or "Which incident?"), "list open sev2s" every open one
    for asked in ("status of all sev1s", "any sev1 open?", "are there any open sev1s?"):
        said = _say(live, asked)
        assert "(SEV1)" in said and f"#{one.id}*" in said and f"#{two.id}*" not in said, (asked, said)
    said = _say(live, "list open sev2s")
    assert "(SEV2)" in said and f"#{two.id}*" in said and f"#{one.id}*" not in said, said
    assert "is now SEV1" in _say(live, "sev1", channel=three.channel_id, thread=three.card_ts)  # a bare one: set
    said = _say(live, "summarize the last 24 hours")
    assert "Handover for the last 24 hours: 3 incident(s) opened" in said, said


def test_what_depends_on_a_service_names_teams_on_call_and_open_incidents(live: Live) -> None:
    """"What depends on postgres-main?" went to the knowledge base (postmortem passages); the declared service graph
    answers it: both directions, a few hops, each with its team, on-call and open incidents."""
    (inc,) = open_incidents(live, "postgres-main replication lag sev2")
    said = _say(live, "what depends on postgres-main?")
    assert "Dependencies of postgres-main" in said and "6 service(s) depend on it, 4 directly" in said, said
    assert "*payments-api* (payments, on call <@U0BOB>)" in said and "*checkout-web* (payments, on call <@U0BOB>) " \
        "via payments-api" in said
    said = _say(live, "what does payments-api depend on?")
    assert f"Open upstream: #{inc.id} on postgres-main" in said, said
    assert f"*postgres-main* (storage, on call <@U0JONAS>); open: #{inc.id} SEV2" in said
    said = _say(live, "what breaks if dns goes down?")
    assert "*ingress* (platform" in said and "via payments-api" in said, said
    assert "Did you mean `postgres-main`?" in _say(live, "what depends on postgress-main?")
    assert "Dependencies of" not in _say(live, "what depends on the deploy finishing?")  # not about a service
    # the same for an incident ("#113" is no service name: they got "I don't know"), or under its card
    said = _say(live, f"what's the blast radius of #{inc.id}?")
    assert f"Blast radius of incident #{inc.id}" in said and f"Incident #{inc.id} is on postgres-main." in said, said
    assert "6 service(s) depend on it, 4 directly" in said and "*payments-api* (payments, on call <@U0BOB>)" in said
    for asked in ("blast radius?", "what depends on this?", "what else could break?"):
        said = _say(live, asked, channel=inc.channel_id, thread=inc.card_ts)
        assert f"Blast radius of incident #{inc.id}" in said, (asked, said)
    assert "Of which service or incident?" in _say(live, "what's the blast radius?")  # no incident here
    assert "There is no incident #99999" in _say(live, "blast radius of #99999")
    assert "No impact recorded" in _say(live, "what's the impact?", channel=inc.channel_id, thread=inc.card_ts)


def test_calling_someone_in_without_an_incident_channel_mentions_them_with_where_the_card_is(live: Live) -> None:
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, f"add <@U0ALICE> to #{inc.id}")
    assert f"<@U0ALICE>: <@U0BOB> asks you to join incident #{inc.id} (SEV2, open" in said, said
    assert f"Its card is in <#{inc.channel_id}>" in said
    assert _events(live, inc.id, "invited") == ["<@U0BOB> called in <@U0ALICE>"]
    said = _say(live, "add <@U0ALICE> as comms", channel=inc.channel_id, thread=inc.card_ts)
    assert "asks you to join" not in said, said  # a role, not a call-in


def test_impact_is_recorded_shown_and_kept_for_the_postmortem(live: Live) -> None:
    """"impact: ..." was a question for the knowledge base ("what's the impact?" answered with another incident's
    postmortem). Now it is the incident's own: recorded, on its card and status, asked back, in the postmortem."""
    from knowledge.models import Incident, Postmortem

    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    here = {"channel": inc.channel_id, "thread": inc.card_ts}
    said = _say(live, "what's the impact?", **here)
    assert f"No impact recorded for incident #{inc.id} yet" in said, said
    said = _say(live, "impact: checkout fails for about 5% of EU users", **here)
    assert f"Impact of incident #{inc.id} recorded: checkout fails for about 5% of EU users" in said, said
    said = _say(live, f"set the customer impact of #{inc.id} to checkout fails for 8% of EU users")
    assert "(was: checkout fails for about 5% of EU users)" in said, said
    said = _say(live, f"how many users are affected by #{inc.id}?")
    assert f"Impact of incident #{inc.id}: checkout fails for 8% of EU users (said by <@U0BOB>" in said, said
    card = [c for c in live.standin.calls_to("chat.update") if c.args.get("channel") == inc.channel_id][-1]
    assert "*Impact*\\ncheckout fails for 8% of EU users" in json.dumps(card.args), "not on the card"
    assert _events(live, inc.id, "impact")[-1] == "Impact: checkout fails for 8% of EU users"
    assert "*Impact*: checkout fails for 8% of EU users" in _say(live, f"status of #{inc.id}")
    _say(live, f"resolve #{inc.id}: rolled back v1.4.2")
    live.driver.command("/postmortem", f"draft {inc.id}", user="U0BOB", channel="C0OPS")
    live.drain(due_within_s=60)
    with live.db.session() as s:
        md = s.scalars(select(Postmortem.markdown).where(Postmortem.incident_id == inc.id)).first()
        assert s.get(Incident, inc.id).status == "resolved"
    assert md and "- Who and what was affected: checkout fails for 8% of EU users" in md, md


def test_who_declared_it_and_when_was_the_last_update(live: Live) -> None:
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    here = {"channel": inc.channel_id, "thread": inc.card_ts}
    assert "Declared by <@U0ERIN>" in _say(live, "who declared this?", **here)
    said = _say(live, "when was the last update?", **here)  # it was a runbook question ("no runbook does update")
    assert f"Incident #{inc.id}: payments-api 503 errors at checkout" in said and "runbook" not in said, said


def test_what_is_firing_and_which_services_are_affected(live: Live) -> None:
    """"What alerts are firing?" and "which services are affected right now?" went to the knowledge base (runbooks).
    They are the alerts still firing, grouped, with their incident; and the services with an open incident plus
    those depending on them."""
    from pathlib import Path

    from knowledge.models import Incident
    from tests.test_risk_slack import _post_alert

    assert "Nothing is firing." in _say(live, "what alerts are firing?")
    _post_alert(live, json.loads((Path(__file__).parent / "payloads" / "alertmanager.json").read_text()))
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.source == "alertmanager")).one()
        inc_id, channel, card = inc.id, inc.channel_id, inc.card_ts
    said = _say(live, "what alerts are firing?")
    assert "2 alert(s) firing, in 1 group(s)" in said and "*HighErrorRate* on payments-api: 2 firing since" in said
    assert f"(#{inc_id})" in said, said
    assert "Nothing is firing on the storage team" in _say(live, "what's firing for storage?")
    assert f"2 alert(s) firing for incident #{inc_id}" in _say(live, "which alerts are firing for this?",
                                                                channel=channel, thread=card)
    said = _say(live, "is it getting worse?", channel=channel, thread=card)  # two alerts just joined, none before
    assert f"Incident #{inc_id}: getting worse: more alerts joined in the last 15 min" in said, said
    assert "2 alert(s) firing, 0 resolved; 2 new in the last 15 min (0 in the 15 before)" in said
    said = _say(live, "which services are affected right now?")
    assert "1 service(s) with an open incident; 1 more depend on them" in said, said
    assert f"*payments-api*: #{inc_id} SEV" in said and "checkout-web (via payments-api)" in said


def test_several_incidents_at_once_merging_one_into_another_and_escalating_to_a_person(live: Live) -> None:
    """"ack #113 and #114" acknowledged #113 and dropped #114 without a word; "merge #114 into #113" got the help;
    "escalate to @alice" escalated and said "I know no team called @alice"."""
    from knowledge.models import Incident

    a, b, c = open_incidents(live, "checkout 503s sev2", "payments-api 5xx sev2", "slow dashboard sev3")
    said = _say(live, f"ack #{a.id} and #{b.id}")
    assert f"acknowledged incident #{a.id}" in said and f"acknowledged incident #{b.id}" in said, said
    live.driver.command("/incident", f"ack {a.id} {c.id}", user="U0ALICE", channel="C0OPS")
    live.drain()
    said = blocks_to_text(live.standin.messages("C0OPS")[-1].get("blocks") or [])
    assert f"acknowledged incident #{c.id}" in said and f"Incident #{a.id} was already acknowledged" in said, said
    with live.db.session() as s:
        assert {s.get(Incident, i).status for i in (a.id, b.id, c.id)} == {"acknowledged"}
    said = _say(live, f"merge #{b.id} into #{a.id}")
    assert f"Incident #{b.id} resolved: Duplicate of #{a.id}. No postmortem for it." in said, said
    with live.db.session() as s:
        merged = s.get(Incident, b.id)
        assert merged.status == "resolved" and merged.findings["closed_as"] == "duplicate"
    said = _say(live, "escalate to <@U0IRIS>", channel=a.channel_id, thread=a.card_ts)
    assert "Next to call: <@U0IRIS> (Iris Novak): asked for by name" in said and "I know no team" not in said, said


def test_who_was_on_call_when_an_incident_opened(live: Live) -> None:
    """It answered who is on call now, for every team."""
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, f"who was on call when #{inc.id} opened?")
    assert f"On call when #{inc.id} opened: payments" in said and "<@U0BOB> (Bob Okafor)" in said, said
    assert "*storage*" not in said  # its team only, unless others are named
    assert "*storage*" in _say(live, f"who was on call for storage when #{inc.id} opened?")
    assert "There is no incident #99999." in _say(live, "who was on call when #99999 opened?")


def test_a_status_page_draft_follows_the_incident_and_can_be_posted_as_its_update(live: Live) -> None:
    """"Draft a status page update for #113" showed the internal status card."""
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, f"draft a status page update for #{inc.id}")
    assert f"Status page draft for incident #{inc.id}" in said and "(Investigating)" in said, said
    assert "Investigating: we are investigating degraded service on payments-api" in said
    assert "no impact is recorded" in said and "Next update in 30 minutes" in said
    here = {"channel": inc.channel_id, "thread": inc.card_ts}
    _say(live, "impact: card payments fail for some EU customers", **here)
    _say(live, "I'm on it", **here)
    _say(live, "eta: 45 min", **here)  # an ETA still ahead goes to customers as the expected restore time
    said = _say(live, "what should we tell customers?", **here)
    assert "We expect to restore service by " in said and "UTC. Next update in 30 minutes" in said, said
    _say(live, "mitigated: rolled back v1.4.2", **here)
    said = _say(live, "what should we tell customers?", **here)
    assert "Monitoring: a fix has been applied for card payments fail for some EU customers" in said, said
    assert "U0BOB" not in said.split("Post as status update")[0] and "v1.4.2" not in said  # nothing internal
    msg = live.standin.messages(inc.channel_id)[-1]
    button = next(e for b in msg["blocks"] if b.get("type") == "actions" for e in b["elements"]
                  if e.get("action_id") == "incident:statuspage_post")
    live.driver.click("incident:statuspage_post", button["value"], user="U0CARLA", channel=inc.channel_id)
    live.drain()
    notes = _events(live, inc.id, "note")
    assert any("Monitoring: a fix has been applied" in n for n in notes), notes
    live.driver.click("incident:statuspage_post", "99999:forged", user="U0CARLA", channel=inc.channel_id)
    live.drain()  # a forged button: refused, nothing recorded
    assert len(_events(live, inc.id, "note")) == len(notes)


def test_bad_input_to_the_new_incident_commands_gets_a_clear_answer_and_changes_nothing(live: Live) -> None:
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")

    def cmd(text: str) -> str:
        assert live.driver.command("/incident", text, user="U0BOB", channel="C0OPS").status_code == 200
        live.drain()
        m = live.standin.messages("C0OPS")[-1]
        return blocks_to_text(m.get("blocks") or []) or m.get("text", "")

    assert "(at most 500 characters; this is " in cmd(f"impact {inc.id} " + "x" * 5000)
    assert "There is no incident #99999." in cmd("impact 99999 checkout down")
    assert "At most 10 people at once (11 named)" in cmd(f"invite {inc.id} " + " ".join(
        f"<@U0X{i:04d}>" for i in range(11)))
    assert "I cannot read `extra words`" in cmd(f"statuspage {inc.id} extra words")
    assert "There is no incident #99999." in cmd("changes 99999")
    assert _events(live, inc.id, "impact") == [] and _events(live, inc.id, "invited") == []
    said = cmd(f"impact {inc.id} rotated password=hunter2hunter2 by mistake")  # masked before it is kept
    assert "hunter2" not in said and "hunter2" not in " ".join(_events(live, inc.id, "impact"))


def test_what_needs_me_what_has_nobody_the_oldest_and_is_it_getting_worse(live: Live) -> None:
    """Each went to the knowledge base ("I don't know" or a runbook): "what should I work on?", "which incidents have
    nobody on them?", "what's the oldest open incident?", "what's going on?", and under a card "how bad is it?",
    "is it getting worse?", "what's next?", "who should I call?"."""
    a, b, c = open_incidents(live, "checkout 503s sev2", "ingest lag growing sev3", "payments-api 5xx sev1")
    live.driver.command("/incident", f"take {a.id}", user="U0ALICE", channel="C0OPS")
    live.drain()
    said = _say(live, "what should I work on?", user="U0ALICE")
    assert "1 open incident(s) assigned to you; 2 with nobody on them. Start with" in said, said
    assert said.index(f"*#{c.id}*") > said.index("Nobody on them")  # hers first, then the rest
    said = _say(live, "which incidents have nobody on them?")
    assert "(with nobody on them)" in said and f"#{a.id}*" not in said and f"#{b.id}*" in said, said
    said = _say(live, "what's the oldest open incident?")
    assert said.index(f"#{a.id}*") < said.index(f"#{b.id}*"), said
    assert "open incident(s)" in _say(live, "what's going on?")
    here = {"channel": c.channel_id, "thread": c.card_ts}
    assert f"Incident #{c.id}: payments-api 5xx" in _say(live, "how bad is it?", **here)
    said = _say(live, "is it getting worse?", **here)
    assert f"Incident #{c.id}: no alerts are linked to it" in said, said
    assert f"Runbooks for incident #{c.id}" in _say(live, "what's next?", **here)
    said = _say(live, "who should I call?", **here)
    assert "Suggested: <@U0" in said, said


def test_root_causes_of_a_period_and_the_service_with_the_most_incidents(live: Live) -> None:
    """Both went to the knowledge base (another incident's postmortem; a runbook)."""
    a, b = open_incidents(live, "checkout 503s sev2", "checkout 504s sev3")
    _say(live, f"resolve #{a.id}: rolled back v1.4.2; root cause: pool size set to 5")
    _say(live, f"resolve #{b.id}: restarted the pods")
    said = _say(live, "what were the root causes last month?")
    assert "resolved incident(s) (in the last 30 days)" in said, said
    assert f"*#{a.id}* SEV2 checkout 503s" in said and "root cause: pool size set to 5" in said
    assert f"*#{b.id}*" in said and "no root cause recorded; fixed by: restarted the pods" in said
    # "top causes" went to the knowledge base; "this quarter" was read as the default week
    said = _say(live, "what are the top incident causes this quarter?")
    assert "resolved incident(s) (in the last 90 days)" in said and "root cause: pool size set to 5" in said, said
    said = _say(live, "the most common causes this year")
    assert "(in the last 365 days)" in said and f"*#{a.id}* SEV2 checkout 503s" in said, said
    said = _say(live, "which service had the most incidents this month?")
    assert "Incident stats" in said and "Most affected:" in said, said


def test_the_noisiest_alerts_and_how_many_fired(live: Live) -> None:
    """"Which alerts are the noisiest this week?" and "how many alerts fired today?" went to the knowledge base (a
    postmortem, a runbook). They are counted from the alerts received: per name and service the incidents, the
    notifications, how many nobody acknowledged and how long they fired; a brief one nobody acted on is flagged."""
    import datetime as dt

    from tests.test_risk_slack import _post_alert

    def at(minutes: float) -> str:
        return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def alert(name: str, service: str, fp: str, status: str, start: float, end: float | None = None) -> dict:
        return {"status": status, "labels": {"alertname": name, "severity": "warning", "service": service},
                "annotations": {"summary": f"{name} on {service}"}, "startsAt": at(start),
                "endsAt": at(end) if end is not None else "0001-01-01T00:00:00Z", "fingerprint": fp}

    def send(*alerts: dict) -> None:
        _post_alert(live, {"version": "4", "groupKey": f"{{}}:{{alertname=\"{alerts[0]['labels']['alertname']}\"}}",
                           "status": alerts[0]["status"], "receiver": "warroom", "groupLabels": {},
                           "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
                           "alerts": list(alerts)})

    assert "No alerts in the last 7 days." in _say(live, "which alerts are the noisiest?")
    # DiskSpaceLow on ingest: fires, is re-sent, clears by itself two minutes later; nobody acknowledges it
    send(alert("DiskSpaceLow", "ingest", "d1", "firing", -3))
    send(alert("DiskSpaceLow", "ingest", "d1", "firing", -3))
    send(alert("DiskSpaceLow", "ingest", "d1", "resolved", -3, -1))
    # HighErrorRate on payments-api: two instances, acknowledged
    send(alert("HighErrorRate", "payments-api", "h1", "firing", -30), alert("HighErrorRate", "payments-api", "h2",
                                                                            "firing", -29))
    from knowledge.models import Incident

    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.alert_name == "HighErrorRate",
                                               Incident.source == "alertmanager")).one()
        inc_id = inc.id
    _say(live, f"ack #{inc_id}")
    said = _say(live, "which alerts are the noisiest this week?")
    assert "Alert noise: the last 7 days" in said and "3 alert(s) in the last 7 days (5 notification(s))" in said, said
    assert ("*DiskSpaceLow* on ingest: fired 1 time(s), 1 incident(s), 3 notification(s), 1 never acknowledged, "
            "usually firing 2 min · _tuning candidate: short, and nobody acted_") in said, said
    assert ("*HighErrorRate* on payments-api: fired 2 time(s), 1 incident(s), 2 notification(s), all "
            "acknowledged") in said
    said = _say(live, "how many alerts fired today for payments?")
    assert "2 alert(s) on payments-api" in said or "2 alert(s) on the payments team's services" in said, said
    assert "in the last 24 hours" in said and "DiskSpaceLow" not in said
    assert "No alerts on the storage team's services in the last 7 days." in _say(live, "noisy alerts for storage")
    said = _say(live, "noisiest alerts on my team's services", user="U0BOB")  # Bob is in payments
    assert "on the payments team's services" in said and "HighErrorRate" in said and "DiskSpaceLow" not in said, said
    for asked in ("top alerting services", "which services alert the most?"):  # the help's "not sure"
        said = _say(live, asked)
        assert "3 alert(s) in the last 7 days" in said and "*DiskSpaceLow* on ingest" in said, (asked, said)
    said = _say(live, "top alerting services this month")  # "this month" was ignored: a week
    assert "Alert noise: the last 30 days" in said and "3 alert(s) in the last 30 days" in said, said


def test_declaring_in_words_roles_by_request_and_a_reminder_naming_its_incident(live: Live) -> None:
    """"Declare a sev1 for checkout" opened a SEV3 titled "a sev1 for checkout"; "start an incident: ingest lag
    growing" was only searched (similar incidents, with an offer); "make me the commander of #113" got the help;
    "remind me in 30 minutes to check #113" away from its card asked which incident."""
    from knowledge.models import Incident, Job

    said = _say(live, "declare a sev1 for checkout")
    assert "(SEV1): checkout" in said, said
    said = _say(live, "start an incident: ingest lag growing")
    assert "(SEV3): ingest lag growing" in said, said
    said = _say(live, "please open a sev2 incident for payments-api timeouts")
    assert "(SEV2): payments-api timeouts" in said, said
    with live.db.session() as s:
        rows = {i.title: (i.severity, i.service_name) for i in s.scalars(select(Incident).where(
            Incident.title.in_(["checkout", "ingest lag growing", "payments-api timeouts"])))}
        pay = s.scalars(select(Incident).where(Incident.title == "payments-api timeouts")).one().id
    assert rows == {"checkout": (1, None), "ingest lag growing": (3, "ingest"),
                    "payments-api timeouts": (2, "payments-api")}, rows
    # a question about declaring declares nothing
    with live.db.session() as s:
        before = s.scalar(select(func.count()).select_from(Incident))
    _say(live, "let's open an incident review for the checkout outage")  # a meeting, not an incident
    for q in ("should we declare an incident for the slow dashboards?", "how do I open an incident for ingest?"):
        said = _say(live, q)
        assert "I open one when told to: `declare an incident: <title> [sev1-4]`" in said, said
    with live.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == before
    said = _say(live, f"make me the commander of #{pay}", user="U0ALICE")
    assert f"Incident #{pay} is assigned to <@U0ALICE>" in said, said
    said = _say(live, f"make <@U0CARLA> the comms lead for #{pay}", user="U0ALICE")
    assert "<@U0CARLA>" in said and "omms" in said, said
    said = _say(live, f"remind me in 30 minutes to check #{pay}", user="U0ALICE")
    assert f"I will remind you in incident #{pay}'s thread: check #{pay}" in said, said
    with live.db.session() as s:
        (job,) = s.scalars(select(Job).where(Job.kind == "incident.reminder")).all()
        assert job.payload["incident_id"] == pay and job.payload["mention"] == "<@U0ALICE>"


def test_an_eta_is_given_shown_on_the_card_and_said_back_with_what_is_left(live: Live) -> None:
    """"What's the ETA?" and "when will it be fixed?" went to the knowledge base ("I don't know"), and "eta: 30 min"
    was read as incident #30. An ETA is now given under the card (or by number), kept on the timeline, shown on the
    card and in the status, and said back with the time left (or that nobody gave one, with the last update)."""
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, f"what's the ETA for #{inc.id}?")
    assert f"No ETA given for incident #{inc.id} (open, SEV2). No update posted yet." in said, said
    _say(live, "note: failing over to the replica", channel=inc.channel_id, thread=inc.card_ts)
    said = _say(live, "eta: 30 min", channel=inc.channel_id, thread=inc.card_ts)
    assert f"ETA of incident #{inc.id}: 30 min (by " in said, said
    for q in ("what's the ETA?", "when will it be fixed?", "any ETA?"):
        said = _say(live, q, channel=inc.channel_id, thread=inc.card_ts)
        assert f"ETA of incident #{inc.id}: 30 min (by " in said and "min left), given by <@U0BOB>" in said, said
        assert "Last update 0 min ago: Note by <@U0BOB>: failing over to the replica." in said, said
    live.drain(due_within_s=60)
    card = [c for c in live.standin.calls_to("chat.update") if c.args.get("channel") == inc.channel_id][-1]
    assert "*ETA*" in json.dumps(card.args) and "30 min (by" in json.dumps(card.args), card.args
    said = _say(live, f"set the eta of #{inc.id} to unknown, waiting on the vendor")
    assert "unknown, waiting on the vendor (was: 30 min)" in said, said
    assert _events(live, inc.id, "eta")[-1] == "ETA: unknown, waiting on the vendor"
    said = _say(live, "status", channel=inc.channel_id, thread=inc.card_ts)
    assert "*ETA*: unknown, waiting on the vendor, <@U0BOB>" in said, said
    said = _say(live, "handover for the last 2h")  # the next person on call hears it too
    assert f"*#{inc.id}* SEV2" in said and "; ETA unknown, waiting on the vendor, <@U0BOB>" in said, said
    said = _say(live, f"eta for #{inc.id}: in 9999 hours")
    assert "over a week away is not an ETA" in said, said


def test_reassigning_giving_and_dropping_an_incident_in_words(live: Live) -> None:
    """"Reassign #113 to @carla" and "unassign #113" went to routing, which suggested someone and changed nothing;
    "give #113 to @alice" got the help; "I'm off this" under the card was not understood."""
    from knowledge.models import Incident

    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")

    def assignee() -> str | None:
        with live.db.session() as s:
            return s.get(Incident, inc.id).assignee

    assert f"Incident #{inc.id} is assigned to <@U0ALICE>" in _say(live, f"give #{inc.id} to <@U0ALICE>")
    assert assignee() == "U0ALICE"
    assert f"Incident #{inc.id} is assigned to <@U0CARLA>" in _say(live, f"reassign #{inc.id} to <@U0CARLA>")
    assert assignee() == "U0CARLA"
    said = _say(live, "I'm off this", channel=inc.channel_id, thread=inc.card_ts, user="U0BOB")  # not Bob's
    assert "You are not on incident" in said and assignee() == "U0CARLA", said
    _say(live, "I'm off, back in 30", channel=inc.channel_id, thread=inc.card_ts, user="U0CARLA")  # a break
    assert assignee() == "U0CARLA"
    said = _say(live, "I'm off this, handing back", channel=inc.channel_id, thread=inc.card_ts, user="U0CARLA")
    assert f"Incident #{inc.id} has nobody on it now (was <@U0CARLA>)" in said and assignee() is None, said
    _say(live, f"assign #{inc.id} to me", user="U0ALICE")
    said = _say(live, f"unassign #{inc.id}", user="U0BOB")
    assert "nobody on it now (was <@U0ALICE>)" in said and assignee() is None, said
    assert any("Unassigned (was <@U0ALICE>) by <@U0BOB>" in t for t in _events(live, inc.id, "assign"))


def test_how_many_incidents_of_a_severity(live: Live) -> None:
    """"How many sev1s this quarter?" went to the knowledge base ("I don't know"); `/incident stats sev1` refused the
    word. Counted now, at the severities named, over the period said."""
    open_incidents(live, "payments-api 503 errors at checkout sev2", "checkout down sev1", "ingest slow sev3")
    said = _say(live, "how many sev1s this quarter?")
    assert "1 incident(s) in the last 90 days at SEV1, 1 still open" in said and "By severity: SEV1 1" in said, said
    said = _say(live, "how many sev1 and sev2 incidents this month?")
    assert "2 incident(s) in the last 30 days at SEV1 or SEV2" in said, said
    said = _say(live, "how many P1s this week for storage?")
    assert "No incidents in the last 7 days on the storage team's services at SEV1" in said, said
    said = _incident(live, "stats sev1 30d")
    assert "1 incident(s) in the last 30 days at SEV1" in said, said


def test_the_last_incident_on_a_service_and_what_happened_overnight(live: Live) -> None:
    """"When did we last have an incident on kafka?" got the runbook history's error, "show me the last incident on
    payments-api" the usage, "any incidents overnight?" the knowledge base, "catch me up on #113" every incident."""
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, "when did we last have an incident on kafka?")
    assert "The last incident on kafka: #109, opened on 09 Jul 2026" in said and "(resolved)" in said, said
    assert "*Root cause:*" in said  # its status, with what it was
    said = _say(live, "show me the last incident on payments-api")
    assert f"The last incident on payments-api: #{inc.id}, opened 0 min ago (open)" in said, said
    assert "The last SEV1 incident: #" in _say(live, "when was the last sev1?")
    assert "No SEV4 incident on kafka on record" in _say(live, "when was the last sev4 on kafka?")
    for asked in ("any incidents overnight?", "anything happen last night?"):
        assert "Handover for the last 12 hours" in _say(live, asked), asked
    for asked in ("give me a summary of today", "what happened today?"):  # "Which incident?"; the knowledge base
        said = _say(live, asked)
        assert "Handover for the last 24 hours: 1 incident(s) opened" in said, (asked, said)
    assert "Handover for the last 168 hours" in _say(live, "recap of this week")
    said = _say(live, "what's the current sev2?")  # the knowledge base's passages
    assert "1 open incident(s) (SEV2)" in said and f"#{inc.id}" in said, said
    said = _say(live, f"catch me up on #{inc.id}")
    assert f"Incident #{inc.id}: payments-api 503 errors at checkout" in said and "Handover" not in said, said


def test_the_most_recent_incidents_of_any_status(live: Live) -> None:
    """"Show me the last 3 incidents" got the usage (no verb), and "show me sev2 incidents" listed only those assigned
    to the asker ("me" read as "mine")."""
    one, two, three = open_incidents(live, "payments-api 503 errors at checkout sev2", "ingest slow sev3",
                                     "dns lookups failing sev1")
    said = _say(live, "false alarm", channel="C0INCIDENTS", thread=two.card_ts)
    assert "false alarm" in said.lower(), said
    with live.db.session() as s:
        total = s.scalar(select(func.count()).select_from(Incident))
        newest = s.scalars(select(Incident.id).order_by(Incident.created_at.desc(), Incident.id.desc()).limit(3)).all()
    said = _say(live, "show me the last 3 incidents")
    assert f"The 3 most recent incident(s), of {total} on record." in said and "assigned to you" not in said, said
    assert [int(x) for x in re.findall(r"\*#(\d+)\* SEV", said)] == newest
    assert f"*#{two.id}* SEV3 [resolved, false alarm] ingest slow (ingest, opened " in said, said
    assert f"*#{three.id}* SEV1 [open] dns lookups failing (dns, opened " in said and ", open for " in said, said
    said = _say(live, "recent incidents on kafka")  # of a service, any status: the old ones too
    assert "most recent incident(s) (on kafka)" in said and "*#109* SEV" in said and ", lasted " in said, said
    said = _say(live, "show me sev2 incidents")  # "me" is not "mine"
    assert "1 open incident(s) (SEV2)" in said and f"*#{one.id}*" in said and "assigned to you" not in said, said
    said = _incident(live, "list recent 2")
    assert f"The 2 most recent incident(s), of {total} on record." in said and len(re.findall(r"\*#\d+\*", said)) == 2
    said = _incident(live, "list recent sev1")
    assert f"*#{three.id}* SEV1" in said and f"*#{one.id}*" not in said, said
    said = _incident(live, "list recent bogus")
    assert "I cannot filter by `bogus`" in said and "recent [N]" in said, said
    said = _incident(live, "recent 2")  # "/incident recent" was the usage
    assert f"The 2 most recent incident(s), of {total} on record." in said, said
    said = _incident(live, "help")  # the usage, as an answer, not as "cannot do that"
    assert "warroom help: incident" in said and "cannot do that" not in said and "`/incident related <id> <id>`" in said


def test_which_incident_lists_the_open_ones(live: Live) -> None:
    """"Who is the incident commander?" away from any card said "Which incident? ... e.g. `/incident ack 12`": the
    asker then had to look the ids up elsewhere."""
    said = _say(live, "who is the incident commander?")
    assert "Which incident? None is open now" in said, said
    one, two = open_incidents(live, "payments-api 503 errors at checkout sev2", "dns lookups failing sev1")
    said = _say(live, "who is the incident commander?")
    assert (f"Which incident? Open now: #{two.id} SEV1 dns lookups failing; #{one.id} SEV2 payments-api 503 errors at "
            f"checkout. Name it by id (e.g. `#{two.id}`), or ask in its card's thread.") in said, said
    assert f"Open now: #{two.id} SEV1" in _incident(live, "ack")


def test_the_longest_incidents_and_who_was_on_the_most(live: Live) -> None:
    """"What was the longest incident this month?" and "who has been on the most incidents?" got the knowledge base's
    passages (a runbook)."""
    import datetime as dt

    one, two, three = open_incidents(live, "payments-api 503 errors at checkout sev2", "ingest slow sev3",
                                     "dns lookups failing sev1")
    for inc, who in ((one, "U0BOB"), (two, "U0BOB"), (three, "U0FARID")):
        _incident(live, f"assign <@{who}> {inc.id}")
        _incident(live, f"resolve {inc.id} fixed")
    with live.db.session() as s:  # they opened 3h, 1h and 20 min before they were resolved
        for inc, hours in ((one, 3), (two, 1), (three, 1 / 3)):
            row = s.get(Incident, inc.id)
            assert row is not None and row.resolved_at is not None
            row.created_at = row.resolved_at - dt.timedelta(hours=hours)
    said = _say(live, "what was the longest incident this month?")
    assert "knowledge base" not in said and "3 incident(s) in the last 30 days" in said, said
    assert (f"Longest to resolve: #{one.id} payments-api 503 errors at checkout (3h00m, payments-api), #{two.id} "
            f"ingest slow (1h00m, ingest), #{three.id} dns lookups failing (20 min, dns)") in said, said
    said = _say(live, "who has been on the most incidents this month?")
    assert "By person (assigned): <@U0BOB> 2, <@U0FARID> 1" in said, said
    said = _incident(live, "stats 30d per person")
    assert "By person (assigned): <@U0BOB> 2, <@U0FARID> 1" in said, said
    assert "[per person]" in _incident(live, "stats per persn")


def test_take_an_incident_in_words(live: Live) -> None:
    """"Take #113" got the help ("not sure what you need"); "/incident take 113" worked."""
    one, two = open_incidents(live, "payments-api 503 errors at checkout sev2", "ingest slow sev3")
    said = _say(live, f"take #{one.id}", user="U0ALICE")
    assert f"<@U0ALICE> is on incident #{one.id}" in said, said
    assert f"<@U0BOB> is on incident #{two.id}" in _say(live, f"let me take #{two.id}", user="U0BOB")
    said = _say(live, "take a look at the dashboards", user="U0ALICE")  # not a take
    assert "is on incident" not in said
    with live.db.session() as s:
        assert [s.get(Incident, i.id).assignee for i in (one, two)] == ["U0ALICE", "U0BOB"]  # type: ignore[union-attr]


def test_what_responders_say_under_a_card(live: Live) -> None:
    """Under the card: "update the status page" showed the incident, "what's been done so far?", "who acked?" and
    "when did we ack?" got the knowledge base's "I don't know", "set eta 30 min" and "bring in storage" were not acted
    on, and "wake up the database team" (no such team) paged the incident's own team."""
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    here = {"channel": "C0INCIDENTS", "thread": inc.card_ts, "user": "U0ALICE"}
    assert f"Status page draft for incident #{inc.id}" in _say(live, "update the status page", **here)
    said = _say(live, "what's been done so far?", **here)
    assert f"Timeline of incident #{inc.id}" in said and "knowledge base" not in said, said
    _say(live, "ack", **here)
    for asked in ("who acked?", "when did we ack?", "what time did it start?"):
        said = _say(live, asked, **here)
        assert f"Incident #{inc.id}" in said and "knowledge base" not in said and "acknowledged" in said, (asked, said)
    said = _say(live, "set eta 30 min", **here)
    assert f"ETA of incident #{inc.id}: 30 min" in said, said
    said = _say(live, "bring in storage", **here)
    assert "Paging storage" in said and ("<@U0JONAS>" in said or "<@U0IRIS>" in said), said
    said = _say(live, "wake up the database team", **here)
    assert "Page whom? I know no team, service or person called `database`" in said and "Paging" not in said, said
    said = _say(live, "wake up the on-call", **here)  # nobody named: the incident's service's team, as before
    assert "Paging payments" in said, said


def test_unacknowledged_incidents_and_what_to_look_at(live: Live) -> None:
    """"Anything unacknowledged?", "anything I should look at?", "what's most urgent?" got the knowledge base's "I
    don't know"."""
    one, two = open_incidents(live, "payments-api 503 errors at checkout sev2", "ingest slow sev3")
    _incident(live, f"ack {one.id}")
    for asked in ("anything unacknowledged?", "which incidents are not acked?"):
        said = _say(live, asked)
        assert "1 open incident(s) (not acknowledged yet)" in said and f"*#{two.id}*" in said, (asked, said)
        assert f"*#{one.id}*" not in said
    assert "1 open incident(s) (not acknowledged yet)" in _incident(live, "list unacknowledged")
    for asked in ("anything I should look at?", "what's most urgent?"):
        said = _say(live, asked, user="U0ALICE")
        assert "What needs you" in said and "knowledge base" not in said, (asked, said)


def test_time_to_resolve_said_when_there_is_none_and_broken_down_by_service_or_team(live: Live) -> None:
    """"What's our MTTR?" with nothing resolved said nothing about it; "MTTR by service" gave the totals only."""
    one, two, _three = open_incidents(live, "payments-api 503 errors at checkout sev2", "ingest slow sev3",
                                      "ingest lag growing sev3")
    said = _say(live, "what's our MTTR this month?")
    assert "Median time to resolve: none of them is resolved yet" in said, said
    _incident(live, f"ack {two.id}")
    _incident(live, f"resolve {two.id}: restarted the consumers")
    said = _say(live, "what's our MTTR by service?")
    assert "none of them is resolved yet" not in said and "Median time to resolve: 0 min (over 1 incidents)" in said
    assert "*ingest*: 2 incident(s), median time to ack 0 min, median time to resolve 0 min" in said, said
    assert "*payments-api*: 1 incident(s), none acknowledged, none resolved" in said, said
    said = _incident(live, "stats 30d per team")
    assert "*data*: 2 incident(s)" in said and "*payments*: 1 incident(s)" in said, said


def test_links_are_kept_on_the_card_and_listed(live: Live) -> None:
    """"Link PAY-123 to #113", "dashboard: <url>" under the card and "where's the dashboard?" got the help or "I did
    not act on that". A link (an http(s) address or a ticket key) is kept once, on the card and the timeline."""
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    assert f"Linked to incident #{inc.id}: `PAY-123`" in _say(live, f"link PAY-123 to #{inc.id}")
    said = _say(live, f"add <https://grafana.example.com/d/abc> to #{inc.id}: error rates")
    assert "<https://grafana.example.com/d/abc|error rates>" in said, said
    here = {"channel": inc.channel_id, "thread": inc.card_ts}
    assert "<https://meet.example.com/x|bridge>" in _say(live, "bridge <https://meet.example.com/x>", **here)
    assert "already has that link" in _say(live, "dashboard: <https://grafana.example.com/d/abc>", **here)
    said = _say(live, "where's the dashboard?", **here)
    assert (f"Links of incident #{inc.id}: `PAY-123` · <https://grafana.example.com/d/abc|error rates> · "
            "<https://meet.example.com/x|bridge>") in said, said
    assert "<https://meet.example.com/x|bridge>" in _say(live, f"links for #{inc.id}")
    live.drain(due_within_s=60)
    card = [c for c in live.standin.calls_to("chat.update") if c.args.get("channel") == inc.channel_id][-1]
    assert "*Links*" in json.dumps(card.args) and "meet.example.com/x|bridge" in json.dumps(card.args)
    assert len(_events(live, inc.id, "link")) == 3
    for bad in ("javascript:alert(1)", "https://", "not-a-key"):
        assert live.driver.command("/incident", f"link {inc.id} {bad}", user="U0BOB",
                                   channel="C0OPS").status_code == 200
        live.drain()
        said = blocks_to_text(live.standin.messages("C0OPS")[-1].get("blocks") or []) or \
            live.standin.messages("C0OPS")[-1].get("text", "")
        assert "http(s) address or a ticket key" in said or "cannot be read" in said, (bad, said)
    assert len(_events(live, inc.id, "link")) == 3


def test_what_is_happening_with_a_service_and_a_status_update_said_in_full(live: Live) -> None:
    """"What's happening with payments?", "anything going on with ingest?", "how long has payments-api been down?",
    "who's working on the payments outage?" went to the knowledge base (a past postmortem); "post a status update to
    the status channel for #113: ..." showed the status instead of posting the update."""
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    for q in ("what's happening with payments?", "how long has payments-api been down?",
              "who's working on the payments outage?"):
        said = _say(live, q)
        assert "Health of" in said and f"*#{inc.id}* SEV2 [open] payments-api 503 errors" in said, (q, said)
        assert "nobody on it" in said, said
    said = _say(live, "anything going on with ingest?")
    assert "Health of ingest" in said and "No open incident on ingest" in said, said
    said = _say(live, f"post a status update to the status channel for #{inc.id}: investigating the pool")
    assert f"incident #{inc.id}" in said and "*Status*" not in said, said
    with live.db.session() as s:
        notes = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id,
                                                      TimelineEvent.kind == "note")).all()
        assert [n.text.split(": ", 1)[-1] for n in notes] == ["investigating the pool"], [n.text for n in notes]


def test_this_week_compared_to_the_week_before(live: Live) -> None:
    """"Compare this week to last week" and "incidents this week vs last week" got the help."""
    import datetime as dt

    from knowledge.models import Incident, utcnow

    a, b, c = open_incidents(live, "payments-api 503 errors at checkout sev2", "checkout down sev1",
                             "ingest slow sev3")
    with live.db.session() as s:  # ingest's opened nine days ago
        s.get(Incident, c.id).created_at = utcnow() - dt.timedelta(days=9)
    said = _say(live, "compare this week to last week")
    assert "2 incident(s) in the last 7 days (the 7 days before: 1, +1)" in said, said
    assert "The 7 days before: 1 incident(s), SEV3 1" in said, said
    said = _say(live, "incidents this week vs last week for payments")
    assert "1 incident(s) in the last 7 days on the payments team's services (the 7 days before: 0, +1)" in said, said
    said = _incident(live, "stats 30d compare")
    assert "3 incident(s) in the last 30 days (the 30 days before: 0, +3)" in said, said


def test_who_acknowledged_it_which_team_owns_it_and_is_it_still_open(live: Live) -> None:
    """"Who acknowledged #113?", "is #113 still open?", "which team owns #113?", "how long did #113 take to ack?" went
    to the knowledge base ("I don't know"). The status answers them: team and its channel, where it is worked, when
    it was acknowledged and resolved, after how long, by whom."""
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    live.driver.command("/incident", f"take {inc.id}", user="U0BOB", channel="C0OPS")
    live.drain()
    for q in (f"who acknowledged #{inc.id}?", f"is #{inc.id} still open?", f"which team owns #{inc.id}?",
              f"how long did #{inc.id} take to ack?", f"where is #{inc.id} discussed?"):
        said = _say(live, q)
        assert f"Incident #{inc.id}: payments-api 503 errors" in said and "*Status*: acknowledged" in said, (q, said)
        assert f"*Team*: payments (<#C0PAYMENTS>); worked in <#{inc.channel_id}>" in said, said
        assert "min after it opened, by <@U0BOB>" in said, said
    # with an impact and an ETA too, nothing is cut (Slack shows 10 fields)
    _say(live, f"impact of #{inc.id}: checkout down for 5% of users")
    _say(live, f"eta for #{inc.id}: 30 min")
    said = _say(live, f"who acknowledged #{inc.id}?")
    assert "*Acknowledged*" in said and "*Impact*" in said and "*ETA*" in said, said
    said = _say(live, "who resolved #101?")
    assert "*Resolved*: 02 Mar 10:02 UTC, 48 min after it opened" in said, said


def test_what_caused_one_incident_finding_past_ones_and_which_runbook_under_a_card(live: Live) -> None:
    """"What caused #101?" got another incident's postmortem (#106, the knowledge base's closest passage); "why did
    #103 happen?" got the usage; "find incidents about certificates" was refused as an incident command; "which
    runbook?" under a card was "I don't know"."""
    said = _say(live, "what caused #101?")
    assert "Incident #101: payments-api 5xx spike" in said and "*Root cause:* A deploy doubled" in said, said
    said = _say(live, "why did #103 happen?")
    assert "Incident #103: TLS certificate expired" in said and "*Root cause:*" in said, said
    said = _say(live, "find incidents about certificates")
    assert "Closest matches for _certificates_" in said and "renew-certificate" in said, said
    said = _say(live, "search postmortems for redis evictions")
    assert "Closest matches for _redis evictions_" in said and "incident #104" in said, said
    assert "Open incidents" in _say(live, "list incidents for payments")  # still the list
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, "which runbook?", channel=inc.channel_id, thread=inc.card_ts)
    assert f"Runbooks for incident #{inc.id}" in said and "restart-service" in said, said


def test_paging_a_person_their_incidents_and_questions_about_an_incident_s_team(live: Live) -> None:
    """"Page alice about #113" paged the payments team's on-call (Bob) instead, "page @alice" was refused; "who is on
    call for #113?" listed every team; "is there an incident for payments-api?", "how long did #101 last?" and
    "which incidents did alice work on?" went to the knowledge base; "show my resolved incidents" got the usage."""
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, f"page alice about #{inc.id}")
    assert said.startswith("== Paging Alice Moreau ==") and f"<@U0ALICE>: you are wanted here about incident " \
        f"#{inc.id} (SEV2" in said and "<@U0BOB>: you are on call" not in said, said
    assert "<@U0BOB> paged <@U0ALICE>" in _events(live, inc.id, "paged")
    assert "<@U0CARLA>: you are wanted here by <@U0BOB>" in _say(live, "page <@U0CARLA>")
    assert "you are on call for payments" in _say(live, "page the payments team")  # a team: its on-call, as before
    said = _say(live, f"who is on call for #{inc.id}?")
    assert "On call now: payments" in said and "*data*" not in said, said
    said = _say(live, "who's on call?", channel=inc.channel_id, thread=inc.card_ts)
    assert "On call now: payments" in said, said
    for asked in ("is there an incident for payments-api?", "is payments-api having an incident?",
                  "is anyone working on the payments issue?"):
        said = _say(live, asked)
        assert "1 open incident(s)" in said and f"*#{inc.id}*" in said, (asked, said)
    said = _say(live, "how long did #101 last?")
    assert "Incident #101" in said and "*Lasted*: 48m" in said, said
    _incident(live, f"take {inc.id}")
    for asked in ("which incidents did bob work on?", "what incidents has <@U0BOB> handled?"):
        said = _say(live, asked, user="U0ERIN")
        assert "1 incident(s) (in the last 30 days, with <@U0BOB> on them)" in said and f"*#{inc.id}*" in said, said
    _incident(live, f"resolve {inc.id}: rolled back")
    said = _say(live, "show my resolved incidents")
    assert "1 resolved incident(s)" in said and "assigned to you" in said and f"*#{inc.id}*" in said, said
