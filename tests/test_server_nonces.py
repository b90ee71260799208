"""The SQLite nonce store shared by a server's worker processes: each nonce is accepted once in
total, whatever the threads and processes racing for it, and a killed process's nonces stay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from asfaload.store.nonces import SqliteNonceStore

NOW = 1_700_000_000

# One "worker": 8 threads, each trying every nonce (in its own order); prints the ones it won.
_WORKER = textwrap.dedent(
    """
    import json, random, sys, threading
    from pathlib import Path
    from asfaload.store.nonces import SqliteNonceStore

    store = SqliteNonceStore(Path(sys.argv[1]))
    nonces = json.loads(sys.argv[2])
    won, lock = [], threading.Lock()

    def run(seed):
        mine = list(nonces)
        random.Random(seed).shuffle(mine)
        for n in mine:
            if store.remember(n, 1_700_000_300, 1_700_000_000):
                with lock:
                    won.append(n)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(won))
    """
)


def test_each_nonce_is_accepted_once_across_processes_and_threads(tmp_path: Path) -> None:
    db = tmp_path / "private" / "nonces.sqlite3"
    SqliteNonceStore(db).close()  # schema in place before the race
    nonces = [str(uuid.uuid4()) for _ in range(150)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(db), json.dumps(nonces)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    won: list[str] = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        won += json.loads(out)
    assert sorted(won) == sorted(nonces)  # every nonce once, none twice
    assert SqliteNonceStore(db).count() == len(nonces)


def test_nonces_survive_a_killed_process(tmp_path: Path) -> None:
    db = tmp_path / "nonces.sqlite3"
    code = textwrap.dedent(
        """
        import os, signal, sys
        from pathlib import Path
        from asfaload.store.nonces import SqliteNonceStore
        store = SqliteNonceStore(Path(sys.argv[1]))
        assert store.remember(sys.argv[2], 1_700_000_300, 1_700_000_000)
        print("remembered", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    nonce = str(uuid.uuid4())
    proc = subprocess.run(
        [sys.executable, "-c", code, str(db), nonce], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL and "remembered" in proc.stdout
    reopened = SqliteNonceStore(db)
    assert not reopened.remember(nonce, 1_700_000_300, NOW)  # a replay after the restart
    assert reopened.remember(str(uuid.uuid4()), 1_700_000_300, NOW)
    assert os.path.exists(db)
