"""Direct tests of the simulator's JSON-Schema instance generator (``simulator/schema_fake.py``)
and its pattern reader (``simulator/regex_fake.py``): every made-up value is checked by
``jsonschema`` (Draft 2020-12, with its format checker)."""

from __future__ import annotations

import datetime
import enum
import re
import uuid
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft4Validator, Draft202012Validator
from pydantic import BaseModel, Field

from grok_api.simulator.regex_fake import UnreadablePattern, from_pattern
from grok_api.simulator.schema_fake import Unworkable, fake


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    postcode: str = Field(pattern=r"^\d{5}(-\d{4})?$")


class Node(BaseModel):
    label: str
    children: list[Node] = []
    parent: Node | None = None


class Person(BaseModel):
    name: str = Field(min_length=3, max_length=10)
    age: int = Field(ge=0, le=130)
    score: float = Field(gt=0, lt=1, multiple_of=0.25)
    colour: Colour
    kind: Literal["a", "b"]
    tags: list[str] = Field(min_length=1, max_length=3)
    home: Address
    work: Address | None = None
    born: datetime.date
    seen: datetime.datetime
    id: uuid.UUID
    tree: Node


TREE = {  # a linked list through the root itself
    "type": "object",
    "properties": {"value": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
    "required": ["value", "next"],
    "additionalProperties": False,
}

SCHEMAS: dict[str, Any] = {
    "anything": {},
    "true": True,
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "null": {"type": "null"},
    "long string": {"type": "string", "minLength": 60},
    "short string": {"type": "string", "maxLength": 3},
    "exact length": {"type": "string", "minLength": 4, "maxLength": 4},
    "enum": {"type": "string", "enum": ["north", "south", "east"]},
    "mixed enum": {"enum": [1, "one", None, {"a": 1}]},
    "typed enum": {"type": "integer", "enum": ["one", 2, 3.5]},
    "const": {"const": {"fixed": [1, 2]}},
    "date": {"type": "string", "format": "date"},
    "date-time": {"type": "string", "format": "date-time"},
    "time": {"type": "string", "format": "time"},
    "email": {"type": "string", "format": "email"},
    "uri": {"type": "string", "format": "uri"},
    "uuid": {"type": "string", "format": "uuid"},
    "ipv4": {"type": "string", "format": "ipv4"},
    "ipv6": {"type": "string", "format": "ipv6"},
    "hostname": {"type": "string", "format": "hostname"},
    "zip pattern": {"type": "string", "pattern": r"^\d{5}(-\d{4})?$"},
    "code pattern": {"type": "string", "pattern": r"^[A-Z]{2}-[0-9]{3,5}$"},
    "alternation": {"type": "string", "pattern": r"^(?:foo|bar)+_[a-z]*$"},
    "negated class": {"type": "string", "pattern": r"^[^a-z]{4}$"},
    "pattern and length": {"type": "string", "pattern": r"^[a-z]+$", "minLength": 8, "maxLength": 9},
    "unanchored pattern": {"type": "string", "pattern": r"\w+@\w+\.com"},
    "integer range": {"type": "integer", "minimum": -50, "maximum": -40},
    "integer exclusive": {"type": "integer", "exclusiveMinimum": 4, "exclusiveMaximum": 6},
    "integer multiple": {"type": "integer", "minimum": 10, "maximum": 100, "multipleOf": 7},
    "only a maximum": {"type": "integer", "maximum": -1000},
    "only a minimum": {"type": "number", "minimum": 1e6},
    "open interval": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.001},
    "float multiple": {"type": "number", "minimum": 0.2, "maximum": 0.9, "multipleOf": 0.1},
    "array": {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 5},
    "empty array only": {"type": "array", "maxItems": 0},
    "unique enum items": {
        "type": "array",
        "items": {"enum": ["x", "y", "z"]},
        "minItems": 3,
        "uniqueItems": True,
    },
    "unique booleans": {"type": "array", "items": {"type": "boolean"}, "minItems": 2, "uniqueItems": True},
    "tuple": {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer"}],
        "items": False,
        "minItems": 2,
    },
    "contains": {"type": "array", "items": {"type": "integer"}, "contains": {"const": 42}},
    "nested arrays": {
        "type": "array",
        "items": {"type": "array", "items": {"type": "number"}, "minItems": 1},
    },
    "closed object": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    },
    "object without type": {"properties": {"n": {"type": "number"}}, "required": ["n"]},
    "min properties": {
        "type": "object",
        "additionalProperties": {"type": "integer", "minimum": 1},
        "minProperties": 3,
    },
    "max properties": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}},
        "required": ["c"],
        "maxProperties": 2,
    },
    "pattern properties": {
        "type": "object",
        "patternProperties": {"^n_": {"type": "integer"}},
        "required": ["n_count"],
        "additionalProperties": False,
    },
    "nullable string": {"type": ["string", "null"]},
    "null first": {"type": ["null", "integer"]},
    "anyOf first workable": {
        "anyOf": [{"type": "string", "minLength": 5, "maxLength": 2}, {"type": "integer"}]
    },
    "oneOf": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "anyOf with siblings": {
        "type": "object",
        "required": ["k"],
        "anyOf": [{"properties": {"k": {"const": 1}}}],
    },
    "allOf merge": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer", "minimum": 5}}, "required": ["b"]},
            {"properties": {"b": {"maximum": 6}}},
        ]
    },
    "allOf of two anyOf": {
        "allOf": [{"anyOf": [{"type": "string"}, {"type": "integer"}]}, {"anyOf": [{"type": "integer"}]}]
    },
    "items beyond minItems unworkable": {
        "type": "array",
        "items": {"type": "string", "minLength": 3, "maxLength": 1},
    },
    "array of itself": {
        "type": "object",
        "properties": {"a": {"type": "array", "items": {"$ref": "#/properties/a"}}},
    },
    "allOf number and integer": {"allOf": [{"type": "number"}, {"type": ["integer", "string"]}]},
    "$defs": {
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
        "type": "array",
        "items": {"$ref": "#/$defs/Point"},
    },
    "definitions": {
        "definitions": {"Id": {"type": "string", "format": "uuid"}},
        "type": "object",
        "properties": {"id": {"$ref": "#/definitions/Id"}},
        "required": ["id"],
    },
    "$ref with siblings": {
        "$defs": {"Small": {"type": "integer", "maximum": 10}},
        "properties": {"n": {"$ref": "#/$defs/Small", "minimum": 8}},
        "required": ["n"],
    },
    "$ref chain": {
        "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/C"}, "C": {"type": "boolean"}},
        "$ref": "#/$defs/A",
    },
    "recursive root": TREE,
    "recursive required list": {
        "$defs": {
            "Dir": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "subdirs": {"type": "array", "items": {"$ref": "#/$defs/Dir"}},
                },
                "required": ["name", "subdirs"],
            }
        },
        "$ref": "#/$defs/Dir",
    },
    "pydantic model": Person.model_json_schema(),
    "pydantic recursive": Node.model_json_schema(),
}


def validator(schema: Any) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
@pytest.mark.parametrize("seed", ["Ada Lovelace", "weather in Paris", ""])
def test_every_made_up_value_validates(schema: Any, seed: str) -> None:
    value = fake(schema, seed, seed)
    errors = [f"{list(e.path)}: {e.message}" for e in validator(schema).iter_errors(value)]
    assert not errors, f"{value!r}: {errors}"


def test_a_pydantic_model_accepts_what_its_schema_gets() -> None:
    value = fake(Person.model_json_schema(), "seed", "Grace Hopper")
    person = Person.model_validate(value)
    assert person.home.postcode and person.work is not None  # optional fields are filled too
    assert person.name == "Grace Hopp"  # the text, cut to maxLength
    assert Node.model_validate(fake(Node.model_json_schema(), "s", "x")).label == "x"


def test_draft_4_exclusive_bounds() -> None:
    schema = {
        "type": "number",
        "minimum": 1,
        "maximum": 2,
        "exclusiveMinimum": True,
        "exclusiveMaximum": True,
    }
    for seed in ("a", "b", "c"):
        Draft4Validator(schema).validate(fake(schema, seed))
    integer = {
        "type": "integer",
        "minimum": 1,
        "maximum": 3,
        "exclusiveMinimum": True,
        "exclusiveMaximum": True,
    }
    assert fake(integer, "seed") == 2


def test_formats_are_real_values() -> None:
    def made(fmt: str) -> str:
        value = fake({"type": "string", "format": fmt}, "formats")
        assert isinstance(value, str)
        return value

    datetime.date.fromisoformat(made("date"))
    assert datetime.datetime.fromisoformat(made("date-time")).tzinfo is not None
    assert uuid.UUID(made("uuid")).version == 4
    url = urlsplit(made("uri"))
    assert url.scheme == "https" and url.netloc
    assert re.fullmatch(r"[a-z]+@example\.com", made("email"))


def test_strings_are_the_text_stretched_or_cut() -> None:
    assert fake({"type": "string"}, "seed", "  Ada Lovelace ") == "Ada Lovelace"
    assert fake({"type": "string", "maxLength": 3}, "seed", "Ada Lovelace") == "Ada"
    long = fake({"type": "string", "minLength": 30}, "seed", "Ada")
    assert long.startswith("Ada ") and len(long) >= 30
    assert fake({"type": "string"}, "seed", "") != ""  # no text: a word of its own


def test_same_seed_same_value_other_seeds_vary() -> None:
    schema = SCHEMAS["pydantic model"]
    assert fake(schema, "one", "t") == fake(schema, "one", "t")
    ages = {fake({"type": "integer", "minimum": 0, "maximum": 10**9}, f"seed {n}") for n in range(8)}
    assert len(ages) == 8
    picks = {fake(SCHEMAS["enum"], f"seed {n}") for n in range(30)}
    assert picks == {"north", "south", "east"}


def test_recursion_ends_shallow() -> None:
    value = fake(TREE, "seed")
    depth = 0
    while value is not None:
        depth, value = depth + 1, value["next"]
    assert 1 <= depth <= 3  # the definition within itself: only what is required, null first
    tree = fake(SCHEMAS["recursive required list"], "seed", "root")
    assert tree["name"] == "root" and all(sub["subdirs"] == [] for sub in tree["subdirs"])


@pytest.mark.parametrize(
    "schema",
    [
        False,
        {"type": "string", "minLength": 5, "maxLength": 2},
        {"enum": []},
        {"type": "integer", "minimum": 3, "maximum": 2},
        {"type": "integer", "minimum": 1, "maximum": 6, "multipleOf": 7},
        {"type": "array", "items": {"enum": ["x", "y"]}, "minItems": 3, "uniqueItems": True},
        {"type": "object", "required": ["a"], "additionalProperties": False},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/Nowhere"}}, "required": ["a"]},
        {"type": "object", "properties": {"next": {"$ref": "#"}}, "required": ["next"]},  # never ends
        {"allOf": [{"type": "string"}, {"type": "integer"}]},
        {"type": "string", "minLength": 10**6},  # longer than it makes
        {"type": "integer", "minimum": 2**64},  # beyond 64 bits
        {"type": "array", "minItems": 10**9},
        {"type": "object", "minProperties": 10**6},
    ],
)
def test_a_schema_nothing_satisfies_is_unworkable(schema: Any) -> None:
    with pytest.raises(Unworkable):
        fake(schema, "seed")


PATTERNS = [
    r"^\d{5}(-\d{4})?$",
    r"^[A-Z][a-z]+ [A-Z][a-z]+$",
    r"^[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}$",
    r"^(?:red|green|blue)$",
    r"^v\d+\.\d+\.\d+(-[a-z]+)?$",
    r"^\+?[0-9 ]{7,12}$",
    r"^[\w.-]+@[\w-]+\.[a-z]{2,3}$",
    r"^[^ ]+$",
    r"a.c",
    r"^x*?y+?z??$",
    r"^\$\d+(\.\d\d)?$",
    r"^[a-c-]{3}\t\n$",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_are_matched(pattern: str) -> None:
    counter = iter(range(1000))

    def pick(chars: str) -> str:
        return chars[next(counter) * 7 % len(chars)]

    for repeat in (1, 4):
        made = from_pattern(pattern, pick, repeat)
        assert re.search(pattern, made), (pattern, made)


@pytest.mark.parametrize("pattern", [r"(?=x)y", r"(a)\1", r"\bword", r"*a", r"(ab", r"a)", r"a{20000}"])
def test_patterns_it_cannot_read_say_so(pattern: str) -> None:
    with pytest.raises(UnreadablePattern):
        from_pattern(pattern, lambda chars: chars[0])
