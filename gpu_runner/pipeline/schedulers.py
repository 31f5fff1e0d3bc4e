"""The six samplers the API names, as diffusers schedulers built fresh per batch from the base's config.

A fresh scheduler per batch keeps per-run state (DPM's and PLMS's history, LMS's derivatives) out of the cached
base, so txt2img and img2img, and concurrent bases, share nothing mutable. `steps_offset` is set to 1 up front
(what diffusers' SD pipelines force with a deprecation warning, and what img2img assumes), and DDIM's `clip_sample`
to False (diffusers' SD pipelines force that too: SD latents are not clipped to [-1, 1]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
)


@dataclass(frozen=True)
class SamplerSpec:
    scheduler_class: Any  # a diffusers scheduler class (diffusers' own typing is too loose to name it)
    overrides: Mapping[str, Any]
    a1111_name: str  # what A1111's `Sampler:` field calls it, so its tools read our PNGs
    sigma_space: bool  # latents live scaled by sigma (k-diffusion style): previews must undo it


SAMPLERS: Mapping[str, SamplerSpec] = {
    "DDIM": SamplerSpec(DDIMScheduler, {}, "DDIM", False),
    "K_EULER": SamplerSpec(EulerDiscreteScheduler, {}, "Euler", True),
    "DPMSolverMultistep": SamplerSpec(DPMSolverMultistepScheduler, {}, "DPM++ 2M", False),
    "K_EULER_ANCESTRAL": SamplerSpec(EulerAncestralDiscreteScheduler, {}, "Euler a", True),
    # PRK warm-up steps fail below 4 steps and are not what A1111's PLMS does.
    "PNDM": SamplerSpec(PNDMScheduler, {"skip_prk_steps": True}, "PLMS", False),
    "KLMS": SamplerSpec(LMSDiscreteScheduler, {}, "LMS", True),
}

# Per-sample state kept between steps, by attribute: sliced when a batch member leaves.
_SAMPLE_STATE_LISTS = ("model_outputs", "ets", "derivatives")
_SAMPLE_STATE_TENSORS = ("cur_sample", "cur_model_output")


def make_scheduler(name: str, base_config: Mapping[str, Any]) -> Any:
    spec = SAMPLERS[name]
    config = {**dict(base_config), "steps_offset": 1, "clip_sample": False, **spec.overrides}
    return spec.scheduler_class.from_config(config)


def timesteps_for(
    scheduler: Any, steps: int, strength: float | None, device: torch.device | str
) -> torch.Tensor:
    """The timesteps a run walks through; their count is the progress total (PLMS runs one more than `steps`).

    img2img skips the first `1 - strength` of the schedule, exactly as diffusers' img2img pipeline does.
    """
    scheduler.set_timesteps(steps, device=device)
    timesteps: torch.Tensor = scheduler.timesteps
    if strength is None:
        return timesteps
    init = min(int(steps * strength), steps)
    start = max(steps - init, 0) * scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    return timesteps[start:]


def keep_samples(scheduler: Any, keep: Sequence[int], batch: int) -> None:
    """Drop the batch members not in `keep` from the scheduler's per-sample history (members leaving a batch)."""
    index = torch.tensor(list(keep), dtype=torch.long)

    def cut(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == batch:
            return value.index_select(0, index.to(value.device))
        return value

    for name in _SAMPLE_STATE_LISTS:
        history = getattr(scheduler, name, None)
        if isinstance(history, list):
            setattr(scheduler, name, [cut(item) for item in history])
    for name in _SAMPLE_STATE_TENSORS:
        if hasattr(scheduler, name):
            setattr(scheduler, name, cut(getattr(scheduler, name)))


def predicted_clean_latent(
    scheduler: Any, sample_space: bool, latents: torch.Tensor, noise_pred: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """x0 from the current latents and the (guided) model output, before the scheduler steps.

    Sigma-space schedulers (Euler, Euler a, LMS) hold x = x0 + sigma * eps; the others hold the DDPM form
    x = sqrt(abar) x0 + sqrt(1 - abar) eps. Both v- and epsilon-prediction bases are handled.
    """
    prediction = scheduler.config.get("prediction_type", "epsilon")
    if sample_space:
        sigma = scheduler.sigmas[scheduler.step_index].to(latents.device, torch.float32)
        abar = 1.0 / (1.0 + sigma**2)
        x_t = latents.float() * abar.sqrt()
    else:
        abar = scheduler.alphas_cumprod[int(t)].to(latents.device, torch.float32)
        x_t = latents.float()
    if prediction == "v_prediction":
        return abar.sqrt() * x_t - (1 - abar).sqrt() * noise_pred.float()
    return (x_t - (1 - abar).sqrt() * noise_pred.float()) / abar.sqrt()
