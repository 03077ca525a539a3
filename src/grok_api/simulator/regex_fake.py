"""A string that a simple regular expression matches, for ``pattern`` in a JSON Schema.

It reads the common subset: literals and escapes, ``.``, classes ``[a-z0-9_]`` (negated too),
``\\d \\w \\s``, groups ``(…)`` / ``(?:…)`` with ``|`` (the first alternative is taken),
quantifiers ``? * + {n} {n,} {n,m}`` (lazy or not) and the anchors ``^ $``. Each repeat is
made once, or as often as asked (within its bounds) and each class character chosen from ``pick``, so the
string is deterministic for a seed. What it cannot read raises ``UnreadablePattern``; the caller
checks the result with ``re.search`` anyway.
"""

from __future__ import annotations

import string
from collections.abc import Callable

MAX_REPEAT = 10_000  # the most times one piece is repeated
_DIGITS = string.digits
_WORD = string.ascii_letters + string.digits + "_"
_SPACE = " "
_PRINTABLE = string.ascii_letters + string.digits + "-_.~"
_CLASS_ESCAPES = {"d": _DIGITS, "w": _WORD, "s": _SPACE}
_LITERAL_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}


class UnreadablePattern(ValueError):
    """The pattern uses syntax this reader does not know (or is not a valid pattern)."""


def from_pattern(pattern: str, pick: Callable[[str], str], repeat: int = 1) -> str:
    """A string the pattern matches; ``pick(chars)`` chooses one of ``chars``; an open-ended
    repeat (``*``, ``+``, ``{n,}``) is made ``repeat`` times (within its bounds)."""
    parser = _Parser(pattern, pick, repeat)
    out = parser.alternation()
    if parser.pos != len(pattern):
        raise UnreadablePattern(f"unbalanced ')' at {parser.pos}")
    return out


class _Parser:
    def __init__(self, pattern: str, pick: Callable[[str], str], repeat: int) -> None:
        self.p = pattern
        self.pos = 0
        self.pick = pick
        self.repeat = repeat

    def peek(self) -> str:
        return self.p[self.pos] if self.pos < len(self.p) else ""

    def take(self) -> str:
        if self.pos >= len(self.p):
            raise UnreadablePattern("pattern ends too early")
        c = self.p[self.pos]
        self.pos += 1
        return c

    def alternation(self) -> str:
        first = self.sequence()
        while self.peek() == "|":
            self.take()
            self.sequence()  # read, not used: the first alternative is the answer
        return first

    def sequence(self) -> str:
        out: list[str] = []
        while self.peek() not in ("", "|", ")"):
            unit = self.atom()
            low, high = self.quantifier()
            out += [unit() for _ in range(max(low, min(self.repeat, high)))]
        return "".join(out)

    def atom(self) -> Callable[[], str]:
        c = self.take()
        if c == "(":
            if self.peek() == "?":
                self.take()
                if self.take() != ":":
                    raise UnreadablePattern("only (?:…) groups are read")
            inner = self.alternation()
            if self.take() != ")":
                raise UnreadablePattern("unclosed group")
            return lambda: inner
        if c == "[":
            chars = self.char_class()
            return lambda: self.pick(chars)
        if c == "\\":
            e = self.take()
            if e in _CLASS_ESCAPES:
                chars = _CLASS_ESCAPES[e]
                return lambda: self.pick(chars)
            if e.isalnum() and e not in _LITERAL_ESCAPES:
                raise UnreadablePattern(f"escape \\{e} is not read")
            literal = _LITERAL_ESCAPES.get(e, e)
            return lambda: literal
        if c in "^$":
            return lambda: ""
        if c == ".":
            return lambda: self.pick(string.ascii_letters)
        if c in "*+?{":
            raise UnreadablePattern(f"nothing to repeat at {self.pos - 1}")
        return lambda: c

    def char_class(self) -> str:
        negated = self.peek() == "^"
        if negated:
            self.take()
        members: list[str] = []
        first = True
        while first or self.peek() != "]":
            first = False
            c = self.class_char()
            if self.peek() == "-" and self.p[self.pos + 1 : self.pos + 2] not in ("]", ""):
                self.take()
                end = self.class_char()
                members.append("".join(chr(o) for o in range(ord(c[0]), ord(end[0]) + 1)))
            else:
                members.append(c)
        self.take()
        chars = "".join(members)
        if negated:
            chars = "".join(ch for ch in _PRINTABLE if ch not in chars)
        if not chars:
            raise UnreadablePattern("empty character class")
        return chars

    def class_char(self) -> str:
        c = self.take()
        if c != "\\":
            return c
        e = self.take()
        return _CLASS_ESCAPES.get(e) or _LITERAL_ESCAPES.get(e, e)

    def quantifier(self) -> tuple[int, int]:
        c = self.peek()
        bounds = {"?": (0, 1), "*": (0, 1 << 30), "+": (1, 1 << 30)}.get(c)
        if bounds is not None:
            self.take()
        elif c == "{" and self._counted():
            bounds = self._counts()
        else:
            return 1, 1
        if self.peek() == "?":  # lazy: the same strings match
            self.take()
        return bounds

    def _counted(self) -> bool:
        end = self.p.find("}", self.pos)
        inside = self.p[self.pos + 1 : end] if end > 0 else ""
        low, _, high = inside.partition(",")
        return low.isdigit() and (high == "" or high.isdigit())

    def _counts(self) -> tuple[int, int]:
        end = self.p.index("}", self.pos)
        low, comma, high = self.p[self.pos + 1 : end].partition(",")
        self.pos = end + 1
        top = int(high) if high else (1 << 30 if comma else int(low))
        if int(low) > MAX_REPEAT:
            raise UnreadablePattern(f"a repeat of {low} is more than this reader makes")
        return int(low), top
