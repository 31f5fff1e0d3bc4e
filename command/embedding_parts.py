"""The image part of an embedding, per recipe (infra/embeddings.Recipe; docs/search.md).

- PixelPart: the pixel descriptor recorded at upload (ImageUploaded), rounded; nothing to read.
- ClipPart: CLIP's image embedding (infra/clip.py) of the image's file, read from the blob store. An image
  whose blob is gone (deleted meanwhile) has no image part.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from command.images import Image
from infra.clip import ClipImageEncoder
from infra.embeddings import rounded
from infra.storage import BlobNotFound, BlobStore

log = logging.getLogger("aidraw.embedder")


class ImagePart(Protocol):
    def vectors(self, images: Sequence[Image]) -> list[list[float] | None]:
        """One unit vector (or None: nothing to compute it from) per image."""
        ...


class PixelPart:
    def vectors(self, images: Sequence[Image]) -> list[list[float] | None]:
        return [rounded(image.descriptor) if image.descriptor else None for image in images]


class ClipPart:
    def __init__(self, encoder: ClipImageEncoder, blobs: BlobStore) -> None:
        self.encoder, self.blobs = encoder, blobs

    def _bytes(self, image: Image) -> bytes | None:
        try:
            return self.blobs.get(image.blob_key)
        except BlobNotFound:
            log.warning("image file missing; no image part", extra={"image": image.number})
            return None

    def vectors(self, images: Sequence[Image]) -> list[list[float] | None]:
        return self.encoder.encode([self._bytes(image) for image in images])
