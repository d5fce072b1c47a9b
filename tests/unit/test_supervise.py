"""`distributor run`'s supervisor: a child that dies is restarted, one that keeps dying makes it give
up (so `run` exits non-zero), and stopping kills whatever a child started too."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from distributor.supervise import GIVE_UP_AFTER, Supervisor, spawn
from tests.integration.helpers import wait_for


def test_a_child_that_dies_is_restarted(tmp_path: Path) -> None:
    marker = tmp_path / "starts"
    # Each start appends a line, then the child lives for 0.3 s and exits 0 (as if it crashed).
    code = f"open({str(marker)!r}, 'a').write('x\\n'); import time; time.sleep(0.3)"
    supervisor = Supervisor(grace=2, max_backoff=0.1)
    supervisor.add("flaky", lambda: spawn([sys.executable, "-c", code]))
    supervisor.run()
    try:
        wait_for(lambda: marker.exists() and len(marker.read_text().splitlines()) >= 3, timeout=15, what="restarts")
        assert supervisor.gave_up is None
    finally:
        supervisor.stop()


def test_a_child_that_keeps_dying_makes_it_give_up() -> None:
    gave_up: list[bool] = []
    supervisor = Supervisor(grace=2, on_give_up=lambda: gave_up.append(True), max_backoff=0.05)
    supervisor.add("broken", lambda: spawn([sys.executable, "-c", "raise SystemExit(3)"]))
    supervisor.run()
    try:
        wait_for(lambda: gave_up, timeout=20, what=f"giving up after {GIVE_UP_AFTER} deaths")
        assert supervisor.gave_up == "broken"
    finally:
        supervisor.stop()


def test_stopping_kills_the_childs_own_children_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    # The child starts a grandchild that ignores SIGTERM, then waits: both must be gone after stop().
    code = (
        "import subprocess, sys, time\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(g.pid))\n"
        "time.sleep(60)\n"
    )
    supervisor = Supervisor(grace=1)
    child = supervisor.add("parent", lambda: spawn([sys.executable, "-c", code]))
    supervisor.run()
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=10, what="the grandchild")
    grandchild = int(pid_file.read_text())
    started = time.monotonic()
    supervisor.stop()
    assert time.monotonic() - started < 10
    assert child.process is not None and child.process.poll() is not None

    def gone() -> bool:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            return True
        # A zombie not yet reaped by init counts as gone.
        return Path(f"/proc/{grandchild}/stat").read_text().split()[2] == "Z"

    wait_for(gone, timeout=5, what="the grandchild to be killed")
