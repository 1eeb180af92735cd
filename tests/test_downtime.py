"""Incident time per service ("what's our uptime this month?", "how much downtime did redis-cache have?"): these went
to the knowledge base ("I found nothing") or to a postmortem passage. Now each service's time with an open SEV1 or
SEV2 incident, from opening to mitigation, overlaps counted once, over the span asked, through the real app."""

from __future__ import annotations

import datetime as dt

from knowledge.models import Incident, utcnow
from tests.conftest import Live, open_incidents
from tests.test_incident_words import _say


def _timed(live: Live, inc_id: int, *, opened_days_ago: float, mitigated_after_h: float | None = None,
           resolved_after_h: float | None = None, severity: int | None = None, closed_as: str | None = None) -> None:
    with live.db.session() as s:
        inc = s.get(Incident, inc_id)
        inc.created_at = utcnow() - dt.timedelta(days=opened_days_ago)
        inc.mitigated_at = inc.created_at + dt.timedelta(hours=mitigated_after_h) if mitigated_after_h else None
        if resolved_after_h is not None:
            inc.status, inc.resolved_at = "resolved", inc.created_at + dt.timedelta(hours=resolved_after_h)
        if severity is not None:
            inc.severity = severity
        if closed_as:
            inc.findings = {**(inc.findings or {}), "closed_as": closed_as}


def test_incident_time_per_service_over_the_span_asked(live: Live) -> None:
    a, b, c, d, e = open_incidents(live, "redis-cache evictions sev1", "redis-cache latency sev2",
                                   "redis-cache slow keys sev3", "redis-cache down sev1", "redis-cache old outage sev2")
    _timed(live, a.id, opened_days_ago=10, mitigated_after_h=2, resolved_after_h=5)  # 2h (mitigated counts)
    _timed(live, b.id, opened_days_ago=10 - 1 / 24, resolved_after_h=2)  # 1h later, 2h long: 1h more, overlap once
    _timed(live, c.id, opened_days_ago=5, resolved_after_h=30)  # SEV3: counted, not timed
    _timed(live, d.id, opened_days_ago=3, resolved_after_h=9, closed_as="false_alarm")  # hurt nobody
    _timed(live, e.id, opened_days_ago=60, mitigated_after_h=4, resolved_after_h=4)  # outside 30 days
    said = _say(live, "how much downtime did redis-cache have this month?")
    assert "Incident time: the last 30 days" in said, said
    assert "In the last 30 days, redis-cache had a SEV1 or SEV2 incident open for 3h00m (99.58% of the span " \
        "without)." in said, said
    assert f"#{a.id} SEV1, #{b.id} SEV2; 1 SEV3/SEV4 incident(s), not timed" in said and f"#{d.id}" not in said
    assert "I know no SLA or SLO targets" in said and f"#{e.id}" not in said
    said = _say(live, "what's the availability of redis-cache last quarter?")
    assert "redis-cache had a SEV1 or SEV2 incident open for 7h00m (99.68% of the span without)" in said, said
    # the asker's team ("our": Jonas is in storage, which owns redis-cache and postgres-main)
    live_said = _say(live, "what's our uptime this month?", user="U0JONAS")
    assert "*redis-cache*: 3h00m with an open SEV1/SEV2 incident" in live_said, live_said
    assert "*postgres-main*: no SEV1/SEV2 incident (100%)" in live_said
    # a name it does not know is said back, not answered for every service
    assert "I know no service or team `redis-cach`" in _say(live, "what's the uptime of redis-cach?")
    assert "Incident time" not in _say(live, "how do I check the uptime of a pod?")  # a how-to
