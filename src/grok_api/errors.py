"""The gateway's one error tree.

Every failure a client can see is a :class:`GatewayError`. Each class fixes the HTTP status
and the OpenAI ``type``/``code`` it is shown with; ``app.py`` has the one handler that turns
any of them into ``{"error": {"message", "type", "param", "code"}}``. Foreign exceptions
(aiohttp, SQLAlchemy, pydantic) are converted at the boundary where they happen.

::

    GatewayError (500 server_error)
    ├── InvalidRequest (400 invalid_request_error)
    │   └── PayloadTooLarge (413)
    ├── AuthenticationFailed (401 invalid_api_key)
    ├── PermissionDenied (403 model_not_allowed)
    ├── NotFound (404)
    │   └── ModelNotFound (404 model_not_found)
    ├── MethodNotAllowed (405)
    ├── UnsupportedMediaType (415)
    ├── RateLimited (429, Retry-After)
    │   └── QuotaExceeded (429 insufficient_quota)
    ├── Unavailable (503, e.g. the shared limiter is down and limits fail closed)
    └── UpstreamError (502 upstream_error)
        ├── UpstreamUnavailable (503)
        └── UpstreamTimeout (504)
"""

from __future__ import annotations

from typing import Any

import orjson


class GatewayError(Exception):
    """Base of every error a client sees; also the 500 for anything unexpected."""

    status: int = 500
    type: str = "server_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = headers or {}

    def body(self) -> dict[str, Any]:
        """The OpenAI-shaped error object."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def json_bytes(self) -> bytes:
        return orjson.dumps(self.body())


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "request_too_large"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "invalid_request_error"
    code = "model_not_allowed"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class UnsupportedMediaType(GatewayError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers.setdefault("Retry-After", str(max(1, int(retry_after + 0.999))))


class QuotaExceeded(RateLimited):
    type = "insufficient_quota"
    code = "insufficient_quota"


class Unavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "service_unavailable"


class UpstreamError(GatewayError):
    status = 502
    type = "upstream_error"
    code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


_BY_STATUS: dict[int, type[GatewayError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    429: RateLimited,
    502: UpstreamError,
    503: UpstreamUnavailable,
    504: UpstreamTimeout,
}


def for_status(status: int, message: str) -> GatewayError:
    """The error a bare HTTP status (from routing, e.g. 404/405) is shown as."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        return InvalidRequest(message) if 400 <= status < 500 else GatewayError(message)
    return cls(message)
