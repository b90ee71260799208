"""Use-cases composing forge + rules + store (register, update, sign, assets, revoke)."""

from __future__ import annotations

from .backend import Backend, RegistrationResult

__all__ = ["Backend", "RegistrationResult"]
