"""Grok-Api: an OpenAI-compatible API gateway for xAI's Grok."""

__version__ = "0.1.0"

__all__ = ["__version__"]
