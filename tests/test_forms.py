"""``forms.parse_form`` directly: what RFC 7578 / 2046 allow is read, what they do not is a 400
(``invalid_multipart``), and its bounds hold."""

from __future__ import annotations

import httpx
import pytest

from grok_api.errors import InvalidRequest
from grok_api.forms import MAX_HEAD_BYTES, MAX_PARTS, Form, Part, is_form, parse_form

CTYPE = "multipart/form-data; boundary=b0undary"


def body(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    return preamble + b"".join(b"--b0undary\r\n" + p + b"\r\n" for p in parts) + b"--b0undary--" + epilogue


def field(name: str, value: bytes, extra: bytes = b"") -> bytes:
    return b'Content-Disposition: form-data; name="' + name.encode() + b'"' + extra + b"\r\n\r\n" + value


def refused(raw: bytes, ctype: str = CTYPE) -> str:
    with pytest.raises(InvalidRequest) as info:
        parse_form(raw, ctype)
    assert info.value.code == "invalid_multipart" and info.value.status == 400
    return info.value.message


def test_what_the_openai_sdk_sends_is_read_back_exactly() -> None:
    data = b"\x89PNG\r\n\x1a\n\r\n--not-the-boundary\r\n" + bytes(range(256))
    request = httpx.Request(
        "POST",
        "http://x",
        data={"prompt": 'a "quoted" prompt, é', "n": "2"},
        files=[("image[]", ("a b.png", data, "image/png")), ("image[]", ("c.bin", b"", "application/x"))],
    )
    form = parse_form(request.read(), request.headers["content-type"])
    assert form == Form(
        [
            Part("prompt", 'a "quoted" prompt, é'.encode()),
            Part("n", b"2"),
            Part("image[]", data, "a b.png", "image/png"),
            Part("image[]", b"", "c.bin", "application/x"),
        ]
    )
    assert form.parts[0].text() == 'a "quoted" prompt, é'


def test_preamble_epilogue_padding_and_a_quoted_boundary_are_allowed() -> None:
    raw = body(
        field("a", b"1"), field("b", b"x--b0undary"), preamble=b"ignored\r\n", epilogue=b"\r\nignored too"
    )
    raw = raw.replace(b"--b0undary\r\nContent", b"--b0undary \t\r\nContent", 1)  # transport padding
    form = parse_form(raw, 'multipart/form-data; boundary="b0undary"')
    assert [(p.name, p.data) for p in form.parts] == [("a", b"1"), ("b", b"x--b0undary")]


def test_an_empty_form_has_no_parts() -> None:
    assert parse_form(b"--b0undary--\r\n", CTYPE) == Form([])


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (body(field("a", b"1"))[:-14], "before its closing boundary"),
        (body(field("a", b"1")).replace(b"--b0undary--", b"--b0undary"), "after a boundary"),
        (body(field("a", b"1")).replace(b"--b0undary\r\n", b"--b0undaryX\r\n", 1), "stray bytes"),
        (b"no boundary anywhere", "does not contain the boundary"),
        (body(b"\r\nvalue without headers"), "no headers"),
        (body(b'Content-Disposition: form-data; name="a"\r\nvalue'), "no blank line"),
        (body(b"Content-Type: text/plain\r\n\r\nx"), "Content-Disposition"),
        (body(field("a", b"1").replace(b"form-data", b"attachment")), "Content-Disposition"),
        (body(field("", b"1")), "Content-Disposition"),
        (body(b"X-Folded: a\r\n b\r\n" + field("a", b"1")), "not 'Name: value'"),
        (body(b"X-Bad: \xff\r\n" + field("a", b"1")), "not UTF-8"),
    ],
)
def test_malformed_bodies_are_refused(raw: bytes, says: str) -> None:
    assert says in refused(raw)


@pytest.mark.parametrize(
    "ctype",
    ["multipart/form-data", 'multipart/form-data; boundary=""', "multipart/form-data; boundary=" + "x" * 71],
)
def test_a_content_type_without_a_usable_boundary_is_refused(ctype: str) -> None:
    assert "boundary" in refused(body(field("a", b"1")), ctype)


def test_bounds() -> None:
    assert len(parse_form(body(*[field("a", b"")] * MAX_PARTS), CTYPE).parts) == MAX_PARTS
    assert f"more than {MAX_PARTS} parts" in refused(body(*[field("a", b"")] * (MAX_PARTS + 1)))
    long_header = b"X-Long: " + b"a" * MAX_HEAD_BYTES + b"\r\n"
    assert "no blank line" in refused(body(long_header + field("a", b"1")))


def test_a_text_field_that_is_not_utf8_is_a_400_naming_it() -> None:
    with pytest.raises(InvalidRequest) as info:
        Part("prompt", b"\xff").text()
    assert info.value.param == "prompt"


@pytest.mark.parametrize(
    ("ctype", "form"),
    [("multipart/form-data; boundary=x", True), ("Multipart/Form-Data", True), ("multipart/mixed", False)],
)
def test_is_form(ctype: str, form: bool) -> None:
    assert is_form(ctype) is form
