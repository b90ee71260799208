"""Bearer tokens of ``asfaload tuf login``, one per backend URL, kept for the next commands.

The token comes from ``--token-file`` (env ``ASFALOAD_TUF_TOKEN_FILE``), else
``ASFALOAD_TUF_TOKEN`` (the token itself), else the default token file
``$XDG_CONFIG_HOME/asfaload/tuf-tokens.json`` (``~/.config/…``), written 0600.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import AuthenticationError, FormatError
from .files import write_private

TOKEN_ENV = "ASFALOAD_TUF_TOKEN"
TOKEN_FILE_ENV = "ASFALOAD_TUF_TOKEN_FILE"


def default_token_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "asfaload" / "tuf-tokens.json"


def read_tokens(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, UnicodeDecodeError):
        raise FormatError(f"token file {path} is unreadable") from None
    return doc if isinstance(doc, dict) else {}


def store_token(path: Path, backend_url: str, username: str, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tokens = read_tokens(path)
    tokens[backend_url.rstrip("/")] = {"username": username, "token": token}
    write_private(path, (json.dumps(tokens, indent=2) + "\n").encode())  # a bearer token


def resolve_token(backend_url: str, token_file: Path | None) -> str:
    """--token-file (or its env) > ASFALOAD_TUF_TOKEN > the default token file."""
    if token_file is None:
        env_token = os.environ.get(TOKEN_ENV)
        if env_token:
            return env_token.strip()
        token_file = default_token_file()
    entry = read_tokens(token_file).get(backend_url.rstrip("/"))
    token = entry.get("token") if isinstance(entry, dict) else None
    if not isinstance(token, str) or not token:
        raise AuthenticationError(
            f"No token for {backend_url} in {token_file}: run `asfaload tuf login` first"
            f" (or set {TOKEN_ENV})"
        )
    return token


def token_username(token: str) -> str | None:
    """The ``username`` claim, read without verification (only to print metadata URLs)."""
    import jwt  # here: the CLI imports this module for its constants, on every start

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    name = claims.get("username")
    return name if isinstance(name, str) else None
