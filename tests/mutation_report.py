"""Killed / survived / equivalent per module, from the last ``mutmut run`` (``make mutation``).

Reads mutmut's results (``mutants/**/*.py.meta``) and the equivalent mutants listed in
tests/MUTATION.md (lines ``- `mutant name`: why``). A module's score is killed / (all -
equivalent); a mutant no direct test reaches counts as survived. Exits 1 when a module is under
the aim (85 %), so the target fails loudly.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).parent.parent
AIM = 85.0
KILLED = {1, 3, -24, 24, 152, 255, 36, -9, -11}  # a test failed, or the mutant hung/crashed (timeout)
SURVIVED = {0}
NO_TESTS = {33, 5}  # no direct test ran the mutated function: counted as survived


def equivalents() -> dict[str, str]:
    text = (ROOT / "tests" / "MUTATION.md").read_text().split("## Equivalent mutants", 1)[1]
    return dict(re.findall(r"^- `([^`]+)`: (.+)$", text, re.MULTILINE))


def module_of(mutant: str) -> str:
    return mutant.rsplit(".", 1)[0]  # the mangled function name holds no dot


def main() -> int:
    equivalent = equivalents()
    counts: dict[str, Counter[str]] = {}
    survivors: list[str] = []
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        for mutant, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            c = counts.setdefault(module_of(mutant), Counter())
            if code is None:
                c["not run"] += 1
            elif mutant in equivalent:
                c["equivalent"] += 1
            elif code in KILLED:
                c["killed"] += 1
            else:
                c["survived"] += 1
                survivors.append(f"{mutant} ({'no tests' if code in NO_TESTS else code})")
    failing = False
    print(f"{'module':34} {'killed':>7} {'survived':>9} {'equivalent':>11} {'score':>7}")
    for module, c in sorted(counts.items()):
        scored = c["killed"] + c["survived"]
        score = 100.0 * c["killed"] / scored if scored else 100.0
        failing |= score < AIM
        extra = f"  ({c['not run']} not run)" if c["not run"] else ""
        print(f"{module:34} {c['killed']:7} {c['survived']:9} {c['equivalent']:11} {score:6.1f}%{extra}")
    unknown = sorted(
        set(equivalent)
        - {
            m
            for meta in (ROOT / "mutants").rglob("*.py.meta")
            for m in json.loads(meta.read_text())["exit_code_by_key"]
        }
    )
    if unknown:
        print(
            f"\n{len(unknown)} mutants listed as equivalent no longer exist (the code moved): {unknown[:5]}"
        )
    if "-v" in sys.argv:
        print("\nsurvivors:\n  " + "\n  ".join(survivors))
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
