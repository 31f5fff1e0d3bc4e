"""LoRA and textual inversion per request on a cached base: they change the image, and the base comes back exactly."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig, get_peft_model_state_dict
from PIL import Image
from safetensors.torch import save_file

from gpu_runner.pipeline import AdapterRef, GenerationRequest, GenerationResult, PipelinePool, Unsupported, adapters
from gpu_runner.pipeline.prompts import TokenExpansions
from tests.gpu_runner.conftest import ignore, never, pixels

MakeRequest = Callable[..., GenerationRequest]


@pytest.fixture(scope="module")
def lora_file(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    unet = UNet2DConditionModel.from_pretrained(tiny_base / "unet")
    torch.manual_seed(0)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    folder = tmp_path_factory.mktemp("lora")
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)),
        weight_name="style.safetensors",
    )
    return folder / "style.safetensors"


@pytest.fixture(scope="module")
def ti_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ti") / "toy.safetensors"
    save_file({"toy": torch.randn(2, 32, generator=torch.Generator().manual_seed(0)) * 3}, str(path))
    return path


def _snapshot(pool: PipelinePool, base: Path) -> dict[str, torch.Tensor]:
    pipe = pool._cache.get(base, None).pipe
    state = {f"unet.{k}": v.clone() for k, v in pipe.unet.state_dict().items()}
    state |= {f"text.{k}": v.clone() for k, v in pipe.text_encoder.state_dict().items()}
    return state


def _image(pool: PipelinePool, request: GenerationRequest) -> np.ndarray:
    [result] = pool.generate([request], on_step=ignore, is_canceled=never)
    assert isinstance(result, GenerationResult)
    return pixels(result.png)


def test_a_fused_lora_changes_the_image_and_leaves_the_cached_base_bit_identical(
    pool: PipelinePool, make_request: MakeRequest, lora_file: Path
) -> None:
    plain = make_request("plain", scheduler="DDIM", steps=3)
    before_pixels = _image(pool, plain)
    before = _snapshot(pool, plain.base)
    with_lora = _image(pool, replace(plain, key="lora", adapters=(AdapterRef(lora_file, "lora", 1.0),)))
    after = _snapshot(pool, plain.base)
    assert np.abs(with_lora - before_pixels).max() > 1
    assert after.keys() == before.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert np.array_equal(_image(pool, plain), before_pixels)


def test_a_lora_at_weight_zero_changes_nothing(pool: PipelinePool, make_request: MakeRequest, lora_file: Path) -> None:
    plain = make_request("plain", scheduler="DDIM", steps=3)
    zero = replace(plain, key="zero", adapters=(AdapterRef(lora_file, "lora", 0.0),))
    assert np.abs(_image(pool, zero) - _image(pool, plain)).max() <= 1


def test_a_textual_inversion_token_is_understood_and_then_forgotten(
    pool: PipelinePool, make_request: MakeRequest, ti_file: Path
) -> None:
    pipe = pool._cache.get(make_request().base, None).pipe
    vocabulary = len(pipe.tokenizer)
    table = pipe.text_encoder.get_input_embeddings().weight.detach().clone()
    plain = make_request("plain", prompt="a toy", scheduler="DDIM", steps=3)
    with_ti = replace(plain, key="ti", adapters=(AdapterRef(ti_file, "ti", token="toy"),))
    assert np.abs(_image(pool, with_ti) - _image(pool, plain)).max() > 1
    assert len(pipe.tokenizer) == vocabulary
    assert torch.equal(pipe.text_encoder.get_input_embeddings().weight, table)


def test_a_textual_inversion_leaves_prompts_without_its_word_alone(
    pool: PipelinePool, make_request: MakeRequest, ti_file: Path
) -> None:
    plain = make_request("plain", prompt="a red cat", scheduler="DDIM", steps=3)
    with_ti = replace(plain, key="ti", adapters=(AdapterRef(ti_file, "ti", token="toy"),))
    assert np.array_equal(_image(pool, with_ti), _image(pool, plain))


def test_a_multi_vector_word_expands_to_all_its_tokens_and_nothing_else_moves(
    pool: PipelinePool, make_request: MakeRequest, ti_file: Path
) -> None:
    pipe = pool._cache.get(make_request().base, None).pipe
    plain_ids = pipe.tokenizer("a red cat", add_special_tokens=False).input_ids
    with adapters.applied(pipe, (AdapterRef(ti_file, "ti", token="toy"),)):
        expansions = TokenExpansions(pipe.tokenizer)
        toy, toy_1 = pipe.tokenizer.convert_tokens_to_ids(["toy", "toy_1"])
        ids = pipe.tokenizer("a toy", add_special_tokens=False).input_ids
        assert expansions.expand_textual_inversion_token_ids_if_necessary(ids) == [*ids[:-1], toy, toy_1]
        assert expansions.expand_textual_inversion_token_ids_if_necessary(plain_ids) == plain_ids


def test_the_png_names_the_lora_as_a1111_does(pool: PipelinePool, make_request: MakeRequest, lora_file: Path) -> None:
    request = make_request(scheduler="DDIM", steps=2, adapters=(AdapterRef(lora_file, "lora", 0.8),))
    [result] = pool.generate([request], on_step=ignore, is_canceled=never)
    assert isinstance(result, GenerationResult)
    text = Image.open(io.BytesIO(result.png)).text["parameters"]  # type: ignore[attr-defined]
    assert text.startswith("a red cat <lora:style:0.8>\n")
    # A1111's own reader of the last line (modules/infotext_utils.py, re_param), quoted values included
    fields = dict(re.findall(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)', text.splitlines()[-1]))
    assert fields["Sampler"] == "DDIM"
    assert fields["Lora hashes"].startswith('"style: ') and fields["Model"] == "tiny"


def test_pickled_hypernetworks_are_refused_with_a_reason(
    make_request: MakeRequest, pool: PipelinePool, tmp_path: Path
) -> None:
    hyper = tmp_path / "h.pt"
    hyper.write_bytes(b"x")
    with pytest.raises(Unsupported, match=r"only \.safetensors hypernetworks") as refused:
        pool.generate([make_request("h", adapters=(AdapterRef(hyper, "hyper"),))], on_step=ignore, is_canceled=never)
    assert refused.value.key == "h"


def test_a_lora_that_does_not_fit_the_base_is_refused_and_the_base_survives(
    pool: PipelinePool, make_request: MakeRequest, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.safetensors"
    save_file({"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.ones(4, 7),
               "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight": torch.ones(32, 4)},
              str(wrong))
    plain = make_request("plain", scheduler="DDIM", steps=2)
    before = _image(pool, plain)
    with pytest.raises(Unsupported, match="does not fit"):
        pool.generate([replace(plain, key="w", adapters=(AdapterRef(wrong, "lora"),))], on_step=ignore,
                      is_canceled=never)
    assert np.array_equal(_image(pool, plain), before)
