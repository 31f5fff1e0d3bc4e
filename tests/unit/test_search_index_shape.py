"""The Elasticsearch image index follows the configured embedding recipe (infra/search_index.py,
projectors/search/images.py), checked without a server: the mapping's width is the recipe's, an index of another
width is refused naming the rebuild command, and only the recipe's own ImageEmbedded events reach a document."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from events.images import ImageEmbedded
from infra.embeddings import PIXELS, PROMPT_DIMS, Recipe
from infra.search_index import REBUILD_COMMAND, IndexShapeError, check_shape, embedding_dims, mapping
from projectors.search.images import embed

CLIP = Recipe(version=873543433, image_model="CLIP clip-vit-b32", image_dims=512)


def answer(**widths: int | None) -> dict[str, Any]:
    """A get-mapping answer: each index's mapping, made by `mapping` of a recipe of that width (None: none)."""
    found: dict[str, Any] = {}
    for index, dims in widths.items():
        body = mapping(Recipe(1, "x", dims - PROMPT_DIMS)) if dims is not None else {"properties": {}}
        found[index] = {"mappings": body}
    return found


def test_the_mapping_takes_its_width_from_the_recipe_and_names_it() -> None:
    pixels, clip = mapping(PIXELS), mapping(CLIP)
    assert pixels["properties"]["embedding"]["dims"] == 448
    assert clip["properties"]["embedding"]["dims"] == PROMPT_DIMS + 512 == CLIP.dims
    assert clip["_meta"] == {"embedding_version": CLIP.version, "embedding_recipe": CLIP.describe()}
    assert pixels["dynamic"] == clip["dynamic"] == "strict"
    # Nothing but the embedding's width (and the recipe named) differs between two recipes' indexes.
    del pixels["properties"]["embedding"]["dims"], clip["properties"]["embedding"]["dims"]
    assert pixels["properties"] == clip["properties"]


def test_the_widths_are_read_per_index_behind_an_alias() -> None:
    assert embedding_dims(answer(**{"p-images-g1": 448, "p-images-g2": 896, "p-images-g3": None})) == {
        "p-images-g1": 448, "p-images-g2": 896, "p-images-g3": None}


def test_an_index_of_the_recipes_width_is_taken() -> None:
    check_shape("p-images-rm", answer(**{"p-images-rm": 896}), CLIP)
    check_shape("p-images-rm", answer(**{"p-images-g5": 448}), PIXELS)


def test_an_index_of_another_width_is_refused_naming_the_rebuild() -> None:
    with pytest.raises(IndexShapeError) as raised:
        check_shape("p-images-rm", answer(**{"p-images-rm": 448}), CLIP)
    message = str(raised.value)
    assert "the search index p-images-rm holds embeddings of 448 floats" in message, message
    assert f"({CLIP.describe()}) makes 896" in message and f"run `{REBUILD_COMMAND}`" in message, message
    assert REBUILD_COMMAND == "aidraw rebuild search_images"
    with pytest.raises(IndexShapeError, match=r"p-images-rm \(p-images-g9 behind the alias\) holds embeddings of"
                                              r" 896 floats"):
        check_shape("p-images-rm", answer(**{"p-images-g9": 896}), PIXELS)
    with pytest.raises(IndexShapeError, match="holds no embedding field, the configured recipe"):  # not ours at all
        check_shape("p-images-rm", answer(**{"p-images-rm": None}), PIXELS)


def embedded(version: int, prompt: list[float] | None, image: list[float] | None) -> ImageEmbedded:
    kind: type[Any] = ImageEmbedded  # the event's fields come from eventsourcing's metaclass, unseen by mypy
    event: ImageEmbedded = kind(originator_id=uuid.uuid4(), originator_version=3, timestamp=dt.datetime.now(dt.UTC),
                                embedding_version=version, prompt_vector=prompt, image_vector=image)
    return event


def test_a_recipes_own_event_writes_its_vector_into_the_document() -> None:
    doc: dict[str, Any] = {"id": 5, "embedding_version": 0}
    assert embed(doc, embedded(CLIP.version, [0.5] * PROMPT_DIMS, [0.25] * 512), CLIP)
    assert doc["embedding_version"] == CLIP.version
    assert doc["embedding"] == [0.5] * PROMPT_DIMS + [0.25] * 512 and len(doc["embedding"]) == CLIP.dims
    assert embed(doc, embedded(CLIP.version, None, [0.25] * 512), CLIP)  # no prompt: a zero prompt part
    assert doc["embedding"] == [0.0] * PROMPT_DIMS + [0.25] * 512
    assert embed(doc, embedded(CLIP.version, None, None), CLIP)  # nothing to embed: no vector kept
    assert "embedding" not in doc and doc["embedding_version"] == CLIP.version


def test_another_recipes_event_or_a_vector_that_does_not_fit_leaves_the_document_alone() -> None:
    doc: dict[str, Any] = {"id": 5, "embedding_version": 0}
    assert not embed(doc, embedded(PIXELS.version, [0.5] * PROMPT_DIMS, [0.1] * 64), CLIP)
    assert not embed(doc, embedded(CLIP.version, [0.5] * PROMPT_DIMS, [0.1] * 64), CLIP)  # 448 in a 896 index
    assert doc == {"id": 5, "embedding_version": 0}
    assert embed(doc, embedded(PIXELS.version, [0.5] * PROMPT_DIMS, [0.1] * 64), PIXELS)
    assert len(doc["embedding"]) == PIXELS.dims == 448
