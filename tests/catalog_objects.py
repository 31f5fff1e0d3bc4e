"""Images and featured collections for the catalog tests, made through their real routes."""

from __future__ import annotations

import io
import random

from PIL import Image

from tests.catalog_accounts import Person, client_of
from tests.system import System


def png_bytes() -> bytes:
    """A small PNG with random pixels: each upload is new content."""
    image = Image.new("RGB", (8, 8))
    image.putdata([(random.randrange(256), random.randrange(256), random.randrange(256)) for _ in range(64)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def upload_image(system: System, who: Person, public: bool = True) -> dict:
    with client_of(system, who) as client:
        answer = client.post("/api/images", files={"file": ("pic.png", png_bytes(), "image/png")},
                             data={"public": "true" if public else "false"})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def create_choice(system: System, who: Person, public: bool = True, image_ids: tuple[int, ...] = ()) -> dict:
    with client_of(system, who) as client:
        answer = client.post("/api/choices", json={"name": "picks", "public": public,
                                                   "items": [{"image_id": i} for i in image_ids]})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def delete(system: System, who: Person, path: str) -> str:
    """Delete and return the write's sequence (for someone else's read to wait for)."""
    with client_of(system, who) as client:
        answer = client.delete(path)
        assert answer.status_code == 204, answer.text
        return answer.headers["X-Event-Sequence"]
