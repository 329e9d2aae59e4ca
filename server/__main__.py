"""``chat-server``: load the config, start the embedded services when no URLs are set, run.

Sub-commands:
  chat-server                                   run the server
  chat-server create-admin USERNAME             create an admin (password from CHAT_ADMIN_PASSWORD
                                                or asked on the terminal), or promote USERNAME
  chat-server set-role USERNAME ROLE            user | staff | admin
  chat-server set-compliance USERNAME on|off    grant or revoke the compliance permission
                                                (read private rooms and DMs; audited)

The admin commands work next to a running server on the same ``CHAT_DATA_DIR``: they use its
embedded PostgreSQL and never start, stop or take over the embedded Redis (``embedded.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import getpass
import logging
import os
import sys
from typing import Any

from aiohttp import web

from .config import Config, ConfigError
from .context import SERVICES
from .embedded import EmbeddedServiceBusy, EmbeddedServices
from .gcwatch import GcWatch

log = logging.getLogger(__name__)


def _config_with_services(config: Config, embedded: EmbeddedServices, *, admin: bool) -> Config:
    """``config`` with the embedded services' URLs where none were set. An admin command needs
    PostgreSQL only: it attaches to the one already running (and leaves it running) and never
    starts a Redis, whose socket path the running server's Redis holds."""
    overrides: dict[str, Any] = {}
    if config.embedded_postgres:
        overrides["database_url"] = embedded.start_postgres(stop_if_running=not admin)
    if config.embedded_redis and not admin:
        overrides["redis_url"] = embedded.start_redis()
    return dataclasses.replace(config, **overrides)


def _warn_if_insecure(config: Config) -> None:
    if config.argon2_insecure_test_params:
        log.warning(
            "ARGON2_INSECURE_TEST_PARAMS=true: password hashes may be made below OWASP's minimum "
            "(ARGON2_TIME_COST=%d, ARGON2_MEMORY_KIB=%d); this is for test suites only, NEVER for real users",
            config.argon2_time_cost, config.argon2_memory_kib,
        )


async def _freeze_gc(app: web.Application) -> None:
    """Move everything built at start-up out of the collector's view and collect the young
    generations less often: full collections over many long-lived objects (connections,
    rooms) otherwise stall the event loop for tens of milliseconds at a time."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    svc = app[SERVICES]
    GcWatch(svc.metrics.gc_pause, svc.config.gc_pause_warn_s).install()


def _serve(config: Config) -> None:
    from .app import create_app

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    app = create_app(config)
    app.on_startup.append(_freeze_gc)
    logging.getLogger(__name__).info("listening on http://%s:%s", config.host, config.port)
    web.run_app(app, host=config.host, port=config.port, print=None, shutdown_timeout=3, access_log=None)


async def _admin(config: Config, username: str, role: str, create: bool) -> str:
    from .actions.auth import check_password, check_username
    from .passwords import PasswordHasher
    from .storage import db, users

    pool = await db.create_pool(config.database_url or "", timeout_s=config.db_timeout_s, min_size=1, max_size=2)
    try:
        await db.migrate(pool)
        user = await users.get_user_by_username(pool, username)
        if user is None:
            if not create:
                return f"no user named {username!r}"
            check_username(username)
            password = os.environ.get("CHAT_ADMIN_PASSWORD") or getpass.getpass(f"Password for {username}: ")
            check_password(password)
            hasher = PasswordHasher(config.argon2_time_cost, config.argon2_memory_kib)
            user = await users.insert_user(pool, username, username, await hasher.hash(password), role=role)
            return f"created {role} {username} (id {user.id})"
        await users.set_role(pool, user.id, role)
        return f"{username} is now {role}"
    finally:
        await pool.close()


async def _compliance(config: Config, username: str, enabled: bool) -> str:
    from .actions.audit import set_compliance
    from .storage import db, users

    pool = await db.create_pool(config.database_url or "", timeout_s=config.db_timeout_s, min_size=1, max_size=2)
    try:
        await db.migrate(pool)
        user = await users.get_user_by_username(pool, username)
        # no actor: the command line is an operator on the host; the audit row says so in meta
        if user is None or await set_compliance(pool, None, user.id, enabled, "cli") is None:
            return f"no user named {username!r}"
        return f"{username}: compliance {'granted' if enabled else 'revoked'}"
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="chat-server")
    sub = parser.add_subparsers(dest="cmd")
    ca = sub.add_parser("create-admin", help="create (or promote) an admin user")
    ca.add_argument("username")
    sr = sub.add_parser("set-role", help="change a user's role")
    sr.add_argument("username")
    sr.add_argument("role", choices=["user", "staff", "supervisor", "admin"])
    sc = sub.add_parser("set-compliance", help="grant (on) or revoke (off) the compliance permission")
    sc.add_argument("username")
    sc.add_argument("state", choices=["on", "off"])
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = Config.from_env(os.environ)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    _warn_if_insecure(config)
    embedded = EmbeddedServices(config.data_dir)
    try:
        config = _config_with_services(config, embedded, admin=args.cmd is not None)
        if args.cmd is None:
            _serve(config)
        elif args.cmd == "set-compliance":
            print(asyncio.run(_compliance(config, args.username, args.state == "on")))
        else:
            role = "admin" if args.cmd == "create-admin" else args.role
            print(asyncio.run(_admin(config, args.username, role, args.cmd == "create-admin")))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except EmbeddedServiceBusy as exc:
        print(f"chat-server: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        embedded.stop()


if __name__ == "__main__":
    main()
