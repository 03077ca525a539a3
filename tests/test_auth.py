"""Every authentication outcome, through the SDK and both header styles."""

from __future__ import annotations

import time

import openai
import pytest

from .helpers import Env, post

BODY = {"model": "grok-4.20-non-reasoning", "messages": [{"role": "user", "content": "hi"}]}


def test_missing_key_is_401(env: Env) -> None:
    r = post(env.base_url, json=BODY)
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "invalid_api_key"
    assert "Authorization: Bearer" in err["message"]


def test_unknown_key_is_401_via_sdk(env: Env) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        env.client("gk-not-a-real-key").chat.completions.create(**BODY)  # type: ignore[arg-type]
    assert info.value.status_code == 401


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
def test_both_header_styles_work(env: Env, key: str, header: str) -> None:
    value = f"Bearer {key}" if header == "authorization" else key
    r = post(env.base_url, json=BODY, headers={header: value})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "[turn 1] You said: hi"


def test_non_bearer_scheme_is_refused(env: Env, key: str) -> None:
    assert post(env.base_url, json=BODY, headers={"Authorization": f"Basic {key}"}).status_code == 401


def test_expired_key_is_401(env: Env) -> None:
    _, key = env.create_key("expired", expires_in=-5)
    r = post(env.base_url, key, json=BODY)
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]


def test_key_expiring_while_cached_is_refused(env: Env) -> None:
    record, key = env.create_key("short", expires_in=3.0)  # expiry is stored in whole seconds
    assert post(env.base_url, key, json=BODY).status_code == 200
    assert record.expires_at is not None
    time.sleep(max(0.0, record.expires_at - time.time()) + 0.1)
    assert post(env.base_url, key, json=BODY).status_code == 401


def test_revoked_key_is_refused_within_the_cache_ttl(env: Env) -> None:
    record, key = env.create_key("to-revoke")
    client = env.client(key)
    assert client.chat.completions.create(**BODY).choices[0].message.content  # type: ignore[arg-type]
    env.revoke(record.id)
    time.sleep(env.settings.key_cache_ttl + 0.1)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(**BODY)  # type: ignore[arg-type]
    assert "revoked" in info.value.message


def test_model_not_allowed_is_403(env: Env) -> None:
    _, key = env.create_key("limited", models=["grok-4.3"])
    client = env.client(key)
    assert (
        client.chat.completions.create(model="grok-4.3", messages=[{"role": "user", "content": "ok"}])
        .choices[0]
        .message.content
        == "[turn 1] You said: ok"
    )
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(
            model="grok-4.20-non-reasoning", messages=[{"role": "user", "content": "no"}]
        )
    assert info.value.status_code == 403
    assert info.value.body["param"] == "model"  # type: ignore[index]
    # and the models list shows only what the key may use
    assert [m.id for m in client.models.list()] == ["grok-4.3"]


def test_auth_comes_before_body_validation(env: Env) -> None:
    r = post(env.base_url, content=b"{not json")
    assert r.status_code == 401


def test_last_used_is_recorded_in_a_batch(env: Env) -> None:
    record, key = env.create_key("used")
    assert post(env.base_url, key, json=BODY).status_code == 200
    gw = env.app.app.state.gateway
    env.app.call(gw.auth.flush_last_used())
    stored = env.app.call(gw.keys.get(record.id))
    assert stored.last_used_at is not None and abs(stored.last_used_at - time.time()) < 30
