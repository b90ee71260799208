"""``--password-command CMD`` and ``ASFALOAD_PASSWORD_COMMAND``: a password manager gives the
key password (``pass show asfaload``). Run through the real shell and the real console script."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from asfaload.crypto import SecretKey
from asfaload.devtools.server import ASFALOAD

PASSWORD = "correct horse battery staple 42"


def asfaload(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
    full["ASFALOAD_INSECURE_TEST_KDF_PARAMS"] = "8,1,1"
    full.update(env or {})
    return subprocess.run(
        [ASFALOAD, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=120,
    )


def echo(password: str) -> str:
    """A command printing ``password`` and, like pass(1), more lines after it."""
    return f"printf '%s\\nurl: https://example.com\\n' {shlex.quote(password)}"


@pytest.fixture(scope="module", params=["minisign", "ed25519"])
def key(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp(f"pwcmd-{request.param}")
    res = asfaload("new-keys", "-n", "k", "-o", str(d), "-a", request.param, "-p", PASSWORD)
    assert res.returncode == 0, res.stderr
    return d / "k"


@pytest.fixture
def release(tmp_path: Path) -> Path:
    f = tmp_path / "release.bin"
    f.write_bytes(b"bytes to sign" * 100)
    return f


def sign(key: Path, release: Path, *args: str, env: dict[str, str] | None = None):
    out = release.with_name(release.name + f".{len(list(release.parent.iterdir()))}.sig")
    return asfaload("sign-file", str(release), "-K", str(key), "-o", str(out), *args, env=env)


def error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 1, res
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    return lines[0]


def test_option_and_env_give_the_first_line(key: Path, release: Path) -> None:
    ok = sign(key, release, "--password-command", echo(PASSWORD))
    assert ok.returncode == 0, ok.stderr
    assert PASSWORD not in ok.stdout + ok.stderr
    ok = sign(key, release, env={"ASFALOAD_PASSWORD_COMMAND": echo(PASSWORD)})
    assert ok.returncode == 0, ok.stderr
    # Only the line ending is removed: a trailing space is part of the password.
    wrong = sign(key, release, "--password-command", echo(PASSWORD + " "))
    assert "Wrong password" in error_line(wrong)


def test_precedence(key: Path, release: Path, tmp_path: Path) -> None:
    bad_cmd = {"ASFALOAD_PASSWORD_COMMAND": echo("not the password")}
    # A per-command variable wins over the command every command shares...
    ok = sign(key, release, env={**bad_cmd, "ASFALOAD_SIGN_FILE_PASSWORD": PASSWORD})
    assert ok.returncode == 0, ok.stderr
    pw_file = tmp_path / "pw"
    pw_file.write_text(PASSWORD + "\n")
    ok = sign(key, release, env={**bad_cmd, "ASFALOAD_SIGN_FILE_PASSWORD_FILE": str(pw_file)})
    assert ok.returncode == 0, ok.stderr
    # ...and an option wins over every variable.
    env = {**bad_cmd, "ASFALOAD_SIGN_FILE_PASSWORD": "not it either"}
    ok = sign(key, release, "--password-command", echo(PASSWORD), env=env)
    assert ok.returncode == 0, ok.stderr
    ok = sign(key, release, "-P", str(pw_file), env=env)
    assert ok.returncode == 0, ok.stderr
    # The shared command is consulted only when nothing more specific is given.
    bad = sign(key, release, env=bad_cmd)
    assert "Wrong password" in error_line(bad)
    both = sign(key, release, "-p", PASSWORD, "--password-command", echo(PASSWORD))
    assert "--password conflicts with --password-command" in error_line(both)


def test_failing_command_is_one_clear_line(key: Path, release: Path) -> None:
    cmd = "echo 'Error: asfaload is not in the password store.' >&2; exit 1"
    line = error_line(sign(key, release, "--password-command", cmd))
    assert line == (
        "Error: The password command (--password-command) failed with exit code 1: "
        "Error: asfaload is not in the password store."
    )
    res = sign(key, release, "--json", env={"ASFALOAD_PASSWORD_COMMAND": "exit 7"})
    assert res.returncode == 1 and res.stdout == ""
    assert json.loads(res.stderr) == {
        "error": "The password command (ASFALOAD_PASSWORD_COMMAND) failed with exit code 7"
    }
    # What a failing command printed on stdout may be the password: it is never shown.
    leak = sign(key, release, "--password-command", f"{echo(PASSWORD)}; exit 2")
    assert PASSWORD not in leak.stdout + leak.stderr
    assert "exit code 2" in error_line(leak)
    missing = sign(key, release, "--password-command", "no-such-password-manager-xyz")
    assert "exit code 127" in error_line(missing) and "not found" in missing.stderr
    empty = sign(key, release, "--password-command", "true")
    assert "printed no password" in error_line(empty)


def test_command_gets_no_stdin(key: Path, release: Path) -> None:
    # Our stdin is not handed to the command: `cat` reads nothing even when we are fed input.
    res = asfaload(
        "sign-file", str(release), "-K", str(key), "--password-command", "cat", stdin=PASSWORD
    )
    assert "printed no password" in error_line(res)


def test_not_run_for_a_key_without_password(
    tmp_path: Path, release: Path, minisign_bin: str
) -> None:
    # A minisign key saved without encryption (minisign -W) needs no password.
    unencrypted = tmp_path / "w.key"
    res = subprocess.run(
        [minisign_bin, "-G", "-W", "-p", str(tmp_path / "w.pub"), "-s", str(unencrypted)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    marker = tmp_path / "ran"
    ok = sign(unencrypted, release, "--password-command", f"touch {shlex.quote(str(marker))}")
    assert ok.returncode == 0, ok.stderr
    assert not marker.exists()


def test_new_keys_takes_it_and_account_passwords_do_not(tmp_path: Path) -> None:
    ok = asfaload(
        "new-keys", "-n", "k", "-o", str(tmp_path), "-a", "ed25519", "--password-command",
        echo(PASSWORD),
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert SecretKey.load(tmp_path / "k", PASSWORD).algorithm == "ed25519"
    # An account password (admin add-user, tuf login) is not the key password a password
    # manager command gives: the shared variable is not used for it.
    res = asfaload(
        "admin", "add-user", "--data-dir", str(tmp_path / "data"), "--username", "u",
        env={"ASFALOAD_PASSWORD_COMMAND": echo(PASSWORD)},
    )  # fmt: skip
    line = error_line(res)
    assert "stdin is not a terminal" in line and "ASFALOAD_PASSWORD_COMMAND" not in line
