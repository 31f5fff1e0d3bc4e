"""`aidraw runner`: one GPU (or CPU) runner, wired from the settings (docs/tasks.md, "The runner").

The default base is `AIDRAW_BASE_MODEL_PATH` (a diffusers folder, or a single checkpoint file with
`AIDRAW_BASE_MODEL_CONFIG`, its local config folder); without it, the tiny random model is built once under
`<data dir>/models/tiny`, so the whole generation path works on any machine. `AIDRAW_RUNNER_CAPABILITIES` lists
what the runner serves: `default`, and `base-<model id>=<path>` for registered base models.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

from gpu_runner.work_items import Base
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


def capabilities(settings: Settings) -> dict[str, Base]:
    served: dict[str, Base] = {}
    for entry in (e.strip() for e in settings.runner_capabilities.split(",")):
        if entry == "default":
            served["default"] = default_base(settings)
            continue
        name, _, path = entry.partition("=")
        if not name.startswith("base-") or not name[5:].isdigit() or not path:
            raise SettingsError(f"AIDRAW_RUNNER_CAPABILITIES: {entry!r} is neither `default` nor "
                                "`base-<model id>=<path>`.")
        served[name] = Base(Path(path), Path(path).stem)
    return served


def run_runner(settings: Settings, nats_url: str) -> int:
    from gpu_runner.pipeline import PipelinePool
    from gpu_runner.worker import RunnerConfig, Worker
    from infra.storage.factory import blob_store_from_env

    config = RunnerConfig(
        nats_url=nats_url, stream=settings.stream_name, prefix=settings.subject_prefix,
        name=settings.runner_name or socket.gethostname(), device=settings.runner_device,
        capabilities=capabilities(settings), batch_size=settings.runner_batch_size,
        ack_wait_s=settings.runner_ack_wait_s, max_deliver=settings.runner_max_deliver)
    try:
        pool = PipelinePool(device=settings.runner_device, dtype=settings.runner_dtype,
                            memory_budget_bytes=settings.runner_memory_budget_bytes)
    except ValueError as exc:
        raise SettingsError(f"AIDRAW_RUNNER_DTYPE: {exc}") from None
    from events.store.aio import AsyncJetStreamStore

    worker = Worker(config, pool, blob_store_from_env(settings.data_dir, settings.storage),
                    lambda nc: AsyncJetStreamStore(nc, settings.stream_name, settings.subject_prefix))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await worker.run(stop)

    asyncio.run(main())
    return 0
