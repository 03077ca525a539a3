"""Images in a request → grok.com attachments, uploaded with the user's own session.

The images of the message being sent (``image_url`` parts of the last user message, as
``data:`` URLs) are uploaded one by one to ``POST /http/upload-file-v2/direct`` (multipart,
one ``file`` part) and the turn references them by the ids grok.com returns
(``fileMetadata.fileMetadataId``, else ``fileMetadata.fileId`` or ``uploadId``).

What cannot be uploaded is refused before anything is sent, with a 400 naming the part: remote
URLs (the gateway does not fetch URLs on a client's behalf: send the bytes), types other than
PNG/JPEG/WebP/GIF, undecodable data, images over ``GROK_API_WEB_UPLOAD_MAX_BYTES``, more than
``MAX_IMAGES`` in one message, and non-text parts of other kinds. Images earlier in the history
are not re-sent (grok.com has them when the conversation continues).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import InvalidRequest, UpstreamError
from .web_answer import cloudflare_error, error_from
from .web_transport import Transport

UPLOAD_PATH = "/http/upload-file-v2/direct"
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
MAX_IMAGES = 10


@dataclass(slots=True, frozen=True)
class Image:
    data: bytes
    mime: str

    @property
    def filename(self) -> str:
        return f"image.{IMAGE_TYPES[self.mime]}"


def images_in(messages: list[dict[str, Any]], max_bytes: int) -> list[Image]:
    """The images of the last user message, checked; other messages' images are not re-sent."""
    index = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), None)
    if index is None or not isinstance(messages[index].get("content"), list):
        return []
    images: list[Image] = []
    for j, part in enumerate(messages[index]["content"]):
        if not isinstance(part, dict) or part.get("type") == "text":
            continue
        param = f"messages[{index}].content[{j}]"
        if part.get("type") != "image_url":
            raise InvalidRequest(
                f"The grok.com upstream takes text and images; '{part.get('type')}' parts are not supported.",
                param=param,
            )
        images.append(_decode(part.get("image_url"), max_bytes, param))
    if len(images) > MAX_IMAGES:
        raise InvalidRequest(
            f"At most {MAX_IMAGES} images a message for grok.com.", param=f"messages[{index}]"
        )
    return images


def _decode(image_url: Any, max_bytes: int, param: str) -> Image:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url.startswith("data:"):
        raise InvalidRequest(
            "grok.com images must be sent inline as data: URLs (data:image/png;base64,…); "
            "the gateway does not fetch remote URLs.",
            param=param,
        )
    head, sep, payload = url[5:].partition(",")
    mime = head.split(";")[0].strip().lower()
    if not sep or ";base64" not in head or mime not in IMAGE_TYPES:
        raise InvalidRequest(
            f"Unsupported image: send base64 PNG, JPEG, WebP or GIF (got '{mime or 'no type'}').", param=param
        )
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise InvalidRequest(
            f"The image is larger than {max_bytes} bytes (GROK_API_WEB_UPLOAD_MAX_BYTES).", param=param
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("The image's base64 data cannot be decoded.", param=param) from None
    if not data or len(data) > max_bytes:
        raise InvalidRequest(f"The image is empty or larger than {max_bytes} bytes.", param=param)
    return Image(data, mime)


def multipart(image: Image) -> tuple[bytes, str]:
    boundary = "----grokapi" + secrets.token_hex(12)
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{image.filename}"\r\n'
        f"Content-Type: {image.mime}\r\n\r\n"
    ).encode()
    return head + image.data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def upload(transport: Transport, base_url: str, headers: Mapping[str, str], image: Image) -> str:
    body, ctype = multipart(image)
    sent = {k: v for k, v in headers.items() if k.lower() != "content-type"} | {"Content-Type": ctype}
    resp = await transport.post(base_url + UPLOAD_PATH, body, sent)
    try:
        raw = await resp.read(64 * 1024)
        status, rtype = resp.status, resp.headers.get("Content-Type", "")
    finally:
        await resp.close()
    if "html" in rtype:
        raise cloudflare_error(status)
    data = _object(raw)
    if status >= 400:
        err = data.get("error")
        err = err if isinstance(err, dict) else {"message": f"HTTP {status}"}
        raise error_from(status, {**err, "message": f"the image upload was refused: {err.get('message')}"})
    meta = data.get("fileMetadata")
    meta = meta if isinstance(meta, dict) else {}
    for value in (meta.get("fileMetadataId"), meta.get("fileId"), data.get("uploadId")):
        if isinstance(value, str) and value:
            return value
    raise UpstreamError("grok.com accepted the image upload but returned no file id")


def _object(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
