"""All settings in one place: command-line flags, then ``PRICEFEED_*`` environment
variables, then a ``.env`` file, then ``--config FILE`` (TOML or JSON), then defaults.

Each field is one option: ``--api-port`` on the command line, ``PRICEFEED_API_PORT``
in the environment, ``api_port`` (or ``api-port``) in a config file.
"""

from __future__ import annotations

import contextvars
import json
import os
import ssl
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from .accounts import parse_publishers
from .transport.tls import Tls

HERMES_STREAM_URL = "https://hermes.pyth.network/v2/updates/price/stream"
SourceName = Literal["hermes", "sim", "kite", "lazer", "coingecko"]
KITE_TICKER_URL = "wss://ws.kite.trade"
LAZER_STREAM_URLS = ["wss://pyth-lazer-0.dourolabs.app/v1/stream", "wss://pyth-lazer-1.dourolabs.app/v1/stream",
                     "wss://pyth-lazer-2.dourolabs.app/v1/stream"]
LazerChannel = Literal["real_time", "fixed_rate@50ms", "fixed_rate@200ms", "fixed_rate@1000ms"]
LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]


def default_db_path() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "pricefeed" / "pricefeed.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRICEFEED_", env_file=".env", extra="forbid",
                                      validate_default=True)

    ws: bool = Field(True, description="Serve the client WebSocket of seed 000 (true or false)")
    host: str = Field("0.0.0.0", description="Host to bind the client WebSocket server to")
    port: int = Field(8765, ge=0, le=65535, description="Port of the client WebSocket server (seed 000)")
    api: bool = Field(True, description="Serve REST, the Hermes-compatible API and /metrics (true or false)")
    api_host: str = Field("0.0.0.0", description="Host to bind the REST API to")
    api_port: int = Field(8080, ge=0, le=65535, description="Port of the REST API")
    pyth_sse_url: Annotated[list[str], NoDecode] = Field(
        [HERMES_STREAM_URL], description="Pyth Hermes SSE stream URL (repeatable)")
    log_level: LogLevel = Field("INFO", description="Logging level")
    source: Annotated[list[SourceName], NoDecode] = Field(
        ["hermes"], description="Upstream source: hermes, lazer, kite, coingecko or sim (repeatable)")
    db: Path = Field(default_factory=default_db_path, description="SQLite file that keeps feeds and last prices")
    config: Path | None = Field(None, description="A TOML or JSON file with any of these settings")
    seed: int | None = Field(None, description="Random seed of the simulated market (deterministic runs)")
    sim_interval: float = Field(0.4, gt=0, le=3600, description="Seconds between simulated updates of each feed")
    sim_feeds: int = Field(13, ge=1, le=100_000, description="Number of simulated feeds (real ones first)")
    stale_after: float = Field(30.0, gt=0, description="Seconds without an update after which a feed is stale")
    max_subscriptions: int = Field(1000, ge=1, description="Subscriptions allowed per client connection")
    max_message_bytes: int = Field(64 * 1024, ge=1024, description="Largest client message; larger closes with 1009")
    max_messages_per_second: float = Field(50.0, gt=0, description="Client message rate; a flood closes with 1008")
    outbox_limit_bytes: int = Field(1024 * 1024, ge=16 * 1024,
                                    description="Bytes a connection may have queued; a slow client over it is closed")
    handshake_timeout: float = Field(10.0, gt=0, description="Seconds a new connection may take to send its "
                                     "handshake or request head before it is dropped")
    slow_client_timeout: float = Field(10.0, gt=0, description="Seconds a client may block writes before it is closed")
    store_flush_interval: float = Field(1.0, gt=0, description="Seconds between saves of the latest prices")
    feeds: Annotated[list[str], NoDecode] = Field(
        [], description="Feeds the Hermes and Lazer sources always stream, ids or symbols (Lazer also takes its "
                        "numeric ids; repeatable; default: major crypto, and for Lazer the feeds with a known id)")
    upstream_connections: int = Field(2, ge=1, le=16, description="Redundant Hermes streams held at once")
    pyth_api_key: SecretStr | None = Field(None, description="Hermes API key, sent as a Bearer token; never logged")
    hermes_silence_timeout: float = Field(
        30.0, gt=0, description="Seconds without an event or keep-alive after which a Hermes stream is replaced")
    hermes_requests_per_10s: int = Field(
        10, ge=1, le=10_000,
        description="Requests the Hermes source makes per 10 s at most, all streams and metadata together")
    lazer_url: Annotated[list[str], NoDecode] = Field(
        LAZER_STREAM_URLS, description="Pyth Lazer stream URL (repeatable; connections go round-robin over them)")
    lazer_token: SecretStr | None = Field(None, description="Pyth Lazer access token; never logged")
    lazer_channel: LazerChannel = Field("fixed_rate@200ms", description="Lazer channel the Lazer source subscribes to")
    lazer_connections: int = Field(4, ge=1, le=16, description="Redundant Lazer connections held at once")
    lazer_stream: bool = Field(True, description="Serve the Lazer-compatible /v1/stream and /v1/symbols on the API "
                               "port (true or false)")
    rpc: bool = Field(True, description="Serve the pythd JSON-RPC API for publishers (true or false)")
    rpc_host: str = Field("127.0.0.1", description="Host of the pythd JSON-RPC WebSocket (local only by default)")
    rpc_port: int = Field(8910, ge=0, le=65535, description="Port of the pythd JSON-RPC WebSocket")
    products: Path | None = Field(None, description="JSON file of local products that publishers price")
    rpc_publisher: Annotated[list[str], NoDecode] = Field(
        [], description="A permitted publisher, KEY or KEY:SECRET (repeatable; none: one local publisher)")
    rpc_origins: Annotated[list[str], NoDecode] = Field(
        [], description="A browser origin allowed to use the pythd API, e.g. http://localhost:3000 (repeatable; "
                        "* for any; none: browser pages are refused)")
    slot_interval: float = Field(0.4, gt=0, description="Seconds per slot of the local oracle's slot clock")
    publish_interval: float = Field(1.0, gt=0, description="Seconds between notify_price_sched to publishers")
    products_reload_interval: float = Field(2.0, gt=0, description="Seconds between checks of the products file")
    sim_equities: bool = Field(True, description="Simulate NSE equities (RELIANCE, TCS, ...) in rupees, with traded "
                               "quantities and day volume, and the FX.USD/INR rate (true or false)")
    sim_market_hours: bool = Field(True, description="Simulated equities trade in their session only (NSE 09:15-15:30 "
                                   "IST); false: around the clock, for demos and tests at any hour")
    streams: bool = Field(True, description="Serve the stream service of seed 004: /ws/stream, /ws/analysis, "
                          "/ws/alerts, /ws/portfolio, /health, /connections, /test (true or false)")
    streams_host: str = Field("0.0.0.0", description="Host of the stream service")
    streams_port: int = Field(8081, ge=0, le=65535, description="Port of the stream service")
    streams_idle_timeout: float = Field(
        60.0, gt=0, description="Seconds a stream connection may send nothing and answer no ping before it is closed")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [], validation_alias=AliasChoices("cors_origins", "PRICEFEED_CORS_ORIGINS", "CORS_ORIGINS"),
        description="Origins (e.g. http://localhost:3000) allowed to use the stream service from a browser, comma "
                    "separated or repeated; also the CORS_ORIGINS environment variable (none: every origin)")
    api_key: Annotated[list[SecretStr], NoDecode] = Field(
        [], description="An API key every face then requires (repeatable; never logged): Authorization: Bearer, "
                        "?ACCESS_TOKEN=, ?token= or Lazer's pyth-lazer-auth subprotocol; the pythd face keeps its "
                        "publisher keys")
    keys: Path | None = Field(None, description="A TOML or JSON file of API keys with, per key, a name, the faces and "
                              "feeds it may use and its limits (connections, subscriptions, messages_per_second, "
                              "bytes_per_second); re-read when it changes")
    ip_connections: int | None = Field(None, ge=1, description="Connections a client IP without a key may hold at "
                                       "once (none: no limit)")
    ip_handshakes_per_second: float | None = Field(None, gt=0, description="Connection attempts per second a client "
                                                   "IP without a key may make, after a burst of twice that (none: no "
                                                   "limit)")
    ip_bytes_per_second: float | None = Field(None, gt=0, description="Outbound bytes per second over the "
                                              "connections of a client IP without a key, after a burst of twice "
                                              "that; a connection that would go over is closed with 1008 (Hermes: "
                                              "262144 on /ws; none: no limit)")
    tls_cert: Path | None = Field(None, description="A PEM certificate chain: every listener (seed-000, API, "
                                  "streams, pythd, Socket.IO) then speaks TLS (wss://, https://); needs --tls-key")
    tls_key: Path | None = Field(None, description="The PEM private key of --tls-cert")
    candle_intervals: Annotated[list[str], NoDecode] = Field(
        ["1s", "1m", "5m"], description="Candle intervals, e.g. 1s, 1m, 5m, 1h (repeatable)")
    candle_history: int = Field(100, ge=1, le=100_000,
                                description="Bars kept, stored and sent on subscribe, per feed and interval")
    candle_grace: float = Field(2.0, ge=0, le=3600, description="Seconds after its end that a bar without a later "
                                "tick is closed (late ticks of a feed whose publish time lags)")
    risk_window: int = Field(60, ge=2, le=10_000, description="Returns of closed bars that /ws/analysis's risk "
                             "metrics (volatility, drawdown, VaR, expected shortfall, beta) are measured over; null "
                             "until that many")
    risk_benchmark: str | None = Field(None, description="The symbol /ws/analysis's beta is measured against, e.g. "
                                       "BTC/USD (none: beta is null)")
    base_currency: str = Field("USD", pattern=r"^[A-Za-z]{3,8}$", description="The currency /ws/portfolio's "
                               "portfolio total is converted to")
    fx_rate: Annotated[list[str], NoDecode] = Field(
        [], description="A configured FX rate, e.g. USDINR=83.25 (units of the second currency per one of the "
                        "first; repeatable); a feed's rate (the simulated FX.USD/INR) wins while it is fresh")
    crypto_recovery: bool = Field(False, description="Socket.IO connection state recovery on crypto-prices (as "
                                  "socket.io v4.6: pid, an offset argument on each event, replay on reconnect)")
    kite_url: str = Field(KITE_TICKER_URL, description="Kite ticker WebSocket URL")
    kite_api_key: SecretStr | None = Field(None, description="Kite Connect API key; never logged")
    kite_access_token: SecretStr | None = Field(None, description="Kite Connect access token; never logged")
    kite_instruments: Path | None = Field(None, description="Kite's instruments CSV (trading symbols to tokens)")
    kite_symbols: Annotated[list[str], NoDecode] = Field(
        [], description="Instruments always streamed and the only ones offered, e.g. RELIANCE or NSE:RELIANCE "
                        "(repeatable; none: every instrument of the file, streamed when a client asks)")
    kite_mode: Literal["ltp", "quote", "full"] = Field("full", description="Kite ticker mode: ltp, quote or full")
    kite_silence_timeout: float = Field(
        10.0, gt=0, description="Seconds without a tick or heartbeat after which the Kite connection is replaced")

    coingecko_url: str | None = Field(
        None, description="CoinGecko API root (default: the public API, or the pro API with --coingecko-plan pro)")
    coingecko_api_key: SecretStr | None = Field(None, description="CoinGecko API key (demo or pro); never logged")
    coingecko_plan: Literal["demo", "pro"] = Field(
        "demo", description="Which header carries the key: demo (x-cg-demo-api-key) or pro (x-cg-pro-api-key)")
    coingecko_interval: float = Field(10.0, gt=0, description="Seconds between CoinGecko polls of the whole coin set")
    coingecko_coins: Annotated[list[str], NoDecode] = Field(
        ["BTC", "ETH", "BNB", "ADA", "SOL", "DOT", "USDT", "USDC", "XRP", "MATIC"],
        description="Coins of CoinGecko and of crypto-prices: known symbols or SYMBOL=coingecko-id (repeatable)")
    coingecko_calls_per_minute: int = Field(
        30, ge=1, description="Most CoinGecko calls in any minute, whatever happens (the keyless and demo limit)")
    coingecko_timeout: float = Field(10.0, gt=0, description="Seconds a CoinGecko call may take")
    crypto: bool = Field(True, description="Serve the Socket.IO crypto-prices service (true or false)")
    crypto_host: str = Field("0.0.0.0", description="Host of the Socket.IO crypto-prices service (seed 002)")
    crypto_port: int = Field(5000, ge=0, le=65535, description="Port of the Socket.IO crypto-prices service")
    crypto_cors_origins: Annotated[list[str], NoDecode] = Field(
        ["*"], description="Origins allowed to connect to Socket.IO from a browser (* for any; repeatable); when not "
                           "given, --cors-origins (if set) applies to Socket.IO too")
    redis_url: SecretStr | None = Field(
        None, description="Keep feeds and latest prices in Redis (redis://[user:password@]host:port/db), not SQLite")
    redis_host: str | None = Field(None, validation_alias=AliasChoices("redis_host", "PRICEFEED_REDIS_HOST"),
                                   description="Redis host (env REDIS_HOST too); setting it selects the Redis store")
    redis_port: int = Field(6379, ge=1, le=65535, validation_alias=AliasChoices("redis_port", "PRICEFEED_REDIS_PORT"),
                            description="Redis port (env REDIS_PORT too)")
    redis_username: str | None = Field(
        None, validation_alias=AliasChoices("redis_username", "PRICEFEED_REDIS_USERNAME"),
        description="Redis user name (env REDIS_USERNAME too)")
    redis_password: SecretStr | None = Field(
        None, validation_alias=AliasChoices("redis_password", "PRICEFEED_REDIS_PASSWORD"),
        description="Redis password (env REDIS_PASSWORD too); never logged")
    redis_prefix: str = Field("pricefeed:", description="Prefix of pricefeed's Redis keys (processes sharing it share "
                                                       "one cache)")
    # -- several processes (issue 16): roles, the bus between them, the ingest lease, the resume depth --------
    role: Literal["all", "ingest", "edge"] = Field(
        "all", description="What this process runs: all (sources and faces), ingest (sources, publishing on the "
                           "bus) or edge (faces, fed by the bus); ingest and edge need --bus redis")
    bus: Literal["local", "redis", "socket"] = Field(
        "local", description="How updates reach the faces: local (in this process), redis (Redis Streams shared "
                             "by every process; needs --redis-url or REDIS_HOST) or socket (a Unix socket from one "
                             "ingest process to the edges of one machine; needs --bus-socket)")
    bus_socket: Path | None = Field(None, description="The Unix socket of --bus socket (--workers picks one)")
    bus_shards: int = Field(1, ge=1, le=256, description="Redis streams the feeds are spread over (a feed keeps "
                                                         "its stream; more spread load over a Redis Cluster)")
    history_depth: float = Field(600.0, ge=0, le=86_400, description="Seconds of updates kept for resume, in each "
                                                                     "process and in the Redis stream")
    workers: int | Literal["auto"] = Field(
        1, description="Edge processes sharing the listening ports (SO_REUSEPORT), fed by one ingest process over "
                       "Redis; auto: one per core")
    reuse_port: bool = Field(False, description="Let other processes listen on the same ports (SO_REUSEPORT; "
                                                "--workers sets it for its edges)")
    ingest_lease: float = Field(2.0, ge=0.3, le=60, description="Seconds an ingest leader's Redis lease lasts; a "
                                                                "standby ingest takes over within about twice this")
    divergence_bps: float = Field(50.0, gt=0, description="Spread between sources of one asset, in basis points of "
                                  "their median, past which the asset is flagged as diverging")
    divergence_hold: float = Field(5.0, ge=0, le=3600, description="Seconds a spread must stay past --divergence-bps "
                                   "(and back under --divergence-clear-bps) before the flag is raised (cleared)")
    divergence_clear_bps: float | None = Field(None, gt=0, description="Spread under which a flagged asset clears "
                                               "(default: four fifths of --divergence-bps, so it does not flap)")
    divergence_max_age: float = Field(120.0, gt=0, description="Seconds after its publish time that a source's "
                                      "price no longer counts in the spread (it is shown as stale)")

    @model_validator(mode="after")
    def _divergence_band(self) -> Settings:
        if self.divergence_clear_bps is not None and self.divergence_clear_bps > self.divergence_bps:
            raise ValueError(f"--divergence-clear-bps ({self.divergence_clear_bps}) must not be above "
                             f"--divergence-bps ({self.divergence_bps})")
        return self


    @field_validator("source", "pyth_sse_url", "feeds", "rpc_publisher", "rpc_origins", "cors_origins",
                     "candle_intervals", "kite_symbols", "lazer_url", "api_key", "coingecko_coins",
                     "crypto_cors_origins", "fx_rate", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        """Accept ``sim,hermes`` from the environment or a file as well as a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("rpc_publisher")
    @classmethod
    def _valid_publishers(cls, value: list[str]) -> list[str]:
        parse_publishers(value)  # raises ValueError with what is wrong
        return value

    @field_validator("keys")
    @classmethod
    def _valid_keys_file(cls, value: Path | None) -> Path | None:
        from .policy import read_keys_file

        if value is not None:
            try:
                read_keys_file(value)
            except (OSError, ValueError) as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("candle_intervals")
    @classmethod
    def _valid_intervals(cls, value: list[str]) -> list[str]:
        from .analytics.candles import parse_interval

        return list(dict.fromkeys(parse_interval(text).label for text in value))

    @field_validator("fx_rate")
    @classmethod
    def _valid_fx_rates(cls, value: list[str]) -> list[str]:
        from .fx import parse_rate

        for text in value:
            parse_rate(text)  # raises ValueError with what is wrong
        return value

    @field_validator("base_currency")
    @classmethod
    def _upper_currency(cls, value: str) -> str:
        return value.upper()

    @field_validator("cors_origins")
    @classmethod
    def _valid_origins(cls, value: list[str]) -> list[str]:
        from .policy import OriginPolicy

        OriginPolicy.of(value)  # raises ValueError with what is wrong
        return value

    @field_validator("coingecko_coins")
    @classmethod
    def _valid_coins(cls, value: list[str]) -> list[str]:
        from .coins import parse_coins

        parse_coins(value)  # raises ValueError with what is wrong
        return value

    @property
    def uses_redis(self) -> bool:
        """Whether Redis keeps the store (``--redis-url`` or ``REDIS_HOST`` given)."""
        return self.redis_url is not None or self.redis_host is not None

    @field_validator("source")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one source is needed")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _bus_complete(self) -> Settings:
        if self.bus == "redis" and not self.uses_redis:
            raise ValueError("--bus redis needs --redis-url (or REDIS_HOST)")
        if self.workers != "auto" and self.workers < 1:
            raise ValueError(f"--workers must be at least 1 or auto, got {self.workers}")
        if self.role != "all" and self.bus == "local":
            raise ValueError(f"--role {self.role} needs --bus redis or socket (the processes meet there)")
        if self.bus == "socket" and (self.role == "all" or self.bus_socket is None):
            raise ValueError("--bus socket needs --role ingest or edge, and --bus-socket PATH")
        return self

    @model_validator(mode="after")
    def _tls_complete(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.tls is not None:
            try:
                self.tls.context()
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"--tls-cert/--tls-key: {exc}") from None
        return self

    @property
    def tls(self) -> Tls | None:
        return None if self.tls_cert is None or self.tls_key is None else Tls(self.tls_cert, self.tls_key)

    @model_validator(mode="after")
    def _kite_complete(self) -> Settings:
        if "kite" in self.source:
            missing = [option_name(name) for name in ("kite_instruments", "kite_api_key", "kite_access_token")
                       if getattr(self, name) is None]
            if missing:
                raise ValueError(f"--source kite needs {', '.join(missing)}")
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, dotenv_settings, _ConfigFileSource(settings_cls)


_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("config_file", default=None)


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Values from the ``--config`` file; keys may use dashes or underscores."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden

    def __call__(self) -> dict[str, Any]:
        path = _config_file.get()
        if path is None:
            return {}
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        if not isinstance(data, dict):
            raise ConfigError(f"--config {path}: expected a table of settings")
        return {key.replace("-", "_"): value for key, value in data.items()}


class ConfigError(Exception):
    """A setting is wrong; the message is one line that names the option."""


def option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def load_settings(cli_values: dict[str, Any] | None = None) -> Settings:
    """Settings from every layer; raises ``ConfigError`` with one clear line if a value is bad."""
    cli_values = {k: v for k, v in (cli_values or {}).items() if v is not None}
    config_path = cli_values.get("config") or os.environ.get("PRICEFEED_CONFIG")
    token = _config_file.set(Path(config_path) if config_path else None)
    try:
        return Settings(**cli_values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed config file
        raise ConfigError(f"--config {config_path}: {exc}") from None
    finally:
        _config_file.reset(token)


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    name = option_name(loc[0]) if loc else "settings"
    if error["type"] == "extra_forbidden":
        return f"unknown setting {loc[0]!r} (from the environment, .env or --config)"
    value = error.get("input")
    shown = f" {value!r}" if not isinstance(value, dict) and value is not None else ""
    message = error["msg"].removeprefix("Value error, ")
    return f"invalid {name}{shown}: {message}"
