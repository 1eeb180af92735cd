"""Times on the card and in `/incident status` are Slack date tokens: each reader sees their own time zone."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from bot.render import blocks_to_text, whole_lines
from knowledge.models import Incident, TimelineEvent
from skills.base import slack_clock
from tests.conftest import Live, open_incidents


def test_card_timeline_times_read_in_each_readers_time_zone(live: Live) -> None:
    (inc,) = open_incidents(live, "ledger replication stalled sev2")
    live.driver.command("/incident", f"ack #{inc.id}", user="U0BOB", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        ack = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id,
                                                    TimelineEvent.kind == "ack")).one()
        card_ts = s.get(Incident, inc.id).card_ts  # type: ignore[union-attr]
    unix = int(ack.at.replace(tzinfo=dt.UTC).timestamp())
    (card,) = [m for m in live.standin.messages() if m.get("ts") == card_ts]
    context = [e["text"] for b in card["blocks"] if b["type"] == "context" for e in b["elements"]]
    line = next(t for t in context if "Acknowledged by" in t)
    assert re.search(rf"<!date\^{unix}\^\{{time\}}\|{ack.at:%H:%M} UTC> Acknowledged by <@U0BOB>", line), line
    assert f"{ack.at:%H:%M} UTC Acknowledged by" in blocks_to_text(card["blocks"]), "the fallback says UTC"
    live.driver.command("/incident", f"status #{inc.id}", user="U0BOB", channel="C0OPS")
    live.drain()
    status = live.standin.messages("C0OPS")[-1]
    assert f"<!date^{unix}^" in str(status["blocks"])


def test_other_days_show_the_date_and_long_lists_keep_whole_lines() -> None:
    at = dt.datetime(2026, 3, 2, 9, 14)
    assert slack_clock(at, today=dt.date(2026, 12, 2)) == \
        f"<!date^{int(at.replace(tzinfo=dt.UTC).timestamp())}^{{date_short}} {{time}}|02 Mar 09:14 UTC>"
    lines = [slack_clock(at) + f" event {i}" for i in range(100)]
    text = whole_lines(lines, 2000)
    assert len(text) <= 2000 and text.endswith("more")
    kept = text.split("\n")[:-1]
    assert kept == lines[:len(kept)], "no line (and so no date token) is cut"
    assert text.split("\n")[-1] == f"… {100 - len(kept)} more"
    assert whole_lines(["a", "b"], 100) == "a\nb"
