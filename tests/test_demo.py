"""The README's first command: `warroom demo` plays its whole scenario against the Slack stand-in."""

from __future__ import annotations

from pathlib import Path

from bot.demo import run_demo


def test_demo_scenario_runs_every_step(tmp_path: Path) -> None:
    lines: list[str] = []
    rc = run_demo(keep=tmp_path / "demo", real_model=False, out=lines.append)
    text = "\n".join(lines)
    assert rc == 0, text
    assert "!! " not in text  # no failed step, no step without a reply
    assert "trained the routing classifier on 12 past incidents (5 teams)" in text
    # the alert storm became one incident card, with the classifier's vote among the responder's reasons
    assert "(300 received)" in text
    assert "escalated incident #" in text and "Next to call: <@U0" in text  # the mention in words
    assert "'s timeline as a key moment." in text  # "note #N: ..." in words
    assert "<@U0CARLA> is comms on incident #" in text  # a role, in words
    assert "*Related open incidents* (service dependencies)" in text and "may be impact of this one" in text
    assert '[HTTP 201] {"id":1,"service":"payments-api","kind":"deploy"' in text  # the pipeline's report
    assert "*deploy* payments-api v1.4.2 by dan: v1.4.2: connection pool size 20 -> 5 · 0 min before it opened" in text
    assert "classifier says payments" in text
    assert "<@U0BOB> is on call for payments from now until" in text  # /oncall cover
    # the storm's log excerpt: connection exhaustion is the database's, not the network's
    assert "[database] `FATAL remaining connection slots are reserved`" in text
    # the published postmortem is named by its incident, and a person who resolved one is a mention
    assert "|postmortem of #109>" in text and "(resolved with U0" not in text
    assert "`/runbook run restart-service service=ingest --dry-run`" in text  # the how-to question's answer
    # the approved runbook ran to the end, and the self-approval was refused
    assert "Refused: only storage, platform can approve" in text
    assert "of `clear-disk-space` succeeded." in text
    # the shift handover at the end names the storm's incident as open, and the approved run is no longer waiting
    assert "Handover for the last 12 hours:" in text and "payments-api" in text.split("Handover for")[-1]
    assert "waiting for an approver" not in text.split("Handover for")[-1]
    assert (tmp_path / "demo" / "warroom.db").is_file()
