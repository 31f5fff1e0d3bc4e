"""One batch of compatible requests through the denoising loop, written out so that each member can leave it.

The loop is diffusers' txt2img / img2img loop (same noise draws, same guidance, same scheduler calls; an
unweighted request gives diffusers' pixels) with three additions: each member has its own CPU generator, so its
image does not depend on its batch neighbours; a member whose `is_canceled` turns true leaves at the next step,
its rows cut from the latents, the conditioning, the generators and the scheduler's history (no decode for it);
and rate-limited previews from the predicted clean latent.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from gpu_runner.pipeline.cache import LoadedBase
from gpu_runner.pipeline.png import a1111_parameters, encode_png
from gpu_runner.pipeline.preview import PreviewClock, preview_jpegs
from gpu_runner.pipeline.prompts import Conditioning
from gpu_runner.pipeline.requests import Canceled, GenerationRequest, GenerationResult, StepReport
from gpu_runner.pipeline.schedulers import SAMPLERS, keep_samples, make_scheduler, predicted_clean_latent, timesteps_for

Outcome = GenerationResult | Canceled


def _step_kwargs(scheduler: Any, generators: list[torch.Generator]) -> dict[str, Any]:
    accepted = set(inspect.signature(scheduler.step).parameters)
    kwargs: dict[str, Any] = {}
    if "generator" in accepted:
        kwargs["generator"] = generators
    if "eta" in accepted:
        kwargs["eta"] = 0.0
    return kwargs


def _initial_latents(
    base: LoadedBase, requests: Sequence[GenerationRequest], scheduler: Any, timesteps: torch.Tensor,
    generators: list[torch.Generator],
) -> torch.Tensor:
    pipe, first = base.pipe, requests[0]
    dtype, device = pipe.unet.dtype, pipe.device
    shape = (len(requests), pipe.unet.config.in_channels, first.height // pipe.vae_scale_factor,
             first.width // pipe.vae_scale_factor)
    if first.init_image is None:
        return randn_tensor(shape, generator=generators, device=device, dtype=dtype) * scheduler.init_noise_sigma
    images = torch.cat([
        pipe.image_processor.preprocess(
            Image.open(io.BytesIO(r.init_image or b"")).convert("RGB"), height=first.height, width=first.width
        )
        for r in requests
    ]).to(device=device, dtype=pipe.vae.dtype)
    clean = torch.cat([
        retrieve_latents(pipe.vae.encode(images[i : i + 1]), generator=generators[i]) for i in range(len(requests))
    ]) * pipe.vae.config.scaling_factor
    noise = randn_tensor(shape, generator=generators, device=device, dtype=dtype)
    return scheduler.add_noise(clean.to(dtype), noise, timesteps[:1].repeat(len(requests)))


def _decode(base: LoadedBase, latents: torch.Tensor) -> list[Image.Image]:
    vae = base.pipe.vae
    pixels = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
    images: list[Image.Image] = base.pipe.image_processor.postprocess(
        pixels, output_type="pil", do_denormalize=[True] * len(latents)
    )
    return images


@torch.inference_mode()
def run_batch(
    base: LoadedBase,
    requests: Sequence[GenerationRequest],
    conditioning: Sequence[Conditioning],
    adapter_hashes: dict[Path, str],
    *,
    on_step: Callable[[StepReport], None],
    is_canceled: Callable[[str], bool],
    clock: PreviewClock,
) -> list[Outcome]:
    first = requests[0]
    spec = SAMPLERS[first.scheduler]
    scheduler = make_scheduler(first.scheduler, base.pipe.scheduler.config)
    timesteps = timesteps_for(scheduler, first.steps, first.strength, base.pipe.device)
    total = len(timesteps)
    generators = [torch.Generator("cpu").manual_seed(r.seed) for r in requests]
    latents = _initial_latents(base, requests, scheduler, timesteps, generators)
    guided = first.guidance_scale > 1.0
    negative = torch.cat([c.negative for c in conditioning])
    positive = torch.cat([c.positive for c in conditioning])
    active = list(range(len(requests)))
    outcomes: list[Outcome] = []

    for index, t in enumerate(timesteps):
        leaving = [row for row, member in enumerate(active) if is_canceled(requests[member].key)]
        if leaving:
            outcomes += [Canceled(requests[active[row]].key, index) for row in leaving]
            keep = [row for row in range(len(active)) if row not in leaving]
            keep_samples(scheduler, keep, len(active))
            rows = torch.tensor(keep, dtype=torch.long, device=latents.device)
            latents, negative, positive = (x.index_select(0, rows) for x in (latents, negative, positive))
            generators = [generators[row] for row in keep]
            active = [active[row] for row in keep]
            if not active:
                return outcomes
        model_input = scheduler.scale_model_input(torch.cat([latents] * 2) if guided else latents, t)
        context = torch.cat([negative, positive]) if guided else positive
        noise = base.unet_forward(model_input, t, encoder_hidden_states=context, return_dict=False)[0]
        if guided:
            unconditional, conditional = noise.chunk(2)
            noise = unconditional + first.guidance_scale * (conditional - unconditional)
        step = index + 1
        previews: list[bytes | None] = [None] * len(active)
        if clock.due(step, total):
            previews = list(preview_jpegs(predicted_clean_latent(scheduler, spec.sigma_space, latents, noise, t)))
        latents = scheduler.step(noise, t, latents, **_step_kwargs(scheduler, generators), return_dict=False)[0]
        for member, preview in zip(active, previews, strict=True):
            on_step(StepReport(requests[member].key, step, total, preview))

    for member, image in zip(active, _decode(base, latents), strict=True):
        request = requests[member]
        parameters = a1111_parameters(request, base.model_hash, adapter_hashes)
        outcomes.append(GenerationResult(
            request.key, encode_png(image, parameters), image.width, image.height, request.seed,
            conditioning[member].handling,
        ))
    return outcomes
