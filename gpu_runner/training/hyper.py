"""Hypernetworks as A1111 trains them: per attention input width, two residual MLPs (key, value), layers 1, 2, 1.

One pair per distinct input width of the UNet's attention key projections (the text width for cross-attention,
the channel widths for self-attention: A1111's default sizes), linear activation (A1111's default), weights drawn
from N(0, 0.01), biases zero. They are attached to the UNet exactly as inference attaches them
(gpu_runner/pipeline/hypernetworks.py), so what trains is what generates. The file is safetensors in the layout
inference reads: `<width>.<0|1>.linear.<0|1>.weight|bias`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack

import torch
from safetensors.torch import save as save_bytes

from gpu_runner.pipeline import hypernetworks
from gpu_runner.training.sd import BaseParts, FrozenTextTrainee, TrainingImage
from gpu_runner.training.spec import TrainSpec


def _mlp(width: int, generator: torch.Generator) -> torch.nn.Sequential:
    layers = torch.nn.Sequential(torch.nn.Linear(width, 2 * width), torch.nn.Linear(2 * width, width))
    with torch.no_grad():
        for layer in layers:
            assert isinstance(layer, torch.nn.Linear)
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.01)
            layer.bias.zero_()
    return layers


class HyperTrainee(FrozenTextTrainee):
    def __init__(self, spec: TrainSpec, parts: BaseParts, items: Sequence[TrainingImage],
                 device: str = "cpu") -> None:
        super().__init__(spec, parts, items, device)
        generator = torch.Generator().manual_seed(spec.int("seed"))
        widths = sorted({m.to_k.in_features for m in parts.unet.modules() if hasattr(m, "to_k")})
        self.modules: hypernetworks.Modules = {
            width: (_mlp(width, generator).to(self.device), _mlp(width, generator).to(self.device))
            for width in widths
        }
        self._stack = ExitStack()
        self._stack.enter_context(hypernetworks.attached(parts.unet, [(self.modules, 1.0)], "training"))
        self.ready([p for pair in self.modules.values() for mlp in pair for p in mlp.parameters()])

    def state(self) -> dict[str, torch.Tensor]:
        return {f"{width}.{which}.{name}": tensor.detach().cpu().clone()
                for width, pair in self.modules.items() for which, mlp in enumerate(pair)
                for name, tensor in mlp.state_dict(prefix="linear.").items()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        for width, pair in self.modules.items():
            for which, mlp in enumerate(pair):
                prefix = f"{width}.{which}.linear."
                mlp.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    def artefact(self) -> bytes:
        return save_bytes(self.state(), metadata={"activation_func": "linear", "layer_structure": "1,2,1"})
