"""LoRA: peft adapters on the UNet's attention projections, the diffusers train_text_to_image_lora recipe.

The artefact is a safetensors file in diffusers' layout (`unet.<module>.lora_A/lora_B.weight`), which
`load_lora_weights` loads; alpha/rank is folded into the up matrices, so the file needs no alpha to mean what was
trained. `to_kohya` rewrites it in kohya's layout (`lora_unet_<module>.lora_down/lora_up.weight` + `alpha`), which
A1111 and ComfyUI load.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from peft import LoraConfig, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from gpu_runner.training.sd import BaseParts, FrozenTextTrainee, TrainingImage
from gpu_runner.training.spec import TrainSpec

TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0"]
ADAPTER = "trained_lora"


class LoraTrainee(FrozenTextTrainee):
    def __init__(self, spec: TrainSpec, parts: BaseParts, items: Sequence[TrainingImage],
                 device: str = "cpu") -> None:
        super().__init__(spec, parts, items, device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.int("seed"))  # peft's gaussian init draws from the global generator
            parts.unet.add_adapter(LoraConfig(
                r=spec.int("rank"), lora_alpha=spec.get("alpha"),  # type: ignore[arg-type]  # a float works
                init_lora_weights="gaussian",
                target_modules=TARGET_MODULES,
            ), adapter_name=ADAPTER)
        parts.unet.to(self.device)
        self.ready([p for p in parts.unet.parameters() if p.requires_grad])

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(self.parts.unet,
                                                                             adapter_name=ADAPTER).items()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        set_peft_model_state_dict(self.parts.unet, state, adapter_name=ADAPTER)

    def artefact(self) -> bytes:
        scale = self.spec.get("alpha") / self.spec.int("rank")
        tensors = {}
        for key, value in self.state().items():
            tensors["unet." + key] = (value * scale if ".lora_B." in key else value).contiguous()
        return save_bytes(tensors, metadata={"format": "pt", "ss_network_dim": str(self.spec.int("rank"))})


def to_kohya(diffusers_file: bytes) -> bytes:
    """The same LoRA in kohya's key layout (alpha = rank, as the scale is already in the up matrices)."""
    tensors = load_bytes(diffusers_file)
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if not key.startswith("unet.") or not key.endswith(".weight"):
            raise ValueError(f"not a diffusers UNet LoRA key: {key}")
        module, kind = key[len("unet."):-len(".weight")].rsplit(".", 1)
        name = "lora_unet_" + module.replace(".", "_")
        if kind == "lora_A":
            out[f"{name}.lora_down.weight"] = value
            out[f"{name}.alpha"] = torch.tensor(float(value.shape[0]))
        elif kind == "lora_B":
            out[f"{name}.lora_up.weight"] = value
        else:
            raise ValueError(f"not a LoRA matrix: {key}")
    return save_bytes(out, metadata={"format": "pt"})
