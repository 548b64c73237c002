"""The one immutable settings object, built from environment variables and flags.

Each setting is declared once, as a field of `Settings` made by `setting(...)`: its default,
its check, its meaning (the README's words, and `--help`'s) and how its text is read. The flag (`--name`), the
environment variable (`NAME`), the checks, `--help` and the README's table
(`settings_table`, compared with README.md by a test) all come from that declaration.
Fields made without `setting` are fixed, not configurable. Rules between settings are
checked in `Settings.__post_init__`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import ipaddress
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from .backplane.topology import Topology, topology_of

Transport = Literal["polling", "websocket"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]
EventLoop = Literal["uvloop", "asyncio"]
ShardedPubSub = Literal["auto", "off"]
Switch = Literal["on", "off"]
SECRET_MIN_LENGTH = 32
# The contract: a retried client_id is recognised for 10 minutes, and a user whose
# instance died leaves `members` within 60 seconds.
DEDUPE_TTL_MIN = 600.0
PRESENCE_DEADLINE = 60.0
API_KEY_MIN_LENGTH = 16
ALL_TRANSPORTS: tuple[Transport, ...] = ("polling", "websocket")

Check = Callable[[Any], str | None]  # the problem with a value, or None when it is fine
Read = Callable[[str], Any]  # a setting's text as its value; ValueError with the problem


class SettingsError(ValueError):
    """A setting has a bad value; the message is one line naming the setting."""


@dataclass(frozen=True)
class Declaration:
    """What `setting` records of one setting, beside its field's name and default."""

    meaning: str
    check: Check | None
    read: Read
    shown_default: str | None  # for the README, where the default is not the value itself


def setting(default: Any, meaning: str, *, check: Check | None = None, read: Read = str,
            shown_default: str | None = None) -> Any:
    """A field of `Settings` that is a setting (see the module's docstring)."""
    return dataclasses.field(default=default, metadata={"setting": Declaration(meaning, check, read, shown_default)})


# --- checks and readers, for the declarations ---------------------------------------

def between(low: float, high: float, unit: str = "") -> Check:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be {_plain(low)}..{_plain(high)}{unit}"
    return check


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def one_of(kind: Any) -> Check:
    choices = get_args(kind)
    return lambda value: None if value in choices else "must be one of " + ", ".join(choices)


def at_least(length: int) -> Check:
    return lambda value: None if value is None or len(value) >= length else f"must be at least {length} characters"


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be an integer, got {text!r}") from None


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {text!r}")
    return value


def words(text: str) -> tuple[str, ...]:
    """A comma-separated list."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def lower(text: str) -> str:
    return text.lower()


def _transports(values: tuple[str, ...]) -> str | None:
    return None if values and set(values) <= set(ALL_TRANSPORTS) else \
        "must be a comma-separated list of polling, websocket"


def _origins(values: tuple[str, ...]) -> str | None:
    for origin in values:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            return f"{origin!r} is not an origin such as https://chat.example.com"
    return None


def _key_set_url(url: str | None) -> str | None:
    """An https:// URL; http:// only on the loopback (a key set read in the clear could be forged)."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost"):
        return None
    return "must be an https:// URL (http:// only on the loopback)"


def _webhook_url(url: str | None) -> str | None:
    """An http:// or https:// URL with a host."""
    if url is None:
        return None
    parts = urlsplit(url)
    return None if parts.scheme in ("http", "https") and parts.hostname else "must be an http:// or https:// URL"


def _networks(values: tuple[str, ...]) -> str | None:
    for proxy in values:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            return f"{proxy!r} is not an IP address or network"
    return None


@dataclass(frozen=True)
class Settings:
    """Everything an instance is configured with; validated once at construction."""

    host: str = setting("127.0.0.1", "address to listen on", check=lambda v: None if v else "must not be empty")
    port: int = setting(8080, "port to listen on", check=between(1, 65535), read=integer)
    redis_url: str | None = setting(
        None, "Redis for shared state and fan-out: `redis://`, `rediss://` or `unix://` for one server, "
        "`redis+sentinel://[user:password@]host:port[,host:port…]/service_name` for the master Sentinel names, "
        "`redis+cluster://[user:password@]host:port[,host:port…]` for a Redis Cluster by its seed nodes "
        "(see `deploy/README.md`); unset means embedded single-instance mode")  # checked as `topology`
    secret_key: str | None = setting(
        None, f"HS256 key for user tokens, at least {SECRET_MIN_LENGTH} characters; required with `REDIS_URL`",
        check=at_least(SECRET_MIN_LENGTH), shown_default="random (a warning is logged)")
    jwt_issuer: str | None = setting(
        None, "when set, every token (HS256 included) must carry this `iss`; tokens from `POST /api/session` do")
    jwt_audience: str | None = setting(
        None, "when set, every token must name this audience in `aud`; tokens from `POST /api/session` do")
    jwt_jwks_url: str | None = setting(
        None, "URL of the app's identity provider's JSON Web Key Set: tokens signed with RS256, ES256 or EdDSA by "
        "a key listed there (by `kid`) are accepted too; fetched at start and again (at most every 30 s) when a "
        "token names an unknown key; needs `JWT_ISSUER` and `JWT_AUDIENCE`", check=_key_set_url)
    token_refresh_notice: float = setting(
        60.0, "seconds before a connection's token expires that the server sends it `token_expiring`",
        check=between(1, 86_400, " seconds"), read=number)
    anonymous_sessions: Switch = setting(
        "on", "`off` answers `POST /api/session` (and its renewal) `404 not_found`, for apps whose users all sign "
        "in and get their tokens from the app", check=one_of(Switch), read=lower)
    api_key: str | None = setting(
        None, f"bearer key for `POST /api/rooms/{{room}}/messages`, at least {API_KEY_MIN_LENGTH} characters; "
        "unset turns that route off (404)", check=at_least(API_KEY_MIN_LENGTH))
    cors_origins: tuple[str, ...] = setting(
        (), "comma-separated extra origins allowed to open a Socket.IO connection or call `/api/` from a browser "
        "(`*` allows any)", check=_origins, read=words, shown_default="same origin only")
    transports: tuple[Transport, ...] = setting(
        ALL_TRANSPORTS, "`websocket` runs behind a balancer without sticky sessions", check=_transports,
        read=lambda text: words(text.lower()))
    history_size: int = setting(1000, "messages kept per room", check=between(1, 1_000_000), read=integer)
    max_message_length: int = setting(4000, "characters per message, after trimming", check=between(1, 100_000),
                                      read=integer)
    rate_limit: int = setting(30, "messages per user per `RATE_WINDOW`, counted over all of the user's "
                              "connections and instances", check=between(1, 100_000), read=integer)
    rate_window: float = setting(10.0, "seconds over which `RATE_LIMIT` counts (a sliding window)",
                                 check=between(0.1, 86_400, " seconds"), read=number)
    typing_burst: int = setting(10, "`typing` notices one connection may send at once", check=between(1, 10_000),
                                read=integer)
    typing_rate: float = setting(1.0, "`typing` notices per second and connection after the burst; past it, "
                                 "`rate_limited`", check=between(0.01, 1000, " per second"), read=number)
    dedupe_ttl: float = setting(
        600.0, "seconds a message's `client_id` is remembered, so a retry is not stored twice; at least 600, "
        "as the contract promises 10 minutes",
        check=between(DEDUPE_TTL_MIN, 7 * 86_400, " seconds (the contract promises 10 minutes)"), read=number)
    token_lifetime: float = setting(
        7 * 24 * 3600.0, "seconds a token from `POST /api/session` stays valid (7 days); an expired token can be "
        "renewed for the same user for as long again (`POST /api/session/renew`)",
        check=between(60, 365 * 86_400, " seconds"), read=number)
    presence_heartbeat: float = setting(
        5.0, "seconds between an instance's presence heartbeats (Redis mode); at most half of `PRESENCE_EXPIRY`",
        read=number)
    presence_expiry: float = setting(
        20.0, "seconds of silence after which another instance drops a dead instance's users; with the heartbeat "
        "at most 60, as the contract drops them within a minute", read=number)
    log_level: LogLevel = setting("INFO", "`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`", check=one_of(LogLevel),
                                  read=str.upper)
    log_format: LogFormat = setting(
        "text", "`text`: `time level logger message key=value ...`; `json`: one object per line with the same "
        "fields (`time`, `level`, `logger`, `message`, then the fields) for log shippers",
        check=lambda v: None if v in get_args(LogFormat) else "must be text or json", read=lower)
    max_frame_bytes: int = setting(
        1_000_000, "largest Socket.IO frame or HTTP body read (Node's Socket.IO default); anything up to it is "
        "answered, a text too long with `too_large`; a WebSocket frame past it closes the connection, a body past "
        "it gets `413 too_large`; at least 12 × `MAX_MESSAGE_LENGTH` + 4096, so that a maximal message, "  # noqa: RUF001
        "JSON-escaped, always gets its answer", check=between(65_536, 100_000_000), read=integer)
    max_connections_per_address: int = setting(
        200, "open connections one client address may hold; a handshake past it gets `429 rate_limited`",
        check=between(1, 1_000_000), read=integer)
    max_rooms_per_connection: int = setting(
        100, "rooms one connection may be in at once; the next `join` gets `forbidden`", check=between(1, 10_000),
        read=integer)
    max_backlog: int = setting(
        1000, "packets waiting for a client that does not read; past it the connection is cut (the client "
        "recovers with `since`)", check=between(10, 1_000_000), read=integer)
    max_backlog_bytes: int = setting(
        1 << 20, "bytes written to a client's connection and not yet read by it; past it the connection is cut "
        "(the client recovers with `since`)", check=between(65_536, 1 << 30), read=integer)
    event_loop: EventLoop = setting(
        "uvloop", "`uvloop`, or `asyncio` for the standard library's loop; where uvloop cannot be imported the "
        "server logs a warning and uses `asyncio`",
        check=lambda v: None if v in get_args(EventLoop) else "must be uvloop or asyncio", read=lower)
    gc_threshold: int = setting(
        50_000, "allocations between collections of Python's youngest generation (Python's default is 700, which "
        "cost a third of a busy instance's time in the 1,000-room benchmark)", check=between(100, 10_000_000),
        read=integer)
    trusted_proxies: tuple[str, ...] = setting(
        (), "comma-separated addresses or networks of your reverse proxies; only from them is `X-Forwarded-For` "
        "believed (set it behind nginx, or every user shares the proxy's address and its connection cap)",
        check=_networks, read=words)
    shutdown_delay: float = setting(
        0.0, "seconds between SIGTERM and closing connections, while `/readyz` answers 503 and everything else "
        "keeps serving, so a balancer takes the instance out first (10 on Kubernetes, see `deploy/README.md`)",
        check=between(0, 3600, " seconds"), read=number)
    shutdown_timeout: float = setting(3.0, "seconds in-flight handlers get after the connections are closed",
                                      check=between(0, 3600, " seconds"), read=number)
    ping_interval: float = setting(
        25.0, "seconds between Engine.IO pings to each client (Socket.IO's default); lower it behind proxies that "
        "close connections idle for less", check=between(1, 600, " seconds"), read=number)
    ping_timeout: float = setting(
        20.0, "seconds a client has to answer a ping; then its connection is closed and its presence ends",
        check=between(1, 600, " seconds"), read=number)
    connect_timeout: float = setting(
        45.0, "seconds a new Engine.IO session has to connect to `/chat` before it is closed (Node's default)",
        check=between(1, 600, " seconds"), read=number)
    channel_linger: float = setting(
        5.0, "Redis mode: seconds an instance keeps listening on a room's channel after its last connection in the "
        "room left (a reconnecting client is back within seconds; re-subscribing each time would be churn)",
        check=between(0, 3600, " seconds"), read=number)
    sharded_pubsub: ShardedPubSub = setting(
        "auto", "Redis mode: `auto` carries each room's channel on Redis 7 sharded pub/sub (`SSUBSCRIBE`/"
        "`SPUBLISH`, so a cluster spreads rooms over its shards) where Redis has it, and classic pub/sub on older "
        "Redis; `off` always uses classic pub/sub (for proxies that do not pass sharded commands). On a Redis "
        "Cluster (`redis+cluster://`) each instance then keeps a pub/sub connection to each master that owns a "
        "room it holds. All instances must agree",
        check=lambda v: None if v in get_args(ShardedPubSub) else "must be auto or off", read=lower)
    webhook_url: str | None = setting(
        None, "`http://` or `https://` URL the app's backend receives webhook events at (`message.created` with "
        "the members who were offline, `message.updated`, `member.added`, `member.removed`, `moderation`); "
        "unset: no webhooks. On Redis, one server or Sentinel's master (not yet a Cluster)", check=_webhook_url)
    webhook_secret: str | None = setting(
        None, f"key of each webhook request's HMAC-SHA256 signature, at least {SECRET_MIN_LENGTH} characters; "
        "required with `WEBHOOK_URL`", check=at_least(SECRET_MIN_LENGTH))
    webhook_timeout: float = setting(
        5.0, "seconds the receiver has to answer `2xx`; anything else is retried", check=between(0.1, 60, " seconds"),
        read=number)
    webhook_retry_hours: float = setting(
        24.0, "hours an event is retried (waits doubling from 1 s up to 5 min); then it is dropped and counted",
        check=between(0.0001, 24 * 30, " hours"), read=number)
    webhook_max_queue: int = setting(
        100_000, "events waiting for delivery at most; past it the oldest are dropped and counted",
        check=between(1, 100_000_000), read=integer)
    # fixed, not settings
    join_history: int = 50  # messages a join without `since` gets

    @functools.cached_property
    def topology(self) -> Topology:
        """Where shared state lives, from `redis_url` (worked out once, see `topology_of`)."""
        return topology_of(self.redis_url)

    def __post_init__(self) -> None:
        for field, declared in _declared():
            problem = declared.check(getattr(self, field.name)) if declared.check else None
            _check(problem is None, field.name.upper(), str(problem))
        try:
            self.topology  # noqa: B018 (parsed here once, and kept)
        except ValueError as error:
            raise SettingsError(f"REDIS_URL {error}") from None
        _check(self.jwt_jwks_url is None or (self.jwt_issuer is not None and self.jwt_audience is not None),
               "JWT_JWKS_URL", "needs JWT_ISSUER and JWT_AUDIENCE, so that tokens the provider signed for other "
               "apps are refused")
        _check(self.max_frame_bytes >= self.max_message_length * 12 + 4096, "MAX_FRAME_BYTES",
               "must hold a maximal message JSON-escaped (12 bytes a character, plus 4096): "
               f"at least {self.max_message_length * 12 + 4096} for MAX_MESSAGE_LENGTH={self.max_message_length}")
        _check(self.presence_heartbeat >= 0.1 and 2 * self.presence_heartbeat <= self.presence_expiry,
               "PRESENCE_HEARTBEAT", "must be at least 0.1 seconds and at most half of PRESENCE_EXPIRY")
        _check(self.presence_expiry + self.presence_heartbeat <= PRESENCE_DEADLINE, "PRESENCE_EXPIRY",
               f"plus PRESENCE_HEARTBEAT must be at most {PRESENCE_DEADLINE:.0f} seconds "
               "(the contract drops a dead instance's users within a minute)")
        if self.redis_url is not None:
            _check(self.secret_key is not None, "SECRET_KEY",
                   "is required when REDIS_URL is set, so that all instances accept the same tokens")
        _check(self.webhook_url is None or self.webhook_secret is not None, "WEBHOOK_SECRET",
               f"of at least {SECRET_MIN_LENGTH} characters is required with WEBHOOK_URL, so that the receiver "
               "can tell the server's requests from forgeries")
        _check(self.webhook_url is None or not self.topology.traits.spread, "WEBHOOK_URL",
               "cannot be used with a Redis Cluster yet: webhooks need one Redis server or Sentinel's master")


def _declared() -> list[tuple[dataclasses.Field[Any], Declaration]]:
    return [(field, field.metadata["setting"]) for field in dataclasses.fields(Settings) if "setting" in field.metadata]


def _check(ok: bool, name: str, problem: str) -> None:
    if not ok:
        raise SettingsError(f"{name} {problem}")


SETTING_NAMES: tuple[str, ...] = tuple(field.name.upper() for field, _ in _declared())


def _flag(field: dataclasses.Field[Any]) -> str:
    return "--" + field.name.replace("_", "-")


def load_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Settings from flags (which win) and environment variables.

    Raises `SettingsError` with a one-line message naming the first bad setting.
    """
    parser = argparse.ArgumentParser(prog="python -m chatserver", description="Socket.IO chat server")
    for field, declared in _declared():
        parser.add_argument(_flag(field), dest=field.name, help=f"{declared.meaning} (env {field.name.upper()})")
    flags = vars(parser.parse_args(list(argv)))
    values: dict[str, object] = {}
    for field, declared in _declared():
        text = flags[field.name] if flags[field.name] is not None else environ.get(field.name.upper())
        if text is None or text == "":
            continue
        try:
            values[field.name] = declared.read(text)
        except ValueError as error:
            raise SettingsError(f"{field.name.upper()} {error}") from None
    return Settings(**values)  # type: ignore[arg-type]


def settings_table() -> str:
    """The README's table of settings, in Markdown, from the declarations."""
    rows = ["| variable | flag | default | meaning |", "| --- | --- | --- | --- |"]
    for field, declared in _declared():
        rows.append(f"| `{field.name.upper()}` | `{_flag(field)}` | {_shown(field.default, declared)} "
                    f"| {declared.meaning} |")
    return "\n".join(rows)


def _shown(default: Any, declared: Declaration) -> str:
    if declared.shown_default is not None:
        return declared.shown_default
    if default is None:
        return "unset"
    if isinstance(default, tuple):
        return f"`{','.join(default)}`" if default else "none"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"


def log_level_number(settings: Settings) -> int:
    """The `logging` level for `settings.log_level`."""
    return logging.getLevelName(settings.log_level)  # type: ignore[no-any-return]


if __name__ == "__main__":  # `python -m chatserver.config` prints the README's table
    print(settings_table())
