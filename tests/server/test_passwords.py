"""Password hashing: the Argon2id floor in configuration, and stored hashes brought up to the
configured parameters at login."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from server.config import ARGON2_MIN_MEMORY_KIB, ARGON2_MIN_TIME_COST, Config, ConfigError
from tests.services import RedisService
from tests.services.base import REPO_ROOT, free_port
from tests.support import PASSWORD, ServerHarness


@pytest.mark.parametrize(("variable", "value"), [("ARGON2_TIME_COST", "1"), ("ARGON2_MEMORY_KIB", "1024")])
def test_config_refuses_argon2_below_the_owasp_minimum_and_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable) as info:
        Config.from_env({variable: value})
    assert "ARGON2_INSECURE_TEST_PARAMS" in str(info.value)
    with pytest.raises(ConfigError, match=variable):
        Config.from_env({variable: value, "ARGON2_INSECURE_TEST_PARAMS": "false"})


def test_config_accepts_the_minimum_itself_and_lower_costs_only_with_the_test_flag() -> None:
    floor = Config.from_env({"ARGON2_TIME_COST": str(ARGON2_MIN_TIME_COST), "ARGON2_MEMORY_KIB": str(ARGON2_MIN_MEMORY_KIB)})
    assert (floor.argon2_time_cost, floor.argon2_memory_kib) == (2, 19456)
    low = Config.from_env({"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "ARGON2_INSECURE_TEST_PARAMS": "true"})
    assert (low.argon2_time_cost, low.argon2_memory_kib, low.argon2_insecure_test_params) == (1, 1024, True)


def _chat_server(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ARGON2_")}
    return subprocess.run([sys.executable, "-m", "server", *args], env={**base, **env}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=30)


def test_chat_server_stops_at_start_on_low_argon2_costs_and_warns_loudly_when_the_test_flag_allows_them(
        database_url: str, redis_service: RedisService, tmp_path: Path) -> None:
    # external services and a private data dir: a server that wrongly starts leaves nothing behind
    services = {"DATABASE_URL": database_url, "REDIS_URL": redis_service.url, "CHAT_DATA_DIR": str(tmp_path),
                "CHAT_HOST": "127.0.0.1", "CHAT_PORT": str(free_port()), "BUILD_WEB": "false", "AI_PROVIDER": "offline"}
    refused = _chat_server([], {**services, "ARGON2_TIME_COST": "1"})
    assert refused.returncode == 2 and "ARGON2_TIME_COST" in refused.stderr, refused.stderr
    allowed = _chat_server(["set-role", "nobody_here", "user"],
                           {**services, "ARGON2_TIME_COST": "1", "ARGON2_INSECURE_TEST_PARAMS": "true"})
    assert allowed.returncode == 0, allowed.stderr
    assert "no user named 'nobody_here'" in allowed.stdout
    assert "WARNING" in allowed.stderr and "ARGON2_INSECURE_TEST_PARAMS=true" in allowed.stderr


async def _login(h: ServerHarness, base: str, username: str, password: str) -> int:
    async with h.http.post(base + "/api/v1/auth/login", json={"username": username, "password": password}) as r:
        return r.status


async def _stored_hash(database_url: str, user_id: int) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        value = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)
    finally:
        await conn.close()
    assert isinstance(value, str)
    return value


async def test_a_hash_made_with_lower_costs_is_replaced_at_login_with_the_current_costs_and_still_logs_in(
        harness: ServerHarness) -> None:
    old_node = await harness.start_node()  # the suite's costs: t=1, m=1024
    alice = await harness.user(old_node)
    old_hash = await _stored_hash(harness.database_url, alice.id)
    assert "m=1024,t=1," in old_hash
    node = await harness.start_node(argon2_time_cost=2, argon2_memory_kib=2048)  # the costs were raised
    name = alice.user["username"]

    assert await _login(harness, node.base_url, name, "wrong password!") == 401
    assert await _stored_hash(harness.database_url, alice.id) == old_hash  # a failed login rehashes nothing

    assert await _login(harness, node.base_url, name, PASSWORD) == 200
    new_hash = await _stored_hash(harness.database_url, alice.id)
    assert new_hash.startswith("$argon2id$") and "m=2048,t=2," in new_hash

    assert await _login(harness, node.base_url, name, PASSWORD) == 200
    assert await _stored_hash(harness.database_url, alice.id) == new_hash  # once up to date, left alone
    assert await _login(harness, node.base_url, name, "wrong password!") == 401
