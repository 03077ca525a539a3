"""``POST /v1/images/edits``: image editing, as OpenAI's SDKs call it (``images.edit``).

xAI edits images at its own ``/v1/images/edits`` but takes only JSON there, so the openai SDKs,
which upload the images as ``multipart/form-data``, cannot call it directly. The gateway takes
both shapes and sends xAI's JSON:

- ``multipart/form-data`` as the SDKs send it: the source images as files in ``image`` (one) or
  ``image[]`` (several: the SDKs' name for a list; ``images`` too), each sent on as a ``data:`` URI. A file must
  be a PNG, JPEG or WebP, recognised by its bytes whatever type it declares. A text value in an
  image field is taken as a URL. The other fields are text: ``n`` in digits, ``stream``
  ``true``/``false``; fields xAI has no use for are left out, as for generation.
- JSON as xAI takes it: ``image`` (``{"url": …, "type": "image_url"}``) or ``images`` (a list of
  those); a bare URL string, or OpenAI's ``{"image_url": …}``, is taken too. A URL is ``http(s)``
  (xAI fetches it) or a base64 ``data:`` URI of a PNG, JPEG or WebP.

At most :data:`MAX_IMAGES` source images (xAI's limit); one goes upstream as ``image``, several
as ``images``. The other parameters are generation's (:func:`~.images.image_body`): ``model``,
``prompt``, ``n``, ``response_format``, ``aspect_ratio`` (or a ``size`` of those proportions),
``resolution``, ``quality``, ``user``. A ``mask`` is refused (xAI's editing takes none: say in the
prompt what to change), and so are xAI file ids (the gateway does not serve xAI's Files API).
Keys, allowed models, limits and usage (the ``images`` column) apply as for generation.
grok.com does not edit images through the gateway: a ``web/…`` model is a 400 from its upstream.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request, Response

from ..errors import InvalidRequest
from ..forms import Form, Part
from ..pipeline import Call, Surface
from ..store import KeyRecord
from .chat import Delegate
from .deps import Gateway
from .images import ImagesSurface, image_body, image_call
from .surface_schemas import IMAGE_EDITS, IMAGE_EDITS_FORM, json_or_form_body

router = APIRouter()

PATH = "/v1/images/edits"
MAX_IMAGES = 3
IMAGE_FIELDS = ("image", "image[]", "images", "images[]")
MAX_URL_CHARS = 8192  # an http(s) URL; data: URIs are bounded by the body size limit
_KINDS = "a PNG, JPEG or WebP image"


def sniff(data: bytes) -> str | None:
    """The media type of an image in one of the types xAI edits, from its first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def form_body(form: Form) -> dict[str, Any]:
    """The JSON body a form stands for: its uploaded images as ``data:`` URIs in ``images``."""
    body: dict[str, Any] = {}
    images: list[str] = []
    for part in form.parts:
        if part.name in IMAGE_FIELDS:
            images.append(part.text() if part.filename is None else _data_uri(part))
        elif part.name in body:
            raise InvalidRequest(f"The form field '{part.name}' is given more than once.", param=part.name)
        elif part.filename is not None and part.name != "mask":
            raise InvalidRequest(
                f"The form field '{part.name}' cannot be a file; the images to edit go in 'image' "
                "(or 'image[]').",
                param=part.name,
            )
        else:
            body[part.name] = True if part.name == "mask" else _scalar(part.name, part.text())
    if images:
        body["images"] = images
    return body


def _scalar(name: str, value: str) -> Any:
    if name == "n" and value.isascii() and value.isdigit():
        return int(value)
    if name == "stream":
        return {"true": True, "false": False}.get(value.lower(), value)
    return value


def _data_uri(part: Part) -> str:
    mime = sniff(part.data)
    if mime is None:
        raise InvalidRequest(
            f"The uploaded file '{part.filename}' is not {_KINDS}.",
            param="image",
            code="invalid_image_format",
        )
    return f"data:{mime};base64,{base64.b64encode(part.data).decode('ascii')}"


def edit_body(body: Any) -> dict[str, Any]:
    """xAI's body for an edit; 400 naming the first bad field."""
    out = image_body(body)
    if body.get("mask") is not None:
        raise InvalidRequest(
            "xAI's image editing takes no 'mask': say in the prompt what to change.", param="mask"
        )
    image, images = body.get("image"), body.get("images")
    if image is not None and images is not None:
        raise InvalidRequest("Give 'image' or 'images', not both.", param="images")
    if image is None and images is None:
        raise InvalidRequest(
            "'image' is required: the image to edit (a file upload, an http(s) URL or a data: URI).",
            param="image",
            code="missing_field",
        )
    param = "image" if images is None else "images"
    refs = images if images is not None else image if isinstance(image, list) else [image]
    if not isinstance(refs, list) or not refs:
        raise InvalidRequest(f"'{param}' must be a non-empty list of images.", param=param)
    if len(refs) > MAX_IMAGES:
        raise InvalidRequest(
            f"At most {MAX_IMAGES} source images an edit (xAI's limit); this request has {len(refs)}.",
            param=param,
            code="too_many_images",
        )
    sources = [{"url": _url(ref, param), "type": "image_url"} for ref in refs]
    if len(sources) == 1:
        out["image"] = sources[0]
    else:
        out["images"] = sources
    return out


def _url(ref: Any, param: str) -> str:
    url = ref
    if isinstance(ref, dict):
        if ref.get("file_id"):
            raise InvalidRequest(
                "File ids are not supported: the gateway does not serve xAI's Files API; send the "
                "image itself (a file upload or a data: URI) or its URL.",
                param=param,
            )
        if ref.get("type", "image_url") != "image_url":
            raise InvalidRequest(f"An image's 'type' must be 'image_url' (in '{param}').", param=param)
        url = ref.get("url", ref.get("image_url"))
        url = url.get("url") if isinstance(url, dict) else url
    if not isinstance(url, str) or not url[:8].lower().startswith(("https://", "http://", "data:")):
        raise InvalidRequest(
            f"Each image in '{param}' must be an http(s) URL, a data: URI, or "
            '{"url": …, "type": "image_url"}.',
            param=param,
        )
    if url[:5].lower() == "data:":
        _check_data_uri(url, param)
    elif len(url) > MAX_URL_CHARS or not url.isprintable():
        raise InvalidRequest(
            f"An image URL in '{param}' must be printable and at most {MAX_URL_CHARS} characters.",
            param=param,
        )
    return url


def _check_data_uri(url: str, param: str) -> None:
    """A base64 PNG, JPEG or WebP, judged by its declared type and its first bytes (the rest is
    xAI's to decode: checking all of a large image here would hold the event loop)."""
    comma = url.find(",", 5, 128)
    head = url[5:comma].lower() if comma > 0 else ""
    if head.partition(";")[0] not in ("image/png", "image/jpeg", "image/webp") or not head.endswith(
        ";base64"
    ):
        raise InvalidRequest(
            f"A data: URI in '{param}' must hold a base64 PNG, JPEG or WebP (data:image/png;base64,…).",
            param=param,
            code="invalid_image_format",
        )
    try:
        start = base64.b64decode(url[comma + 1 : comma + 17], validate=True)
    except (binascii.Error, ValueError):
        start = b""
    if sniff(start) is None:
        raise InvalidRequest(
            f"A data: URI in '{param}' is not {_KINDS}.", param=param, code="invalid_image_format"
        )


class ImageEditsSurface(ImagesSurface):
    forms = True

    @staticmethod
    def prepare(gw: Gateway, key: KeyRecord, body: Any, raw: bytes) -> Call:
        return image_call(edit_body(form_body(body) if isinstance(body, Form) else body), "image_edit")


SURFACE: Surface = ImageEditsSurface()


@router.post(
    PATH,
    openapi_extra=json_or_form_body(IMAGE_EDITS, IMAGE_EDITS_FORM),
    summary="Edit images (xAI's image models): multipart uploads as the openai SDKs send them, or JSON",
)
async def edit_images(request: Request) -> Response:
    return Delegate(request.app.state.gateway, SURFACE)
