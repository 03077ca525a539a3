"""What the lock files pin (requirements.lock, requirements-server.lock): read as pip reads them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).parent.parent


class Pin(NamedTuple):
    version: str
    hashes: int
    marker: str | None  # the environment marker that limits it to some Pythons, if any


def norm(name: str) -> str:
    """A distribution's name as pip compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: str = "requirements.lock") -> dict[str, Pin]:
    """What a lock file at the repository's root pins: name -> its version, how many hashes, marker."""
    pins: dict[str, Pin] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text()):
        m = re.match(r"([A-Za-z0-9_.-]+)==([^\s\\;]+)(?:\s*;\s*([^\\\n]*[^\s\\]))?", block)
        if m:
            pins[norm(m.group(1))] = Pin(m.group(2), block.count("--hash=sha256:"), m.group(3))
    return pins
