"""The server's Prometheus metrics: requests and errors, latency, batch sizes, throughput.

Each app has its own registry (several apps can live in one process, as in the tests);
`GET /metrics` renders it in the Prometheus text format.
"""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    def __init__(self, window_s: float = 60.0) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "seq2seq_requests",
            "HTTP requests answered, by path and status code",
            ["path", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "seq2seq_request_errors",
            "Requests answered with an error, by kind (4xx: the request; 5xx: the server)",
            ["kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "seq2seq_request_latency_seconds",
            "Time from request to answer, by path",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_sizes = Histogram(
            "seq2seq_batch_sentences",
            "Sentences decoded together in one batch",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.sentences = Counter(
            "seq2seq_sentences", "Sentences translated", ["model"], registry=self.registry
        )
        self.throughput = Gauge(
            "seq2seq_sentences_per_second",
            f"Sentences translated per second over the last {window_s:.0f} s",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "seq2seq_translations_in_flight",
            "Translation requests received and not yet answered",
            registry=self.registry,
        )
        self.window_s = window_s
        self.recent: deque[tuple[float, int]] = deque()

    def batch_done(self, model: str, sentences: int) -> None:
        self.batch_sizes.labels(model).observe(sentences)
        self.sentences.labels(model).inc(sentences)
        now = time.monotonic()
        self.recent.append((now, sentences))
        while self.recent and self.recent[0][0] < now - self.window_s:
            self.recent.popleft()

    def render(self) -> bytes:
        now = time.monotonic()
        while self.recent and self.recent[0][0] < now - self.window_s:
            self.recent.popleft()
        self.throughput.set(sum(n for _, n in self.recent) / self.window_s)
        return generate_latest(self.registry)
