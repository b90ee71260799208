"""``make demo``: the Asfaload manual's how-to guides, end to end, on this machine.

Everything runs on loopback in a temporary directory that is removed at the end: a forge
emulator playing github.com (reached through ``ASFALOAD_URL_REWRITES``), a fresh ``asfaload
serve`` process, and the real ``asfaload`` command for every step. Read it as documentation:
each step prints the command it runs, as a person would type it in that directory, and its
output. docs/try-it-by-hand.md is the same story typed by hand (``asfaload dev forge``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from asfaload.devtools.forge import export_lines
from asfaload.devtools.harness import PASSWORD, World, pending_signers_path

RELEASE_URL = "https://github.com/acme/tool/releases/download"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> int:
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="asfaload-demo-") as tmp,
        World(Path(tmp), echo=True) as w,
    ):
        print(f"Backend: {w.backend_url}   forge emulator: {w.forge.origin}")
        print("The environment of every command below (`asfaload dev forge` prints the first two):")
        env = {k: v for k, v in w.env().items() if k.startswith("ASFALOAD_")}
        for line in export_lines(env):
            print(f"  {line}")
        print("  (ASFALOAD_INSECURE_TEST_KDF_PARAMS: cheap key derivation, for the demo only)")
        print(
            "Key passwords: new-keys reads -P password.txt; the signing commands read "
            "ASFALOAD_<COMMAND>_PASSWORD\n(at a terminal they would ask: 'Password for keys/alice:')."
        )
        w.password_file.write_text(PASSWORD + "\n")

        step("1. Generate a key pair — three artifact signers and two revocation keys")
        alice, bob, carol = (w.new_keys(n) for n in ("alice", "bob", "carol"))
        rev1, rev2 = w.new_keys("revoke1"), w.new_keys("revoke2")

        step("2. Create a signers file (2 of 3 artifact signers, 2 of 2 revocation keys)")
        v1 = w.new_signers_file(
            "signers.json", [alice, bob, carol], 2, revocation=[rev1, rev2], revocation_threshold=2
        )
        print("  ...and publish it on the forge (git push)")
        url = w.forge.put_github_file("acme", "tool", "main", "asfaload.signers/index.json", v1)

        step("3. Register the repository")
        out = w.as_signer(alice, "register-repo", url)
        project = out.lines[1].split(": ", 1)[1]
        pending = pending_signers_path(project)

        step("4. Activate the signers file: every listed signer signs, in any order")
        w.sign_all_pending([carol, rev1, alice, rev2, bob], pending)

        step("5. Register a release published on GitHub")
        rel = w.forge.add_github_release(
            "acme", "tool", "v1.0", {"tool-linux-amd64.tar.gz": b"tool v1.0\n" * 100_000}
        )
        w.as_signer(bob, "register-assets", "--github-release-url", rel)

        step("6. Sign the release: two of three signers are enough (the release URL names it)")
        w.as_signer(alice, "list-pending")
        w.as_signer(alice, "sign-pending", rel)
        w.run("signature-status", rel)
        w.as_signer(carol, "sign-pending", rel)
        w.run("check-index", rel)

        step("7. Download with signature verification")
        dl = f"{RELEASE_URL}/v1.0/tool-linux-amd64.tar.gz"
        w.download(dl)

        step("8. Update the signers file: add dave, require 3 of 4")
        dave = w.new_keys("dave")
        v2 = w.new_signers_file(
            "signers_v2.json",
            [alice, bob, carol, dave],
            3,
            revocation=[rev1, rev2],
            revocation_threshold=2,
        )
        url2 = w.forge.put_github_file("acme", "tool", "main", "asfaload.signers/v2.json", v2)
        w.as_signer(alice, "update-signers", url2)
        for s in (dave, alice, bob, carol):
            if pending in w.as_signer(s, "list-pending").stdout:
                w.as_signer(s, "sign-pending", pending)

        step("9. Old releases stay verifiable: download --full-check walks the signers chain")
        w.download(dl, "--full-check", "-o", "tool-checked.tar.gz")

        step("10. Revoke the release (revocation threshold 2; on a terminal revoke asks first)")
        w.as_signer(rev1, "revoke", rel)
        w.as_signer(rev2, "list-pending")
        w.as_signer(rev2, "sign-pending", rel)  # the release's pending revocation
        w.run("signature-status", rel)

        step("11. The revoked file is refused")
        res = w.download(dl, "-o", "refused.tar.gz", ok=False)
        if res.returncode == 0 or (w.workdir / "refused.tar.gz").exists():
            print("UNEXPECTED: the revoked file was downloaded", file=sys.stderr)
            return 1
        print(f"  (exit code {res.returncode}, no file written)")

    print(f"\nDemo finished in {time.monotonic() - started:.1f} s; temporary files removed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
