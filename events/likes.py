"""Likes: one aggregate per user (kind "likes", id = the user's id) holding the images that user likes.

Per user, not per image, so that a popular image is not a write hotspot: two people liking one image append to
two different subjects and never conflict.
"""

from __future__ import annotations

from events.base import Changed, Created


class LikesStarted(Created):
    """The user's first like opens their likes (appended together with that ImageLiked)."""

    user_id: int


class ImageLiked(Changed):
    image_id: int


class ImageUnliked(Changed):
    image_id: int
