"""chat-archive configuration, read once from the environment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from chatcore.events import ARCHIVE_DLQ_TOPIC, ARCHIVE_TOPIC
from chatcore.faults import parse_fault_pause

T = TypeVar("T")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ArchiveConfig:
    kafka_bootstrap: str
    mongo_url: str
    jwt_public_key_file: Path
    chat_server_url: str  # where chat-archive asks chat-server about access; comma-separated nodes, tried in order
    mongo_db: str = "chat_archive"
    host: str = "127.0.0.1"
    port: int = 8090
    ttl_days: float | None = None
    group_id: str = "chat-archive"
    topic: str = ARCHIVE_TOPIC
    dlq_topic: str = ARCHIVE_DLQ_TOPIC
    retention_interval_s: float = 3600.0
    timeout_s: float = 10.0
    chat_server_timeout_s: float = 5.0  # bound on each access question to chat-server
    stall_check_s: float = 15.0  # how often the consumer checks that the group's lag shrinks
    metrics_token: str | None = field(default=None, repr=False)  # required by /metrics when set
    web_dist: Path | None = None  # the web build, for Swagger UI on /archive/docs (default: the repo's)
    # chat-server's file-URL secret, to hand out working attachment URLs; unset: URLs are null
    file_url_secret_file: Path | None = None
    file_url_ttl_s: int = 3600
    fault_pause_at: str | None = None  # FAULT_PAUSE_AT: fault tests only (chatcore/faults.py)
    write_log: bool = False  # ARCHIVE_WRITE_LOG: one document per applied batch in ``write_log``
    # per caller, a token bucket each (archive/ratelimit.py); 0: unlimited
    searches_per_minute: int = 30
    exports_per_minute: int = 5
    # where the buckets are shared by every chat-archive process (chat-server's Redis); unset:
    # each process counts its own
    redis_url: str | None = field(default=None, repr=False)
    redis_prefix: str = "chat:"  # chat-server's default: its keys and chat-archive's side by side

    @property
    def query_time_limit_ms(self) -> int:
        """The store's own bound on each API query (``maxTimeMS``): under ``timeout_s`` by a fifth,
        at most 0.5 s, so the store stops the scan and says so before chat-archive stops waiting."""
        ms = self.timeout_s * 1000
        return max(1, int(ms - min(500.0, ms / 5)))

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: object) -> ArchiveConfig:
        def req(key: str) -> str:
            v = env.get(key)
            if not v:
                raise ConfigError(f"{key} is required")
            return v

        def parsed(key: str, default: T, cast: Callable[[str], T], ok: Callable[[T], bool], rule: str) -> T:
            raw = env.get(key)
            if not raw:
                return default
            try:
                v = cast(raw)
            except ValueError:
                raise ConfigError(f"{key} must be {rule}, got {raw!r}") from None
            if not ok(v):
                raise ConfigError(f"{key} must be {rule}, got {raw!r}")
            return v

        def num(key: str, default: float | None) -> float | None:
            return parsed(key, default, float, lambda v: v is not None and v > 0, "a positive number")

        def number(key: str, default: int) -> int:
            return parsed(key, default, int, lambda v: v >= 0, "a whole number, 0 (off) or more")

        def fault_pause(raw: str | None) -> str | None:
            try:
                return parse_fault_pause(raw)
            except ValueError:
                raise ConfigError(f"FAULT_PAUSE_AT must be <point>:<n>:<file>, got {raw!r}") from None

        port = num("ARCHIVE_PORT", 8090)
        values: dict[str, object] = dict(
            kafka_bootstrap=req("KAFKA_BOOTSTRAP_SERVERS"),
            mongo_url=req("MONGO_URL"),
            jwt_public_key_file=Path(req("JWT_PUBLIC_KEY_FILE")),
            chat_server_url=",".join(u.strip().rstrip("/") for u in req("CHAT_SERVER_URL").split(",") if u.strip()),
            chat_server_timeout_s=num("CHAT_SERVER_TIMEOUT_S", 5.0),
            mongo_db=env.get("MONGO_DB") or "chat_archive",
            host=env.get("ARCHIVE_HOST") or "127.0.0.1",
            port=int(port or 8090),
            ttl_days=num("ARCHIVE_TTL_DAYS", None),
            group_id=env.get("ARCHIVE_GROUP_ID") or "chat-archive",
            topic=env.get("ARCHIVE_TOPIC") or ARCHIVE_TOPIC,
            dlq_topic=env.get("ARCHIVE_DLQ_TOPIC") or ARCHIVE_DLQ_TOPIC,
            retention_interval_s=num("ARCHIVE_RETENTION_INTERVAL_S", 3600.0),
            stall_check_s=num("ARCHIVE_STALL_CHECK_S", 15.0),
            metrics_token=env.get("METRICS_TOKEN") or None,
            web_dist=Path(env["WEB_DIST"]) if env.get("WEB_DIST") else None,
            file_url_secret_file=Path(env["FILE_URL_SECRET_FILE"]) if env.get("FILE_URL_SECRET_FILE") else None,
            file_url_ttl_s=int(num("FILE_URL_TTL_S", 3600.0) or 3600),
            fault_pause_at=fault_pause(env.get("FAULT_PAUSE_AT")),
            write_log=(env.get("ARCHIVE_WRITE_LOG") or "false").lower() in ("1", "true", "yes"),
            searches_per_minute=number("ARCHIVE_SEARCHES_PER_MINUTE", 30),
            exports_per_minute=number("ARCHIVE_EXPORTS_PER_MINUTE", 5),
            redis_url=env.get("REDIS_URL") or None,
            redis_prefix=env.get("REDIS_PREFIX") or "chat:",
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
