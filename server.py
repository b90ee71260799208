"""WSGI entry point: ``gunicorn server:app``. Configuration from ASFALOAD_* variables (and the
TOML file named by ASFALOAD_CONFIG); ``asfaload serve`` is the usual way to run it."""

from __future__ import annotations

from asfaload.server import ServerConfig, create_app

app = create_app(ServerConfig.load())
