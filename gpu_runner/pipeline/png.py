"""Finished images as PNG with the recipe in A1111's `parameters` text chunk (what its PNG Info and tools read)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from gpu_runner.pipeline.requests import AdapterRef, GenerationRequest
from gpu_runner.pipeline.schedulers import SAMPLERS


def _number(value: float) -> str:
    return f"{value:g}"


def _adapter_field(adapters: Sequence[AdapterRef], hashes: dict[Path, str], kind: str) -> str | None:
    chosen = [a for a in adapters if a.kind == kind]
    if not chosen:
        return None
    return '"' + ", ".join(f"{a.label}: {hashes[a.path]}" for a in chosen) + '"'


def a1111_parameters(request: GenerationRequest, model_hash: str, adapter_hashes: dict[Path, str]) -> str:
    """`prompt\\nNegative prompt: ...\\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x64, ...`.

    LoRAs appear as A1111 writes them: `<lora:name:weight>` in the prompt and their hashes in `Lora hashes`.
    """
    prompt = request.prompt + "".join(
        f" <lora:{a.label}:{_number(a.weight)}>" for a in request.adapters if a.kind == "lora"
    )
    lines = [prompt]
    if request.negative_prompt:
        lines.append(f"Negative prompt: {request.negative_prompt}")
    fields = [
        ("Steps", str(request.steps)),
        ("Sampler", SAMPLERS[request.scheduler].a1111_name),
        ("CFG scale", _number(request.guidance_scale)),
        ("Seed", str(request.seed)),
        ("Size", f"{request.width}x{request.height}"),
        ("Model hash", model_hash),
        ("Model", request.base_name),
    ]
    if request.strength is not None:
        fields.append(("Denoising strength", _number(request.strength)))
    for name, kind in (("Lora hashes", "lora"), ("TI hashes", "ti")):
        value = _adapter_field(request.adapters, adapter_hashes, kind)
        if value is not None:
            fields.append((name, value))
    lines.append(", ".join(f"{name}: {value}" for name, value in fields))
    return "\n".join(lines)


def encode_png(image: Image.Image, parameters: str) -> bytes:
    info = PngInfo()
    info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
