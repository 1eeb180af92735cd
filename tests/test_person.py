"""Who someone is and whether they can help now, through the real app (signed mentions and ``/oncall who``): "who is
alice?", "is @bob available?", "what time is it for alice?", "how busy is alice?" all went to the knowledge base ("I
don't know") or the help. The answer comes from the experts file, the shifts and the open incidents, by the same
rules routing uses (working hours in the person's time zone)."""

from __future__ import annotations

import datetime as dt

from knowledge import people
from knowledge.models import Incident, utcnow
from tests.conftest import Live, open_incidents
from tests.test_oncall_mine import _ask
from tests.test_rotations import _only_payments_shifts, _say


def test_who_someone_is_their_local_time_shifts_and_incidents(live: Live) -> None:
    now = _only_payments_shifts(live, (("U0BOB", -1, 30), ("U0ALICE", 30, 60)))
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    live.driver.command("/incident", f"take {inc.id}", user="U0ALICE", channel="C0OPS")
    live.drain(due_within_s=60)
    paris = people.local_time("Europe/Paris", utcnow())
    hours = "within working hours" if people.in_working_hours("Europe/Paris") else "outside working hours"
    for asked in ("who is alice?", "what time is it for alice?", "what's alice's timezone?", "how busy is alice?",
                  "what is <@U0ALICE> working on?", "where is Alice Moreau?"):
        said = _ask(live, asked, "U0BOB")
        assert "<@U0ALICE> (Alice Moreau), payments team" in said, (asked, said)
        assert f"*Local time*: {paris:%a %H}" in said and f"(Europe/Paris), {hours}" in said, (asked, said)
        assert f"*Open incidents*: 1: #{inc.id} SEV2" in said and "(commander)" in said, (asked, said)
        assert f"next shift {now + dt.timedelta(hours=30):%a %d %b %H:%M}" in said, (asked, said)
    said = _ask(live, "is <@U0BOB> available?", "U0ALICE")
    assert "on call now, on no open incident" in said and "*On call*: now, for payments until" in said, said
    assert "*Knows*: billing-worker, payments-api" in said
    said = _ask(live, "who is lena?", "U0BOB")  # left the company
    assert "<@U0LENA> (Lena Fischer), data team, has left (deactivated)" in said and "On call for data now" in said
    # the same from the slash command
    assert "<@U0ALICE> (Alice Moreau), payments team" in _say(live, "who <@U0ALICE>", "U0BOB")
    assert "Who? `/oncall who @someone`" in _say(live, "who", "U0BOB")
    assert "On call now: payments" in _say(live, "who payments", "U0BOB")
    assert "On call tomorrow: payments" in _say(live, "who is on call for payments tomorrow", "U0BOB")


def test_questions_that_only_look_like_they_are_about_a_person(live: Live) -> None:
    open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _ask(live, "who is <@U0NOBODY>?", "U0BOB")  # a mention of someone in no experts file: said so
    assert "<@U0NOBODY> is in no experts file I know" in said, said
    assert "From the knowledge base" in _ask(live, "who is pgbouncer?", "U0BOB")  # not a person: as before
    assert "On call now" in _ask(live, "who is on call?", "U0BOB")
    assert "On call now: payments" in _ask(live, "is payments on call?", "U0BOB")
    said = _say(live, "who nobody-like-this", "U0BOB")  # neither person nor team: said back
    assert "no team called 'nobody-like-this'" in said, said
    assert "<@U0ALICE> (Alice Moreau)" in _ask(live, "whos alice", "U0BOB")
    assert "Several people are called" not in _ask(live, "who is bob?", "U0ALICE")


def test_on_call_load_per_person_with_out_of_hours_and_night_pages(live: Live) -> None:
    """"Who's been paged the most this week?", "on-call load for payments", "how many pages did I get?" went to the
    knowledge base. An incident pages whoever is on call for its service's team when it opens."""
    now = _only_payments_shifts(live, (("U0BOB", -200, 30),))
    day = now - dt.timedelta(days=1)
    while day.weekday() >= 5:  # a weekday: 12:00 UTC is within London's working hours
        day -= dt.timedelta(days=1)
    night, noon = day.replace(hour=3, minute=0, second=0), day.replace(hour=12, minute=0, second=0)
    a, b, c = open_incidents(live, "payments-api 503 errors at checkout sev2", "checkout-web slow sev3",
                             "payments-api timeouts sev3")
    with live.db.session() as s:
        for inc_id, at in ((a.id, night), (b.id, noon), (c.id, noon)):
            s.get(Incident, inc_id).created_at = at
    live.driver.command("/incident", f"resolve {c.id} duplicate of #{a.id}", user="U0BOB", channel="C0OPS")
    live.driver.command("/incident", f"take {a.id}", user="U0BOB", channel="C0OPS")
    live.drain(due_within_s=60)
    said = _ask(live, "what's the on-call load for payments?", "U0ERIN")
    assert "2 page(s) to 1 person(s) in the last 7 days for payments; the most: <@U0BOB> (2)" in said, said
    assert f"<@U0BOB>: 2 incident(s), 1 outside working hours, 1 at night, 1 taken by them (#{a.id}, #{b.id})" \
        in said, said  # the duplicate joined another incident: it paged nobody
    assert "You were paged for 2 incident(s) in the last 7 days" in _ask(live, "how many pages did I get this week?",
                                                                          "U0BOB")
    assert "You were paged for 0 incident(s)" in _ask(live, "how often was I paged?", "U0ALICE")
    said = _ask(live, "who's been paged the most this week?", "U0ERIN")
    assert "the most: <@U0BOB> (2)" in said, said
