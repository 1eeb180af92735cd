"""Concurrent clicks on one *Open an incident* button: how many incidents does one reported message open?

    python bench/report_race.py [--clicks 6] [--trials 5]

Runs the real skill from ``--clicks`` threads released together, on a fresh SQLite database per trial,
twice: with the unique index of migration 0004 (as shipped) and with it dropped (the code before it, which
only looked for the key before inserting). Prints one JSON object: incidents opened per trial, each way.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
from pathlib import Path

from sqlalchemy import func, select, text

from knowledge.db import Database
from knowledge.models import Incident
from knowledge.seed import seed
from skills.base import SkillContext, SkillRequest
from skills.incident import IncidentSkill


def trial(clicks: int, *, with_index: bool) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="warroom-race-"))
    db = Database(f"sqlite:///{tmp / 'race.db'}")
    db.upgrade()
    with db.session() as s:
        seed(s)
    if not with_index:
        with db.engine.begin() as conn:
            conn.execute(text("DROP INDEX uq_incidents_report_key"))
    ctx = SkillContext(db=db, data_dir=tmp, model_dir=tmp)
    start = threading.Barrier(clicks)

    def click(i: int) -> None:
        req = SkillRequest(text="ingest lag growing", source="action", user_id=f"U0CLICK{i}", channel_id="C0RACE",
                           thread_ts="1700000000.000100")
        start.wait()
        try:
            IncidentSkill().handle_action("incident:new", req, ctx)
        except Exception:  # noqa: BLE001 - a refused writer is counted by what reached the database
            pass

    threads = [threading.Thread(target=click, args=(i,)) for i in range(clicks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with db.session() as s:
        n = s.scalar(select(func.count()).select_from(Incident).where(Incident.title == "ingest lag growing"))
    db.engine.dispose()
    return int(n or 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=6)
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    out = {"clicks": args.clicks,
           "with_unique_index": [trial(args.clicks, with_index=True) for _ in range(args.trials)],
           "without_index_baseline": [trial(args.clicks, with_index=False) for _ in range(args.trials)]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
