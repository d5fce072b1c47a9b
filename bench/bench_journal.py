"""What the journal outside Redis costs per event (the pipeline writes one row per first sighting,
per delivery state change, and reads one per created delivery).

Run: python bench/bench_journal.py. Wall time on a temporary file (WAL, synchronous=NORMAL),
10 000 events each. Target: under 1 ms per event, small beside the platform call or the Redis round
trips of the same step (the exit status says whether it was met).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distributor.journal import Journal

TARGET_MS = 1.0
EVENTS = 10_000


def timed(label: str, work: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(EVENTS):
        work(i)
    per_event = (time.perf_counter() - start) / EVENTS * 1000
    print(f"{label:<36} {per_event:8.3f} ms/event")
    return per_event


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        journal = Journal(Path(directory) / "state" / "journal.sqlite3")
        now = time.time()
        results = [
            timed("article first seen (insert)", lambda i: journal.sighted(f"a{i:015d}", now, True)),
            timed("article seen again (lookup)", lambda i: journal.sighted(f"a{i:015d}", now, True)),
            timed("delivery created (lookup)", lambda i: journal.find_delivery(f"a{i:015d}", "telegram")),
            timed("delivery state change (upsert)", lambda i: journal.delivery(f"a{i:015d}", "telegram", "sent")),
        ]
        print(f"journal size for {EVENTS} articles and deliveries: {journal.path.stat().st_size / 1e6:.1f} MB")
    worst = max(results)
    print(f"worst {worst:.3f} ms/event, target < {TARGET_MS} ms: {'met' if worst < TARGET_MS else 'NOT met'}")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
