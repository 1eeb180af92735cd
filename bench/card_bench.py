"""Incident card render time: with the *Changes* section (deploys near the incident), with the *Related open
incidents* section (service dependencies), and without either.

Every change of an incident re-renders its card (coalesced to one render per ``card_update_interval_s`` during a
storm), so what the card reads is on a hot path. This measures ``bot.incident_card.render_card`` on a busy
incident (payments-api: 300 alerts, 200 timeline events) while ``--open`` other incidents are open across the
sample world's services, first with the sample world's ``depends_on`` graph (the section is computed and shown),
then, in the same run on the same database, with every dependency removed (the baseline: the section's two reads
find nothing). Before both, ``--changes`` deploys and config changes are recorded across the services over the last
7 days (a few in the incident's 6-hour window), and the card is timed with its *Changes* section; then they are
deleted. Prints one JSON object.

    python bench/card_bench.py --renders 300 --open 40 --changes 2000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sqlalchemy import select, update  # noqa: E402

from bench._harness import load_line, percentile  # noqa: E402
from bot.incident_card import render_card  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.settings import Settings  # noqa: E402
from knowledge.models import Alert, ChangeEvent, Incident, Service, TimelineEvent, utcnow  # noqa: E402
from knowledge.seed import seed  # noqa: E402


def _setup(services, n_open: int) -> int:  # type: ignore[no-untyped-def]
    now = utcnow()
    with services.db.session() as s:
        names = [n for (n,) in s.execute(select(Service.name).order_by(Service.name))]
        storm = Incident(title="payments-api 5xx ratio above 5%", severity=1, status="acknowledged",
                         source="alertmanager", service_name="payments-api", created_at=now, findings={},
                         assignee="U0ALICE")
        s.add(storm)
        s.flush()
        for i in range(300):
            s.add(Alert(incident_id=storm.id, source="alertmanager", fingerprint=f"fp{i % 6}-{i}",
                        name="HighErrorRate", service_name="payments-api", status="firing" if i % 3 else "resolved",
                        occurrences=1 + i % 5, received_at=now, last_seen_at=now))
        for i in range(200):
            s.add(TimelineEvent(incident_id=storm.id, at=now + dt.timedelta(seconds=i), kind="alert",
                                text=f"Alert HighErrorRate joined incident #{storm.id} ({i})"))
        for i in range(n_open):
            svc = names[i % len(names)]
            s.add(Incident(title=f"{svc} trouble {i}", severity=1 + i % 4, status="open", source="slack",
                           service_name=svc, created_at=now, findings={}))
        return int(storm.id)


def _time(services, incident_id: int, renders: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    render_card(services, incident_id)  # warm: first statements compiled and cached
    ms = []
    for _ in range(renders):
        t0 = time.perf_counter()
        render_card(services, incident_id)
        ms.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3),
            "mean_ms": round(sum(ms) / len(ms), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--renders", type=int, default=300)
    ap.add_argument("--open", type=int, default=40, help="other open incidents across the services")
    ap.add_argument("--changes", type=int, default=2000, help="changes recorded over the last 7 days")
    ap.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temporary directory")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mode="test", database_url=args.database_url or f"sqlite:///{tmp}/card.db",
                            data_dir=Path(tmp), embedder="hash", warm_models=False)
        services = build_services(settings)
        services.db.upgrade()
        with services.db.session() as s:
            seed(s)
        incident_id = _setup(services, args.open)
        with services.db.session() as s:
            names = [n for (n,) in s.execute(select(Service.name).order_by(Service.name))]
            now = utcnow()
            s.add_all(ChangeEvent(service=names[i % len(names)], kind="deploy" if i % 4 else "config",
                                  summary=f"release {i}", version=f"v{i}", source="bench",
                                  at=now - dt.timedelta(minutes=(i * 7 * 24 * 60) // max(1, args.changes)),
                                  recorded_at=now) for i in range(args.changes))
        _text, blocks = render_card(services, incident_id) or ("", [])
        changes_shown = sum("*Changes*" in json.dumps(b) for b in blocks)
        with_changes = _time(services, incident_id, args.renders)
        with services.db.session() as s:
            s.execute(ChangeEvent.__table__.delete())
        text, blocks = render_card(services, incident_id) or ("", [])
        related_shown = sum("Related open incidents" in json.dumps(b) for b in blocks)
        with_deps = _time(services, incident_id, args.renders)
        with services.db.session() as s:
            s.execute(update(Service).values(depends_on=[]))
        _text, blocks = render_card(services, incident_id) or ("", [])
        assert not any("Related open incidents" in json.dumps(b) for b in blocks)
        without = _time(services, incident_id, args.renders)
    print(json.dumps({"renders": args.renders, "open_incidents": args.open + 1, "related_section_shown":
                      bool(related_shown), "changes": args.changes, "changes_section_shown": bool(changes_shown),
                      "with_changes_and_dependencies": with_changes,
                      "with_dependencies": with_deps, "baseline_no_dependencies": without,
                      "added_by_changes_p50_ms": round(with_changes["p50_ms"] - with_deps["p50_ms"], 3),
                      "added_p50_ms": round(with_deps["p50_ms"] - without["p50_ms"], 3),
                      "database": "sqlite" if not args.database_url else args.database_url.split(":")[0],
                      "load_average": load_line()}))


if __name__ == "__main__":
    main()
