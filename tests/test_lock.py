"""Installs are reproducible (issue 10, item 17): requirements.lock pins every dependency,
direct and transitive, with hashes, agrees with pyproject.toml, and is what is installed."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).parent.parent


def lock_entries() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes)."""
    text = (ROOT / "requirements.lock").read_text()
    entries: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = re.match(r"([A-Za-z0-9_.-]+)==([^\s\\]+)", block)
        if m:
            entries[norm(m.group(1))] = (m.group(2), block.count("--hash=sha256:"))
    return entries


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_direct_dependency_is_locked_at_its_pin() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    locked = lock_entries()
    for spec in wanted:
        if norm(re.split(r"[\[=<>]", spec, maxsplit=1)[0]) == "grok-api":
            continue  # an extra that names another extra of the project itself
        m = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", spec)
        assert m, f"{spec} is not pinned exactly"
        assert locked.get(norm(m.group(1)), ("missing", 0))[0] == m.group(2), spec


def test_every_locked_package_has_hashes_and_is_what_is_installed() -> None:
    locked = lock_entries()
    assert len(locked) > 40  # the transitive closure, not only the direct dependencies
    for name, (version, hashes) in locked.items():
        assert hashes >= 1, name
        assert metadata.version(name) == version, (
            f"{name}: installed {metadata.version(name)}, locked {version}"
        )
