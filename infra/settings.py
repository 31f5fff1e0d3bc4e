"""Every setting of the service, each read from one documented environment variable.

The table of variables is in docs/configuration.md; keep the two in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}={raw!r} is not a number; set it to a number or unset it.") from exc


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}={raw!r} is not an integer; set it to an integer or unset it.") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SystemExit(f"{name}={raw!r} is not a boolean; use true or false.")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./var")
    # Empty means: start the embedded server under data_dir.
    nats_url: str = ""
    database_url: str = ""
    stream_name: str = "AIDRAW"
    subject_prefix: str = "aidraw"
    # Bounded wait of a caller's query for projections to reach the caller's last write.
    read_your_writes_timeout_s: float = 2.0
    # /readyz reports not ready when projections are further behind than this many events.
    ready_max_lag_events: int = 1000
    duplicate_window_s: float = 120.0
    projector_batch: int = 1000
    log_level: str = "INFO"
    log_json: bool = True
    # Accounts: sign-up open to anyone (false: only admins create users), session lifetime (sliding) and how
    # often use extends it, failed-login limits per account and per client address (per API replica).
    signup_open: bool = True
    session_ttl_s: float = 30 * 24 * 3600.0
    session_refresh_s: float = 3600.0
    login_max_failures: int = 10
    login_max_failures_per_address: int = 100
    login_failure_window_s: float = 900.0
    # Images: upload limits (bytes of the file, pixels of the picture), and how long image views (browsing
    # history) are kept in their stream.
    upload_max_bytes: int = 20 * 1024 * 1024
    upload_max_pixels: int = 40_000_000
    views_max_age_s: float = 90 * 24 * 3600.0
    # How often the blob reaper looks for blobs no image uses, and how old such a blob must be (seconds).
    blob_sweep_interval_s: float = 6 * 3600.0
    blob_orphan_age_s: float = 3600.0
    # Largest request body other than a multipart upload (JSON bodies), bytes: 413 above (infra/body_limit.py).
    json_max_bytes: int = 1024 * 1024
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            host=_env("AIDRAW_HOST", "127.0.0.1"),
            port=_env_int("AIDRAW_PORT", 8000),
            data_dir=Path(_env("AIDRAW_DATA_DIR", "./var")),
            nats_url=_env("AIDRAW_NATS_URL", ""),
            database_url=_env("AIDRAW_DATABASE_URL", ""),
            stream_name=_env("AIDRAW_STREAM", "AIDRAW"),
            subject_prefix=_env("AIDRAW_SUBJECT_PREFIX", "aidraw"),
            read_your_writes_timeout_s=_env_float("AIDRAW_READ_YOUR_WRITES_TIMEOUT", 2.0),
            ready_max_lag_events=_env_int("AIDRAW_READY_MAX_LAG", 1000),
            duplicate_window_s=_env_float("AIDRAW_DUPLICATE_WINDOW", 120.0),
            projector_batch=_env_int("AIDRAW_PROJECTOR_BATCH", 1000),
            log_level=_env("AIDRAW_LOG_LEVEL", "INFO").upper(),
            log_json=_env_bool("AIDRAW_LOG_JSON", True),
            signup_open=_env_bool("AIDRAW_SIGNUP_OPEN", True),
            session_ttl_s=_env_float("AIDRAW_SESSION_TTL", 30 * 24 * 3600.0),
            session_refresh_s=_env_float("AIDRAW_SESSION_REFRESH", 3600.0),
            login_max_failures=_env_int("AIDRAW_LOGIN_MAX_FAILURES", 10),
            login_max_failures_per_address=_env_int("AIDRAW_LOGIN_MAX_FAILURES_PER_ADDRESS", 100),
            login_failure_window_s=_env_float("AIDRAW_LOGIN_FAILURE_WINDOW", 900.0),
            upload_max_bytes=_env_int("AIDRAW_UPLOAD_MAX_BYTES", 20 * 1024 * 1024),
            upload_max_pixels=_env_int("AIDRAW_UPLOAD_MAX_PIXELS", 40_000_000),
            views_max_age_s=_env_float("AIDRAW_VIEWS_MAX_AGE", 90 * 24 * 3600.0),
            blob_sweep_interval_s=_env_float("AIDRAW_BLOB_SWEEP_INTERVAL", 6 * 3600.0),
            blob_orphan_age_s=_env_float("AIDRAW_BLOB_ORPHAN_AGE", 3600.0),
            json_max_bytes=_env_int("AIDRAW_JSON_MAX_BYTES", 1024 * 1024),
        )
