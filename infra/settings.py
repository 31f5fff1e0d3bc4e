"""Every setting of the service, each read from one documented environment variable.

This is the only module that reads the environment (the embedded supervisor passes it on to the roles it
starts). The table of variables is in docs/configuration.md; keep the two in step.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from events.nats_urls import NatsUrlError, nats_servers
from infra.proxies import Network, parse_networks
from infra.urls import NOTHING_ALLOWED, AllowList


class SettingsError(ValueError):
    """A setting's value is not usable; the message names the variable, the value and what to set instead."""


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_BODY_BYTES = 1024  # AIDRAW_JSON_MAX_BYTES, AIDRAW_UPLOAD_MAX_BYTES: smaller refuses every request
MIN_DECODE_MEMORY = 16 * 1024 * 1024  # AIDRAW_DECODE_MEMORY: less refuses even small images (8 MiB headroom)
MIN_ORPHAN_AGE_S = 60.0  # AIDRAW_BLOB_ORPHAN_AGE: younger blobs may be uploads still on their way to their event
MIN_SECRET_CHARS = 16  # AIDRAW_OPS_TOKEN: shorter is guessable
MAX_SECONDS = 10 * 365 * 24 * 3600.0  # durations: longer means never, and overflows dates and JetStream's limits
# 2 ** 63 - 1: larger is no sensible count of bytes, events or seconds (and overflows where the value is used).
_HUGE = 2**63 - 1
# Blob storage's variables, read here and checked where the store is built (infra/storage/factory.py), so that
# a command which uses no blobs is not stopped by them.
STORAGE_VARIABLES = ("AIDRAW_STORAGE", "AIDRAW_S3_ENDPOINT", "AIDRAW_S3_BUCKET", "AIDRAW_S3_ACCESS_KEY",
                     "AIDRAW_S3_SECRET_KEY", "AIDRAW_S3_REGION", "AIDRAW_S3_PUBLIC_URL", "AIDRAW_S3_CREATE_BUCKET")


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _number_text(value: float) -> str:
    text = str(int(value)) if float(value).is_integer() else f"{value:g}"
    return f"{text} (10 years)" if value == MAX_SECONDS else text


def _range_text(low: float, high: float | None, low_open: bool) -> str:
    if high is not None:
        start = f"above {_number_text(low)}" if low_open else f"from {_number_text(low)}"
        return f"{start} {'up ' if low_open else ''}to {_number_text(high)}"
    return f"above {_number_text(low)}" if low_open else f"{_number_text(low)} or more"


def _check_range(name: str, raw: str, value: float, kind: str, low: float, high: float | None,
                 low_open: bool = False) -> None:
    inside = (value > low if low_open else value >= low) and (high is None or value <= high)
    if not inside:
        raise SettingsError(f"{name}={raw!r} is out of range: use {kind} {_range_text(low, high, low_open)}, "
                            "or unset it for the default.")
    if value > _HUGE:
        raise SettingsError(f"{name}={raw!r} is too large; use a smaller value, or unset it for the default.")


def _env_float(name: str, default: float, low: float = 0.0, high: float | None = None,
               low_open: bool = False) -> float:
    """A number within [low, high] ((low, high] with `low_open`; no upper bound without `high`); the default
    when unset."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number; set it to a number or unset it.") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name}={raw!r} is not a finite number; set it to a number or unset it.")
    _check_range(name, raw, value, "a number", low, high, low_open)
    return value


def _env_int(name: str, default: int, low: int = 0, high: int | None = None) -> int:
    """An integer within [low, high] (no upper bound without `high`); the default when unset."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer; set it to an integer or unset it.") from None
    _check_range(name, raw, value, "an integer", low, high)
    return value


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use true or false.")


def _env_token(name: str, default: str) -> str:
    """A NATS stream name or subject token: letters, digits, `_` and `-` (a `.` would split the subject)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", raw):
        raise SettingsError(f"{name}={raw!r} is not a usable name; use 1 to 64 letters, digits, _ or -.")
    return raw


SEARCH_BACKENDS = ("postgres", "elasticsearch")


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.strip().lower() not in choices:
        raise SettingsError(f"{name}={raw!r} is not one of {', '.join(choices)}.")
    return raw.strip().lower()


RUNNER_KINDS = ("inference", "train")


def _env_pg_memory(name: str, default: str) -> str:
    """A PostgreSQL memory size: a whole number and kB, MB or GB (its own units), at least 16MB."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    number, unit = raw[:-2], raw[-2:]
    scale = {"kB": 1, "MB": 1024, "GB": 1024 * 1024}.get(unit)
    kib = int(number) * scale if scale is not None and re.fullmatch("[0-9]{1,12}", number) else 0
    if not 16 * 1024 <= kib <= 2**40:
        raise SettingsError(f"{name}={raw!r} is not a PostgreSQL memory size from 16MB up: write it like 256MB or "
                            "4GB, or unset it for the default.")
    return f"{int(number)}{unit}"


def _env_kinds(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated, non-empty subset of RUNNER_KINDS, in that order."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    kinds = {k.strip().lower() for k in raw.split(",") if k.strip()}
    if not kinds or not kinds <= set(RUNNER_KINDS):
        raise SettingsError(f"{name}={raw!r} is not a list of {', '.join(RUNNER_KINDS)} (comma-separated).")
    return tuple(k for k in RUNNER_KINDS if k in kinds)


def _env_log_level(name: str, default: str) -> str:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.strip().upper() not in LOG_LEVELS:
        raise SettingsError(f"{name}={raw!r} is not a log level; use one of {', '.join(LOG_LEVELS)}.")
    return raw.strip().upper()


def _env_allow_list(name: str) -> AllowList:
    """Comma-separated host names and networks (CIDR); empty when unset."""
    raw = os.environ.get(name, "")
    try:
        return AllowList.parse(raw.split(","))
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}; list host names or networks such as 10.0.0.0/8, "
                            "separated by commas, or unset it.") from None


def _env_networks(name: str) -> tuple[Network, ...]:
    """Comma-separated addresses and networks (CIDR); empty when unset."""
    raw = os.environ.get(name, "")
    try:
        return parse_networks(raw.split(","))
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}; list addresses or networks such as 10.0.0.0/8, separated "
                            "by commas, or unset it.") from None
def _env_secret(name: str) -> str:
    """A token operators choose: empty (unset), or at least MIN_SECRET_CHARS printable characters without
    spaces. The message never repeats the value."""
    raw = os.environ.get(name, "")
    if raw and (len(raw) < MIN_SECRET_CHARS or not re.fullmatch(r"[!-~]+", raw)):
        raise SettingsError(f"{name} is not a usable token: use at least {MIN_SECRET_CHARS} printable characters "
                            "without spaces (for example the output of `openssl rand -hex 32`), or unset it.")
    return raw


def _env_nats_url(name: str) -> str:
    """Empty (the embedded server), or NATS server URLs, comma-separated (events/nats_urls.py). The message
    never repeats a password."""
    raw = os.environ.get(name, "").strip()
    if raw:
        try:
            nats_servers(raw)
        except NatsUrlError as exc:
            raise SettingsError(f"{name}: {exc}. Set nats://host:4222 (a cluster: its nodes' URLs, comma-separated)"
                                ", or unset it for the embedded server.") from None
    return raw


def ensure_data_dir(data_dir: Path) -> None:
    """Create the data folder (and its parents) if missing, or say in one line why it cannot be."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "a file of that name is in the way" if isinstance(exc, FileExistsError) else exc.strerror or exc
        raise SettingsError(f"AIDRAW_DATA_DIR={str(data_dir)!r}: the folder cannot be created ({why}); "
                            "choose a folder you may write to.") from None
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise SettingsError(f"AIDRAW_DATA_DIR={str(data_dir)!r}: the folder is not writable by this user; "
                            "choose a folder you may write to.")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./var")
    # Empty means: start the embedded server under data_dir. Several servers (a cluster): comma-separated.
    nats_url: str = ""
    database_url: str = ""
    # The embedded PostgreSQL's shared_buffers: a large gallery's HNSW index should fit (docs/search.md).
    pg_shared_buffers: str = "256MB"
    stream_name: str = "AIDRAW"
    subject_prefix: str = "aidraw"
    stream_replicas: int = 1
    # Bounded wait of a caller's query for projections to reach the caller's last write.
    read_your_writes_timeout_s: float = 2.0
    # /readyz reports not ready when projections are further behind than this many events.
    ready_max_lag_events: int = 1000
    duplicate_window_s: float = 120.0
    projector_batch: int = 1000
    # How long a write waits for the event log's answer before it is answered 503 (outcome unknown).
    event_log_timeout_s: float = 5.0
    # `aidraw run` restarts a crashed part; one that crashes restart_max times within restart_window_s stops it.
    restart_max: int = 5
    restart_window_s: float = 60.0
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
    # Reverse proxies whose X-Forwarded-For names the client (infra/proxies.py); empty: the peer is the client.
    trusted_proxies: tuple[Network, ...] = ()
    # Images: upload limits (bytes of the file, pixels of the picture), and how long image views (browsing
    # history) are kept in their stream.
    upload_max_bytes: int = 20 * 1024 * 1024
    upload_max_pixels: int = 25_000_000
    # Models: the largest `.safetensors` file `POST /api/models` accepts (each type has its own lower cap too).
    model_upload_max_bytes: int = 8 * 1024**3
    # Decoding uploaded images (infra/decode_pool.py): the memory all decodes of this process may take at once
    # (bytes), the threads that decode, uploads one user may have in progress, and how long an upload waits for
    # room before 429 (seconds).
    decode_memory_bytes: int = 512 * 1024 * 1024
    decode_workers: int = 2
    uploads_per_user: int = 2
    decode_wait_s: float = 10.0
    views_max_age_s: float = 90 * 24 * 3600.0
    # How often the blob reaper looks for blobs no image uses, and how old such a blob must be (seconds).
    blob_sweep_interval_s: float = 6 * 3600.0
    blob_orphan_age_s: float = 3600.0
    # Largest request body other than a multipart upload (JSON bodies), bytes: 413 above (infra/body_limit.py).
    json_max_bytes: int = 1024 * 1024
    # Generation: the most unfinished tasks one user may have (429 beyond), and the size bounds of a request
    # (each side up to the max side, width x height up to the pixel budget).
    task_max_unfinished: int = 20
    generation_max_side: int = 2048
    generation_max_pixels: int = 1536 * 1536
    # How many released tasks per capability may wait in the work queue for a runner (docs/tasks.md).
    scheduler_lookahead: int = 2
    # Hosts and networks that dataset URLs may name although private (infra/urls.py); empty: public hosts only.
    url_allowed_hosts: AllowList = NOTHING_ALLOWED
    # AIDRAW_STORAGE and AIDRAW_S3_*, as set (STORAGE_VARIABLES); kept out of repr: it holds the S3 secret.
    storage: dict[str, str] = field(default_factory=dict, repr=False)
    # `aidraw user create` only: the new user's password (empty: asked at a prompt).
    admin_password: str = field(default="", repr=False)
    # Operators' token: when set, /metrics and the detail of /readyz need `Authorization: Bearer <it>`.
    ops_token: str = field(default="", repr=False)
    # Live feed (WebSockets): open sockets per user (anonymous: per client address; more close 4429), and each
    # socket's send queue in messages (progress coalesces beyond it; docs/live.md).
    live_max_sockets_per_user: int = 32
    live_queue: int = 16
    # Similarity (docs/search.md): how many nearest images `similar=` and the recommendations rank (the rest
    # follow in date order), the weight of the prompt part of the combined score (the image part has 1 minus
    # it), the half-life of a view for `sort=history`, and whether the process manager runs the embedding worker.
    similar_nearest: int = 1000
    similar_prompt_weight: float = 0.5
    history_half_life_s: float = 7 * 24 * 3600.0
    embedder: bool = True
    # A local folder with a transformers CLIPModel and CLIPImageProcessor: the image part of the embeddings is
    # then CLIP's (a new recipe: rebuild the images read model; docs/search.md). Empty: the pixel descriptor.
    clip_model_path: str = ""
    # Which adapter serves the image lists (docs/search.md): "postgres" (rm.images with pgvector) or
    # "elasticsearch" (the index at elasticsearch_url, fed by the search projector).
    search_backend: str = "postgres"
    elasticsearch_url: str = ""
    # The runner (`aidraw runner`, docs/tasks.md "The runner"): its name in reports, torch device and dtype, how
    # many work items it takes at once, the pipelines' memory budget, the work items' lease and deliveries, what
    # it serves (`default` and `<capability>=<path>`, comma-separated), the default base (empty: the tiny
    # model under <data dir>/models/tiny) and the bytes of model files it caches (adapters, users' checkpoints).
    runner_name: str = ""
    runner_device: str = "cpu"
    runner_dtype: str = "float32"
    runner_batch_size: int = 4
    runner_memory_budget_bytes: int = 8 * 2**30
    runner_ack_wait_s: float = 60.0
    runner_max_deliver: int = 3
    runner_capabilities: str = "default"
    runner_model_cache_bytes: int = 20 * 2**30
    # What the runner does with them: generate (`inference`), train (`train`: it serves `train-<capability>`), or
    # both; training yields to waiting generations between steps.
    runner_kinds: tuple[str, ...] = RUNNER_KINDS
    # Sample images (previews made with the model as it stands) per training run; 0: none.
    runner_train_samples: int = 10
    # Runner heartbeats (docs/runners.md): a runner with no heartbeat for this long shows offline.
    runner_ttl_s: float = 15.0
    base_model_path: str = ""
    base_model_config: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        """The settings from the environment; SettingsError names the first variable whose value is unusable.

        Each variable's range is in docs/configuration.md."""
        settings = cls(
            host=_env("AIDRAW_HOST", "127.0.0.1"),
            # 0 would pick a random port, and the URL printed at start would say :0.
            port=_env_int("AIDRAW_PORT", 8000, 1, 65535),
            data_dir=Path(_env("AIDRAW_DATA_DIR", "./var")),
            nats_url=_env_nats_url("AIDRAW_NATS_URL"),
            database_url=_env("AIDRAW_DATABASE_URL", ""),
            stream_name=_env_token("AIDRAW_STREAM", "AIDRAW"),
            subject_prefix=_env_token("AIDRAW_SUBJECT_PREFIX", "aidraw"),
            stream_replicas=_env_int("AIDRAW_STREAM_REPLICAS", 1, 1, 5),
            # 0: answer at once, without waiting for the caller's last write.
            read_your_writes_timeout_s=_env_float("AIDRAW_READ_YOUR_WRITES_TIMEOUT", 2.0, 0, MAX_SECONDS),
            ready_max_lag_events=_env_int("AIDRAW_READY_MAX_LAG", 1000, 0),
            # JetStream reads a window of 0 as its own default (2 minutes).
            duplicate_window_s=_env_float("AIDRAW_DUPLICATE_WINDOW", 120.0, 0, MAX_SECONDS, low_open=True),
            projector_batch=_env_int("AIDRAW_PROJECTOR_BATCH", 1000, 1),
            event_log_timeout_s=_env_float("AIDRAW_EVENT_LOG_TIMEOUT", 5.0, 0, 300, low_open=True),
            restart_max=_env_int("AIDRAW_RESTART_MAX", 5, 1, 1000),
            restart_window_s=_env_float("AIDRAW_RESTART_WINDOW", 60.0, 0, MAX_SECONDS, low_open=True),
            log_level=_env_log_level("AIDRAW_LOG_LEVEL", "INFO"),
            log_json=_env_bool("AIDRAW_LOG_JSON", True),
            signup_open=_env_bool("AIDRAW_SIGNUP_OPEN", True),
            session_ttl_s=_env_float("AIDRAW_SESSION_TTL", 30 * 24 * 3600.0, 0, MAX_SECONDS, low_open=True),
            session_refresh_s=_env_float("AIDRAW_SESSION_REFRESH", 3600.0, 0, MAX_SECONDS, low_open=True),
            login_max_failures=_env_int("AIDRAW_LOGIN_MAX_FAILURES", 10, 1),
            login_max_failures_per_address=_env_int("AIDRAW_LOGIN_MAX_FAILURES_PER_ADDRESS", 100, 1),
            login_failure_window_s=_env_float("AIDRAW_LOGIN_FAILURE_WINDOW", 900.0, 0, MAX_SECONDS, low_open=True),
            trusted_proxies=_env_networks("AIDRAW_TRUSTED_PROXIES"),
            upload_max_bytes=_env_int("AIDRAW_UPLOAD_MAX_BYTES", 20 * 1024 * 1024, MIN_BODY_BYTES),
            upload_max_pixels=_env_int("AIDRAW_UPLOAD_MAX_PIXELS", 25_000_000, 1),
            model_upload_max_bytes=_env_int("AIDRAW_MODEL_UPLOAD_MAX_BYTES", 8 * 1024**3, MIN_BODY_BYTES),
            decode_memory_bytes=_env_int("AIDRAW_DECODE_MEMORY", 512 * 1024 * 1024, MIN_DECODE_MEMORY),
            decode_workers=_env_int("AIDRAW_DECODE_WORKERS", 2, 1, 64),
            uploads_per_user=_env_int("AIDRAW_UPLOADS_PER_USER", 2, 1),
            decode_wait_s=_env_float("AIDRAW_DECODE_WAIT", 10.0, 0, MAX_SECONDS),
            # JetStream reads a max age of 0 as "keep forever".
            views_max_age_s=_env_float("AIDRAW_VIEWS_MAX_AGE", 90 * 24 * 3600.0, 0, MAX_SECONDS, low_open=True),
            blob_sweep_interval_s=_env_float("AIDRAW_BLOB_SWEEP_INTERVAL", 6 * 3600.0, 0, MAX_SECONDS,
                                             low_open=True),
            # Younger blobs may belong to an upload still on its way to its event: never remove those.
            blob_orphan_age_s=_env_float("AIDRAW_BLOB_ORPHAN_AGE", 3600.0, MIN_ORPHAN_AGE_S, MAX_SECONDS),
            json_max_bytes=_env_int("AIDRAW_JSON_MAX_BYTES", 1024 * 1024, MIN_BODY_BYTES),
            task_max_unfinished=_env_int("AIDRAW_TASK_MAX_UNFINISHED", 20, 1, 100_000),
            generation_max_side=_env_int("AIDRAW_GENERATION_MAX_SIDE", 2048, 64, 8192),
            generation_max_pixels=_env_int("AIDRAW_GENERATION_MAX_PIXELS", 1536 * 1536, 64 * 64, 8192 * 8192),
            scheduler_lookahead=_env_int("AIDRAW_SCHEDULER_LOOKAHEAD", 2, 1, 1000),
            url_allowed_hosts=_env_allow_list("AIDRAW_URL_ALLOWED_HOSTS"),
            storage={name: os.environ[name] for name in STORAGE_VARIABLES if os.environ.get(name)},
            admin_password=_env("AIDRAW_ADMIN_PASSWORD", ""),
            ops_token=_env_secret("AIDRAW_OPS_TOKEN"),
            live_max_sockets_per_user=_env_int("AIDRAW_LIVE_MAX_SOCKETS_PER_USER", 32, 1),
            live_queue=_env_int("AIDRAW_LIVE_QUEUE", 16, 2),
            pg_shared_buffers=_env_pg_memory("AIDRAW_PG_SHARED_BUFFERS", "256MB"),
            similar_nearest=_env_int("AIDRAW_SIMILAR_NEAREST", 1000, 1, 10_000),
            similar_prompt_weight=_env_float("AIDRAW_SIMILAR_PROMPT_WEIGHT", 0.5, 0, 1),
            history_half_life_s=_env_float("AIDRAW_HISTORY_HALF_LIFE", 7 * 24 * 3600.0, 0, MAX_SECONDS,
                                           low_open=True),
            embedder=_env_bool("AIDRAW_EMBEDDER", True),
            clip_model_path=_env("AIDRAW_CLIP_MODEL_PATH", ""),
            search_backend=_env_choice("AIDRAW_SEARCH", "postgres", SEARCH_BACKENDS),
            elasticsearch_url=_env("AIDRAW_ELASTICSEARCH_URL", ""),
            runner_name=_env("AIDRAW_RUNNER_NAME", ""),
            runner_device=_env("AIDRAW_RUNNER_DEVICE", "cpu"),
            runner_dtype=_env("AIDRAW_RUNNER_DTYPE", "float32"),
            runner_batch_size=_env_int("AIDRAW_RUNNER_BATCH_SIZE", 4, 1, 64),
            runner_memory_budget_bytes=_env_int("AIDRAW_RUNNER_MEMORY_BUDGET", 8 * 2**30, 2**20),
            runner_ack_wait_s=_env_float("AIDRAW_RUNNER_ACK_WAIT", 60.0, 1, 3600),
            runner_max_deliver=_env_int("AIDRAW_RUNNER_MAX_DELIVER", 3, 1, 100),
            runner_capabilities=_env("AIDRAW_RUNNER_CAPABILITIES", "default"),
            runner_model_cache_bytes=_env_int("AIDRAW_RUNNER_MODEL_CACHE", 20 * 2**30, 2**20),
            runner_kinds=_env_kinds("AIDRAW_RUNNER_KINDS", RUNNER_KINDS),
            runner_train_samples=_env_int("AIDRAW_RUNNER_TRAIN_SAMPLES", 10, 0, 100),
            runner_ttl_s=_env_float("AIDRAW_RUNNER_TTL", 15.0, 3, 3600),
            base_model_path=_env("AIDRAW_BASE_MODEL_PATH", ""),
            base_model_config=_env("AIDRAW_BASE_MODEL_CONFIG", ""),
        )
        if settings.search_backend == "elasticsearch" and not settings.elasticsearch_url:
            raise SettingsError("AIDRAW_SEARCH=elasticsearch needs AIDRAW_ELASTICSEARCH_URL (the server's URL, "
                                "e.g. http://elasticsearch:9200); or unset AIDRAW_SEARCH for PostgreSQL.")
        if settings.clip_model_path and not (Path(settings.clip_model_path) / "config.json").is_file():
            raise SettingsError(f"AIDRAW_CLIP_MODEL_PATH={settings.clip_model_path!r} is not a folder with a CLIP"
                                " model (config.json, weights, preprocessor_config.json); unset it for the pixel"
                                " descriptor.")
        if settings.session_refresh_s >= settings.session_ttl_s:
            raise SettingsError(
                f"AIDRAW_SESSION_REFRESH={settings.session_refresh_s:g} is not below AIDRAW_SESSION_TTL="
                f"{settings.session_ttl_s:g}: sessions would end before any use extends them; set the refresh "
                "interval shorter than the session lifetime."
            )
        return settings
