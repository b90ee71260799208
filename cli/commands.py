"""Registry of command modules. Each module exposes ``register(group)``.

Kept as a list so that parallel work on different commands never edits the same lines.
"""

from __future__ import annotations

import importlib

import click

MODULES = [
    "keys",  # new-keys, sign-file, verify-sig
    "signers",  # new-signers-file
    "backend",  # register-repo, update-signers, register-assets, list-pending, sign-pending, signature-status, revoke
    "download",  # download
    "serve",  # serve
    "mirror",  # mirror verify, mirror sync
    "admin",  # admin add-user, tuf online-keys
]


def register_all(group: click.Group) -> None:
    for name in MODULES:
        try:
            mod = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{name}":
                continue  # module not written yet
            raise
        mod.register(group)
