"""Shared by the Responses API tests: OpenAI's published event shapes, and a raw SSE reader."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# OpenAI's published OpenAPI document lives in the project's shared/ folder, beside the repository
# (or beside the main checkout, for a worktree); GROK_API_OPENAI_SPEC may point at it instead.
_SPEC_PLACES = [
    os.environ.get("GROK_API_OPENAI_SPEC", ""),
    str(Path(__file__).resolve().parents[2] / "shared/specs/openai-openapi.yaml"),
    "/work/shared/specs/openai-openapi.yaml",
]
_URI = "urn:openai-openapi"


@functools.cache
def _spec() -> dict[str, Any]:
    found = next((Path(p) for p in _SPEC_PLACES if p and Path(p).is_file()), None)
    assert found is not None, f"OpenAI's OpenAPI document is not at any of {_SPEC_PLACES[1:]}"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec: dict[str, Any] = yaml.load(found.read_text(), Loader=loader)  # noqa: S506 (a safe loader)
    return spec


@functools.cache
def _registry() -> Registry:  # type: ignore[type-arg]
    return Registry().with_resource(_URI, Resource.from_contents(_spec(), default_specification=DRAFT202012))


@functools.cache
def _event_schemas() -> dict[str, str]:
    """Event type → the name of its schema, from ``ResponseStreamEvent``'s list."""
    schemas = _spec()["components"]["schemas"]
    out = {}
    for ref in schemas["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].rsplit("/", 1)[1]
        out[schemas[name]["properties"]["type"]["enum"][0]] = name
    return out


@functools.cache
def validator(schema: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{_URI}#/components/schemas/{schema}"}, registry=_registry())


def check_event(event: dict[str, Any]) -> None:
    """Fails unless ``event`` is a valid instance of the published schema of its type."""
    name = _event_schemas().get(event.get("type", ""))
    assert name is not None, f"not a published ResponseStreamEvent type: {event.get('type')}"
    errors = sorted(validator(name).iter_errors(event), key=lambda e: len(e.path))
    assert not errors, f"{event['type']} breaks {name}: " + "; ".join(
        f"{list(e.path)}: {e.message[:200]}" for e in errors[:3]
    )


def check_response(body: dict[str, Any]) -> None:
    errors = list(validator("Response").iter_errors(body))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message[:200]}" for e in errors[:3])


def stream_events(
    base_url: str, key: str, **body: Any
) -> tuple[httpx.Response, list[tuple[str, dict[str, Any]]]]:
    """A streamed ``POST /v1/responses`` over plain HTTP: the response and its (event name, data) pairs."""
    with httpx.stream(
        "POST",
        base_url + "/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={"stream": True, **body},
        timeout=30,
    ) as r:
        raw = r.read().decode()
    events = []
    for frame in raw.split("\n\n"):
        if not frame.strip() or frame.startswith(":"):
            continue
        fields = dict(line.split(": ", 1) for line in frame.split("\n"))
        events.append((fields.get("event", ""), orjson.loads(fields["data"])))
    return r, events
