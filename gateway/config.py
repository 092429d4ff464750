"""Settings: one declarative table, merged from defaults < gateway.yaml < .env < environment < CLI."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import yaml
from dotenv import dotenv_values

logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting has a bad value; the message names the setting."""


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _parse_list(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, (list, tuple)):
        return tuple(str(item).strip() for item in raw if str(item).strip())
    return tuple(part.strip() for part in str(raw).split(",") if part.strip())


def _optional_str(raw: Any) -> str | None:
    text = "" if raw is None else str(raw)
    return text or None


def _positive(kind: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse(raw: Any) -> Any:
        value = kind(raw)
        if value <= 0:
            raise ValueError(f"must be greater than 0, got {raw!r}")
        return value
    return parse


def _non_negative_int(raw: Any) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"must be 0 or more, got {raw!r}")
    return value


def _port(raw: Any) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError(f"must be a port number 0-65535, got {raw!r}")
    return value


def _redis_url(raw: Any) -> str | None:
    text = _optional_str(raw)
    if text and urlsplit(text).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return text


def _non_negative_float(raw: Any) -> float:
    value = float(raw)
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"must be 0 or more, got {raw!r}")
    return value


def _lease_seconds(raw: Any) -> float:
    value = float(raw)
    if not 1.0 <= value <= 60.0:
        raise ValueError(f"must be between 1 and 60 seconds, got {raw!r}")
    return value


def _http_url(raw: Any) -> str | None:
    text = _optional_str(raw)
    if text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL such as http://10.0.0.5:8000, got {raw!r}")
    return text


def _database_kind(raw: Any) -> str:
    text = str(raw).strip().lower()
    if text not in ("auto", "sqlite", "mysql", "memory"):
        raise ValueError(f"must be auto, sqlite, mysql or memory, got {raw!r}")
    return text


def _size(raw: Any) -> int:
    """Bytes, from an integer or a number with a unit: 100MB, 10 MiB, 512k."""
    text = str(raw).strip().lower().replace(" ", "")
    units = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
             "g": 1024**3, "gb": 1024**3, "gib": 1024**3}
    number = text.rstrip("kmgib")
    unit = text[len(number):]
    if unit not in units or not number.isdigit():
        raise ValueError(f"must be a size in bytes such as 10485760 or 10MB, got {raw!r}")
    value = int(number) * units[unit]
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {raw!r}")
    return value


def _networks(raw: Any) -> tuple[str, ...]:
    import ipaddress
    values = _parse_list(raw)
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or range such as 10.0.0.0/8") from None
    return values


def _log_level(raw: Any) -> str:
    text = str(raw).strip().upper()
    if text not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return text


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row of the settings table: its field name, environment name, parser and default."""

    name: str
    env: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    secret: bool = False
    runtime: bool = False  # may be changed at run time through PATCH /api/settings


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "GATEWAY_HOST", str, "127.0.0.1", "Address to listen on."),
    Setting("port", "GATEWAY_PORT", _port, 8000, "Port to listen on (0 picks a free one)."),
    Setting("data_dir", "GATEWAY_DATA_DIR", str, "./data", "Folder for the SQLite file, uploads and logs."),
    Setting("database", "GATEWAY_DATABASE", _database_kind, "auto",
            "auto (MySQL when MYSQL_DATABASE is set, else SQLite), sqlite, mysql or memory (tests only)."),
    Setting("redis_url", "REDIS_URL", _redis_url, None, "Optional Redis for shared worker-load cache and events.",
            secret=True),
    Setting("redis_prefix", "GATEWAY_REDIS_PREFIX", str, "comfyui-gateway:", "Prefix of every Redis key and channel."),
    Setting("queue_cache_ttl_seconds", "QUEUE_CACHE_TTL_SECONDS", _positive(float), 5.0,
            "How long a worker's queue snapshot is trusted before it is asked again.", runtime=True),
    Setting("worker_request_timeout", "WORKER_REQUEST_TIMEOUT", _positive(float), 30.0,
            "Seconds to wait for a worker's answer.", runtime=True),
    Setting("worker_auth_username", "WORKER_AUTH_USERNAME", _optional_str, None,
            "Basic-auth user sent to workers that have none of their own.", runtime=True),
    Setting("worker_auth_password", "WORKER_AUTH_PASSWORD", _optional_str, None,
            "Basic-auth password sent to workers that have none of their own.", secret=True, runtime=True),
    Setting("mysql_host", "MYSQL_HOST", str, "localhost", "MySQL/MariaDB host."),
    Setting("mysql_port", "MYSQL_PORT", _port, 3306, "MySQL/MariaDB port."),
    Setting("mysql_user", "MYSQL_USER", _optional_str, None, "MySQL/MariaDB user."),
    Setting("mysql_password", "MYSQL_PASSWORD", _optional_str, None, "MySQL/MariaDB password.", secret=True),
    Setting("mysql_database", "MYSQL_DATABASE", _optional_str, None,
            "Setting it switches persistence to MySQL/MariaDB."),
    Setting("api_keys", "GATEWAY_API_KEYS", _parse_list, (),
            "Comma-separated keys; when set, API calls need 'Authorization: Bearer KEY' or '?api_key='.",
            secret=True),
    Setting("admin_token", "GATEWAY_ADMIN_TOKEN", _optional_str, None,
            "When set, changing workers and settings needs this token as a Bearer token.", secret=True),
    Setting("health_interval", "GATEWAY_HEALTH_INTERVAL", _positive(float), 2.0,
            "Seconds between worker health checks."),
    Setting("offline_after", "GATEWAY_OFFLINE_AFTER", _positive(int), 3,
            "Failed health checks in a row before a worker is marked offline."),
    Setting("max_retries", "GATEWAY_MAX_RETRIES", _non_negative_int, 1,
            "How often a job whose worker died while running it is retried elsewhere.", runtime=True),
    Setting("default_max_queue", "GATEWAY_DEFAULT_MAX_QUEUE", _positive(int), 1,
            "Jobs a new worker holds at once (running plus waiting on it).", runtime=True),
    Setting("unique_output_names", "GATEWAY_UNIQUE_OUTPUT_NAMES", _parse_bool, True,
            "Tag each filename_prefix with the worker (img_gw2_00001_.png) so /view without prompt_id "
            "always finds the right file."),
    Setting("editor_file_limit_mb", "GATEWAY_EDITOR_FILE_LIMIT_MB", _positive(float), 8.0,
            "Largest file (saved workflow, settings) the ComfyUI editor at /comfy/ may store in the gateway.",
            runtime=True),
    Setting("editor_cache_mb", "GATEWAY_EDITOR_CACHE_MB", _non_negative_int, 64,
            "Memory for the editor's static files relayed from workers (0: no cache).", runtime=True),
    Setting("log_level", "GATEWAY_LOG_LEVEL", _log_level, "INFO", "DEBUG, INFO, WARNING or ERROR."),
    Setting("tray", "GATEWAY_TRAY", _parse_bool, False, "Show a tray icon (needs a display)."),
    Setting("open_browser", "GATEWAY_OPEN_BROWSER", _parse_bool, False, "Open the admin page on start."),
    # Several instances on one MySQL (+ Redis): docs/scaling.md.
    Setting("instance_name", "GATEWAY_INSTANCE_NAME", _optional_str, None,
            "This instance's name on the admin page and in logs (default: host name and port)."),
    Setting("advertise_url", "GATEWAY_ADVERTISE_URL", _http_url, None,
            "The address other instances reach this one at (default: the bound address, or this machine's "
            "address towards MySQL when bound to all interfaces)."),
    Setting("lease_seconds", "GATEWAY_LEASE_SECONDS", _lease_seconds, 5.0,
            "How long the dispatcher lease lasts without renewal: another instance takes over within this "
            "plus about a second after the dispatcher dies."),
    Setting("cluster_poll_interval", "GATEWAY_CLUSTER_POLL_INTERVAL", _positive(float), 1.0,
            "Seconds between reads of the store for other instances' changes while Redis is away (five "
            "times as long while it is up)."),
    Setting("queue_timeout", "GATEWAY_QUEUE_TIMEOUT", _non_negative_float, 0.0,
            "Fail a job that waited this many seconds in the gateway without reaching a worker "
            "(error type queue_timeout); 0 waits for ever.", runtime=True),
    # Security (issue 12).
    Setting("allowed_hosts", "GATEWAY_ALLOWED_HOSTS", _parse_list, (),
            "Extra host names the gateway answers to for changes and WebSockets (besides loopback names and "
            "the bound address), e.g. gateway.studio.lan."),
    Setting("allowed_origins", "GATEWAY_ALLOWED_ORIGINS", _parse_list, (),
            "Web origins other than the gateway itself whose pages may change things, e.g. "
            "http://editor.studio.lan:8188."),
    Setting("trusted_proxies", "GATEWAY_TRUSTED_PROXIES", _networks, (),
            "Addresses or ranges of reverse proxies whose X-Forwarded-For/-Proto and X-Real-IP are believed."),
    Setting("max_upload_size", "GATEWAY_MAX_UPLOAD_SIZE", _size, 100 * 1024 * 1024,
            "Largest upload accepted (bytes, or e.g. 100MB); also what /ws advertises as max_upload_size."),
    Setting("max_json_body_size", "GATEWAY_MAX_JSON_BODY_SIZE", _size, 10 * 1024 * 1024,
            "Largest JSON request body accepted (bytes, or e.g. 10MB)."),
    Setting("max_queued", "GATEWAY_MAX_QUEUED", _non_negative_int, 100000,
            "Unfinished jobs the cluster holds at most; more submissions get 429 (0: no limit).", runtime=True),
    Setting("max_queued_per_key", "GATEWAY_MAX_QUEUED_PER_KEY", _non_negative_int, 50000,
            "Unfinished jobs one API key may have at once; more get 429 (0: no limit; only with API keys).",
            runtime=True),
    Setting("webhook_secret", "GATEWAY_WEBHOOK_SECRET", _optional_str, None,
            "When set, every webhook carries an HMAC-SHA256 signature and a timestamp (see docs/api.md).",
            secret=True),
    # Waiting for results (issue 16).
    Setting("max_wait_seconds", "GATEWAY_MAX_WAIT_SECONDS", _non_negative_float, 300.0,
            "Longest a request may wait for a job: POST /api/prompt with wait, GET /api/task/{id}/status?wait= "
            "(longer waits are cut to this; 0 answers at once).", runtime=True),
    Setting("public_url", "GATEWAY_PUBLIC_URL", _http_url, None,
            "The address clients reach the gateway at, for the download urls in webhooks (default: "
            "advertise_url, else the bound address; behind a proxy or load balancer, its address)."),
)

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The merged, validated configuration. Frozen: runtime changes make a new copy."""

    host: str
    port: int
    data_dir: str
    database: str
    redis_url: str | None
    redis_prefix: str
    queue_cache_ttl_seconds: float
    worker_request_timeout: float
    worker_auth_username: str | None
    worker_auth_password: str | None
    mysql_host: str
    mysql_port: int
    mysql_user: str | None
    mysql_password: str | None
    mysql_database: str | None
    api_keys: tuple[str, ...]
    admin_token: str | None
    health_interval: float
    offline_after: int
    max_retries: int
    default_max_queue: int
    unique_output_names: bool
    editor_file_limit_mb: float
    editor_cache_mb: int
    log_level: str
    tray: bool
    open_browser: bool
    instance_name: str | None
    advertise_url: str | None
    lease_seconds: float
    cluster_poll_interval: float
    queue_timeout: float
    allowed_hosts: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    max_upload_size: int
    max_json_body_size: int
    max_queued: int
    max_queued_per_key: int
    webhook_secret: str | None
    max_wait_seconds: float
    public_url: str | None
    workers: tuple[dict, ...] = ()
    config_file: str | None = None

    @property
    def database_kind(self) -> str:
        """The store actually used: mysql when MYSQL_DATABASE is set (auto), else sqlite."""
        if self.database != "auto":
            return self.database
        return "mysql" if self.mysql_database else "sqlite"

    @property
    def data_path(self) -> Path:
        """The data folder as an absolute path."""
        return Path(self.data_dir).expanduser().resolve()

    def public_dict(self) -> dict:
        """Settings without secrets, for logs and the API."""
        out = {}
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if setting.secret:
                out[setting.name + "_set"] = bool(value)
            else:
                out[setting.name] = list(value) if isinstance(value, tuple) else value
        return out

    def __repr__(self) -> str:
        # Never print secrets, even by accident in a log line or a traceback.
        return f"Settings({self.public_dict()!r})"

    def with_changes(self, changes: Mapping[str, Any]) -> "Settings":
        """A copy with some settings changed, each parsed and validated like at start-up."""
        parsed = {name: _parse_one(SETTINGS_BY_NAME[name], raw, "API") for name, raw in changes.items()}
        return dataclasses.replace(self, **parsed)


def _parse_one(setting: Setting, raw: Any, source: str) -> Any:
    try:
        return setting.parse(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {setting.name} ({setting.env}) from {source}: {exc}") from None


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of setting names to values")
    return data


def _yaml_values(data: dict, path: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in data.items():
        name = str(key).lower()
        if name == "workers":
            continue
        setting = SETTINGS_BY_NAME.get(name) or next((s for s in SETTINGS if s.env.lower() == name), None)
        if setting is None:
            raise ConfigError(f"unknown setting {key!r} in {path}")
        values[setting.name] = _parse_one(setting, raw, str(path))
    return values


def _yaml_workers(data: dict, path: Path) -> tuple[dict, ...]:
    workers = data.get("workers") or []
    if not isinstance(workers, list):
        raise ConfigError(f"setting workers in {path} must be a list")
    out = []
    for index, item in enumerate(workers):
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict) or "url" not in item:
            raise ConfigError(f"setting workers[{index}] in {path} needs at least a url")
        out.append(dict(item))
    return tuple(out)


def _env_values(env: Mapping[str, str | None], source: str) -> dict[str, Any]:
    return {s.name: _parse_one(s, env[s.env], source) for s in SETTINGS if env.get(s.env) is not None}


def load_settings(
    config_file: str | None = None,
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: str | None = ".env",
) -> Settings:
    """Merge every source into a validated Settings; raises ConfigError naming the bad setting."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    workers: tuple[dict, ...] = ()
    path = Path(config_file) if config_file else None
    if path is None and Path("gateway.yaml").is_file():
        path = Path("gateway.yaml")
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        data = _read_yaml(path)
        values.update(_yaml_values(data, path))
        workers = _yaml_workers(data, path)
    if env_file and Path(env_file).is_file():
        values.update(_env_values(dotenv_values(env_file), env_file))
    values.update(_env_values(environ, "environment"))
    for name, raw in (cli or {}).items():
        if raw is not None:
            values[name] = _parse_one(SETTINGS_BY_NAME[name], raw, "command line")
    return Settings(**values, workers=workers, config_file=str(path) if path else None)
