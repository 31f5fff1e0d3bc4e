"""Checkpoints: a full fine-tune of the UNet (and the text encoder, when `train_text_encoder` is 1), the diffusers
train_text_to_image recipe (noise-prediction loss, AdamW, optional Min-SNR and offset noise; gradient checkpointing
and bf16 autocast on a GPU, weights and optimizer in float32).

The artefact is one safetensors file in the original SD layout (original_layout.py): UNet, VAE (the base's,
unchanged) and text encoder, float32 as trained, which A1111, ComfyUI and `from_single_file` load and our runner can
use as a base. No EMA copy (it would double the memory of the largest trainee for a few hundred steps' runs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from safetensors.torch import save as save_bytes

from gpu_runner.training.original_layout import to_original
from gpu_runner.training.sd import BaseParts, SDTrainee, TrainingImage
from gpu_runner.training.spec import TrainSpec


class CkpTrainee(SDTrainee):
    def __init__(self, spec: TrainSpec, parts: BaseParts, items: Sequence[TrainingImage],
                 device: str = "cpu") -> None:
        super().__init__(spec, parts, items, device)
        self.with_text = spec.int("train_text_encoder") == 1
        self.trained = {"unet": parts.unet} | ({"text_encoder": parts.text_encoder} if self.with_text else {})
        for module in self.trained.values():
            module.requires_grad_(True)
            module.train()
        if self.with_text and self.device.type == "cuda":
            parts.text_encoder.gradient_checkpointing_enable()
        if not self.with_text:
            with torch.no_grad():
                self.hidden = self.encode_text(self.captions)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for module in self.trained.values() for p in module.parameters()]

    def loss(self, step: int, generator: torch.Generator) -> torch.Tensor:
        indices = self.batch(step, generator)
        hidden = self.encode_text([self.captions[i] for i in indices]) if self.with_text else self.hidden[indices]
        return self.noise_loss(indices, hidden, generator)

    def after_step(self) -> None:
        return None

    def state(self) -> dict[str, torch.Tensor]:
        return {f"{name}.{key}": value.detach().cpu().clone()
                for name, module in self.trained.items() for key, value in module.state_dict().items()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        for name, module in self.trained.items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    def artefact(self) -> bytes:
        tensors = to_original(self.parts.unet, self.parts.vae, self.parts.text_encoder)
        return save_bytes(tensors, metadata={"format": "pt"})
