"""The five scenarios, each against a started ``Target`` (two nodes: against services it starts).

1. ``fanout``     N clients in one room, 10 senders, a ladder of offered deliveries/s
2. ``rooms``      many connections in rooms of 10, one message per room per second
3. ``idle``       server RSS growth per idle connection, measured at two counts on one process
4. ``persist``    chat-server: closed-loop ``message:send`` with acks through PostgreSQL, then
                  on the same PostgreSQL the Node+pg reference (``nodepg``) and the database's
                  own limit (``persist_refs.py``), then an open-loop ladder for chat-server
5. ``two_nodes``  fan-out with senders on node A and receivers split over A and B, compared
                  with all clients on A, on the same Redis (and PostgreSQL for chat-server)
6. ``slow``       chat-server only: clients that stop reading in a busy room with clients that
                  read; server RSS and the readers' latency with the outbound queue cap, and
                  with a cap too large to trip, for contrast

The load generator runs on ``Plan.loadgen_cpus``; servers and their services on
``Plan.server_cpus``. chat-server needs users and rooms made over REST first; the references
take any room id.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import persist_refs
from .loadgen import Loadgen
from .loadgen.coordinator import NOISY_CPU
from .targets import Target, pin_tree

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Plan:
    """Sizes for one run; ``quick()`` and ``full()`` are the two the harness offers."""

    clients: int
    rates: list[int]
    idle_counts: list[int]
    room_clients: int
    duration: float
    two_node_rates: list[int]
    persist_clients: int = 40
    persist_rates: list[int] = field(default_factory=lambda: [1000, 2000, 3000, 4000, 5000, 6000, 8000])
    senders: int = 10
    # ``slow``: clients in the room, of which ``slow_stalled`` stop reading; offered deliveries/s
    # over all clients; message body size (bytes; large, so a stalled client's buffers fill fast)
    # (the kernel takes up to tcp_wmem's maximum, 4 MiB here, for a stalled socket before the
    # server's queue grows at all: 20 msgs/s of 32 KB pass that and the 1 MiB cap in ~8 s)
    slow_clients: int = 200
    slow_stalled: int = 100
    slow_rate: int = 4000
    slow_size: int = 32_000
    slow_duration: float = 12.0
    loadgen_workers: int = 1
    repeat: int = 3  # rounds of every repeated scenario; the report gives the median and the spread
    knee_start: int = 10_000  # fan-out: the first offered deliveries/s of the knee search
    knee_precision: float = 0.10  # fan-out: bisect until the failing rate is within this of the passing one
    quiet_wait: float = 60.0  # seconds the harness waits (at most) for a quiet machine before each target
    server_cpus: list[int] = field(default_factory=lambda: [0])
    loadgen_cpus: list[int] = field(default_factory=lambda: [1])

    @staticmethod
    def quick() -> Plan:
        return Plan(clients=500, rates=[10_000, 20_000, 40_000, 60_000, 80_000, 100_000, 120_000, 140_000],
                    idle_counts=[1000, 2000], room_clients=2000, duration=3.0, two_node_rates=[10_000, 20_000],
                    persist_rates=[1000, 2000, 3000], knee_precision=0.2, quiet_wait=15.0)

    @staticmethod
    def full() -> Plan:
        return Plan(clients=1000, rates=[10_000, 20_000, 40_000, 60_000, 70_000, 80_000, 90_000, 100_000, 110_000,
                                         120_000, 135_000, 150_000, 175_000],
                    idle_counts=[5000, 10_000], room_clients=10_000, duration=4.0,
                    two_node_rates=[10_000, 20_000, 40_000], persist_rates=[1000, 2000, 3000, 4000, 6000, 8000])


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def wait_idle(target: Target, cores: float = 0.1, max_wait: float = 30.0) -> float:
    """Wait until the server (with its embedded PostgreSQL and Redis) is idle, e.g. done with
    the previous scenario's disconnects, presence expiry or autovacuum (bounded)."""
    from .loadgen.coordinator import tree_cpu_s

    pids = target.measured_pids()
    deadline = time.monotonic() + max_wait
    while True:
        u0, s0 = tree_cpu_s(pids)
        time.sleep(1.0)
        u1, s1 = tree_cpu_s(pids)
        busy = u1 - u0 + s1 - s0
        if busy < cores:
            return busy
        if time.monotonic() > deadline:
            say(f"   {target.name} still busy ({busy:.2f} cores) after {max_wait:.0f} s; going on")
            return busy


def spec(plan: Plan, target: Target, mode: str, clients: int, **extra: Any) -> dict[str, Any]:
    return {"mode": mode, "url": target.url, "clients": clients, "senders": plan.senders,
            "duration": plan.duration, "drain": 2.0, "workers": plan.loadgen_workers,
            "cpus": plan.loadgen_cpus, **extra}


def fanout_room(target: Target, users: int = 100) -> dict[str, Any]:
    """chat-server: ``users`` users (sockets share them) and one public room."""
    if target.name != "ours":
        return {"room": 1}
    tokens = target.register(users, "fan")
    return {"room": target.create_rooms(tokens[:1], "fanout")[0], "tokens": tokens}


GENERATOR_BOUND = 0.8  # load-generator cores above which a step measures the generator, not the server
P99_MS, DELIVERED = 50.0, 0.999


def measured_step(lg: Loadgen, target: Target, rate: int, label: str, retries: int = 2) -> dict[str, Any]:
    """One step after the server is idle again (an overloaded step leaves a backlog behind);
    repeated when it failed while other processes were busy; marked ``generator_bound`` when
    the load generator's own core was above ``GENERATOR_BOUND`` (its result is not counted)."""
    r: dict[str, Any] = {}
    for attempt in range(retries + 1):
        wait_idle(target)
        prev = r
        r = lg.step(rate)
        if attempt:
            r["retried_after_other_cpu"] = prev.get("other_cpu", 0)
        r["ok"] = r["p99_ms"] <= P99_MS and r["delivered_ratio"] >= DELIVERED and not r.get("lost")
        r["generator_bound"] = r["loadgen_cpu"] > GENERATOR_BOUND
        if r.get("lost"):
            # the server closed sessions (stock Engine.IO: a PONG processed more than
            # ping_timeout after its PING, i.e. an outbound backlog over 20 s): the step fails,
            # and the next one starts with a full set of fresh connections
            say(f"   {label} {rate}/s: the server closed {r['lost']} connections; reconnecting")
            lg.restart()
        if r["ok"] or r.get("other_cpu", 0) < NOISY_CPU:
            break
    say(f"   {label} {rate}/s: p50 {r['p50_ms']} p99 {r['p99_ms']} ms, delivered {r['delivered_ratio']}, cores: "
        f"loadgen {r['loadgen_cpu']:.2f} server {r.get('server_cpu', 0):.2f} other {r.get('other_cpu', 0):.2f} "
        f"(steal {r.get('steal_cpu', 0):.2f})"
        f"{' GENERATOR-BOUND' if r['generator_bound'] else ''}")
    return r


def knee(plan: Plan, lg: Loadgen, target: Target, label: str) -> list[dict[str, Any]]:
    """The sustainable fan-out rate, searched: double from ``plan.knee_start`` until a step
    fails (halve when the first fails), then bisect between the highest passing and the lowest
    failing rate until they are within ``plan.knee_precision``. A generator-bound step is not
    counted, and the search goes on below it as below a failure: the figure is then the highest
    rate at which this machine's generator still measured the server passing, a lower bound of
    the server's knee (the report says so)."""
    steps: list[dict[str, Any]] = []
    lo, hi = 0, 0
    rate = plan.knee_start
    floor = plan.knee_start // 16
    while True:
        r = measured_step(lg, target, rate, label)
        steps.append(r)
        if r["ok"] and not r["generator_bound"]:
            lo = rate
            if hi:
                break
            rate *= 2
        else:
            hi = rate
            if lo:
                break
            if rate <= floor:
                return steps
            rate //= 2
    while (hi - lo) / lo > plan.knee_precision:
        mid = int(round((lo + hi) / 2, -2))
        r = measured_step(lg, target, mid, label)
        steps.append(r)
        if r["ok"] and not r["generator_bound"]:
            lo = mid
        else:
            hi = mid
    return steps


def fanout(plan: Plan, target: Target, auth: dict[str, Any]) -> list[dict[str, Any]]:
    with Loadgen(spec(plan, target, "fanout", plan.clients, **auth), target.measured_pids()) as lg:
        wait_idle(target)  # connecting and joining leave work behind (presence, member events)
        return knee(plan, lg, target, f"{target.name} fanout")


def idle(plan: Plan, target: Target) -> list[dict[str, Any]]:
    """Connect in increments up to each count in ``plan.idle_counts`` (no room joins) and read
    the server's RSS after a settle: growth / connections, from a fresh process (so it includes
    whatever the runtime keeps after the handshakes), and the marginal cost per connection
    between two counts (heap already grown)."""
    extra: dict[str, Any] = {}
    if target.name == "ours":
        extra["tokens"] = target.register(100, "idle")  # users in no room: only the socket costs
    wait_idle(target)
    base = target.rss_kib()
    out: list[dict[str, Any]] = []
    held: list[Loadgen] = []
    done = 0
    try:
        for n in plan.idle_counts:
            lg = Loadgen(spec(plan, target, "idle", n - done, **extra))
            held.append(lg)
            lg.start(timeout=600)
            prev_n, prev_rss = (out[-1]["clients"], out[-1]["rss_kib"]) if out else (0, base)
            done = n
            time.sleep(5.0)
            rss = target.rss_kib()
            out.append({"clients": n, "rss_base_kib": base, "rss_kib": rss, "kib_per_conn": round((rss - base) / n, 2),
                        "marginal_kib_per_conn": round((rss - prev_rss) / (n - prev_n), 2)})
            say(f"   {target.name} idle {n}: {out[-1]['kib_per_conn']} KiB per connection")
    finally:
        for lg in held:
            lg.stop()
    return out


def rooms(plan: Plan, target: Target) -> dict[str, Any]:
    n, size = plan.room_clients, 10
    extra: dict[str, Any] = {"room_size": size, "connect_timeout": 120}
    if target.name == "ours":
        # one user per connection: a user's sockets all receive every room the user is in
        tokens = target.register(n, "small")
        extra["tokens"] = tokens
        extra["room_ids"] = target.create_rooms(tokens[: n // size], "small")  # client j created room j
    with Loadgen(spec(plan, target, "rooms", n, **extra), target.measured_pids()) as lg:
        wait_idle(target)
        r = lg.step()
    say(f"   {target.name} rooms {n}: p50 {r['p50_ms']} p99 {r['p99_ms']} ms, delivered {r['delivered_ratio']}")
    return r


def persist(plan: Plan, target: Target) -> dict[str, Any]:
    """Each client sends into its own room: the storage path, not the fan-out.

    On chat-server's own PostgreSQL, one after the other with the same clients, users and
    rooms: chat-server closed loop (one send in flight per client); the Node+pg reference
    closed loop (its own database, ``persist_refs.prepare_ref_db``); the database's limit,
    chat-server's insert statements straight from asyncpg, one per message and batched; then
    chat-server's open-loop ladder of offered messages/s (latency and loss show instead of a
    lower send rate)."""
    wait_idle(target)
    tokens = target.register(plan.persist_clients, "persist")
    own = target.create_rooms(tokens, "own", kind="private")
    data_dir = target.tmp / "data"
    user_ids = [token_user(t) for t in tokens]
    persist_refs.prepare_ref_db(data_dir, user_ids, own)
    pairs = [(u, r, f"persist{i}") for i, (u, r) in enumerate(zip(user_ids, own, strict=True))]
    pg = [persist_refs.postmaster_pid(data_dir)]
    sock, port = persist_refs.pg_socket(data_dir)
    from server.storage.messages import INSERT_MEMBER

    node = Target("nodepg", cpus=plan.server_cpus, env={
        "JWT_PUBLIC_KEY_FILE": str(data_dir / "keys" / "jwt-ed25519.pub.pem"), "INSERT_SQL": INSERT_MEMBER,
        "PGHOST": sock, "PGPORT": str(port), "PGUSER": "postgres", "PGDATABASE": "ref"})
    out: dict[str, Any] = {}
    try:
        ours_spec = spec(plan, target, "persist", plan.persist_clients, tokens=tokens, own_rooms=own)
        with Loadgen(ours_spec, target.measured_pids()) as lg:
            wait_idle(target)
            out["closed"] = lg.step()
            say(f"   ours persist, closed loop: {out['closed']['acks_s']} acks/s, p99 {out['closed']['p99_ms']} ms, "
                f"errors {out['closed']['errors']}, server cores {out['closed'].get('server_cpu', 0):.2f}")
            try:  # a reference that cannot start (no Node, no npm registry) costs its row only
                node.start()
                node_spec = spec(plan, node, "persist", plan.persist_clients, tokens=tokens, own_rooms=own)
                with Loadgen(node_spec, [node.pid, *pg]) as lgn:
                    wait_idle(target)
                    out["nodepg"] = lgn.step()
                say(f"   nodepg persist, closed loop: {out['nodepg']['acks_s']} acks/s, p99 {out['nodepg']['p99_ms']} "
                    f"ms, errors {out['nodepg']['errors']}, server cores {out['nodepg'].get('server_cpu', 0):.2f}")
            except Exception as exc:
                out["nodepg_error"] = f"{type(exc).__name__}: {str(exc)[:600]}"
                say(f"   nodepg failed: {out['nodepg_error']}")
            finally:
                node.stop()
            for key, batched in (("limit", False), ("limit_batched", True)):
                wait_idle(target)
                out[key] = persist_refs.db_limit(data_dir, pairs, plan.duration, batched)
                say(f"   database limit{' (batched)' if batched else ''}: {out[key]['acks_s']} inserts/s, "
                    f"p99 {out[key]['p99_ms']} ms, PostgreSQL cores {out[key]['server_cpu']:.2f}, "
                    f"client cores {out[key]['loadgen_cpu']:.2f}")
            wait_idle(target)
            out["open"] = lg.ladder(plan.persist_rates, label="ours persist msgs")
    finally:
        node.stop()
    return out


def token_user(token: str) -> int:
    """The user id (``sub``) of one of chat-server's access tokens, read without verifying."""
    import base64
    import json

    payload = token.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def two_nodes(plan: Plan, name: str) -> dict[str, Any]:
    """Nodes A and B of ``name`` on one Redis (+ PostgreSQL for chat-server), everything on the
    server CPUs: the same hardware as one node, the fan-out work split and the bus added."""
    sys.path.insert(0, str(ROOT))
    from tests.services import PostgresService, RedisService

    redis = RedisService().start()
    pg = PostgresService().start() if name == "ours" else None
    keys = Path(tempfile.mkdtemp(prefix="bench-keys-"))
    nodes: list[Target] = []
    try:
        for svc in (redis, pg):
            if svc is not None and svc._proc is not None and svc._proc.proc is not None:
                pin_tree(svc._proc.proc.pid, plan.server_cpus)
        env = {"REDIS_URL": redis.url}
        if pg is not None:
            from chatcore.tokens import generate_keypair

            generate_keypair(keys / "jwt.pem", keys / "jwt.pub.pem")
            pg.psql("CREATE DATABASE chat")
            env.update(DATABASE_URL=pg.dsn_for("chat"), JWT_PRIVATE_KEY_FILE=str(keys / "jwt.pem"),
                       JWT_PUBLIC_KEY_FILE=str(keys / "jwt.pub.pem"))
        for node_id in ("a", "b"):
            node_env = {**env, "CHAT_NODE_ID": node_id} if name == "ours" else env
            nodes.append(Target(name, env=node_env, cpus=plan.server_cpus).start())
            time.sleep(1.0)  # B starts after A has applied the schema
        a, b = nodes
        auth = fanout_room(a)
        pids = [*a.measured_pids(), *b.measured_pids(), redis._proc.proc.pid] + ([pg._proc.proc.pid] if pg and pg._proc and pg._proc.proc else [])  # type: ignore[union-attr]
        out: dict[str, Any] = {}
        for mode, url2 in (("one", ""), ("two", b.url)):
            with Loadgen(spec(plan, a, "fanout", plan.clients, url2=url2, **auth), pids) as lg:
                out[mode] = lg.ladder(plan.two_node_rates, p99_ms=1000.0, delivered=0.99, retries=1,
                                      label=f"{name} {mode} node(s)")
        return out
    finally:
        for t in nodes:
            t.stop()
        redis.cleanup()
        if pg is not None:
            pg.cleanup()
        shutil.rmtree(keys, ignore_errors=True)


# a cap no stalled client reaches in a run: the contrast (what the node does without the cap)
HUGE_CAP = {"WS_QUEUE_MAX_BYTES": str(1 << 40), "WS_QUEUE_MAX_PACKETS": str(1 << 40)}


def slow_consumers(plan: Plan) -> dict[str, Any]:
    """``plan.slow_stalled`` of ``plan.slow_clients`` clients in one room stop reading once
    joined; the others read while 10 senders send ``plan.slow_size``-byte messages at
    ``plan.slow_rate`` offered deliveries/s. Per queue cap (the default, and ``HUGE_CAP``): the
    server's RSS (before, peak during the step, after), the readers' latency and delivery, and
    the sessions dropped (``chat_slow_consumer_drops_total``). One fresh server per cap."""
    out: dict[str, Any] = {}
    for label, env in (("default cap", {}), ("huge cap", HUGE_CAP)):
        target = Target("ours", env={"MAX_MESSAGE_CHARS": str(plan.slow_size + 100), **env},
                        cpus=plan.server_cpus)
        try:
            target.start()
            auth = fanout_room(target)
            wait_idle(target)
            extra = {"stalled": plan.slow_stalled, "size": plan.slow_size, "duration": plan.slow_duration, **auth}
            with Loadgen(spec(plan, target, "fanout", plan.slow_clients, **extra), target.measured_pids()) as lg:
                wait_idle(target)
                before = target.rss_kib()
                with PeakRss(target) as peak:
                    r = lg.step(plan.slow_rate)
                after = target.rss_kib()
            r.update(rss_before_kib=before, rss_peak_kib=peak.kib, rss_after_kib=after,
                     drops=metric(target, "chat_slow_consumer_drops_total"), stalled=plan.slow_stalled,
                     size=plan.slow_size)
            out[label] = r
            say(f"   ours slow consumers, {label}: readers p50 {r['p50_ms']} p99 {r['p99_ms']} ms, delivered "
                f"{r['delivered_ratio']}, RSS {before // 1024} -> peak {peak.kib // 1024} MiB, drops {r['drops']:.0f}")
        finally:
            target.stop()
    return out


class PeakRss:
    """The highest RSS of the target's process, sampled every 100 ms while in the block."""

    def __init__(self, target: Target) -> None:
        self.target, self.kib = target, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.kib = max(self.kib, self.target.rss_kib())
            self._stop.wait(0.1)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def metric(target: Target, name: str) -> float:
    """One unlabelled sample from chat-server's /metrics (0 when absent)."""
    with urllib.request.urlopen(target.url + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def many_connections(target: Target, idle_n: int, active_n: int, duration: float, sources: list[str],
                     workers: int = 1, loadgen_cpus: list[int] | None = None) -> dict[str, Any]:
    """``idle_n`` idle connections and ``active_n`` active ones (rooms of 10, one message per room
    per second) on one server process, clients spread over the loopback ``sources`` (each has its
    own ephemeral port range). The server's RSS (fresh, with the idle connections, with all),
    its CPU while only idle connections are open (pings), and the active rooms' delivery latency,
    loss and server CPU over ``duration`` seconds."""
    from .loadgen.coordinator import tree_cpu_s

    cpus = loadgen_cpus if loadgen_cpus is not None else [1]
    base_spec = {"url": target.url, "senders": 0, "duration": duration, "drain": 2.0, "workers": workers,
                 "cpus": cpus, "sources": sources, "connect_timeout": 120}
    idle_extra: dict[str, Any] = {}
    active_extra: dict[str, Any] = {"room_size": 10}
    if target.name == "ours":
        idle_extra["tokens"] = target.register(100, "manyidle")  # users in no room: only the socket costs
        tokens = target.register(active_n, "manyact")  # one user per active connection
        active_extra["tokens"] = tokens
        active_extra["room_ids"] = target.create_rooms(tokens[: active_n // 10], "many")
    wait_idle(target)
    out: dict[str, Any] = {"idle": idle_n, "active": active_n, "sources": len(sources), "rss_base_kib": target.rss_kib()}
    t0 = time.monotonic()
    # connecting 50,000 clients takes minutes on a shared 2-core machine: the bound grows with the count
    connect_bound = 120 + (idle_n + active_n) / 50
    idle_lg = Loadgen({**base_spec, "mode": "idle", "clients": idle_n, **idle_extra})
    lg = Loadgen({**base_spec, "mode": "rooms", "clients": active_n, **active_extra}, target.measured_pids())
    try:
        idle_lg.start(timeout=connect_bound)
        out["idle_connect_s"] = round(time.monotonic() - t0, 1)
        wait_idle(target, max_wait=60)
        out["rss_idle_kib"] = target.rss_kib()
        (u0, s0), w0 = tree_cpu_s([target.pid]), time.monotonic()
        time.sleep(10.0)
        (u1, s1), w1 = tree_cpu_s([target.pid]), time.monotonic()
        out["idle_server_cpu"] = round((u1 - u0 + s1 - s0) / (w1 - w0), 3)  # the server process alone
        say(f"   {target.name} many: {idle_n} idle, RSS {out['rss_idle_kib'] // 1024} MiB, "
            f"idle CPU {out['idle_server_cpu']} cores")
        lg.start(timeout=connect_bound)
        wait_idle(target, max_wait=60)
        out["rss_connected_kib"] = target.rss_kib()
        with PeakRss(target) as peak:
            step = lg.step()
        out["rss_peak_kib"] = peak.kib
        out["kib_per_conn"] = round((out["rss_connected_kib"] - out["rss_base_kib"]) / (idle_n + active_n), 2)
    finally:
        lg.stop()
        idle_lg.stop()
    out["step"] = step
    say(f"   {target.name} many: {idle_n} idle + {active_n} active: p50 {step['p50_ms']} p99 {step['p99_ms']} ms, "
        f"delivered {step['delivered_ratio']}, server {step.get('server_cpu')} cores, RSS peak {peak.kib // 1024} MiB")
    return out
