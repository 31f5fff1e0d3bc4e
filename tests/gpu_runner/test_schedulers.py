"""The scheduler mapping, the progress total, and the clean-latent estimate previews are drawn from."""

from __future__ import annotations

import pytest
import torch

from gpu_runner.pipeline.schedulers import SAMPLERS, make_scheduler, predicted_clean_latent, timesteps_for

SD_CONFIG = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000}


@pytest.mark.parametrize(("name", "steps", "total"), [("DDIM", 6, 6), ("PNDM", 6, 7), ("KLMS", 6, 6), ("PNDM", 2, 3)])
def test_the_progress_total_is_the_schedulers_own_timestep_count(name: str, steps: int, total: int) -> None:
    assert len(timesteps_for(make_scheduler(name, SD_CONFIG), steps, None, "cpu")) == total


def test_img2img_walks_the_last_strength_share_of_the_schedule() -> None:
    assert len(timesteps_for(make_scheduler("K_EULER", SD_CONFIG), 10, 0.3, "cpu")) == 3


@pytest.mark.parametrize("name", ["DDIM", "K_EULER", "K_EULER_ANCESTRAL", "KLMS", "DPMSolverMultistep"])
def test_the_preview_latent_is_the_schedulers_own_clean_estimate(name: str) -> None:
    scheduler = make_scheduler(name, SD_CONFIG)
    timesteps = timesteps_for(scheduler, 8, None, "cpu")
    t = timesteps[0]
    latents = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0)) * scheduler.init_noise_sigma
    noise = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    scheduler.scale_model_input(latents, t)
    ours = predicted_clean_latent(scheduler, SAMPLERS[name].sigma_space, latents, noise, t)
    if name == "DPMSolverMultistep":
        scheduler._init_step_index(t)
        theirs = scheduler.convert_model_output(noise, sample=latents)  # DPM++ works on the data prediction
    else:
        extra = {} if name == "KLMS" else {"generator": torch.Generator().manual_seed(2)}
        theirs = scheduler.step(noise, t, latents, **extra).pred_original_sample
    assert torch.allclose(ours, theirs, atol=1e-4)
