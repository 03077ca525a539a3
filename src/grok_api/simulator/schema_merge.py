"""One JSON Schema out of several that must all hold (``allOf``), for ``schema_fake``."""

from __future__ import annotations

import math
from typing import Any, TypeGuard

_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_BOTH = ("items", "additionalProperties", "contains", "additionalItems")


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One schema that asks what both ask (as far as the keywords read here go)."""
    out = dict(a)
    for key, bv in b.items():
        if key not in out:
            out[key] = bv
            continue
        av = out[key]
        if key in _LOWER and is_number(av) and is_number(bv):
            out[key] = max(av, bv)
        elif key in _UPPER and is_number(av) and is_number(bv):
            out[key] = min(av, bv)
        elif key == "required":
            out[key] = [*av, *(name for name in bv if name not in av)]
        elif key == "properties":
            out[key] = {**av, **{k: {"allOf": [av[k], v]} if k in av else v for k, v in bv.items()}}
        elif key == "type":
            out[key] = _common_types(av, bv)
        elif key == "enum":
            out[key] = [x for x in av if x in bv]
        elif key == "allOf":
            out[key] = [*av, *bv]
        elif key in ("anyOf", "oneOf"):  # both lists must be met: each of a's branches meets b's too
            out[key] = [{"allOf": [x, {key: bv}]} for x in av]
        elif key in _BOTH:
            out[key] = False if av is False or bv is False else {"allOf": [av, bv]}
        elif key == "multipleOf" and isinstance(av, int) and isinstance(bv, int):
            out[key] = math.lcm(av, bv)
    return out


def types_of(value: Any) -> list[str]:
    """The names a ``type`` keyword lists (one name, or a list of them)."""
    if isinstance(value, str):
        return [value]
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []


def _common_types(a: Any, b: Any) -> list[str]:
    ta, tb = types_of(a), types_of(b)
    out = [t for t in ta if t in tb]
    mixed = ("integer" in ta and "number" in tb) or ("number" in ta and "integer" in tb)
    if mixed and "integer" not in out:
        out.append("integer")
    return out


def is_number(v: Any) -> TypeGuard[int | float]:
    """A JSON number (not a boolean)."""
    return isinstance(v, int | float) and not isinstance(v, bool)
