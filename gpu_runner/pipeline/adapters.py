"""LoRA and textual inversion applied to a cached base for one batch, and taken off after.

LoRAs are fused for speed (no extra matmuls per step). Fusing adds `scale * B @ A` into the base weights and
unfusing subtracts it again, which is not bit-exact in floating point: so the base weights the LoRA touches are
copied before fusing and written back after unloading, and the cached base comes back bit for bit.
Textual inversion works on a copy of the tokenizer, and the embedding table it grows is put back to a copy taken
before (diffusers' own unload rebuilds the tokenizer, which is riskier).
Hypernetworks (A1111's, as safetensors) wrap the attention key and value projections for the batch and are
unwrapped after (gpu_runner/pipeline/hypernetworks.py); the base's weights are never touched.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from gpu_runner.pipeline import hypernetworks
from gpu_runner.pipeline.requests import AdapterRef, Unsupported

_BASE_LAYER = ".base_layer"


def check_adapters(adapters: Sequence[AdapterRef]) -> None:
    for adapter in adapters:
        if adapter.kind == "hyper" and adapter.path.suffix != ".safetensors":
            raise Unsupported(f"hypernetwork {adapter.path.name}: only .safetensors hypernetworks are loaded")
        if adapter.kind not in ("lora", "ti", "hyper"):
            raise Unsupported(f"{adapter.path.name}: unknown adapter kind {adapter.kind!r}")
        if not adapter.path.is_file():
            raise Unsupported(f"{adapter.kind} file {adapter.path} does not exist on this runner")


def _state_dict(path: Path) -> dict[str, Any]:
    if path.suffix == ".safetensors":
        return dict(load_file(str(path)))
    return dict(torch.load(path, map_location="cpu", weights_only=True))


def _base_weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the weights under a PEFT layer, keyed by their names once the layer is gone."""
    return {
        name.replace(_BASE_LAYER, ""): tensor.detach().clone()
        for name, tensor in module.named_parameters()
        if _BASE_LAYER + "." in name
    }


def _restore(module: torch.nn.Module, saved: dict[str, torch.Tensor]) -> None:
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor)


@contextmanager
def applied(pipe: Any, adapters: Sequence[AdapterRef]) -> Iterator[None]:
    """Load, weight and fuse the LoRAs and load the textual inversions; undo all of it on the way out."""
    check_adapters(adapters)
    loras = [a for a in adapters if a.kind == "lora"]
    inversions = [a for a in adapters if a.kind == "ti"]
    hypers = [a for a in adapters if a.kind == "hyper"]
    names = [f"request_lora_{i}" for i in range(len(loras))]
    saved: dict[str, dict[str, torch.Tensor]] = {}
    try:
        for name, lora in zip(names, loras, strict=True):
            try:
                pipe.load_lora_weights(_state_dict(lora.path), adapter_name=name)
            except Exception as error:
                raise Unsupported(f"LoRA {lora.path.name} does not fit this base model: {error}") from error
        if loras:
            pipe.set_adapters(names, adapter_weights=[lora.weight for lora in loras])
            saved = {part: _base_weights(getattr(pipe, part)) for part in ("unet", "text_encoder")}
            pipe.fuse_lora(adapter_names=names, lora_scale=1.0)
        if inversions:
            tokenizer, embeddings = pipe.tokenizer, pipe.text_encoder.get_input_embeddings()
            table = embeddings.weight.data.clone()  # transformers may resize the table in place
            vocab_size = pipe.text_encoder.config.vocab_size
            pipe.tokenizer = copy.deepcopy(tokenizer)
        for inversion in inversions:
            token = inversion.token or inversion.path.stem
            try:
                pipe.load_textual_inversion(_state_dict(inversion.path), token=token)
            except Exception as error:
                raise Unsupported(
                    f"textual inversion {inversion.path.name} does not fit this base model: {error}"
                ) from error
        with ExitStack() as stack:
            for hyper in hypers:
                stack.enter_context(hypernetworks.attached(
                    pipe.unet, [(hypernetworks.load(hyper.path), hyper.weight)], hyper.path.name))
            yield
    finally:
        if inversions:
            pipe.tokenizer = tokenizer
            embeddings.weight.data = table
            embeddings.num_embeddings = table.shape[0]
            pipe.text_encoder.set_input_embeddings(embeddings)
            pipe.text_encoder.config.vocab_size = vocab_size
        if loras:
            pipe.unfuse_lora()
            pipe.unload_lora_weights()
            for part, weights in saved.items():
                _restore(getattr(pipe, part), weights)
