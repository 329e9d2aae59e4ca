"""Campaign sending throughput against the fake Graph API: ``python -m bench.campaign_send``.

Starts the fake Graph API (``tests/fakes/graph_api.py``) and one chat-server (the embedded
default: its own PostgreSQL and Redis) with pacing off (``WA_SEND_INTERVAL_S=0``, a tier limit
no run reaches), makes an admin, a number and an approved template, uploads a CSV of
``--recipients`` rows and starts the campaign; then measures recipients per second from the
first send at the fake to the campaign's completion, and checks that every recipient reached
the fake exactly once. Prints one Markdown line. About a minute with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from tests.fakes.graph_api import GraphApiFake
from tests.services.base import REPO_ROOT, free_port, port_open, wait_until

PASSWORD = "bench password 1"


async def run(recipients: int) -> None:
    graph = await GraphApiFake().start()
    graph.set_templates("1", [{"name": "bench", "language": "en", "status": "APPROVED", "category": "UTILITY",
                               "components": [{"type": "BODY", "text": "Hello {{1}}"}]}])
    port = free_port()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-campaign-") as tmp:
            env = {**os.environ, "CHAT_DATA_DIR": tmp, "CHAT_PORT": str(port), "BUILD_WEB": "false",
                   "AI_PROVIDER": "offline", "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024",
                   "ARGON2_INSECURE_TEST_PARAMS": "true", "LOG_LEVEL": "WARNING", "WA_GRAPH_URL": graph.base_url,
                   "WA_SEND_INTERVAL_S": "0", "WA_TIER_LIMIT_PER_DAY": "100000000", "CHAT_ADMIN_PASSWORD": PASSWORD,
                   "CAMPAIGN_MAX_RECIPIENTS": str(max(recipients, 1))}
            log = Path(tmp) / "server.log"
            with open(log, "ab") as out:
                server = subprocess.Popen([sys.executable, "-m", "server"], env=env, cwd=REPO_ROOT,  # noqa: ASYNC220
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                wait_until(lambda: port_open(port), 120, "chat-server", server, log)
                await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "server", "create-admin", "bench"],
                                        env=env, cwd=REPO_ROOT, check=True, capture_output=True, timeout=120)
                rate, elapsed = await _drive(f"http://127.0.0.1:{port}", graph, recipients)
            finally:
                server.terminate()
                server.wait(30)
    finally:
        await graph.stop()
    print(f"| campaign send, pacing off | {recipients} recipients | {elapsed:.1f} s | {rate:.0f} recipients/s |"
          f" each exactly once at the fake |")


async def _drive(base: str, graph: GraphApiFake, n: int) -> tuple[float, float]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        async with http.post(base + "/api/v1/auth/login", json={"username": "bench", "password": PASSWORD}) as r:
            auth = {"Authorization": f"Bearer {(await r.json())['access_token']}"}

        async def call(method: str, path: str, **kw: object) -> dict[str, object]:
            async with http.request(method, base + path, headers=auth, **kw) as r:  # type: ignore[arg-type]
                body = await r.json()
                assert r.status < 300, body
                return body  # type: ignore[no-any-return]

        account = await call("POST", "/api/v1/admin/wa/accounts", json={
            "phone_number_id": "PNBENCH", "display_phone": "+1 555 0100", "access_token": "t", "app_secret": "s",
            "verify_token": "v"})
        account_id = account["account"]["id"]  # type: ignore[index]
        await call("POST", f"/api/v1/wa/accounts/{account_id}/templates/sync", json={"waba_id": "1"})
        created = await call("POST", "/api/v1/campaigns", json={"account_id": account_id, "name": "bench",
                                                                "template": "bench", "language": "en",
                                                                "variables": ["name"]})
        cid = created["campaign"]["id"]  # type: ignore[index]
        csv_text = "phone,name\n" + "".join(f"+4915{i:09d},N{i}\n" for i in range(n))
        await call("PUT", f"/api/v1/campaigns/{cid}/recipients", data=csv_text.encode())
        await call("POST", f"/api/v1/campaigns/{cid}/start")
        deadline = time.monotonic() + 600
        while (await call("GET", f"/api/v1/campaigns/{cid}"))["campaign"]["status"] != "completed":  # type: ignore[index]
            assert time.monotonic() < deadline, "the campaign did not complete in 10 minutes"
            await asyncio.sleep(0.2)
        done = time.monotonic()
    sends = graph.sends()
    assert len(sends) == n and set(Counter(s.json["to"] for s in sends).values()) == {1}
    elapsed = max(s.at for s in sends) - min(s.at for s in sends)
    return n / max(elapsed, 1e-9), done - min(s.at for s in sends)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.campaign_send")
    p.add_argument("--recipients", type=int, default=10_000)
    a = p.parse_args()
    asyncio.run(run(a.recipients))


if __name__ == "__main__":
    main()
