"""The web page of a project in every state, in a real headless Chromium.

``python examples/webpage.py [OUT.png]`` starts a real ``asfaload serve`` on a fresh data dir,
fills its mirror with one project (a signers update, so a history entry; a complete release, a
pending one and a revoked one) and saves a screenshot of the project page, by default to
``docs/screenshot-project.png``. The seeding and the browser are in
``asfaload/devtools/webpage.py``; the tests (``tests/test_web.py``) use the same.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asfaload import layout
from asfaload.devtools.server import free_port, start_server, stop_server
from asfaload.devtools.webpage import chromium, screenshot, seed_demo
from asfaload.store import Mirror

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshot-project.png"


def main(argv: Sequence[str]) -> int:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    with tempfile.TemporaryDirectory(prefix="asfaload-web-") as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
        proc = start_server(data, port, env=env, log_path=Path(tmp) / "server.log")
        try:
            with Mirror.open(str(data / layout.MIRROR_REPO_DIR)) as mirror:
                demo = seed_demo(mirror)
            with chromium() as driver:
                screenshot(driver, f"http://127.0.0.1:{port}/projects/{demo.project}", out)
        finally:
            stop_server(proc)
    print(f"Screenshot of the project page saved to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
