"""A command run on a pseudo-terminal, answering its prompts: what a person at a terminal sees
(prompts that read /dev/tty, progress lines, confirmations)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def on_pty(
    argv: Sequence[str],
    answers: Sequence[str],
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 120,
) -> tuple[int, str]:
    """Run ``argv`` with a pty as stdin, stdout and stderr (its controlling terminal: getpass
    talks to /dev/tty); answer each prompt (output ending in ':' or ']' since the previous
    answer) in turn. Returns the exit code and all it wrote, with ``\\n`` line ends."""
    master, slave = pty.openpty()

    def controlling_tty() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        list(argv), stdin=slave, stdout=slave, stderr=slave, env=dict(env), cwd=cwd,
        preexec_fn=controlling_tty,
    )  # fmt: skip
    os.close(slave)
    out = b""
    pending = list(answers)
    answered_at = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            out += chunk
            if pending and out[answered_at:].rstrip().endswith((b":", b"]")):
                os.write(master, pending.pop(0).encode() + b"\n")
                answered_at = len(out)
        elif proc.poll() is not None:
            break
    if proc.poll() is None:
        proc.kill()
    code = proc.wait(timeout=30)
    os.close(master)
    return code, out.decode(errors="replace").replace("\r\n", "\n")
