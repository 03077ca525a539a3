"""A made-up JSON value that validates against a JSON Schema: what the simulator answers when a
request carries one (a function tool's ``parameters``, a ``json_schema`` response format).

It is deterministic: each choice (an enum member, a number, a boolean, a class character) comes
from a hash of the seed (the prompt) and the value's place in the document. A plain string is
the given text (the prompt without its directives), stretched or cut to its length bounds.

Read: ``type`` (one, or a list such as ``["string", "null"]``), ``const``, ``enum``; objects'
``properties`` / ``required`` / ``additionalProperties`` / ``patternProperties`` /
``minProperties`` / ``maxProperties``; arrays' ``items`` / ``prefixItems`` (and draft-7 tuple
``items``) / ``minItems`` / ``maxItems`` / ``uniqueItems`` / ``contains``; strings'
``minLength`` / ``maxLength`` / ``pattern`` (simple ones, see ``regex_fake``) / ``format``
(date, date-time, time, duration, email, uri, uuid, hostname, ipv4, ipv6: ``schema_formats``); numbers'
``minimum`` / ``maximum`` / ``exclusiveMinimum`` / ``exclusiveMaximum`` / ``multipleOf``;
``anyOf`` / ``oneOf`` (the first branch that works), ``allOf`` (``schema_merge``), ``$ref`` into the
same document (``#/$defs/…``, ``#/definitions/…``, ``#``). Deep in a document, or inside a
definition within itself, only required properties and ``minItems`` items are made and
``null`` is preferred, so recursive models end; a schema no value satisfies raises
``Unworkable``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import orjson

from .regex_fake import UnreadablePattern, from_pattern
from .schema_formats import FORMATS
from .schema_merge import is_number, merge, types_of
from .script import _WORDS

SOFT_DEPTH = 6  # deeper than this: only what is required, and null first
HARD_DEPTH = 40  # deeper than this a branch is given up (a schema that never ends)
MAX_STEPS = 20_000  # values tried in one document, at most
MAX_STRING = 100_000  # the longest string made (a minLength above it is unworkable)
_INT64 = (-(2**63), 2**63 - 1)  # integers stay in the range every JSON reader takes
_IMPLIED = (
    ("object", ("properties", "required", "additionalProperties", "minProperties", "maxProperties")),
    ("array", ("items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains")),
    ("string", ("minLength", "maxLength", "pattern", "format")),
    ("number", ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")),
)


class Unworkable(Exception):
    """No value was found for a schema (or a part of it that cannot be left out)."""


def fake(schema: Any, seed: str, text: str = "") -> Any:
    """A value ``schema`` accepts, the same for the same seed; raises ``Unworkable``."""
    return _Faker(schema, seed, text).value(schema, "#", 0)


class _Faker:
    def __init__(self, root: Any, seed: str, text: str) -> None:
        self.root = root
        self.seed = seed
        self.text = text.strip()[:200]
        self.steps = 0
        self.refs: list[str] = []  # the $refs followed to reach the value being made

    def number(self, path: str) -> int:
        digest = hashlib.sha256(f"{self.seed}\0{path}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def word(self, path: str) -> str:
        return _WORDS[self.number(path) % len(_WORDS)]

    def value(self, schema: Any, path: str, depth: int) -> Any:
        self.steps += 1
        if depth > HARD_DEPTH or self.steps > MAX_STEPS:
            raise Unworkable(f"{path}: too deep")
        s, refs = self.flatten(schema)
        self.refs += refs
        try:
            if "const" in s:
                return s["const"]
            if "enum" in s:
                return self.member(s, path)
            for key in ("anyOf", "oneOf"):
                if isinstance(s.get(key), list):
                    return self.branch(s, key, path, depth)
            return self.typed(s, path, depth)
        finally:
            del self.refs[len(self.refs) - len(refs) :]

    def deep(self, depth: int) -> bool:
        """Past the soft depth, or inside a definition within itself: make only what is needed."""
        return depth >= SOFT_DEPTH or len(set(self.refs)) < len(self.refs)

    def flatten(self, schema: Any) -> tuple[dict[str, Any], list[str]]:
        """The schema with its ``$ref`` resolved and its ``allOf`` merged in; the refs followed."""
        s = _as_schema(schema)
        refs: list[str] = []
        hops = 0
        while "$ref" in s or "allOf" in s:
            hops += 1
            if hops > 64:
                raise Unworkable("$ref or allOf without end")
            if "$ref" in s:
                rest = {k: v for k, v in s.items() if k != "$ref"}
                refs.append(str(s["$ref"]))
                s = merge(rest, _as_schema(self.resolve(s["$ref"])))
            else:  # one part at a time, so that its $ref is resolved before the next is merged
                first, *others = s.pop("allOf") or [True]
                s = merge(s, {"allOf": others}) if others else s
                s = merge(s, _as_schema(first))
        return s, refs

    def resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            return True  # an outside document: unknown, so anything
        node = self.root
        for part in ref[1:].split("/")[1:]:
            part = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise Unworkable(f"$ref {ref} points nowhere")
        return node

    def member(self, s: dict[str, Any], path: str) -> Any:
        types = types_of(s.get("type"))
        options = [x for x in s["enum"] if not types or any(_is_type(x, t) for t in types)]
        if not options:
            raise Unworkable(f"{path}: no enum member fits")
        return options[self.number(path) % len(options)]

    def branch(self, s: dict[str, Any], key: str, path: str, depth: int) -> Any:
        rest = {k: v for k, v in s.items() if k != key}
        options = list(s[key])
        if self.deep(depth):
            options.sort(key=lambda o: not (isinstance(o, dict) and o.get("type") == "null"))
        for option in options:
            if option is False:
                continue
            try:
                return self.value({"allOf": [rest, option]}, path, depth + 1)
            except Unworkable:
                continue
        raise Unworkable(f"{path}: no branch of {key} works")

    def typed(self, s: dict[str, Any], path: str, depth: int) -> Any:
        types = types_of(s.get("type")) if "type" in s else [_implied(s)]
        if self.deep(depth) and "null" in types:
            types = ["null"]
        makers: dict[str, Callable[[dict[str, Any], str, int], Any]] = {
            "object": self.an_object,
            "array": self.an_array,
            "string": self.a_string,
            "integer": self.an_integer,
            "number": self.a_number,
            "boolean": lambda s, p, d: self.number(p) % 2 == 0,
            "null": lambda s, p, d: None,
        }
        for t in types:
            if t in makers:
                try:
                    return makers[t](s, path, depth)
                except Unworkable:
                    continue
        raise Unworkable(f"{path}: no type of {types} works")

    def an_object(self, s: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        props: dict[str, Any] = s.get("properties") or {}
        required = list(dict.fromkeys(n for n in s.get("required") or [] if isinstance(n, str)))
        least, most = s.get("minProperties", 0), s.get("maxProperties", math.inf)
        room = most - len(required)  # how many optional properties may come too
        if self.deep(depth):  # only what is needed
            room = min(room, max(0, least - len(required)))
        out: dict[str, Any] = {}
        for name in [*props, *(n for n in required if n not in props)]:  # in the schema's order
            if name in required:
                out[name] = self.value(self.property(s, name), f"{path}/{name}", depth + 1)
            elif room > 0:
                try:
                    out[name] = self.value(props[name], f"{path}/{name}", depth + 1)
                    room -= 1
                except Unworkable:
                    continue
        n = 0
        while len(out) < least and n < 100:  # names of its own, for what additionalProperties allows
            name = f"{self.word(f'{path}/+{n}')}_{n}"
            n += 1
            try:
                out[name] = self.value(self.property(s, name), f"{path}/{name}", depth + 1)
            except Unworkable:
                continue
        if not least <= len(out) <= most:
            raise Unworkable(f"{path}: cannot meet the property counts")
        return out

    def property(self, s: dict[str, Any], name: str) -> Any:
        """The schema that applies to the property ``name``."""
        props = s.get("properties") or {}
        if name in props:
            return props[name]
        matching = [sub for pat, sub in (s.get("patternProperties") or {}).items() if _search(pat, name)]
        if matching:
            return {"allOf": matching}
        return s.get("additionalProperties", True)

    def an_array(self, s: dict[str, Any], path: str, depth: int) -> list[Any]:
        prefix = s.get("prefixItems") or []
        items = s.get("items", True)
        if isinstance(items, list):  # the older tuple form
            prefix, items = items, s.get("additionalItems", True)
        low, high = s.get("minItems", 0), s.get("maxItems", math.inf)
        want = low if self.deep(depth) else max(low, min(high, max(len(prefix), 2)))
        if items is False:
            want = min(want, len(prefix))
        unique = s.get("uniqueItems") is True
        out: list[Any] = []
        seen: set[bytes] = set()
        tries = 0
        while len(out) < want and tries < 8 * want + 8:
            i = len(out)
            sub = prefix[i] if i < len(prefix) else items
            if i == 0 and "contains" in s:
                sub = {"allOf": [sub, s["contains"]]}
            try:
                v = self.value(sub, f"{path}/{i}" + (f"~{tries}" if tries else ""), depth + 1)
            except Unworkable:
                if i < low:
                    raise
                break  # the items beyond minItems were extra
            tries += 1
            key = orjson.dumps(v, option=orjson.OPT_SORT_KEYS)
            if unique and key in seen:
                continue
            seen.add(key)
            out.append(v)
        if len(out) < low:
            raise Unworkable(f"{path}: fewer than {low} items")
        return out

    def a_string(self, s: dict[str, Any], path: str, depth: int) -> str:
        low, high = s.get("minLength", 0), s.get("maxLength", math.inf)
        if low > min(high, MAX_STRING):
            raise Unworkable(f"{path}: minLength above maxLength (or too long)")
        plain = self.fit(self.text or self.word(path), low, high, path)
        pattern = s.get("pattern")
        if isinstance(pattern, str):
            return self.matching(pattern, low, high, path, plain)
        made = FORMATS.get(str(s.get("format")))
        if made is not None:
            formatted = made(self.number(path), self.word(path), self.seed + path)
            if low <= len(formatted) <= high:
                return formatted
        return plain

    def matching(self, pattern: str, low: int, high: float, path: str, plain: str) -> str:
        """A string the pattern matches within the length bounds, or the best try."""
        if _search(pattern, plain):
            return plain
        counter = iter(range(1 << 30))

        def pick(chars: str) -> str:
            return chars[self.number(f"{path}@{next(counter)}") % len(chars)]

        tries: list[str] = []
        for repeat in dict.fromkeys((1, max(1, low), 3)):
            try:
                made = from_pattern(pattern, pick, repeat)
            except UnreadablePattern:
                break
            if _search(pattern, made) and low <= len(made) <= high:
                return made
            tries.append(made)
        return tries[0] if tries else plain  # best effort: a pattern this reader does not know

    def fit(self, text: str, low: int, high: float, path: str) -> str:
        n = 0
        while len(text) < low:
            text += " " + self.word(f"{path}+{n}")
            n += 1
        if len(text) <= high:
            return text
        cut = text[: int(high)]
        return cut.rstrip() if len(cut.rstrip()) >= low else cut

    def an_integer(self, s: dict[str, Any], path: str, depth: int) -> int:
        lo, hi = _bounds(s, integer=True)
        lo, hi = max(lo, _INT64[0]), min(hi, _INT64[1])
        step = s.get("multipleOf")
        if is_number(step) and step > 0:
            return int(self.multiple(step, lo, hi, path, lambda v: v == int(v) and lo <= v <= hi))
        if lo > hi:
            raise Unworkable(f"{path}: empty range")
        return int(lo + self.number(path) % (hi - lo + 1))

    def a_number(self, s: dict[str, Any], path: str, depth: int) -> float:
        lo, hi = _bounds(s, integer=False)
        x_lo = _exclusive(s, "exclusiveMinimum", "minimum")
        x_hi = _exclusive(s, "exclusiveMaximum", "maximum")

        def inside(v: float) -> bool:
            above = v > lo if x_lo else v >= lo
            below = v < hi if x_hi else v <= hi
            return above and below

        step = s.get("multipleOf")
        if is_number(step) and step > 0:
            return self.multiple(step, lo, hi, path, inside)
        raw = lo + (self.number(path) % 10_001) / 10_000 * (hi - lo)
        for v in (round(raw, 2), raw, (lo + hi) / 2, lo, hi):
            if inside(v):
                return v
        raise Unworkable(f"{path}: empty range")

    def multiple(self, step: float, lo: float, hi: float, path: str, fits: Callable[[float], bool]) -> float:
        """A multiple of ``step`` between ``lo`` and ``hi`` that ``fits``."""
        first, last = math.ceil(lo / step), math.floor(hi / step)
        if first <= last:
            start = first + self.number(path) % (last - first + 1)
            ks: list[int] = [
                *range(start, min(last, start + 50) + 1),
                *range(first, min(last, first + 50) + 1),
            ]
            for v in (k * step for k in ks):
                if fits(v) and _multiple_of(v, step):
                    return v
        raise Unworkable(f"{path}: no multiple of {step} in range")


def _as_schema(schema: Any) -> dict[str, Any]:
    if schema is False:
        raise Unworkable("the schema false")
    return dict(schema) if isinstance(schema, dict) else {}


def _implied(s: dict[str, Any]) -> str:
    for name, keys in _IMPLIED:
        if any(k in s for k in keys):
            return name
    return "string"


def _is_type(v: Any, t: str) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "object": lambda x: isinstance(x, dict),
        "array": lambda x: isinstance(x, list),
        "string": lambda x: isinstance(x, str),
        "integer": lambda x: is_number(x) and float(x).is_integer(),
        "number": is_number,
        "boolean": lambda x: isinstance(x, bool),
        "null": lambda x: x is None,
    }
    check = checks.get(t)
    return check is None or check(v)


def _exclusive(s: dict[str, Any], key: str, inclusive: str) -> bool:
    """Whether the bound on this side is exclusive (a number, or draft 4's ``true``)."""
    v, other = s.get(key), s.get(inclusive)
    if v is True:
        return is_number(other)
    if not is_number(v):
        return False
    if not is_number(other):
        return True
    return bool(v >= other if key == "exclusiveMinimum" else v <= other)


def _bounds(s: dict[str, Any], integer: bool) -> tuple[float, float]:
    """The range of a number (exclusive bounds made inclusive for integers), 100 wide if open."""
    lo, hi = -math.inf, math.inf
    if is_number(s.get("minimum")):
        lo = s["minimum"]
    if is_number(s.get("maximum")):
        hi = s["maximum"]
    x_lo, x_hi = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    if is_number(x_lo):
        lo = max(lo, x_lo)
    if is_number(x_hi):
        hi = min(hi, x_hi)
    if lo == -math.inf:
        lo = (hi - 100) if hi != math.inf else 0
    if hi == math.inf:
        hi = lo + 100
    if integer:
        lo = math.floor(lo) + 1 if _exclusive(s, "exclusiveMinimum", "minimum") else math.ceil(lo)
        hi = math.ceil(hi) - 1 if _exclusive(s, "exclusiveMaximum", "maximum") else math.floor(hi)
    return lo, hi


def _multiple_of(v: float, step: float) -> bool:
    """As a JSON Schema validator checks it (a float step by the quotient, else the remainder)."""
    if isinstance(step, float):
        q = v / step
        return math.isfinite(q) and int(q) == q
    return v % step == 0


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False
