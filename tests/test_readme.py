"""The README's Python example runs, as written, against a served gateway."""

from __future__ import annotations

import re
from pathlib import Path

from .helpers import Env, run_script

README = Path(__file__).parent.parent / "README.md"


def readme_example() -> str:
    text = README.read_text()
    marker = text.index("<!-- readme-example")
    match = re.search(r"```python\n(.*?)```", text[marker:], re.DOTALL)
    assert match, "the README lost its runnable example"
    return match.group(1)


def test_readme_python_example_runs(env: Env, key: str, tmp_path: Path) -> None:
    code = readme_example().replace("http://127.0.0.1:8000/v1", env.base_url + "/v1")
    script = tmp_path / "example.py"
    script.write_text(code)
    result = run_script(script, key)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "grok-4.3" in lines[0]
    assert lines[1] == "[turn 1] You said: Name a moon of Saturn."
    assert lines[2] == "[turn 1] You said: Count to five."
    assert re.fullmatch(r"\[\d+ tokens\]", lines[3])


def test_readme_documents_every_setting() -> None:
    from grok_api.config import Settings

    text = README.read_text()
    for name in Settings.model_fields:
        env_name = "XAI_API_KEY" if name == "xai_api_key" else f"GROK_API_{name.upper()}"
        assert f"`{env_name}`" in text, f"{env_name} is not in the README's configuration table"


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make run" in text
    assert "make test" in text
