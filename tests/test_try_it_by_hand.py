"""docs/try-it-by-hand.md, run as written: its ``sh`` blocks, in order, in one bash, with the
real ``asfaload dev forge`` and ``asfaload serve`` in the background. Only the two fixed ports
of the page are swapped for free ones (tests run side by side)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from asfaload.devtools.server import free_port

PAGE = Path(__file__).resolve().parents[1] / "docs" / "try-it-by-hand.md"


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.S | re.M)


def test_the_page_runs_as_written(tmp_path: Path) -> None:
    blocks = sh_blocks(PAGE.read_text())
    assert len(blocks) >= 9
    script = "\n".join(blocks)
    assert "--port 8765" in script and "asfaload serve --port 3000" in script
    forge_port, server_port = free_port(), free_port()
    # The client finds the server through forge.env's ASFALOAD_BACKEND_URL: -u sets it.
    script = script.replace("--port 8765", f"--port {forge_port} -u http://127.0.0.1:{server_port}")
    script = script.replace("asfaload serve --port 3000", f"asfaload serve --port {server_port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the forge and the server it starts are in this group
    )
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever a failed step left running
    assert proc.returncode == 0, out
    work = tmp_path / "try-asfaload"
    assert "Repository registered successfully!" in out
    assert "Success! Signature submitted (complete)" in out
    assert "✓ All done! Verified 2 signature(s)" in out
    assert "This file has been revoked." in out
    assert (work / "downloads" / "tool.tar.gz").read_bytes() == (work / "tool.tar.gz").read_bytes()
    assert not (work / "refused.tar.gz").exists()
    assert "Traceback" not in out
