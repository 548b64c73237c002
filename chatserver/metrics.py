"""Prometheus metrics of one app, in a registry of its own (tests run many apps)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .webhooks.delivery import DeliveryStats

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The server's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge("chat_connections", "Socket.IO connections open on this instance",
                                 registry=self.registry)
        self.rooms = Gauge("chat_rooms", "Rooms with at least one connection on this instance",
                           registry=self.registry)
        # per connection, counted rather than logged: a reconnect storm is one line per client otherwise
        self.connects = Counter("chat_connects_total", "Socket.IO connections accepted or refused by this instance",
                                ["result"], registry=self.registry)
        self.disconnects = Counter("chat_disconnects_total", "Socket.IO connections of this instance that ended",
                                   registry=self.registry)
        self.messages_in = Counter("chat_messages_in_total",
                                   "Messages acknowledged by this instance (a deduplicated retry counts again)",
                                   registry=self.registry)
        self.messages_out = Counter("chat_messages_out_total",
                                    "Message events this instance broadcast to rooms", registry=self.registry)
        self.errors = Counter("chat_errors_total", "Failure answers by error code", ["code"],
                              registry=self.registry)
        self.event_seconds = Histogram("chat_event_seconds", "Time to handle a client event, by event",
                                       ["event"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.http_seconds = Histogram("chat_http_seconds", "Time to answer an API request, by route",
                                      ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)

        self.store_up = Gauge("chat_store_up", "1 while the store (Redis, where configured) answers a ping",
                              registry=self.registry)
        self.draining = Gauge("chat_draining", "1 from SIGTERM on: /readyz answers 503 until the instance exits",
                              registry=self.registry)

    def track(self, connections: Callable[[], int], rooms: Callable[[], int], draining: Callable[[], bool],
              deliveries: Callable[[], Mapping[str, int]]) -> None:
        """Read the connection, room and draining gauges and the delivery counts from live
        state at scrape time."""
        self.connections.set_function(connections)
        self.rooms.set_function(rooms)
        self.draining.set_function(lambda: float(draining()))
        self.registry.register(_DeliveryCollector(deliveries))

    def track_webhooks(self, stats: DeliveryStats) -> None:
        """Export webhook delivery's counts and its queue's figures, read at scrape time."""
        self.registry.register(_WebhookCollector(stats))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class _DeliveryCollector(Collector):
    """`chat_deliveries_total{path}`: events handed to this instance's connections, written
    straight to a WebSocket (`direct`) or queued behind a backlog or for long-polling."""

    def __init__(self, read: Callable[[], Mapping[str, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("chat_deliveries", "Events delivered to connections, by path", labels=["path"])
        for path, count in sorted(self._read().items()):
            family.add_metric([path], count)
        yield family


class _WebhookCollector(Collector):
    """`chat_webhook_*`: attempts by result, retries, drops by reason, and what waits."""

    def __init__(self, stats: DeliveryStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._stats
        attempts = CounterMetricFamily("chat_webhook_attempts", "Webhook requests by result (delivered, refused, "
                                       "timeout, unreachable)", labels=["result"])
        for result in ("delivered", "refused", "timeout", "unreachable"):
            attempts.add_metric([result], stats.attempts.get(result, 0))
        yield attempts
        yield CounterMetricFamily("chat_webhook_retries", "Webhook attempts that were retries", value=stats.retries)
        dropped = CounterMetricFamily("chat_webhook_dropped", "Webhook events given up, by reason (expired: "
                                      "retried for WEBHOOK_RETRY_HOURS; queue_full: past WEBHOOK_MAX_QUEUE)",
                                      labels=["reason"])
        for reason in ("expired", "queue_full"):
            dropped.add_metric([reason], stats.dropped.get(reason, 0))
        yield dropped
        yield GaugeMetricFamily("chat_webhook_queue_length", "Webhook events waiting for delivery",
                                value=stats.queue_length)
        yield GaugeMetricFamily("chat_webhook_oldest_age_seconds", "Age of the oldest webhook event waiting "
                                "(0 when none waits)", value=stats.oldest_age)
