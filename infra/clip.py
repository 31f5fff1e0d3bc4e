"""The CLIP image part of the embedding recipe (docs/search.md), used where `AIDRAW_CLIP_MODEL_PATH` names a
local folder holding a transformers `CLIPModel` and its `CLIPImageProcessor` (config.json, the weights and
preprocessor_config.json, as `save_pretrained` writes them). Never fetched: loaded with `local_files_only`
and HF_HUB_OFFLINE.

The recipe's version is derived from the folder's contents (its config.json and the names and sizes of its
weight files), so another model, or the same one retrained, is another version: the worker records the new
embeddings and the search read model is rebuilt (a new vector width is a reshaped rebuild).
"""

from __future__ import annotations

import io
import json
import os
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.embeddings import PROMPT_MODEL, Recipe, rounded

WEIGHT_SUFFIXES = (".safetensors", ".bin")
MAX_VERSION = 2**31 - 1  # embedding_version is a PostgreSQL int


def clip_recipe(model_path: str) -> Recipe:
    """The recipe [prompt part, CLIP image part] for the model in `model_path` (read without torch)."""
    folder = Path(model_path)
    try:
        config_bytes = (folder / "config.json").read_bytes()
        config = json.loads(config_bytes)
        dims = int(config["projection_dim"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"AIDRAW_CLIP_MODEL_PATH={model_path!r} holds no CLIP model (config.json with"
                         f" projection_dim): {exc}") from exc
    weights = sorted((p.name, p.stat().st_size) for p in folder.iterdir() if p.name.endswith(WEIGHT_SUFFIXES))
    if not weights:
        raise ValueError(f"AIDRAW_CLIP_MODEL_PATH={model_path!r} holds no weights (*.safetensors or *.bin).")
    identity = config_bytes + json.dumps(weights).encode()
    version = 2 + zlib.crc32(identity) % (MAX_VERSION - 2)  # 0: none, 1: the pixel recipe
    return Recipe(version=version, image_model=f"CLIP {folder.name}", image_dims=dims,
                  prompt_model=PROMPT_MODEL)


class ClipImageEncoder:
    """CLIP's image tower and projection, loaded on first use."""

    def __init__(self, model_path: str) -> None:
        self._path = model_path
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
                from transformers import CLIPImageProcessor, CLIPModel

                processor = CLIPImageProcessor.from_pretrained(self._path, local_files_only=True)
                model = CLIPModel.from_pretrained(self._path, local_files_only=True).eval()
                self._loaded = (processor, model)
            return self._loaded

    def encode(self, images: Sequence[bytes | None]) -> list[list[float] | None]:
        """One unit vector (projection_dim floats, rounded) per image's file bytes; None where there are none."""
        wanted = [n for n, data in enumerate(images) if data]
        out: list[list[float] | None] = [None] * len(images)
        if not wanted:
            return out
        import torch
        from PIL import Image

        processor, model = self._load()
        pictures = []
        for n in wanted:
            with Image.open(io.BytesIO(images[n] or b"")) as picture:
                pictures.append(picture.convert("RGB"))
        with torch.inference_mode():
            batch = processor(images=pictures, return_tensors="pt")
            features = model.get_image_features(pixel_values=batch["pixel_values"])
            if not isinstance(features, torch.Tensor):  # transformers 5 may return an output object
                features = features.pooler_output
            vectors = torch.nn.functional.normalize(features.float(), dim=1)
        for n, vector in zip(wanted, vectors.tolist(), strict=True):
            out[n] = rounded(vector)
        return out
