"""Run every benchmark in bench/ and write BENCHMARKS.md.

Each ``bench/bench_*.py`` is run as its own process (so peak RSS and caches do not leak between
them) and prints one Markdown section on stdout: a heading, what was measured, the baseline
measured in the same run, the ratio and the target. ``make bench`` runs this file; pass module
names (``python bench/run.py bench_download``) to run a subset and keep the other sections.
"""

from __future__ import annotations

import datetime as _dt
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "BENCHMARKS.md"
MARK = "<!-- bench:{} -->"


def _sections(text: str) -> dict[str, str]:
    found = re.findall(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench -->\n", text, flags=re.S)
    return dict(found)


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    old = _sections(OUT.read_text()) if OUT.exists() else {}
    failed = 0
    for name in names:
        print(f"== {name}", flush=True)
        proc = subprocess.run(
            [sys.executable, str(ROOT / "bench" / f"{name}.py")],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            failed += 1
            sys.stderr.write(proc.stderr[-4000:])
            old[name] = f"## {name}\n\nFAILED in the last run (exit {proc.returncode}).\n\n"
            continue
        old[name] = proc.stdout.rstrip() + "\n\n"
        print(proc.stdout)
    head = (
        "# Benchmarks\n\n"
        "Written by `make bench` (`bench/run.py`). Every figure is a ratio against a baseline "
        "measured in the same run on the same machine; absolute numbers are for context only.\n\n"
        f"Last run: {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M UTC}, "
        f"Python {platform.python_version()}, {platform.machine()}.\n\n"
    )
    body = "".join(f"{MARK.format(k)}\n{v}<!-- /bench -->\n" for k, v in sorted(old.items()))
    OUT.write_text(head + body)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
