"""``chat-archive``: load the config and run the archive service."""

from __future__ import annotations

import logging
import os
import sys

from aiohttp import web

from .config import ArchiveConfig, ConfigError


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = ArchiveConfig.from_env(os.environ)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    from .app import create_app

    web.run_app(create_app(config), host=config.host, port=config.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
