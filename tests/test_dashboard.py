"""The admin dashboard in headless Chromium (Debian's ``chromium``, driven by Playwright):
sign-in, keys (created once, edited, revoked), the overview, usage and requests pages after real
requests, and the grok.com card turning red after a refusal. Screenshots of each page go to
``test-artefacts/dashboard/`` (or ``$GROK_API_TEST_ARTEFACTS``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from .helpers import (
    ADMIN_KEY,
    Env,
    ServedApp,
    gateway_settings,
    key_for,
    missing_service,
    post_chat,
    stream_frames,
    web_settings,
)

ARTEFACTS = Path(os.environ.get("GROK_API_TEST_ARTEFACTS", Path(__file__).parent.parent / "test-artefacts"))
WEB_MODEL = "web/grok-4"


@pytest.fixture(scope="module")
def gw(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A gateway of its own, with both upstreams (xAI's API and grok.com) on the simulator."""
    settings = web_settings(tmp_path_factory.mktemp("dashboard"), env.sim)
    with ServedApp(settings) as served:
        yield Env(app=served, sim=env.sim, settings=settings)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    exe = shutil.which("chromium")
    if exe is None:
        missing_service("Chromium", "apt-get install -y chromium (.ci/run does it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert errors == [], f"the page raised: {errors}"


def shot(page: Page, name: str) -> None:
    folder = ARTEFACTS / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def sign_in(page: Page, gw: Env, key: str = ADMIN_KEY) -> None:
    page.goto(gw.base_url + "/dashboard")
    page.get_by_label("Admin key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def signed_in(page: Page, gw: Env) -> None:
    sign_in(page, gw)
    expect(page.locator("body")).to_have_attribute("data-loaded", "overview")


def go(page: Page, name: str) -> None:
    page.get_by_role("link", name=name).click()
    expect(page.locator("body")).to_have_attribute("data-loaded", name.lower())


def test_wrong_admin_key_is_refused_and_the_right_one_signs_in(gw: Env, page: Page) -> None:
    sign_in(page, gw, "not-the-admin-key")
    expect(page.get_by_role("alert")).to_contain_text("Refused")
    expect(page.get_by_role("navigation")).to_be_hidden()
    shot(page, "signin-refused")
    page.get_by_label("Admin key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body")).to_have_attribute("data-loaded", "overview")
    expect(page.get_by_role("navigation")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('grok-api-admin-key')") == ADMIN_KEY
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Admin key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('grok-api-admin-key')") is None


def create_key(page: Page, name: str, **limits: str) -> str:
    go(page, "Keys")
    page.get_by_text("Create a key").click()
    page.get_by_label("Name").fill(name)
    for label, value in limits.items():
        page.get_by_label(label, exact=True).first.fill(value)
    page.get_by_role("button", name="Create key").click()
    box = page.locator("#new-key-value")
    expect(box).to_be_visible()
    key = box.input_value()
    assert key.startswith("gk-")
    return key


def test_a_key_is_created_with_limits_shown_once_used_seen_and_revoked(gw: Env, page: Page) -> None:
    signed_in(page, gw)
    key = create_key(page, "browser-key", **{"Requests / minute": "50", "Tokens / day": "100000"})
    row = page.locator("#keys-table tr", has_text="browser-key")
    expect(row.locator(".limits")).to_have_text("50 req/min, 100,000 tok/day")
    shot(page, "keys-created")
    # the key is shown once: leaving the page forgets it, and the list never shows it
    go(page, "Overview")
    go(page, "Keys")
    expect(page.locator("#new-key")).to_be_hidden()
    assert key not in page.content()

    served = [post_chat(gw.base_url, key, f"hello {i}") for i in range(3)]
    assert [r.status_code for r in served] == [200, 200, 200]
    r, frames = stream_frames(gw.base_url, key, "streamed")
    assert r.status_code == 200 and frames[-1] == "data: [DONE]"
    ids = {r.headers["x-request-id"] for r in [*served, r]}

    go(page, "Overview")
    expect(page.locator("#tile-requests-hour .value")).not_to_have_text("0")
    assert int(page.locator("#overview-chart").get_attribute("data-total") or 0) >= 4
    shot(page, "overview")

    go(page, "Usage")
    page.locator("#page-usage").get_by_label("Key", exact=True).select_option(
        label=f"browser-key ({row.get_attribute('data-key-id')})"
    )
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#chart-requests")).to_have_attribute("data-total", "4")
    expect(page.locator("#usage-table tbody tr")).to_have_count(1)
    shot(page, "usage")

    go(page, "Requests")
    page.locator("#page-requests").get_by_label("Key", exact=True).select_option(
        label=f"browser-key ({row.get_attribute('data-key-id')})"
    )
    page.get_by_role("button", name="Refresh").click()
    rows = page.locator("#requests-table tbody tr")
    expect(rows).to_have_count(4)
    shown = {rows.nth(i).get_attribute("data-request-id") for i in range(4)}
    assert shown == ids
    expect(page.locator("#requests-source")).to_have_text("this instance (in memory)")
    shot(page, "requests")

    go(page, "Keys")
    row.get_by_role("button", name="Revoke browser-key").click()
    expect(page.get_by_role("dialog")).to_contain_text("browser-key")
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(row.locator(".badge")).to_have_text("revoked")
    shot(page, "keys-revoked")
    refused = post_chat(gw.base_url, key, "after revoke")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "key_revoked"


def test_edit_limits_changes_what_the_key_is_allowed(gw: Env, page: Page) -> None:
    signed_in(page, gw)
    key = create_key(page, "edit-me")
    row = page.locator("#keys-table tr", has_text="edit-me")
    row.get_by_role("button", name="Edit limits of edit-me").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Requests / minute").fill("1")
    dialog.get_by_role("button", name="Save").click()
    expect(row.locator(".limits")).to_have_text("1 req/min")
    assert post_chat(gw.base_url, key, "first").status_code == 200
    second = post_chat(gw.base_url, key, "second")
    assert second.status_code == 429


def test_grok_com_card_turns_red_after_a_refusal(gw: Env, page: Page) -> None:
    key = key_for(gw.settings)
    assert post_chat(gw.base_url, key, "hello", model=WEB_MODEL).status_code == 200
    signed_in(page, gw)
    card = page.locator("#web-card")
    expect(card).to_have_class("card state-ok")
    expect(card).to_contain_text("Working")
    refused = post_chat(gw.base_url, key, "x [sim fault=antibot]", model=WEB_MODEL)
    assert refused.json()["error"]["code"] == "web_session_refused"
    page.reload()
    expect(card).to_have_class("card state-refused")
    expect(card).to_contain_text("Refused")
    expect(card).to_contain_text("web_session_refused")
    expect(card).to_contain_text("copy fresh cookies")
    background = card.evaluate("e => getComputedStyle(e).backgroundColor")
    red, green, blue = (int(v) for v in background[background.index("(") + 1 : -1].split(",")[:3])
    assert red > green and red > blue, background
    shot(page, "overview-grok-refused")
    # a usage limit says when it resets
    limited = post_chat(gw.base_url, key, "x [sim fault=usage_limit]", model=WEB_MODEL)
    assert limited.status_code == 429
    page.reload()
    expect(card).to_have_class("card state-limited")
    expect(card).to_contain_text("Resets at")


def test_the_requests_page_says_when_it_shows_the_stored_requests(
    env: Env, page: Page, tmp_path: Path
) -> None:
    settings = gateway_settings(tmp_path, env.sim, request_log_retention="1d")
    with ServedApp(settings) as served:
        stored = Env(app=served, sim=env.sim, settings=settings)
        answered = post_chat(stored.base_url, key_for(settings), "kept")
        signed_in(page, stored)
        go(page, "Requests")
        expect(page.locator("#requests-source")).to_have_text("every instance (stored)")
        rows = page.locator("#requests-table tbody tr")
        expect(rows).to_have_count(1)
        assert rows.first.get_attribute("data-request-id") == answered.headers["x-request-id"]
        shot(page, "requests-stored")


def test_pages_fit_a_phone_screen(gw: Env, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        signed_in(page, gw)
        for name in ("Overview", "Keys", "Usage", "Requests"):
            go(page, name)
            overflow: Any = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} is wider than the phone by {overflow}px"
            shot(page, f"phone-{name.lower()}")
    finally:
        context.close()


def test_dashboard_files_are_served_with_a_strict_policy(gw: Env) -> None:
    page = httpx.get(gw.base_url + "/dashboard")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script" in page.text and "http" not in page.text.split("<body>")[0].replace("http-equiv", "")
    assert (
        httpx.get(gw.base_url + "/dashboard/dashboard.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert httpx.get(gw.base_url + "/dashboard/../config.py").status_code == 404
    assert httpx.get(gw.base_url + "/dashboard/nothing.js").status_code == 404


def test_keyboard_only_and_every_control_labelled(gw: Env, page: Page) -> None:
    page.goto(gw.base_url + "/dashboard")
    expect(page.get_by_label("Admin key")).to_be_focused()  # the sign-in field takes the focus
    page.keyboard.type(ADMIN_KEY)
    page.keyboard.press("Enter")
    expect(page.locator("body")).to_have_attribute("data-loaded", "overview")
    page.get_by_role("link", name="Keys").focus()
    page.keyboard.press("Enter")
    expect(page.locator("body")).to_have_attribute("data-loaded", "keys")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select')]
            .filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label'))
            .map((e) => e.id || e.name)"""
    )
    assert unlabelled == []
    assert page.evaluate("document.documentElement.lang") == "en"
