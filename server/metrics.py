"""Prometheus metrics, one registry per app (so tests can build several apps)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("chat_socket_connections", "Open Socket.IO connections on this node", registry=r)
        self.events = Counter("chat_socket_events_total", "Client events handled", ["event", "outcome"], registry=r)
        self.messages = Counter("chat_messages_total", "Messages stored", ["author_kind"], registry=r)
        # bound once: ``labels()`` costs several times the ``inc()``, on the path of every message
        self.user_messages = self.messages.labels("user")
        self.send_retries = Counter(
            "chat_message_send_retries_total",
            "message:send resends of a stored client_id, answered with the stored message (no second copy)",
            registry=r,
        )
        self.send_latency = Histogram(
            "chat_message_send_seconds",
            "message:send from receipt to ack (store + fan-out)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.http = Counter("chat_http_requests_total", "HTTP requests", ["route", "status"], registry=r)
        self.errors = Counter("chat_errors_total", "Errors by code", ["code"], registry=r)
        self.fanout_failures = Counter("chat_fanout_failures_total", "Fan-out publish failures", registry=r)
        self.sessions_ended = Counter(
            "chat_socket_sessions_ended_total",
            "Sockets the server ended because their authorisation ended (expired, revoked, logged_out)",
            ["reason"], registry=r,
        )
        self.slow_consumer_drops = Counter(
            "chat_slow_consumer_drops_total",
            "Sessions dropped because their outbound queue passed WS_QUEUE_MAX_BYTES or WS_QUEUE_MAX_PACKETS",
            registry=r,
        )
        self.connections_refused = Counter(
            "chat_connections_refused_total",
            "Engine.IO handshakes refused: the client address had MAX_CONNECTIONS_PER_IP sessions open",
            registry=r,
        )
        # the archive relay's outcomes (server/relay/relay.py), set from its counters
        self.relay = Counter("chat_relay_records_total",
                             "Archive relay: records acknowledged by Kafka, by kind (message, tombstone) and rows "
                             "kept hot because they changed between send and delete (kept_changed)",
                             ["kind"], registry=r)
        self.relay_abandoned = Counter("chat_relay_passes_abandoned_total",
                                       "Archive relay passes cut at their deadline (a hung Kafka or PostgreSQL); "
                                       "each one's connection was terminated and its producer rebuilt", registry=r)
        self.gc_pause = Histogram(
            "chat_gc_pause_seconds", "Garbage-collector pauses of the event loop, by generation", ["generation"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1), registry=r,
        )

        # read at scrape time, in the loop that serves /metrics: a count that keeps growing under
        # steady load is a leak (the soak in bench/soak.py watches it)
        self.tasks = Gauge("chat_asyncio_tasks", "asyncio tasks alive in the node's event loop", registry=r)
        self.tasks.set_function(_task_count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _task_count() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # no running loop (a registry read outside the app)
        return 0.0
