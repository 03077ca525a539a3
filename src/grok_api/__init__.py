"""Grok-Api: an OpenAI-compatible API gateway for xAI's Grok, and a client for it.

``from grok_api import Grok, AsyncGrok`` loads the client (and the ``openai`` SDK) on first
use, so the gateway's own imports of this package stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["AsyncGrok", "Grok", "__version__"]

if TYPE_CHECKING:
    from .client import AsyncGrok, Grok


def __getattr__(name: str) -> Any:
    if name in ("Grok", "AsyncGrok"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'grok_api' has no attribute {name!r}")
