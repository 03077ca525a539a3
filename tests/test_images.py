"""``POST /v1/images/generations`` through the ``openai`` SDK: xAI's image models and grok.com's
(``web/grok-imagine``) on the simulator; images decode; usage counts images."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from grok_api.store import Limits

from .helpers import ADMIN_KEY, WEB_AGENT, WEB_COOKIES, Env, web_settings

XAI_IMAGE = "grok-imagine-image"
WEB_IMAGE = "web/grok-imagine"


@pytest.fixture(scope="module")
def gw(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    settings = web_settings(tmp_path_factory.mktemp("images"), env.sim, web_assets_url=env.sim.base_url)
    with Env.served(settings, env.sim) as e:
        yield e


@pytest.fixture
def client(gw: Env) -> openai.OpenAI:
    return gw.client(gw.create_key("images")[1])


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and raw scanlines of a PNG, checked chunk by chunk (CRCs included)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + 3 * width)
    return width, height, raw


def test_b64_json_images_decode(client: openai.OpenAI) -> None:
    r = client.images.generate(model=XAI_IMAGE, prompt="a red fox", n=2, response_format="b64_json")
    assert r.data is not None and len(r.data) == 2
    for image in r.data:
        assert image.b64_json is not None and image.url is None
        width, height, _ = decode_png(base64.b64decode(image.b64_json))
        assert width == height == 32


@pytest.mark.parametrize("protocol", ["ws", "rest"])
def test_grok_com_b64_json_images_are_fetched_with_the_session(
    gw: Env, tmp_path: Path, protocol: str
) -> None:
    settings = web_settings(tmp_path, gw.sim, web_assets_url=gw.sim.base_url, web_protocol=protocol)
    with Env.served(settings, gw.sim) as e:
        c = e.client(e.create_key("b64")[1])
        start = gw.sim.recorded
        r = c.images.generate(model=WEB_IMAGE, prompt="a red fox", n=5, response_format="b64_json")
    assert r.data is not None and len(r.data) == 5
    for image in r.data:
        assert image.b64_json is not None
        # what the simulator's assets.grok.com serves to the session (a JPEG's markers)
        assert base64.b64decode(image.b64_json).startswith(b"\xff\xd8")
    turns = [b for u, p, b in gw.sim.since(start) if u == "web" and p != "ws:conversation.item.create"]
    if protocol == "ws":
        counts = [t["event"]["session"]["x_grok"]["image_generation_count"] for t in turns]
        assert all(t["event"]["session"]["x_grok"]["is_temporary"] for t in turns)
    else:
        counts = [t["imageGenerationCount"] for t in turns]
        assert all(t["temporary"] and t["message"] == "Generate an image: a red fox" for t in turns)
    assert counts == [4, 1]  # grok-imagine draws four a turn; turns one after another


def test_xai_url_images_can_be_fetched(gw: Env, client: openai.OpenAI) -> None:
    start = gw.sim.recorded
    r = client.images.generate(
        model=XAI_IMAGE, prompt="a blue whale", n=3, extra_body={"aspect_ratio": "16:9"}
    )
    assert r.data is not None and len(r.data) == 3
    assert r.data[0].revised_prompt and "blue whale" in r.data[0].revised_prompt
    for image in r.data:
        assert image.url is not None
        decode_png(httpx.get(image.url).content)
    body = [b for _, path, b in gw.sim.since(start) if path == "/v1/images/generations"][-1]
    assert body == {
        "model": XAI_IMAGE,
        "prompt": "a blue whale",
        "n": 3,
        "response_format": "url",
        "aspect_ratio": "16:9",
    }


def test_web_url_images_are_grok_com_assets(gw: Env, client: openai.OpenAI) -> None:
    start = gw.sim.recorded
    r = client.images.generate(model=WEB_IMAGE, prompt="a lighthouse", n=3)
    assert r.data is not None and len(r.data) == 3
    for image in r.data:
        assert image.url is not None and image.url.startswith(gw.sim.base_url + "/users/")
        assert httpx.get(image.url).status_code == 403  # grok.com's assets need the session
        ok = httpx.get(image.url, headers={"Cookie": WEB_COOKIES, "User-Agent": WEB_AGENT})
        assert ok.status_code == 200 and ok.content.startswith(b"\xff\xd8")
    items = [b for u, p, b in gw.sim.since(start) if p == "ws:conversation.item.create"]
    chunks = items[-1]["event"]["item"]["x_grok"]["input_chunks"]
    assert chunks == [{"text": {"text": "Generate an image: a lighthouse"}}]


def test_size_maps_to_an_aspect_ratio_or_is_refused(gw: Env, client: openai.OpenAI) -> None:
    start = gw.sim.recorded
    client.images.generate(model=XAI_IMAGE, prompt="wide", size="1536x1024")
    body = [b for _, path, b in gw.sim.since(start) if path == "/v1/images/generations"][-1]
    assert body["aspect_ratio"] == "3:2" and "size" not in body
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model=XAI_IMAGE, prompt="odd", size="1000x700")  # type: ignore[arg-type]
    assert info.value.body["param"] == "size" and "aspect_ratio" in info.value.body["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 11}, "n"),
        ({"response_format": "png"}, "response_format"),
        ({"style": "vivid"}, "style"),
        ({"prompt": " "}, "prompt"),
    ],
)
def test_bad_image_requests_are_400(gw: Env, extra: dict[str, object], param: str) -> None:
    _, key = gw.create_key("bad-images")
    body = {"model": XAI_IMAGE, "prompt": "x", **extra}
    r = httpx.post(
        gw.base_url + "/v1/images/generations", headers={"Authorization": f"Bearer {key}"}, json=body
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_a_chat_model_cannot_draw(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="grok-4.3", prompt="x")


def test_image_models_are_listed(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {XAI_IMAGE, WEB_IMAGE} <= ids


def test_usage_counts_images_and_rpm_applies(gw: Env) -> None:
    record, key = gw.create_key("image-usage", limits=Limits(rpm=2))
    c = gw.client(key)
    c.images.generate(model=XAI_IMAGE, prompt="one", n=3, response_format="b64_json")
    c.images.generate(model=WEB_IMAGE, prompt="two", n=1)
    with pytest.raises(openai.RateLimitError) as info:
        c.images.generate(model=XAI_IMAGE, prompt="three")
    assert info.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    gw.app.call(gw.app.app.state.gateway.usage.flush())
    rows = httpx.get(
        gw.base_url + "/admin/usage",
        params={"key_id": record.id, "since": "1d"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ).json()["data"]
    by_model = {r["model"]: r for r in rows}
    assert by_model[XAI_IMAGE]["images"] == 3 and by_model[XAI_IMAGE]["requests"] == 1
    assert by_model[WEB_IMAGE]["images"] == 1 and by_model[WEB_IMAGE]["requests"] == 1
    assert by_model[XAI_IMAGE]["prompt_tokens"] > 0


def test_upstream_image_failure_keeps_the_status(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.images.generate(model=XAI_IMAGE, prompt="[sim fault=503]")
    assert info.value.status_code == 503
