"""`PipelinePool`: the runner's one entry point into the GPU work.

`generate` takes requests, groups them into batches (same `batch_key`, and the same number of 75-token prompt
windows, since padding a prompt with empty windows would change its image), runs each batch on its cached base
with its adapters applied, and answers one outcome per request, in the order given. One call at a time: calls
from several threads queue on a lock (one GPU, one batch).
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from gpu_runner.pipeline import adapters
from gpu_runner.pipeline.cache import BaseCache, RunOptions, check_base
from gpu_runner.pipeline.denoise import Outcome, run_batch
from gpu_runner.pipeline.hashing import short_hash
from gpu_runner.pipeline.preview import PreviewClock
from gpu_runner.pipeline.prompts import PromptEncoder, parse_weighted
from gpu_runner.pipeline.requests import GenerationRequest, StepReport, Unsupported
from gpu_runner.pipeline.schedulers import SAMPLERS

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
LATENT_FACTOR = 8  # SD VAEs downsample by 8: sizes must be multiples of it


def check_request(request: GenerationRequest) -> None:
    """Refuse what cannot be served, before any model is loaded; the message names the field."""
    if request.scheduler not in SAMPLERS:
        raise Unsupported(f"scheduler {request.scheduler!r} is not one of {', '.join(SAMPLERS)}")
    if request.steps < 1:
        raise Unsupported(f"steps must be at least 1 (got {request.steps})")
    for name, value in (("width", request.width), ("height", request.height)):
        if value < LATENT_FACTOR or value % LATENT_FACTOR:
            raise Unsupported(f"{name} must be a positive multiple of {LATENT_FACTOR} (got {value})")
    if not math.isfinite(request.guidance_scale) or request.guidance_scale < 0:
        raise Unsupported(f"guidance_scale must be a finite number of 0 or more (got {request.guidance_scale})")
    if (request.init_image is None) != (request.strength is None):
        raise Unsupported("img2img needs both init_image and strength (txt2img neither)")
    if request.init_image is not None and request.strength is not None:
        if not 0 < request.strength <= 1:
            raise Unsupported(f"strength must be in (0, 1] (got {request.strength})")
        if int(request.steps * request.strength) < 1:
            raise Unsupported(
                f"strength {request.strength} of {request.steps} steps leaves no denoising step: raise either"
            )
        try:
            Image.open(io.BytesIO(request.init_image)).verify()
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise Unsupported(f"the source image cannot be read as an image: {error}") from None
    adapters.check_adapters(request.adapters)
    check_base(request.base, request.base_config)
    parse_weighted(request.prompt)
    parse_weighted(request.negative_prompt)


def _batches(requests: Sequence[GenerationRequest]) -> list[list[GenerationRequest]]:
    groups: dict[tuple[object, ...], list[GenerationRequest]] = {}
    for request in requests:
        groups.setdefault(request.batch_key(), []).append(request)
    return list(groups.values())


class PipelinePool:
    def __init__(
        self,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        memory_budget_bytes: int,
        preview_every_steps: int = 5,
        preview_min_interval_s: float = 0.5,
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}")
        self._cache = BaseCache(RunOptions(device, DTYPES[dtype], channels_last, compile), memory_budget_bytes)
        self._preview_every = preview_every_steps
        self._preview_interval = preview_min_interval_s
        self._lock = threading.Lock()

    @property
    def loaded_bases(self) -> list[Path]:
        """Cached bases, least recently used first."""
        return self._cache.loaded

    def check(self, request: GenerationRequest) -> None:
        """Raise `Unsupported` for a request `generate` would refuse (cheap: no model is loaded)."""
        try:
            check_request(request)
        except Unsupported as error:
            raise Unsupported(error.message, key=request.key) from None

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_step: Callable[[StepReport], None],
        is_canceled: Callable[[str], bool],
    ) -> list[Outcome]:
        """Blocking; outcomes in request order. Raises `Unsupported` (with `key` of the first request concerned)."""
        if len({r.key for r in requests}) != len(requests):
            raise ValueError("request keys must be unique within one generate call")
        for request in requests:
            self.check(request)
        outcomes: dict[str, Outcome] = {}
        with self._lock:
            for batch in _batches(requests):
                try:
                    outcomes.update(self._run(batch, on_step, is_canceled))
                except Unsupported as error:
                    raise Unsupported(error.message, key=error.key or batch[0].key) from error
        return [outcomes[r.key] for r in requests]

    def _run(
        self,
        batch: list[GenerationRequest],
        on_step: Callable[[StepReport], None],
        is_canceled: Callable[[str], bool],
    ) -> dict[str, Outcome]:
        first = batch[0]
        base = self._cache.get(first.base, first.base_config)
        hashes = {a.path: short_hash(a.path) for a in first.adapters}
        clock = PreviewClock(self._preview_every, self._preview_interval)
        outcomes: dict[str, Outcome] = {}
        with adapters.applied(base.pipe, first.adapters):
            encoder = PromptEncoder(base.pipe)
            encoded = [encoder.encode(r.prompt, r.negative_prompt) for r in batch]
            by_windows: dict[int, list[int]] = {}
            for index, conditioning in enumerate(encoded):
                by_windows.setdefault(conditioning.windows, []).append(index)
            for members in by_windows.values():
                for outcome in run_batch(
                    base, [batch[i] for i in members], [encoded[i] for i in members], hashes,
                    on_step=on_step, is_canceled=is_canceled, clock=clock,
                ):
                    outcomes[outcome.key] = outcome
        return outcomes
