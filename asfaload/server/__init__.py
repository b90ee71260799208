"""The Flask REST server (``create_app``) and its configuration."""

from __future__ import annotations

from .app import create_app
from .config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
