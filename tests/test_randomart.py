"""The visual fingerprint is OpenSSH's randomart: for a key's digest, the picture we draw is the
one the real ``ssh-keygen -lv`` prints, character for character."""

from __future__ import annotations

import base64
import hashlib
import os
import pty
import shutil
import subprocess
from pathlib import Path

import pytest

from asfaload.crypto.randomart import HEIGHT, WIDTH, randomart
from asfaload.devtools.server import ASFALOAD
from tests.support.ssh import ssh_keygen


@pytest.mark.parametrize(
    "key_args,title",
    [
        (("-t", "ed25519"), "ED25519 256"),
        (("-t", "ecdsa", "-b", "384"), "ECDSA 384"),
        (("-t", "rsa", "-b", "2048"), "RSA 2048"),
    ],
)
@pytest.mark.parametrize("hash_name", ["sha256", "md5"])
def test_same_picture_as_ssh_keygen(
    tmp_path: Path, key_args: tuple[str, ...], title: str, hash_name: str
) -> None:
    key = ssh_keygen(tmp_path, "k", *key_args)
    pub = key.with_name("k.pub")
    exe = shutil.which("ssh-keygen")
    assert exe
    res = subprocess.run(
        [exe, "-l", "-v", "-E", hash_name, "-f", str(pub)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    theirs = res.stdout.splitlines()[1:]  # after the "256 SHA256:… comment (ED25519)" line
    blob = base64.b64decode(pub.read_text().split()[1])
    digest = hashlib.new(hash_name, blob).digest()
    ours = randomart(digest, title, hash_name.upper()).splitlines()
    assert ours == theirs


def test_shape_and_markers() -> None:
    art = randomart(hashlib.sha512(b"asfaload").digest(), "asfaload").splitlines()
    assert len(art) == HEIGHT + 2 and all(len(line) == WIDTH + 2 for line in art)
    assert art[0] == "+---[asfaload]----+" and art[-1] == "+----[SHA512]-----+"
    body = "".join(line[1:-1] for line in art[1:-1])
    assert body.count("S") <= 1 and body.count("E") == 1
    # One bit changed in the digest gives another picture.
    other = randomart(hashlib.sha512(b"asfaloae").digest(), "asfaload").splitlines()
    assert other != art
    # A label too long for the frame is cut, as OpenSSH does, and the frame keeps its width.
    long = randomart(b"\x00", "a-very-long-title-here")
    assert all(len(line) == WIDTH + 2 for line in long.splitlines())


def test_drawn_by_default_only_when_stderr_is_a_terminal(tmp_path: Path) -> None:
    f = tmp_path / "release.bin"
    f.write_bytes(b"release" * 99)
    digest = hashlib.sha512(f.read_bytes()).digest()
    master, slave = pty.openpty()
    proc = subprocess.Popen([ASFALOAD, "get-digest", str(f)], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    stdout, _ = proc.communicate(timeout=60)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed its end: all it wrote has been read
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 0
    assert stdout.decode() == f"sha512:{digest.hex()}\n"
    drawn = seen.decode().replace("\r\n", "\n").splitlines()
    assert drawn == [str(f), f"sha512:{digest.hex()}", *randomart(digest, "asfaload").splitlines()]
    # With stderr a pipe nothing is drawn unless asked.
    piped = subprocess.run([ASFALOAD, "get-digest", str(f)], capture_output=True, timeout=60)
    assert piped.stderr == b""
