"""The admin API the dashboard uses: keys created once / edited / revoked, usage series and CSV,
recent requests, the overview; and the pieces behind them (timeline, grok.com status, ring)."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import httpx
import pytest

from grok_api.recent import RecentRequests, RequestFilter, RequestRecord, status_range
from grok_api.timeline import BOUNDS, Timeline, quantile
from grok_api.websession import WebSessionStatus

from .helpers import ADMIN_KEY, Env, post_chat, stream_frames

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def admin(env: Env, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, env.base_url + path, headers=ADMIN, **kw)


def test_every_console_route_needs_the_admin_key(env: Env, key: str) -> None:
    for method, path in [
        ("GET", "/admin/overview"),
        ("GET", "/admin/requests"),
        ("GET", "/admin/usage/series"),
        ("GET", "/admin/usage.csv"),
        ("GET", "/admin/web-session"),
        ("POST", "/admin/keys"),
        ("PATCH", "/admin/keys/key_x"),
    ]:
        for headers in ({}, {"Authorization": f"Bearer {key}"}):
            r = httpx.request(method, env.base_url + path, headers=headers, json={"name": "x"})
            assert r.status_code == 401, (method, path)
            assert r.json()["error"]["code"] == "invalid_api_key"


def test_a_key_created_through_the_api_is_shown_once_and_works(env: Env) -> None:
    made = admin(
        env,
        "POST",
        "/admin/keys",
        json={
            "name": "api-made",
            "expires_in": "30d",
            "models": ["grok-4.20-non-reasoning"],
            "limits": {"rpm": 100, "budget_day": 5000},
        },
    )
    assert made.status_code == 200
    body = made.json()
    key = body["key"]
    assert key.startswith("gk-") and body["limits"]["rpm"] == 100 and body["limits"]["budget_day"] == 5000
    assert body["models"] == ["grok-4.20-non-reasoning"] and body["expires_at"] > time.time() + 29 * 86400
    listed = admin(env, "GET", "/admin/keys")
    assert key not in listed.text and body["id"] in listed.text
    assert post_chat(env.base_url, key).status_code == 200
    assert post_chat(env.base_url, key, model="grok-4.3").status_code == 403
    mine = next(k for k in listed.json()["data"] if k["id"] == body["id"])
    assert mine["usage_month"] == {"requests": 0, "tokens": 0, "errors": 0}
    again = next(k for k in admin(env, "GET", "/admin/keys").json()["data"] if k["id"] == body["id"])
    assert (
        again["usage_month"]["requests"] == 1 and again["usage_month"]["tokens"] > 0
    )  # the 403 was never admitted


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "limits": {"rpm": 0}}, "limits.rpm"),
        ({"name": "x", "limits": {"tpm": "lots"}}, "limits.tpm"),
        ({"name": "x", "expires_in": "soon"}, "expires_in"),
        ({}, "name"),
    ],
)
def test_bad_key_bodies_are_clear_400s(env: Env, body: dict[str, Any], param: str) -> None:
    r = admin(env, "POST", "/admin/keys", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param


def test_editing_limits_applies_at_once_and_revoking_refuses(env: Env) -> None:
    made = admin(env, "POST", "/admin/keys", json={"name": "edit-api"}).json()
    key, key_id = made["key"], made["id"]
    edited = admin(env, "PATCH", f"/admin/keys/{key_id}", json={"limits": {"rpm": 1}, "name": "edited"})
    assert (
        edited.status_code == 200
        and edited.json()["limits"]["rpm"] == 1
        and edited.json()["name"] == "edited"
    )
    assert post_chat(env.base_url, key).status_code == 200
    limited = post_chat(env.base_url, key)
    assert limited.status_code == 429 and "retry-after" in limited.headers
    cleared = admin(env, "PATCH", f"/admin/keys/{key_id}", json={"limits": {}})
    assert cleared.json()["limits"]["rpm"] is None
    assert post_chat(env.base_url, key).status_code == 200
    assert admin(env, "POST", f"/admin/keys/{key_id}/revoke").json()["status"] == "revoked"
    assert post_chat(env.base_url, key).status_code == 401
    assert admin(env, "PATCH", "/admin/keys/key_nothing", json={"name": "x"}).status_code == 404


def test_usage_series_and_csv_count_what_was_served(env: Env) -> None:
    made = admin(env, "POST", "/admin/keys", json={"name": "series"}).json()
    key = made["key"]
    for i in range(3):
        assert post_chat(env.base_url, key, f"q{i}").status_code == 200
    assert stream_frames(env.base_url, key, "s")[0].status_code == 200
    assert post_chat(env.base_url, key, "x [sim fault=500]").status_code == 502
    for bucket in ("hour", "day"):
        s = admin(
            env, "GET", "/admin/usage/series", params={"key_id": made["id"], "bucket": bucket, "since": "2d"}
        ).json()
        assert sum(s["totals"]["requests"]) == 5 and sum(s["totals"]["errors"]) == 1
        assert len(s["buckets"]) == len(s["totals"]["requests"]) and s["buckets"] == sorted(s["buckets"])
        assert [g["name"] for g in s["series"]] == [made["id"]]
        assert sum(s["totals"]["tokens"]) == sum(s["series"][0]["tokens"]) > 0
    by_model = admin(env, "GET", "/admin/usage/series", params={"key_id": made["id"], "by": "model"}).json()
    assert [g["name"] for g in by_model["series"]] == ["grok-4.20-non-reasoning"]
    r = admin(env, "GET", "/admin/usage.csv", params={"key_id": made["id"], "bucket": "day"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert (
        len(rows) == 1 and rows[0]["key_id"] == made["id"] and rows[0]["model"] == "grok-4.20-non-reasoning"
    )
    assert rows[0]["requests"] == "5" and rows[0]["errors"] == "1"
    assert int(rows[0]["total_tokens"]) == int(rows[0]["prompt_tokens"]) + int(rows[0]["completion_tokens"])
    assert admin(env, "GET", "/admin/usage/series", params={"bucket": "week"}).status_code == 400


def test_a_model_id_cannot_smuggle_a_spreadsheet_formula_into_the_csv(env: Env) -> None:
    made = admin(env, "POST", "/admin/keys", json={"name": "csv"}).json()
    post_chat(env.base_url, made["key"], model="=HYPERLINK(1)")
    r = admin(env, "GET", "/admin/usage.csv", params={"key_id": made["id"]})
    models = [row["model"] for row in csv.DictReader(io.StringIO(r.text))]
    assert models and all(not m.startswith("=") for m in models)


def test_recent_requests_filter_by_key_status_and_id(env: Env) -> None:
    made = admin(env, "POST", "/admin/keys", json={"name": "recent"}).json()
    ok = post_chat(env.base_url, made["key"], "a")
    bad = post_chat(env.base_url, made["key"], "x [sim fault=500]")
    rows = admin(env, "GET", "/admin/requests", params={"key_id": made["id"]}).json()["data"]
    assert [r["request_id"] for r in rows] == [bad.headers["x-request-id"], ok.headers["x-request-id"]]
    assert rows[0]["status"] == 502 and rows[0]["key_name"] == "recent"
    only_5xx = admin(env, "GET", "/admin/requests", params={"key_id": made["id"], "status": "5xx"}).json()[
        "data"
    ]
    assert [r["status"] for r in only_5xx] == [502]
    one = admin(env, "GET", "/admin/requests", params={"request_id": ok.headers["x-request-id"]}).json()[
        "data"
    ]
    assert len(one) == 1 and one[0]["status"] == 200 and one[0]["model"] == "grok-4.20-non-reasoning"
    assert admin(env, "GET", "/admin/requests", params={"limit": 0}).status_code == 400


def test_recent_requests_come_from_memory_by_default_and_filter_by_time(env: Env) -> None:
    made = admin(env, "POST", "/admin/keys", json={"name": "recent-time"}).json()
    first = post_chat(env.base_url, made["key"], "a").headers["x-request-id"]
    second = post_chat(env.base_url, made["key"], "b").headers["x-request-id"]
    page = admin(env, "GET", "/admin/requests", params={"key_id": made["id"]}).json()
    assert page["source"] == "memory" and page["kept"] >= 2 and "retention" not in page
    newest, oldest = page["data"]
    assert [newest["request_id"], oldest["request_id"]] == [second, first]

    def ids(**params: str) -> list[str]:
        got = admin(env, "GET", "/admin/requests", params={"key_id": made["id"], **params})
        return [r["request_id"] for r in got.json()["data"]]

    assert ids(before=newest["time"]) == [first]
    assert ids(since=newest["time"]) == [second]
    assert ids(since="1h") == [second, first] and ids(before="1h") == []
    bad = admin(env, "GET", "/admin/requests", params={"status": "2x"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "status"


def test_overview_shows_the_last_hour_and_the_targets(env: Env, key: str) -> None:
    before = admin(env, "GET", "/admin/overview").json()
    assert post_chat(env.base_url, key).status_code == 200
    after = admin(env, "GET", "/admin/overview").json()
    assert after["last_hour"]["requests"] == before["last_hour"]["requests"] + 1
    assert len(after["last_hour"]["points"]) == 60 and after["last_hour"]["latency_p50"] > 0
    assert after["upstreams"][0]["upstream"] == "xai" and after["upstreams"][0]["state"] == "closed"
    assert after["in_flight"] == 0
    assert after["web_session"]["configured"] is False


def test_the_console_routes_are_in_the_openapi_schema(env: Env) -> None:
    schema = httpx.get(env.base_url + "/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/admin/overview",
        "/admin/keys",
        "/admin/keys/{key_id}",
        "/admin/usage/series",
        "/admin/usage.csv",
        "/admin/requests",
    ):
        assert path in paths, path
    assert "/dashboard" not in paths
    params = {p["name"] for p in schema["paths"]["/admin/requests"]["get"]["parameters"]}
    assert params == {"key_id", "model", "status", "request_id", "since", "before", "limit"}
    page = schema["components"]["schemas"]["RequestsPage"]["properties"]
    assert page["source"]["enum"] == ["store", "memory"]


def test_timeline_quantiles_come_from_bucket_counts() -> None:
    now = [1_000_000.0]
    t = Timeline(clock=lambda: now[0])
    for _ in range(98):
        t.add(0.010, 0.005, 10, False)
    t.add(2.0, None, 0, True)
    t.add(2.0, None, 0, True)
    s = t.summary()
    assert s["requests"] == 100 and s["errors"] == 2 and s["tokens"] == 980
    assert 0.010 <= s["latency_p50"] < 0.010 * 1.5
    assert 2.0 <= s["latency_p99"] < 3.0
    assert s["ttft_p99"] is not None and s["ttft_p99"] < 0.0075
    now[0] += 3600  # an hour later, it has all aged out
    assert Timeline.summary(t)["requests"] == 0
    assert quantile([0] * (len(BOUNDS) + 1), 0.5) is None


def test_web_session_status_follows_the_last_word() -> None:
    now = [1000.0]
    s = WebSessionStatus(clock=lambda: now[0])
    assert s.state() == "unknown"
    s.record_ok()
    assert s.state() == "ok"
    now[0] += 1
    s.record_refusal("web_session_expired", "signed out")
    snap = s.snapshot()
    assert snap["state"] == "refused" and "sign in again" in snap["advice"]
    now[0] += 1
    s.record_ok()
    assert s.state() == "ok" and s.snapshot()["last_refusal"]["code"] == "web_session_expired"
    now[0] += 1
    s.record_refusal("web_usage_limit", "limit", retry_after=60)
    assert s.state() == "limited" and s.snapshot()["last_refusal"]["reset_at"] == now[0] + 60
    now[0] += 61
    assert s.state() == "ok"


def test_the_recent_ring_is_bounded_and_newest_first() -> None:
    ring = RecentRequests(3)
    for i in range(5):
        ring.add(
            RequestRecord(f"r{i}", "POST", "/v1/chat/completions", "chat", 10.0 + i, 0.0, status=200 + i)
        )
    assert len(ring) == 3
    assert [r["request_id"] for r in ring.query()] == ["r4", "r3", "r2"]
    assert [r["request_id"] for r in ring.query(RequestFilter(status=status_range("203")))] == ["r3"]
    assert [r["request_id"] for r in ring.query(RequestFilter(status=status_range("2xx")), limit=2)] == [
        "r4",
        "r3",
    ]
    assert [r["request_id"] for r in ring.query(RequestFilter(since=13.0))] == ["r4", "r3"]
    assert [r["request_id"] for r in ring.query(RequestFilter(before=13.0))] == ["r2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("429", (429, 429)), ("4xx", (400, 499)), (" 5XX ", (500, 599)), ("200", (200, 200))],
)
def test_a_status_filter_is_a_code_or_a_class(text: str, expected: tuple[int, int]) -> None:
    assert status_range(text) == expected


@pytest.mark.parametrize("text", ["", "4x", "6xx", "x4x", "0", "42", "4290", "abc", "099"])
def test_a_status_filter_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="status"):
        status_range(text)
