"""What a caller asks the pipeline for, and what it gets back: plain frozen values, no torch in sight."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

AdapterKind = Literal["lora", "ti", "hyper"]


class Unsupported(Exception):
    """A request this runner cannot serve, with a message a user can act on.

    `key` names the request when the error belongs to one (None for a pool-wide problem).
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


@dataclass(frozen=True)
class AdapterRef:
    """A LoRA, textual inversion or hypernetwork file applied to one request only.

    `token` is the word a textual inversion answers to (defaults to the file's stem, as A1111 does); `name` is
    what the PNG's recipe calls it (defaults to the file's stem).
    """

    path: Path
    kind: AdapterKind
    weight: float = 1.0
    token: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.path.stem


@dataclass(frozen=True)
class GenerationRequest:
    """One image. Scheduler names are the API's (DDIM, K_EULER, DPMSolverMultistep, K_EULER_ANCESTRAL, PNDM, KLMS).

    `base` is a diffusers folder or a single `.safetensors`/`.ckpt` file; a single file needs `base_config`, a local
    diffusers folder holding the configs and the tokenizer (nothing is ever fetched from a hub).
    img2img: `init_image` (encoded image bytes) with `strength` in (0, 1].
    """

    key: str
    prompt: str
    negative_prompt: str
    steps: int
    guidance_scale: float
    scheduler: str
    seed: int
    width: int
    height: int
    base: Path
    base_name: str
    adapters: tuple[AdapterRef, ...] = ()
    init_image: bytes | None = None
    strength: float | None = None
    base_config: Path | None = None

    def batch_key(self) -> tuple[object, ...]:
        """Requests with equal keys may share one denoising batch (prompts, seeds and init images may differ)."""
        return (
            self.base, self.base_config, self.width, self.height, self.steps, self.scheduler,
            self.guidance_scale, self.adapters, self.init_image is not None, self.strength,
        )


@dataclass(frozen=True)
class StepReport:
    """A finished denoising step; `preview_jpeg` is set on the (rate-limited) steps that carry a preview."""

    key: str
    step: int
    total: int
    preview_jpeg: bytes | None


@dataclass(frozen=True)
class GenerationResult:
    """A finished image: PNG bytes with the recipe in their A1111 `parameters` text chunk.

    `prompt_handling` is "whole" when the prompt fit the text encoder's 75-token window, "chunked" when it was
    split into several 75-token windows whose encodings were concatenated.
    """

    key: str
    png: bytes
    width: int
    height: int
    seed: int
    prompt_handling: str


@dataclass(frozen=True)
class Canceled:
    """A request that `is_canceled` stopped after `step` finished steps: no decode, no image."""

    key: str
    step: int
