"""Configuration: environment variables read once into a frozen, typed ``Config``.

Nothing else in ``server`` reads ``os.environ``. A bad value fails at start with the name of the
variable. Secrets have no defaults: the embedded default generates its own signing keys into
``CHAT_DATA_DIR``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

from ai.settings import AISettings
from chatcore.faults import parse_fault_pause


class ConfigError(ValueError):
    pass


# OWASP's minimum for Argon2id (Password Storage Cheat Sheet): 19 MiB of memory, 2 iterations,
# parallelism 1. Below it an offline guess costs too little once a hash leaks.
ARGON2_MIN_TIME_COST = 2
ARGON2_MIN_MEMORY_KIB = 19 * 1024


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: str) -> float:
    """``"30d"``, ``"12h"``, ``"5s"``, ``"250ms"`` or plain seconds -> seconds."""
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"not a duration: {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


_str = str
_float = float


class _Env:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def str(self, key: _str, default: _str | None = None) -> _str | None:
        v = self.env.get(key)
        return v if v not in (None, "") else default

    def int(self, key: _str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        raw = self.str(key)
        if raw is None:
            return default
        try:
            v = int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            allowed = (f"between {lo} and {hi}" if lo is not None and hi is not None
                       else f"at least {lo}" if lo is not None else f"at most {hi}")
            raise ConfigError(f"{key} must be {allowed}, got {v}")
        return v

    def float(self, key: _str, default: _float, lo: _float = 0.0) -> _float:
        raw = self.str(key)
        if raw is None:
            return default
        try:
            v = float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number, got {raw!r}") from None
        if v < lo:
            raise ConfigError(f"{key} must be >= {lo}, got {v}")
        return v

    def bool(self, key: _str, default: bool) -> bool:
        raw = self.str(key)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key} must be true or false, got {raw!r}")

    def duration(self, key: _str, default: _str) -> _float:
        raw = self.str(key, default)
        assert raw is not None
        try:
            return parse_duration(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a duration like 30d, 12h, 90s, got {raw!r}") from None

    def networks(self, key: _str) -> tuple[IPv4Network | IPv6Network, ...]:
        try:
            return tuple(ip_network(p, strict=False) for p in self.list(key))
        except ValueError as exc:
            raise ConfigError(f"{key} must be IP addresses or networks (CIDR), comma-separated: {exc}") from None

    def list(self, key: _str) -> tuple[_str, ...]:
        raw = self.str(key)
        if raw is None:
            return ()
        return tuple(p.strip() for p in raw.split(",") if p.strip())


@dataclass(frozen=True)
class Limits:
    max_body_chars: int = 4000  # a message body; larger -> too_large
    max_http_body_bytes: int = 64 * 1024  # any JSON request body
    max_ws_message_bytes: int = 64 * 1024  # any Socket.IO packet
    history_page_max: int = 100
    messages_per_10s: int = 20  # per user, token bucket in Redis
    events_per_10s: int = 60  # any client event, per user
    login_per_min: int = 10  # per IP and per username
    register_per_min: int = 5  # per IP
    rooms_per_hour: int = 30  # room creations per user
    webhook_per_min: int = 1200  # unsigned-or-signed webhook posts per IP, checked before any work
    sockets_per_user: int = 20  # concurrent Socket.IO connections of one user (tabs, devices)
    connections_per_ip: int = 500  # concurrent WebSocket/polling sessions from one client address
    connect_timeout_s: float = 10.0  # Engine.IO open -> Socket.IO CONNECT, else the session is closed
    ws_queue_max_bytes: int = 1 << 20  # per socket, outbound bytes queued behind a slow reader
    ws_queue_max_packets: int = 2000  # per socket, outbound packets queued behind a slow reader


# The default upload allow-list: common images (not SVG: it is a document that can run script),
# audio, video, PDF, office documents, plain text and zip archives. Patterns may end in /*.
DEFAULT_UPLOAD_TYPES: tuple[str, ...] = (
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif", "image/heic", "image/heif",
    "audio/*", "video/*", "application/pdf", "text/plain", "text/csv", "application/zip",
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.*", "application/vnd.oasis.opendocument.*",
)
_MIME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.+-]*/(\*|[a-z0-9][a-z0-9.+-]*\*?)$")


@dataclass(frozen=True)
class FileSettings:
    """Uploads and attachments (docs/FILES.md)."""

    store: str = "local"  # local: CHAT_DATA_DIR/files; s3: an S3-compatible object store
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = "chat-files"
    s3_access_key_id: str | None = field(default=None, repr=False)
    s3_secret_access_key: str | None = field(default=None, repr=False)
    s3_region: str = "us-east-1"
    max_upload_bytes: int = 25 * 1024 * 1024
    allowed_types: tuple[str, ...] = DEFAULT_UPLOAD_TYPES
    orphan_ttl_s: float = 3600.0  # an upload not attached to a message by then is deleted
    url_ttl_s: int = 3600  # lifetime of a signed download URL
    url_secret_file: Path | None = None  # unset: generated into CHAT_DATA_DIR/keys
    archive_ttl_days: float | None = None  # ARCHIVE_TTL_DAYS: archived messages' files go with them

    @classmethod
    def from_env(cls, e: _Env) -> FileSettings:
        store = e.str("FILE_STORE", "local")
        if store not in ("local", "s3"):
            raise ConfigError(f"FILE_STORE must be local or s3, got {store!r}")
        types = e.list("UPLOAD_ALLOWED_TYPES") or DEFAULT_UPLOAD_TYPES
        for t in types:
            if not _MIME_PATTERN.match(t.lower()):
                raise ConfigError(f"UPLOAD_ALLOWED_TYPES: {t!r} is not a MIME type or a pattern like image/*")
        secret_file = e.str("FILE_URL_SECRET_FILE")
        archive_ttl = e.float("ARCHIVE_TTL_DAYS", 0.0)
        settings = cls(
            store=store or "local",
            s3_endpoint_url=e.str("S3_ENDPOINT_URL"),
            s3_bucket=e.str("S3_BUCKET", "chat-files"),
            s3_access_key_id=e.str("S3_ACCESS_KEY_ID"),
            s3_secret_access_key=e.str("S3_SECRET_ACCESS_KEY"),
            s3_region=e.str("S3_REGION", "us-east-1") or "us-east-1",
            max_upload_bytes=e.int("MAX_UPLOAD_BYTES", 25 * 1024 * 1024, 1024, 5 * 1024**3),
            allowed_types=tuple(t.lower() for t in types),
            orphan_ttl_s=e.duration("UPLOAD_ORPHAN_TTL", "1h"),
            url_ttl_s=e.int("FILE_URL_TTL_S", 3600, 60, 7 * 86400),
            url_secret_file=Path(secret_file) if secret_file else None,
            archive_ttl_days=archive_ttl or None,
        )
        if settings.store == "s3" and not (settings.s3_bucket and settings.s3_access_key_id
                                           and settings.s3_secret_access_key):
            raise ConfigError("FILE_STORE=s3 needs S3_BUCKET, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY")
        return settings


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./var")
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "chat:"
    node_id: str | None = None
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()  # whose X-Forwarded-For to believe
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    access_ttl_s: int = 900
    refresh_ttl_s: int = 30 * 86400
    presence_ttl_s: float = 15.0  # a node that misses heartbeats this long is dead
    typing_ttl_s: float = 6.0  # clients re-send every 3 s while typing
    # rooms with more members get no read receipts (read:updated): one read would fan out to all
    read_receipts_max_members: int = 20
    db_timeout_s: float = 5.0
    redis_timeout_s: float = 2.0
    web_dist: Path | None = None
    build_web: bool = True
    compression: bool = False
    # Engine.IO heartbeat: a PING this long after the open or the last PONG; a session whose
    # PONG has not come ping_timeout_s after its PING is closed (seconds; clients learn both
    # from the open packet)
    ping_interval_s: float = 25.0
    ping_timeout_s: float = 20.0
    limits: Limits = field(default_factory=Limits)
    ai: AISettings = field(default_factory=lambda: AISettings.from_env({}))
    kafka_bootstrap: str | None = None
    archive_url: str | None = None  # chat-archive base URL for history past the hot store
    archive_public_url: str | None = None  # the same service as browsers reach it
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    hot_retention_s: float = 30 * 86400
    relay_interval_s: float = 5.0
    relay_batch_size: int = 500
    archive_topic: str = "chat.messages.archive"
    wa_graph_url: str = "https://graph.facebook.com"
    wa_send_interval_s: float = 1 / 80  # pacing per business number: Meta's default throughput
    wa_retry_base_s: float = 5.0  # first wait before a queued WhatsApp send is tried again; doubles
    wa_media_timeout_s: float = 60.0  # one media download or upload with the Graph API, bytes included
    wa_session_lease_s: float = 30.0  # a node's hold on a linked-device session; renewed every third of it
    wa_session_retry_base_s: float = 2.0  # first wait before a linked session connects again; doubles to 5 min
    wa_api_version: str = "v21.0"
    desk_agent_capacity: int = 5  # open conversations auto-assigned to an agent whose membership sets none
    desk_assign_sweep_s: float = 5.0  # how often each node assigns conversations waiting in queues
    # Meta's messaging tier: business-initiated messages (campaign sends) per number in any 24 h
    wa_tier_limit_per_day: int = 1000
    campaign_max_recipients: int = 100_000  # rows of one campaign CSV; more -> too_large
    # a contact's reply that is one of these (case and surrounding blanks ignored) opts them out
    campaign_stop_keywords: tuple[str, ...] = ("STOP", "UNSUBSCRIBE", "STOPP", "ARRET", "BAJA", "PARAR")
    wa_otp_template: str = "login_code"
    wa_otp_language: str = "en_US"
    log_level: str = "INFO"
    metrics_token: str | None = field(default=None, repr=False)  # required by /metrics when set
    gc_pause_warn_s: float = 0.1  # a garbage-collector pause at least this long is logged
    revocation_check_s: float = 1.0  # how often each node checks PostgreSQL for revoked sessions
    argon2_insecure_test_params: bool = False  # allow Argon2 below the OWASP minimum (tests only)
    files: FileSettings = field(default_factory=FileSettings)
    search_language: str = "simple"  # SEARCH_LANGUAGE: the text search configuration (docs/SEARCH.md)
    fault_pause_at: str | None = None  # FAULT_PAUSE_AT: fault tests only (chatcore/faults.py)

    def __post_init__(self) -> None:
        _check_argon2_floor(self)

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Config:
        e = _Env(environ)
        limits = Limits(
            max_body_chars=e.int("MAX_MESSAGE_CHARS", 4000, 1, 100_000),
            messages_per_10s=e.int("RATE_LIMIT_MESSAGES_PER_10S", 20, 1),
            events_per_10s=e.int("RATE_LIMIT_EVENTS_PER_10S", 60, 1),
            login_per_min=e.int("RATE_LIMIT_LOGIN_PER_MIN", 10, 1),
            register_per_min=e.int("RATE_LIMIT_REGISTER_PER_MIN", 5, 1),
            rooms_per_hour=e.int("RATE_LIMIT_ROOMS_PER_HOUR", 30, 1),
            webhook_per_min=e.int("RATE_LIMIT_WEBHOOK_PER_MIN", 1200, 1),
            sockets_per_user=e.int("MAX_SOCKETS_PER_USER", 20, 1),
            connections_per_ip=e.int("MAX_CONNECTIONS_PER_IP", 500, 1),
            connect_timeout_s=e.float("CONNECT_TIMEOUT_S", 10.0, 0.5),
            ws_queue_max_bytes=e.int("WS_QUEUE_MAX_BYTES", 1 << 20, 64 * 1024),
            ws_queue_max_packets=e.int("WS_QUEUE_MAX_PACKETS", 2000, 16),
        )
        try:
            ai = AISettings.from_env(environ)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        key_file = e.str("JWT_PRIVATE_KEY_FILE")
        pub_file = e.str("JWT_PUBLIC_KEY_FILE")
        web_dist = e.str("WEB_DIST")
        values: dict[str, Any] = dict(
            host=e.str("CHAT_HOST", "127.0.0.1"),
            port=e.int("CHAT_PORT", 8080, 0, 65535),
            data_dir=Path(e.str("CHAT_DATA_DIR", "./var") or "./var"),
            database_url=e.str("DATABASE_URL"),
            redis_url=e.str("REDIS_URL"),
            redis_prefix=e.str("REDIS_PREFIX", "chat:"),
            node_id=e.str("CHAT_NODE_ID"),
            cors_origins=e.list("CORS_ORIGINS"),
            trusted_proxies=e.networks("TRUSTED_PROXIES"),
            jwt_private_key_file=Path(key_file) if key_file else None,
            jwt_public_key_file=Path(pub_file) if pub_file else None,
            access_ttl_s=e.int("ACCESS_TOKEN_TTL_S", 900, 10),
            refresh_ttl_s=e.int("REFRESH_TOKEN_TTL_S", 30 * 86400, 60),
            presence_ttl_s=e.float("PRESENCE_TTL_S", 15.0, 1.0),
            typing_ttl_s=e.float("TYPING_TTL_S", 6.0, 0.5),
            read_receipts_max_members=e.int("READ_RECEIPTS_MAX_MEMBERS", 20, 0),
            db_timeout_s=e.float("DB_TIMEOUT_S", 5.0, 0.1),
            redis_timeout_s=e.float("REDIS_TIMEOUT_S", 2.0, 0.1),
            web_dist=Path(web_dist) if web_dist else None,
            build_web=e.bool("BUILD_WEB", True),
            compression=e.bool("WS_COMPRESSION", False),
            ping_interval_s=e.float("PING_INTERVAL_S", 25.0, 0.1),
            ping_timeout_s=e.float("PING_TIMEOUT_S", 20.0, 0.1),
            limits=limits,
            ai=ai,
            kafka_bootstrap=e.str("KAFKA_BOOTSTRAP_SERVERS"),
            archive_url=e.str("ARCHIVE_URL"),
            archive_public_url=e.str("ARCHIVE_PUBLIC_URL"),
            argon2_time_cost=e.int("ARGON2_TIME_COST", 3, 1, 20),
            argon2_memory_kib=e.int("ARGON2_MEMORY_KIB", 65536, 1024, 4 * 1024 * 1024),
            hot_retention_s=e.duration("HOT_RETENTION", "30d"),
            relay_interval_s=e.duration("RELAY_INTERVAL", "5s"),
            relay_batch_size=e.int("RELAY_BATCH_SIZE", 500, 1, 10_000),
            archive_topic=e.str("ARCHIVE_TOPIC", "chat.messages.archive"),
            wa_graph_url=e.str("WA_GRAPH_URL", "https://graph.facebook.com"),
            wa_retry_base_s=e.float("WA_RETRY_BASE_S", 5.0, 0.05),
            wa_media_timeout_s=e.float("WA_MEDIA_TIMEOUT_S", 60.0, 0.1),
            wa_session_lease_s=e.float("WA_SESSION_LEASE_S", 30.0, 1.0),
            wa_session_retry_base_s=e.float("WA_SESSION_RETRY_BASE_S", 2.0, 0.05),
            wa_send_interval_s=e.float("WA_SEND_INTERVAL_S", 1 / 80, 0.0),
            wa_api_version=e.str("WA_API_VERSION", "v21.0"),
            desk_agent_capacity=e.int("DESK_AGENT_CAPACITY", 5, 1, 1000),
            desk_assign_sweep_s=e.float("DESK_ASSIGN_SWEEP_S", 5.0, 0.1),
            wa_tier_limit_per_day=e.int("WA_TIER_LIMIT_PER_DAY", 1000, 1),
            campaign_max_recipients=e.int("CAMPAIGN_MAX_RECIPIENTS", 100_000, 1, 10_000_000),
            campaign_stop_keywords=tuple(k.upper() for k in e.list("CAMPAIGN_STOP_KEYWORDS"))
            or ("STOP", "UNSUBSCRIBE", "STOPP", "ARRET", "BAJA", "PARAR"),
            wa_otp_template=e.str("WA_OTP_TEMPLATE", "login_code"),
            wa_otp_language=e.str("WA_OTP_LANGUAGE", "en_US"),
            log_level=(e.str("LOG_LEVEL", "INFO") or "INFO").upper(),
            metrics_token=e.str("METRICS_TOKEN"),
            gc_pause_warn_s=e.float("GC_PAUSE_WARN_MS", 100.0) / 1000,
            revocation_check_s=e.float("REVOCATION_CHECK_S", 1.0, 0.1),
            argon2_insecure_test_params=e.bool("ARGON2_INSECURE_TEST_PARAMS", False),
            files=FileSettings.from_env(e),
            search_language=_search_language(e.str("SEARCH_LANGUAGE", "simple") or "simple"),
            fault_pause_at=_fault_pause(e.str("FAULT_PAUSE_AT")),
        )
        values.update(overrides)
        return cls(**values)


# PostgreSQL's built-in text search configurations: simple (no stemming, no stop words) and the
# snowball ones (stemming and stop words of one language)
SEARCH_LANGUAGES = frozenset({
    "simple", "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english", "finnish", "french",
    "german", "greek", "hindi", "hungarian", "indonesian", "irish", "italian", "lithuanian", "nepali",
    "norwegian", "portuguese", "romanian", "russian", "serbian", "spanish", "swedish", "tamil", "turkish",
    "yiddish",
})


def _search_language(value: str) -> str:
    if value.lower() not in SEARCH_LANGUAGES:
        raise ConfigError(f"SEARCH_LANGUAGE must be one of {', '.join(sorted(SEARCH_LANGUAGES))}, got {value!r}")
    return value.lower()


def _fault_pause(value: str | None) -> str | None:
    try:
        return parse_fault_pause(value)
    except ValueError:
        raise ConfigError(f"FAULT_PAUSE_AT must be <point>:<n>:<file>, got {value!r}") from None


def _check_argon2_floor(config: Config) -> None:
    """Refuse password hashing below OWASP's minimum unless the test-only flag says otherwise
    (test suites and benchmarks register thousands of users and need cheap hashes)."""
    if config.argon2_insecure_test_params:
        return
    if config.argon2_time_cost < ARGON2_MIN_TIME_COST:
        raise ConfigError(
            f"ARGON2_TIME_COST must be at least {ARGON2_MIN_TIME_COST} (OWASP's minimum for Argon2id), "
            f"got {config.argon2_time_cost}; ARGON2_INSECURE_TEST_PARAMS=true allows less, for test suites only"
        )
    if config.argon2_memory_kib < ARGON2_MIN_MEMORY_KIB:
        raise ConfigError(
            f"ARGON2_MEMORY_KIB must be at least {ARGON2_MIN_MEMORY_KIB} (19 MiB, OWASP's minimum for Argon2id), "
            f"got {config.argon2_memory_kib}; ARGON2_INSECURE_TEST_PARAMS=true allows less, for test suites only"
        )
