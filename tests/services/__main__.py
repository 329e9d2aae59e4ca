"""``python -m tests.services up [postgres redis kafka mongo s3]``: the test services for a local
session. Prints the URLs to export, runs until Ctrl-C, then stops and removes everything."""

from __future__ import annotations

import argparse
import signal
import threading

from .ferretdb import FerretService
from .kafka import KafkaService
from .postgres import PostgresService
from .redis import RedisService
from .s3 import S3Service


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m tests.services")
    p.add_argument("command", choices=["up"])
    p.add_argument("services", nargs="*", default=["postgres", "redis", "kafka", "mongo"])
    a = p.parse_args()
    started: list = []  # type: ignore[type-arg]
    env: dict[str, str] = {}
    try:
        if "postgres" in a.services:
            pg = PostgresService().start()
            started.append(pg)
            pg.psql("CREATE DATABASE chat")
            env["DATABASE_URL"] = pg.dsn_for("chat")
        if "redis" in a.services:
            r = RedisService().start()
            started.append(r)
            env["REDIS_URL"] = r.url
        if "kafka" in a.services:
            k = KafkaService().start()
            started.append(k)
            env["KAFKA_BOOTSTRAP_SERVERS"] = k.bootstrap
        if "mongo" in a.services:
            f = FerretService().start()
            started.append(f)
            env["MONGO_URL"] = f.url
        if "s3" in a.services:
            s3 = S3Service().start()
            started.append(s3)
            env.update(FILE_STORE="s3", S3_ENDPOINT_URL=s3.url, S3_BUCKET="chat-files",
                       S3_ACCESS_KEY_ID=s3.access_key, S3_SECRET_ACCESS_KEY=s3.secret_key, S3_REGION=s3.region)
        for k_, v in env.items():
            print(f"export {k_}={v}")
        print("# running; Ctrl-C stops and removes them", flush=True)
        done = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: done.set())
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        done.wait()
    finally:
        for s in reversed(started):
            s.cleanup()


if __name__ == "__main__":
    main()
