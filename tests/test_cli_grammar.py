"""One grammar for every command: --json everywhere (one object on stdout on success, one
``{"error": …}`` object on stderr on failure, exit 0/1/2), examples in every --help, the
commands grouped by role in ``asfaload --help``, the shared flags (-o, -K, --data-dir), key ids
beside keys, and shell completion.

Every command of Click's tree is walked, so a command added later without --json or examples
fails here. Backend commands run against a real server on loopback (``live_server``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from asfaload.cli.commands import COMMANDS, ROLES
from asfaload.cli.main import cli
from click.testing import CliRunner, Result

from asfaload.crypto import PublicKey
from asfaload.devtools.server import ASFALOAD, ServerProcess
from tests.support.cli import leaf_commands
from tests.support.ssh import ssh_keygen

LEAVES = leaf_commands()


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    base = {k: None for k in os.environ if k.startswith("ASFALOAD_")}
    return CliRunner().invoke(cli, list(args), env={**base, **(env or {})})


def one_error(res: Result) -> str:
    """The failure shape with --json: nothing on stdout, one error object on stderr."""
    assert res.stdout == "", res.output
    doc = json.loads(res.stderr)
    assert res.stderr.count("\n") == 1, res.stderr  # one compact line
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"], doc
    assert list(doc)[0] == "error" and "\n" not in doc["error"], doc
    return str(doc["error"])


# --- help: examples everywhere, --json on every command, roles at the top -------------------------
def test_the_walk_finds_every_command() -> None:
    # The walk is what the other tests rely on: a broken walk must not pass them vacuously.
    assert len(LEAVES) >= 37
    assert {("download",), ("tuf", "root", "new"), ("dev", "forge"), ("mirror", "init")} <= set(
        LEAVES
    )


@pytest.mark.parametrize("command", LEAVES, ids=" ".join)
def test_every_command_takes_json(command: tuple[str, ...]) -> None:
    res = invoke(*command, "--help")
    assert "  --json " in res.stdout, res.stdout


def test_top_level_help_groups_commands_by_role() -> None:
    res = invoke("--help")
    out = res.stdout
    headings = [f"Commands for {role.lower()}:" for role, _ in ROLES]
    positions = [out.index(h) for h in headings]
    assert positions == sorted(positions)
    assert "\nCommands:\n" not in out  # Click's flat list is replaced, not repeated
    for (_, names), start, end in zip(ROLES, positions, [*positions[1:], len(out)], strict=True):
        section = out[start:end]
        for name in names:
            assert f"\n  {name} " in section, (name, section)
    listed = [n for _, names in ROLES for n in names]
    assert sorted(listed) == sorted(COMMANDS)  # every command in exactly one role


# --- the shared flags ---------------------------------------------------------------------------------
def _opts(command: tuple[str, ...]) -> dict[str, click.Parameter]:
    cmd: click.Command = cli
    for word in command:
        assert isinstance(cmd, click.Group)
        found = cmd.get_command(click.Context(cmd), word)
        assert found is not None
        cmd = found
    return {o: p for p in cmd.params for o in getattr(p, "opts", [])}


@pytest.mark.parametrize("command", LEAVES, ids=" ".join)
def test_shared_flags_mean_the_same_everywhere(command: tuple[str, ...]) -> None:
    opts = _opts(command)
    if "-K" in opts:
        assert "--secret-key" in opts["-K"].opts
    if "-o" in opts:
        assert any(o.startswith("--output") for o in opts["-o"].opts), opts["-o"].opts
    if "-u" in opts:
        assert "--backend-url" in opts["-u"].opts
    if "--data-dir" in opts:
        assert not opts["--data-dir"].required, "--data-dir has a default everywhere"


def test_old_tuf_spellings_still_work_but_are_not_shown(tmp_path: Path) -> None:
    for command, old, new in (
        (("tuf", "keygen"), "--out", "--output"),
        (("tuf", "sign"), "--key", "--secret-key"),
        (("tuf", "sign-pending"), "--key", "--secret-key"),
        (("tuf", "root", "new"), "--sign", "--secret-key"),
        (("tuf", "root", "new"), "--out", "--output"),
        (("tuf", "bootstrap"), "--sign", "--secret-key"),
        (("tuf", "pending"), "--out", "--output"),
    ):
        opts = _opts(command)
        assert opts[old] is opts[new], (command, old)
        shown = invoke(*command, "--help").stdout
        assert f"{new} " in shown and f"{old} " not in shown and f"{old}," not in shown
    old = invoke("tuf", "keygen", "--out", str(tmp_path / "a.key"), "--json")
    new = invoke("tuf", "keygen", "-o", str(tmp_path / "b.key"), "--json")
    assert old.exit_code == new.exit_code == 0
    assert json.loads(old.stdout)["keyid"] != json.loads(new.stdout)["keyid"]


def test_data_dir_defaults_to_the_environment_then_asfaload_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    env = {"ASFALOAD_DATA_DIR": str(data)}
    assert invoke("tuf", "online-keys", "--json", env=env).exit_code == 0
    assert (data / "private" / "tuf" / "online-keys").is_dir()
    assert invoke("mirror", "init", "--json", env=env).exit_code == 0
    assert (data / "mirror.git" / "HEAD").is_file()
    # No variable: ./asfaload-data, relative to where the command runs.
    monkeypatch.chdir(tmp_path)
    res = invoke("mirror", "init", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"repo": "asfaload-data/mirror.git"}
    assert (tmp_path / "asfaload-data" / "mirror.git" / "HEAD").is_file()


# --- --json: one object on success, one error object on failure ---------------------------------------
@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Files the invocations below need: an unencrypted OpenSSH key (no password to give), a
    public key, a file, a TUF key, a port nothing listens on."""
    d = tmp_path_factory.mktemp("kit")
    ssh = ssh_keygen(d, "id_ed25519", "-t", "ed25519")
    art = d / "release.bin"
    art.write_bytes(b"release\n" * 100)
    assert invoke("tuf", "keygen", "-o", str(d / "root.key")).exit_code == 0
    pub = invoke("tuf", "keygen", "-o", str(d / "root2.key")).stdout
    (d / "root2.pub.json").write_text(pub)
    assert invoke("tuf", "online-keys", "--data-dir", str(d / "tufdata"), "--json").exit_code == 0
    (d / "online.json").write_text(
        invoke("tuf", "online-keys", "--data-dir", str(d / "tufdata"), "--json").stdout
    )
    (d / "junk").write_text("not json\n")
    (d / "pw").write_text("a long admin password\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    return {
        "dir": str(d),
        "key": str(ssh),
        "pub": str(ssh) + ".pub",
        "file": str(art),
        "tufkey": str(d / "root.key"),
        "tufpub": str(d / "root2.pub.json"),
        "online": str(d / "online.json"),
        "junk": str(d / "junk"),
        "pw": str(d / "pw"),
        "closed": f"http://127.0.0.1:{closed}",
    }


REL = "https://github.com/acme/tool/releases/tag/v1.0"
ASSET = "https://github.com/acme/tool/releases/download/v1.0/tool.tar.gz"

# One failing invocation per command (exit 1, a runtime failure rather than a usage error).
# ``{name}`` fields come from ``kit``; ``{new}`` is a fresh path under the test's tmp dir;
# ``{server}`` is the live server (backend commands fail there with a real answer).
FAILURES: dict[tuple[str, ...], list[str]] = {
    ("admin", "add-user"): ["--data-dir", "{new}", "--username", "u", "--password-file", "{new}"],
    ("check-index",): [REL, "-u", "{server}"],
    ("dev", "forge"): ["--dir", "{new}", "--port", "{busy}"],
    ("dev", "publish"): ["{file}", REL, "--dir", "{new}"],
    ("download",): [ASSET, "-o", "{file}"],
    ("get-digest",): ["{new}"],
    ("list-pending",): ["-K", "{key}", "-u", "{closed}"],
    ("mirror", "init"): ["{file}/sub"],
    ("mirror", "install-hooks"): ["{dir}"],
    ("mirror", "status"): ["--data-dir", "{new}"],
    ("mirror", "sync"): ["--data-dir", "{new}", "--from", "{new}"],
    ("mirror", "verify"): ["--repo", "{dir}"],
    ("new-keys",): ["-n", "k", "-o", "{file}", "-p", "x"],
    ("new-signers-file",): ["-A", "1", "-o", "{new}"],
    ("ping",): ["-u", "{closed}"],
    ("register-assets",): ["-K", "{key}", "-u", "{server}"],
    ("register-repo",): ["-K", "{key}", "-u", "{server}", "https://github.com/a/b/blob/main/x"],
    ("revoke",): ["-K", "{key}", "-u", "{server}", "--yes", REL],
    ("serve",): ["--config", "{junk}"],
    ("sign-file",): ["{new}", "-K", "{key}"],
    ("sign-pending",): ["-K", "{key}", "-u", "{server}", REL],
    ("signature-status",): ["-u", "{server}", REL],
    ("tuf", "bootstrap"): ["--app", "a", "-u", "{server}", "--token-file", "{new}", "--status"],
    ("tuf", "keygen"): ["-o", "{file}"],
    ("tuf", "login"): ["--username", "u", "-p", "x", "-u", "{closed}"],
    ("tuf", "online-keys"): ["--data-dir", "{file}/sub"],
    ("tuf", "pending"): ["--app", "a", "-u", "{server}", "--token-file", "{new}"],
    ("tuf", "root", "new"): ["--root-key", "{junk}", "--online-keys", "{online}"],
    ("tuf", "root", "rotate"): ["--threshold", "1"],
    ("tuf", "rotate"): ["--app", "a", "--root", "{junk}", "--token-file", "{new}"],
    ("tuf", "sign"): ["-K", "{tufkey}", "--root", "{junk}"],
    ("tuf", "sign-pending"): ["--app", "a", "-K", "{tufkey}", "--token-file", "{new}"],
    ("tuf", "status"): ["--app", "a", "-u", "{server}", "--token-file", "{new}"],
    ("tuf", "task"): ["t1", "-u", "{server}", "--token-file", "{new}"],
    ("update-signers",): ["-K", "{key}", "-u", "{closed}", "https://github.com/a/b/blob/main/x"],
    ("verify-file",): ["{new}", "--url", ASSET, "-u", "{server}"],
    ("verify-sig",): ["{file}", "-s", "{file}"],
}


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _fill(args: list[str], values: dict[str, str]) -> list[str]:
    return [a.format(**values) for a in args]


def test_the_failure_table_covers_every_command() -> None:
    assert sorted(FAILURES) == sorted(LEAVES)


@pytest.mark.parametrize("command", LEAVES, ids=" ".join)
def test_json_failure_is_one_error_object_on_stderr(
    command: tuple[str, ...],
    kit: dict[str, str],
    live_server: ServerProcess,  # noqa: F811
    busy_port: int,
    tmp_path: Path,
) -> None:
    values = {**kit, "new": str(tmp_path / "new"), "server": live_server.base_url}
    values["busy"] = str(busy_port)
    args = _fill(FAILURES[command], values)
    before = Path(kit["file"]).read_bytes()
    human = invoke(*command, *args)
    assert human.exit_code == 1, human.output
    assert human.stderr.startswith(("Error: ", "REFUSED: ")), human.stderr
    res = invoke(*command, *args, "--json")
    assert res.exit_code == 1, res.output
    one_error(res)
    assert Path(kit["file"]).read_bytes() == before  # no failure touched the shared file


@pytest.mark.parametrize("command", LEAVES, ids=" ".join)
def test_json_usage_error_is_one_error_object_exit_2(command: tuple[str, ...]) -> None:
    res = invoke(*command, "--no-such-option", "--json")
    assert res.exit_code == 2, res.output
    assert "no-such-option" in one_error(res)


def _one_object(res: Result) -> dict[str, object]:
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert isinstance(doc, dict) and "error" not in doc and "ok" not in doc, doc
    # One compact line, as every command prints it: `| jq` or a line reader alike.
    assert res.stdout == json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n"
    assert res.stderr == "", res.stderr  # no notes, no pictures: only the object
    return doc


def test_json_successes_are_one_object(
    kit: dict[str, str],
    live_server: ServerProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    t = tmp_path
    cheap = {"ASFALOAD_INSECURE_TEST_KDF_PARAMS": "8,1,1", "ASFALOAD_NEW_KEYS_PASSWORD": "pw"}
    runs: dict[tuple[str, ...], tuple[list[str], dict[str, str]]] = {
        ("get-digest",): ([kit["file"]], {}),
        ("new-keys",): (["-n", "k", "-o", str(t / "keys"), "--accept-weak-password"], cheap),
        ("new-signers-file",): (
            ["--artifact-signer-file", kit["pub"], "-A", "1", "-o", str(t / "s.json")],
            {},
        ),
        ("sign-file",): ([kit["file"], "-K", kit["key"], "-o", str(t / "sig")], {}),
        ("tuf", "keygen"): (["-o", str(t / "k2")], {}),
        ("tuf", "sign"): (["-K", kit["tufkey"], "--root", str(t / "root.json")], {}),
        ("tuf", "online-keys"): (["--data-dir", str(t / "d")], {}),
        ("admin", "add-user"): (
            ["--data-dir", str(t / "d"), "--username", "ann", "--password-file", kit["pw"]],
            {},
        ),
        ("mirror", "init"): ([str(t / "m.git")], {}),
        ("mirror", "verify"): (["--repo", str(t / "m.git")], {}),
        ("mirror", "status"): (["--repo", str(t / "m.git")], {}),
        ("mirror", "install-hooks"): ([str(t / "m.git")], {}),
        ("dev", "publish"): ([kit["file"], ASSET, "--dir", str(t / "forge")], {}),
        ("ping",): (["-u", live_server.base_url], {}),
        ("list-pending",): (["-K", kit["key"], "-u", live_server.base_url], {}),
    }
    root = invoke(
        "tuf", "root", "new", "--root-key", kit["tufpub"], "--online-keys", kit["online"], "--json"
    )
    (t / "root.json").write_text(root.stdout)
    assert _one_object(root)["signed"]
    written = invoke(
        "tuf", "root", "new", "--root-key", kit["tufpub"], "--online-keys", kit["online"],
        "-o", str(t / "root-out.json"), "--json",
    )  # fmt: skip
    assert _one_object(written)["output"] == str(t / "root-out.json")
    for command, (args, env) in runs.items():
        doc = _one_object(invoke(*command, *args, "--json", env=env))
        assert doc, command
    assert _one_object(invoke("verify-sig", kit["file"], "-s", str(t / "sig"), "-k", kit["pub"], "--json"))["key_id"] == PublicKey.from_file(kit["pub"]).key_id  # fmt: skip


def _first_line_then_stop(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    """Start a long-running command, read its one JSON object, stop it (SIGTERM)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
    proc = subprocess.Popen(
        [ASFALOAD, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**full, **env},
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=60)
    assert rest == "", rest  # one object, nothing after it
    doc = json.loads(line)
    assert isinstance(doc, dict)
    return doc


def test_long_running_commands_print_one_object_first(tmp_path: Path) -> None:
    from asfaload.devtools.server import free_port

    port = free_port()
    served = _first_line_then_stop(
        ["serve", "--data-dir", str(tmp_path / "data"), "--port", str(port), "--json"], {}
    )
    assert served == {
        "url": f"http://127.0.0.1:{port}",
        "data_dir": str(tmp_path / "data"),
        "workers": 1,
        "read_only": False,
    }
    forge = _first_line_then_stop(["dev", "forge", "--dir", str(tmp_path / "f"), "--port", "0", "--json"], {})  # fmt: skip
    assert set(forge) == {"origin", "root", "env"}


# --- key ids wherever a key is shown ---------------------------------------------------------------
def test_key_ids_beside_keys(tmp_path: Path, kit: dict[str, str]) -> None:
    cheap = {"ASFALOAD_INSECURE_TEST_KDF_PARAMS": "8,1,1", "ASFALOAD_NEW_KEYS_PASSWORD": "pw"}
    made = invoke("new-keys", "-n", "k", "-o", str(tmp_path), "--accept-weak-password", env=cheap)
    assert made.exit_code == 0, made.output
    key = PublicKey.from_file(tmp_path / "k.pub")
    # stdout keeps the manual's two lines; the key id is a note on stderr.
    assert len(made.stdout.splitlines()) == 2
    assert made.stderr == f"Key ID: {key.key_id} {key}\n"
    summary = invoke("new-signers-file", "--artifact-signer-file", str(tmp_path / "k.pub"), "-A", "1", "-o", str(tmp_path / "s.json"))  # fmt: skip
    assert summary.exit_code == 0
    assert summary.stderr == f"  artifact signer: {key.key_id} {key}\n"
    ssh = PublicKey.from_file(kit["pub"])
    signed = invoke("sign-file", kit["file"], "-K", kit["key"], "-o", str(tmp_path / "sig"))
    assert signed.stderr == f"Signed with key {ssh.key_id} {ssh}\n"
    checked = invoke("verify-sig", kit["file"], "-s", str(tmp_path / "sig"), "-k", kit["pub"])
    assert f"Signed by {ssh.key_id} {ssh} " in checked.stdout


# --- shell completion ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_and_answers(shell: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
    script = subprocess.run(
        [ASFALOAD], env={**env, "_ASFALOAD_COMPLETE": f"{shell}_source"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert script.returncode == 0 and "_ASFALOAD_COMPLETE" in script.stdout, script.stderr
    if shell != "bash":
        return
    # What bash asks the program for `asfaload sig<TAB>` and `asfaload tuf root <TAB>`.
    words = subprocess.run(
        [ASFALOAD], env={**env, "_ASFALOAD_COMPLETE": "bash_complete", "COMP_WORDS": "asfaload sig", "COMP_CWORD": "1"},
        capture_output=True, text=True, timeout=60,
    ).stdout.split()  # fmt: skip
    # Click answers "type,value" lines.
    assert {"plain,sign-file", "plain,sign-pending", "plain,signature-status"} == set(words)
    words = subprocess.run(
        [ASFALOAD], env={**env, "_ASFALOAD_COMPLETE": "bash_complete", "COMP_WORDS": "asfaload tuf root ", "COMP_CWORD": "3"},
        capture_output=True, text=True, timeout=60,
    ).stdout.split()  # fmt: skip
    assert {"plain,new", "plain,rotate"} <= set(words)
