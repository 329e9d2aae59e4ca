"""A single-node Apache Kafka broker in KRaft mode, from the Maven Central jars
(``scripts/fetch-kafka.sh``) and the machine's Java."""

from __future__ import annotations

import base64
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .base import CACHE_DIR, REPO_ROOT, ManagedProcess, Service, ServiceError, free_port, port_open, wait_until

LIBS = CACHE_DIR / "kafka" / "libs"
LOG4J = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


def ensure_jars() -> Path:
    if not any(LIBS.glob("kafka_2.13-*.jar")):
        subprocess.run([str(REPO_ROOT / "scripts" / "fetch-kafka.sh")], check=True)
    return LIBS


def new_cluster_id() -> str:
    """A random cluster id as Kafka's own ``Uuid.randomUuid`` makes it: never starting with "-",
    which the storage tool's argument parser would take for an option (1 id in 64 did)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


class KafkaService(Service):
    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="chat-kafka-"))
        self.port = port or free_port()
        self.controller_port = free_port()
        self.cluster_id = new_cluster_id()
        self._proc: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, main: str, *args: str) -> list[str]:
        java = shutil.which("java") or "java"
        return [java, "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                f"-Dlog4j2.configurationFile={self.base_dir / 'log4j2.properties'}",
                "-cp", f"{ensure_jars()}/*", main, *args]

    def _write_config(self) -> Path:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        (self.base_dir / "log4j2.properties").write_text(LOG4J.format(log=self.base_dir / "kafka.log"))
        props = self.base_dir / "server.properties"
        props.write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self.base_dir / 'data'}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.flush.interval.messages=1",
            "",
        ]))
        return props

    def start(self) -> KafkaService:
        props = self.base_dir / "server.properties"
        if not (self.base_dir / "data" / "meta.properties").exists():
            props = self._write_config()
            r = subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c", str(props)),
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise ServiceError(f"kafka storage format failed: {r.stdout}{r.stderr}")
        self._proc = ManagedProcess("kafka", self._java("kafka.Kafka", str(props)), self.base_dir / "stdout.log")
        proc = self._proc.spawn()
        wait_until(lambda: port_open(self.port), 90, "kafka", proc, self.base_dir / "stdout.log")
        return self

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The broker SIGSTOPped for the block: its process and its TCP connections stay, nothing
        answers (a hung broker, which a refused connection does not show). SIGCONT on the way out,
        also when the block fails, so no later test finds the session's broker frozen."""
        assert self._proc is not None
        self._proc.signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._proc.signal(signal.SIGCONT)

    def cleanup(self) -> None:
        # its data is thrown away with it, so there is no controlled shutdown to wait for (a
        # broker's takes up to the stop timeout, paid at the end of every test worker)
        self.kill()
        super().cleanup()
