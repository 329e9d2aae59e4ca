"""Fixtures for the full-stack tests: two chat-server processes (and, where needed, chat-archive on
real Kafka and FerretDB) behind Debian's nginx running the repo's nginx.conf."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.edge import Nginx, source_addr_for
from tests.services.base import REPO_ROOT, free_port, port_open, wait_until
from tests.services.ferretdb import FerretService
from tests.services.kafka import KafkaService
from tests.support import ChatNode, ServerHarness

NODE_IDS = ("node-a", "node-b")
ASSET_NAME = "app-3f9c1d2e.js"


@dataclass
class Edge:
    nginx: Nginx
    nodes: dict[str, ChatNode]
    _addrs: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.nginx.base_url

    def upstream(self, node_id: str) -> str:
        """The node as nginx's ``$upstream_addr`` names it."""
        return f"127.0.0.1:{self.nodes[node_id].port}"

    async def addr(self, node_id: str) -> str:
        """A client source address whose requests nginx sends to ``node_id``."""
        if node_id not in self._addrs:
            self._addrs[node_id] = await source_addr_for(self.base_url, node_id)
        return self._addrs[node_id]


@pytest.fixture
def web_dist(tmp_path: Path) -> Path:
    """A built web app as Vite lays it out: index.html and content-hashed assets."""
    dist = tmp_path / "web-dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(f'<!doctype html><title>Chat</title><script type="module" src="/assets/{ASSET_NAME}"></script>')
    (dist / "assets" / ASSET_NAME).write_text("console.log('chat');\n" * 200)
    return dist


def _spawn_nodes(harness: ServerHarness, web_dist: Path, **env: str) -> dict[str, ChatNode]:
    common = {"WEB_DIST": str(web_dist), "RATE_LIMIT_MESSAGES_PER_10S": "1000", **env}
    return {node_id: harness.spawn_node(CHAT_NODE_ID=node_id, **common) for node_id in NODE_IDS}


@pytest.fixture
async def edge(harness: ServerHarness, web_dist: Path, tmp_path: Path) -> AsyncIterator[Edge]:
    nodes = _spawn_nodes(harness, web_dist)
    nginx = Nginx(_dir(tmp_path / "nginx"), [n.port for n in nodes.values()]).start()
    try:
        yield Edge(nginx, nodes)
    finally:
        nginx.stop()


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- the archive tier: real Kafka, a MongoDB-protocol server, chat-archive ------------------------

@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaService]:
    k = KafkaService().start()
    yield k
    k.cleanup()


@pytest.fixture(scope="session")
def mongo_wire() -> Iterator[FerretService]:
    f = FerretService().start()
    yield f
    f.cleanup()


@pytest.fixture
async def archive_edge(harness: ServerHarness, web_dist: Path, tmp_path: Path, key_dir: Path,
                       kafka_broker: KafkaService, mongo_wire: FerretService) -> AsyncIterator[Edge]:
    """The whole path of a message: chat-server nodes relay it through Kafka to chat-archive,
    and nginx routes ``/archive/`` to chat-archive."""
    tag = uuid.uuid4().hex[:8]
    topic = f"archive-{tag}"
    archive_port = free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap, "MONGO_URL": mongo_wire.url,
           "MONGO_DB": f"archive_{tag}", "ARCHIVE_TOPIC": topic, "ARCHIVE_DLQ_TOPIC": f"{topic}-dlq",
           "ARCHIVE_GROUP_ID": f"group-{tag}", "JWT_PUBLIC_KEY_FILE": str(key_dir / "jwt.pub.pem"),
           "ARCHIVE_HOST": "127.0.0.1", "ARCHIVE_PORT": str(archive_port)}
    # the nodes first: chat-archive asks them about access (any of them, in order)
    nodes = _spawn_nodes(harness, web_dist, KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap, ARCHIVE_TOPIC=topic,
                         HOT_RETENTION="1s", RELAY_INTERVAL="200ms", ARCHIVE_URL=f"http://127.0.0.1:{archive_port}")
    env["CHAT_SERVER_URL"] = ",".join(n.base_url for n in nodes.values())
    log = tmp_path / "chat-archive.log"
    with open(log, "ab") as out:
        archive = subprocess.Popen([sys.executable, "-m", "archive"], env=env, cwd=REPO_ROOT, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    nginx: Nginx | None = None
    try:
        wait_until(lambda: port_open(archive_port), 30, "chat-archive", archive, log)
        nginx = Nginx(_dir(tmp_path / "nginx"), [n.port for n in nodes.values()], archive_port).start()
        yield Edge(nginx, nodes)
    finally:
        if nginx is not None:
            nginx.stop()
        archive.terminate()
        archive.wait(15)
