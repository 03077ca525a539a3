"""Settings: read once from the environment (and ``.env``), then passed down.

There is no import-time instance: ``Settings()`` is built by the CLI or by ``create_app``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from platformdirs import user_data_dir
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .timespec import parse_duration

MIN_ADMIN_KEY_CHARS = 32


def _default_data_dir() -> Path:
    return Path(user_data_dir("grok-api", appauthor=False))


def public_url(url: str) -> str:
    """A URL as it may be shown (banner, /ready, /metrics, logs): scheme, host, port and path only."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"


def url_credential_problems(settings: Settings) -> list[str]:
    """Upstream base URLs that carry credentials or a query: refused, since they would be shown
    and sent in ways the operator did not mean (credentials go in XAI_API_KEY / the cookies)."""
    problems = []
    for env, value in (
        ("GROK_API_XAI_BASE_URL", settings.xai_base_url),
        ("GROK_API_WEB_BASE_URL", settings.web_base_url),
        ("GROK_API_WEB_ASSETS_URL", settings.web_assets_url),
    ):
        for url in value.split(","):
            try:
                parts = urlsplit(url.strip())
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError:
                problems.append(f"{env} has a URL that cannot be parsed: {public_url(url)}")
                continue
            if parts.username is not None or parts.password is not None:
                problems.append(
                    f"{env} carries credentials (user:password@) in {public_url(url)}: remove them; "
                    "upstream credentials go in XAI_API_KEY or GROK_API_WEB_COOKIES"
                )
            if parts.query or parts.fragment:
                problems.append(
                    f"{env} has a query string or fragment ({public_url(url)}?…): base URLs take none; "
                    "put tokens in XAI_API_KEY"
                )
    return problems


class Settings(BaseSettings):
    """Every setting has an environment variable ``GROK_API_<NAME>`` (``XAI_API_KEY`` too)."""

    model_config = SettingsConfigDict(
        env_prefix="GROK_API_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    xai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("XAI_API_KEY", "GROK_API_XAI_API_KEY")
    )
    xai_base_url: str = "https://api.x.ai/v1"
    web_base_url: str = "https://grok.com"
    web_cookies: SecretStr | None = None
    web_user_agent: str | None = None
    web_impersonate: str | None = None  # curl_cffi browser profile, e.g. "chrome"
    web_headers: SecretStr | None = None  # a JSON object of extra headers copied from the browser
    web_models_file: Path | None = None
    web_assets_url: str = "https://assets.grok.com"
    web_thinking: Literal["reasoning", "inline", "hidden"] = "reasoning"
    web_protocol: Literal["ws", "rest"] = Field(
        default="ws",
        description="grok.com protocol: 'ws' (its WebSocket chat gateway, as its web app speaks it now) "
        "or 'rest' (the older /rest/app-chat endpoints, kept as a fallback).",
    )
    web_temporary: bool = Field(
        default=True,
        description="Start grok.com conversations as temporary chats with memory off, so gateway chats "
        "stay out of the user's grok.com history where grok.com allows it.",
    )
    web_sources: Literal["inline", "list", "none"] = Field(
        default="inline",
        description="Search sources in the answer text: 'inline' [n](url) markers where grok.com cites "
        "them, a 'list' after the answer, or 'none' (they still reach the Responses API as annotations).",
    )
    web_heartbeat: float = Field(
        default=25.0,
        gt=0,
        description="Seconds between 'ping' events on a grok.com chat gateway socket during long answers.",
    )
    web_images: Literal["link", "proxy"] = Field(
        default="link",
        description="Generated images as absolute grok.com links ('link'), or fetched with the session "
        "and served by the gateway from a size-capped cache ('proxy'; links under GROK_API_PUBLIC_URL).",
    )
    web_image_cache_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="Size cap of the gateway's cache of grok.com images (GROK_API_WEB_IMAGES=proxy).",
    )
    public_url: str | None = Field(
        default=None,
        description="The URL clients reach this gateway at, for links it serves (default http://HOST:PORT).",
    )
    web_upload_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Largest image (decoded bytes) uploaded to grok.com as an attachment; larger is a 400.",
    )
    routes: str | None = None  # "alias=upstream/model,…"
    default_upstream: Literal["auto", "xai", "web"] = "auto"
    conversation_ttl: float = Field(default=7 * 86400.0, gt=0)
    proxy: str | None = None

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    redis_url: str | None = None
    admin_key: SecretStr | None = None

    database_pool_size: int = Field(default=10, ge=1, le=1000)
    limits_fail_mode: Literal["open", "closed"] = "open"
    usage_flush_interval: float = Field(default=5.0, gt=0)
    completion_reserve: int = Field(default=1024, ge=1)

    demo: bool = False
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    upstream_connect_timeout: float = Field(default=10.0, gt=0)
    upstream_read_timeout: float = Field(default=600.0, gt=0)
    upstream_first_byte_timeout: float = Field(default=600.0, gt=0)
    upstream_total_timeout: float = Field(default=3600.0, ge=0)
    upstream_retries: int = Field(default=2, ge=0, le=10)
    upstream_backoff_base: float = Field(default=0.25, ge=0)
    upstream_backoff_max: float = Field(default=5.0, ge=0)
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_reset: float = Field(default=30.0, gt=0)
    sse_keepalive: float = Field(default=15.0, gt=0)
    shutdown_grace: float = Field(default=30.0, ge=0)
    max_messages: int = Field(default=2048, ge=1)
    max_content_chars: int = Field(default=4_000_000, ge=1)
    max_json_depth: int = Field(default=64, ge=2)
    auth_failures_per_minute: int = Field(default=30, ge=1)
    cors_origins: str | None = None  # comma-separated origins, or "*"; unset: no CORS
    upstream_max_connections: int = Field(default=512, ge=1)
    key_cache_ttl: float = Field(default=5.0, ge=0)
    models_cache_ttl: float = Field(default=300.0, ge=0)
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$")
    # Observability (issue 11): request ids, access log, metrics, traces, dashboard
    access_log: bool = Field(
        default=False,
        description="One line per request at its end (JSON, or text with GROK_API_LOG_FORMAT=text): "
        "request id, key id and name, model, upstream, status, latencies, tokens, bytes, outcome.",
    )
    metrics_key_labels: bool = Field(
        default=False,
        description="Add a per-key label to the latency histograms (more series: off by default).",
    )
    tracing: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="OpenTelemetry traces: 'auto' turns them on when OTEL_EXPORTER_OTLP_ENDPOINT is set; "
        "needs the 'tracing' extra.",
    )
    recent_requests: int = Field(
        default=1000,
        ge=0,
        le=1_000_000,
        description="How many recent requests each instance keeps in memory for the dashboard.",
    )
    request_log_retention: float = Field(
        default=0.0,
        ge=0,
        description="Store every request's record (the access log's fields, never a key) in the database "
        "for this long (seconds, or a duration: 12h, 7d), so that the dashboard's Requests page shows every "
        "instance's and worker's requests; written in batches off the requests' path, older ones removed "
        "hourly. 0 (the default): off, each instance shows its own in-memory ring.",
    )
    request_log_flush_interval: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="Seconds between writes of the request log's queued records (sooner when 500 wait; "
        "the rest at shutdown).",
    )
    request_log_max_pending: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Request records held in memory while the database is away or slow "
        "(GROK_API_REQUEST_LOG_RETENTION); past it the oldest are dropped and counted in "
        "grok_api_request_log_dropped.",
    )
    responses_ttl: float = Field(
        default=30 * 86400.0,
        gt=0,
        description="Seconds a stored Responses API answer (store=true) is kept and can be retrieved "
        "or continued with previous_response_id; expired ones are removed by a background task.",
    )
    responses_max_per_key: int = Field(
        default=10_000,
        ge=0,
        description="Stored Responses API answers kept per key at most (0: no limit). Storing one past it "
        "removes the key's answers nearest their expiry first: the least lately continued conversations "
        "go, a conversation continued since keeps its earlier turns.",
    )

    # Hardening (issue 10): who may send forwarded headers, how big and how slow a request may
    # be, how many connections at once, and whether /metrics and /ready's details need the admin key.
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or CIDR ranges (or '*') of reverse proxies whose X-Forwarded-For is "
        "believed; unset: none, the peer address is the client",
    )
    max_header_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Request line + headers larger than this get a 431"
    )
    request_header_timeout: float = Field(
        default=30.0, gt=0, description="Seconds for a request's headers to arrive before a 408"
    )
    request_body_timeout: float = Field(
        default=60.0, gt=0, description="Seconds between pieces of a request body before a 408"
    )
    max_connections: int = Field(
        default=4096, ge=1, description="Open client connections at most; past it, new ones get a 503"
    )
    private_status: bool = Field(
        default=False,
        description="Serve /metrics and /ready's details to the admin key only (/ready still says ready)",
    )
    upstream_cooldown_max: float = Field(
        default=60.0,
        ge=0,
        description="After an upstream 429, that target rests for that model for its Retry-After, "
        "at most this many seconds (0: never rests)",
    )
    max_json_elements: int = Field(
        default=100_000,
        ge=100,
        description="JSON values a request body may hold, counted as its commas and opening brackets "
        "outside strings; more is a 400, refused before parsing",
    )
    usage_max_pending: int = Field(
        default=100_000, ge=100, description="Usage rows held while the store is away, at most"
    )

    @field_validator(
        "proxy",
        "redis_url",
        "database_url",
        "web_user_agent",
        "web_impersonate",
        "routes",
        "cors_origins",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("request_log_retention", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        """Seconds, or a duration (``7d``); blank or ``off`` is 0 (off)."""
        if not isinstance(v, str):
            return v
        text = v.strip().lower()
        if text in ("", "off", "0"):
            return 0.0
        try:
            return float(text)
        except ValueError:
            return parse_duration(text)  # its ValueError names the forms it takes

    @field_validator("admin_key", mode="before")
    @classmethod
    def _blank_admin_key_is_unset(cls, v: object) -> object:
        if isinstance(v, SecretStr):
            v = v.get_secret_value()
        return None if isinstance(v, str) and not v.strip() else v

    def startup_problems(self) -> list[str]:
        """Settings a gateway refuses to start with (``doctor`` reports them as errors)."""
        problems = []
        admin = self.admin_key.get_secret_value() if self.admin_key else ""
        if admin and len(admin) < MIN_ADMIN_KEY_CHARS:
            problems.append(
                f"GROK_API_ADMIN_KEY is {len(admin)} characters; use at least {MIN_ADMIN_KEY_CHARS} "
                "random ones (e.g. openssl rand -hex 32), or leave it unset to turn the admin API off"
            )
        problems += url_credential_problems(self)
        return problems

    @field_validator("proxy")
    @classmethod
    def _proxy_scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://", "socks5://", "socks5h://")):
            raise ValueError("GROK_API_PROXY must start with http://, https://, socks5:// or socks5h://")
        return v

    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL: users write ``postgresql://`` or ``sqlite:///``.

        Demo mode always has a store of its own (``demo.db`` in the data dir), so that a demo key
        can never be accepted by a gateway serving a real upstream."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'grok-api.db'}"
        if self.demo:
            url = f"sqlite:///{self.data_dir / 'demo.db'}"
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain) :]
        return url

    def web_extra_headers(self) -> dict[str, str]:
        if self.web_headers is None or not self.web_headers.get_secret_value().strip():
            return {}
        try:
            parsed = json.loads(self.web_headers.get_secret_value())
        except json.JSONDecodeError as exc:
            raise ValueError("GROK_API_WEB_HEADERS must be a JSON object of header names to values") from exc
        if not isinstance(parsed, dict):
            raise ValueError("GROK_API_WEB_HEADERS must be a JSON object of header names to values")
        return {str(k): str(v) for k, v in parsed.items()}

    def route_map(self) -> dict[str, str]:
        """``GROK_API_ROUTES`` as {alias: "upstream/model"}."""
        out: dict[str, str] = {}
        for item in (self.routes or "").split(","):
            if item.strip():
                alias, sep, target = item.partition("=")
                if not sep or "/" not in target:
                    raise ValueError(f"GROK_API_ROUTES: '{item}' is not alias=upstream/model")
                out[alias.strip()] = target.strip()
        return out
