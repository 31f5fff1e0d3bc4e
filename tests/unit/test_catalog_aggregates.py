"""Rules of the image, likes and collection aggregates, without any server."""

from __future__ import annotations

from typing import Any

from command.choices import Choice
from command.images import Image
from command.likes import Likes
from events.choices import ChoiceChanged, ChoiceCreated
from events.ids import aggregate_uuid
from events.images import ImageChanged, ImageDeleted, ImageUploaded
from events.likes import LikesStarted


def new_image(**changes: Any) -> Image:
    fields: dict[str, Any] = dict(
        user_id=7, name="sunset", prompt="", negative_prompt="", width=4, height=3, num_inference_steps=None,
        guidance_scale=None, scheduler=None, seed=None, from_image=None, model_id=None, loras=[],
        blob_key="ab/cd/" + "ab" + "cd" + "0" * 60 + ".png", thumbnail_key=None, content_type="image/png",
        public=True, tag_ids=[1, 2], task_id=None, descriptor=None)
    fields.update(changes)
    return Image._create(ImageUploaded, id=aggregate_uuid("image", 5), **fields)


def pending_types(aggregate: Any) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def test_an_image_change_records_only_the_fields_that_differ() -> None:
    image = new_image()
    image.collect_events()
    image.change("sunset", [1, 2], True)
    assert pending_types(image) == []
    image.change("dusk", [1, 2], False)
    [event] = image.collect_events()
    assert isinstance(event, ImageChanged)
    assert (event.name, event.tag_ids, event.public) == ("dusk", None, False)
    assert (image.name, image.public, image.tag_ids) == ("dusk", False, [1, 2])


def test_a_deleted_image_names_its_blobs_for_the_reaper() -> None:
    image = new_image(thumbnail_key="thumb")
    image.collect_events()
    image.delete()
    [event] = image.collect_events()
    assert isinstance(event, ImageDeleted)
    assert (event.blob_key, event.thumbnail_key) == (image.blob_key, "thumb")
    assert image.deleted


def test_likes_are_idempotent_both_ways() -> None:
    likes = Likes._create(LikesStarted, id=aggregate_uuid("likes", 7), user_id=7)
    likes.like(5)
    likes.like(5)
    likes.unlike(6)
    assert pending_types(likes) == ["LikesStarted", "ImageLiked"]
    likes.unlike(5)
    likes.unlike(5)
    assert pending_types(likes) == ["ImageUnliked"]
    assert likes.image_ids == set()


def test_a_collection_change_replaces_items_and_records_only_what_differs() -> None:
    items = [{"image_id": 1, "weight": 1.0}]
    choice = Choice._create(ChoiceCreated, id=aggregate_uuid("choice", 9), user_id=7, name="best", public=True,
                            items=items)
    choice.collect_events()
    choice.change("best", True, [{"image_id": 1, "weight": 1.0}])
    assert pending_types(choice) == []
    choice.change(None, False, [{"image_id": 2, "weight": 0.5}])
    [event] = choice.collect_events()
    assert isinstance(event, ChoiceChanged)
    assert (event.name, event.public, event.items) == (None, False, [{"image_id": 2, "weight": 0.5}])
    assert choice.items == [{"image_id": 2, "weight": 0.5}] and choice.public is False
