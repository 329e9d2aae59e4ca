"""The REST contract, fuzzed: schemathesis against the live services' own OpenAPI documents.

A chat-server (``create_app`` on the test PostgreSQL and Redis, WhatsApp pointed at the local
Graph API fake) and a chat-archive (real Kafka and FerretDB, asking that chat-server about
access) serve ``/api/v1/openapi.json`` and ``/archive/v1/openapi.json``. schemathesis runs every
check and every phase (examples, coverage, fuzzing, and the stateful phase that follows the
documents' links) with a fixed seed and a bounded number of examples per operation, once with
a user's token and once with an admin's, on loopback only. Any failure fails the test with
schemathesis's report, which prints a curl command reproducing each failing request.

Two operations are left out of the runs: ``logout_all`` would revoke the very token the run
uses, and so would a role change of the caller (``admin_set_role``), so the callers' ids are
moved far from the small integers a generator tries first (the users' id sequence starts at
10^12 before they register).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.archive.conftest import ArchiveEnv, start_archive
from tests.fakes.graph_api import GraphApiFake
from tests.support import Client, ServerHarness

SEED = 20240601
EXAMPLES = 12  # per operation and phase: the four runs take about two minutes on two cores
# each run is one test; with about 100 operations a run takes 1-2 minutes on a quiet two-core
# machine and several beside the suite's other workers (where it runs: its only real-time
# bound is schemathesis's 15 s per request), past the suite's default per-test timeout
pytestmark = [pytest.mark.timeout(900), pytest.mark.heavy]
RUN_TIMEOUT_S = 420.0
FAR_IDS = 10**12

# the limits a fuzzer would hit at once, raised for this server only (each is a per-user or
# per-IP count, and every request here comes from 127.0.0.1)
LOOSE_LIMITS = {
    "RATE_LIMIT_REGISTER_PER_MIN": "100000",
    "RATE_LIMIT_LOGIN_PER_MIN": "100000",
    "RATE_LIMIT_ROOMS_PER_HOUR": "100000",
    "RATE_LIMIT_WEBHOOK_PER_MIN": "100000",
    "RATE_LIMIT_EVENTS_PER_10S": "100000",
    "RATE_LIMIT_MESSAGES_PER_10S": "100000",
}


@pytest.fixture
async def graph() -> AsyncIterator[GraphApiFake]:
    fake = await GraphApiFake().start()
    yield fake
    await fake.stop()


CONFIG_FILE = Path(__file__).with_name("schemathesis.toml")


async def schemathesis(spec_url: str, token: str, *excluded_operations: str) -> tuple[int, str]:
    """Run the schemathesis CLI against ``spec_url``; (exit code, its report)."""
    args = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG_FILE), "run", spec_url, "--checks", "all", "--seed", str(SEED),
            "--max-examples", str(EXAMPLES), "--phases", "examples,coverage,fuzzing,stateful",
            "--header", f"Authorization: Bearer {token}", "--generation-database", "none",
            "--request-timeout", "15", "--no-color", "--output-truncate", "false"]
    for op in excluded_operations:
        args += ["--exclude-operation-id", op]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"})
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -1, out.decode(errors="replace") + "\n(schemathesis timed out)"
    return proc.returncode or 0, out.decode(errors="replace")


def cases_in(report: str) -> int:
    """The number of test cases a report says it generated."""
    found = re.findall(r"(\d+) generated", report)
    return int(found[-1]) if found else 0


async def far_ids(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"ALTER TABLE users ALTER COLUMN id RESTART WITH {FAR_IDS}")
    finally:
        await conn.close()


async def users(harness: ServerHarness) -> tuple[Client, Client]:
    node = harness.nodes[0]
    await far_ids(harness.database_url)
    return await harness.user(node), await harness.user(node, role="admin")


async def test_chat_server_answers_as_its_openapi_document_says(harness: ServerHarness, graph: GraphApiFake) -> None:
    harness.env.update(LOOSE_LIMITS)
    node = await harness.start_node(wa_graph_url=graph.base_url)
    user, admin = await users(harness)
    # login by WhatsApp code needs a business number to send from (the Graph API fake)
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": "100200300", "display_phone": "+1 555 000 1111", "access_token": "EAAG-token",
        "app_secret": "contract-secret", "verify_token": "contract-verify"}, expect=201)
    spec = node.base_url + "/api/v1/openapi.json"
    reports = []
    for who in (user, admin):
        code, report = await schemathesis(spec, who.tokens["access_token"], "logout_all", "admin_set_role")
        print(report)
        reports.append(report)
        assert code == 0, report
    print("chat-server cases:", [cases_in(r) for r in reports])


async def test_chat_archive_answers_as_its_openapi_document_says(harness: ServerHarness, archive_env: ArchiveEnv) -> None:
    harness.env.update(LOOSE_LIMITS)
    node = await harness.start_node()
    user, admin = await users(harness)
    # the fuzzer searches and exports far past a caller's allowance (per user: one user here)
    archive = await start_archive(archive_env.config(chat_server_url=node.base_url, ttl_days=3650.0,
                                                     searches_per_minute=0, exports_per_minute=0))
    try:
        spec = archive.base_url + "/archive/v1/openapi.json"
        reports = []
        for who in (user, admin):
            code, report = await schemathesis(spec, who.tokens["access_token"])
            print(report)
            reports.append(report)
            assert code == 0, report
        print("chat-archive cases:", [cases_in(r) for r in reports])
    finally:
        await archive.runner.cleanup()
