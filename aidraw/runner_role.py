"""`aidraw runner`: one GPU (or CPU) runner, wired from the settings (docs/tasks.md, "The runner").

The default base is `AIDRAW_BASE_MODEL_PATH` (a diffusers folder, or a single checkpoint file with
`AIDRAW_BASE_MODEL_CONFIG`, its local config folder); without it, the tiny random model is built once under
`<data dir>/models/tiny`, so the whole generation path works on any machine. `AIDRAW_RUNNER_CAPABILITIES` lists
what the runner serves: `default`, and `<capability>=<path>` (`<capability>=<file>:<config folder>` for a single
checkpoint file) for base models an admin registered with that capability (`aidraw base register`); model files
(adapters, users' checkpoints) are cached under `<data dir>/models/files` (`AIDRAW_RUNNER_MODEL_CACHE` bytes).
`AIDRAW_RUNNER_KINDS` says whether it generates on them, trains on them (`train-<capability>`, docs/training.md),
or both.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

from gpu_runner.work_items import Base
from infra.capabilities import CAPABILITY
from infra.settings import Settings, SettingsError


def default_base(settings: Settings) -> Base:
    if settings.base_model_path:
        path = Path(settings.base_model_path)
        if not path.exists():
            raise SettingsError(f"AIDRAW_BASE_MODEL_PATH={str(path)!r}: nothing is there; point it at a diffusers "
                                "folder or a checkpoint file.")
        config = Path(settings.base_model_config) if settings.base_model_config else None
        return Base(path, path.stem, config)
    from gpu_runner.tiny_model import ensure_tiny_model

    return Base(ensure_tiny_model(settings.data_dir / "models" / "tiny"), "tiny")


def _served_base(entry: str) -> tuple[str, Base]:
    """`<capability>=<path>` or `<capability>=<checkpoint file>:<config folder>`."""
    name, _, target = entry.partition("=")
    path, _, config = target.partition(":")
    if not CAPABILITY.fullmatch(name) or name.startswith("train-") or name == "default" or not path:
        raise SettingsError(f"AIDRAW_RUNNER_CAPABILITIES: {entry!r} is neither `default` nor `<capability>=<path>` "
                            "(a capability is 1 to 64 letters, digits, _ or -, not starting with train-; a single "
                            "checkpoint file takes its config folder after a colon: `<name>=<file>:<folder>`).")
    if not Path(path).exists():
        raise SettingsError(f"AIDRAW_RUNNER_CAPABILITIES: {entry!r}: nothing is at {path!r}.")
    return name, Base(Path(path), Path(path).stem, Path(config) if config else None)


def capabilities(settings: Settings) -> dict[str, Base]:
    bases: dict[str, Base] = {}
    for entry in (e.strip() for e in settings.runner_capabilities.split(",")):
        if entry == "default":
            bases["default"] = default_base(settings)
            continue
        name, base = _served_base(entry)
        bases[name] = base
    served = dict(bases) if "inference" in settings.runner_kinds else {}
    if "train" in settings.runner_kinds:
        served |= {f"train-{name}": base for name, base in bases.items()}
    return served


def run_runner(settings: Settings, nats_url: str) -> int:
    from gpu_runner.pipeline import PipelinePool
    from gpu_runner.presence import device_memory
    from gpu_runner.worker import RunnerConfig, Worker
    from infra.storage.factory import blob_store_from_env

    config = RunnerConfig(
        nats_url=nats_url, stream=settings.stream_name, prefix=settings.subject_prefix,
        name=settings.runner_name or socket.gethostname(), device=settings.runner_device,
        capabilities=capabilities(settings), batch_size=settings.runner_batch_size,
        ack_wait_s=settings.runner_ack_wait_s, max_deliver=settings.runner_max_deliver,
        url_allowed=settings.url_allowed_hosts, train_samples=settings.runner_train_samples,
        ttl_s=settings.runner_ttl_s, memory_bytes=device_memory(settings.runner_device))
    try:
        pool = PipelinePool(device=settings.runner_device, dtype=settings.runner_dtype,
                            memory_budget_bytes=settings.runner_memory_budget_bytes)
    except ValueError as exc:
        raise SettingsError(f"AIDRAW_RUNNER_DTYPE: {exc}") from None
    from events.store.aio import AsyncJetStreamStore
    from gpu_runner.model_cache import ModelFileCache

    blobs = blob_store_from_env(settings.data_dir, settings.storage)
    files = ModelFileCache(settings.data_dir / "models" / "files", settings.runner_model_cache_bytes, blobs)
    worker = Worker(config, pool, blobs,
                    lambda nc: AsyncJetStreamStore(nc, settings.stream_name, settings.subject_prefix), files)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await worker.run(stop)

    asyncio.run(main())
    return 0
