"""A running server notices commits it did not make (a signer's git push, a sync, another
worker) through watchdog, and brings its pending index up to date before anyone asks."""

from __future__ import annotations

import time

from asfaload.devtools.server import ServerProcess
from asfaload.rules.tree import Change
from asfaload.store import Mirror


def test_server_catches_up_with_a_commit_made_behind_its_back(tmp_path):
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        outsider = Mirror.open(str(data / "mirror.git"))
        try:
            landed = outsider.submit(
                lambda view, now: Change("outside commit", {"a/b.json": b"{}"})
            )
        finally:
            outsider.close()
        line = f"pending index caught up with main at {landed.commit_id}"
        deadline = time.monotonic() + 60  # a bound on waiting, not a performance assertion
        while line not in server.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert line in server.log()
    finally:
        server.stop()
