"""Likes: each user's likes are one aggregate (kind "likes", id = the user's id), see events/likes.py.

Liking is idempotent: liking a liked image or unliking one that is not liked records nothing.
"""

from __future__ import annotations

from typing import ClassVar

from eventsourcing.domain import Aggregate

from command.app import CommandApp, retry_on_conflict
from command.images import load_visible_image
from events.base import EventHandlers
from events.ids import aggregate_uuid
from events.likes import ImageLiked, ImageUnliked, LikesStarted
from infra.actor import Actor
from infra.errors import NotFound


class Likes(Aggregate):
    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.image_ids: set[int] = set()

    def like(self, image_id: int) -> None:
        if image_id not in self.image_ids:
            self.trigger_event(ImageLiked, image_id=image_id)

    def unlike(self, image_id: int) -> None:
        if image_id in self.image_ids:
            self.trigger_event(ImageUnliked, image_id=image_id)

    def _image_liked(self, event: ImageLiked) -> None:
        self.image_ids.add(event.image_id)

    def _image_unliked(self, event: ImageUnliked) -> None:
        self.image_ids.discard(event.image_id)

    WHEN: ClassVar[EventHandlers] = {ImageLiked: _image_liked, ImageUnliked: _image_unliked}


# A user's likes grow without bound; loading them replays only the events since the latest snapshot.
SNAPSHOT_EVERY = 100
# One user's likes are one aggregate: a client liking many images at once makes its own requests race. A like
# commutes with every other, so it is retried until it lands rather than answered 409.
LIKE_TRIES = 40
CommandApp.snapshotting_intervals[Likes] = SNAPSHOT_EVERY


def _likes_of(app: CommandApp, user_id: int) -> Likes:
    try:
        return app.load(Likes, "likes", user_id)
    except NotFound:
        return Likes._create(LikesStarted, id=aggregate_uuid("likes", user_id), user_id=user_id)


def like_image(app: CommandApp, actor: Actor, image_id: int) -> int:
    """Like an image the caller can see; the stream sequence written, 0 when it was liked already."""
    assert actor.user_id is not None, "routes require a user"
    user_id = actor.user_id

    def attempt() -> int:
        load_visible_image(app, actor, image_id)
        likes = _likes_of(app, user_id)
        likes.like(image_id)
        return app.store(likes)

    return retry_on_conflict(attempt, tries=LIKE_TRIES)


def unlike_image(app: CommandApp, actor: Actor, image_id: int) -> int:
    """Take a like back; 0 when there was none. A like of an image that has since turned private or been
    deleted can still be taken back (it is the caller's own record); otherwise the image must be visible."""
    assert actor.user_id is not None, "routes require a user"
    user_id = actor.user_id

    def attempt() -> int:
        likes = _likes_of(app, user_id)
        if image_id not in likes.image_ids:
            load_visible_image(app, actor, image_id)  # 404 for an unknown or unseen image
            return 0
        likes.unlike(image_id)
        return app.store(likes)

    return retry_on_conflict(attempt, tries=LIKE_TRIES)


def withdraw_all_likes(app: CommandApp, user_id: int, chunk: int = 500) -> int:
    """Take back every like a user gave (a deleted account's), in atomic batches of at most `chunk`; the last
    stream sequence written, 0 when there was nothing to take back."""
    written = 0
    while True:
        def attempt() -> int:
            try:
                likes = app.load(Likes, "likes", user_id)
            except NotFound:
                return 0
            taken = sorted(likes.image_ids)[:chunk]
            for image_id in taken:
                likes.unlike(image_id)
            return app.store(likes) if taken else 0

        sequence = retry_on_conflict(attempt, tries=LIKE_TRIES)
        if not sequence:
            return written
        written = sequence
