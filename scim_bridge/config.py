"""Settings: every option is a `SCIM_BRIDGE_*` environment variable, a key of an optional YAML
config file, or a command-line flag (flags win, then the environment, then the file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .store.redis_connect import SCHEMES as REDIS_SCHEMES
from .store.redis_connect import RedisOptions
from .store.redis_connect import validate as validate_redis


class ConfigError(Exception):
    """A bad setting, reported as one line that names it."""


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCIM_BRIDGE_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    store: str = "sqlite:///scim-bridge.db"
    # Redis (store/redis_connect.py, README "Redis"): an ACL user, its password (prefer the file),
    # TLS files for rediss://, the key prefix, and durability: with min_replicas N every write
    # waits for N replica acknowledgements (WAIT) before its 2xx, and answers 503 past the timeout.
    redis_username: str | None = None
    redis_password: SecretStr | None = None
    redis_password_file: Path | None = None
    redis_tls_ca_file: Path | None = None
    redis_tls_cert_file: Path | None = None
    redis_tls_key_file: Path | None = None
    redis_tls_check_hostname: bool = True
    redis_sentinel_password: SecretStr | None = None
    redis_key_prefix: str | None = None  # default sb: (plain, Sentinel), {sb}: (cluster)
    redis_min_replicas: int = Field(0, ge=0, le=16)
    # below the store's 5 s send timeout, so a missing acknowledgement is a 503, not a hang
    redis_min_replicas_timeout_seconds: float = Field(1.0, gt=0, le=3.0)
    public_url: str | None = None  # e.g. https://bridge.example.com; default: an allowed Host (below)
    # Host headers trusted to build meta.location, $ref and the context JWT's iss when public_url is
    # unset; default: localhost, 127.0.0.1, [::1] and the bind address, each with the port.
    allowed_hosts: Annotated[list[str], NoDecode] = []
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    capture: Path | None = None
    access_log: bool = False  # one line per request (secrets in URLs redacted like every log line)
    metrics: bool = True  # GET /metrics and the per-request counters (web/metrics.py); off: neither
    console: bool = True  # /console, its `/` redirect for browsers and its chart sampler (web/console); off: none
    log_format: Literal["json", "text"] | None = None  # default: json unless stderr is a terminal (logs.py)
    # SIGTERM (web/server.py): not ready at once, still serving for drain_seconds so load balancers
    # stop sending; then in-flight requests and sync entries get shutdown_grace_seconds to finish.
    drain_seconds: float = Field(5.0, ge=0)
    shutdown_grace_seconds: float = Field(20.0, ge=0)

    # HTTP hygiene (web/server.py): header size, read deadlines, keep-alive
    max_header_bytes: int = Field(32 * 1024, ge=1024)  # request line + all headers
    max_request_line_bytes: int = Field(16 * 1024, ge=256)  # ≥ 3 × the 4096-character filter, encoded
    max_header_line_bytes: int = Field(8 * 1024, ge=256)  # one header line
    header_timeout_seconds: float = Field(10.0, gt=0)  # first byte to end of headers
    body_timeout_seconds: float = Field(60.0, gt=0)  # end of headers to end of body
    keep_alive_timeout_seconds: int = Field(5, ge=1)  # an idle kept-alive connection is closed after this

    tokens: Annotated[list[str], NoDecode] = []  # static bearer tokens, comma-separated, for rotation
    basic_users: Annotated[list[str], NoDecode] = []  # "user:password" pairs, comma-separated
    api_keys: Annotated[list[str], NoDecode] = []  # raw keys: `Authorization: <key>` or the header below
    api_key_header: str | None = None  # e.g. X-API-Key
    admin_tokens: Annotated[list[str], NoDecode] = []  # bearer tokens for /admin/api (not for SCIM)
    oauth_token_lifetime: int = Field(3600, ge=900, le=86400)  # OTDS wants ≥ 900 s
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    delete_mode: Literal["hard", "deactivate"] = "hard"
    put_keeps_active: bool = True
    put_keeps_members: bool = True
    strict_members: bool = False
    group_patch_returns_resource: bool = True
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # A list filter that no index answers: comparisons × resources scanned (scim/listing.py).
    max_filter_cost: int = Field(1_000_000, ge=0)  # 0: no bound

    policy: Path | None = None  # the mapping policy (YAML); without it nothing is sent to any target
    sync_workers: int = Field(1, ge=0, le=64)  # worker loops in this process (0: SCIM only)
    sync_concurrency: int = Field(8, ge=1, le=256)  # resources each worker processes at once
    sync_lease_seconds: float = Field(60.0, ge=1.0)  # a crashed process's claimed work returns after this
    audit_retention_days: float = Field(365, ge=0)  # audit entries older than this are pruned (0: keep forever)

    # Activity (web/webhooks.py, audit/): Cloudinary's SDK accepts a notification for 7200 s by default.
    webhook_max_age_seconds: float = Field(7200.0, ge=1.0)
    last_login_poll_seconds: float = Field(3600.0, ge=0.0)  # 0: no last-login polling
    console_idle_minutes: float = Field(30.0, gt=0)  # the console's session ends after this long unused

    _split_lists = field_validator("tokens", "basic_users", "api_keys", "admin_tokens", "allowed_hosts", mode="before")(
        _split
    )

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        if value.split(":", 1)[0].lower() not in ("sqlite", *REDIS_SCHEMES):
            raise ValueError(
                "use sqlite:///path.db, redis://host:port/db, rediss://…, "
                "redis+sentinel://host:port[,host:port]/service_name or redis+cluster://host:port[,host:port]"
            )
        return value

    @model_validator(mode="after")
    def _redis_combination(self) -> Settings:
        if self.store.split(":", 1)[0].lower() in REDIS_SCHEMES:
            try:
                validate_redis(self.store, self.redis_options())
            except ValueError as error:  # the message names the settings involved
                raise ValueError(str(error)) from None
        return self

    def redis_options(self) -> RedisOptions:
        return RedisOptions(
            username=self.redis_username,
            password=self.redis_password.get_secret_value() if self.redis_password else None,
            password_file=self.redis_password_file,
            tls_ca_file=self.redis_tls_ca_file,
            tls_cert_file=self.redis_tls_cert_file,
            tls_key_file=self.redis_tls_key_file,
            tls_check_hostname=self.redis_tls_check_hostname,
            sentinel_password=self.redis_sentinel_password.get_secret_value() if self.redis_sentinel_password else None,
            key_prefix=self.redis_key_prefix,
            min_replicas=self.redis_min_replicas,
            min_replicas_timeout=self.redis_min_replicas_timeout_seconds,
        )

    @field_validator("basic_users")
    @classmethod
    def _pairs(cls, value: list[str]) -> list[str]:
        for pair in value:
            if ":" not in pair:
                raise ValueError("each entry must be user:password")
        return value

    def basic_user_map(self) -> dict[str, str]:
        return dict(pair.split(":", 1) for pair in self.basic_users)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings, turning any error into a ConfigError naming the setting."""
    file_values: dict[str, Any] = {}
    if config_file:
        try:
            loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"config file {config_file}: {error}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_file}: must be a mapping of settings")
        file_values = {str(k).replace("-", "_").lower(): v for k, v in loaded.items()}
    import os

    env_names = {key[len("SCIM_BRIDGE_") :].lower() for key in os.environ if key.startswith("SCIM_BRIDGE_")}
    # File values fill in what the environment does not set; flags override both.
    merged = {k: v for k, v in file_values.items() if k not in env_names}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**merged)
    except ValidationError as error:
        first = error.errors()[0]
        if not first["loc"]:  # a check across settings (the Redis ones) names them in its message
            raise ConfigError(str(first["msg"]).removeprefix("Value error, ")) from None
        name = ".".join(str(part) for part in first["loc"]) or "settings"
        raise ConfigError(f"SCIM_BRIDGE_{name.upper()}: {first['msg']}") from None
