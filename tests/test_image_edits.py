"""``POST /v1/images/edits``: the ``openai`` SDK's ``images.edit`` (multipart uploads) and xAI's
JSON, through a gateway on the simulator; what xAI is sent; bad input; usage; grok.com refused."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from grok_api.simulator.images import png

from .helpers import Env, assert_openai_error, usage_rows, web_settings
from .test_images import decode_png

MODEL = "grok-imagine-image"
EDITS = "/v1/images/edits"
PNG = png("a source image")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64)) + b"\xff\xd9"
WEBP = b"RIFF" + (30).to_bytes(4, "little") + b"WEBPVP8 " + bytes(22)


@pytest.fixture(scope="module")
def gw(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    settings = web_settings(tmp_path_factory.mktemp("edits"), env.sim, web_assets_url=env.sim.base_url)
    with Env.served(settings, env.sim) as e:
        yield e


@pytest.fixture
def key(gw: Env) -> str:
    return gw.create_key("edits")[1]


@pytest.fixture
def client(gw: Env, key: str) -> openai.OpenAI:
    return gw.client(key)


def uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def sent(gw: Env, start: int) -> dict[str, Any]:
    """The last body the simulator's xAI side got at /v1/images/edits since ``start``."""
    bodies = [b for u, p, b in gw.sim.since(start) if u == "xai" and p == EDITS]
    assert bodies, "xAI was not asked"
    return bodies[-1]


def post(gw: Env, key: str, **kw: Any) -> httpx.Response:
    return httpx.post(gw.base_url + EDITS, headers={"Authorization": f"Bearer {key}"}, **kw)


def test_sdk_edit_sends_the_upload_as_a_data_uri(gw: Env, client: openai.OpenAI, tmp_path: Path) -> None:
    source = tmp_path / "source.png"
    source.write_bytes(PNG)
    start = gw.sim.recorded
    with source.open("rb") as f:
        r = client.images.edit(model=MODEL, image=f, prompt="make it night", response_format="b64_json")
    assert r.data is not None and len(r.data) == 1
    assert r.data[0].b64_json is not None and r.data[0].url is None
    assert decode_png(base64.b64decode(r.data[0].b64_json))[:2] == (32, 32)
    assert sent(gw, start) == {
        "model": MODEL,
        "prompt": "make it night",
        "n": 1,
        "response_format": "b64_json",
        "image": {"url": uri(PNG, "image/png"), "type": "image_url"},
    }


def test_sdk_edit_of_several_images_as_url_answers(gw: Env, client: openai.OpenAI) -> None:
    start = gw.sim.recorded
    r = client.images.edit(
        model=MODEL,
        image=[("a.png", PNG, "image/png"), ("b.bin", JPEG, "application/octet-stream"), WEBP],
        prompt="all three together",
        n=2,
        size="1536x1024",
        extra_body={"resolution": "2k"},
    )
    assert r.data is not None and len(r.data) == 2
    for image in r.data:
        assert image.url is not None
        decode_png(httpx.get(image.url).content)
    body = sent(gw, start)
    assert body["images"] == [
        {"url": uri(PNG, "image/png"), "type": "image_url"},
        {"url": uri(JPEG, "image/jpeg"), "type": "image_url"},  # what the bytes are, not what was said
        {"url": uri(WEBP, "image/webp"), "type": "image_url"},
    ]
    assert "image" not in body and "size" not in body
    assert (body["n"], body["aspect_ratio"], body["resolution"]) == (2, "3:2", "2k")


def test_json_as_xai_takes_it_passes_through(gw: Env, key: str) -> None:
    start = gw.sim.recorded
    image = {"url": "https://example.com/cat.png", "type": "image_url"}
    body = {"model": MODEL, "prompt": "a hat", "image": image, "aspect_ratio": "16:9", "user": "u1"}
    r = post(gw, key, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["url"].endswith(".png")
    assert sent(gw, start) == {**body, "n": 1, "response_format": "url"}

    images = [uri(JPEG, "image/jpeg"), {"image_url": "https://example.com/dog.webp"}]
    r = post(gw, key, json={"model": MODEL, "prompt": "both", "images": images, "n": 3})
    assert r.status_code == 200 and len(r.json()["data"]) == 3
    assert sent(gw, start)["images"] == [
        {"url": uri(JPEG, "image/jpeg"), "type": "image_url"},
        {"url": "https://example.com/dog.webp", "type": "image_url"},
    ]


def form(**fields: str) -> dict[str, tuple[None, str]]:
    return {name: (None, value) for name, value in fields.items()}


BASE = form(model=MODEL, prompt="x")
TEXT = ("notes.txt", b"just some text", "image/png")


@pytest.mark.parametrize(
    ("files", "param", "code"),
    [
        (BASE, "image", "missing_field"),
        ({**form(model=MODEL), "image": ("a.png", PNG, "image/png")}, "prompt", "missing_field"),
        ({**BASE, "image": TEXT}, "image", "invalid_image_format"),
        ([*BASE.items(), *[("image[]", ("a.png", PNG, "image/png"))] * 4], "images", "too_many_images"),
        ({**BASE, "image": ("a.png", PNG), "mask": ("m.png", PNG)}, "mask", "invalid_request"),
        ({**BASE, "image": ("a.png", PNG), "prompt": ("p.txt", b"x")}, "prompt", "invalid_request"),
        ([*BASE.items(), ("prompt", (None, "y")), ("image", ("a.png", PNG))], "prompt", "invalid_request"),
        ({**BASE, "image": ("a.png", PNG), "n": (None, "eleven")}, "n", "invalid_request"),
        ({**BASE, "image": ("a.png", PNG), "stream": (None, "true")}, "stream", "invalid_request"),
        ({**BASE, "image": (None, "ftp://example.com/a.png")}, "images", "invalid_request"),
        (
            {**form(model=MODEL), "prompt": (None, b"\xff\xfe"), "image": ("a.png", PNG)},
            "prompt",
            "invalid_request",
        ),
    ],
    ids=[
        "no-image",
        "no-prompt",
        "text-file",
        "four-images",
        "mask",
        "file-as-prompt",
        "prompt-twice",
        "bad-n",
        "stream",
        "ftp-url",
        "prompt-not-utf8",
    ],
)
def test_bad_multipart_edits_are_400(gw: Env, key: str, files: Any, param: str, code: str) -> None:
    start = gw.sim.recorded
    err = assert_openai_error(post(gw, key, files=files), 400)
    assert (err["param"], err["code"], err["type"]) == (param, code, "invalid_request_error")
    assert not [p for _, p, _ in gw.sim.since(start) if p == EDITS]  # nothing was sent


def multipart(files: Any) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x", files=files)
    return request.read(), request.headers["content-type"]


@pytest.mark.parametrize(
    "cut",
    [
        lambda raw: raw[:-10],  # no closing boundary
        lambda raw: raw[: raw.index(b"\r\n\r\n") + 2],  # ends inside the first part's headers
        lambda raw: raw[: raw.index(b"\r\n--", 10) + 4],  # ends with half a boundary
        lambda raw: b"a preamble\r\n" + raw.replace(b"form-data", b"attachment", 1),
        lambda raw: raw.replace(b"Content-Disposition: ", b"Content-Disposition ", 1),
        lambda raw: b"not a form at all",
    ],
    ids=["no-close", "in-headers", "half-boundary", "attachment", "bad-header", "no-boundary"],
)
def test_malformed_multipart_is_400(gw: Env, key: str, cut: Any) -> None:
    raw, ctype = multipart({**BASE, "image": ("a.png", PNG, "image/png")})
    err = assert_openai_error(_post_raw(gw, key, cut(raw), ctype), 400)
    assert err["code"] == "invalid_multipart" and "malformed" in str(err["message"])


def _post_raw(gw: Env, key: str, raw: bytes, ctype: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": ctype}
    return httpx.post(gw.base_url + EDITS, headers=headers, content=raw)


@pytest.mark.parametrize(
    ("ctype", "status"),
    [("text/plain", 415), ("multipart/form-data", 400), ('multipart/form-data; boundary=""', 400)],
)
def test_content_types_other_than_json_or_a_form_are_refused(
    gw: Env, key: str, ctype: str, status: int
) -> None:
    err = assert_openai_error(_post_raw(gw, key, b"--x\r\n\r\n--x--\r\n", ctype), status)
    assert "multipart/form-data" in str(err["message"])


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (
            {"image": "https://example.com/a.png", "images": ["https://example.com/b.png"]},
            "images",
            "invalid_request",
        ),
        ({"images": []}, "images", "invalid_request"),
        ({"images": [uri(PNG, "image/png")] * 4}, "images", "too_many_images"),
        ({"image": {"file_id": "file-123"}}, "image", "invalid_request"),
        ({"image": {"url": "https://example.com/a.png", "type": "input_image"}}, "image", "invalid_request"),
        ({"image": uri(b"plain text, not an image", "image/png")}, "image", "invalid_image_format"),
        ({"image": uri(PNG, "text/plain")}, "image", "invalid_image_format"),
        ({"image": "data:image/png," + "x" * 40}, "image", "invalid_image_format"),
        ({"image": "file:///etc/passwd"}, "image", "invalid_request"),
        ({"image": "https://example.com/" + "a" * 9000}, "image", "invalid_request"),
        ({"image": 42}, "image", "invalid_request"),
        (
            {"image": "https://example.com/a.png", "mask": {"url": "https://example.com/m.png"}},
            "mask",
            "invalid_request",
        ),
    ],
)
def test_bad_json_edits_are_400(gw: Env, key: str, body: dict[str, Any], param: str, code: str) -> None:
    err = assert_openai_error(post(gw, key, json={"model": MODEL, "prompt": "x", **body}), 400)
    assert (err["param"], err["code"]) == (param, code)


def test_the_body_limit_applies(env: Env, tmp_path: Path) -> None:
    settings = web_settings(tmp_path, env.sim, max_body_bytes=4096)
    with Env.served(settings, env.sim) as e, pytest.raises(openai.APIStatusError) as info:
        e.client(e.create_key("small")[1]).images.edit(model=MODEL, image=PNG + bytes(8192), prompt="x")
    assert info.value.status_code == 413


def test_grok_com_does_not_edit(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.images.edit(model="web/grok-imagine", image=PNG, prompt="x")
    assert info.value.body["param"] == "model"  # type: ignore[index]
    assert "grok.com" in info.value.body["message"]  # type: ignore[index]


def test_allowed_models_apply(gw: Env) -> None:
    c = gw.client(gw.create_key("chat-only", models=["grok-4.3"])[1])
    with pytest.raises(openai.PermissionDeniedError):
        c.images.edit(model=MODEL, image=PNG, prompt="x")


def test_usage_counts_the_edited_images(gw: Env) -> None:
    record, key = gw.create_key("edit-usage")
    gw.client(key).images.edit(model=MODEL, image=[PNG, PNG], prompt="merge", n=3, response_format="b64_json")
    gw.app.call(gw.app.app.state.gateway.usage.flush())
    rows = {r["model"]: r for r in usage_rows(gw.base_url, record.id)}
    assert rows[MODEL]["images"] == 3 and rows[MODEL]["requests"] == 1
    assert isinstance(tokens := rows[MODEL]["prompt_tokens"], int) and tokens > 0


def test_upstream_failure_keeps_its_status(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.images.edit(model=MODEL, image=PNG, prompt="[sim fault=503]")
    assert info.value.status_code == 503
