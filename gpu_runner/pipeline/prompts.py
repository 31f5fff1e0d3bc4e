"""Prompts to text-encoder conditioning: A1111 weighting syntax, and prompts longer than CLIP's window.

Weighting: A1111's syntax is parsed here (`(word)` x1.1, `[word]` /1.1, `(word:1.3)`, `\\(` for a literal
bracket) into weighted fragments, which compel's `EmbeddingsProvider` encodes: weights above 1 push a token's
embedding away from the empty prompt's, weights below 1 blend towards the prompt without that fragment (compel's
method, not A1111's mean-renormalised scaling, so weighted prompts look alike in spirit, not in pixels).
An unweighted prompt encodes exactly as diffusers' own `encode_prompt` does.

Length: past 75 tokens the prompt is chunked A1111-style: split into windows of at most 75 tokens (at word
boundaries), each encoded between BOS and EOS on its own, and the encodings concatenated along the sequence. The
negative prompt is padded to the same number of windows with empty windows (and the other way round).

Textual inversions: a multi-vector embedding's word (`toy`, loaded as tokens `toy`, `toy_1`, ...) is expanded to
all its tokens on the token ids (`TokenExpansions`). compel's own diffusers manager does it by decoding the ids to
text and encoding them again, which is not lossless for every tokenizer: with the tiny model's byte-level one it
turned the `</w>` word ends into literal text once any token was added, so loading a textual inversion changed
prompts that do not use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from compel.embeddings_provider import BaseTextualInversionManager, EmbeddingsProvider, SplitLongTextMode

from gpu_runner.pipeline.requests import Unsupported

WINDOW = 77  # tokens per encoder window, BOS and EOS included

_ATTENTION = re.compile(r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:")
_UP, _DOWN = 1.1, 1 / 1.1


def parse_weighted(text: str) -> list[tuple[str, float]]:
    """A1111's `parse_prompt_attention`: the prompt as (fragment, weight) runs, equal neighbours merged."""
    parts: list[list[Any]] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for part in parts[start:]:
            part[1] *= factor

    for match in _ATTENTION.finditer(text):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\"):
            parts.append([token[1:], 1.0])
        elif token == "(":
            round_open.append(len(parts))
        elif token == "[":
            square_open.append(len(parts))
        elif weight is not None and round_open:
            try:
                factor = float(weight)
            except ValueError:
                raise Unsupported(f"prompt weight {weight!r} is not a number (write e.g. (word:1.2))") from None
            if factor < 0:
                raise Unsupported(f"prompt weight {weight} is negative; weights are 0 or more")
            multiply(round_open.pop(), factor)
        elif token == ")" and round_open:
            multiply(round_open.pop(), _UP)
        elif token == "]" and square_open:
            multiply(square_open.pop(), _DOWN)
        else:
            parts.append([token, 1.0])
    for start in round_open:
        multiply(start, _UP)
    for start in square_open:
        multiply(start, _DOWN)
    merged: list[tuple[str, float]] = []
    for fragment, weight in parts:
        if merged and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + fragment, weight)
        else:
            merged.append((fragment, weight))
    return merged or [("", 1.0)]


@dataclass(frozen=True)
class Conditioning:
    """Negative and positive embeddings of one request, padded to the same number of windows."""

    negative: torch.Tensor  # (1, windows * 77, dim)
    positive: torch.Tensor
    handling: str  # "whole" | "chunked"

    @property
    def windows(self) -> int:
        return int(self.positive.shape[1]) // WINDOW


class TokenExpansions(BaseTextualInversionManager):
    """Each multi-vector textual inversion token id -> the ids of all its vectors, as diffusers'
    `maybe_convert_prompt` expands the word, but on ids: other tokens pass through untouched."""

    def __init__(self, tokenizer: Any) -> None:
        added: dict[str, int] = dict(tokenizer.added_tokens_encoder)
        self._expand: dict[int, list[int]] = {}
        for token, token_id in added.items():
            extra, n = [], 1
            while f"{token}_{n}" in added:
                extra.append(added[f"{token}_{n}"])
                n += 1
            if extra:
                self._expand[token_id] = [token_id, *extra]

    def expand_textual_inversion_token_ids_if_necessary(self, token_ids: list[int]) -> list[int]:
        if not self._expand:
            return token_ids
        return [i for token_id in token_ids for i in self._expand.get(token_id, [token_id])]


class PromptEncoder:
    """Encodes prompts with one base's tokenizer and text encoder (textual inversion tokens included)."""

    def __init__(self, pipe: Any) -> None:
        self._provider = EmbeddingsProvider(
            tokenizer=pipe.tokenizer,
            text_encoder=pipe.text_encoder,
            textual_inversion_manager=TokenExpansions(pipe.tokenizer),
            truncate=False,
            split_long_text_mode=SplitLongTextMode.WORDS,
        )

    @torch.no_grad()
    def _encode(self, text: str) -> torch.Tensor:
        fragments = parse_weighted(text)
        embeddings = self._provider.get_embeddings_for_weighted_prompt_fragments(
            [[f for f, _ in fragments]], [[w for _, w in fragments]], device=self._provider.text_encoder.device
        )
        assert isinstance(embeddings, torch.Tensor)
        return embeddings

    def encode(self, prompt: str, negative_prompt: str) -> Conditioning:
        positive = self._encode(prompt)
        negative = self._encode(negative_prompt)
        handling = "chunked" if positive.shape[1] > WINDOW else "whole"
        windows = max(positive.shape[1], negative.shape[1]) // WINDOW
        return Conditioning(self._pad(negative, windows), self._pad(positive, windows), handling)

    def _pad(self, embeddings: torch.Tensor, windows: int) -> torch.Tensor:
        missing = windows - embeddings.shape[1] // WINDOW
        if missing == 0:
            return embeddings
        empty = self._encode("")
        return torch.cat([embeddings, *([empty] * missing)], dim=1)
