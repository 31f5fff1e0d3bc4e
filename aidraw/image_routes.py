"""The routes of images, likes, featured collections and blob serving, in the order the app includes them."""

from __future__ import annotations

from fastapi import APIRouter

from command.routes import choices as command_choices
from command.routes import images as command_images
from command.routes import likes as command_likes
from query.routes import blobs as query_blobs
from query.routes import choices as query_choices
from query.routes import images as query_images

IMAGE_ROUTERS: tuple[APIRouter, ...] = (
    command_images.router, command_likes.router, query_images.router,
    command_choices.router, query_choices.router, query_blobs.router,
)
