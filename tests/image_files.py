"""Pictures for the image tests, drawn with Pillow, and an upload helper."""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
from PIL import ExifTags, Image, ImageDraw

SECRET = "Secret-Location-Marker"


def picture(width: int = 64, height: int = 48, fmt: str = "PNG", seed: int | None = None, **options: Any) -> bytes:
    """A small picture; different `seed`s (random by default) give different bytes, so blobs are not shared
    between tests unless a test wants that."""
    seed = uuid.uuid4().int if seed is None else seed
    image = Image.new("RGB", (width, height), (seed % 256, (seed >> 8) % 256, (seed >> 16) % 256))
    draw = ImageDraw.Draw(image)
    draw.ellipse([width // 4, height // 4, width // 2, height // 2], fill=(250, 210, 40))
    draw.point([(x, (seed >> x) % height) for x in range(width)], fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    """A JPEG whose EXIF names a place (GPS) and carries a marker text in its description."""
    exif = Image.Exif()
    exif[ExifTags.Base.ImageDescription] = SECRET
    exif[ExifTags.Base.Make] = SECRET
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.0)
    return picture(80, 60, "JPEG", exif=exif.tobytes(), quality=90)


def upload(client: httpx.Client, data: bytes | None = None, filename: str = "photo.png",
           content_type: str = "image/png", fields: Mapping[str, str | list[str]] | None = None,
           headers: Mapping[str, str] | None = None) -> httpx.Response:
    data = picture() if data is None else data
    return client.post("/api/images", files={"file": (filename, data, content_type)}, data=fields or {},
                       headers=headers)
