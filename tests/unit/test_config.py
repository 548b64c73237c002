"""Settings: environment and flags, with one-line errors naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chatserver.backplane.urls import parse_cluster_url, parse_sentinel_url
from chatserver.config import SETTING_NAMES, Settings, SettingsError, load_settings, settings_table
from tests.conftest import ROOT

SECRET = "s" * 32


def test_defaults_follow_the_contract():
    settings = load_settings([], {})
    assert (settings.host, settings.port, settings.redis_url) == ("127.0.0.1", 8080, None)
    assert settings.history_size == 1000 and settings.max_message_length == 4000 and settings.rate_limit == 30
    assert settings.transports == ("polling", "websocket") and settings.cors_origins == ()


def test_every_setting_reads_from_the_environment():
    env = {"HOST": "0.0.0.0", "PORT": "9000", "REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": SECRET,
           "API_KEY": "k" * 16, "CORS_ORIGINS": "https://a.example, https://b.example", "TRANSPORTS": "websocket",
           "HISTORY_SIZE": "10", "MAX_MESSAGE_LENGTH": "20", "RATE_LIMIT": "3", "RATE_WINDOW": "2.5",
           "TYPING_BURST": "4", "TYPING_RATE": "0.5", "DEDUPE_TTL": "900", "TOKEN_LIFETIME": "3600",
           "PRESENCE_HEARTBEAT": "2", "PRESENCE_EXPIRY": "6", "LOG_LEVEL": "debug", "LOG_FORMAT": "JSON",
           "MAX_FRAME_BYTES": "2000000", "MAX_CONNECTIONS_PER_ADDRESS": "5", "MAX_ROOMS_PER_CONNECTION": "6",
           "MAX_BACKLOG": "70", "TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1", "SHUTDOWN_DELAY": "15",
           "SHUTDOWN_TIMEOUT": "1.5", "MAX_BACKLOG_BYTES": "100000", "EVENT_LOOP": "asyncio",
           "GC_THRESHOLD": "1000", "CHANNEL_LINGER": "0.5", "SHARDED_PUBSUB": "OFF",
           "PING_INTERVAL": "10", "PING_TIMEOUT": "5", "CONNECT_TIMEOUT": "30",
           "JWT_ISSUER": "https://id.example", "JWT_AUDIENCE": "chat", "ANONYMOUS_SESSIONS": "OFF",
           "JWT_JWKS_URL": "https://id.example/jwks.json", "TOKEN_REFRESH_NOTICE": "30",
           "WEBHOOK_URL": "https://app.example/hooks", "WEBHOOK_SECRET": "w" * 32, "WEBHOOK_TIMEOUT": "2.5",
           "WEBHOOK_RETRY_HOURS": "1.5", "WEBHOOK_MAX_QUEUE": "500"}
    assert set(env) == set(SETTING_NAMES)
    settings = load_settings([], env)
    assert settings == Settings(host="0.0.0.0", port=9000, redis_url="redis://127.0.0.1:1/0", secret_key=SECRET,
                                api_key="k" * 16, cors_origins=("https://a.example", "https://b.example"),
                                transports=("websocket",), history_size=10, max_message_length=20, rate_limit=3,
                                rate_window=2.5, typing_burst=4, typing_rate=0.5, dedupe_ttl=900,
                                token_lifetime=3600, presence_heartbeat=2, presence_expiry=6, log_level="DEBUG",
                                log_format="json", max_frame_bytes=2_000_000, max_connections_per_address=5,
                                max_rooms_per_connection=6, max_backlog=70,
                                trusted_proxies=("10.0.0.0/8", "127.0.0.1"), shutdown_delay=15,
                                shutdown_timeout=1.5, max_backlog_bytes=100_000, event_loop="asyncio",
                                gc_threshold=1000, channel_linger=0.5, sharded_pubsub="off",
                                ping_interval=10, ping_timeout=5, connect_timeout=30,
                                jwt_issuer="https://id.example", jwt_audience="chat", anonymous_sessions="off",
                                jwt_jwks_url="https://id.example/jwks.json", token_refresh_notice=30,
                                webhook_url="https://app.example/hooks", webhook_secret="w" * 32, webhook_timeout=2.5,
                                webhook_retry_hours=1.5, webhook_max_queue=500)


def test_every_setting_is_in_the_readme_configuration_table():
    readme = (ROOT / "README.md").read_text()
    table = {line.split("|")[1].strip().strip("`") for line in readme.splitlines() if line.startswith("| `")}
    assert set(SETTING_NAMES) <= table, set(SETTING_NAMES) - table


def test_the_readme_table_is_the_one_the_declarations_make():
    """Edit a setting's declaration in chatserver/config.py, then paste the table that
    `python -m chatserver.config` prints into README.md."""
    assert settings_table() in (ROOT / "README.md").read_text()


def test_help_describes_every_setting_with_its_variable():
    wide = {**os.environ, "COLUMNS": "100000"}  # one line per option, however long its help
    result = subprocess.run([sys.executable, "-m", "chatserver", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30, env=wide)
    assert result.returncode == 0
    for name in SETTING_NAMES:
        assert f"(env {name})" in result.stdout and "--" + name.lower().replace("_", "-") in result.stdout


def test_flags_win_over_the_environment():
    settings = load_settings(["--port", "9001", "--rate-limit", "7", "--transports", "websocket"],
                             {"PORT": "9000", "RATE_LIMIT": "3"})
    assert (settings.port, settings.rate_limit, settings.transports) == (9001, 7, ("websocket",))


@pytest.mark.parametrize("env, named", [
    ({"PORT": "eighty"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"HISTORY_SIZE": "0"}, "HISTORY_SIZE"),
    ({"MAX_MESSAGE_LENGTH": "-1"}, "MAX_MESSAGE_LENGTH"),
    ({"RATE_LIMIT": "1.5"}, "RATE_LIMIT"),
    ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
    ({"TRANSPORTS": "carrier-pigeon"}, "TRANSPORTS"),
    ({"SECRET_KEY": "short"}, "SECRET_KEY"),
    ({"API_KEY": "short"}, "API_KEY"),
    ({"REDIS_URL": "redis://127.0.0.1:6379/0"}, "SECRET_KEY"),
    ({"REDIS_URL": "http://x", "SECRET_KEY": SECRET}, "REDIS_URL"),
    ({"REDIS_URL": "redis+sentinel://10.0.0.1:26379", "SECRET_KEY": SECRET}, "REDIS_URL"),
    ({"REDIS_URL": "redis+sentinel://10.0.0.1/chat", "SECRET_KEY": SECRET}, "REDIS_URL"),
    ({"REDIS_URL": "redis+cluster://10.0.0.1", "SECRET_KEY": SECRET}, "REDIS_URL"),
    ({"REDIS_URL": "redis+cluster://10.0.0.1:7000/0", "SECRET_KEY": SECRET}, "REDIS_URL"),
    ({"CORS_ORIGINS": "example.com"}, "CORS_ORIGINS"),
    ({"MAX_CONNECTIONS_PER_ADDRESS": "0"}, "MAX_CONNECTIONS_PER_ADDRESS"),
    ({"MAX_ROOMS_PER_CONNECTION": "0"}, "MAX_ROOMS_PER_CONNECTION"),
    ({"MAX_BACKLOG": "5"}, "MAX_BACKLOG"),
    ({"TRUSTED_PROXIES": "nginx.local"}, "TRUSTED_PROXIES"),
    ({"RATE_WINDOW": "0"}, "RATE_WINDOW"),
    ({"RATE_WINDOW": "nan"}, "RATE_WINDOW"),
    ({"TYPING_BURST": "0"}, "TYPING_BURST"),
    ({"TYPING_RATE": "soon"}, "TYPING_RATE"),
    ({"DEDUPE_TTL": "60"}, "DEDUPE_TTL"),
    ({"TOKEN_LIFETIME": "1"}, "TOKEN_LIFETIME"),
    ({"PRESENCE_HEARTBEAT": "15"}, "PRESENCE_HEARTBEAT"),
    ({"PRESENCE_EXPIRY": "58"}, "PRESENCE_EXPIRY"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ({"EVENT_LOOP": "trio"}, "EVENT_LOOP"),
    ({"GC_THRESHOLD": "5"}, "GC_THRESHOLD"),
    ({"MAX_BACKLOG_BYTES": "10"}, "MAX_BACKLOG_BYTES"),
    ({"MAX_FRAME_BYTES": "1000"}, "MAX_FRAME_BYTES"),
    ({"MAX_FRAME_BYTES": "100000", "MAX_MESSAGE_LENGTH": "10000"}, "MAX_FRAME_BYTES"),
    ({"SHUTDOWN_DELAY": "-1"}, "SHUTDOWN_DELAY"),
    ({"SHUTDOWN_TIMEOUT": "inf"}, "SHUTDOWN_TIMEOUT"),
    ({"ANONYMOUS_SESSIONS": "maybe"}, "ANONYMOUS_SESSIONS"),
    ({"JWT_JWKS_URL": "id.example/jwks.json", "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"}, "JWT_JWKS_URL"),
    ({"JWT_JWKS_URL": "http://id.example/jwks.json", "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"}, "JWT_JWKS_URL"),
    ({"JWT_JWKS_URL": "https://id.example/jwks.json", "JWT_ISSUER": "i"}, "JWT_JWKS_URL"),
    ({"TOKEN_REFRESH_NOTICE": "0"}, "TOKEN_REFRESH_NOTICE"),
    ({"WEBHOOK_URL": "https://app.example/hooks"}, "WEBHOOK_SECRET"),
    ({"WEBHOOK_URL": "app.example/hooks", "WEBHOOK_SECRET": "w" * 32}, "WEBHOOK_URL"),
    ({"WEBHOOK_URL": "https://app.example/hooks", "WEBHOOK_SECRET": "w" * 31}, "WEBHOOK_SECRET"),
    ({"WEBHOOK_URL": "https://app.example/hooks", "WEBHOOK_SECRET": "w" * 32, "SECRET_KEY": "s" * 32,
      "REDIS_URL": "redis+cluster://127.0.0.1:7000"}, "WEBHOOK_URL"),
    ({"WEBHOOK_RETRY_HOURS": "0"}, "WEBHOOK_RETRY_HOURS"),
    ({"WEBHOOK_MAX_QUEUE": "0"}, "WEBHOOK_MAX_QUEUE"),
])
def test_bad_values_name_the_setting(env, named):
    with pytest.raises(SettingsError) as error:
        load_settings([], env)
    assert str(error.value).startswith(named) and "\n" not in str(error.value)


def test_a_bad_value_stops_start_up_with_one_line():
    result = subprocess.run([sys.executable, "-m", "chatserver", "--port", "nope"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    expected = "chatserver: configuration error: PORT must be an integer, got 'nope'"
    assert result.stderr.strip().splitlines() == [expected]


def test_a_sentinel_url_names_its_sentinels_and_service():
    url = "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/chat"
    assert load_settings([], {"REDIS_URL": url, "SECRET_KEY": SECRET}).redis_url == url
    target = parse_sentinel_url(url)
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (target.service, target.password) == ("chat", "s3cret")


def test_sentinel_credentials_are_read_percent_decoded():
    target = parse_sentinel_url("redis+sentinel://app%40chat:ab%2Fc%3Fd%23e@10.0.0.1:26379/chat")
    assert (target.username, target.password, target.service) == ("app@chat", "ab/c?d#e", "chat")


def test_a_cluster_url_names_its_seed_nodes():
    url = "redis+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2:7001"
    assert load_settings([], {"REDIS_URL": url, "SECRET_KEY": SECRET}).redis_url == url
    target = parse_cluster_url(url)
    assert target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert (target.username, target.password) == ("app", "p@ss")
    assert parse_cluster_url("redis+cluster://10.0.0.1:7000/").password is None
