"""What one access line costs, in instructions: callgrind over many lines in one process.

    python bench/cost_line.py [--lines 5000]

Runs this script under valgrind's callgrind twice, once writing ``--lines`` access lines and
once writing none, and prints the difference per line: the line's own cost (record fields,
formatting, queueing on ``serve``'s batched handler), apart from everything else a request
does. ``bench/cost.py`` measures whole requests. Needs valgrind (apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from cost import callgrind_total


def write_lines(n: int, fmt: str, through_logging: bool) -> None:
    """``n`` access lines of one settled request, as ``serve``'s handler takes them."""
    from grok_api import logs
    from grok_api.metrics import Metrics
    from grok_api.observe import Observer
    from grok_api.recent import RequestRecord

    handler = logs.handler_for(fmt, open(os.devnull, "w"), batched=True)  # noqa: SIM115
    if through_logging:
        handler.addFilter(lambda record: True)  # a filter it does not know: the ordinary path
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.INFO)
    observer = Observer(Metrics(), access_log=True)
    r = RequestRecord(
        "req_0123456789abcdef01234567", "POST", "/v1/chat/completions", "chat", time.time(), 1.0
    )
    r.key_id, r.key_name, r.model, r.upstream, r.target = (
        "key_abc",
        "bench",
        "grok-4.3",
        "xai",
        "https://api.x.ai/v1",
    )
    r.status, r.t_end, r.prompt_tokens, r.completion_tokens, r.bytes_out = 200, 1.002, 12, 30, 700

    async def run() -> None:  # on an event loop, as in serve (the handler times its writes on it)
        for _ in range(n):
            observer._access_line(r)

    asyncio.run(run())


def instructions(lines: int, fmt: str, through_logging: bool, out: Path) -> int:
    args = [sys.executable, __file__, "--child", str(lines), "--format", fmt]
    if through_logging:
        args.append("--through-logging")
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *args],
        check=True,
        capture_output=True,
    )
    return callgrind_total(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=5000)
    p.add_argument("--format", choices=["json", "text"], default="json")
    p.add_argument("--through-logging", action="store_true", help="the ordinary logging path, for comparison")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child is not None:
        write_lines(a.child, a.format, a.through_logging)
        return
    if shutil.which("valgrind") is None:
        sys.exit("bench/cost_line.py needs valgrind (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as work:
        none = instructions(0, a.format, a.through_logging, Path(work) / "none.out")
        some = instructions(a.lines, a.format, a.through_logging, Path(work) / "some.out")
    path = "through logging" if a.through_logging else "direct"
    print(f"{a.format} access line ({path}): {(some - none) / a.lines:,.0f} instructions a line")


if __name__ == "__main__":
    main()
