"""A1111 prompt weighting parsed into fragments, and prompts past CLIP's window chunked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from gpu_runner.pipeline import GenerationRequest, PipelinePool, Unsupported
from gpu_runner.pipeline.prompts import WINDOW, PromptEncoder, parse_weighted

MakeRequest = Callable[..., GenerationRequest]


@pytest.mark.parametrize(
    ("prompt", "parsed"),
    [
        ("a cat", [("a cat", 1.0)]),
        ("a (red:1.3) cat", [("a ", 1.0), ("red", 1.3), (" cat", 1.0)]),
        ("(red) [blue]", [("red", 1.1), (" ", 1.0), ("blue", 1 / 1.1)]),
        ("((red))", [("red", 1.1 * 1.1)]),
        (r"\(literal\)", [("(literal)", 1.0)]),
        ("(unclosed", [("unclosed", 1.1)]),
        ("", [("", 1.0)]),
    ],
)
def test_a1111_weighting_syntax_is_read_as_a1111_reads_it(prompt: str, parsed: list[tuple[str, float]]) -> None:
    result = parse_weighted(prompt)
    assert [f for f, _ in result] == [f for f, _ in parsed]
    assert [w for _, w in result] == pytest.approx([w for _, w in parsed])


def test_a_negative_weight_is_refused() -> None:
    with pytest.raises(Unsupported, match="negative"):
        parse_weighted("(cat:-1)")


@pytest.fixture(scope="module")
def encoder(pool: PipelinePool, tiny_base: Path) -> tuple[PromptEncoder, object]:
    pipe = pool._cache.get(tiny_base, None).pipe
    return PromptEncoder(pipe), pipe


def test_an_unweighted_prompt_encodes_as_diffusers_does(encoder: tuple[PromptEncoder, object]) -> None:
    prompts, pipe = encoder
    conditioning = prompts.encode("a red cat", "blurry")
    positive, negative = pipe.encode_prompt("a red cat", "cpu", 1, True, negative_prompt="blurry")  # type: ignore[attr-defined]
    assert torch.equal(conditioning.positive, positive)
    assert torch.equal(conditioning.negative, negative)
    assert conditioning.handling == "whole"


def test_weighting_changes_only_the_conditioning_it_should(encoder: tuple[PromptEncoder, object]) -> None:
    prompts, _ = encoder
    plain = prompts.encode("a red cat", "").positive
    weighted = prompts.encode("a (red:1.5) cat", "").positive
    assert not torch.equal(plain, weighted)
    assert torch.equal(plain[:, :2], weighted[:, :2])  # BOS and "a" keep theirs


def test_long_prompts_are_chunked_into_windows_and_the_negative_padded(encoder: tuple[PromptEncoder, object]) -> None:
    prompts, _ = encoder
    conditioning = prompts.encode("a red cat " * 25, "blurry")  # 175 tokens: three windows
    assert conditioning.handling == "chunked"
    assert conditioning.windows == 3
    assert conditioning.positive.shape == conditioning.negative.shape
    assert conditioning.positive.shape[1] == 3 * WINDOW
    short = prompts.encode("blurry", "a red cat " * 25)
    assert (short.handling, short.windows) == ("whole", 3)
