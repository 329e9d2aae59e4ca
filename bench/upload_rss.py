"""Server memory while a large file is uploaded and downloaded: ``python -m bench.upload_rss``.

Starts one chat-server (the embedded default: its own PostgreSQL and Redis, the local file
store) in a temporary data directory, registers a user, then uploads a ``--mib`` MiB file
(default 25, the default MAX_UPLOAD_BYTES) ``--rounds`` times and downloads it back, sampling
the server process's RSS every 20 ms. Streaming means the RSS stays flat: it should not grow by
anything near the file's size. Prints one Markdown line per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import aiohttp
import psutil

from tests.services.base import REPO_ROOT, free_port, port_open, wait_until


def payload(mib: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("random.bin", os.urandom(mib * 1024 * 1024 - 200))  # under the limit with the zip envelope
    return out.getvalue()


async def sample(proc: psutil.Process, into: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        into.append(proc.memory_info().rss)
        await asyncio.sleep(0.02)


async def run(mib: int, rounds: int) -> None:
    data = payload(mib)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        env = {**os.environ, "CHAT_DATA_DIR": tmp, "CHAT_PORT": str(port), "BUILD_WEB": "false",
               "AI_PROVIDER": "offline", "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024",
               "ARGON2_INSECURE_TEST_PARAMS": "true", "LOG_LEVEL": "WARNING"}
        log = Path(tmp) / "server.log"
        with open(log, "ab") as out:
            server = subprocess.Popen([sys.executable, "-m", "server"], env=env, cwd=REPO_ROOT, stdout=out,  # noqa: ASYNC220
                                      stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: port_open(port), 120, "chat-server", server, log)
            base = f"http://127.0.0.1:{port}"
            proc = psutil.Process(server.pid)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
                async with http.post(base + "/api/v1/auth/register",
                                     json={"username": "bench", "password": "bench password 1"}) as r:
                    token = (await r.json())["access_token"]
                idle = proc.memory_info().rss
                rss: list[int] = []
                stop = asyncio.Event()
                sampler = asyncio.create_task(sample(proc, rss, stop))
                started = time.perf_counter()
                urls = []
                for i in range(rounds):
                    form = aiohttp.FormData()
                    form.add_field("file", data, filename=f"big-{i}.zip", content_type="application/zip")
                    async with http.post(base + "/api/v1/uploads", data=form,
                                         headers={"Authorization": f"Bearer {token}"}) as r:
                        body = await r.json()
                        assert r.status == 201, body
                        urls.append(body["url"])
                upload_s = time.perf_counter() - started
                up_peak = max(rss)
                for url in urls:
                    async with http.get(base + url) as r:
                        got = 0
                        async for chunk in r.content.iter_chunked(1 << 20):
                            got += len(chunk)
                        assert got == len(data)
                stop.set()
                await sampler
        finally:
            server.terminate()
            server.wait(30)
    mb = 1024 * 1024
    print(f"| upload {rounds} x {len(data) / mb:.1f} MiB | idle RSS {idle / mb:.1f} MiB | peak while uploading "
          f"{up_peak / mb:.1f} MiB (+{(up_peak - idle) / mb:.1f}) | peak with downloads {max(rss) / mb:.1f} MiB "
          f"(+{(max(rss) - idle) / mb:.1f}) | {rounds * len(data) / mb / upload_s:.0f} MiB/s up |")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.upload_rss")
    p.add_argument("--mib", type=int, default=25)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(run(a.mib, a.rounds))


if __name__ == "__main__":
    main()
