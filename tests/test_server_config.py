"""Server configuration: defaults < TOML file < ASFALOAD_* environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from asfaload.server.config import ConfigError, ServerConfig


def test_defaults():
    c = ServerConfig.load(env={})
    assert (c.host, c.port, c.workers) == ("127.0.0.1", 3000, 1)
    assert c.data_dir == Path("asfaload-data")
    assert c.mirror_path == Path("asfaload-data/mirror.git")
    assert c.nonce_db_path == Path("asfaload-data/private/nonces.sqlite3")
    assert not c.allow_private_urls


def test_precedence_toml_env_flags(tmp_path):
    toml = tmp_path / "asfaload.toml"
    toml.write_text(
        '[server]\nport = 4000\nhost = "0.0.0.0"\nworkers = 3\n'
        'gitlab_hosts = ["git.example.org"]\nallow_private_urls = true\n'
    )
    env = {"ASFALOAD_PORT": "5000", "ASFALOAD_CONFIG": str(toml), "ASFALOAD_WORKERS": "2"}
    c = ServerConfig.load({"workers": 4, "host": None}, env=env)
    assert c.port == 5000  # env beats TOML
    assert c.workers == 4  # flag beats env
    assert c.host == "0.0.0.0"  # TOML beats default; a None flag is "not given"
    assert c.gitlab_hosts == ("git.example.org",)
    assert c.allow_private_urls is True


def test_env_lists_and_booleans():
    env = {
        "ASFALOAD_GITLAB_HOSTS": "A.example, b.example,",
        "ASFALOAD_ALLOW_PRIVATE_URLS": "0",
        "ASFALOAD_URL_REWRITES": "https://github.com=http://127.0.0.1:1/gh",
    }
    c = ServerConfig.load(env=env)
    assert c.gitlab_hosts == ("a.example", "b.example")
    assert c.allow_private_urls is False
    forge = c.forge_config()
    assert forge.http.rewrite("https://github.com/a/b") == "http://127.0.0.1:1/gh/a/b"
    assert forge.gitlab_hosts == ("a.example", "b.example")
    assert c.request_timeout == 30
    assert ServerConfig.load(env={"ASFALOAD_REQUEST_TIMEOUT": "7"}).request_timeout == 7


@pytest.mark.parametrize(
    "env",
    [
        {"ASFALOAD_PORT": "0"},
        {"ASFALOAD_PORT": "http"},
        {"ASFALOAD_WORKERS": "0"},
        {"ASFALOAD_ALLOW_PRIVATE_URLS": "maybe"},
        {"ASFALOAD_MAX_BODY_BYTES": "10"},
        {"ASFALOAD_REQUEST_TIMEOUT": "0"},
        {"ASFALOAD_REQUEST_TIMEOUT": "soon"},
        {"ASFALOAD_PRIMARY_URL": "ftp://asfaload.example"},
        {"ASFALOAD_PRIMARY_URL": "https://user:token@asfaload.example"},
        {"ASFALOAD_PRIMARY_URL": "https://asfaload.example/?token=x"},
        {"ASFALOAD_PRIMARY_URL": "https://asfaload.example:99999"},
        {"ASFALOAD_PRIMARY_URL": "/srv/primary/mirror.git"},
    ],
)
def test_invalid_values(env):
    with pytest.raises(ConfigError):
        ServerConfig.load(env=env)


def test_bad_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("port = ")
    with pytest.raises(ConfigError, match="Invalid configuration file"):
        ServerConfig.load(env={}, toml_path=bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="Unknown configuration keys: colour"):
        ServerConfig.load(env={}, toml_path=unknown)
    with pytest.raises(ConfigError, match="Cannot read"):
        ServerConfig.load(env={}, toml_path=tmp_path / "missing.toml")


def test_serve_reports_a_bad_configuration_as_one_line(tmp_path):
    """``asfaload serve`` answers an invalid setting like every command: one line, exit 1."""
    from asfaload.cli.main import cli
    from click.testing import CliRunner

    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nworkers = 0\n")
    for args, message in (
        (["--port", "0"], "Error: Invalid port: 0"),
        (["--config", str(bad)], "Error: Invalid number of workers: 0"),
    ):
        res = CliRunner().invoke(
            cli, ["serve", "--data-dir", str(tmp_path / "d"), *args], env={}, catch_exceptions=False
        )
        assert res.exit_code == 1, res.output
        assert res.stderr.strip() == message
        assert not (tmp_path / "d").exists()
    # A data dir whose mirror.git is not a mirror: refused before gunicorn starts, no traceback.
    (tmp_path / "d" / "mirror.git").mkdir(parents=True)
    res = CliRunner().invoke(cli, ["serve", "--data-dir", str(tmp_path / "d")], env={})
    assert res.exit_code == 1, res.output
    assert res.stderr.strip().splitlines()[-1] == "Error: Not a mirror repository"
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_the_served_mirror_caps_pushes(tmp_path):
    """The real server creates its mirror with receive.maxInputSize, from
    ASFALOAD_MAX_PUSH_BYTES when set, and sets it again when it opens an existing one."""
    import subprocess

    from asfaload.devtools.server import ServerProcess

    data = tmp_path / "data"

    def cap() -> str:
        out = subprocess.run(
            ["git", "--git-dir", str(data / "mirror.git"), "config", "receive.maxInputSize"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    server = ServerProcess(data).start()
    server.stop()
    assert cap() == str(64 * 1024 * 1024)
    server = ServerProcess(data, env={"ASFALOAD_MAX_PUSH_BYTES": "2097152"}).start()
    server.stop()
    assert cap() == "2097152"


def test_the_object_store_is_chosen_by_configuration(monkeypatch):
    """ASFALOAD_OBJECTS (or the objects key) picks the writer's object store; fast by default,
    and a name that is no store is refused at load."""
    assert ServerConfig.load(env={}).objects == "fast"
    assert ServerConfig.load(env={"ASFALOAD_OBJECTS": "libgit2"}).objects == "libgit2"
    with pytest.raises(ConfigError, match="object store"):
        ServerConfig.load(env={"ASFALOAD_OBJECTS": "loose"})
