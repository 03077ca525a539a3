"""``grok-api chat`` driven in a pseudo-terminal (pexpect) and through pipes, against a served
gateway with the simulator behind it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from .helpers import Env, free_socket

WORD = r"(grok|orbit|signal|vector|lattice|photon|quasar|kernel|tensor|cipher|harbor|meadow|ember|delta|prism|summit|falcon|river|beacon|comet)"


def chat_env(env: Env, key: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GROK_API_BASE_URL": env.base_url + "/v1",
        "GROK_API_KEY": key,
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TERM": "xterm-256color",
    }


def spawn(env: Env, key: str, tmp_path: Path, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "grok_api", "chat", *args],
        env=chat_env(env, key, tmp_path),
        encoding="utf-8",
        dimensions=(40, 200),
        timeout=60,
    )
    child.expect("you> ")
    return child


def bodies_since(env: Env, mark: int) -> list[dict[str, object]]:
    return [body for upstream, _, body in env.sim.since(mark) if upstream == "xai"]


@pytest.mark.parametrize("display", ["markdown", "plain"])
def test_interactive_session(env: Env, key: str, tmp_path: Path, display: str) -> None:
    mark = env.sim.recorded
    child = spawn(env, key, tmp_path, "--model", "grok-4.3", *(["--plain"] if display == "plain" else []))
    try:
        child.sendline("hello")
        child.expect(r"\[turn 1\] You said: hello")
        child.expect(r"\d+ in \+ \d+ out tokens")  # usage after the answer
        child.expect("you> ")
        child.sendline("second")
        child.expect(r"\[turn 2\] You said: second")
        child.expect("you> ")

        child.sendline("/model grok-3-mini")
        child.expect("model: grok-3-mini")
        child.expect("you> ")
        child.sendline("third")
        child.expect(r"\[turn 3\] You said: third")  # the history went along to the new model
        child.expect("you> ")

        child.sendline("slow [sim tokens=400 rate=8]")
        child.expect(WORD)  # the answer has begun
        child.sendintr()
        child.expect("stopped")
        child.expect("you> ")
        child.sendline("after")
        child.expect(r"\[turn 5\] You said: after")  # the session goes on; the stopped turn counts
        child.expect("you> ")

        saved = tmp_path / "conversation.json"
        child.sendline(f"/save {saved}")
        child.expect("saved 10 messages")
        child.expect("you> ")
        child.sendline(f"/save {tmp_path / 'conversation.md'}")
        child.expect("saved 10 messages")
        child.expect("you> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0

    bodies = bodies_since(env, mark)
    assert all(b["stream"] is True for b in bodies)
    assert [b["model"] for b in bodies] == [
        "grok-4.3",
        "grok-4.3",
        "grok-3-mini",
        "grok-3-mini",
        "grok-3-mini",
    ]
    data = json.loads(saved.read_text())
    assert data["model"] == "grok-3-mini"
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"] * 5
    assert data["messages"][0] == {"role": "user", "content": "hello"}
    assert data["messages"][7]["content"]  # the part of the stopped answer that arrived
    assert data["messages"][9] == {"role": "assistant", "content": "[turn 5] You said: after"}
    markdown = (tmp_path / "conversation.md").read_text()
    assert markdown.startswith("# Conversation with grok-3-mini")
    assert "## You\n\nhello" in markdown


def test_commands_new_system_models_and_unknown(env: Env, key: str, tmp_path: Path) -> None:
    mark = env.sim.recorded
    child = spawn(env, key, tmp_path, "--model", "grok-4.3", "--system", "Be brief.")
    try:
        child.sendline("/models")
        child.expect(r"\* grok-4\.3\r?\n")
        child.expect("you> ")
        child.sendline("one")
        child.expect(r"\[turn 1\] You said: one")
        child.expect("you> ")
        child.sendline("/new")
        child.expect("new conversation")
        child.sendline("/system off")
        child.expect(r"system prompt: \(none\)")
        child.sendline('"""')
        child.sendline("line one")
        child.sendline("line two")
        child.sendline('"""')
        child.expect(r"\[turn 1\] You said: line one")
        child.expect("you> ")
        child.sendline("go on\\")
        child.expect(r"\.\.\. ")
        child.sendline("and on")
        child.expect(r"\[turn 2\] You said: go on")
        child.expect("you> ")
        child.sendline("/nonsense")
        child.expect("unknown command /nonsense")
        child.sendline("boom [sim fault=500]")
        child.expect("error:")
        child.expect(r"50\d: ")  # one line, and the session goes on
        child.expect("you> ")
        child.sendline("mid [sim fault=cut after=2]")
        child.expect("error:")
        child.expect("the answer failed")
        child.expect("you> ")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    bodies = bodies_since(env, mark)
    assert bodies[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert bodies[1]["messages"] == [{"role": "user", "content": "line one\nline two"}]
    assert bodies[2]["messages"][-1] == {"role": "user", "content": "go on\nand on"}


def run_chat(
    env: Env, key: str, tmp_path: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grok_api", "chat", *args],
        input=stdin,
        env=chat_env(env, key, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_one_shot_with_piped_stdin_prints_only_the_answer(env: Env, key: str, tmp_path: Path) -> None:
    mark = env.sim.recorded
    result = run_chat(env, key, tmp_path, "summarise", "--model", "grok-4.3", stdin="my notes\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[turn 1] You said: summarise my notes\n"  # (the simulator folds whitespace)
    assert bodies_since(env, mark)[0]["messages"] == [{"role": "user", "content": "summarise\n\nmy notes"}]
    assert result.stderr == ""
    piped_only = run_chat(env, key, tmp_path, "--model", "grok-4.3", stdin="just this")
    assert piped_only.stdout == "[turn 1] You said: just this\n"


def test_one_shot_failures_exit_non_zero_with_a_clear_message(env: Env, key: str, tmp_path: Path) -> None:
    wrong = run_chat(env, "gk-not-a-key", tmp_path, "hello")
    assert wrong.returncode == 1
    assert wrong.stdout == ""
    assert "refused the API key (401" in wrong.stderr
    assert "Traceback" not in wrong.stderr

    denied = run_chat(env, key, tmp_path, "hello", "--model", "no-such-model")
    assert denied.returncode == 1
    assert denied.stderr.startswith("grok-api chat: 404:")

    with free_socket() as sock:  # bound, not listening: nothing answers there
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        down = run_chat(env, key, tmp_path, "hello", "--base-url", url)
    assert down.returncode == 1
    assert f"cannot reach {url}" in down.stderr

    nothing = run_chat(env, key, tmp_path)
    assert nothing.returncode == 2
    assert "nothing to ask" in nothing.stderr


def test_no_key_is_a_usage_error(env: Env, tmp_path: Path) -> None:
    environ = chat_env(env, "", tmp_path)
    del environ["GROK_API_KEY"]
    result = subprocess.run(
        [sys.executable, "-m", "grok_api", "chat", "hi"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "GROK_API_KEY" in result.stderr


def test_one_shot_mid_stream_failure(env: Env, key: str, tmp_path: Path) -> None:
    result = run_chat(env, key, tmp_path, "cut [sim fault=cut after=2]", "--model", "grok-4.3")
    assert result.returncode == 1
    assert result.stderr.startswith("grok-api chat:")


BLOCK_SERVER = """
import sys
from importlib.abc import MetaPathFinder

class NoServer(MetaPathFinder):  # as if installed without the [server] extra
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("orjson", "fastapi", "sqlalchemy", "uvicorn", "aiohttp", "redis"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None

sys.meta_path.insert(0, NoServer())
sys.argv = ["grok-api", *sys.argv[1:]]
from grok_api.cli_chat import entry
entry()
"""


def test_a_client_only_install_chats_and_explains_the_rest(env: Env, key: str, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", BLOCK_SERVER, *args],
            env=chat_env(env, key, tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    answered = run("chat", "hello", "--model", "grok-4.3")
    assert (answered.returncode, answered.stdout) == (0, "[turn 1] You said: hello\n"), answered.stderr
    serve = run("serve")
    assert serve.returncode == 1
    assert "pip install 'grok-api[server]'" in serve.stderr
    assert re.search(r"no module '(orjson|fastapi|sqlalchemy|uvicorn|aiohttp|redis)'", serve.stderr)
    assert "chat" in run("--help").stdout
