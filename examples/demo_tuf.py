"""TUF root rotation, end to end, with the real ``asfaload`` CLI and python-tuf's real client.

Run it with ``.venv/bin/python examples/demo_tuf.py`` (``make demo`` runs it after the manual
demo). Everything happens on this machine in a temporary directory that is removed at the end:

1. the server operator creates the online keys and an admin user, and starts ``asfaload serve``;
2. the admin logs in; two root key holders, Ann and Ben, each make an offline key;
3. root v1 (Ann's key, threshold 1) bootstraps the app ``demo-app``;
4. a TUF client (``tuf.ngclient.Updater``) trusts root v1 and refreshes;
5. root v2 adds Ben with threshold 2; it is proposed unsigned and collects its signatures through
   the draft flow: Ann signs with ``tuf sign-pending --key``, Ben signs offline with ``tuf sign``
   and the admin posts his signature; the last one publishes v2;
6. the client refreshes again and now trusts root v2;
7. ``tuf status`` shows when each role expires and when the server re-signs the online ones.

Each step prints the command it runs and that command's output.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tuf.ngclient.updater import Updater

from asfaload.devtools.server import (
    ASFALOAD,
    ServerStartError,
    free_port,
    read_log,
    serve_args,
    start_server,
    stop_server,
)
from asfaload.tuf._api import Metadata, Root

ADMIN = "alice"
APP = "demo-app"
PASSWORD = "correct horse battery staple"


class DemoFailed(Exception):
    pass


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def say(text: str) -> None:
    for line in text.splitlines():
        print(f"   {line}")
    sys.stdout.flush()


class Demo:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.data_dir = work / "server-data"
        self.log_path = work / "server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None
        # Every CLI call of the admin finds the server and the token through the environment.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
        self.env["ASFALOAD_BACKEND_URL"] = self.url
        self.env["ASFALOAD_TUF_TOKEN_FILE"] = str(work / "alice-token.json")

    # --- running things -----------------------------------------------------------------------
    def cli(self, *args: str, out: str | None = None, show: bool = True) -> str:
        """Run ``asfaload ARGS`` in the work dir; ``out`` saves stdout to that file."""
        shown = "asfaload " + shlex.join(args) + (f" > {out}" if out else "")
        print(f"   $ {shown}", flush=True)
        done = subprocess.run(
            [ASFALOAD, *args],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise DemoFailed(f"`{shown}` exited {done.returncode}:\n{done.stderr}{done.stdout}")
        if out:
            (self.work / out).write_text(done.stdout)
        elif show and done.stdout.strip():
            say("  " + done.stdout.rstrip().replace("\n", "\n  "))
        return done.stdout

    def start_server(self) -> None:
        print(f"   $ asfaload {shlex.join(serve_args(self.data_dir, self.port))} &", flush=True)
        try:
            self.server = start_server(
                self.data_dir, self.port, env=self.env, log_path=self.log_path, cwd=self.work
            )
        except ServerStartError as exc:
            raise DemoFailed(str(exc)) from exc
        say(f"  server listening on {self.url}")

    def stop_server(self) -> None:
        proc, self.server = self.server, None
        stop_server(proc, timeout=20)

    def updater(self, trusted_root: Path) -> Updater:
        """python-tuf's client: trusts ``trusted_root`` (only the first time) and our mirror."""
        meta = self.work / "client" / "metadata"
        first = not (meta / "root.json").exists()
        meta.mkdir(parents=True, exist_ok=True)
        (self.work / "client" / "downloads").mkdir(exist_ok=True)
        return Updater(
            metadata_dir=str(meta),
            metadata_base_url=f"{self.url}/v1/files/tuf/{ADMIN}/{APP}/",
            target_dir=str(self.work / "client" / "downloads"),
            target_base_url=f"{self.url}/v1/files/",
            bootstrap=trusted_root.read_bytes() if first else None,
        )

    def client_root(self) -> Root:
        md = Metadata[Root].from_file(str(self.work / "client" / "metadata" / "root.json"))
        return md.signed

    def keyid(self, pub_file: str) -> str:
        return str(json.loads((self.work / pub_file).read_text())["keyid"])

    # --- the story ----------------------------------------------------------------------------
    def run(self) -> None:
        step("Server operator: online keys, an admin user, the server")
        self.data_dir.mkdir()
        self.cli(
            "tuf", "online-keys", "--data-dir", str(self.data_dir), "--json", out="online.json"
        )
        for role, key in json.loads((self.work / "online.json").read_text()).items():
            say(f"  {role} key: {key['keyid']}")
        (self.work / "alice.password").write_text(PASSWORD + "\n")
        self.cli(
            "admin",
            "add-user",
            "--data-dir",
            str(self.data_dir),
            "--username",
            ADMIN,
            "--password-file",
            "alice.password",
        )
        self.start_server()

        step("Admin: log in (the token is kept in $ASFALOAD_TUF_TOKEN_FILE)")
        self.cli("tuf", "login", "--username", ADMIN, "--password-file", "alice.password")

        step("Root key holders Ann and Ben: one offline ed25519 key each")
        self.cli("tuf", "keygen", "-o", "ann.key", out="ann.pub.json")
        self.cli("tuf", "keygen", "-o", "ben.key", out="ben.pub.json")
        ann, ben = self.keyid("ann.pub.json"), self.keyid("ben.pub.json")
        say(f"  Ann's keyid: {ann}\n  Ben's keyid: {ben}")

        step("Root v1: Ann's key, threshold 1, the server's online keys; Ann signs it")
        self.cli(
            "tuf",
            "root",
            "new",
            "--root-key",
            "ann.pub.json",
            "--threshold",
            "1",
            "--online-keys",
            "online.json",
            "--expires",
            "365",
            "-K",
            "ann.key",
            "-o",
            "root-v1.json",
        )

        step(f"Admin: bootstrap {APP} with root v1")
        self.cli("tuf", "bootstrap", "--app", APP, "--root", "root-v1.json")

        step("TUF client: trust root v1 (obtained out of band), refresh from the server")
        updater = self.updater(self.work / "root-v1.json")
        updater.refresh()
        root = self.client_root()
        say(f"  python-tuf Updater.refresh(): trusted root v{root.version}")
        if root.version != 1:
            raise DemoFailed(f"expected root v1, the client has v{root.version}")

        step("Root v2: add Ben, threshold 2, built from the server's trusted root")
        self.cli(
            "tuf",
            "root",
            "rotate",
            "--app",
            APP,
            "--add-key",
            "ben.pub.json",
            "--threshold",
            "2",
            "-o",
            "root-v2.json",
        )

        step("Admin: propose root v2 without signatures (it becomes the draft)")
        self.cli("tuf", "rotate", "--app", APP, "--root", "root-v2.json")
        self.cli("tuf", "pending", "--app", APP, "-o", "draft-v2.json")

        step("Ann signs the draft with her key file (fetch, sign locally, post)")
        self.cli("tuf", "sign-pending", "--app", APP, "-K", "ann.key")

        step("Ben signs offline, from the saved draft; the admin posts his signature")
        self.cli("tuf", "sign", "-K", "ben.key", "--root", "draft-v2.json", out="ben.sig.json")
        say("  " + (self.work / "ben.sig.json").read_text().strip())
        answer = json.loads(
            self.cli(
                "tuf",
                "sign-pending",
                "--app",
                APP,
                "--signature",
                "ben.sig.json",
                "--json",
                show=False,
            )
        )
        data = answer["data"]
        say(f"  {answer['message']}: published={data['published']} version={data['version']}")
        if not data["published"]:
            raise DemoFailed("root v2 should be published after Ben's signature")
        self.cli("tuf", "task", data["task_id"])

        step("TUF client: refresh again; it walks to root v2 (checked against v1's keys)")
        updater = self.updater(self.work / "root-v1.json")
        updater.refresh()
        root = self.client_root()
        say(
            f"  python-tuf Updater.refresh(): trusted root v{root.version},"
            f" root threshold {root.roles['root'].threshold},"
            f" root keys {sorted(root.roles['root'].keyids)}"
        )
        if root.version != 2 or set(root.roles["root"].keyids) != {ann, ben}:
            raise DemoFailed("the client did not move to root v2 with Ann's and Ben's keys")

        step("Admin: when each role expires, and when the server re-signs it on its own")
        self.cli("tuf", "status", "--app", APP)


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="asfaload-tuf-demo-") as tmp:
        demo = Demo(Path(tmp))
        print(f"TUF root rotation demo (work dir {tmp}, removed at the end)")
        try:
            demo.run()
        except Exception as exc:  # any failure: say what and show the server's side
            what = str(exc) if isinstance(exc, DemoFailed) else f"{type(exc).__name__}: {exc}"
            print(f"\nDEMO FAILED: {what}", file=sys.stderr)
            log = read_log(demo.log_path, 4000)
            if log:
                print(f"--- server log (tail) ---\n{log}", file=sys.stderr)
            return 1
        finally:
            demo.stop_server()
    print(f"\nTUF demo OK ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
