"""docs/: the configuration reference is generated from Settings and cannot drift; every
variable and link the docs mention is real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import Field

from grok_api.config import Settings
from grok_api.config_docs import MissingDocs, entries, main, render

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
# variables the docs may name that are not gateway settings: the client's, compose's, the tests'
NOT_SETTINGS = {
    "GROK_API_BASE_URL",
    "GROK_API_KEY",
    "GROK_API_MODEL",
    "GROK_API_PUBLIC_PORT",
    "GROK_API_BASE_IMAGE",
    "GROK_API_IMAGE",
    "GROK_API_CONTAINER_TEST",
    "GROK_API_TEST_BASE_IMAGE",
    "GROK_API_REQUIRE_SERVICES",
}
PENDING = {"GROK_API_TRUSTED_PROXIES"}  # documented ahead of its setting (being added elsewhere)


def setting_names() -> set[str]:
    return {e.env for e in entries()}


def test_the_configuration_reference_is_generated_and_current() -> None:
    page = (DOCS / "configuration.md").read_text()
    assert page == render(entries()), "docs/configuration.md is stale: run `make docs`"
    for env in setting_names():
        assert f"| `{env}` |" in page
    assert main(["--check"]) == 0


def test_a_setting_without_documentation_fails() -> None:
    class Grown(Settings):
        shiny_new_thing: int = 3

    with pytest.raises(MissingDocs) as caught:
        entries(Grown)
    assert caught.value.names == ["shiny_new_thing"]

    class Described(Settings):
        shiny_new_thing: int = Field(default=3, ge=1, description="how shiny")

    row = next(e for e in entries(Described) if e.env == "GROK_API_SHINY_NEW_THING")
    assert (row.kind, row.default, row.description) == ("integer (≥ 1)", "`3`", "how shiny")
    assert "| `GROK_API_SHINY_NEW_THING` | integer (≥ 1) | `3` | how shiny |" in render(entries(Described))


def test_check_mode_reports_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text("old\n")
    assert main(["--check", "--output", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--output", str(stale)]) == 0
    assert main(["--check", "--output", str(stale)]) == 0


def doc_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def test_docs_name_only_real_variables() -> None:
    known = setting_names() | NOT_SETTINGS | PENDING
    for page in [*doc_pages(), ROOT / ".env.example"]:
        named = set(re.findall(r"\b(?:GROK_API_[A-Z0-9_]*[A-Z0-9]|XAI_API_KEY)\b", page.read_text()))
        assert named - known == set(), f"{page.name} names unknown variables"


def test_relative_links_resolve() -> None:
    for page in [*doc_pages(), ROOT / "README.md"]:
        # relative targets that look like files (a bare word like "(url)" is prose, not a link)
        for target in re.findall(r"\]\(([^)#:\s]*[./][^)#:\s]*)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_the_readme_maps_every_doc() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in doc_pages():
        assert f"(docs/{page.name})" in readme, f"the README's documentation map lacks docs/{page.name}"
