"""What people coming from minisign, cosign and git expect, end to end on a real server and the
forge emulator: the release URL they have in hand is accepted where a mirror path was, `revoke`
asks before it acts on a terminal, `download` does not overwrite a file without --force, and
the progress a person watches has binary units, speed and time left (scripts keep the manual's
lines)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from asfaload.cli.download import live_progress_text

from asfaload.client.download import duration_text, human_size
from asfaload.devtools.harness import (
    PASSWORD,
    Signer,
    World,
    register_and_activate,
    register_release,
)
from asfaload.devtools.server import ASFALOAD
from tests.support.pty import on_pty as run_on_pty

PROJECT = "https/github.com/443/acme/urls"
REL = "https://github.com/acme/urls/releases/tag/v1.0"
ASSET_URL = "https://github.com/acme/urls/releases/download/v1.0/urls.tar.gz"
INDEX = f"{PROJECT}/releases/tag/v1.0/asfaload.index.json"
ASSET = os.urandom(3 << 20)  # 3 MiB: a few progress redraws


@pytest.fixture(scope="module")
def e2e_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with World(tmp_path_factory.mktemp("people")) as w:
        yield w


@pytest.fixture(scope="module")
def signers(e2e_env: World) -> dict[str, Signer]:
    w = e2e_env
    s = {n: w.new_keys(n) for n in ("a", "b", "r1", "r2")}
    raw = w.new_signers_file(
        "urls.json", [s["a"], s["b"]], 2, revocation=[s["r1"], s["r2"]], revocation_threshold=2
    )
    url = w.forge.put_github_file("acme", "urls", "main", "asfaload.signers/index.json", raw)
    register_and_activate(w, s["a"], url, list(s.values()))
    return s


def on_pty(argv: list[str], answers: list[str], env: dict[str, str], cwd: Path) -> str:
    """The command's pty transcript, after a first line with its exit code."""
    code, text = run_on_pty(argv, answers, env, cwd)
    return f"[exit {code}]\n" + text


# --- the release URL where a mirror path was ---------------------------------------------------------
def test_release_and_asset_urls_name_the_release_index(
    e2e_env: World, signers: dict[str, Signer], tmp_path: Path
) -> None:
    w, s = e2e_env, signers
    w.forge.add_github_release("acme", "urls", "v1.0", {"urls.tar.gz": ASSET})
    assert register_release(w, s["a"], "--github-release-url", REL) == INDEX

    # signature-status: the page URL, an asset URL and the path are one file.
    by_path = json.loads(w.run("signature-status", INDEX, "--json").stdout)
    for target in (REL, ASSET_URL):
        assert json.loads(w.run("signature-status", target, "--json").stdout) == by_path
    assert w.run("signature-status", REL).lines[0] == f"{INDEX}: pending"

    # sign-pending: one signer by the page URL, the other by the asset URL.
    assert w.as_signer(s["a"], "sign-pending", REL).lines == ["Success! Signature submitted"]
    assert w.as_signer(s["b"], "sign-pending", ASSET_URL, "--json").stdout.strip() == (
        '{"is_complete":true}'
    )
    assert w.run("signature-status", ASSET_URL).lines[0] == f"{INDEX}: complete"

    # revoke by URL; the second revocation key signs the pending revocation by the same URL.
    rv = w.as_signer(s["r1"], "revoke", REL)
    assert rv.lines == [f"Success! File revoked: {INDEX}"]
    assert w.as_signer(s["r2"], "sign-pending", REL).lines == [
        "Success! Signature submitted (complete)"
    ]
    assert w.run("signature-status", REL).lines[0] == f"{INDEX}: revoked"
    refused = w.download(ASSET_URL, "-o", str(tmp_path / "x"), ok=False)
    assert refused.returncode == 1 and not (tmp_path / "x").exists()


def test_gitlab_release_url(e2e_env: World, signers: dict[str, Signer]) -> None:
    w, s = e2e_env, signers
    raw = w.new_signers_file("gl-urls.json", [s["a"], s["b"]], 1)
    url = w.forge.put_gitlab_file("acme/urls", "main", "asfaload.signers/index.json", raw)
    project = register_and_activate(w, s["a"], url, [s["a"], s["b"]])
    rel = w.forge.add_gitlab_release("acme/urls", "v2.0", {"u.zip": b"zip" * 100})
    index = register_release(w, s["b"], "--gitlab-release-url", rel)
    assert index == f"{project}/-/releases/v2.0/asfaload.index.json"
    assert w.run("signature-status", rel).lines[0] == f"{index}: pending"
    assert w.as_signer(s["a"], "sign-pending", rel).lines == [
        "Success! Signature submitted (complete)"
    ]
    asset = "https://gitlab.com/acme/urls/-/releases/v2.0/downloads/u.zip"
    assert w.run("signature-status", asset).lines[0] == f"{index}: complete"


def test_a_url_that_names_no_release_is_one_error_line(e2e_env: World) -> None:
    for command in ("signature-status", "sign-pending", "revoke"):
        args = [command, "https://github.com/acme/urls"]
        if command != "signature-status":
            args += ["-K", "keys/a"]
        res = e2e_env.run(*args, ok=False)
        assert res.returncode == 1 and res.stdout == ""
        assert res.stderr.startswith("Error: Not a GitHub release URL")
        assert len(res.stderr.splitlines()) == 1


# --- revoke asks first, on a terminal ---------------------------------------------------------------
def test_revoke_asks_on_a_terminal(e2e_env: World, signers: dict[str, Signer]) -> None:
    w, s = e2e_env, signers
    w.forge.add_github_release("acme", "urls", "v3.0", {"urls.tar.gz": b"three"})
    rel = "https://github.com/acme/urls/releases/tag/v3.0"
    index = register_release(w, s["a"], "--github-release-url", rel)
    w.sign_all_pending([s["a"], s["b"]], index)
    env = {**w.env(), "ASFALOAD_REVOKE_PASSWORD": PASSWORD}
    argv = [ASFALOAD, "revoke", "-K", "keys/r1", rel]

    no = on_pty(argv, ["n"], env, w.workdir)
    assert no.startswith("[exit 1]\n"), no
    assert f"Revoke {index}? Downloads of it will be refused once the revocation is signed" in no
    assert "Error: Cancelled: nothing was changed" in no
    assert w.run("signature-status", rel, "--json").stdout.count('"revocation":null') == 1

    yes = on_pty(argv, ["y"], env, w.workdir)
    assert yes.startswith("[exit 0]\n") and f"Success! File revoked: {index}" in yes, yes
    status = json.loads(w.run("signature-status", rel, "--json").stdout)
    assert status["revocation"]["status"] == "pending"

    # The second revocation key signs the pending revocation by the release URL, on a terminal.
    signed = on_pty([ASFALOAD, "sign-pending", "-K", "keys/r2", rel], [], {**env, "ASFALOAD_SIGN_PENDING_PASSWORD": PASSWORD}, w.workdir)  # fmt: skip
    assert signed.startswith("[exit 0]\n") and "(complete)" in signed, signed


def test_revoke_yes_skips_the_question_on_a_terminal(
    e2e_env: World, signers: dict[str, Signer]
) -> None:
    w, s = e2e_env, signers
    w.forge.add_github_release("acme", "urls", "v4.0", {"urls.tar.gz": b"four"})
    rel = "https://github.com/acme/urls/releases/tag/v4.0"
    index = register_release(w, s["a"], "--github-release-url", rel)
    w.sign_all_pending([s["a"], s["b"]], index)
    env = {**w.env(), "ASFALOAD_REVOKE_PASSWORD": PASSWORD}
    out = on_pty([ASFALOAD, "revoke", "-K", "keys/r1", "--yes", rel], [], env, w.workdir)
    assert out.startswith("[exit 0]\n") and "Revoke " not in out, out
    assert f"Success! File revoked: {index}" in out


# --- download: no silent overwrite; the progress a person watches ---------------------------------
@pytest.fixture(scope="module")
def five(e2e_env: World, signers: dict[str, Signer]) -> str:
    """A signed release's asset URL."""
    w, s = e2e_env, signers
    w.forge.add_github_release("acme", "urls", "v5.0", {"five.bin": ASSET})
    index = register_release(
        w, s["a"], "--github-release-url", "https://github.com/acme/urls/releases/tag/v5.0"
    )
    w.sign_all_pending([s["a"], s["b"]], index)
    return "https://github.com/acme/urls/releases/download/v5.0/five.bin"


def test_download_refuses_to_overwrite_without_force(
    e2e_env: World, five: str, tmp_path: Path
) -> None:
    w, url = e2e_env, five
    mine = tmp_path / "five.bin"
    mine.write_bytes(b"my own file")
    # The default name, in the working directory, as well as -o.
    for args, cwd in (((), tmp_path), (("-o", str(mine)), None)):
        res = w.download(url, *args, ok=False, cwd=cwd)
        assert res.returncode == 1 and res.stdout == ""
        assert res.stderr == (
            f"Error: Refusing to overwrite existing file {'five.bin' if not args else mine}"
            " (give --force to replace it)\n"
        )
        assert mine.read_bytes() == b"my own file"
    assert [p.name for p in tmp_path.iterdir()] == ["five.bin"]  # no partial file either
    w.download(url, "-o", str(mine), "--force")
    assert mine.read_bytes() == ASSET


def test_progress_on_a_terminal_has_binary_units_speed_and_time_left(
    e2e_env: World, five: str, tmp_path: Path
) -> None:
    w, url = e2e_env, five
    out = on_pty([ASFALOAD, "download", "-o", "tty.bin", url], [], w.env(), tmp_path)
    assert out.startswith("[exit 0]\n"), out
    assert (tmp_path / "tty.bin").read_bytes() == ASSET
    lines = out.split("\n")
    assert "  Size: 3.00 MiB" in lines
    assert "✓ Download complete (3.00 MiB)" in lines
    # The progress line is redrawn in place; its last state says how long it took.
    drawn = next(line for line in lines if "Progress: " in line).split("\r")
    final = drawn[-1].rstrip()
    assert final.startswith("Progress: 100.0% (3.00 MiB / 3.00 MiB, ") and " in " in final, final
    assert "/s, " in final and final.endswith(" s)"), final
    assert "MB" not in out  # the manual's "MB" lines are for pipes, not for people


def test_progress_pieces() -> None:
    assert [human_size(n) for n in (0, 1, 1023, 1024, 75_000, 5 << 20, 3 << 30)] == [
        "0 B", "1 B", "1023 B", "1.00 KiB", "73.2 KiB", "5.00 MiB", "3.00 GiB",
    ]  # fmt: skip
    assert human_size(200 * 1024 * 1024) == "200 MiB"
    assert [duration_text(x) for x in (0.2, 1, 59.4, 61, 3599, 7260)] == [
        "<1 s", "1 s", "59 s", "1 min 01 s", "59 min 59 s", "2 h 01 min",
    ]  # fmt: skip
    line = live_progress_text(1 << 20, 4 << 20, 2.0)
    assert line == "Progress: 25.0% (1.00 MiB / 4.00 MiB, 512 KiB/s, 6 s left)"
    assert live_progress_text(10, 10, 0.0) == "Progress: 100.0% (10 B / 10 B)"
