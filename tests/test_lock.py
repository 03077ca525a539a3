"""Installs are reproducible (issue 10, item 17): requirements.lock pins every dependency,
direct and transitive, with hashes, agrees with pyproject.toml, and is what is installed.
requirements-server.lock, what the image installs, is the client's and the `server` extra's
part of it: the same versions, with hashes, and nothing the gateway does not need."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import Requirement

from .locks import ROOT, locked, norm

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SERVER = [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["server"]]


def test_every_direct_dependency_is_locked_at_its_pin() -> None:
    wanted = list(PROJECT["dependencies"])
    for extra in PROJECT["optional-dependencies"].values():
        wanted += extra
    pins = locked()
    for spec in wanted:
        if norm(re.split(r"[\[=<>]", spec, maxsplit=1)[0]) == "grok-api":
            continue  # an extra that names another extra of the project itself
        m = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", spec)
        assert m, f"{spec} is not pinned exactly"
        pin = pins.get(norm(m.group(1)))
        assert pin is not None and pin.version == m.group(2), spec


def test_every_locked_package_has_hashes_and_is_what_is_installed() -> None:
    pins = locked()
    assert len(pins) > 40  # the transitive closure, not only the direct dependencies
    for name, pin in pins.items():
        assert pin.hashes >= 1, name
        assert metadata.version(name) == pin.version, (
            f"{name}: installed {metadata.version(name)}, locked {pin.version}"
        )


def closure(specs: Iterable[str]) -> set[str]:
    """The distributions ``specs`` need on this Python, their dependencies' too (with the extras
    asked for), read from what is installed."""
    names: set[str] = set()
    expanded: set[tuple[str, str]] = set()
    todo = [Requirement(s) for s in specs]
    while todo:
        req = todo.pop()
        name = norm(req.name)
        names.add(name)
        for extra in {"", *req.extras} - {e for n, e in expanded if n == name}:
            expanded.add((name, extra))
            needs = (Requirement(r) for r in metadata.requires(name) or [])
            todo += [r for r in needs if r.marker is None or r.marker.evaluate({"extra": extra})]
    return names


def test_the_image_lock_is_the_server_part_of_the_lock_with_hashes() -> None:
    server, full = locked("requirements-server.lock"), locked()
    header = (ROOT / "requirements-server.lock").read_text()
    assert "--extra=server" in header and "--constraint=requirements.lock" in header
    for name, pin in server.items():
        assert pin.hashes >= 1, name
        if pin.marker is None:  # at the version the tests ran with
            assert name in full and full[name].version == pin.version, name
    here = {n for n, p in server.items() if p.marker is None or Marker(p.marker).evaluate()}
    assert here == closure(SERVER)  # every dependency the gateway needs here, and no other
    assert {"fastapi", "uvicorn", "sqlalchemy", "typing-extensions"} <= here
    assert not here & {"pytest", "ruff", "mypy", "playwright", "curl-cffi", "mutmut"}


def test_what_the_image_lock_pins_for_other_pythons_is_what_they_ask_for() -> None:
    """A pin for other Pythons only (redis wants async-timeout before 3.11.3, bookworm's is
    3.11.2) is a dependency that a locked package declares for them, at a version it accepts."""
    server = locked("requirements-server.lock")
    asked = [
        req
        for name, pin in server.items()
        if pin.marker is None
        for req in map(Requirement, metadata.requires(name) or [])
        if "python" in str(req.marker)
    ]
    others = {n: p for n, p in server.items() if p.marker is not None}
    assert "async-timeout" in others
    for name, pin in others.items():
        wants = [r for r in asked if norm(r.name) == name]
        assert wants, f"{name} is pinned for other Pythons, but nothing locked asks for it"
        assert all(r.specifier.contains(pin.version) for r in wants), (name, pin.version)
