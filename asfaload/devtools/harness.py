"""A self-contained asfaload world on this machine: a forge emulator, a real server, and the CLI.

Used by ``examples/demo.py`` (``make demo``), the end-to-end tests and the download benchmark. Everything runs on
loopback in one temporary directory:

- the forge emulator (``asfaload/devtools/forge.py``: GitHub, GitLab and a file server on one port),
  reached through ``ASFALOAD_URL_REWRITES`` exactly as air-gapped users would;
- ``asfaload serve`` as a subprocess on a free port, with a fresh data dir;
- the real ``asfaload`` console script, run as a subprocess for every step, as a person would
  type it: paths relative to the working directory, key passwords from a file (``-P``) or the
  per-command environment variables, never on the command line; stdin is not a terminal, so
  nothing is asked.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .forge import ForgeEmulator
from .server import ASFALOAD, free_port, read_log, start_server, stop_server

# Cheap Argon2id for ed25519 keys made in tests and the demo (production keys use the default).
CHEAP_KDF = "8,1,1"
PASSWORD = "correct horse battery staple 42"


@dataclass(frozen=True)
class Run:
    """One finished CLI invocation."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def __str__(self) -> str:
        return (
            f"$ asfaload {shlex.join(self.args)}\n[exit {self.returncode}]\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


class CommandFailed(AssertionError):
    pass


@dataclass
class Signer:
    name: str
    secret_key: Path
    public_key_file: Path

    @property
    def public_key(self) -> str:
        from asfaload.crypto import PublicKey

        return str(PublicKey.from_file(self.public_key_file))


@dataclass
class World:
    """A temp dir with a forge emulator and a server process. Use as a context manager."""

    workdir: Path
    algorithm: str = "minisign"
    echo: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.forge = ForgeEmulator(self.workdir / "forge")
        self.port = free_port()
        self.data_dir = self.workdir / "server-data"
        self.log_path = self.workdir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.signers: dict[str, Signer] = {}

    # --- lifecycle ------------------------------------------------------------------------------
    @property
    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
        env.update(
            {
                "ASFALOAD_URL_REWRITES": self.forge.rewrites(),
                "ASFALOAD_BACKEND_URL": self.backend_url,
                "ASFALOAD_INSECURE_TEST_KDF_PARAMS": CHEAP_KDF,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> World:
        self.forge.start()
        self.start_server()
        return self

    def start_server(self) -> None:
        self._proc = start_server(self.data_dir, self.port, env=self.env(), log_path=self.log_path)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_server(proc)
        self.forge.stop()

    def server_log(self) -> str:
        return read_log(self.log_path)

    def __enter__(self) -> World:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- running the CLI --------------------------------------------------------------------------
    def run(
        self,
        *args: str,
        ok: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Run:
        full_env = self.env()
        full_env.update(env or {})
        where = Path(cwd or self.workdir)
        # Paths inside the working directory are given relative to it, as a person types them.
        args = tuple(_relative(a, where) for a in args)
        if self.echo:
            print(f"  $ asfaload {shlex.join(args)}", flush=True)
        proc = subprocess.run(
            [ASFALOAD, *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=where,
            stdin=subprocess.DEVNULL,  # never a terminal: no prompt, no confirmation
            timeout=300,
        )
        result = Run(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        if self.echo:
            for line in (proc.stdout + proc.stderr).splitlines():
                print(f"    {line}", flush=True)
        if ok and proc.returncode != 0:
            raise CommandFailed(
                str(result) + "\n--- server log (tail)\n" + self.server_log()[-3000:]
            )
        return result

    def signer_env(self, command: str) -> dict[str, str]:
        return {"ASFALOAD_" + command.upper().replace("-", "_") + "_PASSWORD": PASSWORD}

    def as_signer(self, signer: Signer, command: str, *args: str, ok: bool = True) -> Run:
        """Run an authenticated command with ``signer``'s key (password from the env var)."""
        return self.run(
            command, "-K", str(signer.secret_key), *args, ok=ok, env=self.signer_env(command)
        )

    # --- the how-to guides as steps ---------------------------------------------------------------
    @property
    def password_file(self) -> Path:
        """The keys' password, in a file (``-P``) rather than on a command line."""
        path = self.workdir / "password.txt"
        if not path.exists():
            path.write_text(PASSWORD + "\n")
            path.chmod(0o600)
        return path

    def new_keys(self, name: str) -> Signer:
        """Guide "Generate a key pair"."""
        keys = self.workdir / "keys"
        self.run(
            "new-keys",
            "--name",
            name,
            "--output-dir",
            str(keys),
            "--algorithm",
            self.algorithm,
            "-P",
            str(self.password_file),
        )
        signer = Signer(name, keys / name, keys / f"{name}.pub")
        self.signers[name] = signer
        return signer

    def new_signers_file(
        self,
        out_name: str,
        artifact: Sequence[Signer],
        artifact_threshold: int,
        *,
        admin: Sequence[Signer] = (),
        admin_threshold: int | None = None,
        revocation: Sequence[Signer] = (),
        revocation_threshold: int | None = None,
    ) -> bytes:
        """Guide "Create a signers file"; returns the file's bytes."""
        out = self.workdir / "signers" / out_name
        args = ["new-signers-file"]
        for s in artifact:
            args += ["--artifact-signer-file", str(s.public_key_file)]
        args += ["--artifact-threshold", str(artifact_threshold)]
        for s in admin:
            args += ["--admin-key-file", str(s.public_key_file)]
        if admin:
            args += ["--admin-threshold", str(admin_threshold)]
        for s in revocation:
            args += ["--revocation-key-file", str(s.public_key_file)]
        if revocation:
            args += ["--revocation-threshold", str(revocation_threshold)]
        args += ["--output-file", str(out)]
        self.run(*args)
        return out.read_bytes()

    def sign_all_pending(self, signers: Sequence[Signer], path: str) -> list[Run]:
        """Each signer lists pending work and signs ``path`` (guide "Activate a signers file")."""
        runs = []
        for s in signers:
            listed = self.as_signer(s, "list-pending")
            if path not in listed.stdout:
                raise CommandFailed(f"{path} not pending for {s.name}:\n{listed}")
            runs.append(self.as_signer(s, "sign-pending", path))
        return runs

    def download(self, url: str, *args: str, ok: bool = True, cwd: Path | None = None) -> Run:
        return self.run("download", *args, url, ok=ok, cwd=cwd)


def _relative(arg: str, cwd: Path) -> str:
    """``arg`` relative to ``cwd`` when it is a path inside it, else unchanged."""
    if not arg.startswith("/"):
        return arg
    try:
        rel = Path(arg).relative_to(cwd)
    except ValueError:
        return arg
    return str(rel) if str(rel) != "." else arg


def mirror_server(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A plain static HTTP server over ``directory``: a tampering mirror of ``/v1/files``."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/", timeout=1)
            return proc, url
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mirror server did not start")


def pending_signers_path(project: str) -> str:
    from asfaload import layout

    return layout.signers_file_path(project, pending=True)


def register_and_activate(
    world: World, registrant: Signer, url: str, signers: Sequence[Signer]
) -> str:
    """Guides "Register a repository" + "Activate a signers file"; returns the project id."""
    out = world.as_signer(registrant, "register-repo", url)
    project = next(line.split(": ", 1)[1] for line in out.lines if line.startswith("Project ID: "))
    world.sign_all_pending(signers, pending_signers_path(project))
    return project


def register_release(world: World, signer: Signer, *args: str) -> str:
    """Guide "Register a release"; returns the index file path."""
    out = world.as_signer(signer, "register-assets", *args)
    return out.lines[-1].split(": ", 1)[1]
