"""The embedding worker (a process manager): every image gets its embedding computed once and recorded as an
ImageEmbedded event (events/images.py), which the images projector copies into rm.images.embedding.

Its work list is the read model: images whose `embedding_version` is not the configured recipe's
(infra/embeddings.Recipe), oldest first. For each batch it loads the images from the log (the source of truth
for the prompt and the pixel descriptor), encodes the prompts in one pass of the sentence model, makes the image
parts (command/embedding_parts.py: the recorded pixel descriptor, or CLIP on the pixels from the blob store),
and appends one ImageEmbedded per image through the ordinary optimistic concurrency: a second worker, a retry
or the same recipe already recorded makes `Image.embed` a no-op, so running several workers or repeating a
batch records each embedding once. Until the projector has copied an event, its image still shows on the work list:
the ids written are remembered so they are not encoded again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg

from command.app import CommandApp, retry_on_conflict
from command.embedding_parts import ImagePart, PixelPart
from command.images import Image
from infra.embeddings import PIXELS, PromptEncoder, Recipe

log = logging.getLogger("aidraw.embedder")


def embed_images(app: CommandApp, encoder: PromptEncoder, numbers: list[int], recipe: Recipe = PIXELS,
                 image_part: ImagePart | None = None) -> dict[int, int]:
    """Record the embedding of each image that lacks one of `recipe`; {image id: stream sequence written}."""
    version = recipe.version
    images = [app.load(Image, "image", n) for n in numbers]
    todo = [image for image in images if not image.deleted and version not in image.embedded_versions]
    prompts = encoder.encode([image.prompt for image in todo])
    image_vectors = (image_part or PixelPart()).vectors(todo)
    written: dict[int, int] = {}
    for image, prompt_vector, image_vector in zip(todo, prompts, image_vectors, strict=True):
        def attempt(number: int = image.number, pv: list[float] | None = prompt_vector,
                    iv: list[float] | None = image_vector) -> int:
            fresh = app.load(Image, "image", number)
            fresh.embed(version, pv, iv)
            return app.store(fresh)  # 0: nothing to write (recorded meanwhile)

        if seq := retry_on_conflict(attempt):
            written[image.number] = seq
    return written


class Embedder:
    def __init__(self, commands: CommandApp, database_url: str, encoder: PromptEncoder, *,
                 recipe: Recipe = PIXELS, image_part: ImagePart | None = None,
                 schema: str = "rm", batch: int = 32, interval_s: float = 1.0) -> None:
        self.commands, self.database_url, self.encoder = commands, database_url, encoder
        self.recipe, self.image_part = recipe, image_part or PixelPart()
        self.schema, self.batch, self.interval_s = schema, batch, interval_s
        self._written: set[int] = set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
                    while not stop.is_set():
                        if not await self.sweep(conn):
                            await _sleep_or_stop(stop, self.interval_s)
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
                await _sleep_or_stop(stop, 1.0)  # the images projector has not made its columns yet
            except (psycopg.OperationalError, OSError, TimeoutError) as exc:
                log.warning("embedder interrupted; retrying", extra={"error": str(exc)})
                await _sleep_or_stop(stop, 1.0)

    async def sweep(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Embed one batch of the work list; the number of events written."""
        rows = await (await conn.execute(
            f"SELECT id FROM {self.schema}.images WHERE embedding_version <> %s ORDER BY embedding_version,"
            " created_at LIMIT %s", (self.recipe.version, self.batch + len(self._written)))).fetchall()
        listed = [int(number) for (number,) in rows]
        self._written &= set(listed)  # what the projector has copied leaves the list, and this memory
        numbers = [n for n in listed if n not in self._written][: self.batch]
        if not numbers:
            return 0
        written = await asyncio.to_thread(embed_images, self.commands, self.encoder, numbers, self.recipe,
                                          self.image_part)
        self._written |= set(numbers)
        log.info("images embedded", extra={"count": len(written), "version": self.recipe.version})
        return len(written)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
