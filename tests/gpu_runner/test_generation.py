"""PipelinePool.generate on the tiny model: diffusers' pixels, batching, determinism, cancel, previews, recipe."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
from PIL import Image

from gpu_runner.pipeline import Canceled, GenerationRequest, GenerationResult, PipelinePool, StepReport
from gpu_runner.pipeline.schedulers import make_scheduler
from tests.gpu_runner.conftest import SIZE, ignore, never, pixels

MakeRequest = Callable[..., GenerationRequest]


def _results(outcomes: list[GenerationResult | Canceled]) -> list[GenerationResult]:
    assert all(isinstance(o, GenerationResult) for o in outcomes), outcomes
    return [o for o in outcomes if isinstance(o, GenerationResult)]


def _diffusers_pipe(pool: PipelinePool, request: GenerationRequest) -> object:
    """A plain diffusers pipeline on the cached base's modules, with its own scheduler (the cached one untouched)."""
    pipe = pool._cache.get(request.base, None).pipe
    scheduler = make_scheduler(request.scheduler, pipe.scheduler.config)
    plain = StableDiffusionPipeline(**{**pipe.components, "scheduler": scheduler})
    plain.set_progress_bar_config(disable=True)  # type: ignore[attr-defined]
    return plain


@pytest.mark.parametrize("scheduler", ["DDIM", "K_EULER_ANCESTRAL"])
def test_an_unweighted_request_gives_the_pixels_of_a_bare_diffusers_call(
    pool: PipelinePool, make_request: MakeRequest, scheduler: str
) -> None:
    request = make_request(scheduler=scheduler, seed=7)
    [ours] = _results(pool.generate([request], on_step=ignore, is_canceled=never))
    pipe = _diffusers_pipe(pool, request)
    theirs = pipe(  # type: ignore[operator]
        request.prompt, negative_prompt=request.negative_prompt, num_inference_steps=request.steps,
        guidance_scale=request.guidance_scale, height=SIZE, width=SIZE,
        generator=[torch.Generator().manual_seed(request.seed)],
    ).images[0]
    assert np.abs(pixels(ours.png) - np.asarray(theirs).astype(np.int16)).max() == 0


@pytest.mark.parametrize("scheduler", ["K_EULER_ANCESTRAL", "DPMSolverMultistep"])
def test_each_image_of_a_batch_equals_its_unbatched_result_within_one_level(
    pool: PipelinePool, make_request: MakeRequest, scheduler: str
) -> None:
    batch = [
        make_request("a", scheduler=scheduler, seed=11),
        make_request("b", scheduler=scheduler, seed=12, prompt="a blue dog", negative_prompt=""),
        make_request("c", scheduler=scheduler, seed=13, prompt="a house"),
    ]
    together = _results(pool.generate(batch, on_step=ignore, is_canceled=never))
    assert [r.key for r in together] == ["a", "b", "c"]
    for request, batched in zip(batch, together, strict=True):
        [alone] = _results(pool.generate([request], on_step=ignore, is_canceled=never))
        assert np.abs(pixels(batched.png) - pixels(alone.png)).max() <= 1
    assert np.abs(pixels(together[0].png) - pixels(together[2].png)).max() > 1  # seeds and prompts matter


def test_the_same_recipe_in_the_same_batch_make_up_gives_identical_pixels(
    pool: PipelinePool, make_request: MakeRequest
) -> None:
    batch = [make_request("a", scheduler="K_EULER_ANCESTRAL", seed=3), make_request("b", seed=4,
                                                                                  scheduler="K_EULER_ANCESTRAL")]
    first = _results(pool.generate(batch, on_step=ignore, is_canceled=never))
    again = _results(pool.generate(batch, on_step=ignore, is_canceled=never))
    assert [pixels(r.png).tobytes() for r in first] == [pixels(r.png).tobytes() for r in again]


def test_a_canceled_member_leaves_the_batch_and_the_others_carry_on(
    pool: PipelinePool, make_request: MakeRequest
) -> None:
    # DPM++ 2M keeps per-sample history between steps: the leaving member's rows must go from it too.
    batch = [make_request(key, scheduler="DPMSolverMultistep", seed=seed) for key, seed in (("a", 1), ("b", 2),
                                                                                            ("c", 3))]
    reports: list[StepReport] = []
    outcomes = pool.generate(
        batch, on_step=reports.append,
        is_canceled=lambda key: key == "b" and any(r.key == "b" and r.step == 2 for r in reports),
    )
    assert outcomes[1] == Canceled("b", 2)
    assert max(r.step for r in reports if r.key == "b") == 2
    assert max(r.step for r in reports if r.key == "a") == 4
    for request, outcome in ((batch[0], outcomes[0]), (batch[2], outcomes[2])):
        assert isinstance(outcome, GenerationResult)
        [alone] = _results(pool.generate([request], on_step=ignore, is_canceled=never))
        assert np.abs(pixels(outcome.png) - pixels(alone.png)).max() <= 1


def test_a_batch_canceled_whole_decodes_nothing(pool: PipelinePool, make_request: MakeRequest) -> None:
    outcomes = pool.generate([make_request("a"), make_request("b", seed=2)], on_step=ignore, is_canceled=lambda k: True)
    assert outcomes == [Canceled("a", 0), Canceled("b", 0)]


def test_progress_counts_the_schedulers_real_timesteps(pool: PipelinePool, make_request: MakeRequest) -> None:
    reports: list[StepReport] = []
    pool.generate([make_request(scheduler="PNDM", steps=3)], on_step=reports.append, is_canceled=never)
    # PLMS without PRK warm-up runs one timestep more than asked.
    assert [(r.step, r.total) for r in reports] == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_previews_come_every_k_steps_as_small_jpegs(tiny_base: object, make_request: MakeRequest) -> None:
    previewing = PipelinePool(memory_budget_bytes=2**30, preview_every_steps=2, preview_min_interval_s=0.0)
    reports: list[StepReport] = []
    previewing.generate([make_request(steps=5, scheduler="KLMS")], on_step=reports.append, is_canceled=never)
    with_preview = [r for r in reports if r.preview_jpeg is not None]
    assert [r.step for r in with_preview] == [2, 4]
    image = Image.open(io.BytesIO(with_preview[0].preview_jpeg or b""))
    assert (image.format, image.size) == ("JPEG", (SIZE // 8, SIZE // 8))


def test_the_png_carries_the_recipe_in_a1111_form(pool: PipelinePool, make_request: MakeRequest) -> None:
    [result] = _results(pool.generate(
        [make_request(scheduler="K_EULER_ANCESTRAL", guidance_scale=7.5, seed=42)], on_step=ignore, is_canceled=never
    ))
    text = Image.open(io.BytesIO(result.png)).text["parameters"]  # type: ignore[attr-defined]
    prompt, negative, fields = text.split("\n")
    assert (prompt, negative) == ("a red cat", "Negative prompt: blurry")
    assert fields.startswith("Steps: 4, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 32x32, Model hash: ")
    assert fields.endswith(", Model: tiny")
    assert (result.width, result.height, result.seed, result.prompt_handling) == (SIZE, SIZE, 42, "whole")


def test_img2img_gives_the_pixels_of_diffusers_img2img(pool: PipelinePool, make_request: MakeRequest) -> None:
    source = Image.fromarray(np.random.default_rng(0).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    source.save(buffer, format="PNG")
    request = make_request(scheduler="DDIM", steps=4, strength=0.5, init_image=buffer.getvalue(), seed=5)
    reports: list[StepReport] = []
    [ours] = _results(pool.generate([request], on_step=reports.append, is_canceled=never))
    assert reports[-1].total == 2  # half the schedule
    base = _diffusers_pipe(pool, request)
    img2img = StableDiffusionImg2ImgPipeline(**base.components)  # type: ignore[attr-defined]
    theirs = img2img(  # type: ignore[operator]
        request.prompt, image=source, strength=0.5, negative_prompt=request.negative_prompt, num_inference_steps=4,
        guidance_scale=request.guidance_scale, generator=[torch.Generator().manual_seed(5)],
    ).images[0]
    assert np.abs(pixels(ours.png) - np.asarray(theirs).astype(np.int16)).max() == 0
