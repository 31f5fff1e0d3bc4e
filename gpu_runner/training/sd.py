"""What every Stable Diffusion trainer shares: the base's parts, the dataset as latents, the noise-prediction loss.

Images are encoded by the VAE once (the latent distribution's mean and deviation are kept, and a latent is sampled
from them each step, as the diffusers examples do by encoding each step). The loss is the diffusers recipe's: noise
(plus optional offset noise) added at a random timestep, MSE against the noise (or the velocity for v-prediction
bases), optionally weighted by Min-SNR-gamma. On a GPU the UNet runs under bf16 autocast with gradient
checkpointing (the trainable weights and the optimizer stay float32); random numbers are drawn on the CPU, so a
run draws the same numbers on any device.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from PIL import Image
from transformers import CLIPTextModel, CLIPTokenizer

from gpu_runner.training.spec import TrainSpec


class TrainingFailed(Exception):
    """A reason the owner can act on (bad dataset, base that does not fit)."""


@dataclass(frozen=True)
class TrainingImage:
    """One dataset item, already decoded, resized and cropped to the training resolution."""

    image: Image.Image
    caption: str
    repeats: int = 1

    def fingerprint(self) -> tuple[bytes, str]:
        return self.image.tobytes() + f"{self.image.size}x{self.repeats}".encode(), self.caption


@dataclass
class BaseParts:
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: Any


def load_base(base: str | Path) -> BaseParts:
    folder = Path(base)
    if not (folder / "model_index.json").is_file():
        raise TrainingFailed(f"base model {folder} is not a local diffusers folder")
    parts = BaseParts(
        unet=UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True),
        vae=AutoencoderKL.from_pretrained(folder / "vae", local_files_only=True),
        text_encoder=CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True),
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True),
        noise_scheduler=DDPMScheduler.from_pretrained(folder / "scheduler", local_files_only=True),
    )
    for module in (parts.unet, parts.vae, parts.text_encoder):
        module.requires_grad_(False)
        module.eval()
    return parts


def pixels(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


class SDTrainee:
    """The dataset as latent distributions, batches per step, the loss; subclasses choose what trains."""

    def __init__(self, spec: TrainSpec, parts: BaseParts, items: Sequence[TrainingImage],
                 device: str = "cpu") -> None:
        resolution = spec.int("resolution")
        for number, item in enumerate(items):
            if item.image.size != (resolution, resolution):
                raise TrainingFailed(f"dataset item {number} is {item.image.size}, not {resolution}x{resolution}")
        if not items:
            raise TrainingFailed("the dataset has no usable images")
        self.spec, self.parts, self.device = spec, parts, torch.device(device)
        for module in (parts.unet, parts.vae, parts.text_encoder):
            module.to(self.device)
        if self.device.type == "cuda":
            parts.unet.enable_gradient_checkpointing()
        self.captions = [item.caption for item in items]
        with torch.no_grad():
            stack = torch.stack([pixels(item.image) for item in items]).to(self.device)
            dist = parts.vae.encode(stack).latent_dist
        self.latent_mean, self.latent_std = dist.mean.cpu(), dist.std.cpu()
        self.order = [i for i, item in enumerate(items) for _ in range(item.repeats)]
        self.scaling = float(parts.vae.config.scaling_factor)

    def batch(self, step: int, generator: torch.Generator) -> list[int]:
        """A shuffled pass over the (repeated) items per epoch, depending only on the step."""
        size = self.spec.int("batch_size")
        picks = []
        for position in range(step * size, (step + 1) * size):
            epoch, index = divmod(position, len(self.order))
            permutation = torch.randperm(len(self.order), generator=torch.Generator().manual_seed(
                self.spec.int("seed") * 7919 + epoch))
            picks.append(self.order[int(permutation[index])])
        return picks

    def encode_text(self, captions: Sequence[str]) -> torch.Tensor:
        tokenizer = self.parts.tokenizer
        ids = tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids
        return self.parts.text_encoder(ids.to(self.device))[0]

    def noise_loss(self, indices: Sequence[int], hidden: torch.Tensor, generator: torch.Generator,
                   *, timesteps: torch.Tensor | None = None) -> torch.Tensor:
        mean, std = self.latent_mean[list(indices)], self.latent_std[list(indices)]
        latents = (mean + std * torch.randn(mean.shape, generator=generator)) * self.scaling
        noise = torch.randn(latents.shape, generator=generator)
        offset = self.spec.get("noise_offset")
        if offset:
            noise = noise + offset * torch.randn((*latents.shape[:2], 1, 1), generator=generator)
        scheduler = self.parts.noise_scheduler
        if timesteps is None:
            timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(indices),), generator=generator)
        noisy = scheduler.add_noise(latents, noise, timesteps)  # drawn on the CPU: the same numbers on any device
        velocity = scheduler.config.prediction_type == "v_prediction"
        target = scheduler.get_velocity(latents, noise, timesteps) if velocity else noise
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            predicted = self.parts.unet(noisy.to(self.device), timesteps.to(self.device), hidden).sample
        per_sample = ((predicted.float() - target.to(self.device).float()) ** 2).mean(dim=(1, 2, 3))
        gamma = self.spec.optional("min_snr_gamma")
        if gamma is not None:
            alphas = scheduler.alphas_cumprod[timesteps]
            snr = (alphas / (1 - alphas)).to(self.device)
            weight = torch.clamp(snr, max=gamma) / (snr + 1 if velocity else snr)
            per_sample = per_sample * weight
        return per_sample.mean()

    def eval_loss(self, draws: int = 8) -> float:
        """The loss on every item at fixed noise and timesteps, so runs and stages compare (the overfit test)."""
        generator = torch.Generator().manual_seed(12345)
        steps = self.parts.noise_scheduler.config.num_train_timesteps
        total, indices = 0.0, list(range(len(self.captions)))
        with torch.no_grad():
            hidden = self.encode_text(self.captions)
            for draw in range(draws):
                timesteps = torch.full((len(indices),), (draw * 2 + 1) * steps // (draws * 2))
                total += float(self.noise_loss(indices, hidden, generator, timesteps=timesteps))
        return total / draws


class FrozenTextTrainee(SDTrainee):
    """A trainee that trains weights on the UNet side only (LoRA, hypernetworks): the captions' encodings never
    change, so they are computed once; `ready(params)` ends their set-up."""

    def ready(self, params: list[torch.nn.Parameter]) -> None:
        self._params = params
        with torch.no_grad():
            self.hidden = self.encode_text(self.captions)

    def parameters(self) -> list[torch.nn.Parameter]:
        return self._params

    def loss(self, step: int, generator: torch.Generator) -> torch.Tensor:
        indices = self.batch(step, generator)
        return self.noise_loss(indices, self.hidden[indices], generator)

    def after_step(self) -> None:
        return None
