"""The archive's real Kafka and FerretDB fixtures, shared with the contract tests."""

from tests.archive.conftest import archive_env, ferret, kafka

__all__ = ["archive_env", "ferret", "kafka"]
