"""The one immutable settings object, built from environment variables and flags."""

from __future__ import annotations

import argparse
import functools
import ipaddress
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from .backplane.topology import Topology, topology_of

Transport = Literal["polling", "websocket"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]
EventLoop = Literal["uvloop", "asyncio"]
ShardedPubSub = Literal["auto", "off"]
SECRET_MIN_LENGTH = 32
# The contract: a retried client_id is recognised for 10 minutes, and a user whose
# instance died leaves `members` within 60 seconds.
DEDUPE_TTL_MIN = 600.0
PRESENCE_DEADLINE = 60.0
API_KEY_MIN_LENGTH = 16
ALL_TRANSPORTS: tuple[Transport, ...] = ("polling", "websocket")


class SettingsError(ValueError):
    """A setting has a bad value; the message is one line naming the setting."""


@dataclass(frozen=True)
class Settings:
    """Everything an instance is configured with; validated once at construction."""

    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None
    secret_key: str | None = None
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    transports: tuple[Transport, ...] = ALL_TRANSPORTS
    history_size: int = 1000
    max_message_length: int = 4000
    rate_limit: int = 30
    rate_window: float = 10.0
    typing_rate: float = 1.0  # typing notices per second and connection, after a burst of typing_burst
    typing_burst: int = 10
    max_connections_per_address: int = 200
    max_rooms_per_connection: int = 100
    max_backlog: int = 1000  # packets waiting for a client that does not read; past it, it is cut off
    max_backlog_bytes: int = 1 << 20  # bytes written to a client and not yet read; past it, it is cut off
    max_frame_bytes: int = 1_000_000  # largest Socket.IO frame or HTTP body read; Node's default too
    trusted_proxies: tuple[str, ...] = ()
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "text"
    event_loop: EventLoop = "uvloop"  # asyncio's own loop when uvloop cannot be imported
    gc_threshold: int = 50_000  # allocations between collections of Python's youngest generation
    dedupe_ttl: float = 600.0
    token_lifetime: float = 7 * 24 * 3600.0
    join_history: int = 50
    shutdown_delay: float = 0.0  # after SIGTERM, /readyz answers 503 this long before connections close
    shutdown_timeout: float = 3.0  # after clients are sent away, in-flight handlers get this long
    presence_heartbeat: float = 5.0  # seconds between an instance's heartbeats
    presence_expiry: float = 20.0  # silence after which an instance's users are dropped
    ping_interval: float = 25.0  # seconds between Engine.IO pings (Socket.IO's default)
    ping_timeout: float = 20.0  # seconds a client has to answer a ping before its connection is closed
    connect_timeout: float = 45.0  # seconds a session has to connect to /chat before it is closed (Node's default)
    channel_linger: float = 5.0  # seconds a room's channel stays subscribed after its last local connection left
    sharded_pubsub: ShardedPubSub = "auto"  # auto: SSUBSCRIBE/SPUBLISH where Redis has them (7 and later)

    @functools.cached_property
    def topology(self) -> Topology:
        """Where shared state lives, from `redis_url` (worked out once, see `topology_of`)."""
        return topology_of(self.redis_url)

    def __post_init__(self) -> None:
        _check(bool(self.host), "HOST", "must not be empty")
        _check(1 <= self.port <= 65535, "PORT", "must be 1..65535")
        _check(1 <= self.history_size <= 1_000_000, "HISTORY_SIZE", "must be 1..1000000")
        _check(1 <= self.max_message_length <= 100_000, "MAX_MESSAGE_LENGTH", "must be 1..100000")
        _check(1 <= self.rate_limit <= 100_000, "RATE_LIMIT", "must be 1..100000")
        _check(1 <= self.max_connections_per_address <= 1_000_000, "MAX_CONNECTIONS_PER_ADDRESS",
               "must be 1..1000000")
        _check(1 <= self.max_rooms_per_connection <= 10_000, "MAX_ROOMS_PER_CONNECTION", "must be 1..10000")
        _check(10 <= self.max_backlog <= 1_000_000, "MAX_BACKLOG", "must be 10..1000000")
        _check(65_536 <= self.max_backlog_bytes <= 1 << 30, "MAX_BACKLOG_BYTES", "must be 65536..1073741824")
        _check(65_536 <= self.max_frame_bytes <= 100_000_000, "MAX_FRAME_BYTES", "must be 65536..100000000")
        _check(self.max_frame_bytes >= self.max_message_length * 12 + 4096, "MAX_FRAME_BYTES",
               "must hold a maximal message JSON-escaped (12 bytes a character, plus 4096): "
               f"at least {self.max_message_length * 12 + 4096} for MAX_MESSAGE_LENGTH={self.max_message_length}")
        _check(0.1 <= self.rate_window <= 86_400, "RATE_WINDOW", "must be 0.1..86400 seconds")
        _check(0.01 <= self.typing_rate <= 1000, "TYPING_RATE", "must be 0.01..1000 per second")
        _check(1 <= self.typing_burst <= 10_000, "TYPING_BURST", "must be 1..10000")
        _check(DEDUPE_TTL_MIN <= self.dedupe_ttl <= 7 * 86_400, "DEDUPE_TTL",
               f"must be {DEDUPE_TTL_MIN:.0f}..604800 seconds (the contract promises 10 minutes)")
        _check(60 <= self.token_lifetime <= 365 * 86_400, "TOKEN_LIFETIME", "must be 60..31536000 seconds")
        _check(0 <= self.shutdown_delay <= 3600, "SHUTDOWN_DELAY", "must be 0..3600 seconds")
        _check(0 <= self.shutdown_timeout <= 3600, "SHUTDOWN_TIMEOUT", "must be 0..3600 seconds")
        _check(self.presence_heartbeat >= 0.1 and 2 * self.presence_heartbeat <= self.presence_expiry,
               "PRESENCE_HEARTBEAT", "must be at least 0.1 seconds and at most half of PRESENCE_EXPIRY")
        _check(self.presence_expiry + self.presence_heartbeat <= PRESENCE_DEADLINE, "PRESENCE_EXPIRY",
               f"plus PRESENCE_HEARTBEAT must be at most {PRESENCE_DEADLINE:.0f} seconds "
               "(the contract drops a dead instance's users within a minute)")
        for proxy in self.trusted_proxies:
            _check(_is_network(proxy), "TRUSTED_PROXIES", f"{proxy!r} is not an IP address or network")
        _check(self.log_level in get_args(LogLevel), "LOG_LEVEL", f"must be one of {', '.join(get_args(LogLevel))}")
        _check(self.log_format in get_args(LogFormat), "LOG_FORMAT", "must be text or json")
        _check(self.event_loop in get_args(EventLoop), "EVENT_LOOP", "must be uvloop or asyncio")
        _check(1 <= self.ping_interval <= 600, "PING_INTERVAL", "must be 1..600 seconds")
        _check(1 <= self.ping_timeout <= 600, "PING_TIMEOUT", "must be 1..600 seconds")
        _check(1 <= self.connect_timeout <= 600, "CONNECT_TIMEOUT", "must be 1..600 seconds")
        _check(0 <= self.channel_linger <= 3600, "CHANNEL_LINGER", "must be 0..3600 seconds")
        _check(self.sharded_pubsub in get_args(ShardedPubSub), "SHARDED_PUBSUB", "must be auto or off")
        _check(100 <= self.gc_threshold <= 10_000_000, "GC_THRESHOLD", "must be 100..10000000")
        _check(bool(self.transports) and set(self.transports) <= set(ALL_TRANSPORTS),
               "TRANSPORTS", "must be a comma-separated list of polling, websocket")
        if self.secret_key is not None:
            _check(len(self.secret_key) >= SECRET_MIN_LENGTH, "SECRET_KEY",
                   f"must be at least {SECRET_MIN_LENGTH} characters")
        if self.api_key is not None:
            _check(len(self.api_key) >= API_KEY_MIN_LENGTH, "API_KEY",
                   f"must be at least {API_KEY_MIN_LENGTH} characters")
        if self.redis_url is not None:
            try:
                topology_of(self.redis_url)
            except ValueError as error:
                raise SettingsError(f"REDIS_URL {error}") from None
            _check(self.secret_key is not None, "SECRET_KEY",
                   "is required when REDIS_URL is set, so that all instances accept the same tokens")
        for origin in self.cors_origins:
            _check(origin == "*" or origin.startswith(("http://", "https://")), "CORS_ORIGINS",
                   f"{origin!r} is not an origin such as https://chat.example.com")


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _check(ok: bool, name: str, problem: str) -> None:
    if not ok:
        raise SettingsError(f"{name} {problem}")


# name, type, help; the flag is --name-in-kebab-case
_OPTIONS: tuple[tuple[str, type, str], ...] = (
    ("HOST", str, "address to listen on"),
    ("PORT", int, "port to listen on"),
    ("REDIS_URL", str, "Redis for shared state and fan-out; unset: embedded single instance"),
    ("SECRET_KEY", str, "HS256 key that signs user tokens"),
    ("API_KEY", str, "bearer key for POST /api/rooms/{room}/messages"),
    ("CORS_ORIGINS", str, "comma-separated origins allowed besides the same origin"),
    ("TRANSPORTS", str, "polling,websocket (default) or websocket"),
    ("HISTORY_SIZE", int, "messages kept per room"),
    ("MAX_MESSAGE_LENGTH", int, "characters per message"),
    ("RATE_LIMIT", int, "messages per user per RATE_WINDOW"),
    ("RATE_WINDOW", float, "seconds over which RATE_LIMIT counts"),
    ("TYPING_BURST", int, "typing notices a connection may send at once"),
    ("TYPING_RATE", float, "typing notices per second and connection after the burst"),
    ("DEDUPE_TTL", float, "seconds a message's client_id is remembered (at least 600)"),
    ("TOKEN_LIFETIME", float, "seconds a token from POST /api/session is valid"),
    ("PRESENCE_HEARTBEAT", float, "seconds between an instance's presence heartbeats"),
    ("PRESENCE_EXPIRY", float, "seconds of silence after which an instance's users are dropped"),
    ("LOG_LEVEL", str, "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ("LOG_FORMAT", str, "text (key=value) or json (one object per line)"),
    ("EVENT_LOOP", str, "uvloop (default, where it installs) or asyncio"),
    ("GC_THRESHOLD", int, "allocations between collections of Python's youngest generation"),
    ("MAX_FRAME_BYTES", int, "largest Socket.IO frame or HTTP body read; a larger one closes the connection"),
    ("MAX_CONNECTIONS_PER_ADDRESS", int, "open connections one client address may hold"),
    ("MAX_ROOMS_PER_CONNECTION", int, "rooms one connection may have joined at once"),
    ("MAX_BACKLOG", int, "packets queued for a client that does not read before it is cut off"),
    ("MAX_BACKLOG_BYTES", int, "bytes written to a client that does not read before it is cut off"),
    ("TRUSTED_PROXIES", str, "comma-separated proxy addresses/networks whose X-Forwarded-For is believed"),
    ("SHUTDOWN_DELAY", float, "seconds /readyz answers 503 after SIGTERM before connections close"),
    ("SHUTDOWN_TIMEOUT", float, "seconds in-flight handlers get after connections close"),
    ("PING_INTERVAL", float, "seconds between Engine.IO pings to each client"),
    ("PING_TIMEOUT", float, "seconds a client has to answer a ping before its connection is closed"),
    ("CONNECT_TIMEOUT", float, "seconds a new session has to connect to /chat before it is closed"),
    ("CHANNEL_LINGER", float, "seconds a room's Redis channel stays subscribed after its last local member left"),
    ("SHARDED_PUBSUB", str, "auto (sharded pub/sub where Redis has it, 7 and later) or off (classic pub/sub)"),
)

SETTING_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _OPTIONS)


def load_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Settings from flags (which win) and environment variables.

    Raises `SettingsError` with a one-line message naming the first bad setting.
    """
    parser = argparse.ArgumentParser(prog="python -m chatserver", description="Socket.IO chat server")
    for name, _, help_text in _OPTIONS:
        parser.add_argument("--" + name.lower().replace("_", "-"), dest=name, help=f"{help_text} (env {name})")
    flags = vars(parser.parse_args(list(argv)))
    raw = {name: flags[name] if flags[name] is not None else environ.get(name) for name, _, _ in _OPTIONS}
    values: dict[str, object] = {}
    for name, kind, _ in _OPTIONS:
        text = raw[name]
        if text is None or text == "":
            continue
        if kind is str:
            values[name.lower()] = text
            continue
        try:
            values[name.lower()] = kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise SettingsError(f"{name} must be {noun}, got {text!r}") from None
        if kind is float and not math.isfinite(float(text)):
            raise SettingsError(f"{name} must be a finite number, got {text!r}")
    if "cors_origins" in values:
        values["cors_origins"] = _split(str(values["cors_origins"]))
    if "trusted_proxies" in values:
        values["trusted_proxies"] = _split(str(values["trusted_proxies"]))
    if "transports" in values:
        values["transports"] = _split(str(values["transports"]).lower())
    if "log_level" in values:
        values["log_level"] = str(values["log_level"]).upper()
    for lowercase in ("log_format", "event_loop", "sharded_pubsub"):
        if lowercase in values:
            values[lowercase] = str(values[lowercase]).lower()
    return Settings(**values)  # type: ignore[arg-type]


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def log_level_number(settings: Settings) -> int:
    """The `logging` level for `settings.log_level`."""
    return logging.getLevelName(settings.log_level)  # type: ignore[no-any-return]
