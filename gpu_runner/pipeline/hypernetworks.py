"""A1111 hypernetworks at inference: small residual MLPs on the inputs of the attention key and value projections.

The file is safetensors (never a pickle): `<width>.<0|1>.linear.<n>.weight|bias`, where width is the input width of
the projections it serves (768 for SD1.5's cross-attention text, or a UNet channel width for self-attention),
0 the key's module and 1 the value's, and `n` the index in A1111's `torch.nn.Sequential` (a gap between two
linear layers holds the activation, named by the metadata's `activation_func`; dropout is a no-op at inference).
As in A1111, a projection of input x reads `x + mlp(x) * weight`. The projections are wrapped for one batch and
the original modules put back after; the base's weights are never touched, so the base stays bit-identical.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import safe_open

from gpu_runner.pipeline.requests import Unsupported

Modules = dict[int, tuple[torch.nn.Sequential, torch.nn.Sequential]]
_ACTIVATIONS = {
    "relu": torch.nn.ReLU, "leakyrelu": torch.nn.LeakyReLU, "elu": torch.nn.ELU, "swish": torch.nn.Hardswish,
    "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "silu": torch.nn.SiLU, "gelu": torch.nn.GELU,
}


class _Residual(torch.nn.Module):
    def __init__(self, projection: torch.nn.Module, mlp: torch.nn.Module, weight: float) -> None:
        super().__init__()
        self.projection, self.mlp, self.weight = projection, mlp, weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x + self.mlp(x.to(self._dtype())).to(x.dtype) * self.weight)

    def _dtype(self) -> torch.dtype:
        return next(self.mlp.parameters()).dtype


def _sequential(tensors: dict[str, torch.Tensor], activation: str) -> torch.nn.Sequential:
    indices = sorted({int(name.split(".")[1]) for name in tensors})
    layers: list[torch.nn.Module] = []
    for position, index in enumerate(indices):
        weight, bias = tensors[f"linear.{index}.weight"], tensors.get(f"linear.{index}.bias")
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            linear.weight.copy_(weight)
            if bias is not None:
                linear.bias.copy_(bias)
        layers.append(linear)
        following = indices[position + 1] if position + 1 < len(indices) else None
        if following is not None and following - index > 1 and activation in _ACTIVATIONS:
            layers.append(_ACTIVATIONS[activation]())
    return torch.nn.Sequential(*layers)


def load(path: Path) -> Modules:
    if path.suffix != ".safetensors":
        raise Unsupported(f"hypernetwork {path.name}: only .safetensors hypernetworks are loaded (never pickles)")
    grouped: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    try:
        with safe_open(str(path), framework="pt") as handle:
            activation = (handle.metadata() or {}).get("activation_func", "linear")
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                width, which, rest = name.split(".", 2)
                grouped.setdefault((int(width), int(which)), {})[rest] = handle.get_tensor(name)
        modules: Modules = {}
        for width in sorted({w for w, _ in grouped}):
            key, value = (_sequential(grouped[(width, which)], activation) for which in (0, 1))
            modules[width] = (key.eval(), value.eval())
        return modules
    except (ValueError, KeyError, OSError, RuntimeError) as error:
        raise Unsupported(f"hypernetwork {path.name} is not in the expected layout: {error}") from error


@contextmanager
def attached(unet: torch.nn.Module, networks: Sequence[tuple[Modules, float]], name: str = "") -> Iterator[None]:
    """Wrap every attention's to_k/to_v whose input width a network serves; put the originals back after."""
    wrapped: list[tuple[torch.nn.Module, str, torch.nn.Module]] = []
    try:
        for modules, weight in networks:
            before = len(wrapped)
            for attention in [m for m in unet.modules() if hasattr(m, "to_k") and hasattr(m, "to_v")]:
                width = getattr(attention.to_k, "in_features", None)
                pair = modules.get(width) if isinstance(width, int) else None
                if pair is None:
                    continue
                for attribute, mlp in zip(("to_k", "to_v"), pair, strict=True):
                    original = getattr(attention, attribute)
                    parameter = next(original.parameters())
                    mlp.to(parameter.device)
                    wrapped.append((attention, attribute, original))
                    setattr(attention, attribute, _Residual(original, mlp, weight))
            if len(wrapped) == before:
                raise Unsupported(f"hypernetwork {name} does not fit this base model: no attention of its widths "
                                  f"{sorted(modules)}")
        yield
    finally:
        for attention, attribute, original in reversed(wrapped):
            setattr(attention, attribute, original)
